import { DomainError } from '../../http/errors.ts';

export type TokenErrorCode =
  | 'token_malformed'
  | 'token_signature_invalid'
  | 'token_issuer_unknown'
  | 'token_expired'
  | 'token_not_yet_valid'
  | 'token_audience_mismatch'
  | 'token_scope_insufficient'
  | 'pop_required'
  | 'pop_invalid'
  | 'challenge_invalid'
  | 'holder_key_invalid'
  | 'scope_invalid'
  | 'upload_token_required'
  | 'token_owner_mismatch';

const NOT_SECURITY: ReadonlySet<TokenErrorCode> = new Set<TokenErrorCode>(['holder_key_invalid', 'scope_invalid']);

/** Token errors; every refusal of a presented token is a security event. */
export class TokenError extends DomainError<TokenErrorCode> {
  readonly security: boolean;
  constructor(code: TokenErrorCode, message: string, field?: string) {
    super('tokens', code, message, field);
    this.security = !NOT_SECURITY.has(code);
  }
}
