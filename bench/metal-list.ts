/**
 * bench/metal-list: pages of the metal list at a real master process with 100,000 metals.
 *
 *   node --import tsx bench/metal-list.ts     # TIPS_BENCH_METALS, _LIMIT, _CONNECTIONS, _SECONDS to change
 *   TIPS_BENCH_PG=postgres://…  also runs the master on that PostgreSQL (a fresh schema, dropped after)
 *   TIPS_BENCH_PROFILE=DIR      also writes a V8 CPU profile of the master (node --cpu-prof) into DIR
 *   TIPS_BENCH_READ_THREADS=0,1,0,1  one master per value of --read-threads, alternated on the same data (A/B)
 *   TIPS_BENCH_RATE=2000        the open-loop pass's offered rate (pages/s; 0 = no open-loop pass)
 *   TIPS_BENCH_WRITES=50        the churn pass: the closed loop again while that many metals a second are
 *                               relabelled through the API (0 = no churn pass); pages from memory vs database
 *   TIPS_BENCH_VARIANTS='[{"label":"base","bin":"/tmp/base/apps/master/bin/tips-master.js"},{"label":"this"},…]'
 *                               one master per entry, in that order, on the same data (A/B against another
 *                               checkout's build, or `"nodeArgs":[…]` / `"env":{…}` for this one)
 *
 * Writes the metals straight into the database in transactions of 500 rows (the rows the metals
 * store writes, its `interfaces` copy included; 100,000 HTTP calls would measure the create path, not the list), starts
 * `tips-master` on that database, walks the whole list once with `?limit=` pages (checking every
 * metal comes exactly once, and collecting the cursors), then drives GET /api/v1/metals?limit=100
 * &cursor=… over keep-alive HTTP/1.1 connections, each request a random page of the list, for
 * TIPS_BENCH_SECONDS. The peer, in the same run: a bare Fastify process answering one of those
 * pages' exact bytes from memory, driven by the same generator.
 * Goal (issue 10): p99 ≤ 20 ms and ≥ 2,000 pages/s at 32 connections.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createServices } from '../apps/master/src/app.ts';
import { FsBlobStore } from '../apps/master/src/blob/fs-blob-store.ts';
import { type DatabaseConfig, openDatabase } from '../apps/master/src/db/database.ts';
import { storedMetalJson } from '../apps/master/src/domains/metals/model.ts';
import { startMaster } from '../e2e/helpers.ts';

const METALS = Number(process.env.TIPS_BENCH_METALS ?? 100_000);
const LIMIT = Number(process.env.TIPS_BENCH_LIMIT ?? 100);
const CONNECTIONS = Number(process.env.TIPS_BENCH_CONNECTIONS ?? 32);
const SECONDS = Number(process.env.TIPS_BENCH_SECONDS ?? 15);
const PG_URL = process.env.TIPS_BENCH_PG;
const PROFILE = process.env.TIPS_BENCH_PROFILE;
const GOAL = { p99Ms: 20, pagesPerSecond: 2_000 };
/** Open loop: pages/s offered over the same connections, each latency counted from its scheduled send time. */
const RATE = Number(process.env.TIPS_BENCH_RATE ?? GOAL.pagesPerSecond);
/** Churn pass: metals relabelled per second through the API while the closed loop runs again (0 = no such pass). */
const WRITES = Number(process.env.TIPS_BENCH_WRITES ?? 50);

const hex = (n: number, bytes: number) => n.toString(16).padStart(bytes * 2, '0');
const macOf = (i: number) => `02:${hex((i >> 24) & 255, 1)}:${hex((i >> 16) & 255, 1)}:${hex((i >> 8) & 255, 1)}:${hex(i & 255, 1)}:30`;

/** Owner, API token and METALS metals (two interfaces, two labels each), written in bulk. */
async function prepare(config: DatabaseConfig, dir: string): Promise<{ token: string }> {
  const db = await openDatabase(config);
  try {
    const s = createServices({ db, blobs: await FsBlobStore.open(join(dir, 'glazes')) });
    const admin = await s.owners.ensureAdmin();
    const { owner, token } = await s.owners.createOwnerAsAdmin(admin!.owner, 'bench');
    const t0 = performance.now();
    const base = Date.parse('2026-01-01T00:00:00Z');
    for (let from = 0; from < METALS; from += 500) {
      const n = Math.min(500, METALS - from);
      await db.transaction().execute(async (tx) => {
        const ids = Array.from({ length: n }, () => `mtl_${randomBytes(13).toString('hex').slice(0, 26)}`);
        await tx
          .insertInto('metals')
          .values(
            ids.map((id, k) => {
              const i = from + k;
              // A few metals per millisecond, as a fleet import makes them: ties on created_at are broken by ID.
              const at = new Date(base + Math.floor(i / 3)).toISOString();
              const interfaces = JSON.stringify([
                { name: 'eth0', mac: macOf(i), type: 'ethernet', pxe: true },
                { name: 'wlan0', mac: macOf(i).replace(/:30$/, ':31'), type: 'wifi', pxe: false },
              ]);
              const name = `node-${String(i).padStart(6, '0')}`;
              const labels = JSON.stringify({ rack: `r${i % 40}`, site: 'bench' });
              // The list item the store writes with every row (0015), from the same fields.
              const list_item = storedMetalJson({ id: id as never, name, labelsJson: labels, interfacesJson: interfaces, engine: null, createdAt: at, updatedAt: at });
              return { id, owner_id: owner.id, name, labels, interfaces, created_at: at, updated_at: at, list_item };
            }),
          )
          .execute();
        await tx
          .insertInto('metal_interfaces')
          .values(
            ids.flatMap((id, k) => [
              { metal_id: id, owner_id: owner.id, name: 'eth0', mac: macOf(from + k), type: 'ethernet', pxe: 1, position: 0 },
              { metal_id: id, owner_id: owner.id, name: 'wlan0', mac: macOf(from + k).replace(/:30$/, ':31'), type: 'wifi', pxe: 0, position: 1 },
            ]),
          )
          .execute();
      });
    }
    process.stdout.write(`prepared ${METALS} metals in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    return { token };
  } finally {
    await db.destroy();
  }
}

/** A keep-alive HTTP/1.1 connection, one request at a time (leaner than node:http on 2 cores). */
class Connection {
  private buf: Buffer = Buffer.alloc(0);
  private pending: { resolve: (r: { status: number; body: Buffer }) => void; reject: (e: Error) => void } | undefined;
  private readonly socket: Socket;

  constructor(port: number) {
    this.socket = connect({ host: '127.0.0.1', port, noDelay: true });
    this.socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      this.parse();
    });
    this.socket.on('error', (e) => this.pending?.reject(e));
    this.socket.on('close', () => this.pending?.reject(new Error('connection closed')));
  }

  get(host: string, path: string, token: string): Promise<{ status: number; body: Buffer }> {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\n\r\n`);
    });
  }

  patch(host: string, path: string, token: string, json: unknown): Promise<{ status: number; body: Buffer }> {
    const body = Buffer.from(JSON.stringify(json));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(`PATCH ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
      this.socket.write(body);
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
    const body = this.buf.subarray(end + 4, end + 4 + length);
    this.buf = this.buf.subarray(end + 4 + length);
    const p = this.pending;
    this.pending = undefined;
    p?.resolve({ status: Number(head.slice(9, 12)), body });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Walks the whole list once: every metal exactly once; returns the cursor of every page and one page's bytes. */
async function walk(base: string, token: string): Promise<{ cursors: string[]; sample: Buffer; ids: string[] }> {
  const url = new URL(base);
  const c = new Connection(Number(url.port));
  const seen = new Set<string>();
  const cursors = [''];
  const ids: string[] = [];
  let sample: Buffer = Buffer.alloc(0);
  try {
    for (;;) {
      const cursor = cursors.at(-1)!;
      const r = await c.get(url.host, `/api/v1/metals?limit=${LIMIT}${cursor ? `&cursor=${cursor}` : ''}`, token);
      if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.body.toString().slice(0, 300)}`);
      const page = JSON.parse(r.body.toString('utf8')) as { items: { id: string; interfaces: { mac: string }[] }[]; nextCursor: string | null };
      if (cursors.length === 2) sample = r.body;
      for (const m of page.items) {
        if (seen.has(m.id)) throw new Error(`metal ${m.id} listed twice`);
        if (m.interfaces.length !== 2) throw new Error(`metal ${m.id} listed with ${m.interfaces.length} interfaces, not 2`);
        seen.add(m.id);
      }
      if (page.nextCursor === null) break;
      cursors.push(page.nextCursor);
      if (ids.length < 1000) ids.push(...page.items.slice(0, 1000 - ids.length).map((m) => m.id));
    }
  } finally {
    c.close();
  }
  if (seen.size !== METALS) throw new Error(`walked ${seen.size} metals, expected ${METALS}`);
  return { cursors, sample, ids };
}

/** CPU seconds (user + system) a process — or, with `thread`, one of its threads — has used so far, from /proc (clock ticks of 10 ms). */
function cpuSeconds(pid: number, thread?: number, which: 'all' | 'system' = 'all'): number {
  const stat = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((which === 'all' ? Number(fields[11]) : 0) + Number(fields[12])) / 100;
}

/**
 * `connections` keep-alive connections for `seconds`. Closed loop (no `rate`): each asks a random page
 * as soon as its last answer came — the saturated rate, with latencies that are mostly queueing
 * (32 requests waiting on one event loop). Open loop (`rate` pages/s): request k is due at
 * t0 + k/rate, on connection k mod connections; a connection still waiting for its previous answer
 * sends late, and the latency is counted from the time the request was due, not from when it went
 * out (no coordinated omission: a stall shows up in every request it delayed, as in wrk2).
 */
async function drive(base: string, token: string, paths: string[], seconds: number, expectBytes?: number, rate?: number) {
  const url = new URL(base);
  const connections = Array.from({ length: CONNECTIONS }, () => new Connection(Number(url.port)));
  const latencies: number[] = [];
  let bytes = 0;
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  const worker = async (c: Connection, i: number) => {
    for (let j = 0; ; j++) {
      // Open loop: this connection's j-th request is the (j·connections + i)-th of the whole schedule.
      const due = rate ? start + (j * CONNECTIONS + i) / (rate / 1000) : performance.now();
      if (due >= end) break;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const path = paths[Math.floor(Math.random() * paths.length)]!;
      const r = await c.get(url.host, path, token);
      latencies.push(performance.now() - due);
      if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.body.toString().slice(0, 300)}`);
      if (expectBytes !== undefined && r.body.length !== expectBytes) throw new Error(`peer answered ${r.body.length} bytes`);
      bytes += r.body.length;
    }
  };
  const t0 = performance.now();
  try {
    await Promise.all(connections.map((c, i) => worker(c, i)));
  } finally {
    for (const c of connections) c.close();
  }
  const ms = performance.now() - t0;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
  return { pages: latencies.length, perSecond: (latencies.length / ms) * 1000, p50: pct(50), p99: pct(99), max: latencies.at(-1) ?? 0, avgBytes: bytes / latencies.length };
}

/** Relabels a metal of `ids` through the API `perSecond` times a second until `until` resolves; returns how many. */
async function churn(base: string, token: string, ids: string[], perSecond: number, until: Promise<unknown>): Promise<number> {
  const url = new URL(base);
  const c = new Connection(Number(url.port));
  let done = false;
  void until.finally(() => {
    done = true;
  });
  let n = 0;
  const t0 = performance.now();
  try {
    while (!done) {
      const wait = t0 + (n * 1000) / perSecond - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const id = ids[n % ids.length]!;
      const r = await c.patch(url.host, `/api/v1/metals/${id}`, token, { labels: { role: 'bench', churn: String(n) } });
      if (r.status !== 200) throw new Error(`PATCH ${id}: HTTP ${r.status}: ${r.body.toString().slice(0, 300)}`);
      n++;
    }
  } finally {
    c.close();
  }
  return n;
}

/** The master's count of list pages answered from memory and from the database (its /metrics). */
async function pagesBySource(base: string): Promise<{ memory: number; database: number }> {
  const text = await (await fetch(new URL('/metrics', base))).text();
  const of = (source: string) => Number(new RegExp(`tips_master_metal_list_pages_total\\{source="${source}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
  return { memory: of('memory'), database: of('database') };
}

/** The floor: a bare Fastify process answering one real page's bytes from memory. */
async function peer(sampleFile: string): Promise<{ url: string; pid: number; stop: () => void }> {
  const script = `import Fastify from 'fastify';
import { readFileSync } from 'node:fs';
const page = readFileSync(${JSON.stringify(sampleFile)});
const app = Fastify();
app.get('/api/v1/metals', (req, reply) => { reply.type('application/json; charset=utf-8').send(page); });
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

type Drive = Awaited<ReturnType<typeof drive>>;

/** One master with `env`: walks the list once (first run only keeps the walk), then drives random pages. */
interface Variant {
  label: string;
  /** Another checkout's `apps/master/bin/tips-master.js` (its own dist/); this tree's by default. */
  bin?: string;
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
}

async function measureMaster(store: string, dir: string, masterArgs: string[], v: Variant, token: string, walked?: Awaited<ReturnType<typeof walk>>) {
  const nodeArgs = [...(v.nodeArgs ?? []), ...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`] : [])];
  const m = await startMaster(['--host', '127.0.0.1', '--data-dir', dir, ...masterArgs], v.env ?? {}, nodeArgs, v.bin);
  try {
    if (!walked) {
      const t0 = performance.now();
      walked = await walk(m.url, token);
      const walkMs = performance.now() - t0;
      process.stdout.write(`[${store}] walked ${METALS} metals in ${walked.cursors.length} pages of ${LIMIT}, each exactly once, in ${(walkMs / 1000).toFixed(1)} s\n`);
    }
    const paths = walked.cursors.map((c) => `/api/v1/metals?limit=${LIMIT}${c ? `&cursor=${c}` : ''}`);
    await drive(m.url, token, paths, 2);
    const cpu0 = cpuSeconds(m.proc.pid!);
    const sys0 = cpuSeconds(m.proc.pid!, undefined, 'system');
    const main0 = cpuSeconds(m.proc.pid!, m.proc.pid!);
    const r = await drive(m.url, token, paths, SECONDS);
    const cpuPerPage = ((cpuSeconds(m.proc.pid!) - cpu0) / r.pages) * 1e6;
    const sysPerPage = ((cpuSeconds(m.proc.pid!, undefined, 'system') - sys0) / r.pages) * 1e6;
    // The event loop's thread alone (the process figure also counts SQLite read threads, libuv and GC helpers).
    const mainPerPage = ((cpuSeconds(m.proc.pid!, m.proc.pid!) - main0) / r.pages) * 1e6;
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const open = RATE > 0 ? await drive(m.url, token, paths, SECONDS, undefined, RATE) : undefined;
    // The same closed loop while metals change through the API: every page still exact (the list from memory
    // applies the database's change log before each page), and how many pages came from memory.
    let churned: { r: Drive; writes: number; memory: number; database: number } | undefined;
    if (WRITES > 0) {
      const before = await pagesBySource(m.url);
      const loop = drive(m.url, token, paths, SECONDS);
      const writes = await churn(m.url, token, walked.ids, WRITES, loop);
      const after = await pagesBySource(m.url);
      churned = { r: await loop, writes, memory: after.memory - before.memory, database: after.database - before.database };
    }
    return { walked, r, cpuPerPage, sysPerPage, mainPerPage, load, open, churned };
  } finally {
    await m.stop();
  }
}

async function run(store: string, config: DatabaseConfig, masterArgs: string[], dir: string): Promise<string[]> {
  const { token } = await prepare(config, dir);
  // TIPS_BENCH_READ_THREADS=0,1,0,1: one master per value (--read-threads), alternated on the same data.
  const threads = (process.env.TIPS_BENCH_READ_THREADS ?? '').split(',').filter((v) => v !== '');
  const variants: Variant[] = process.env.TIPS_BENCH_VARIANTS
    ? (JSON.parse(process.env.TIPS_BENCH_VARIANTS) as Variant[])
    : threads.length
      ? threads.map((t) => ({ label: `master --read-threads ${t}`, env: { TIPS_READ_THREADS: t } }))
      : [{ label: 'master' }];
  const runs: ({ label: string } & Awaited<ReturnType<typeof measureMaster>>)[] = [];
  let walked: Awaited<ReturnType<typeof walk>> | undefined;
  for (const v of variants) {
    const got = await measureMaster(store, dir, masterArgs, v, token, walked);
    walked = got.walked;
    runs.push({ label: v.label, ...got });
    if (variants.length > 1)
      process.stdout.write(
        `  ${v.label}: ${Math.round(got.r.perSecond)} pages/s, p99 ${got.r.p99.toFixed(2)} ms, CPU ${Math.round(got.cpuPerPage)} µs a page (system ${Math.round(got.sysPerPage)}, main thread ${Math.round(got.mainPerPage)} µs)${got.open ? `; open loop at ${RATE}/s: ${Math.round(got.open.perSecond)} pages/s, p99 ${got.open.p99.toFixed(2)} ms` : ''}\n`,
      );
  }
  const sampleFile = join(dir, 'page.json');
  writeFileSync(sampleFile, walked!.sample);
  const bare = await peer(sampleFile);
  let p: Drive;
  let peerCpuPerPage: number;
  try {
    await drive(bare.url, token, ['/api/v1/metals?limit=100'], 2, walked!.sample.length);
    const cpu0 = cpuSeconds(bare.pid);
    p = await drive(bare.url, token, ['/api/v1/metals?limit=100'], SECONDS, walked!.sample.length);
    peerCpuPerPage = ((cpuSeconds(bare.pid) - cpu0) / p.pages) * 1e6;
  } finally {
    bare.stop();
  }
  const out = [`[${store}] ${CONNECTIONS} connections, pages of ${LIMIT} (${Math.round(runs[0]!.r.avgBytes)} bytes on average), random page of ${walked!.cursors.length}, ${SECONDS} s after a 2 s warm-up`];
  for (const { label, r, cpuPerPage, sysPerPage, mainPerPage, load, open, churned } of runs) {
    const met = r.p99 <= GOAL.p99Ms && r.perSecond >= GOAL.pagesPerSecond;
    // Below saturation, at the goal's rate: what a user sees. The goal's verdict stays the closed loop's (the
    // issue's own baseline, 98 requests/s at p50 315 ms over ~32 connections, was measured that way).
    const openMet = open !== undefined && RATE >= GOAL.pagesPerSecond && open.perSecond >= GOAL.pagesPerSecond * 0.99 && open.p99 <= GOAL.p99Ms;
    if (open)
      out.push(
        `  ${label}, open loop at ${RATE} pages/s offered: ${Math.round(open.perSecond)} pages/s served, p50 ${open.p50.toFixed(2)} ms, p99 ${open.p99.toFixed(2)} ms, max ${open.max.toFixed(1)} ms (${open.pages} pages; latency from each request's due time); p99 ≤ ${GOAL.p99Ms} ms at that rate: ${openMet ? 'yes' : 'no'} (the goal's verdict is the closed loop's, below)`,
      );
    out.push(
      `  ${label}: ${Math.round(r.perSecond)} pages/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, max ${r.max.toFixed(1)} ms (${r.pages} pages); master CPU ${Math.round(cpuPerPage)} µs a page (${Math.round(1e6 / cpuPerPage)} pages per CPU-second), of which its main thread ${Math.round(mainPerPage)} µs, the kernel ${Math.round(sysPerPage)} µs`,
      `    master/peer: throughput ${(r.perSecond / p.perSecond).toFixed(2)}, p99 ${(r.p99 / p.p99).toFixed(2)}×; goal (closed loop, saturated) p99 ≤ ${GOAL.p99Ms} ms and ≥ ${GOAL.pagesPerSecond} pages/s: ${met ? 'met' : 'NOT met'}; load average at the end: ${load}`,
    );
    if (churned)
      out.push(
        `  ${label}, closed loop again while ${churned.writes} metals were relabelled through the API (${WRITES}/s): ${Math.round(churned.r.perSecond)} pages/s, p50 ${churned.r.p50.toFixed(2)} ms, p99 ${churned.r.p99.toFixed(2)} ms; pages from memory ${churned.memory}, from the database ${churned.database}`,
      );
  }
  out.push(`  peer (bare Fastify, one page's bytes from memory): ${Math.round(p.perSecond)} pages/s, p50 ${p.p50.toFixed(2)} ms, p99 ${p.p99.toFixed(2)} ms; peer CPU ${Math.round(peerCpuPerPage)} µs a page (${Math.round(1e6 / peerCpuPerPage)} per CPU-second)`);
  return out;
}

const lines = [`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}; metals: ${METALS}`];
const dir = mkdtempSync(join(tmpdir(), 'tips-bench-metal-list-'));
try {
  lines.push(...(await run('SQLite', { kind: 'sqlite', file: join(dir, 'tips.db') }, [], dir)));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (PG_URL) {
  const schema = `bench_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  const pgDir = mkdtempSync(join(tmpdir(), 'tips-bench-metal-list-pg-'));
  const url = new URL(PG_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  try {
    lines.push(...(await run('PostgreSQL', { kind: 'postgres', url: PG_URL, schema }, ['--database-url', url.toString()], pgDir)));
  } finally {
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
    rmSync(pgDir, { recursive: true, force: true });
  }
}
process.stdout.write(`${lines.join('\n')}\n`);
