import type { Kysely } from 'kysely';

/** 0014_onboarding: owners' onboarding keys and imported ownership vouchers (issue 11). */
export async function up0014Onboarding(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('onboarding_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('alg', 'text', (c) => c.notNull())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('fingerprint', 'text', (c) => c.notNull())
    .addColumn('private_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('onboarding_keys_owner_name', ['owner_id', 'name'])
    .addUniqueConstraint('onboarding_keys_owner_fingerprint', ['owner_id', 'fingerprint'])
    .execute();
  await db.schema.createIndex('onboarding_keys_owner_created').on('onboarding_keys').columns(['owner_id', 'created_at', 'id']).execute();
  await db.schema
    .createTable('vouchers')
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('guid', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('voucher', 'text', (c) => c.notNull())
    .addColumn('device_info', 'text', (c) => c.notNull())
    .addColumn('rendezvous', 'text', (c) => c.notNull())
    .addColumn('manufacturer_key', 'text', (c) => c.notNull())
    .addColumn('device_key', 'text', (c) => c.notNull())
    .addColumn('owner_chain', 'text', (c) => c.notNull())
    .addColumn('onboarding_key_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('vouchers_pk', ['owner_id', 'guid'])
    .execute();
  await db.schema.createIndex('vouchers_owner_created').on('vouchers').columns(['owner_id', 'created_at', 'guid']).execute();
  // TO2 finds a device by GUID alone (the device does not know its owner's ID).
  await db.schema.createIndex('vouchers_guid').on('vouchers').column('guid').execute();
  await db.schema
    .createTable('onboarding_nonces')
    .addColumn('nonce_hash', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('guid', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .execute();
}
