export interface InstallContext { payloadPath: string; glaze: { id: string; name: string; version: string; sha256: string };
  stateDir: string; log: import('pino').Logger }
export interface InstallHandler { readonly name: 'archive' | 'rootfs-ab' | 'systemd-service' | 'script';
  /** Installs power-safely; resolves when committed, rejects (InstallError) after rolling back. */
  install(ctx: InstallContext): Promise<{ committed: true }>;
  /** Called at every start: finishes or rolls back an install a kill interrupted. */
  recover(stateDir: string, log: import('pino').Logger): Promise<'clean' | 'finished' | 'rolled_back'>; }
