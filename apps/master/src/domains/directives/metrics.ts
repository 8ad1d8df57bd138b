import { Counter, type Registry } from 'prom-client';
import type { EnrollmentService } from '../enrollment/service.ts';
import type { DirectiveService } from './service.ts';

/** Prometheus metrics of the metal life cycle (S14): retirements, superseded certificates, signed orders. */
export function installLifecycleMetrics(registry: Registry, enrollment: EnrollmentService, directives: DirectiveService): void {
  enrollment.useLifecycleMetrics({
    retired: new Counter({ name: 'tips_master_metals_retired_total', help: 'Metals retired (tips metal retire), first retirement only', registers: [registry] }),
    superseded: new Counter({ name: 'tips_master_certificates_superseded_total', help: 'Metal certificates superseded when a newer one was first used (renewal, re-enrollment order)', registers: [registry] }),
  });
  directives.useMetrics({
    published: new Counter({ name: 'tips_master_directives_published_total', help: 'Signed orders published to metals, by kind', labelNames: ['kind'] as const, registers: [registry] }),
  });
}
