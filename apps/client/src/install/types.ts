/** Install handlers (contract D): each installs one Glaze power-safely and recovers at every start. */
export interface InstallContext {
  payloadPath: string;
  glaze: { id: string; name: string; version: string; sha256: string };
  stateDir: string;
  log: import('pino').Logger;
}

export interface InstallHandler {
  readonly name: 'archive' | 'rootfs-ab' | 'systemd-service' | 'script';
  /** Installs power-safely; resolves when committed, rejects (InstallError) after rolling back. */
  install(ctx: InstallContext): Promise<{ committed: true }>;
  /** Called at every start: finishes or rolls back an install a kill interrupted. */
  recover(stateDir: string, log: import('pino').Logger): Promise<'clean' | 'finished' | 'rolled_back'>;
}

export type InstallErrorCode = 'install_input_invalid' | 'unpack_failed' | 'script_failed' | 'health_check_failed' | 'write_failed' | 'handler_unknown';

export class InstallError extends Error {
  constructor(
    readonly code: InstallErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'InstallError';
  }
}

const SAFE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;

/** A Glaze name or version used as a path component: no slash, no dot-dot, no hidden names. */
export function safeSegment(v: string, what: string): string {
  if (!SAFE.test(v) || v.includes('..')) throw new InstallError('install_input_invalid', `${what}: "${v.slice(0, 60)}" cannot name a directory`);
  return v;
}
