import type { FastifyInstance } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import type { Clock } from '../../ports.ts';
import type { GlazeService } from './service.ts';

export interface ReconcilerOptions {
  /** Only what was last written longer ago than this is removed (see GlazeService.reconcile). */
  graceMs: number;
  /** How often to reconcile after the start (orphans younger than the grace at start wait for it). */
  intervalMs: number;
  clock: Clock;
}

/** The grace period: well beyond the upload idle timeout, so no live upload is ever taken for dead. */
export const reconcileGraceMs = (uploadIdleTimeoutMs: number): number => Math.max(10 * 60_000, 2 * uploadIdleTimeoutMs);

/**
 * Reconciles the Glaze repository when the app starts (before it listens) and then periodically:
 * logs each removed blob and partial write, and counts them in
 * tips_master_glaze_reconciled_{bytes,files}_total{kind="blob"|"partial"}.
 */
export function installGlazeReconciler(app: FastifyInstance, glazes: GlazeService, registry: Registry, opts: ReconcilerOptions): void {
  const bytes = new Counter({
    name: 'tips_master_glaze_reconciled_bytes_total',
    help: 'Bytes removed by Glaze repository reconciliation: orphan blobs (kind=blob) and partial writes of dead uploads (kind=partial)',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const files = new Counter({
    name: 'tips_master_glaze_reconciled_files_total',
    help: 'Files removed by Glaze repository reconciliation, by kind (blob, partial)',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const run = async () => {
    const r = await glazes.reconcile(new Date(opts.clock.now().getTime() - opts.graceMs));
    for (const [kind, list] of [
      ['blob', r.blobs],
      ['partial', r.partials],
    ] as const) {
      if (list.length === 0) continue;
      const total = list.reduce((n, b) => n + b.size, 0);
      bytes.inc({ kind }, total);
      files.inc({ kind }, list.length);
      app.log.warn(
        { reconciled: kind, removed: list.map((b) => ({ key: b.key, bytes: b.size, modifiedAt: b.modifiedAt.toISOString() })), bytes: total },
        kind === 'blob'
          ? `removed ${list.length} orphan Glaze blob(s), ${total} bytes, that no Glaze references (an upload was interrupted before its row was committed): ${list.map((b) => b.key).join(', ')}`
          : `removed ${list.length} partial Glaze upload(s), ${total} bytes, left by interrupted uploads`,
      );
    }
  };
  let timer: NodeJS.Timeout | undefined;
  const runLogged = () => run().catch((err) => app.log.error({ err }, 'Glaze repository reconciliation failed; retrying at the next interval'));
  app.addHook('onReady', async () => {
    // Awaited, so what a crash left is gone (and logged) before the first request; a failure does not stop the start.
    await runLogged();
    timer = setInterval(runLogged, opts.intervalMs);
    timer.unref();
  });
  app.addHook('onClose', async () => clearInterval(timer));
}
