import type { CoapMetrics } from '@tips/coap';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ConstrainedService } from './service.ts';

/** Prometheus metrics of the CoAP endpoint and of PSK lookups (the DTLS handshakes' key source). */
export function installConstrainedMetrics(registry: Registry, constrained: ConstrainedService): void {
  const requests = new Counter({ name: 'tips_master_coap_requests_total', help: 'CoAP requests answered, by method and response code', labelNames: ['method', 'code'] as const, registers: [registry] });
  const blocks = new Counter({ name: 'tips_master_coap_block_transfers_total', help: 'Completed multi-block CoAP transfers, by direction (block1 in, block2 out)', labelNames: ['direction'] as const, registers: [registry] });
  const observers = new Gauge({ name: 'tips_master_coap_observers', help: 'CoAP observers registered', registers: [registry] });
  // One labelled child per (method, code): no label hashing per request on the Block2 path.
  const requestChildren = new Map<string, { inc(): void }>();
  const coap: CoapMetrics = {
    request: (method, code) => {
      const k = `${method} ${code}`;
      let c = requestChildren.get(k);
      if (!c) {
        c = requests.labels({ method, code });
        requestChildren.set(k, c);
      }
      c.inc();
    },
    blockTransfer: (direction) => blocks.inc({ direction }),
    observers: (n) => observers.set(n),
  };
  constrained.useMetrics({
    pskLookups: new Counter({ name: 'tips_master_psk_lookups_total', help: 'DTLS PSK identity lookups, by result (ok, unknown, revoked, retired)', labelNames: ['result'] as const, registers: [registry] }),
    transferLookups: new Counter({
      name: 'tips_master_coap_blob_transfer_lookups_total',
      help: 'Block2 payload requests by how they found their transfer: hit (served without re-checking), miss (new transfer), recheck (revocation signal or 1 s passed: re-authenticated)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    coap,
  });
}

