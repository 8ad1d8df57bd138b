import { type Kysely, sql } from 'kysely';

/**
 * Migration 0002: the tables of TIPS-D — the gateways domain (`gateway*`) and the discovery domain
 * (`discovery_*`). Portable types only (text, integer, bigint), like 0001.
 */
export async function up0002Discovery(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('gateways')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('enrollment_token_hash', 'text', (c) => c.unique())
    .addColumn('enrollment_expires_at', 'text')
    .addColumn('public_key', 'text')
    .addColumn('enrolled_name', 'text')
    .addColumn('enrolled_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('last_seen_at', 'text')
    .addUniqueConstraint('gateways_owner_name', ['owner_id', 'name'])
    .execute();
  // Keyed by the signed timestamp first: inserts append at the right edge of the B-tree and expired
  // nonces are one range at the left. A replay repeats the signed timestamp, so it still collides.
  await db.schema
    .createTable('gateway_nonces')
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('gateway_id', 'text', (c) => c.notNull())
    .addColumn('nonce', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('gateway_nonces_pk', ['at', 'gateway_id', 'nonce'])
    .execute();
  await db.schema
    .createTable('gateway_tables')
    .addColumn('gateway_id', 'text', (c) => c.primaryKey())
    .addColumn('rows', 'text', (c) => c.notNull())
    .addColumn('row_count', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('gateway_commands')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('gateway_id', 'text', (c) => c.notNull())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('gateway_commands_queue').on('gateway_commands').columns(['gateway_id', 'seq']).execute();
  await db.schema
    .createTable('discovery_registrations')
    // IDs start with the time, so new records append to the table's B-tree.
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('gateway_id', 'text', (c) => c.notNull())
    .addColumn('mac', 'text', (c) => c.notNull())
    .addColumn('ip', 'text', (c) => c.notNull())
    .addColumn('gateway_interface', 'text', (c) => c.notNull())
    .addColumn('interface_type', 'text', (c) => c.notNull())
    .addColumn('pxe', 'integer', (c) => c.notNull())
    .addColumn('hostname', 'text')
    .addColumn('decision', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('tips_id', 'text')
    .execute();
  await db.schema.createIndex('discovery_registrations_owner_at').on('discovery_registrations').columns(['owner_id', 'at']).execute();
  // Only refusals are looked up by MAC (T10), so only they are indexed by it.
  await db.schema
    .createIndex('discovery_registrations_refused_mac')
    .on('discovery_registrations')
    .columns(['mac', 'gateway_id'])
    .where(sql.ref('decision'), '=', 'blocked')
    .execute();
  await db.schema
    .createTable('discovery_blocks')
    .addColumn('metal_id', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('blocked_at', 'text', (c) => c.notNull())
    .execute();
}

/**
 * Migration 0016_scale (issue 13): a decision recorded once per registration. The gateway sends an
 * idempotency key with each registration and keeps it across its retries; the record carries it,
 * unique per gateway, so a retry of a registration whose answer was lost (a replica killed after
 * the commit) is answered from the record instead of adding a second one. Records made before, and
 * registrations sent without a key, have none (NULLs never collide).
 */
export async function up0016Scale(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('discovery_registrations').addColumn('idempotency_key', 'text').execute();
  await db.schema.createIndex('discovery_registrations_idempotency').on('discovery_registrations').columns(['gateway_id', 'idempotency_key']).unique().execute();
}
