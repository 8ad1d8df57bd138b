import type { Kysely } from 'kysely';

/** 0015_constrained: DTLS pre-shared keys of metals (sealed; see docs/THREAT-MODEL.md). */
export async function up0015Constrained(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('constrained_psks')
    .addColumn('identity', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('metal_id', 'text', (c) => c.notNull())
    .addColumn('sealed_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('revoked_at', 'text')
    .execute();
  await db.schema.createIndex('constrained_psks_metal').on('constrained_psks').column('metal_id').execute();
}
