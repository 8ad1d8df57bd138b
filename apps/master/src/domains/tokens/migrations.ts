import type { Kysely } from 'kysely';

/** Part of 0003_enrollment: single-use proof-of-possession challenges. */
export async function up0003Tokens(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('token_challenges')
    .addColumn('nonce', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
}
