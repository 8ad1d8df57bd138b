import { DomainError } from '../../http/errors.ts';

export type UpdateErrorCode =
  | 'unauthenticated'
  | 'forbidden'
  | 'reauth_required'
  | 'glaze_not_found'
  | 'space_not_found'
  | 'report_invalid'
  | 'report_malformed'
  | 'unsupported_media_type'
  | 'range_not_satisfiable'
  | 'invalid_profile'
  | 'invalid_tamper_report'
  | 'nothing_to_roll_back';

const SECURITY: ReadonlySet<UpdateErrorCode> = new Set<UpdateErrorCode>(['unauthenticated', 'forbidden', 'reauth_required', 'report_invalid']);

/** Errors of the Update Manager; refused authentication or authorization is a security event. */
export class UpdateError extends DomainError<UpdateErrorCode> {
  readonly security: boolean;
  constructor(code: UpdateErrorCode, message: string, field?: string) {
    super('updates', code, message, field);
    this.security = SECURITY.has(code);
  }
}
