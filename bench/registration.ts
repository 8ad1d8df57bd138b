/**
 * bench/registration: TIPS-D registration decisions per second at a real master process (SQLite).
 *
 *   node --import tsx bench/registration.ts     # TIPS_BENCH_METALS, _CONNECTIONS, _SECONDS to change
 *
 * Prepares 10,000 distinct metals, each with a default Phase 1 Space, through the master's own
 * services on a fresh data dir, enrolls one gateway, then starts `tips-master` on that data dir and
 * drives it over loopback from this process in two modes, one after the other in the same run:
 *   single: POST /api/gateway/v1/registrations, one registration per request (a lone lease);
 *   batch:  POST /api/gateway/v1/registrations/batch, TIPS_BENCH_BATCH (default 64) per request
 *           (a gateway re-registering its table after a restart, a fleet powering on);
 *   mtls:   POST /api/gateway/v1/registrations, one per request, over TLS with the gateway's client
 *           certificate (issued by this master at enrollment) and no signature: the channel
 *           authenticates the gateway (issue 13). Its peer is a bare Fastify over HTTPS that demands
 *           the same client certificate against the same CA, on the same kind of connections.
 * single and batch requests are TIPS-GW-1 signed (a fresh nonce and signature each), on keep-alive
 * HTTP/1.1 connections. 90 % of the MACs belong to a metal (decision active), 10 % are unknown (blocked,
 * unknown_mac), so both paths and the decision log are exercised. Every answer is checked, and at
 * the end the decision records in the database are counted against the decisions answered.
 * Prints decisions/s, master CPU per decision and latency percentiles per mode, and a bare-Fastify
 * peer driven by the same generator with the same requests.
 *
 *   TIPS_BENCH_PROFILE=DIR  also writes a V8 CPU profile of the master (node --cpu-prof) into DIR.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { spawnSync } from 'node:child_process';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Mac } from '@tips/core';
import { createServices } from '../apps/master/src/app.ts';
import { FsBlobStore } from '../apps/master/src/blob/fs-blob-store.ts';
import { openDatabase } from '../apps/master/src/db/database.ts';
import { startMaster, TIPS_MASTER } from '../e2e/helpers.ts';

const METALS = Number(process.env.TIPS_BENCH_METALS ?? 10_000);
const CONNECTIONS = Number(process.env.TIPS_BENCH_CONNECTIONS ?? 64);
const SECONDS = Number(process.env.TIPS_BENCH_SECONDS ?? 15);
const BATCH = Number(process.env.TIPS_BENCH_BATCH ?? 64);
const BATCH_CONNECTIONS = Number(process.env.TIPS_BENCH_BATCH_CONNECTIONS ?? 8);
const PROFILE = process.env.TIPS_BENCH_PROFILE;
const GOAL = 5_000;
const PATH = '/api/gateway/v1/registrations';
const BATCH_PATH = '/api/gateway/v1/registrations/batch';

const macOf = (i: number) => `02:${[(i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255, 0x10].map((b) => b.toString(16).padStart(2, '0')).join(':')}` as Mac;
const unknownMacOf = (i: number) => `06:${[(i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255, 0x20].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;

async function prepare(dir: string): Promise<{ enrollmentToken: string }> {
  const db = await openDatabase({ kind: 'sqlite', file: join(dir, 'tips.db') });
  const s = createServices({ db, blobs: await FsBlobStore.open(join(dir, 'glazes')) });
  const admin = await s.owners.ensureAdmin();
  const owner = (await s.owners.createOwnerAsAdmin(admin!.owner, 'bench')).owner;
  const t0 = performance.now();
  for (let i = 0; i < METALS; i++) {
    // 100 metals per Space: adding a member answers with the whole Space, so one huge Space would make setup quadratic.
    if (i % 100 === 0) await s.spaces.create(owner.id, { name: `os-${i / 100}`, phase: 1 });
    await s.metals.create(owner.id, { name: `m${i}`, interfaces: [{ name: 'eth0', mac: macOf(i), type: 'ethernet', pxe: true }] });
    await s.spaces.addMember(owner.id, `os-${Math.floor(i / 100)}`, { metal: `m${i}`, interfaces: ['eth0'], default: true });
  }
  process.stdout.write(`prepared ${METALS} metals with a default Phase 1 Space in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  // Enrolled once the master runs (below), so its certificate comes from that master's CA.
  const { enrollmentToken } = await s.gateways.create(owner.id, { name: 'gw-bench' });
  await db.destroy();
  return { enrollmentToken };
}

/** The gateway's client TLS material: what `POST /enroll` answered, and the CA its peer must trust. */
interface GatewayTls {
  cert: string;
  key: string;
  ca: string;
}

/** One registration request without a signature (the mTLS connection authenticates the gateway). */
function unsignedRequest(host: string, path: string, body: string): Buffer {
  return Buffer.from(`POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

/** One signed registration request as raw HTTP/1.1 bytes (TIPS-GW-1 headers, a fresh nonce). */
function signedRequest(host: string, gatewayId: string, key: KeyObject, path: string, body: string): Buffer {
  const timestamp = Date.now();
  const nonce = randomBytes(16).toString('base64url');
  const digest = createHash('sha256').update(body).digest('hex');
  const signature = sign(null, Buffer.from(`TIPS-GW-1\nPOST\n${path}\n${timestamp}\n${nonce}\n${digest}`), key).toString('base64url');
  return Buffer.from(
    `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Tips-Gateway: ${gatewayId}\r\nX-Tips-Timestamp: ${timestamp}\r\nX-Tips-Nonce: ${nonce}\r\nX-Tips-Signature: ${signature}\r\n\r\n${body}`,
  );
}

/**
 * A keep-alive HTTP/1.1 connection that sends one request at a time and reads one response
 * (status line, Content-Length, body). Leaner than node:http's client, so the load generator is
 * not what limits the figure on a 2-core machine; the master sees ordinary HTTP/1.1 requests.
 */
class Connection {
  private buf: Buffer = Buffer.alloc(0);
  private pending: { resolve: (r: { status: number; text: string }) => void; reject: (e: Error) => void } | undefined;
  private readonly socket: Socket;

  constructor(port: number, tls?: GatewayTls) {
    // Over TLS the server's name is not checked (a bench on loopback); its chain is, against `ca`.
    this.socket = tls
      ? tlsConnect({ host: '127.0.0.1', port, cert: tls.cert, key: tls.key, ca: tls.ca, checkServerIdentity: () => undefined }).setNoDelay(true)
      : connect({ host: '127.0.0.1', port, noDelay: true });
    this.socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      this.parse();
    });
    this.socket.on('error', (e) => this.pending?.reject(e));
    this.socket.on('close', () => this.pending?.reject(new Error('connection closed by the master')));
  }

  send(request: Buffer): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(request);
    });
  }

  private parse(): void {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.buf.subarray(0, end).toString('latin1');
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? Number.NaN);
    if (Number.isNaN(length)) {
      this.pending?.reject(new Error(`response without content-length: ${head}`));
      return;
    }
    if (this.buf.length < end + 4 + length) return;
    const text = this.buf.subarray(end + 4, end + 4 + length).toString('utf8');
    this.buf = this.buf.subarray(end + 4 + length);
    const p = this.pending;
    this.pending = undefined;
    p?.resolve({ status: Number(head.slice(9, 12)), text });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc (clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** One registration of the generator: the i-th MAC, 1 in 10 unknown to the master. */
function registration(i: number): { unknown: boolean; item: Record<string, unknown> } {
  const unknown = i % 10 === 9;
  const mac = unknown ? unknownMacOf(i) : macOf(i % METALS);
  return { unknown, item: { mac, ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, gatewayInterface: 'lan0', interfaceType: 'ethernet', pxe: true } };
}

type Answer = { decision: string; tipsId?: string; reason?: string };

function checkAnswer(d: Answer | undefined, unknown: boolean, raw: string): void {
  if (unknown ? d?.decision !== 'blocked' || d.reason !== 'unknown_mac' : d?.decision !== 'active' || typeof d.tipsId !== 'string') {
    throw new Error(`wrong decision: ${raw.slice(0, 300)}`);
  }
}

/**
 * Drives `connections` keep-alive connections for `seconds`, each sending one signed request at a
 * time carrying `perRequest` registrations (1: the single endpoint; more: the batch endpoint).
 */
async function drive(base: string, gatewayId: string, key: KeyObject, seconds: number, record: boolean, perRequest: number, connectionCount: number, check = true, tls?: GatewayTls) {
  const url = new URL(base);
  const connections = Array.from({ length: connectionCount }, () => new Connection(Number(url.port), tls));
  const latencies: number[] = [];
  let next = 0;
  let active = 0;
  let blocked = 0;
  let requests = 0;
  const end = performance.now() + seconds * 1000;
  const worker = async (c: Connection) => {
    while (performance.now() < end) {
      const regs = Array.from({ length: perRequest }, () => registration(next++));
      const body = perRequest === 1 ? JSON.stringify(regs[0]!.item) : JSON.stringify({ items: regs.map((r) => r.item) });
      const path = perRequest === 1 ? PATH : BATCH_PATH;
      const request = tls ? unsignedRequest(url.host, path, body) : signedRequest(url.host, gatewayId, key, path, body);
      const t = performance.now();
      const r = await c.send(request);
      if (record) latencies.push(performance.now() - t);
      if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.text}`);
      const parsed = JSON.parse(r.text) as Answer | { items: Answer[] };
      const answers = perRequest === 1 ? [parsed as Answer] : (parsed as { items: Answer[] }).items;
      if (answers.length !== perRequest) throw new Error(`${answers.length} answers for ${perRequest} registrations`);
      for (const [k, d] of answers.entries()) {
        if (check) checkAnswer(d, regs[k]!.unknown, r.text);
        if (d.decision === 'active') active++;
        else blocked++;
      }
      requests++;
    }
  };
  const t0 = performance.now();
  try {
    await Promise.all(connections.map(worker));
  } finally {
    for (const c of connections) c.close();
  }
  const ms = performance.now() - t0;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
  return { total: active + blocked, requests, active, blocked, ms, perSecond: ((active + blocked) / ms) * 1000, p50: pct(50), p99: pct(99), max: latencies.at(-1) ?? 0 };
}

/**
 * The floor any HTTP answer pays on this machine at this moment: a bare Fastify server that parses
 * the same JSON body and answers a constant decision, driven by the same generator and requests.
 */
async function peer(tls?: { cert: string; key: string; clientCa: string }): Promise<{ url: string; pid: number; stop: () => void }> {
  const https = tls ? `{ https: { cert: ${JSON.stringify(tls.cert)}, key: ${JSON.stringify(tls.key)}, ca: ${JSON.stringify(tls.clientCa)}, requestCert: true, rejectUnauthorized: true } }` : '{}';
  const script = `import Fastify from 'fastify';
const app = Fastify(${https});
app.post('${PATH}', async (req) => ({ decision: 'active', tipsId: 'mtl_' + req.body.mac.length }));
app.post('${BATCH_PATH}', async (req) => ({ items: req.body.items.map((i) => ({ decision: 'active', tipsId: 'mtl_' + i.mac.length })) }));
const a = await app.listen({ port: 0, host: '127.0.0.1' });
console.log('listening on ' + a);`;
  const proc = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: join(import.meta.dirname, '..'), stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  while (!/listening on (\S+)/.test(out)) {
    if (proc.exitCode !== null) throw new Error(`peer exited ${proc.exitCode}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url: /listening on (\S+)/.exec(out)![1]!, pid: proc.pid!, stop: () => proc.kill() };
}

/** `tips-master` on the data dir, under `node --cpu-prof` when TIPS_BENCH_PROFILE names a directory. */
async function master(dir: string): Promise<{ url: string; tlsUrl: string; proc: import('node:child_process').ChildProcess; stop: () => Promise<void> }> {
  if (!PROFILE) {
    const m = await startMaster(['--host', '127.0.0.1', '--data-dir', dir]);
    return { ...m, tlsUrl: /TLS listening on (\S+)/.exec(m.output())![1]! };
  }
  const proc = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`, TIPS_MASTER, '--port', '0', '--tls-port', '0', '--log-level', 'warn', '--host', '127.0.0.1', '--data-dir', dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  while (!/^TIPS master ready$/m.test(out)) {
    if (proc.exitCode !== null) throw new Error(`tips-master exited ${proc.exitCode}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: /listening on (\S+)/.exec(out)![1]!,
    tlsUrl: /TLS listening on (\S+)/.exec(out)![1]!,
    proc,
    stop: async () => {
      proc.kill('SIGTERM');
      await once(proc, 'exit');
    },
  };
}

/** Decision records in the database (counted after the master stopped). */
async function recordedDecisions(dir: string): Promise<number> {
  const db = await openDatabase({ kind: 'sqlite', file: join(dir, 'tips.db') });
  try {
    const r = await db.selectFrom('discovery_registrations').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(r.n);
  } finally {
    await db.destroy();
  }
}

interface Mode {
  name: string;
  perRequest: number;
  connections: number;
  tls?: boolean;
}

const MODES: Mode[] = [
  { name: 'single', perRequest: 1, connections: CONNECTIONS },
  { name: `batch of ${BATCH}`, perRequest: BATCH, connections: BATCH_CONNECTIONS },
  { name: 'mtls single, unsigned', perRequest: 1, connections: CONNECTIONS, tls: true },
].filter((m) => (process.env.TIPS_BENCH_MODES ?? 'single,batch,mtls').split(',').includes(m.name.split(' ')[0]!));

const dir = mkdtempSync(join(tmpdir(), 'tips-bench-registration-'));
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
try {
  const { enrollmentToken } = await prepare(dir);
  const m = await master(dir);
  const enrolled = await fetch(`${m.url}/api/gateway/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ enrollmentToken, publicKey: publicKey.export({ format: 'pem', type: 'spki' }).toString() }),
  });
  if (enrolled.status !== 201) throw new Error(`gateway enroll: ${enrolled.status} ${await enrolled.text()}`);
  const issued = (await enrolled.json()) as { gatewayId: string; certificate: string; caChain: string };
  const gatewayId = issued.gatewayId;
  const gatewayTls: GatewayTls = { cert: issued.certificate, key: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), ca: issued.caChain };
  const results: { mode: Mode; r: Awaited<ReturnType<typeof drive>>; masterCpu: number; generatorCpu: number; load: string; warm: number }[] = [];
  try {
    const pid = m.proc.pid!;
    for (const mode of MODES) {
      const base = mode.tls ? m.tlsUrl : m.url;
      const tls = mode.tls ? gatewayTls : undefined;
      const warm = await drive(base, gatewayId, privateKey, 2, false, mode.perRequest, mode.connections, true, tls);
      const cpu0 = cpuSeconds(pid);
      const self0 = process.cpuUsage();
      const r = await drive(base, gatewayId, privateKey, SECONDS, true, mode.perRequest, mode.connections, true, tls);
      const masterCpu = cpuSeconds(pid) - cpu0;
      const self = process.cpuUsage(self0);
      const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
      results.push({ mode, r, masterCpu, generatorCpu: (self.user + self.system) / 1e6, load, warm: warm.total });
    }
  } finally {
    await m.stop();
  }
  const answered = results.reduce((n, x) => n + x.r.total + x.warm, 0);
  const recorded = await recordedDecisions(dir);
  if (recorded !== answered) throw new Error(`${answered} decisions answered but ${recorded} recorded`);
  const peers: { perSecond: number; cpu: number; total: number }[] = [];
  // The peer of the mTLS mode: HTTPS with a P-256 server certificate of its own (openssl), the
  // gateway's client certificate demanded and verified against the same TIPS CA chain.
  const peerKey = join(dir, 'peer.key');
  const peerCert = join(dir, 'peer.pem');
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', peerKey, '-out', peerCert, '-days', '1', '-subj', '/CN=localhost'], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`openssl: ${made.stderr}`);
  for (const mode of MODES) {
    const bare = await peer(mode.tls ? { cert: readFileSync(peerCert, 'utf8'), key: readFileSync(peerKey, 'utf8'), clientCa: gatewayTls.ca } : undefined);
    const tls = mode.tls ? { ...gatewayTls, ca: readFileSync(peerCert, 'utf8') } : undefined;
    try {
      await drive(bare.url, gatewayId, privateKey, 2, false, mode.perRequest, mode.connections, false, tls);
      const c0 = cpuSeconds(bare.pid);
      const p = await drive(bare.url, gatewayId, privateKey, SECONDS, true, mode.perRequest, mode.connections, false, tls);
      peers.push({ perSecond: p.perSecond, cpu: cpuSeconds(bare.pid) - c0, total: p.total });
    } finally {
      bare.stop();
    }
  }
  const us = (cpu: number, n: number) => ((cpu / n) * 1e6).toFixed(0);
  const lines = [
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}`,
    `metals: ${METALS}; measured ${SECONDS} s per mode after a 2 s warm-up; decision records in the database = decisions answered: ${recorded}`,
  ];
  for (const [k, { mode, r, masterCpu, generatorCpu, load }] of results.entries()) {
    const p = peers[k]!;
    lines.push(
      `[${mode.name}] ${mode.connections} connections, ${mode.perRequest} registration(s) per request`,
      `  decisions: ${r.total} in ${r.requests} requests (${r.active} active, ${r.blocked} blocked unknown_mac), all checked`,
      `  throughput: ${Math.round(r.perSecond)} decisions/s (goal ≥ ${GOAL}: ${r.perSecond >= GOAL ? 'met' : 'NOT met'})`,
      `  latency per request: p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, max ${r.max.toFixed(1)} ms`,
      `  master CPU: ${masterCpu.toFixed(2)} s = ${us(masterCpu, r.total)} µs per decision → ${Math.round(r.total / masterCpu)} decisions per master CPU-second`,
      `  load generator CPU: ${us(generatorCpu, r.total)} µs per decision; load average at the end: ${load}`,
      `  peer (bare Fastify, constant answers, same generator and requests): ${Math.round(p.perSecond)} answers/s, ${us(p.cpu, p.total)} µs CPU per answer → master/peer throughput ${(r.perSecond / p.perSecond).toFixed(2)}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
