import type { Kysely } from 'kysely';

/** Part of 0011_lifecycle: signed orders to metals (trust-list updates, re-enrollment orders). */
export async function up0011Directives(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('metal_directives')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('metal_id', 'text', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('sequence_number', 'text', (c) => c.notNull())
    .addColumn('envelope', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('metal_directives_owner').on('metal_directives').columns(['owner_id', 'kind', 'metal_id', 'created_at']).execute();
}
