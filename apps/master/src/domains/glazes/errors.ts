import { DomainError } from '../../http/errors.ts';

export type GlazeErrorCode =
  | 'glaze_not_found'
  | 'glaze_name_taken'
  | 'glaze_in_use'
  | 'upload_truncated'
  | 'upload_too_large'
  | 'upload_idle_timeout'
  | 'upload_aborted'
  | 'digest_mismatch'
  | 'range_not_satisfiable'
  | 'unsupported_media_type';

export class GlazeError extends DomainError<GlazeErrorCode> {
  constructor(code: GlazeErrorCode, message: string, field?: string) {
    super('glazes', code, message, field);
  }
}
