import { DomainError } from '../../http/errors.ts';

export type SessionErrorCode = 'unauthenticated' | 'csrf_failed';

export class SessionError extends DomainError<SessionErrorCode> {
  constructor(code: SessionErrorCode, message: string, field?: string) {
    super('sessions', code, message, field);
  }
}
