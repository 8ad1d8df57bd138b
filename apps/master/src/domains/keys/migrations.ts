import type { Kysely } from 'kysely';

/** Part of 0003_enrollment: operators' manifest signing keys (public keys; a private one only on opt-in) and the signed envelope of each Glaze. */
export async function up0003Keys(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('operator_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('alg', 'text', (c) => c.notNull())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('kid', 'text', (c) => c.notNull())
    .addColumn('server_private_key', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('revoked_at', 'text')
    .addUniqueConstraint('operator_keys_owner_name', ['owner_id', 'name'])
    .addUniqueConstraint('operator_keys_owner_kid', ['owner_id', 'kid'])
    .execute();
  await db.schema
    .createTable('glaze_manifests')
    .addColumn('glaze_id', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('envelope', 'text', (c) => c.notNull())
    .addColumn('sequence_number', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
}
