// The uplink against an in-test master stand-in (node:http + ws) that checks every signature the way
// the master must. Unit scope only: the e2e suite runs the real master.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { createMetrics } from '../status/metrics.ts';
import { openGatewayDb } from '../store/db.ts';
import { InterfaceTable } from '../table/table.ts';
import { Channel, type ChannelCommand, parseCommand } from './channel.ts';
import { MasterClient, parseDecision, parseDecisions } from './client.ts';
import { backoffDelay, Registrar } from './registrar.ts';
import { HEADER, privateKeyFromSeed, verifyRequest } from './sign.ts';

const log = pino({ level: 'silent' });
const key = privateKeyFromSeed(new Uint8Array(32).fill(7));
const until = async (f: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** A stand-in master: verifies TIPS-GW-1 signatures and rejects replayed nonces, answers from a script. */
class StandIn {
  server: http.Server;
  wss = new WebSocketServer({ noServer: true });
  nonces = new Set<string>();
  answers: ((body: unknown) => [number, unknown])[] = [];
  registrations: unknown[] = [];
  paths: string[] = [];
  tables: unknown[] = [];
  authFailures = 0;
  sockets: import('ws').WebSocket[] = [];
  received: unknown[] = [];

  constructor(private readonly pub: KeyObject) {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => {
        if (!this.authentic(req, body)) {
          this.authFailures++;
          res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{"code":"gateway_auth_failed","message":"no"}}');
          return;
        }
        if (req.url === '/api/gateway/v1/table') {
          this.tables.push(JSON.parse(body));
          res.writeHead(204).end();
          return;
        }
        this.paths.push(req.url!);
        this.registrations.push(JSON.parse(body));
        const [status, json] = (this.answers.shift() ?? (() => [503, {}]))(JSON.parse(body));
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
      });
    });
    this.server.on('upgrade', (req, socket, head) => {
      if (!this.authentic(req, '')) {
        this.authFailures++;
        socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n');
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        this.sockets.push(ws);
        ws.on('message', (m) => this.received.push(JSON.parse(m.toString())));
      });
    });
  }

  authentic(req: http.IncomingMessage, body: string): boolean {
    const h = (n: string) => req.headers[n] as string | undefined;
    const nonce = h(HEADER.nonce);
    const ts = Number(h(HEADER.timestamp));
    if (h(HEADER.gateway) !== 'gwy_test' || !nonce || this.nonces.has(nonce) || Math.abs(Date.now() - ts) > 60_000) return false;
    this.nonces.add(nonce);
    return verifyRequest(
      this.pub,
      { method: req.method!, pathWithQuery: req.url!, timestamp: ts, nonce, body: body === '' ? undefined : body },
      h(HEADER.signature) ?? '',
    );
  }

  listen(): Promise<string> {
    return new Promise((r) => this.server.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(this.server.address() as AddressInfo).port}`)));
  }
  close(): Promise<void> {
    for (const s of this.sockets) s.terminate();
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

describe('T6 T7 registration at TIPS-D: signed, retried with backoff, never fails open', () => {
  let dir: string;
  let master: StandIn;
  let client: MasterClient;
  let table: InterfaceTable;
  let registrar: Registrar | undefined;
  const decisions: string[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tgw-uplink-'));
    master = new StandIn(createPublicKey(key));
    client = new MasterClient(await master.listen(), 'gwy_test', key);
    table = new InterfaceTable(openGatewayDb(dir));
    table.observeLease({ mac: '02:00:00:00:00:01', gatewayInterface: 'br0', ip: '10.77.0.100', type: 'ethernet', pxe: false, hostname: 'm1' });
    decisions.length = 0;
  });
  afterEach(async () => {
    registrar?.stop();
    await master.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = (pendingTimeoutMs = 60_000) => {
    registrar = new Registrar({
      table,
      register: (r) => client.register(r),
      onDecision: (_b, a) => decisions.push(`${a.mac}:${a.state}`),
      log,
      metrics: createMetrics(),
      backoff: { initialMs: 10, maxMs: 40 },
      pendingTimeoutMs,
    });
    registrar.kickAll();
  };

  it('retries through master errors and applies the answer (Active with TIPS ID)', async () => {
    master.answers.push(
      () => [503, {}],
      () => [500, {}],
      (b) => [200, { decision: 'active', tipsId: 'mtl_1', echo: b }],
    );
    start();
    await until(() => decisions.length === 1);
    expect(decisions).toEqual(['02:00:00:00:00:01:active']);
    expect(table.get('02:00:00:00:00:01', 'br0')).toMatchObject({ state: 'active', tipsId: 'mtl_1', attempts: 2 });
    expect(master.registrations[0]).toEqual({
      mac: '02:00:00:00:00:01',
      ip: '10.77.0.100',
      gatewayInterface: 'br0',
      interfaceType: 'ethernet',
      pxe: false,
      hostname: 'm1',
      idempotencyKey: expect.stringMatching(/^[A-Za-z0-9_-]{16}$/),
    });
    // The three attempts are one registration: the same key each time (the master records it once).
    expect(new Set(master.registrations.map((r) => (r as { idempotencyKey: string }).idempotencyKey)).size).toBe(1);
    expect(master.authFailures).toBe(0);
  });

  it('a rejection makes the row Blocked with the reason', async () => {
    master.answers.push(() => [200, { decision: 'blocked', reason: 'unknown_mac' }]);
    start();
    await until(() => decisions.length === 1);
    expect(table.get('02:00:00:00:00:01', 'br0')).toMatchObject({ state: 'blocked', reason: 'unknown_mac' });
  });

  it('after the pending timeout the row stays Pending and retries continue; nonsense answers never activate', async () => {
    for (let i = 0; i < 1000; i++) master.answers.push(() => [200, { decision: 'maybe' }]);
    start(50);
    await until(() => (table.get('02:00:00:00:00:01', 'br0')?.attempts ?? 0) >= 6);
    expect(table.get('02:00:00:00:00:01', 'br0')).toMatchObject({ state: 'pending', reason: 'pending_timeout' });
    expect(decisions).toEqual([]);
  });

  it('an unreachable master keeps the row Pending', async () => {
    await master.close();
    start();
    await until(() => (table.get('02:00:00:00:00:01', 'br0')?.attempts ?? 0) >= 3);
    expect(table.get('02:00:00:00:00:01', 'br0')).toMatchObject({ state: 'pending', reason: 'master_unreachable' });
  });

  it('an answer that arrives after a block does not undo the block', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    registrar = new Registrar({
      table,
      register: async () => {
        await gate;
        return { decision: 'active', tipsId: 'mtl_1' };
      },
      onDecision: (_b, a) => decisions.push(`${a.mac}:${a.state}`),
      log,
      metrics: createMetrics(),
      backoff: { initialMs: 10, maxMs: 40 },
      pendingTimeoutMs: 60_000,
    });
    registrar.kickAll();
    table.block(null, ['02:00:00:00:00:01'], 'metal_blocked');
    release();
    await until(() => !registrar!.busy);
    expect(table.get('02:00:00:00:00:01', 'br0')).toMatchObject({ state: 'blocked', reason: 'metal_blocked' });
    expect(decisions).toEqual([]);
  });

  it('parseDecision accepts only well-formed answers', () => {
    expect(parseDecision({ decision: 'active', tipsId: 'mtl_1' })).toEqual({ decision: 'active', tipsId: 'mtl_1' });
    expect(() => parseDecision({ decision: 'active' })).toThrow(/not a decision/);
    expect(() => parseDecision(undefined)).toThrow();
    expect(parseDecision({ decision: 'blocked' })).toEqual({ decision: 'blocked', reason: 'rejected' });
  });

  it('backoff grows exponentially up to the cap', () => {
    const b = { initialMs: 100, maxMs: 1000 };
    expect([0, 1, 2, 3, 4, 10].map((a) => backoffDelay(b, a, () => 0.5))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });
});

describe('T6 T7 batch registration: rows Pending together go in one signed request', () => {
  let dir: string;
  let master: StandIn;
  let client: MasterClient;
  let table: InterfaceTable;
  let registrar: Registrar | undefined;
  const decisions: string[] = [];
  const MACS = ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03'];
  const BATCH = '/api/gateway/v1/registrations/batch';
  const SINGLE = '/api/gateway/v1/registrations';

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tgw-uplink-'));
    master = new StandIn(createPublicKey(key));
    client = new MasterClient(await master.listen(), 'gwy_test', key);
    table = new InterfaceTable(openGatewayDb(dir));
    for (const [i, mac] of MACS.entries()) table.observeLease({ mac, gatewayInterface: 'br0', ip: `10.77.0.${100 + i}`, type: 'ethernet', pxe: i === 0, hostname: null });
    decisions.length = 0;
    registrar = new Registrar({
      table,
      register: (r) => client.register(r),
      registerBatch: (rs) => client.registerBatch(rs),
      onDecision: (_b, a) => decisions.push(`${a.mac}:${a.state}`),
      log,
      metrics: createMetrics(),
      backoff: { initialMs: 10, maxMs: 40 },
      pendingTimeoutMs: 60_000,
    });
  });
  afterEach(async () => {
    registrar?.stop();
    await master.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends every Pending row in one batch, applies each answer to its own row, and a lone lease uses the single endpoint', async () => {
    master.answers.push((b) => {
      const items = (b as { items: { mac: string }[] }).items;
      return [200, { items: items.map((x) => (x.mac === MACS[1] ? { decision: 'blocked', reason: 'unknown_mac' } : { decision: 'active', tipsId: `mtl_${x.mac.slice(-1)}` })) }];
    });
    registrar!.kickAll();
    await until(() => decisions.length === 3);
    expect(master.paths).toEqual([BATCH]);
    expect(master.registrations[0]).toEqual({
      items: MACS.map((mac, i) => ({ mac, ip: `10.77.0.${100 + i}`, gatewayInterface: 'br0', interfaceType: 'ethernet', pxe: i === 0, idempotencyKey: expect.stringMatching(/^[A-Za-z0-9_-]{16}$/) })),
    });
    const keys = (master.registrations[0] as { items: { idempotencyKey: string }[] }).items.map((x) => x.idempotencyKey);
    expect(new Set(keys).size).toBe(3);
    expect(table.get(MACS[0]!, 'br0')).toMatchObject({ state: 'active', tipsId: 'mtl_1' });
    expect(table.get(MACS[1]!, 'br0')).toMatchObject({ state: 'blocked', reason: 'unknown_mac' });
    expect(table.get(MACS[2]!, 'br0')).toMatchObject({ state: 'active', tipsId: 'mtl_3' });
    expect(master.authFailures).toBe(0);

    table.observeLease({ mac: '02:00:00:00:00:09', gatewayInterface: 'br0', ip: '10.77.0.109', type: 'wifi', pxe: false, hostname: null });
    master.answers.push(() => [200, { decision: 'active', tipsId: 'mtl_9' }]);
    registrar!.kick('02:00:00:00:00:09', 'br0');
    await until(() => decisions.length === 4);
    expect(master.paths).toEqual([BATCH, SINGLE]);
    expect(master.registrations[1]).toMatchObject({ mac: '02:00:00:00:00:09', interfaceType: 'wifi' });
    expect(keys).not.toContain((master.registrations[1] as { idempotencyKey: string }).idempotencyKey);
  });

  it('a failed batch leaves every row Pending and retries each on its own backoff until answered, under the key the batch carried (issue 13: recorded once)', async () => {
    master.answers.push(() => [503, {}]);
    for (let i = 0; i < 3; i++) master.answers.push((b) => [200, { decision: 'active', tipsId: `mtl_${(b as { mac: string }).mac.slice(-1)}` }]);
    registrar!.kickAll();
    await until(() => decisions.length === 3);
    expect(master.paths).toEqual([BATCH, SINGLE, SINGLE, SINGLE]);
    const batchKeys = new Map((master.registrations[0] as { items: { mac: string; idempotencyKey: string }[] }).items.map((x) => [x.mac, x.idempotencyKey]));
    for (const r of master.registrations.slice(1) as { mac: string; idempotencyKey: string }[]) expect(r.idempotencyKey).toBe(batchKeys.get(r.mac));
    // Answered: the row's next registration (it went Pending again) is a new one, with a new key.
    table.observeLease({ mac: '02:00:00:00:00:07', gatewayInterface: 'br0', ip: '10.77.0.107', type: 'ethernet', pxe: false, hostname: null });
    master.answers.push(() => [200, { decision: 'active', tipsId: 'mtl_7' }]);
    registrar!.kick('02:00:00:00:00:07', 'br0');
    await until(() => decisions.length === 4);
    expect([...batchKeys.values()]).not.toContain((master.registrations[4] as { idempotencyKey: string }).idempotencyKey);
    for (const mac of MACS) expect(table.get(mac, 'br0')).toMatchObject({ state: 'active', tipsId: `mtl_${mac.slice(-1)}`, attempts: 1 });
  });

  it('never activates a row from a batch answer that is not one decision per item', async () => {
    for (let i = 0; i < 1000; i++) master.answers.push(() => [200, { items: [{ decision: 'active', tipsId: 'mtl_1' }] }]);
    registrar!.kickAll();
    await until(() => MACS.every((mac) => (table.get(mac, 'br0')?.attempts ?? 0) >= 1));
    expect(master.paths[0]).toBe(BATCH);
    for (const mac of MACS) expect(table.get(mac, 'br0')).toMatchObject({ state: 'pending', reason: 'bad_response' });
    expect(decisions).toEqual([]);
  });

  it('parseDecisions wants exactly one well-formed decision per item', () => {
    expect(parseDecisions({ items: [{ decision: 'blocked', reason: 'unknown_mac' }] }, 1)).toEqual([{ decision: 'blocked', reason: 'unknown_mac' }]);
    expect(() => parseDecisions({ items: [] }, 1)).toThrow(/not 1 decisions/);
    expect(() => parseDecisions({ items: [{ decision: 'active' }] }, 1)).toThrow(/not a decision/);
    expect(() => parseDecisions([{ decision: 'active', tipsId: 'mtl_1' }], 1)).toThrow();
  });
});

describe('T10 T16 command channel: signed upgrade, commands acked, reconnects with backoff', () => {
  it('receives block/clear, acks with the ref, and reconnects after the master drops it', async () => {
    const master = new StandIn(createPublicKey(key));
    const client = new MasterClient(await master.listen(), 'gwy_test', key);
    const commands: ChannelCommand[] = [];
    let connects = 0;
    const ch = new Channel({
      connectInfo: () => client.channelHeaders(),
      onCommand: async (c) => {
        commands.push(c);
      },
      onConnected: () => connects++,
      log,
      metrics: createMetrics(),
      backoff: { initialMs: 10, maxMs: 50 },
    });
    ch.start();
    try {
      await until(() => master.sockets.length === 1 && master.received.length === 1);
      expect(master.received[0]).toEqual({ type: 'hello' });
      master.sockets[0]!.send(JSON.stringify({ type: 'block', id: 'c1', tipsId: 'mtl_1', macs: ['02:00:00:00:00:01'] }));
      master.sockets[0]!.send(JSON.stringify({ type: 'clear', id: 'c2', mac: '02:00:00:00:00:02' }));
      master.sockets[0]!.send('not json');
      await until(() => master.received.length === 3);
      expect(commands).toEqual([
        { type: 'block', tipsId: 'mtl_1', macs: ['02:00:00:00:00:01'] },
        { type: 'clear', mac: '02:00:00:00:00:02' },
      ]);
      expect(master.received.slice(1)).toEqual([
        { type: 'ack', ref: 'c1' },
        { type: 'ack', ref: 'c2' },
      ]);
      master.sockets[0]!.terminate();
      await until(() => connects === 2);
      expect(master.authFailures).toBe(0);
    } finally {
      ch.stop();
      await master.close();
    }
  });

  it('parseCommand rejects malformed commands with a stable code', () => {
    expect(() => parseCommand('{"type":"clear","mac":"nope"}')).toThrow(expect.objectContaining({ code: 'bad_channel_message' }));
    expect(() => parseCommand('{"type":"block"}')).toThrow(/tipsId or macs/);
    expect(() => parseCommand('{"type":"format-disk"}')).toThrow(/unknown/);
    expect(parseCommand('{"type":"unblock","mac":"02:00:00:00:00:0A"}').command).toEqual({ type: 'unblock', mac: '02:00:00:00:00:0a' });
  });
});
