// The HTTP boot service with the real MasterClient against a real HTTP server standing in for the
// master's Phase 1 API (contract A3): it verifies every TIPS-GW-1 signature the way the master does
// (apps/master/src/domains/gateways/signature.ts), so the relay is tested over real sockets.
import { createHash, generateKeyPairSync, randomBytes, verify } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createMetrics, type GatewayMetrics } from '../status/metrics.ts';
import { MasterClient } from '../uplink/client.ts';
import { SmallFileCache } from './files.ts';
import { GlazeCache } from './glaze-cache.ts';
import { type BootHttpOptions, BootHttpServer } from './http.ts';

const MAC = '02:00:00:00:00:07';
const GATEWAY_ID = 'gw_test';
const TOKEN = randomBytes(32).toString('base64url');
const INSTALLER_KEY = randomBytes(32).toString('base64url');
const GLAZE = randomBytes(300_000);
const GLAZE_SHA = createHash('sha256').update(GLAZE).digest('hex');
const JOB = 'p1j_test1';

interface Seen {
  method: string;
  path: string;
  body: Buffer;
  range?: string;
}

/** The master stand-in: verifies TIPS-GW-1 exactly as the master does, then answers per contract A3. */
class FakeMaster {
  server!: http.Server;
  seen: Seen[] = [];
  badSignatures = 0;
  mode: 'ok' | 'unknown_metal' | 'tampered_glaze' | 'job_closed' | 'down' = 'ok';
  constructor(private readonly publicKey: import('node:crypto').KeyObject) {}

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        // Down: the connection dies without an answer, as when the master's host is gone.
        if (this.mode === 'down') req.socket.destroy();
        else this.answer(req, Buffer.concat(chunks), res);
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  private answer(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): unknown {
    const h = req.headers;
    const canonical = `TIPS-GW-1\n${req.method}\n${req.url}\n${h['x-tips-timestamp']}\n${h['x-tips-nonce']}\n${createHash('sha256').update(body).digest('hex')}`;
    const ok =
      h['x-tips-gateway'] === GATEWAY_ID &&
      typeof h['x-tips-signature'] === 'string' &&
      verify(null, Buffer.from(canonical), this.publicKey, Buffer.from(h['x-tips-signature'], 'base64url')) &&
      Math.abs(Number(h['x-tips-timestamp']) - Date.now()) < 60_000;
    if (!ok) {
      this.badSignatures++;
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{"code":"unauthenticated","message":"bad signature"}}');
      return;
    }
    const url = new URL(req.url!, 'http://m');
    this.seen.push({ method: req.method!, path: url.pathname + url.search, body, ...(h.range ? { range: h.range } : {}) });
    const json = (status: number, v: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(v));
    };
    const mac = url.searchParams.get('mac');
    if (url.pathname === '/api/gateway/v1/provisioning/boot-script') {
      if (this.mode === 'unknown_metal') return json(404, { error: { code: 'unknown_metal', message: 'no metal' }, requestId: 'r' });
      const base = url.searchParams.get('base');
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`#!ipxe\nkernel ${base}/boot/installer/vmlinuz tips.boot=${base} tips.job=${JOB} tips.token=${TOKEN} mac=${mac}\ninitrd ${base}/boot/installer/initrd.img\nboot\n`);
      return;
    }
    if (url.pathname === '/api/gateway/v1/provisioning/work') {
      const w = JSON.parse(body.toString()) as { mac: string; token: string; installerKey: string };
      if (w.token !== TOKEN || w.mac !== MAC) return json(401, { error: { code: 'phase1_token_invalid', message: 'no' }, requestId: 'r' });
      return json(200, { jobId: JOB, glaze: { id: 'glz_1', name: 'base-os', version: '1.0', size: GLAZE.length, sha256: GLAZE_SHA }, glazePath: `/phase1/jobs/${JOB}/glaze` });
    }
    if (url.pathname === `/api/gateway/v1/provisioning/jobs/${JOB}/glaze`) {
      if (mac !== MAC) return json(404, { error: { code: 'job_not_found', message: 'no such job for this MAC' }, requestId: 'r' });
      if (this.mode === 'job_closed') return json(409, { error: { code: 'job_not_installing', message: 'the job is installed' }, requestId: 'r' });
      const bytes = this.mode === 'tampered_glaze' ? Buffer.from(GLAZE).fill(0, 1000, 2000) : GLAZE;
      const m = /^bytes=(\d+)-(\d*)$/.exec(h.range ?? '');
      if (m) {
        const start = Number(m[1]);
        const end = m[2] ? Math.min(Number(m[2]), bytes.length - 1) : bytes.length - 1;
        res.writeHead(206, { 'content-type': 'application/octet-stream', 'content-range': `bytes ${start}-${end}/${bytes.length}`, 'content-length': end - start + 1 });
        res.end(bytes.subarray(start, end + 1));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
      res.end(bytes);
      return;
    }
    if (url.pathname === `/api/gateway/v1/provisioning/jobs/${JOB}/report` && req.method === 'POST') {
      if (h['content-type'] !== 'application/cose') return json(415, { error: { code: 'unsupported_media_type', message: 'cose' }, requestId: 'r' });
      res.writeHead(204).end();
      return;
    }
    json(404, { error: { code: 'not_found', message: 'no route' }, requestId: 'r' });
  }

  fullGlazeFetches(): number {
    return this.seen.filter((s) => s.path.includes('/glaze') && s.range === undefined).length;
  }
}

let dir: string;
let fake: FakeMaster;
let boot: BootHttpServer;
let bootOptions: BootHttpOptions;
let base: string;
let metrics: GatewayMetrics;
let active: boolean;

async function metric(line: string): Promise<number> {
  const text = await metrics.registry.metrics();
  const m = text.split('\n').find((l) => l.startsWith(`${line} `));
  return m ? Number(m.split(' ')[1]) : 0;
}

async function get(path: string, headers: Record<string, string> = {}) {
  const r = await fetch(`${base}${path}`, { headers });
  return { status: r.status, headers: r.headers, body: Buffer.from(await r.arrayBuffer()) };
}

describe('T13 Phase 1 HTTP boot service (contract A2): attested MAC, signed relay, script and Glaze caches', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tgw-boothttp-'));
    for (const d of ['ipxe', 'installer', 'cache']) mkdirSync(join(dir, d));
    writeFileSync(join(dir, 'ipxe', 'undionly.kpxe'), randomBytes(74_213));
    writeFileSync(join(dir, 'ipxe', 'ipxe.efi'), randomBytes(1000));
    writeFileSync(join(dir, 'installer', 'vmlinuz'), randomBytes(200_000));
    writeFileSync(join(dir, 'installer', 'initrd.img'), randomBytes(500_000));
    writeFileSync(join(dir, 'secret'), 'nope');
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    fake = new FakeMaster(publicKey);
    const masterUrl = await fake.start();
    metrics = createMetrics();
    bootOptions = {
      address: '127.0.0.1',
      port: 0,
      ipxeDir: join(dir, 'ipxe'),
      installerDir: join(dir, 'installer'),
      cacheDir: join(dir, 'cache'),
      files: new SmallFileCache(),
      glazes: new GlazeCache(join(dir, 'cache')),
      attest: (ip) => (active && ip === '127.0.0.1' ? MAC : undefined),
      master: new MasterClient(masterUrl, GATEWAY_ID, privateKey, 5000),
      log: pino({ level: process.env.TEST_LOG ?? 'silent' }),
      metrics,
    };
    boot = new BootHttpServer(bootOptions);
    await boot.start();
    base = boot.baseUrl;
  });
  afterAll(async () => {
    await boot?.stop();
    await new Promise<void>((r) => (fake?.server ? fake.server.close(() => r()) : r()));
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    active = true;
    fake.mode = 'ok';
  });

  it('an address that is not an Active interface gets its connection closed without a byte, and nothing reaches the master', async () => {
    active = false;
    const before = fake.seen.length;
    for (const path of ['/boot/script.ipxe', '/boot/undionly.kpxe', '/boot/installer/vmlinuz', `/phase1/jobs/${JOB}/glaze`]) {
      await expect(fetch(`${base}${path}`)).rejects.toThrow();
    }
    await expect(fetch(`${base}/phase1/work`, { method: 'POST', body: JSON.stringify({ token: TOKEN, installerKey: INSTALLER_KEY }) })).rejects.toThrow();
    expect(fake.seen.length).toBe(before);
    expect(await metric('tips_gateway_boot_requests_total{kind="script",outcome="refused"}')).toBe(1);
  });

  it('the script comes from the master for the attested MAC (a MAC in the query is ignored), is cached on disk, and is served from cache when the master is unreachable', async () => {
    const r = await get(`/boot/script.ipxe?mac=02:00:00:00:00:99`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = r.body.toString();
    expect(text).toContain(`tips.token=${TOKEN}`);
    expect(text).toContain(`kernel ${base}/boot/installer/vmlinuz`);
    const q = new URL(fake.seen.at(-1)!.path, 'http://m').searchParams;
    expect(q.get('mac')).toBe(MAC);
    expect(q.get('base')).toBe(base);
    const cacheFile = join(dir, 'cache', 'scripts', '020000000007.ipxe');
    expect(readFileSync(cacheFile, 'utf8')).toBe(text);
    // HEAD would make the master issue a new token (voiding this one): not served.
    const seen = fake.seen.length;
    expect((await fetch(`${base}/boot/script.ipxe`, { method: 'HEAD' })).status).toBe(405);
    expect(fake.seen.length).toBe(seen);

    // The master cannot be reached: the cached copy is served.
    fake.mode = 'down';
    const cached = await get('/boot/script.ipxe');
    expect(cached.status).toBe(200);
    expect(cached.body.toString()).toBe(text);
    expect(await metric('tips_gateway_boot_cache_hits_total{cache="script"}')).toBe(1);
    // Without a cached copy, an unreachable master is a 503, not an empty script.
    rmSync(cacheFile);
    expect((await get('/boot/script.ipxe')).status).toBe(503);
  });

  it('a MAC the master does not know gets no script, and its cached script is dropped', async () => {
    fake.mode = 'unknown_metal';
    const cacheFile = join(dir, 'cache', 'scripts', '020000000007.ipxe');
    writeFileSync(cacheFile, '#!ipxe\nstale\n');
    const r = await get('/boot/script.ipxe');
    expect(r.status).toBe(404);
    expect(r.body.toString()).not.toContain('tips.token');
    expect(existsSync(cacheFile)).toBe(false);
  });

  it('boot programs and the installer files: whole, single ranges (206), unsatisfiable (416), ETag; nothing else', async () => {
    const whole = await get('/boot/undionly.kpxe');
    expect(whole.status).toBe(200);
    expect(whole.body.equals(readFileSync(join(dir, 'ipxe', 'undionly.kpxe')))).toBe(true);
    expect(whole.headers.get('etag')).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect((await get('/ipxe.efi')).body.equals(readFileSync(join(dir, 'ipxe', 'ipxe.efi')))).toBe(true);
    const initrd = readFileSync(join(dir, 'installer', 'initrd.img'));
    const part = await get('/boot/installer/initrd.img', { range: 'bytes=1000-1999' });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 1000-1999/${initrd.length}`);
    expect(part.body.equals(initrd.subarray(1000, 2000))).toBe(true);
    const tail = await get('/boot/installer/initrd.img', { range: 'bytes=-10' });
    expect(tail.body.equals(initrd.subarray(initrd.length - 10))).toBe(true);
    const resume = await get('/boot/installer/vmlinuz', { range: 'bytes=150000-' });
    expect(resume.body.length).toBe(50_000);
    const beyond = await get('/boot/installer/vmlinuz', { range: 'bytes=200000-' });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get('content-range')).toBe('bytes */200000');
    for (const p of ['/boot/installer/../../secret', '/boot/installer/%2e%2e%2fsecret', '/boot/..%2fsecret', '/boot/ipxe.lkrn', '/secret']) {
      const r = await get(p);
      expect(r.status, p).toBe(404);
      expect(r.body.toString()).not.toBe('nope');
    }
  });

  it('installer files are held in memory but never stale: 20 first requests at once share one read; a rebuild renamed into place is served at once', async () => {
    const path = join(dir, 'installer', 'initrd.img');
    const before = readFileSync(path);
    const many = await Promise.all(Array.from({ length: 20 }, () => get('/boot/installer/initrd.img')));
    for (const r of many) expect(r.body.equals(before)).toBe(true);
    const rebuilt = randomBytes(300_000);
    writeFileSync(`${path}.new`, rebuilt);
    renameSync(`${path}.new`, path);
    const after = await get('/boot/installer/initrd.img');
    expect(after.body.equals(rebuilt)).toBe(true);
    expect(after.headers.get('content-length')).toBe('300000');
    writeFileSync(`${path}.new`, before);
    renameSync(`${path}.new`, path);
    expect((await get('/boot/installer/initrd.img')).body.equals(before)).toBe(true);
  });

  it('POST /phase1/work relays to the master with the attested MAC, bad input is a 400 naming the field and never reaches the master', async () => {
    const before = fake.seen.length;
    const bad = await fetch(`${base}/phase1/work`, { method: 'POST', body: JSON.stringify({ token: TOKEN, installerKey: 'short' }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { field: string } }).error.field).toBe('installerKey');
    const notJson = await fetch(`${base}/phase1/work`, { method: 'POST', body: '{' });
    expect(notJson.status).toBe(400);
    const huge = await fetch(`${base}/phase1/work`, { method: 'POST', body: 'x'.repeat(20_000) });
    expect(huge.status).toBe(413);
    expect(fake.seen.length).toBe(before);
    const wrong = await fetch(`${base}/phase1/work`, { method: 'POST', body: JSON.stringify({ token: randomBytes(32).toString('base64url'), installerKey: INSTALLER_KEY }) });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: { code: string } }).error.code).toBe('phase1_token_invalid');
    const ok = await fetch(`${base}/phase1/work`, { method: 'POST', body: JSON.stringify({ token: TOKEN, installerKey: INSTALLER_KEY, mac: '02:00:00:00:00:99' }) });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { jobId: string }).jobId).toBe(JOB);
    expect(JSON.parse(fake.seen.at(-1)!.body.toString())).toEqual({ mac: MAC, token: TOKEN, installerKey: INSTALLER_KEY });
    expect(fake.badSignatures).toBe(0);
  });

  it('the Glaze: first download straight through while the cache fills, then served from the verified cache with ranges; the master authorises each', async () => {
    const first = await get(`/phase1/jobs/${JOB}/glaze`);
    expect(first.status).toBe(200);
    expect(first.body.equals(GLAZE)).toBe(true);
    const cached = join(dir, 'cache', 'glazes', GLAZE_SHA);
    expect(readFileSync(cached).equals(GLAZE)).toBe(true);
    const fetchesAfterFill = fake.fullGlazeFetches();
    expect(fetchesAfterFill).toBe(1);
    const second = await get(`/phase1/jobs/${JOB}/glaze`);
    expect(second.body.equals(GLAZE)).toBe(true);
    expect(second.headers.get('etag')).toBe(`"${GLAZE_SHA}"`);
    const resume = await get(`/phase1/jobs/${JOB}/glaze`, { range: 'bytes=100000-' });
    expect(resume.status).toBe(206);
    expect(resume.body.equals(GLAZE.subarray(100_000))).toBe(true);
    expect(fake.fullGlazeFetches()).toBe(fetchesAfterFill);
    expect(await metric('tips_gateway_boot_cache_hits_total{cache="glaze"}')).toBe(2);
    // A restarted gateway (new process state, same cache dir) knows the job and serves the cached copy after hashing it.
    const again = new BootHttpServer({ ...bootOptions, port: 0, glazes: new GlazeCache(join(dir, 'cache')), metrics: createMetrics() });
    await again.start();
    try {
      const r = await fetch(`${again.baseUrl}/phase1/jobs/${JOB}/glaze`);
      expect(Buffer.from(await r.arrayBuffer()).equals(GLAZE)).toBe(true);
      expect(fake.fullGlazeFetches()).toBe(fetchesAfterFill);
    } finally {
      await again.stop();
    }
    // Once the master no longer serves the job, the cached copy is not served either.
    fake.mode = 'job_closed';
    const closed = await get(`/phase1/jobs/${JOB}/glaze`);
    expect(closed.status).toBe(409);
    expect(closed.body.length).toBeLessThan(200);
    expect(await metric('tips_gateway_boot_cache_hits_total{cache="glaze"}')).toBe(2);
    fake.mode = 'ok';
    // Each request was authorised by the master (one-byte probe with the attested MAC).
    expect(fake.seen.filter((s) => s.range === 'bytes=0-0' && s.path.includes(`mac=${encodeURIComponent(MAC)}`)).length).toBe(5);
  });

  it('a cached Glaze altered on disk is re-verified, dropped and fetched again; a Glaze not matching its digest is never cached', async () => {
    const cached = join(dir, 'cache', 'glazes', GLAZE_SHA);
    const altered = Buffer.from(GLAZE);
    altered[5] = (altered[5] ?? 0) ^ 0xff;
    writeFileSync(cached, altered);
    const r = await get(`/phase1/jobs/${JOB}/glaze`);
    expect(r.body.equals(GLAZE)).toBe(true);
    expect(readFileSync(cached).equals(GLAZE)).toBe(true);

    rmSync(cached);
    fake.mode = 'tampered_glaze';
    await expect(get(`/phase1/jobs/${JOB}/glaze`)).rejects.toThrow();
    expect(existsSync(cached)).toBe(false);
  });

  it('another job id, or a job the master refuses for this MAC, is relayed as the master answered; a bad job id is a 400', async () => {
    const r = await get('/phase1/jobs/p1j_other/glaze');
    expect(r.status).toBe(404);
    expect((await get('/phase1/jobs/bad%20id/glaze')).status).toBe(400);
  });

  it('POST report relays the COSE bytes unchanged with the attested MAC; wrong type 415, too large 413', async () => {
    const cose = randomBytes(500);
    const ok = await fetch(`${base}/phase1/jobs/${JOB}/report`, { method: 'POST', headers: { 'content-type': 'application/cose' }, body: cose });
    expect(ok.status).toBe(204);
    const seen = fake.seen.at(-1)!;
    expect(seen.body.equals(cose)).toBe(true);
    expect(new URL(seen.path, 'http://m').searchParams.get('mac')).toBe(MAC);
    const before = fake.seen.length;
    expect((await fetch(`${base}/phase1/jobs/${JOB}/report`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(415);
    expect((await fetch(`${base}/phase1/jobs/${JOB}/report`, { method: 'POST', headers: { 'content-type': 'application/cose' }, body: randomBytes(70_000) })).status).toBe(413);
    expect(fake.seen.length).toBe(before);
  });
});
