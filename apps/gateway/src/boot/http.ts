// The gateway's HTTP boot service (contract A2), on the LAN address only. It answers only requests
// whose source address holds a bound lease of an interface that is Active on this gateway (`attest`);
// any other request gets its connection closed without a byte. The MAC it sends to the master is
// the one it attested from its own lease table, never one the metal claims.
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { GatewayMetrics } from '../status/metrics.ts';
import { MasterError } from '../uplink/client.ts';
import { BOOT_PROGRAMS, bootProgramPath, type FileBytes, INSTALLER_FILES, lookupBootProgram, SmallFileCache } from './files.ts';
import { type GlazeCache, JOB_ID, writeDurably } from './glaze-cache.ts';
import { decideRange } from './range.ts';
import { HttpRefusal, readBody, remoteIp } from '../http/request.ts';

/** What the boot service needs of the master (MasterClient implements it over the signed uplink). */
export interface BootMaster {
  bootScript(mac: string, base: string): Promise<string>;
  phase1Work(req: { mac: string; token: string; installerKey: string }): Promise<IncomingMessage>;
  phase1Glaze(jobId: string, mac: string, range?: string): Promise<IncomingMessage>;
  phase1Report(jobId: string, mac: string, cose: Uint8Array): Promise<IncomingMessage>;
}

export interface BootHttpOptions {
  /** The LAN address (the only address it listens on) and port (`--boot-http-port`). */
  address: string;
  port: number;
  ipxeDir: string;
  installerDir: string;
  cacheDir: string;
  files: SmallFileCache;
  glazes: GlazeCache;
  /** The requester's MAC when its address holds a lease of an Active interface; undefined → no answer. */
  attest: (ip: string) => string | undefined;
  master: BootMaster;
  log: Logger;
  metrics: GatewayMetrics;
}

export const MAX_WORK_BODY = 16 * 1024;
/** An installer file larger than this is streamed from the disk instead of kept in memory. */
export const INSTALLER_IN_MEMORY_MAX = 256 * 1024 * 1024;
export const MAX_REPORT_BODY = 64 * 1024;
const MAX_RELAYED_JSON = 1024 * 1024;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

type Kind = 'ipxe' | 'script' | 'installer' | 'work' | 'glaze' | 'report' | 'other';


async function readAll(res: IncomingMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res) {
    n += (c as Buffer).length;
    if (n > max) throw new MasterError('bad_response', `the master answered more than ${max} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

const RELAYED_HEADERS = ['content-type', 'content-length', 'content-range', 'accept-ranges', 'etag', 'last-modified'] as const;

function relayedHeaders(from: IncomingMessage): Record<string, string> {
  const h: Record<string, string> = {};
  for (const k of RELAYED_HEADERS) {
    const v = from.headers[k];
    if (typeof v === 'string') h[k] = v;
  }
  return h;
}

export class BootHttpServer {
  private server: http.Server | undefined;
  private readonly scripts: string;

  /** The installer's kernel and initrd, kept in memory while unchanged (a rebuild moves `current`). */
  private readonly installerFiles = new SmallFileCache(INSTALLER_IN_MEMORY_MAX);

  constructor(private readonly o: BootHttpOptions) {
    this.scripts = join(o.cacheDir, 'scripts');
  }

  /** `http://<lan address>:<port>`: the base of every URL a metal is given. */
  get baseUrl(): string {
    return `http://${this.o.address}:${this.port}`;
  }

  get port(): number {
    const a = this.server?.address();
    return typeof a === 'object' && a ? a.port : this.o.port;
  }

  async start(): Promise<void> {
    await mkdir(this.scripts, { recursive: true, mode: 0o700 });
    await this.o.glazes.init();
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        this.o.log.error({ err, url: req.url }, 'boot http request failed');
        if (!res.headersSent) this.error(res, 500, 'internal', 'internal error');
        else res.destroy();
      });
    });
    this.server.headersTimeout = 20_000;
    this.server.requestTimeout = 0; // Glazes are large; a slow metal may take long
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.o.port, this.o.address, () => resolve());
    });
    this.o.log.info({ url: this.baseUrl }, 'boot http server listening');
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server!.close(() => r()));
    this.server = undefined;
  }

  private count(kind: Kind, outcome: string): void {
    this.o.metrics.bootRequests.inc({ kind, outcome });
  }

  private error(res: ServerResponse, status: number, code: string, message: string, field?: string): void {
    const body = JSON.stringify({ error: { code, message, ...(field ? { field } : {}) }, requestId: randomUUID() });
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ip = remoteIp(req);
    const mac = this.o.attest(ip);
    const url = new URL(req.url ?? '/', 'http://boot');
    const path = url.pathname;
    const kind = this.kindOf(path);
    if (!mac) {
      // Pending, Blocked, unknown: nothing, not even a status line.
      this.count(kind, 'refused');
      this.o.log.debug({ ip, path: path.slice(0, 200) }, 'boot http request from an interface that is not Active: connection closed');
      req.socket.destroy();
      return;
    }
    const method = req.method ?? 'GET';
    const read = method === 'GET' || method === 'HEAD';
    try {
      if (kind === 'ipxe' && read) return await this.bootProgram(req, res, path);
      // GET only: each script the master makes issues a new token and voids the last one.
      if (kind === 'script' && method === 'GET') return await this.script(res, mac);
      if (kind === 'installer' && read) return await this.installer(req, res, path);
      if (kind === 'work' && method === 'POST') return await this.work(req, res, mac);
      if (kind === 'glaze' && read) return await this.glaze(req, res, mac, path);
      if (kind === 'report' && method === 'POST') return await this.report(req, res, mac, path);
      this.count(kind, 'not_found');
      return this.error(res, kind === 'other' ? 404 : 405, kind === 'other' ? 'not_found' : 'method_not_allowed', `${method} ${path.slice(0, 100)} is not served here`);
    } catch (err) {
      if (err instanceof HttpRefusal) {
        this.count(kind, 'bad_request');
        return this.error(res, err.status, err.code, err.message, err.field);
      }
      if (err instanceof MasterError) {
        this.count(kind, 'master_unreachable');
        this.o.log.warn({ mac, path, code: err.code, reason: err.message }, 'master not reachable for a boot request');
        if (!res.headersSent) return this.error(res, 503, 'master_unreachable', 'the master cannot be reached; try again');
        res.destroy();
        return;
      }
      throw err;
    }
  }

  private kindOf(path: string): Kind {
    if (path === '/boot/script.ipxe') return 'script';
    if (path.startsWith('/boot/installer/')) return 'installer';
    if (path === '/phase1/work') return 'work';
    if (/^\/phase1\/jobs\/[^/]+\/glaze$/.test(path)) return 'glaze';
    if (/^\/phase1\/jobs\/[^/]+\/report$/.test(path)) return 'report';
    // The boot programs also answer at the root: the DHCP default for UEFI HTTP clients names /ipxe.efi.
    const name = path.startsWith('/boot/') ? path.slice(5) : path;
    if ((BOOT_PROGRAMS as readonly string[]).includes(name.slice(1))) return 'ipxe';
    return 'other';
  }

  private async bootProgram(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const found = lookupBootProgram(path.startsWith('/boot/') ? path.slice(6) : path.slice(1));
    const file = found.kind === 'ok' ? await this.o.files.read(bootProgramPath(this.o.ipxeDir, found.name)) : undefined;
    if (!file) {
      this.count('ipxe', 'not_found');
      return this.error(res, 404, 'not_found', `${path} is not installed on this gateway (Debian package ipxe)`);
    }
    this.sendBytes(req, res, 'ipxe', file);
  }

  /** A file held in memory, with one optional byte range (206/416), Content-Length and ETag: one socket write, no read. */
  private sendBytes(req: IncomingMessage, res: ServerResponse, kind: Kind, file: FileBytes): void {
    const etag = `"${file.data.length.toString(16)}-${Math.floor(file.mtimeMs).toString(16)}"`;
    const r = decideRange(req.headers.range, file.data.length);
    if (r.kind === 'unsatisfiable') {
      this.unsatisfiable(res, kind, file.data.length);
      return;
    }
    const [start, end] = r.kind === 'partial' ? [r.start, r.end] : [0, file.data.length - 1];
    const body = file.data.subarray(start, end + 1);
    res.writeHead(r.kind === 'partial' ? 206 : 200, {
      'content-type': 'application/octet-stream',
      'content-length': body.length,
      'accept-ranges': 'bytes',
      etag,
      ...(r.kind === 'partial' ? { 'content-range': `bytes ${start}-${end}/${file.data.length}` } : {}),
    });
    if (req.method === 'HEAD' || body.length === 0) {
      res.end();
      this.count(kind, 'ok');
      return;
    }
    res.end(body);
    res.once('close', () => {
      if (res.writableFinished) {
        this.count(kind, 'ok');
        this.o.metrics.bootBytes.inc({ kind }, body.length);
      } else this.count(kind, 'aborted');
    });
  }

  private unsatisfiable(res: ServerResponse, kind: Kind, size: number): void {
    this.count(kind, 'range_unsatisfiable');
    res.writeHead(416, { 'content-range': `bytes */${size}`, 'content-length': 0 });
    res.end();
  }

  private scriptFile(mac: string): string {
    return `${mac.replaceAll(':', '')}.ipxe`;
  }

  private async script(res: ServerResponse, mac: string): Promise<void> {
    let text: string;
    let outcome = 'ok';
    try {
      text = await this.o.master.bootScript(mac, this.baseUrl);
      this.o.metrics.bootCacheMisses.inc({ cache: 'script' });
      await writeDurably(this.scripts, this.scriptFile(mac), text);
    } catch (err) {
      const e = err instanceof MasterError ? err : new MasterError('master_unreachable', (err as Error).message);
      if (e.code === 'master_rejected') {
        // The master knows this metal no longer boots from here: a cached script must not outlive that.
        await rm(join(this.scripts, this.scriptFile(mac)), { force: true });
        this.count('script', `rejected_${e.status ?? 0}`);
        this.o.log.info({ mac, status: e.status, code: e.remoteCode }, 'master refused the boot script');
        const body = `#!ipxe\necho TIPS: no boot script for this machine (${e.remoteCode ?? e.status}); booting from disk\nexit\n`;
        res.writeHead(e.status ?? 404, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      const cached = await readFile(join(this.scripts, this.scriptFile(mac)), 'utf8').catch(() => undefined);
      if (cached === undefined) throw e;
      this.o.metrics.bootCacheHits.inc({ cache: 'script' });
      this.o.log.warn({ mac, code: e.code }, 'master unreachable: serving the cached boot script');
      text = cached;
      outcome = 'cached';
    }
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
    res.end(text);
    this.count('script', outcome);
    this.o.metrics.bootBytes.inc({ kind: 'script' }, Buffer.byteLength(text));
  }

  /** Streams a file with one optional byte range (206/416), Content-Length and ETag. */
  private async sendFile(req: IncomingMessage, res: ServerResponse, kind: Kind, file: string, etag?: string): Promise<boolean> {
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(file);
    } catch {
      return false;
    }
    if (!st.isFile()) return false;
    const tag = etag ?? `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    const r = decideRange(req.headers.range, st.size);
    if (r.kind === 'unsatisfiable') {
      this.unsatisfiable(res, kind, st.size);
      return true;
    }
    const [start, end] = r.kind === 'partial' ? [r.start, r.end] : [0, st.size - 1];
    res.writeHead(r.kind === 'partial' ? 206 : 200, {
      'content-type': 'application/octet-stream',
      'content-length': end - start + 1,
      'accept-ranges': 'bytes',
      etag: tag,
      ...(r.kind === 'partial' ? { 'content-range': `bytes ${start}-${end}/${st.size}` } : {}),
    });
    if (req.method === 'HEAD' || st.size === 0) {
      res.end();
    } else {
      try {
        // Large reads: an installer is tens of MiB and many metals fetch it at once (fewer read calls).
        await pipeline(createReadStream(file, { start, end, highWaterMark: 1024 * 1024 }), res);
      } catch {
        // The metal went away mid-file (it resumes with a Range).
        this.count(kind, 'aborted');
        return true;
      }
      this.o.metrics.bootBytes.inc({ kind }, end - start + 1);
    }
    this.count(kind, 'ok');
    return true;
  }

  private async installer(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const name = path.slice('/boot/installer/'.length);
    const known = INSTALLER_FILES.find((f) => f === name);
    const file = known ? await this.installerFiles.read(join(this.o.installerDir, known)) : undefined;
    if (file) return this.sendBytes(req, res, 'installer', file);
    if (!known || !(await this.sendFile(req, res, 'installer', join(this.o.installerDir, known)))) {
      this.count('installer', 'not_found');
      this.error(res, 404, 'not_found', `${path.slice(0, 100)} is not served here (installer: ${INSTALLER_FILES.join(', ')} from --installer-dir)`);
    }
  }

  private async work(req: IncomingMessage, res: ServerResponse, mac: string): Promise<void> {
    const raw = await readBody(req, MAX_WORK_BODY);
    let body: { token?: unknown; installerKey?: unknown };
    try {
      body = JSON.parse(raw.toString('utf8')) as typeof body;
    } catch {
      throw new HttpRefusal(400, 'bad_request', 'the body must be JSON { token, installerKey }');
    }
    if (typeof body !== 'object' || body === null) throw new HttpRefusal(400, 'bad_request', 'the body must be a JSON object');
    const { token, installerKey } = body;
    if (typeof token !== 'string' || token.length < 16 || token.length > 256 || !BASE64URL.test(token)) {
      throw new HttpRefusal(400, 'bad_request', 'token must be the base64url token of the boot script', 'token');
    }
    if (typeof installerKey !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(installerKey)) {
      throw new HttpRefusal(400, 'bad_request', 'installerKey must be a base64url raw 32-byte Ed25519 public key', 'installerKey');
    }
    const answer = await this.o.master.phase1Work({ mac, token, installerKey });
    const bytes = await readAll(answer, MAX_RELAYED_JSON);
    const status = answer.statusCode ?? 502;
    if (status === 200) {
      try {
        const w = JSON.parse(bytes.toString('utf8')) as { jobId?: unknown; glaze?: { sha256?: unknown; size?: unknown } };
        if (typeof w.jobId === 'string' && typeof w.glaze?.sha256 === 'string' && typeof w.glaze.size === 'number') {
          await this.o.glazes.rememberJob({ jobId: w.jobId, sha256: w.glaze.sha256, size: w.glaze.size, mac });
        }
      } catch (err) {
        this.o.log.warn({ mac, reason: (err as Error).message }, 'work answer not understood: its Glaze will not be cached');
      }
    }
    res.writeHead(status, { 'content-type': answer.headers['content-type'] ?? 'application/json', 'content-length': bytes.length });
    res.end(bytes);
    this.count('work', status < 400 ? 'ok' : `master_${status}`);
    this.o.log.info({ mac, status }, 'phase 1 work forwarded');
  }

  private jobIdOf(path: string): string {
    const id = decodeURIComponent(path.split('/')[3] ?? '');
    if (!JOB_ID.test(id)) throw new HttpRefusal(400, 'bad_request', 'jobId must be 1-64 letters, digits, _ or -', 'jobId');
    return id;
  }

  private async relay(res: ServerResponse, kind: Kind, answer: IncomingMessage, head = false): Promise<void> {
    const status = answer.statusCode ?? 502;
    res.writeHead(status, relayedHeaders(answer));
    if (head) {
      answer.resume();
      res.end();
    } else {
      let n = 0;
      answer.on('data', (c: Buffer) => {
        n += c.length;
      });
      try {
        await pipeline(answer, res);
      } catch {
        this.o.metrics.bootBytes.inc({ kind }, n);
        this.count(kind, 'aborted');
        return;
      }
      if (status < 300) this.o.metrics.bootBytes.inc({ kind }, n);
    }
    this.count(kind, status < 400 ? 'ok' : `master_${status}`);
  }

  private async glaze(req: IncomingMessage, res: ServerResponse, mac: string, path: string): Promise<void> {
    const jobId = this.jobIdOf(path);
    const head = req.method === 'HEAD';
    const range = typeof req.headers.range === 'string' ? req.headers.range : undefined;
    // The master decides every time whether this MAC may have this job's Glaze now (job state,
    // job MAC); a one-byte probe costs nothing next to the Glaze.
    const probe = await this.o.master.phase1Glaze(jobId, mac, 'bytes=0-0');
    if (probe.statusCode !== 206 && probe.statusCode !== 200) {
      this.o.log.info({ mac, jobId, status: probe.statusCode }, 'master refused the Glaze');
      return this.relay(res, 'glaze', probe);
    }
    probe.resume();
    const job = await this.o.glazes.job(jobId);
    if (job && job.mac === mac) {
      const cached = await this.o.glazes.verifiedPath(job.sha256, job.size);
      if (cached) {
        this.o.metrics.bootCacheHits.inc({ cache: 'glaze' });
        await this.sendFile(req, res, 'glaze', cached, `"${job.sha256}"`);
        return;
      }
    }
    this.o.metrics.bootCacheMisses.inc({ cache: 'glaze' });
    this.o.log.debug({ mac, jobId, known: job !== undefined, range, filling: job ? this.o.glazes.isFilling(job.sha256) : false }, 'Glaze not in the cache');
    if (!job || job.mac !== mac || head || range !== undefined || this.o.glazes.isFilling(job.sha256)) {
      // Straight through from the master; a full download that nobody is filling starts the fill.
      if (job && job.mac === mac && !this.o.glazes.isFilling(job.sha256)) void this.backgroundFill(jobId, job.sha256, job.size, mac);
      return this.relay(res, 'glaze', await this.o.master.phase1Glaze(jobId, mac, range), head);
    }
    // A full download: serve it straight through while the cache fills from the same stream.
    const answer = await this.o.master.phase1Glaze(jobId, mac);
    if (answer.statusCode !== 200) return this.relay(res, 'glaze', answer);
    res.writeHead(200, { ...relayedHeaders(answer), etag: `"${job.sha256}"`, 'accept-ranges': 'bytes' });
    let clientGone = false;
    res.on('close', () => {
      clientGone = true;
    });
    // The bytes that would complete the Glaze are held back until its digest is verified: a metal
    // never receives a whole Glaze the gateway has not checked against the master's SHA-256.
    let sent = 0;
    const held: Buffer[] = [];
    const result = await this.o.glazes.fill(job.sha256, job.size, answer, async (chunk) => {
      if (clientGone) return;
      if (sent + chunk.length >= job.size) {
        held.push(chunk);
        return;
      }
      sent += chunk.length;
      if (res.write(chunk) || clientGone) return;
      await new Promise<void>((r) => {
        res.once('drain', () => r());
        res.once('close', () => r());
      });
    });
    if (!result.ok) {
      this.o.log.warn({ jobId, sha256: job.sha256, reason: result.reason }, 'Glaze from the master did not match its digest/size: not cached, not completed');
      res.destroy();
      this.o.metrics.bootBytes.inc({ kind: 'glaze' }, sent);
      this.count('glaze', result.reason);
      return;
    }
    const rest = Buffer.concat(held);
    res.end(rest);
    this.o.metrics.bootBytes.inc({ kind: 'glaze' }, sent + rest.length);
    this.count('glaze', 'ok');
  }

  private async backgroundFill(jobId: string, sha256: string, size: number, mac: string): Promise<void> {
    try {
      const answer = await this.o.master.phase1Glaze(jobId, mac);
      if (answer.statusCode !== 200) {
        answer.resume();
        return;
      }
      const r = await this.o.glazes.fill(sha256, size, answer);
      this.o.log.info({ jobId, sha256, ok: r.ok, ...(r.ok ? {} : { reason: r.reason }) }, 'Glaze cache filled');
    } catch (err) {
      this.o.log.warn({ jobId, reason: (err as Error).message }, 'Glaze cache fill failed');
    }
  }

  private async report(req: IncomingMessage, res: ServerResponse, mac: string, path: string): Promise<void> {
    const jobId = this.jobIdOf(path);
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/cose') throw new HttpRefusal(415, 'unsupported_media_type', 'the report must be application/cose (a COSE_Sign1)', 'content-type');
    const body = await readBody(req, MAX_REPORT_BODY);
    if (body.length === 0) throw new HttpRefusal(400, 'bad_request', 'the report body is empty', 'body');
    const answer = await this.o.master.phase1Report(jobId, mac, body);
    this.o.log.info({ mac, jobId, status: answer.statusCode }, 'phase 1 report forwarded');
    await this.relay(res, 'report', answer);
  }
}
