import { Counter, Gauge, type Registry } from 'prom-client';
import type { BusHub } from './bus.ts';

/** Prometheus metrics of this replica's end of the bus. */
export function installBusMetrics(registry: Registry, hub: BusHub): void {
  hub.useMetrics({
    messages: new Counter({
      name: 'tips_master_bus_messages_total',
      help: 'Bus messages by direction (out: acknowledged by the bus, in: received from another replica, dropped: refused or not acknowledged within 1 s) and topic',
      labelNames: ['direction', 'topic'] as const,
      registers: [registry],
    }),
  });
  new Gauge({
    name: 'tips_master_bus_up',
    help: '1 while this replica is connected to the bus, 0 while it relies on its time-bound caches',
    labelNames: ['bus'] as const,
    registers: [registry],
    collect() {
      this.reset();
      this.set({ bus: hub.kind }, hub.up() ? 1 : 0);
    },
  });
}
