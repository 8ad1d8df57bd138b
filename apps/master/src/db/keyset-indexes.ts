import type { Kysely } from 'kysely';

/**
 * Migration 0006: one composite index per paged list, matching its keyset order (db/keyset.ts), so
 * every page is a range scan `owner_id = ? AND (created_at, id) > (?, ?)` that stops after `limit`
 * rows — whatever the depth of the page and the size of the table.
 */
const LIST_INDEXES: [index: string, table: string, columns: string[]][] = [
  ['owners_keyset', 'owners', ['created_at', 'id']],
  ['api_tokens_keyset', 'api_tokens', ['owner_id', 'created_at', 'id']],
  ['metals_keyset', 'metals', ['owner_id', 'created_at', 'id']],
  ['spaces_keyset', 'spaces', ['owner_id', 'created_at', 'id']],
  ['glazes_keyset', 'glazes', ['owner_id', 'created_at', 'id']],
  ['gateways_keyset', 'gateways', ['owner_id', 'created_at', 'id']],
  ['operator_keys_keyset', 'operator_keys', ['owner_id', 'created_at', 'id']],
  ['enrollment_secrets_keyset', 'enrollment_secrets', ['owner_id', 'created_at', 'id']],
  ['enrollment_certificates_keyset', 'enrollment_certificates', ['owner_id', 'created_at', 'serial']],
  ['discovery_registrations_keyset', 'discovery_registrations', ['owner_id', 'at', 'id']],
];

export async function up0006ListKeysets(db: Kysely<unknown>): Promise<void> {
  for (const [index, table, columns] of LIST_INDEXES) await db.schema.createIndex(index).on(table).columns(columns).execute();
  // (owner_id, at, id) serves every query (owner_id, at) did.
  await db.schema.dropIndex('discovery_registrations_owner_at').execute();
}
