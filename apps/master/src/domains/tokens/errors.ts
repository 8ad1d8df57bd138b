import type { TokenCheckCode } from '@tips/trust';
import { DomainError } from '../../http/errors.ts';

/** The one-hop check's codes (shared with the metal side in @tips/trust) plus the master's own. */
export type TokenErrorCode =
  | TokenCheckCode
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
