import type { FastifyInstance } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import type { ProvisioningService } from './service.ts';

/** Prometheus counters of Phase 1 jobs, and a log line per transition (never a token or key). */
export function installProvisioningMetrics(app: FastifyInstance, provisioning: ProvisioningService, registry: Registry): void {
  const jobs = new Counter({
    name: 'tips_master_phase1_jobs_total',
    help: 'Phase 1 jobs that reached each state (created in it, or moved to it)',
    labelNames: ['state'] as const,
    registers: [registry],
  });
  const transitions = new Counter({
    name: 'tips_master_phase1_transitions_total',
    help: 'Phase 1 job transitions by from and to state (from="none": created)',
    labelNames: ['from', 'to', 'engine'] as const,
    registers: [registry],
  });
  provisioning.onTransition((from, to, job) => {
    jobs.inc({ state: to });
    transitions.inc({ from: from ?? 'none', to, engine: job.engine });
    app.log.info({ jobId: job.id, metalId: job.metalId, from, to, reason: job.reason, engine: job.engine }, 'phase 1 job transition');
  });
}
