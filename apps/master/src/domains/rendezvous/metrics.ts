import { Counter, type Registry } from 'prom-client';
import type { RendezvousService } from './service.ts';

/** Prometheus metrics of the rendezvous server: each TO0/TO1 request by step and result (ok or the error code). */
export function installRendezvousMetrics(registry: Registry, rendezvous: RendezvousService): void {
  rendezvous.useMetrics(
    new Counter({ name: 'tips_master_rendezvous_requests_total', help: 'Rendezvous requests (TO0 registrations, TO1 challenges and proofs), by step and result (ok or the error code)', labelNames: ['step', 'result'] as const, registers: [registry] }),
  );
}
