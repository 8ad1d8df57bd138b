import { DomainError } from '../../http/errors.ts';

export type DiscoveryErrorCode = 'metal_not_blocked' | 'idempotency_key_reused';

export class DiscoveryError extends DomainError<DiscoveryErrorCode> {
  constructor(code: DiscoveryErrorCode, message: string, field?: string) {
    super('discovery', code, message, field);
  }
}
