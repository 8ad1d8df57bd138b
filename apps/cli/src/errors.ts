/**
 * Exit codes scripts can rely on (documented in apps/cli/README.md):
 * 0 ok · 1 failure · 2 usage · 3 authentication/login · 4 not found · 5 conflict ·
 * 6 input refused · 7 master unreachable · 8 verification failed.
 */
export const EXIT = { ok: 0, failure: 1, usage: 2, auth: 3, notFound: 4, conflict: 5, invalid: 6, unreachable: 7, verification: 8 } as const;

export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode: number = EXIT.failure,
    readonly field?: string,
  ) {
    super(message);
  }
}

export function exitCodeForStatus(status: number): number {
  if (status === 401 || status === 403) return EXIT.auth;
  if (status === 404) return EXIT.notFound;
  if (status === 409) return EXIT.conflict;
  if (status >= 400 && status < 500) return EXIT.invalid;
  return EXIT.failure;
}

/** One line on stderr, never a stack trace. */
export function reportError(err: unknown): number {
  if (err instanceof CliError) {
    process.stderr.write(`error: ${err.code}: ${err.message}${err.field ? ` (field: ${err.field})` : ''}\n`);
    return err.exitCode;
  }
  process.stderr.write(`error: internal: ${(err as Error)?.message ?? String(err)}\n`);
  return EXIT.failure;
}
