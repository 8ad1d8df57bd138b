import type { OwnerId } from '@tips/core';

/**
 * An enrollment secret (S6, the documents' pre-shared key): enrolls one metal, or any metal of one
 * Phase 1 Space; one-time or N-use; expiring. Only its SHA-256 is stored.
 */
export interface EnrollmentSecret {
  id: string;
  ownerId: OwnerId;
  scope: { kind: 'metal' | 'space'; id: string };
  /**
   * 'secret': a pre-shared secret (HTTP Basic on EST). 'image-key': the paper's mode (T14) — the
   * public key of a key pair baked into the Phase 1 image; the CSR signed with it authenticates.
   */
  method: 'secret' | 'image-key';
  maxUses: number;
  uses: number;
  expiresAt: string;
  createdAt: string;
  revokedAt: string | null;
}

export type CertificateSubjectKind = 'metal' | 'gateway';
export type CertificateStatus = 'active' | 'revoked';
export type RevokeReason = 'superseded' | 'blocked' | 'retired' | 'deleted' | 'operator';

/** A certificate the master's intermediate issued (the record revocation checks consult). */
export interface IssuedCertificate {
  serial: string;
  ownerId: OwnerId;
  subject: { kind: CertificateSubjectKind; id: string };
  fingerprint: string;
  /** SubjectPublicKeyInfo DER of the certified key, base64. */
  publicKey: string;
  notBefore: string;
  notAfter: string;
  status: CertificateStatus;
  issuedVia: 'enroll' | 'reenroll';
  secretId: string | null;
  revokedAt: string | null;
  revokeReason: string | null;
  createdAt: string;
}

/** Who is at the other end of an mTLS connection on the metal API. */
export interface MetalPrincipal {
  metalId: string;
  ownerId: OwnerId;
  serial: string;
  fingerprint: string;
  notAfter: string;
  /** SubjectPublicKeyInfo DER of the certificate's key (proof-of-possession binding). */
  spki: Uint8Array;
}

export const SECRET_PREFIX = 'est_';
/** How an image key's hash is told apart from a secret's in storage. */
export const IMAGE_KEY_PREFIX = 'spki:';
export const DEFAULT_SECRET_TTL_MINUTES = 24 * 60;
export const MAX_SECRET_TTL_MINUTES = 365 * 24 * 60;
export const MAX_SECRET_USES = 100_000;
/** EST attempts refused per remote address within one window before it is throttled: the ceiling over all identities (metals behind one site's NAT share an address). */
export const MAX_FAILED_ENROLLMENTS = 200;
/** EST attempts refused per (remote address, presented identity) within one window before that identity is throttled there. */
export const MAX_FAILED_ENROLLMENTS_PER_IDENTITY = 10;
/** Throttle entries kept per process; the oldest go first. */
export const MAX_TRACKED_FAILURES = 20_000;
export const FAILED_ENROLLMENT_WINDOW_MS = 60_000;
/** Metal certificates are short-lived: a week by default, renewed by simplereenroll. */
export const DEFAULT_CERT_LIFETIME_HOURS = 7 * 24;
