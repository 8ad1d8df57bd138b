import type { Kysely } from 'kysely';

/** 0015_telemetry: metal heartbeats and telemetry, and device-scoped application tokens. */
export async function up0015Telemetry(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('telemetry_samples')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('metal_id', 'text', (c) => c.notNull())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('received_at', 'text', (c) => c.notNull())
    .addColumn('values_json', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('telemetry_samples_metal').on('telemetry_samples').columns(['metal_id', 'received_at', 'id']).execute();
  await db.schema.createIndex('telemetry_samples_received').on('telemetry_samples').column('received_at').execute();
  await db.schema
    .createTable('telemetry_heartbeats')
    .addColumn('metal_id', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('received_at', 'text', (c) => c.notNull())
    .addColumn('values_json', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('telemetry_app_tokens')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('metal_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('telemetry_app_tokens_owner').on('telemetry_app_tokens').columns(['owner_id', 'created_at', 'id']).execute();
}
