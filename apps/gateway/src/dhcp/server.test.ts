import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMetrics, type GatewayMetrics } from '../status/metrics.ts';
import { openGatewayDb } from '../store/db.ts';
import { encodeDhcp, macToChaddr } from './codec.ts';
import { DHCP_MESSAGE_TYPE } from './constants.ts';
import { LeasePool, SqliteLeaseStore } from './leases.ts';
import type { LeaseEvent } from './responder.ts';
import { DhcpServer } from './server.ts';

const CFG = { serverIp: '10.77.0.1', subnetMask: '255.255.255.0', broadcastAddress: '10.77.0.255', router: '10.77.0.1', dnsServers: [] };

function discover(mac: string): Uint8Array {
  return encodeDhcp({
    op: 1,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 1,
    secs: 0,
    flags: 0,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr: macToChaddr(mac),
    sname: '',
    file: '',
    options: { messageType: DHCP_MESSAGE_TYPE.DHCPDISCOVER, other: [] },
  });
}

async function counter(m: GatewayMetrics, name: string, label: string): Promise<number> {
  const metric = (await m.registry.getMetricsAsJSON()).find((x) => x.name === name);
  return (metric?.values ?? []).filter((v) => Object.values(v.labels).includes(label)).reduce((n, v) => n + v.value, 0);
}

describe('T5 the DHCP daemon drops and counts malformed packets and never throws', () => {
  let dir: string;
  let metrics: GatewayMetrics;
  let events: LeaseEvent[];
  let server: DhcpServer;
  let admission: (mac: string) => 'serve' | 'refuse';

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tgw-server-'));
    metrics = createMetrics();
    events = [];
    admission = () => 'serve';
    const pool = new LeasePool({ first: '10.77.0.100', last: '10.77.0.110', leaseTimeSec: 600 }, new SqliteLeaseStore(openGatewayDb(dir)), Date.now);
    server = new DhcpServer({
      pool,
      config: CFG,
      admission: (mac) => admission(mac),
      onEvent: (e) => events.push(e),
      log: pino({ level: 'silent' }),
      metrics,
    });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('counts malformed input by DhcpError code', async () => {
    server.handle(new Uint8Array(10));
    server.handle(Uint8Array.from([...discover('02:00:00:00:00:01').subarray(0, 240), 53, 9]));
    expect(await counter(metrics, 'tips_gateway_dhcp_malformed_total', 'too_short')).toBe(1);
    expect(await counter(metrics, 'tips_gateway_dhcp_malformed_total', 'truncated_option')).toBe(1);
  });

  it('survives arbitrary datagrams', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 700 }), (b) => {
        server.handle(b);
      }),
      { numRuns: 2000 },
    );
  });

  it('a failing dependency is counted as internal_error, not thrown', async () => {
    admission = () => {
      throw new Error('disk on fire');
    };
    expect(() => server.handle(discover('02:00:00:00:00:01'))).not.toThrow();
    expect(await counter(metrics, 'tips_gateway_dhcp_dropped_total', 'internal_error')).toBe(1);
    expect(await counter(metrics, 'tips_gateway_dhcp_received_total', 'DHCPDISCOVER')).toBe(1);
  });

  it('refused (Blocked) MACs are counted as refused', async () => {
    admission = () => 'refuse';
    server.handle(discover('02:00:00:00:00:01'));
    expect(await counter(metrics, 'tips_gateway_dhcp_dropped_total', 'refused')).toBe(1);
    expect(events).toEqual([]);
  });
});
