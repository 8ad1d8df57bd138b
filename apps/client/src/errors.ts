/** The client's one error type: code-matched, never message-matched. */
export type ClientErrorCode =
  | 'config_invalid'
  | 'config_missing'
  | 'enrollment_missing'
  | 'enrollment_invalid'
  | 'not_enrolled'
  | 'est_refused'
  | 'est_bad_response'
  | 'master_unreachable'
  | 'unauthenticated'
  | 'forbidden'
  | 'master_error'
  | 'download_failed'
  | 'install_failed'
  /** Bad command-line input (exit 2). */
  | 'usage'
  /** Zero-touch onboarding refused or failed (the message names the step and the owner's reason). */
  | 'onboarding_failed'
  | 'onboarding_refused';

export class ClientError extends Error {
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    /** The master's error code, when the master refused. */
    readonly remoteCode?: string,
  ) {
    super(message);
    this.name = 'ClientError';
  }
}

/** Exit codes, as `tips` uses them: 0 ok, 1 failure, 2 usage, 3 authentication, 7 master unreachable. */
export const EXIT = { ok: 0, failure: 1, usage: 2, auth: 3, unreachable: 7 } as const;

export function exitCodeOf(e: unknown): number {
  if (!(e instanceof ClientError)) return EXIT.failure;
  if (e.code === 'est_refused' || e.code === 'unauthenticated' || e.code === 'forbidden' || e.code === 'onboarding_refused') return EXIT.auth;
  if (e.code === 'master_unreachable') return EXIT.unreachable;
  if (e.code === 'usage') return EXIT.usage;
  return EXIT.failure;
}
