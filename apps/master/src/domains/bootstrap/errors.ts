import { DomainError } from '../../http/errors.ts';

export type BootstrapErrorCode =
  | 'profile_not_found'
  | 'profile_name_taken'
  | 'profile_invalid'
  | 'onboarding_not_found'
  /** TO2: no voucher on this master for the GUID (or none imported yet). */
  | 'guid_unknown'
  /** TO2: the voucher already brought a device in (enrolled): a replay, or a second device with a copied credential. */
  | 'voucher_used'
  /** TO2: no bootstrapping profile matches the device. */
  | 'no_profile'
  /** TO2: the proof, the nonce or the attestation evidence was refused (the record says why). */
  | 'attestation_failed'
  /** TO2: the device's facts cannot become a Metal Object (a MAC another metal has, no PXE interface for a Phase 1 Space, …). */
  | 'registration_failed'
  | 'onboarding_malformed';

export class BootstrapError extends DomainError<BootstrapErrorCode> {
  constructor(code: BootstrapErrorCode, message: string, field?: string) {
    super('bootstrap', code, message, field);
  }
}
