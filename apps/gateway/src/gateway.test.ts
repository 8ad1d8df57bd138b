// The daemon's composition on loopback: real DHCP sockets and SQLite, a recording Enforcer (the
// nftables adapter is proven in e2e/gateway.test.ts) and an unreachable master.
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeDhcp, macToChaddr } from './dhcp/codec.ts';
import { DHCP_MESSAGE_TYPE } from './dhcp/constants.ts';
import type { Enforcer, RowChange } from './enforcer/enforcer.ts';
import { Gateway } from './gateway.ts';
import { openGatewayDb } from './store/db.ts';
import type { InterfaceRow } from './table/table.ts';
import { MasterClient } from './uplink/client.ts';
import { privateKeyFromSeed } from './uplink/sign.ts';

class RecordingEnforcer implements Enforcer {
  applied: InterfaceRow[][] = [];
  flushed: string[] = [];
  failures = 0;
  async apply(rows: InterfaceRow[]): Promise<void> {
    if (this.failures > 0) {
      this.failures--;
      throw new Error('nft: resource busy');
    }
    this.applied.push(rows);
    this.full++;
  }
  /** Whole renders and element changes, as counts: changes must not re-render the table. */
  full = 0;
  changes: RowChange[][] = [];
  async change(changes: RowChange[]): Promise<void> {
    if (this.failures > 0) {
      this.failures--;
      throw new Error('nft: resource busy');
    }
    this.changes.push(changes);
    // The view the kernel would have: the last rows with these rows replaced, added or removed.
    const rows = new Map((this.applied.at(-1) ?? []).map((r) => [`${r.gatewayInterface}|${r.mac}`, r]));
    for (const c of changes) {
      if (c.row) rows.set(`${c.gatewayInterface}|${c.mac}`, c.row);
      else rows.delete(`${c.gatewayInterface}|${c.mac}`);
    }
    this.applied.push([...rows.values()]);
  }
  async flushConnections(ip: string): Promise<void> {
    this.flushed.push(ip);
  }
  async sampleConnections(): Promise<string> {
    return '';
  }
}

const until = async (f: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('T5 T7 T10 T16 the gateway daemon: rules before service, commands, expiry', () => {
  let dir: string;
  let gw: Gateway;
  let enforcer: RecordingEnforcer;
  let port: number;
  const MAC = '02:00:00:00:00:01';

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tgw-daemon-'));
    enforcer = new RecordingEnforcer();
    port = 20_000 + Math.floor(Math.random() * 20_000);
    gw = new Gateway(
      {
        lan: 'lo',
        lanType: 'ethernet',
        uplink: 'up0',
        pool: { first: '127.0.0.100', last: '127.0.0.110' },
        leaseTimeSec: 600,
        dnsServers: [],
        boot: undefined,
        pendingTimeoutMs: 1000,
        retry: { initialMs: 50, maxMs: 200 },
        statusHost: '127.0.0.1',
        statusPort: 0,
        natSampleMs: 60_000,
        tableReportMs: 60_000,
        dhcpPort: port,
      },
      openGatewayDb(dir),
      enforcer,
      new MasterClient('http://127.0.0.1:1', 'gwy_test', privateKeyFromSeed(new Uint8Array(32))),
      pino({ level: 'silent' }),
    );
    await gw.start();
  });
  afterEach(async () => {
    await gw.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function join4(mac: string): Promise<void> {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const msg = (type: number, extra: Record<string, unknown>) =>
      encodeDhcp({
        op: 1,
        htype: 1,
        hlen: 6,
        hops: 0,
        xid: 7,
        secs: 0,
        flags: 0,
        ciaddr: '0.0.0.0',
        yiaddr: '0.0.0.0',
        siaddr: '0.0.0.0',
        giaddr: '0.0.0.0',
        chaddr: macToChaddr(mac),
        sname: '',
        file: '',
        options: { messageType: type as 1, other: [], ...extra },
      });
    sock.send(msg(DHCP_MESSAGE_TYPE.DHCPDISCOVER, {}), port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 100));
    sock.send(msg(DHCP_MESSAGE_TYPE.DHCPREQUEST, { serverIdentifier: '127.0.0.1', requestedIp: '127.0.0.100' }), port, '127.0.0.1');
    await until(() => gw.table.get(mac, 'lo') !== undefined);
    sock.close();
  }

  it('applies the (empty) rules before serving, then a lease makes a Pending row that stays Pending without a master', async () => {
    expect(enforcer.applied[0]).toEqual([]);
    await join4(MAC);
    await until(() => enforcer.applied.some((rows) => rows.some((r) => r.mac === MAC && r.state === 'pending')));
    await until(() => (gw.table.get(MAC, 'lo')?.attempts ?? 0) >= 2);
    expect(gw.table.get(MAC, 'lo')).toMatchObject({ state: 'pending', ip: '127.0.0.100', reason: 'master_unreachable' });
  });

  it('block turns the rows Blocked, re-applies and flushes the address; clear forgets them and, the lease being bound, asks afresh at once (Pending until the master answers)', async () => {
    await join4(MAC);
    await gw.onCommand({ type: 'block', tipsId: null, macs: [MAC] });
    expect(gw.table.get(MAC, 'lo')).toMatchObject({ state: 'blocked', reason: 'metal_blocked' });
    expect(enforcer.applied.at(-1)!.find((r) => r.mac === MAC)?.state).toBe('blocked');
    expect(enforcer.flushed).toContain('127.0.0.100');
    await gw.onCommand({ type: 'clear', mac: MAC });
    // The blocked record is gone; a new row from the lease the gateway holds waits for the (here unreachable) master.
    expect(gw.table.get(MAC, 'lo')).toMatchObject({ state: 'pending', ip: '127.0.0.100', tipsId: null });
    await until(() => enforcer.changes.length === 4, 5000);
    // T2: after the start-up render, each of these was an element change of that one interface.
    expect(enforcer.full).toBe(1);
    expect(enforcer.changes.map((c) => c.map((x) => [x.mac, x.row?.state ?? 'gone']))).toEqual([
      [[MAC, 'pending']],
      [[MAC, 'blocked']],
      [[MAC, 'gone']],
      [[MAC, 'pending']],
    ]);
  });

  it('a failed rule application is retried until the block is in the kernel', async () => {
    await join4(MAC);
    enforcer.failures = 2;
    await gw.onCommand({ type: 'block', tipsId: null, macs: [MAC] });
    await until(() => enforcer.applied.at(-1)?.find((r) => r.mac === MAC)?.state === 'blocked', 5000);
    expect(enforcer.failures).toBe(0);
    expect(enforcer.flushed).toContain('127.0.0.100');
    // The failed element change fell back to a whole render (which failed too), and the retry rendered the whole table.
    expect(enforcer.full).toBe(2);
  });

  it('a row whose lease expired loses its address in the rules', async () => {
    await join4(MAC);
    gw.expireAddresses(Date.now() + 601_000);
    await until(() => enforcer.flushed.includes('127.0.0.100'));
    expect(gw.table.get(MAC, 'lo')).toMatchObject({ ip: null, state: 'pending' });
  });

  it('T13 A2 the boot services attest a source address only as an Active row holding that bound lease', async () => {
    await join4(MAC);
    expect(gw.attest('127.0.0.100')).toBeUndefined(); // Pending
    gw.table.decide(MAC, 'lo', { state: 'active', tipsId: 'tips_1', reason: null });
    expect(gw.attest('127.0.0.100')).toBe(MAC);
    expect(gw.attest('127.0.0.101')).toBeUndefined(); // no lease there
    expect(gw.attest('127.0.0.1')).toBeUndefined();
    gw.table.decide(MAC, 'lo', { state: 'blocked', tipsId: null, reason: 'metal_blocked' });
    expect(gw.attest('127.0.0.100')).toBeUndefined();
    gw.table.decide(MAC, 'lo', { state: 'active', tipsId: 'tips_1', reason: null });
    gw.table.forgetAddress(MAC, '127.0.0.100'); // the row lost its address (lease expired/released)
    expect(gw.attest('127.0.0.100')).toBeUndefined();
  });
});
