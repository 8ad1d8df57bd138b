/**
 * Tables of the enrollment domain. They join the master's `Database` type by module augmentation,
 * so the shared schema file stays untouched by this domain.
 */
export interface EnrollmentSecretsTable {
  id: string;
  owner_id: string;
  /** 'metal' or 'space': what the secret may enroll. */
  scope_kind: string;
  scope_id: string;
  /** SHA-256 hex of the secret, or `spki:` + SHA-256 hex of an image public key (T14). */
  secret_hash: string;
  max_uses: number;
  uses: number;
  expires_at: string;
  created_at: string;
  revoked_at: string | null;
}

export interface EnrollmentCertificatesTable {
  serial: string;
  owner_id: string;
  subject_kind: string;
  subject_id: string;
  fingerprint: string;
  /** SubjectPublicKeyInfo DER, base64. */
  public_key: string;
  not_before: string;
  not_after: string;
  /** 'active' or 'revoked'. */
  status: string;
  issued_via: string;
  secret_id: string | null;
  revoked_at: string | null;
  revoke_reason: string | null;
  created_at: string;
}

/** S14: a retired metal (0011_lifecycle) — its certificates revoked, never to enroll again. */
export interface EnrollmentRetirementsTable {
  metal_id: string;
  owner_id: string;
  retired_at: string;
}

declare module '../../db/schema.ts' {
  interface Database {
    enrollment_secrets: EnrollmentSecretsTable;
    enrollment_certificates: EnrollmentCertificatesTable;
    enrollment_retirements: EnrollmentRetirementsTable;
  }
}
