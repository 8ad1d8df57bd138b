import type { OwnerId } from '@tips/core';
import type { Db } from '../../db/database.ts';
import { applyKeyset, type KeysetWindow } from '../../db/keyset.ts';
import { type CertificateSubjectKind, type EnrollmentSecret, IMAGE_KEY_PREFIX, type IssuedCertificate, type RevokeReason } from './model.ts';
import type { EnrollmentStore } from './store.ts';
import type { EnrollmentCertificatesTable, EnrollmentSecretsTable } from './tables.ts';

const toSecret = (r: EnrollmentSecretsTable): EnrollmentSecret => ({
  id: r.id,
  ownerId: r.owner_id as OwnerId,
  scope: { kind: r.scope_kind as 'metal' | 'space', id: r.scope_id },
  method: r.secret_hash.startsWith(IMAGE_KEY_PREFIX) ? 'image-key' : 'secret',
  maxUses: Number(r.max_uses),
  uses: Number(r.uses),
  expiresAt: r.expires_at,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
});

const toCert = (r: EnrollmentCertificatesTable): IssuedCertificate => ({
  serial: r.serial,
  ownerId: r.owner_id as OwnerId,
  subject: { kind: r.subject_kind as CertificateSubjectKind, id: r.subject_id },
  fingerprint: r.fingerprint,
  publicKey: r.public_key,
  notBefore: r.not_before,
  notAfter: r.not_after,
  status: r.status as 'active' | 'revoked',
  issuedVia: r.issued_via as 'enroll' | 'reenroll',
  secretId: r.secret_id,
  revokedAt: r.revoked_at,
  revokeReason: r.revoke_reason,
  createdAt: r.created_at,
});

const certRow = (c: IssuedCertificate): EnrollmentCertificatesTable => ({
  serial: c.serial,
  owner_id: c.ownerId,
  subject_kind: c.subject.kind,
  subject_id: c.subject.id,
  fingerprint: c.fingerprint,
  public_key: c.publicKey,
  not_before: c.notBefore,
  not_after: c.notAfter,
  status: c.status,
  issued_via: c.issuedVia,
  secret_id: c.secretId,
  revoked_at: c.revokedAt,
  revoke_reason: c.revokeReason,
  created_at: c.createdAt,
});

/** The enrollment store on Kysely: the same queries on SQLite and PostgreSQL. */
export class KyselyEnrollmentStore implements EnrollmentStore {
  constructor(private readonly db: Db) {}

  async insertSecret(s: EnrollmentSecret, secretHash: string): Promise<void> {
    await this.db
      .insertInto('enrollment_secrets')
      .values({
        id: s.id,
        owner_id: s.ownerId,
        scope_kind: s.scope.kind,
        scope_id: s.scope.id,
        secret_hash: secretHash,
        max_uses: s.maxUses,
        uses: s.uses,
        expires_at: s.expiresAt,
        created_at: s.createdAt,
        revoked_at: s.revokedAt,
      })
      .execute();
  }

  async findSecret(id: string): Promise<{ secret: EnrollmentSecret; secretHash: string } | undefined> {
    const r = await this.db.selectFrom('enrollment_secrets').selectAll().where('id', '=', id).executeTakeFirst();
    return r && { secret: toSecret(r), secretHash: r.secret_hash };
  }

  async findSecretByHash(secretHash: string): Promise<EnrollmentSecret | undefined> {
    const r = await this.db.selectFrom('enrollment_secrets').selectAll().where('secret_hash', '=', secretHash).executeTakeFirst();
    return r && toSecret(r);
  }

  async listSecrets(ownerId: OwnerId, window?: KeysetWindow): Promise<EnrollmentSecret[]> {
    const rows = await applyKeyset(this.db.selectFrom('enrollment_secrets').selectAll().where('owner_id', '=', ownerId), 'created_at', 'id', window).execute();
    return rows.map(toSecret);
  }

  async revokeSecret(ownerId: OwnerId, id: string, at: string): Promise<boolean> {
    const r = await this.db
      .updateTable('enrollment_secrets')
      .set({ revoked_at: at })
      .where('id', '=', id)
      .where('owner_id', '=', ownerId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async enrollWithSecret(secretId: string, now: string, cert: IssuedCertificate): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const used = await tx
        .updateTable('enrollment_secrets')
        .set((eb) => ({ uses: eb('uses', '+', 1) }))
        .where('id', '=', secretId)
        .where((eb) => eb('uses', '<', eb.ref('max_uses')))
        .where('expires_at', '>', now)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (Number(used.numUpdatedRows) !== 1) return false;
      await tx.insertInto('enrollment_certificates').values(certRow(cert)).execute();
      return true;
    });
  }

  async reenroll(previousSerial: string, _now: string, cert: IssuedCertificate): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const prev = await tx.selectFrom('enrollment_certificates').select('serial').where('serial', '=', previousSerial).where('status', '=', 'active').executeTakeFirst();
      if (!prev) return false;
      await tx.insertInto('enrollment_certificates').values(certRow(cert)).execute();
      return true;
    });
  }

  async supersedeOlder(cert: IssuedCertificate, now: string): Promise<number> {
    const r = await this.db
      .updateTable('enrollment_certificates')
      .set({ status: 'revoked', revoked_at: now, revoke_reason: 'superseded' })
      .where('subject_kind', '=', cert.subject.kind)
      .where('subject_id', '=', cert.subject.id)
      .where('status', '=', 'active')
      .where('serial', '!=', cert.serial)
      .where('created_at', '<=', cert.createdAt)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  async findCertificate(serial: string): Promise<IssuedCertificate | undefined> {
    const r = await this.db.selectFrom('enrollment_certificates').selectAll().where('serial', '=', serial).executeTakeFirst();
    return r && toCert(r);
  }

  async listCertificates(ownerId: OwnerId, subject?: { kind: string; id: string }, window?: KeysetWindow): Promise<IssuedCertificate[]> {
    let q = this.db.selectFrom('enrollment_certificates').selectAll().where('owner_id', '=', ownerId);
    if (subject) q = q.where('subject_kind', '=', subject.kind).where('subject_id', '=', subject.id);
    const rows = await applyKeyset(q, 'created_at', 'serial', window).execute();
    return rows.map(toCert);
  }

  async revokeSubject(subject: { kind: string; id: string }, at: string, reason: RevokeReason): Promise<number> {
    const r = await this.db
      .updateTable('enrollment_certificates')
      .set({ status: 'revoked', revoked_at: at, revoke_reason: reason })
      .where('subject_kind', '=', subject.kind)
      .where('subject_id', '=', subject.id)
      .where('status', '=', 'active')
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  async revokeCertificate(ownerId: OwnerId, serial: string, at: string, reason: RevokeReason): Promise<boolean> {
    const r = await this.db
      .updateTable('enrollment_certificates')
      .set({ status: 'revoked', revoked_at: at, revoke_reason: reason })
      .where('serial', '=', serial)
      .where('owner_id', '=', ownerId)
      .where('status', '=', 'active')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async retire(ownerId: OwnerId, metalId: string, at: string): Promise<{ retiredAt: string; certificates: number; secrets: number }> {
    return this.db.transaction().execute(async (tx) => {
      const existing = await tx.selectFrom('enrollment_retirements').select('retired_at').where('metal_id', '=', metalId).executeTakeFirst();
      if (!existing) await tx.insertInto('enrollment_retirements').values({ metal_id: metalId, owner_id: ownerId, retired_at: at }).execute();
      const certs = await tx
        .updateTable('enrollment_certificates')
        .set({ status: 'revoked', revoked_at: at, revoke_reason: 'retired' })
        .where('subject_kind', '=', 'metal')
        .where('subject_id', '=', metalId)
        .where('status', '=', 'active')
        .executeTakeFirst();
      const secrets = await tx
        .updateTable('enrollment_secrets')
        .set({ revoked_at: at })
        .where('scope_kind', '=', 'metal')
        .where('scope_id', '=', metalId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return { retiredAt: existing?.retired_at ?? at, certificates: Number(certs.numUpdatedRows), secrets: Number(secrets.numUpdatedRows) };
    });
  }

  async retiredAt(metalId: string): Promise<string | undefined> {
    const r = await this.db.selectFrom('enrollment_retirements').select('retired_at').where('metal_id', '=', metalId).executeTakeFirst();
    return r?.retired_at;
  }
}
