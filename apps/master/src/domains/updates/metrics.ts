import { Counter, Gauge, type Registry } from 'prom-client';
import type { NotificationService } from '../notifications/service.ts';
import type { UpdateService } from './service.ts';

/** Prometheus metrics of the Update Manager and the notification fan-out. */
export function installUpdateMetrics(registry: Registry, updates: UpdateService, notifications: NotificationService): void {
  notifications.useMetrics(
    new Counter({ name: 'tips_master_notifications_published_total', help: 'MQTT notifications published, by reason and result', labelNames: ['reason', 'result'] as const, registers: [registry] }),
  );
  updates.useMetrics({
    reports: new Counter({ name: 'tips_master_update_reports_total', help: 'Signed install reports accepted from metals, by result', labelNames: ['result'] as const, registers: [registry] }),
    authFailures: new Counter({ name: 'tips_master_metal_auth_failures_total', help: 'Metal-API requests refused after mTLS (token, re-authentication, report signature), by code', labelNames: ['code'] as const, registers: [registry] }),
  });
  new Gauge({
    name: 'tips_master_mqtt_connected_metals',
    help: 'Metals connected to the embedded MQTT broker',
    registers: [registry],
    collect() {
      this.set(notifications.connectedMetals() ?? 0);
    },
  });
}
