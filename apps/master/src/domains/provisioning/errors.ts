import { DomainError } from '../../http/errors.ts';

export type ProvisioningErrorCode =
  | 'unknown_metal'
  | 'no_default_space'
  | 'job_not_found'
  | 'phase1_token_invalid'
  | 'job_claimed'
  | 'waiting_for_glaze'
  | 'job_not_installing'
  | 'report_invalid'
  | 'job_running'
  | 'glaze_unavailable'
  | 'range_not_satisfiable'
  | 'invalid_base'
  | 'invalid_installer_key'
  | 'report_malformed'
  | 'wrong_mac'
  | 'report_media_type';

/** Refusals that are security events: logged with `securityEvent`, and they change nothing. */
const SECURITY: ReadonlySet<ProvisioningErrorCode> = new Set<ProvisioningErrorCode>(['phase1_token_invalid', 'job_claimed', 'report_invalid', 'job_not_installing', 'wrong_mac']);

export class ProvisioningError extends DomainError<ProvisioningErrorCode> {
  readonly security: boolean;
  constructor(code: ProvisioningErrorCode, message: string, field?: string) {
    super('provisioning', code, message, field);
    this.security = SECURITY.has(code);
  }
}
