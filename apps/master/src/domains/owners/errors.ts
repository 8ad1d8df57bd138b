import { DomainError } from '../../http/errors.ts';

export type OwnerErrorCode = 'unauthenticated' | 'forbidden' | 'owner_not_found' | 'owner_name_taken' | 'token_not_found';

export class OwnerError extends DomainError<OwnerErrorCode> {
  constructor(code: OwnerErrorCode, message: string, field?: string) {
    super('owners', code, message, field);
  }
}
