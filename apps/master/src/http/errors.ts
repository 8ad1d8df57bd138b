/**
 * Every domain has one error class with a literal `code` union; only routes map codes to HTTP
 * statuses, each domain in one table registered here. The body shape is the same everywhere:
 * `{ error: { code, message, field? }, requestId }`.
 */
export class DomainError<C extends string = string> extends Error {
  constructor(
    readonly domain: string,
    readonly code: C,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export type StatusTable<C extends string> = Record<C, number>;

const tables = new Map<string, Record<string, number>>();

export function registerStatusTable<C extends string>(domain: string, table: StatusTable<C>): void {
  tables.set(domain, table);
}

export function statusOf(err: DomainError): number {
  return tables.get(err.domain)?.[err.code] ?? 500;
}

export interface ErrorBody {
  error: { code: string; message: string; field?: string };
  requestId: string;
}

export const ErrorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' }, field: { type: 'string' } },
      required: ['code', 'message'],
    },
    requestId: { type: 'string' },
  },
  required: ['error', 'requestId'],
} as const;
