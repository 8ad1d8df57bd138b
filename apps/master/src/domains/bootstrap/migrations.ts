import type { Kysely } from 'kysely';

/** 0015_bootstrap: bootstrapping profiles and onboarding records (issue 11, Z1 Z4). */
export async function up0015Bootstrap(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('bootstrap_profiles')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('priority', 'integer', (c) => c.notNull())
    .addColumn('match', 'text', (c) => c.notNull())
    .addColumn('phase1_glaze', 'text')
    .addColumn('spaces', 'text', (c) => c.notNull())
    .addColumn('protocols', 'text', (c) => c.notNull())
    .addColumn('agent', 'text', (c) => c.notNull())
    .addColumn('attestation', 'text', (c) => c.notNull())
    .addColumn('pcrs', 'text', (c) => c.notNull())
    .addColumn('pcr_digest', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('bootstrap_profiles_owner_name', ['owner_id', 'name'])
    .execute();
  await db.schema.createIndex('bootstrap_profiles_owner_created').on('bootstrap_profiles').columns(['owner_id', 'created_at', 'id']).execute();
  await db.schema
    .createTable('onboardings')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('guid', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('profile_id', 'text')
    .addColumn('verifier', 'text')
    .addColumn('metal_id', 'text')
    .addColumn('secret_id', 'text')
    .addColumn('facts', 'text')
    .addColumn('events', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('onboardings_owner_guid', ['owner_id', 'guid'])
    .execute();
  await db.schema.createIndex('onboardings_owner_created').on('onboardings').columns(['owner_id', 'created_at', 'id']).execute();
  await db.schema.createIndex('onboardings_secret').on('onboardings').column('secret_id').execute();
}
