import { Counter, type Registry } from 'prom-client';
import type { BootstrapService } from './service.ts';

/** Prometheus: onboardings by result — registered, enrolled, or the refusal's code. */
export function installBootstrapMetrics(registry: Registry, b: BootstrapService): void {
  b.useMetrics({
    onboardings: new Counter({
      name: 'tips_master_onboardings_total',
      help: 'Zero-touch onboarding steps by result: registered (metal made), enrolled (EST done), or the refusal code (attestation_failed, voucher_used, no_profile, guid_unknown, registration_failed, voucher_refused, onboarding_malformed)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
  });
}
