import type { Metal } from '../metals/model.ts';
import type { Engine, Phase1Job } from './model.ts';

/**
 * The port between the provisioner and whatever boots and installs a metal (Fig. 6: provisioner →
 * engine). `start` is called once a job has its Glaze pinned; the engine says which state the job
 * is in afterwards and, in `detail`, what it did.
 */
export interface ProvisioningEngine {
  readonly name: Engine;
  start(job: Phase1Job, metal: Metal): Promise<{ state: 'queued' | 'booting'; detail: string | null }>;
  /**
   * Engines that run the install themselves (not through the TIPS installer's signed report) say
   * where a job they started stands; null when they know nothing new (nothing applied yet, no status).
   */
  status?(job: Phase1Job): Promise<EngineStatus | null>;
}

/** Where an engine says a job stands. */
export interface EngineStatus {
  state: 'booting' | 'installing' | 'installed' | 'failed';
  reason: string | null;
  detail: string | null;
}

/**
 * The builtin engine: the gateway's PXE/TFTP/HTTP boot path and the TIPS installer. Nothing to do
 * when a job is queued — the metal's next PXE boot asks the gateway for its script (A3 boot-script),
 * which moves the job to `booting`.
 */
export class BuiltinEngine implements ProvisioningEngine {
  readonly name = 'builtin' as const;
  async start(): Promise<{ state: 'queued'; detail: null }> {
    return { state: 'queued', detail: null };
  }
}

/** iPXE scripts the builtin engine answers (CONTRACT A3); `base` is the gateway's boot URL. */
export const ipxeScripts = {
  booting: (base: string, jobId: string, token: string) =>
    [
      '#!ipxe',
      `kernel ${base}/boot/installer/vmlinuz console=tty0 console=ttyS0,115200 tips.boot=${base} tips.job=${jobId} tips.token=${token}`,
      `initrd ${base}/boot/installer/initrd.img`,
      'boot',
      '',
    ].join('\n'),
  waiting: (base: string) => ['#!ipxe', 'echo TIPS: the default Space has no Glaze yet; waiting', 'sleep 30', `chain ${base}/boot/script.ipxe`, ''].join('\n'),
  finished: (state: string, reason: string | null) => ['#!ipxe', `echo TIPS: ${state} (${reason ?? (state === 'installed' ? 'ok' : 'no reason given')}); booting from disk`, 'exit', ''].join('\n'),
  otherEngine: (engine: string) => ['#!ipxe', `echo TIPS: this metal is provisioned by the ${engine} engine; booting from disk`, 'exit', ''].join('\n'),
};
