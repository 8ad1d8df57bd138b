import type { OwnerId } from '@tips/core';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { EnrollmentSecret, IssuedCertificate, RevokeReason } from './model.ts';

/** Storage port of the enrollment domain (tables `enrollment_secrets`, `enrollment_certificates`). */
export interface EnrollmentStore {
  insertSecret(secret: EnrollmentSecret, secretHash: string): Promise<void>;
  findSecret(id: string): Promise<{ secret: EnrollmentSecret; secretHash: string } | undefined>;
  findSecretByHash(secretHash: string): Promise<EnrollmentSecret | undefined>;
  /** Oldest first by (createdAt, id); with a window, at most `limit` after its position. */
  listSecrets(ownerId: OwnerId, window?: KeysetWindow): Promise<EnrollmentSecret[]>;
  revokeSecret(ownerId: OwnerId, id: string, at: string): Promise<boolean>;
  /**
   * In one transaction: counts one use of the secret — only while uses < max, unexpired at `now`
   * and not revoked (a conditional UPDATE, exact under concurrency) — then records `cert`. False, and
   * nothing written, when no use was left. Older certificates stay until `cert` is proven (supersedeOlder).
   */
  enrollWithSecret(secretId: string, now: string, cert: IssuedCertificate): Promise<boolean>;
  /** In one transaction: records `cert` if `previousSerial` is still active (which stays so until `cert` is proven). False when it was not active. */
  reenroll(previousSerial: string, now: string, cert: IssuedCertificate): Promise<boolean>;
  /**
   * `cert` was just used (proven to be in the metal's hands): revokes (superseded) the subject's other
   * active certificates issued no later than it. Returns how many.
   */
  supersedeOlder(cert: IssuedCertificate, now: string): Promise<number>;
  findCertificate(serial: string): Promise<IssuedCertificate | undefined>;
  /** Oldest first by (createdAt, serial); with a window, at most `limit` after its position. */
  listCertificates(ownerId: OwnerId, subject?: { kind: string; id: string }, window?: KeysetWindow): Promise<IssuedCertificate[]>;
  /** Revokes every active certificate of a subject; returns how many. */
  revokeSubject(subject: { kind: string; id: string }, at: string, reason: RevokeReason): Promise<number>;
  revokeCertificate(ownerId: OwnerId, serial: string, at: string, reason: RevokeReason): Promise<boolean>;
  /**
   * S14 retirement, in one transaction: records the metal retired (once; the first time stays),
   * revokes its active certificates (reason `retired`) and its unrevoked metal-scoped secrets.
   */
  retire(ownerId: OwnerId, metalId: string, at: string): Promise<{ retiredAt: string; certificates: number; secrets: number }>;
  /** When the metal was retired, or undefined. */
  retiredAt(metalId: string): Promise<string | undefined>;
}
