/**
 * The metal API (`/api/metal/v1`, contract C): mTLS with the metal's certificate, and on every
 * request `Authorization: PoP <token>` — a one-hop token (audience urn:tips:master) bound to the
 * certificate key, so the TLS connection itself is the proof of possession. The token comes from the
 * tokens domain (`POST /tokens/issue`) and is renewed before it expires and whenever the master
 * answers `reauth_required` (its re-authentication period, default 120 s).
 */
import { createWriteStream, existsSync, statSync, truncateSync } from 'node:fs';
import type { Logger } from 'pino';
import type { ClientConfig } from '../config/config.ts';
import { ClientError } from '../errors.ts';
import { errorOf, type HttpResponse, open, send, type TlsMaterial } from '../http/https.ts';
import type { MetalIdentity } from '../identity/store.ts';
import { ServerList } from '../agent/servers.ts';

export const METAL_API = '/api/metal/v1';

/** Error codes of the master that mean "this metal is not (or no longer) allowed": stop Phases 2 and 3. */
export const AUTH_FAILURES = new Set([
  'unauthenticated',
  'forbidden',
  'client_certificate_required',
  'client_certificate_invalid',
  'certificate_unknown',
  'certificate_revoked',
  'certificate_expired',
  'metal_blocked',
  'metal_retired',
  'token_signature_invalid',
  'token_audience_mismatch',
  'token_scope_insufficient',
  'pop_invalid',
]);

export interface WorkItem {
  spaceId: string;
  spaceName: string;
  phase: number;
  glaze: { id: string; name: string; version: string; size: number; sha256: string; handler: string };
  manifest: string;
  blobPath: string;
  /** T17: the metal's interfaces that link it to this Space (absent from masters before multi-homing). */
  interfaces?: { name: string; mac: string; addresses: string[] }[];
}
/** A `tips metal rollback` the metal has not answered yet (the pull side of the MQTT hint). */
export interface RollbackRequest {
  eventId: string;
  spaceId: string;
  glazeId: string;
  requestedAt: string;
}
export interface WorkAnswer {
  items: WorkItem[];
  notify: { url: string; topic: string } | null;
  reauthAfterSeconds: number;
  /** Absent from masters that predate Phase 3 rollbacks. */
  rollbacks?: RollbackRequest[];
}

export interface Profile {
  vendorId: string | null;
  classId: string | null;
  glazes: { id: string; name: string; version: string; sequence: number }[];
  interfaces: { name: string; mac: string; addresses: string[] }[];
  protocols: string[];
}

export class MetalApi {
  private token: { value: string; expiresAt: number; issuedAt: number } | undefined;
  /** The master's re-authentication period (from GET /work): a token older than this is renewed before use. */
  private reauthMs: number | undefined;
  /** S10: where requests go; one server (masterUrl) unless the agent gives a list. */
  readonly servers: ServerList;

  constructor(
    config: ClientConfig,
    private readonly ca: string,
    private readonly identity: () => MetalIdentity,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    servers?: ServerList,
  ) {
    this.servers = servers ?? new ServerList([config.masterUrl], { rounds: 1 });
  }

  tls(): TlsMaterial {
    const id = this.identity();
    return { ca: this.ca, cert: id.certPem, key: id.keyPem };
  }

  url(path: string, base = this.servers.current()): string {
    return `${base}${path.startsWith(METAL_API) ? path : `${METAL_API}${path}`}`;
  }

  /** Raises the refusal as a ClientError: auth failures as unauthenticated/forbidden. */
  private refuse(what: string, res: HttpResponse): never {
    const e = errorOf(res);
    const remote = e?.code ?? `http_${res.status}`;
    const code = res.status === 401 || AUTH_FAILURES.has(remote) ? (res.status === 403 ? 'forbidden' : 'unauthenticated') : res.status === 403 ? 'forbidden' : 'master_error';
    throw new ClientError(code, `${what} → ${res.status} ${remote}${e?.message ? `: ${e.message}` : ''}`, remote);
  }

  /**
   * A fresh token for the metal→master hop (`POST /tokens/issue` on the mTLS connection: the
   * certificate key is the holder key, so holding the connection is the proof of possession).
   */
  async authenticate(): Promise<void> {
    const res = await this.servers.attempt('POST /tokens/issue', (base) => send({ url: this.url('/tokens/issue', base), method: 'POST', tls: this.tls() }));
    if (res.status !== 201 && res.status !== 200) this.refuse('POST /tokens/issue', res);
    const t = JSON.parse(res.body.toString('utf8')) as { cwt?: string; expiresAt?: string };
    if (!t.cwt) throw new ClientError('master_error', 'POST /tokens/issue answered without a token');
    this.token = { value: t.cwt, expiresAt: t.expiresAt ? Date.parse(t.expiresAt) : this.now() + 60_000, issuedAt: this.now() };
    this.log.debug({ event: 'token_issued', expiresAt: t.expiresAt }, 'metal→master token');
  }

  /** Forget the token (after a re-enrollment the old one is bound to the old key). */
  dropToken(): void {
    this.token = undefined;
  }

  /** Seconds, as GET /work states them; a token is renewed a little before it turns that old. */
  setReauthPeriod(seconds: number): void {
    if (Number.isFinite(seconds) && seconds > 0) this.reauthMs = seconds * 1000;
  }

  private stale(t: { expiresAt: number; issuedAt: number }): boolean {
    const now = this.now();
    if (t.expiresAt - now < 15_000) return true;
    return this.reauthMs !== undefined && now - t.issuedAt > this.reauthMs - Math.min(5_000, this.reauthMs / 4);
  }

  async authorization(): Promise<string> {
    if (!this.token || this.stale(this.token)) await this.authenticate();
    return `PoP ${this.token!.value}`;
  }

  /** One request with the token; `reauth_required` (or an expired token) gets a new token and one retry. */
  async call(method: string, path: string, init: { body?: string | Uint8Array; headers?: Record<string, string> } = {}): Promise<HttpResponse> {
    for (let attempt = 0; ; attempt++) {
      const authorization = await this.authorization();
      const res = await this.servers.attempt(`${method} ${path.split('?')[0]}`, (base) => send({ url: this.url(path, base), method, tls: this.tls(), headers: { authorization, ...init.headers }, body: init.body }));
      const code = res.status === 401 ? errorOf(res)?.code : undefined;
      if (attempt === 0 && (code === 'reauth_required' || code === 'token_expired')) {
        this.log.info({ event: 'reauth', code }, 'the master asks for fresh authentication');
        this.token = undefined;
        continue;
      }
      if (res.status >= 400) this.refuse(`${method} ${path.split('?')[0]}`, res);
      return res;
    }
  }

  async putProfile(p: Profile): Promise<void> {
    await this.call('PUT', '/profile', { body: JSON.stringify(p), headers: { 'content-type': 'application/json' } });
  }

  /** Information exchange (issue 11): the metal is alive; only the latest heartbeat is kept. */
  async heartbeat(values: Record<string, number | string | boolean>): Promise<void> {
    await this.call('POST', '/heartbeat', { body: JSON.stringify({ at: new Date(this.now()).toISOString(), values }), headers: { 'content-type': 'application/json' } });
  }

  /** One telemetry sample, readable by the owner and by application tokens for this metal. */
  async telemetry(values: Record<string, number | string | boolean>, at = new Date(this.now()).toISOString()): Promise<{ id: string; receivedAt: string }> {
    const res = await this.call('POST', '/telemetry', { body: JSON.stringify({ at, values }), headers: { 'content-type': 'application/json' } });
    return JSON.parse(res.body.toString('utf8')) as { id: string; receivedAt: string };
  }

  async work(phase: 2 | 3): Promise<WorkAnswer> {
    const res = await this.call('GET', `/work?phase=${phase}`);
    const w = JSON.parse(res.body.toString('utf8')) as WorkAnswer;
    if (!Array.isArray(w.items)) throw new ClientError('master_error', 'GET /work: expected { items: [...] }');
    if (typeof w.reauthAfterSeconds === 'number') this.setReauthPeriod(w.reauthAfterSeconds);
    return w;
  }

  /** T16: what changed outside TIPS (`POST /tamper`); the master blocks the metal at every gateway. */
  async tamper(changes: { path: string; kind: string; detail: string }[]): Promise<{ eventId: string; gateways: number }> {
    const res = await this.call('POST', '/tamper', { body: JSON.stringify({ changes }), headers: { 'content-type': 'application/json' } });
    return JSON.parse(res.body.toString('utf8')) as { eventId: string; gateways: number };
  }

  /** The trust list bytes (@tips/trust CBOR): a CBOR body, or JSON carrying it in base64. */
  async trustList(): Promise<Uint8Array> {
    const res = await this.call('GET', '/trust-list');
    const type = String(res.headers['content-type'] ?? '');
    if (type.includes('json')) {
      const j = JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
      const b64 = (j.trustList ?? j.cbor ?? j.encoded) as string | undefined;
      if (typeof b64 !== 'string') throw new ClientError('master_error', 'GET /trust-list: expected the encoded trust list');
      return new Uint8Array(Buffer.from(b64, 'base64'));
    }
    return new Uint8Array(res.body);
  }

  /**
   * Signed orders for this metal (trust-list updates, re-enrollment orders: base64 SUIT envelopes),
   * to be verified against the trust list before anything is done. A master without the route: none.
   */
  async directives(): Promise<{ id: string; kind: string; envelope: string }[]> {
    let res: HttpResponse;
    try {
      res = await this.call('GET', '/directives');
    } catch (e) {
      if (e instanceof ClientError && e.code === 'master_error' && /^(not_found|http_404)$/.test(e.remoteCode ?? '')) return [];
      throw e;
    }
    const d = JSON.parse(res.body.toString('utf8')) as { directives?: unknown };
    if (!Array.isArray(d.directives)) throw new ClientError('master_error', 'GET /directives: expected { directives: [...] }');
    return d.directives.filter((x): x is { id: string; kind: string; envelope: string } => typeof x?.id === 'string' && typeof x?.kind === 'string' && typeof x?.envelope === 'string');
  }

  async postReport(cose: Uint8Array): Promise<void> {
    await this.call('POST', '/reports', { body: cose, headers: { 'content-type': 'application/cose' } });
  }

  /**
   * Downloads `blobPath` into `file`, resuming from what `file` already holds with a Range request;
   * logs progress about every 10 %. Resolves with the bytes on disk (== size).
   */
  async download(blobPath: string, file: string, size: number, onProgress?: (done: number) => void): Promise<number> {
    let have = existsSync(file) ? statSync(file).size : 0;
    if (have > size) {
      truncateSync(file, 0);
      have = 0;
    }
    if (have === size) return have;
    const headers: Record<string, string> = { authorization: await this.authorization() };
    if (have > 0) headers.range = `bytes=${have}-`;
    const res = await open({ url: this.url(blobPath), method: 'GET', tls: this.tls(), headers, timeoutMs: 60_000 });
    if (res.statusCode === 401 && have >= 0) {
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks);
      const code = errorOf({ status: 401, headers: res.headers, body })?.code;
      if (code === 'reauth_required' || code === 'token_expired') {
        this.token = undefined;
        return this.download(blobPath, file, size, onProgress);
      }
      this.refuse(`GET ${blobPath}`, { status: 401, headers: res.headers, body });
    }
    if (res.statusCode === 416) {
      // What we hold does not fit the blob any more: start over.
      res.resume();
      truncateSync(file, 0);
      return this.download(blobPath, file, size, onProgress);
    }
    if (res.statusCode !== 200 && res.statusCode !== 206) {
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      this.refuse(`GET ${blobPath}`, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
    }
    let start = 0;
    if (res.statusCode === 206) {
      const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
      if (!m || Number(m[1]) !== have) {
        res.resume();
        throw new ClientError('download_failed', `GET ${blobPath}: expected Content-Range from ${have}, came ${res.headers['content-range'] ?? 'none'}`);
      }
      start = have;
    }
    if (start !== have) this.log.info({ event: 'download_restart', blobPath, had: have }, 'the server sent the whole blob; starting over');
    const out = createWriteStream(file, { flags: start === 0 ? 'w' : 'r+', start, mode: 0o600 });
    let done = start;
    let lastTenth = Math.floor((done * 10) / Math.max(size, 1));
    try {
      for await (const chunk of res) {
        done += (chunk as Buffer).length;
        if (done > size) throw new ClientError('download_failed', `GET ${blobPath}: more than the ${size} bytes announced`);
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
        const tenth = Math.floor((done * 10) / Math.max(size, 1));
        if (tenth !== lastTenth) {
          lastTenth = tenth;
          onProgress?.(done);
        }
      }
    } finally {
      await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
    }
    if (!res.complete) throw new ClientError('download_failed', `GET ${blobPath}: the connection broke off at ${done} of ${size} bytes`);
    return done;
  }
}
