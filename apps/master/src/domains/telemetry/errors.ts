import { DomainError } from '../../http/errors.ts';

export type TelemetryErrorCode = 'invalid_telemetry' | 'rate_limited' | 'unauthenticated' | 'forbidden' | 'app_token_not_found' | 'invalid_app_token';

export class TelemetryError extends DomainError<TelemetryErrorCode> {
  constructor(
    code: TelemetryErrorCode,
    message: string,
    field?: string,
    /** rate_limited: seconds until a post is accepted again (Retry-After). */
    readonly retryAfter?: number,
  ) {
    super('telemetry', code, message, field);
  }
}
