import type { VoucherErrorCode } from '@tips/onboarding';
import { DomainError } from '../../http/errors.ts';

/** The chain failures keep @tips/onboarding's codes, so a client matches on the same code everywhere. */
export type VoucherDomainErrorCode =
  | Exclude<VoucherErrorCode, 'voucher_not_current_owner' | 'credential_invalid' | 'voucher_bad_input'>
  | 'voucher_conflict'
  | 'voucher_not_found'
  | 'onboarding_key_not_found'
  | 'onboarding_key_name_taken'
  /** Registering at rendezvous: no rendezvous address answered, or each refused (the message says why). */
  | 'rendezvous_failed'
  /** TO2: no voucher on this master for the device's GUID. */
  | 'guid_unknown'
  | 'onboarding_malformed';

export class VoucherDomainError extends DomainError<VoucherDomainErrorCode> {
  constructor(code: VoucherDomainErrorCode, message: string, field?: string) {
    super('vouchers', code, message, field);
  }
}
