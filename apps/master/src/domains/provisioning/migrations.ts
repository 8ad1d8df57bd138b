import type { Kysely } from 'kysely';

/**
 * 0007_provisioning — Phase 1 jobs (history kept: a metal has many, at most one open), and the
 * engine choice on metals (null = inherit) and Spaces (null = builtin).
 */
export async function up0007Provisioning(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('provisioning_jobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('metal_id', 'text', (c) => c.notNull())
    .addColumn('open_metal_id', 'text', (c) => c.unique())
    .addColumn('interface_name', 'text', (c) => c.notNull())
    .addColumn('mac', 'text', (c) => c.notNull())
    .addColumn('space_id', 'text', (c) => c.notNull())
    .addColumn('engine', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('detail', 'text')
    .addColumn('glaze_id', 'text')
    .addColumn('glaze_name', 'text')
    .addColumn('glaze_size', 'bigint')
    .addColumn('glaze_sha256', 'text')
    .addColumn('glaze_manifest', 'text')
    .addColumn('glaze_sequence', 'bigint')
    .addColumn('token_hash', 'text')
    .addColumn('installer_key', 'text')
    .addColumn('enrollment_secret_id', 'text')
    .addColumn('transitions', 'text', (c) => c.notNull())
    .addColumn('report_cose', 'text')
    .addColumn('report_json', 'text')
    .addColumn('report_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('provisioning_jobs_keyset').on('provisioning_jobs').columns(['owner_id', 'created_at', 'id']).execute();
  await db.schema.createIndex('provisioning_jobs_metal').on('provisioning_jobs').columns(['metal_id', 'created_at']).execute();
  await db.schema.alterTable('metals').addColumn('engine', 'text').execute();
  await db.schema.alterTable('spaces').addColumn('engine', 'text').execute();
}

/** 0012_engines — a Space's engine rules by metal label (JSON list of { match, engine }; null = none). */
export async function up0012Engines(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('spaces').addColumn('engine_rules', 'text').execute();
}
