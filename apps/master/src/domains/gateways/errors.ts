import { DomainError } from '../../http/errors.ts';

export type GatewayErrorCode = 'gateway_not_found' | 'gateway_name_taken' | 'enrollment_failed' | 'gateway_auth_failed' | 'table_too_large' | 'invalid_table' | 'table_changed';

export class GatewayError extends DomainError<GatewayErrorCode> {
  constructor(code: GatewayErrorCode, message: string, field?: string) {
    super('gateways', code, message, field);
  }
}
