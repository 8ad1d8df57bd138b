import { DomainError } from '../../http/errors.ts';

export type ConstrainedErrorCode =
  | 'psk_not_found'
  | 'psk_limit_reached'
  | 'metal_retired'
  /** CoAP side: the DTLS identity names no live credential (unknown, revoked, or a plain-UDP peer). */
  | 'peer_unauthenticated'
  | 'metal_blocked'
  | 'invalid_body'
  | 'unsupported_content_format'
  | 'not_acceptable';

export class ConstrainedError extends DomainError<ConstrainedErrorCode> {
  constructor(code: ConstrainedErrorCode, message: string, field?: string) {
    super('constrained', code, message, field);
  }
}
