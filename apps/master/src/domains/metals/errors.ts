import { DomainError } from '../../http/errors.ts';

export type MetalErrorCode =
  | 'metal_not_found'
  | 'metal_name_taken'
  | 'mac_taken'
  | 'duplicate_interface'
  | 'interfaces_in_use';

export class MetalError extends DomainError<MetalErrorCode> {
  constructor(code: MetalErrorCode, message: string, field?: string) {
    super('metals', code, message, field);
  }
}
