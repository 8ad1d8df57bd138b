import type { Kysely } from 'kysely';

/**
 * 0004_gateway_certificates — every TLS client certificate the master issued to a gateway
 * (`urn:tips:gateway:<id>`), by serial and fingerprint, so that one can be refused once revoked.
 */
export async function up0004GatewayCertificates(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('gateway_certificates')
    .addColumn('serial', 'text', (c) => c.primaryKey())
    .addColumn('gateway_id', 'text', (c) => c.notNull())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('fingerprint', 'text', (c) => c.notNull().unique())
    .addColumn('not_before', 'text', (c) => c.notNull())
    .addColumn('not_after', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('revoked_at', 'text')
    .execute();
  await db.schema.createIndex('gateway_certificates_gateway').on('gateway_certificates').column('gateway_id').execute();
}
