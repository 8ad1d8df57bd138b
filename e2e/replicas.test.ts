import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type S3TestServer, startS3Server, until } from '@tips/testbed';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort, type NatsCluster, startNatsCluster } from '../apps/master/src/bus/test-servers.ts';
import { TestGateway } from '../apps/master/src/domains/gateways/test-client.ts';
import { type RunningMaster, startMaster } from './helpers.ts';

/**
 * T2 B5 T7: the scale-out layout for real — three `tips-master` processes on one PostgreSQL, one S3
 * store (s3rver) and a 3-node NATS cluster (Debian's nats-server), behind Debian's HAProxy (health
 * checks on /readyz). A block made through one replica is refused by the two others within 1 s; a
 * registration storm from a gateway of 1,000 Pending rows survives kill -9 of a replica and then
 * of a NATS node; the gateway's command channel and a long Glaze upload go through HAProxy.
 */
const BUCKET = 'tips-replicas';
const admin = `tips_${randomBytes(32).toString('base64url')}`;
const ROWS = 1_000;
const DECLARED = 20;
let dir: string;
let dbName: string;
let dbUrl: string;
let pgAdmin: pg.Client;
let s3: S3TestServer;
let nats: NatsCluster;
let haproxy: ChildProcess;
let lb: string;
const masters: RunningMaster[] = [];
let gw: TestGateway;

const macOf = (i: number) => `02:ab:${((i >> 16) & 0xff).toString(16).padStart(2, '0')}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}:01`;

// biome-ignore lint/suspicious/noExplicitAny: JSON answers of several shapes, checked by the assertions.
type Answer = { status: number; body: any };

async function call(base: string, method: string, path: string, body?: unknown): Promise<Answer> {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${admin}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

/** A TIPS-GW-1 signed request from the test gateway to `base` (a replica, or HAProxy). */
async function signed(base: string, method: 'GET' | 'POST', path: string, payload?: unknown): Promise<Answer> {
  const body = payload === undefined ? undefined : JSON.stringify(payload);
  const r = await fetch(`${base}${path}`, { method, headers: gw.headers(method, path, body), body });
  const text = await r.text();
  return { status: r.status, body: text.startsWith('{') ? JSON.parse(text) : text };
}

const decide = async (base: string, mac: string) => (await signed(base, 'POST', '/api/gateway/v1/registrations', { mac, ip: '10.20.0.2', gatewayInterface: 'lan0' })).body;

function startHaproxy(port: number, backends: string[]): ChildProcess {
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    [
      'global',
      '  maxconn 2000',
      'defaults',
      '  mode http',
      '  timeout connect 2s',
      '  timeout client 60s',
      '  timeout server 60s',
      // WebSocket channels (the gateway's command channel) stay open through the tunnel.
      '  timeout tunnel 1h',
      '  option redispatch',
      '  retries 3',
      'frontend tips',
      `  bind 127.0.0.1:${port}`,
      '  default_backend masters',
      'backend masters',
      '  balance roundrobin',
      '  option httpchk GET /readyz',
      '  http-check expect status 200',
      '  default-server inter 300ms fall 2 rise 2',
      ...backends.map((b, i) => `  server r${i} ${new URL(b).host} check`),
      '',
    ].join('\n'),
  );
  return spawn('haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tips-e2e-replicas-'));
  pgAdmin = new pg.Client({ connectionString: inject('pgUrl') });
  await pgAdmin.connect();
  dbName = `replicas_${randomBytes(5).toString('hex')}`;
  await pgAdmin.query(`CREATE DATABASE ${dbName}`);
  const url = new URL(inject('pgUrl'));
  url.pathname = `/${dbName}`;
  dbUrl = url.toString();
  [s3, nats] = await Promise.all([startS3Server({ buckets: [BUCKET] }), startNatsCluster(3)]);
  const env = { TIPS_BOOTSTRAP_ADMIN_TOKEN: admin, AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' };
  const args = (name: string) => [
    '--data-dir',
    join(dir, name),
    '--ca-dir',
    join(dir, 'ca'),
    '--database-url',
    dbUrl,
    '--blob-store',
    `s3://${BUCKET}/glazes`,
    '--s3-endpoint',
    s3.endpoint,
    '--s3-region',
    s3.region,
    '--mqtt-port',
    'off',
    '--bus',
    nats.busUrl,
  ];
  // The first replica makes the CA; the others start together on it.
  masters.push(await startMaster(args('a'), env));
  masters.push(...(await Promise.all(['b', 'c'].map((n) => startMaster(args(n), env)))));
  for (const m of masters) await until('replica bus up', async () => (await (await fetch(`${m.url}/readyz`)).json()).bus === 'up', 20_000);
  const port = await freePort();
  lb = `http://127.0.0.1:${port}`;
  haproxy = startHaproxy(
    port,
    masters.map((m) => m.url),
  );
  await until('haproxy', async () => (await fetch(`${lb}/readyz`).catch(() => undefined))?.status === 200, 20_000);

  // The gateway enrolls through HAProxy; its signed requests then go wherever the test sends them.
  const created = await call(lb, 'POST', '/api/v1/gateways', { name: 'site' });
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const enrolled = await fetch(`${lb}/api/gateway/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ enrollmentToken: created.body.enrollmentToken, publicKey: publicKey.export({ format: 'pem', type: 'spki' }).toString(), name: 'site' }),
  });
  gw = new TestGateway(undefined as never, ((await enrolled.json()) as { gatewayId: string }).gatewayId, privateKey);
  expect((await call(lb, 'POST', '/api/v1/spaces', { name: 'os', phase: 1 })).status).toBe(201);
  for (let i = 0; i < DECLARED; i++) {
    const name = `m${i}`;
    expect((await call(lb, 'POST', '/api/v1/metals', { name, interfaces: [{ name: 'eth0', mac: macOf(i), type: 'ethernet', pxe: true }] })).status).toBe(201);
    expect((await call(lb, 'POST', '/api/v1/spaces/os/members', { metal: name, interfaces: ['eth0'], default: true })).status).toBeLessThan(300);
  }
}, 120_000);

afterAll(async () => {
  haproxy?.kill('SIGKILL');
  for (const m of masters) await m.stop('SIGKILL');
  await nats?.stop();
  await s3?.close();
  await pgAdmin?.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await pgAdmin?.end();
  rmSync(dir, { recursive: true, force: true });
});

describe('T2 B5 T7 three replicas behind HAProxy on PostgreSQL, S3 and a NATS cluster', () => {
  it('a metal blocked through replica A is refused by replicas B and C within 1 s of the block being answered', async () => {
    const [a, b, c] = masters as [RunningMaster, RunningMaster, RunningMaster];
    const mac = macOf(0);
    // B and C have decided this metal: their caches hold it as eligible and not blocked.
    for (const m of [b, c]) expect(await decide(m.url, mac)).toMatchObject({ decision: 'active' });
    expect((await call(a.url, 'POST', '/api/v1/metals/m0/block', { reason: 'e2e' })).status).toBe(202);
    const answered = performance.now();
    const refusedAfter = await Promise.all(
      [b, c].map(async (m) => {
        for (;;) {
          if ((await decide(m.url, mac)).reason === 'metal_blocked') return performance.now() - answered;
          await new Promise((r) => setTimeout(r, 20));
        }
      }),
    );
    for (const ms of refusedAfter) expect(ms).toBeLessThanOrEqual(1_000);
    expect((await call(b.url, 'POST', '/api/v1/metals/m0/unblock')).status).toBeLessThan(300);
    await expect.poll(async () => (await decide(c.url, mac)).decision, { timeout: 1_000, interval: 20 }).toBe('active');
  });

  it('a long Glaze upload streams through HAProxy into S3 and reads back whole from another replica', async () => {
    const bytes = randomBytes(6 * 2 ** 20);
    // Sent in 64 KiB pieces over a few seconds: HAProxy must pass a slow, long request body.
    const body = new ReadableStream<Uint8Array>({
      async start(ctl) {
        for (let off = 0; off < bytes.length; off += 65_536) {
          ctl.enqueue(bytes.subarray(off, off + 65_536));
          if (off % (16 * 65_536) === 0) await new Promise((r) => setTimeout(r, 150));
        }
        ctl.close();
      },
    });
    const up = await fetch(`${lb}/api/v1/glazes?name=long`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) },
      body,
      duplex: 'half',
    } as RequestInit);
    expect(up.status).toBe(201);
    const sha = createHash('sha256').update(bytes).digest('hex');
    for (const m of masters) {
      const down = await fetch(`${m.url}/api/v1/glazes/long/content`, { headers: { authorization: `Bearer ${admin}` } });
      expect(createHash('sha256').update(Buffer.from(await down.arrayBuffer())).digest('hex')).toBe(sha);
    }
  });

  it('a registration storm of 1,000 rows survives kill -9 of a replica and then of a NATS node: every row decided, recorded exactly once, and queued commands delivered after the reconnect', async () => {
    // The gateway's command channel, through HAProxy: find the replica that holds it.
    let channel = await gw.connect(lb);
    const holder = async () => {
      for (const m of masters) {
        if (m.proc.exitCode !== null || m.proc.signalCode !== null) continue;
        if ((await call(m.url, 'GET', '/api/v1/gateways/site')).body?.connected) return m;
      }
      return undefined;
    };
    await until('channel registered', async () => (await holder()) !== undefined, 10_000);
    const victim = (await holder())!;

    // Each registration carries its idempotency key, the same on every retry (what tips-gateway's registrar does).
    const rows = Array.from({ length: ROWS }, (_, i) => ({ mac: macOf(i), ip: `10.9.${i >> 8}.${i & 0xff}`, gatewayInterface: 'lan0', idempotencyKey: `storm-${i}-${dbName}` }));
    const decided = new Map<string, string>();
    const attempts = new Map<string, number>();
    const batches: (typeof rows)[] = [];
    for (let i = 0; i < rows.length; i += 25) batches.push(rows.slice(i, i + 25));
    // What a gateway does: each batch is retried until answered (a 502/503 or a cut connection is not an answer).
    const sendBatch = async (batch: typeof rows) => {
      for (;;) {
        for (const r of batch) attempts.set(r.mac, (attempts.get(r.mac) ?? 0) + 1);
        const res = await signed(lb, 'POST', '/api/gateway/v1/registrations/batch', { items: batch }).catch(() => undefined);
        if (res?.status === 200) {
          for (const [i, r] of batch.entries()) decided.set(r.mac, res.body.items[i].decision === 'active' ? 'active' : res.body.items[i].reason);
          return;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    let next = 0;
    const workers = Array.from({ length: 4 }, async () => {
      while (next < batches.length) await sendBatch(batches[next++]!);
    });
    // A quarter in: kill -9 the replica holding the gateway's channel; half-way: kill -9 a NATS node.
    await until('a quarter decided', async () => decided.size >= ROWS / 4, 60_000);
    await victim.stop('SIGKILL');
    await until('half decided', async () => decided.size >= ROWS / 2, 60_000);
    await nats.nodes[0]!.kill();
    await Promise.all(workers);

    expect(decided.size).toBe(ROWS);
    for (let i = 0; i < ROWS; i++) expect(decided.get(macOf(i))).toBe(i < DECLARED ? 'active' : 'unknown_mac');
    const db = new pg.Client({ connectionString: dbUrl });
    await db.connect();
    try {
      const { rows: counts } = await db.query<{ mac: string; n: number }>(
        'SELECT mac, count(*)::int AS n FROM discovery_registrations WHERE gateway_id = $1 AND ip LIKE $2 GROUP BY mac',
        [gw.id, '10.9.%'],
      );
      const recorded = new Map(counts.map((r) => [r.mac, r.n]));
      // Every decision recorded exactly once: a batch cut by the kill may have been committed by the
      // dying replica before its answer was lost; its retry (same keys) is answered from those records.
      const retried = rows.filter((r) => attempts.get(r.mac)! > 1).length;
      expect(rows.filter((r) => recorded.get(r.mac) !== 1).map((r) => `${r.mac}: ${recorded.get(r.mac) ?? 0} records, ${attempts.get(r.mac)} attempts`), `${retried} rows retried`).toEqual([]);
    } finally {
      await db.end();
    }

    // The channel died with its replica. While the gateway is away, a block is queued in the
    // database through a surviving replica (with one NATS node gone); it is refused by the other
    // survivor within 1 s, and delivered by whichever replica the gateway reconnects to.
    expect(await channel.closed).toBeGreaterThan(0);
    const alive = masters.filter((m) => m !== victim) as [RunningMaster, RunningMaster];
    for (const m of alive) await until('bus up after the NATS node died', async () => (await (await fetch(`${m.url}/readyz`)).json()).bus === 'up', 15_000);
    expect(await decide(alive[1].url, macOf(1))).toMatchObject({ decision: 'active' });
    expect((await call(alive[0].url, 'POST', '/api/v1/metals/m1/block', { reason: 'after the storm' })).status).toBe(202);
    const answered = performance.now();
    await expect.poll(async () => (await decide(alive[1].url, macOf(1))).reason, { timeout: 1_000, interval: 20 }).toBe('metal_blocked');
    expect(performance.now() - answered).toBeLessThanOrEqual(1_000);
    // HAProxy has marked the dead replica down (health checks on /readyz) and connects the channel to a survivor.
    await until(
      'the channel reconnected through HAProxy',
      async () => {
        const ch = await gw.connect(lb).catch(() => undefined);
        if (ch) channel = ch;
        return ch !== undefined;
      },
      15_000,
    );
    const block = await channel.next((cmd) => cmd.type === 'block' && cmd.macs?.includes(macOf(1)) === true, 10_000);
    expect(block.reason).toBe('after the storm');
    channel.ws.send(JSON.stringify({ type: 'ack', ref: block.id }));
    channel.ws.close();
  });
});

