import { Counter, Gauge, type Registry } from 'prom-client';
import type { DeviceMgmtService } from './service.ts';

/**
 * Prometheus metrics of LwM2M device management: registrations by operation (updates/s is the rate
 * of op="update"), refusals, expiries, devices registered and online, firmware results.
 */
export function installDeviceMgmtMetrics(registry: Registry, devices: DeviceMgmtService): void {
  const registrations = new Counter({ name: 'tips_master_lwm2m_registrations_total', help: 'LwM2M registration and bootstrap interface operations accepted, by op (register, update, deregister, bootstrap)', labelNames: ['op'] as const, registers: [registry] });
  const refused = new Counter({ name: 'tips_master_lwm2m_refusals_total', help: 'LwM2M registration requests refused, by reason (endpoint: ep is not the metal of the session; malformed; unknown_registration)', labelNames: ['reason'] as const, registers: [registry] });
  const expired = new Counter({ name: 'tips_master_lwm2m_expired_total', help: 'LwM2M registrations marked offline because their lifetime (plus grace) passed without an Update', registers: [registry] });
  const firmware = new Counter({ name: 'tips_master_lwm2m_firmware_results_total', help: 'Firmware Update (object 5) jobs finished, by result (success, or the device result name, or delivery_failed)', labelNames: ['result'] as const, registers: [registry] });
  const queued = new Counter({
    name: 'tips_master_lwm2m_queued_operations_total',
    help: 'Queue mode (binding UQ): operator operations by kind (read, firmware) and status (queued when asked, done or failed when sent at the device\'s next update)',
    labelNames: ['kind', 'status'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'tips_master_lwm2m_devices',
    help: 'LwM2M devices by state (registered: every registration; online: not past lifetime + grace)',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      const c = await devices.counts();
      this.set({ state: 'registered' }, c.registered);
      this.set({ state: 'online' }, c.online);
    },
  });
  devices.useMetrics({
    registration: (op) => registrations.inc({ op }),
    refused: (reason) => refused.inc({ reason }),
    expired: (n) => expired.inc(n),
    firmwareResult: (result) => firmware.inc({ result }),
    queued: (kind, status) => queued.inc({ kind, status }),
  });
}
