import type { Kysely } from 'kysely';

/**
 * 0008_updates — the Update Manager (Phases 2 and 3): a Glaze's install handler and version label,
 * each metal's profile, per-Space installation state, report history and events (tamper, refused
 * authentication, rollback requests).
 */
export async function up0008Updates(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('glazes').addColumn('handler', 'text', (c) => c.notNull().defaultTo('archive')).execute();
  await db.schema.alterTable('glazes').addColumn('version', 'text').execute();
  await db.schema
    .createTable('metal_profiles')
    .addColumn('metal_id', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('vendor_id', 'text')
    .addColumn('class_id', 'text')
    .addColumn('glazes', 'text', (c) => c.notNull())
    .addColumn('interfaces', 'text', (c) => c.notNull())
    .addColumn('protocols', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('metal_profiles_owner_vendor').on('metal_profiles').columns(['owner_id', 'vendor_id']).execute();
  await db.schema
    .createTable('metal_installations')
    .addColumn('metal_id', 'text', (c) => c.notNull())
    .addColumn('space_id', 'text', (c) => c.notNull())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('installed_glaze_id', 'text')
    .addColumn('installed_sequence', 'text')
    .addColumn('installed_at', 'text')
    .addColumn('last_glaze_id', 'text', (c) => c.notNull())
    .addColumn('last_result', 'text', (c) => c.notNull())
    .addColumn('last_reason', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('metal_installations_pk', ['metal_id', 'space_id'])
    .execute();
  await db.schema.createIndex('metal_installations_glaze').on('metal_installations').columns(['owner_id', 'installed_glaze_id']).execute();
  await db.schema
    .createTable('metal_reports')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('metal_id', 'text', (c) => c.notNull())
    .addColumn('space_id', 'text', (c) => c.notNull())
    .addColumn('glaze_id', 'text', (c) => c.notNull())
    .addColumn('result', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('sequence', 'text', (c) => c.notNull())
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('cose', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('metal_reports_metal').on('metal_reports').columns(['metal_id', 'created_at', 'id']).execute();
  await db.schema
    .createTable('metal_events')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('metal_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('code', 'text', (c) => c.notNull())
    .addColumn('detail', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('metal_events_metal').on('metal_events').columns(['metal_id', 'created_at', 'id']).execute();
}

/**
 * 0015_console_views — the owner-wide event list (`GET /api/v1/tamper-events`, the console's tamper
 * view) is a keyset page per (owner, kind), newest first: one range scan at any depth.
 */
export async function up0015ConsoleViews(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('metal_events_owner_kind').on('metal_events').columns(['owner_id', 'kind', 'created_at', 'id']).execute();
}
