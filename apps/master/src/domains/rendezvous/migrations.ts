import type { Kysely } from 'kysely';

/** Part of 0014_onboarding: the rendezvous server's registrations (TO0) and challenges (TO1). */
export async function up0014Rendezvous(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('rendezvous_registrations')
    .addColumn('guid', 'text', (c) => c.primaryKey())
    .addColumn('device_key', 'text', (c) => c.notNull())
    .addColumn('owner_chain', 'text', (c) => c.notNull())
    .addColumn('to1d', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('rendezvous_nonces')
    .addColumn('nonce_hash', 'text', (c) => c.primaryKey())
    .addColumn('guid', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .execute();
}
