import { DomainError } from '../../http/errors.ts';

export type DirectiveErrorCode = 'directive_malformed' | 'directive_untrusted' | 'directive_component_unknown' | 'directive_metal_required' | 'directive_metal_unexpected';

const SECURITY: ReadonlySet<DirectiveErrorCode> = new Set<DirectiveErrorCode>(['directive_untrusted']);

export class DirectiveError extends DomainError<DirectiveErrorCode> {
  readonly security: boolean;
  constructor(code: DirectiveErrorCode, message: string, field?: string) {
    super('directives', code, message, field);
    this.security = SECURITY.has(code);
  }
}
