import { DomainError } from '../../http/errors.ts';

export type EnrollmentErrorCode =
  | 'secret_not_found'
  | 'enrollment_unauthenticated'
  | 'enrollment_secret_invalid'
  | 'enrollment_secret_exhausted'
  | 'enrollment_secret_expired'
  | 'csr_malformed'
  | 'csr_signature_invalid'
  | 'csr_key_unsupported'
  | 'csr_identity_missing'
  | 'csr_identity_mismatch'
  | 'https_required'
  | 'unsupported_media_type'
  | 'client_certificate_required'
  | 'client_certificate_invalid'
  | 'certificate_unknown'
  | 'certificate_revoked'
  | 'certificate_expired'
  | 'certificate_not_accepted_here'
  | 'certificate_not_found'
  | 'metal_blocked'
  | 'metal_retired'
  | 'too_many_attempts'
  | 'scope_invalid';

/** Codes that mean someone tried to get in without the right to: logged as security events. */
const SECURITY: ReadonlySet<EnrollmentErrorCode> = new Set<EnrollmentErrorCode>([
  'enrollment_unauthenticated',
  'enrollment_secret_invalid',
  'enrollment_secret_exhausted',
  'enrollment_secret_expired',
  'csr_signature_invalid',
  'csr_identity_mismatch',
  'client_certificate_required',
  'client_certificate_invalid',
  'certificate_unknown',
  'certificate_revoked',
  'certificate_expired',
  'certificate_not_accepted_here',
  'metal_blocked',
  'metal_retired',
  'too_many_attempts',
]);

export class EnrollmentError extends DomainError<EnrollmentErrorCode> {
  readonly security: boolean;
  constructor(code: EnrollmentErrorCode, message: string, field?: string) {
    super('enrollment', code, message, field);
    this.security = SECURITY.has(code);
  }
}
