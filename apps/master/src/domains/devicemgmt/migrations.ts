import type { Kysely } from 'kysely';

/** 0015_devicemgmt: LwM2M registrations (one per metal), firmware jobs, last observed values. */
export async function up0015DeviceMgmt(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('lwm2m_registrations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('metal_id', 'text', (c) => c.notNull().unique())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('endpoint', 'text', (c) => c.notNull())
    .addColumn('lwm2m_version', 'text', (c) => c.notNull())
    .addColumn('lifetime', 'integer', (c) => c.notNull())
    .addColumn('binding', 'text', (c) => c.notNull())
    .addColumn('queue_mode', 'integer', (c) => c.notNull())
    .addColumn('objects', 'text', (c) => c.notNull())
    .addColumn('registered_at', 'text', (c) => c.notNull())
    .addColumn('last_update', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('online', 'integer', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('lwm2m_registrations_expiry').on('lwm2m_registrations').columns(['online', 'expires_at']).execute();
  await db.schema
    .createTable('lwm2m_firmware_jobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('metal_id', 'text', (c) => c.notNull())
    .addColumn('glaze_id', 'text', (c) => c.notNull())
    .addColumn('package_uri', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('state', 'integer')
    .addColumn('result', 'integer')
    .addColumn('message', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('lwm2m_firmware_jobs_metal').on('lwm2m_firmware_jobs').columns(['metal_id', 'created_at']).execute();
  await db.schema
    .createTable('lwm2m_observed')
    .addColumn('metal_id', 'text', (c) => c.notNull())
    .addColumn('path', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('observed_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('lwm2m_observed_pk', ['metal_id', 'path'])
    .execute();
}

/**
 * 0016_lwm2m (issue 12, contract K): the LwM2M part of a bootstrapping profile (JSON, null = the
 * master's defaults), and the index the bootstrap server resolves a metal's onboarding record by.
 */
export async function up0016Lwm2m(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('bootstrap_profiles').addColumn('lwm2m', 'text').execute();
  await db.schema.createIndex('onboardings_metal').on('onboardings').column('metal_id').execute();
}

/**
 * 0017_lwm2m (issue 13, queue mode across replicas): the operations queued for a sleeping (UQ)
 * device, durable, so whichever replica the device's next registration update reaches claims and
 * sends them (each once), and a restart loses none. `records` is JSON (the read's answer).
 */
export async function up0017Lwm2m(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('lwm2m_queue')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('metal_id', 'text', (c) => c.notNull())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('target', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('records', 'text')
    .addColumn('job_id', 'text')
    .addColumn('error_code', 'text')
    .addColumn('error_message', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('lwm2m_queue_metal').on('lwm2m_queue').columns(['metal_id', 'created_at']).execute();
}
