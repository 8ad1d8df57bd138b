import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createMetrics, type GatewayMetrics } from '../status/metrics.ts';
import { openGatewayDb } from '../store/db.ts';
import { encodeDhcp, macToChaddr } from './codec.ts';
import { DHCP_MESSAGE_TYPE, type DhcpMessageType } from './constants.ts';
import { ipToNumber, LeasePool, SqliteLeaseStore } from './leases.ts';
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

function packet(mac: string, type: DhcpMessageType, requestedIp?: string): Uint8Array {
  return encodeDhcp({
    op: 1,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 7,
    secs: 0,
    flags: 0x8000,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr: macToChaddr(mac),
    sname: '',
    file: '',
    options: { messageType: type, ...(requestedIp ? { requestedIp, serverIdentifier: '127.0.0.1' } : {}), other: [] },
  });
}

describe('issue 13 T5 group commit: a burst of datagrams is one transaction, and no reply leaves before its lease is on disk', () => {
  let dir: string;
  let store: SqliteLeaseStore;
  let server: DhcpServer;
  let client: dgram.Socket;
  let replies: Buffer[];
  let events: LeaseEvent[];
  let groups: number;
  let durableCalls: ((err: Error | null) => void)[];
  let holdFsync: boolean;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tgw-group-'));
    const db = openGatewayDb(dir);
    store = new SqliteLeaseStore(db);
    groups = 0;
    durableCalls = [];
    holdFsync = false;
    const real = store.atomically.bind(store);
    // Counts the groups, and can hold back the end of an fsync to see what leaves before it.
    store.atomically = <T>(fn: () => T, durable?: (err: Error | null) => void): T => {
      if (!db.inTransaction) groups++;
      if (!durable || !holdFsync) return real(fn, durable);
      return real(fn, () => durableCalls.push(durable));
    };
    events = [];
    replies = [];
    client = dgram.createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
    client.on('message', (m) => replies.push(m));
    server = new DhcpServer({
      pool: new LeasePool({ first: '10.77.0.100', last: '10.77.0.150', leaseTimeSec: 600 }, store, Date.now),
      config: { ...CFG, serverIp: '127.0.0.1', broadcastAddress: '127.0.0.1' },
      admission: () => 'serve',
      onEvent: (e) => events.push(e),
      log: pino({ level: 'silent' }),
      metrics: createMetrics(),
      port: 0,
    });
    await server.start();
  });
  afterEach(async () => {
    await server.stop();
    client.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const serverPort = () => (server as unknown as { sender: dgram.Socket }).sender.address().port;
  const send = (bytes: Uint8Array) => new Promise<void>((r) => client.send(bytes, serverPort(), '127.0.0.1', () => r()));

  it('answers 20 DISCOVERs sent together with 20 OFFERs from far fewer transactions, each lease written', async () => {
    // Replies go to the broadcast address the config names (here the loopback) on port 68, which the
    // test cannot bind: the leases, events and counted sends say what was answered.
    const macs = Array.from({ length: 20 }, (_, i) => `02:00:00:00:01:${i.toString(16).padStart(2, '0')}`);
    await Promise.all(macs.map((m) => send(packet(m, DHCP_MESSAGE_TYPE.DHCPDISCOVER))));
    await until(() => macs.every((m) => store.byMac(m)?.state === 'offered'));
    expect(groups).toBeLessThan(20);
    expect(groups).toBeGreaterThanOrEqual(1);
  });

  it("sends an ACK only once the group's fsync is done, and the bound lease is in the database by then", async () => {
    const mac = '02:00:00:00:02:01';
    server.handle(packet(mac, DHCP_MESSAGE_TYPE.DHCPDISCOVER));
    const offered = store.byMac(mac)!;
    holdFsync = true;
    const sent = vi.spyOn((server as unknown as { sender: dgram.Socket }).sender, 'send');
    await send(packet(mac, DHCP_MESSAGE_TYPE.DHCPREQUEST, offered.ip));
    await until(() => durableCalls.length === 1);
    // Committed (another connection reads it) but not yet durable: nothing sent, the event already recorded in the same transaction.
    expect(new SqliteLeaseStore(openGatewayDb(dir)).byMac(mac)).toMatchObject({ state: 'bound', ip: offered.ip });
    expect(events).toMatchObject([{ kind: 'bound', mac }]);
    expect(sent).not.toHaveBeenCalled();
    durableCalls[0]!(null);
    expect(sent).toHaveBeenCalledTimes(1);
  });

  it('a failed fsync sends no reply of its group', async () => {
    const mac = '02:00:00:00:03:01';
    holdFsync = true;
    const sent = vi.spyOn((server as unknown as { sender: dgram.Socket }).sender, 'send');
    await send(packet(mac, DHCP_MESSAGE_TYPE.DHCPDISCOVER));
    await until(() => durableCalls.length === 1);
    durableCalls[0]!(new Error('EIO'));
    expect(sent).not.toHaveBeenCalled();
  });
});

async function until(f: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('issue 13 T5 the lease index in memory follows the database: written through, rolled back with it', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tgw-index-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a transaction that throws leaves neither the database nor the index changed; a committed one is read back from disk alike', () => {
    const db = openGatewayDb(dir);
    const store = new SqliteLeaseStore(db);
    const pool = new LeasePool({ first: '10.77.0.100', last: '10.77.0.110', leaseTimeSec: 600 }, store, Date.now);
    const a = '02:00:00:00:04:01';
    const first = pool.offer(a, undefined, null)!;
    // A nested savepoint fails after moving the MAC to another address: both writes undone.
    store.atomically(() => {
      expect(() =>
        store.atomically(() => {
          pool.offer(a, '10.77.0.105', null);
          store.put({ ...first, ip: '10.77.0.106', updatedAt: first.updatedAt + 1 });
          throw new Error('boom');
        }),
      ).toThrow('boom');
      pool.offer('02:00:00:00:04:02', undefined, null);
    });
    const fromDisk = new SqliteLeaseStore(openGatewayDb(dir));
    for (const s of [store, fromDisk]) {
      expect(s.byMac(a)).toEqual(first);
      expect(s.get('10.77.0.106')).toBeUndefined();
      expect(s.byMac('02:00:00:00:04:02')?.ip).toBe('10.77.0.101');
      expect(s.all().map((l) => l.ip)).toEqual(['10.77.0.100', '10.77.0.101']);
    }
    // A MAC moving to another address loses its old lease, on disk and in memory.
    store.put({ ...first, ip: '10.77.0.107', updatedAt: first.updatedAt + 2 });
    const again = new SqliteLeaseStore(openGatewayDb(dir));
    for (const s of [store, again]) {
      expect(s.get(first.ip)).toBeUndefined();
      expect(s.byMac(a)?.ip).toBe('10.77.0.107');
      expect(s.byNumber(ipToNumber('10.77.0.107'))?.mac).toBe(a);
    }
    // The index hands out copies it froze: changing one changes nothing stored.
    expect(Object.isFrozen(store.byMac(a))).toBe(true);
  });
});
