import { Counter, type Registry } from 'prom-client';
import type { TelemetryService } from './service.ts';

/** Prometheus metrics of information exchange: metal posts by kind and result, application-token authentications by result. */
export function installTelemetryMetrics(registry: Registry, telemetry: TelemetryService): void {
  telemetry.useMetrics({
    posts: new Counter({ name: 'tips_master_telemetry_posts_total', help: 'Telemetry samples and heartbeats posted by metals, by kind and result (ok, invalid, rate_limited)', labelNames: ['kind', 'result'] as const, registers: [registry] }),
    appAuth: new Counter({ name: 'tips_master_app_token_auth_total', help: 'Requests made with an application token, by result (ok, unauthenticated, forbidden)', labelNames: ['result'] as const, registers: [registry] }),
  });
}
