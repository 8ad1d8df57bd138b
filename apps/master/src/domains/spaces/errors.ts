import { DomainError } from '../../http/errors.ts';

export type SpaceErrorCode =
  | 'space_not_found'
  | 'space_name_taken'
  | 'default_space_must_be_phase1'
  | 'interface_not_found'
  | 'phase1_needs_one_pxe_interface'
  | 'member_not_found'
  | 'glaze_not_allowed_in_space';

export class SpaceError extends DomainError<SpaceErrorCode> {
  constructor(code: SpaceErrorCode, message: string, field?: string) {
    super('spaces', code, message, field);
  }
}
