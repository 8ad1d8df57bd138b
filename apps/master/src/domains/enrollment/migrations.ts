import type { Kysely } from 'kysely';
import { up0003Keys } from '../keys/migrations.ts';
import { up0003Tokens } from '../tokens/migrations.ts';
import { up0011Directives } from '../directives/migrations.ts';

/**
 * 0003_enrollment — identity and trust: enrollment secrets (stored hashed), every certificate the
 * master issued (with its public key, for token binding), PoP challenges and operator keys.
 */
export async function up0003Enrollment(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('enrollment_secrets')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('scope_kind', 'text', (c) => c.notNull())
    .addColumn('scope_id', 'text', (c) => c.notNull())
    .addColumn('secret_hash', 'text', (c) => c.notNull().unique())
    .addColumn('max_uses', 'integer', (c) => c.notNull())
    .addColumn('uses', 'integer', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('revoked_at', 'text')
    .execute();
  await db.schema.createIndex('enrollment_secrets_owner').on('enrollment_secrets').column('owner_id').execute();
  await db.schema
    .createTable('enrollment_certificates')
    .addColumn('serial', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('subject_kind', 'text', (c) => c.notNull())
    .addColumn('subject_id', 'text', (c) => c.notNull())
    .addColumn('fingerprint', 'text', (c) => c.notNull().unique())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('not_before', 'text', (c) => c.notNull())
    .addColumn('not_after', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('issued_via', 'text', (c) => c.notNull())
    .addColumn('secret_id', 'text')
    .addColumn('revoked_at', 'text')
    .addColumn('revoke_reason', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('enrollment_certificates_subject').on('enrollment_certificates').columns(['subject_kind', 'subject_id']).execute();
  await up0003Tokens(db);
  await up0003Keys(db);
}

/**
 * 0011_lifecycle — S14: `enrollment_retirements`, the metals retired (`tips metal retire`), so a
 * retired metal never enrolls again whatever secret it shows (the rows of `enrollment_certificates`
 * say which certificates retirement revoked); and the directives domain's table of signed orders.
 */
export async function up0011Lifecycle(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('enrollment_retirements')
    .addColumn('metal_id', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('retired_at', 'text', (c) => c.notNull())
    .execute();
  await up0011Directives(db);
}
