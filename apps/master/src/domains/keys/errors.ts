import { DomainError } from '../../http/errors.ts';

export type KeyErrorCode =
  | 'key_not_found'
  | 'key_name_taken'
  | 'key_already_registered'
  | 'key_invalid'
  | 'key_not_server_held'
  | 'manifest_malformed'
  | 'manifest_untrusted'
  | 'manifest_digest_mismatch'
  | 'manifest_not_found';

const SECURITY: ReadonlySet<KeyErrorCode> = new Set<KeyErrorCode>(['manifest_untrusted', 'manifest_digest_mismatch']);

export class KeyError extends DomainError<KeyErrorCode> {
  readonly security: boolean;
  constructor(code: KeyErrorCode, message: string, field?: string) {
    super('keys', code, message, field);
    this.security = SECURITY.has(code);
  }
}
