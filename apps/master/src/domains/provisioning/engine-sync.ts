import type { FastifyInstance } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import type { ProvisioningService } from './service.ts';

/**
 * Reads back, every `intervalMs`, where the jobs of engines that install by themselves stand
 * (ProvisioningService.syncEngineJobs); one run at a time, stopped when the app closes.
 */
export function installEngineSync(app: FastifyInstance, provisioning: ProvisioningService, registry: Registry, intervalMs: number): void {
  const errors = new Counter({
    name: 'tips_master_phase1_engine_sync_errors_total',
    help: 'Phase 1 jobs whose engine could not say where they stand (e.g. kubectl failed, unreadable status file)',
    registers: [registry],
  });
  if (intervalMs <= 0) return;
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    provisioning
      .syncEngineJobs()
      .then((r) => {
        for (const e of r.errors) app.log.warn({ jobId: e.jobId, reason: e.message }, 'phase 1 engine status not readable');
        errors.inc(r.errors.length);
      })
      .catch((err: unknown) => app.log.error({ err }, 'phase 1 engine sync failed'))
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  timer.unref();
  app.addHook('onClose', async () => clearInterval(timer));
}
