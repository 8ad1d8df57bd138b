// Prometheus metrics of one gateway process (served on the status port).
import { Counter, Gauge, Registry } from 'prom-client';

export interface GatewayMetrics {
  registry: Registry;
  dhcpReceived: Counter<'type'>;
  dhcpSent: Counter<'type'>;
  dhcpMalformed: Counter<'code'>;
  dhcpDropped: Counter<'reason'>;
  registrations: Counter<'outcome'>;
  interfaces: Gauge<'state'>;
  uplinkConnected: Gauge;
  enforcerApplies: Counter<'outcome'>;
  bootRequests: Counter<'kind' | 'outcome'>;
  bootBytes: Counter<'kind'>;
  bootCacheHits: Counter<'cache'>;
  bootCacheMisses: Counter<'cache'>;
  bootTftpTransfers: Gauge;
  onboardingRelayRequests: Counter<'route' | 'outcome'>;
}

export function createMetrics(): GatewayMetrics {
  const registry = new Registry();
  const c = <L extends string>(name: string, help: string, labelNames: L[]) => new Counter<L>({ name, help, labelNames, registers: [registry] });
  return {
    registry,
    dhcpReceived: c('tips_gateway_dhcp_received_total', 'DHCP messages received, by message type', ['type']),
    dhcpSent: c('tips_gateway_dhcp_sent_total', 'DHCP replies sent, by message type', ['type']),
    dhcpMalformed: c('tips_gateway_dhcp_malformed_total', 'Malformed DHCP packets dropped, by DhcpError code', ['code']),
    dhcpDropped: c('tips_gateway_dhcp_dropped_total', 'Well-formed DHCP messages not answered, by reason', ['reason']),
    registrations: c('tips_gateway_registrations_total', 'Registration attempts at TIPS-D, by outcome', ['outcome']),
    interfaces: new Gauge({ name: 'tips_gateway_interfaces', help: 'Rows of the interface table by state', labelNames: ['state'], registers: [registry] }),
    uplinkConnected: new Gauge({ name: 'tips_gateway_uplink_connected', help: '1 while the command channel to the master is open', registers: [registry] }),
    enforcerApplies: c('tips_gateway_enforcer_applies_total', 'Rule set applications, by outcome', ['outcome']),
    bootRequests: c('tips_gateway_boot_requests_total', 'Boot service requests (TFTP, HTTP boot, Phase 1 forwards), by kind and outcome', ['kind', 'outcome']),
    bootBytes: c('tips_gateway_boot_bytes_total', 'Bytes of boot files, scripts and Glazes served to metals, by kind', ['kind']),
    bootCacheHits: c('tips_gateway_boot_cache_hits_total', 'Boot cache hits (glaze: verified copy served; script: master unreachable, cached copy served)', ['cache']),
    bootCacheMisses: c('tips_gateway_boot_cache_misses_total', 'Boot cache misses (fetched from the master)', ['cache']),
    bootTftpTransfers: new Gauge({ name: 'tips_gateway_boot_tftp_transfers', help: 'TFTP transfers in progress', registers: [registry] }),
    onboardingRelayRequests: c('tips_gateway_onboarding_relay_requests_total', 'Onboarding relay requests (probe, TO1, TO2, other), by route and outcome', ['route', 'outcome']),
  };
}
