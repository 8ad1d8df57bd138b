// HTTP client of the gateway API of the master (TIPS-D). Every request but enroll is signed (sign.ts),
// except registrations over mTLS, which the connection's certificate authenticates.
// Towards an https:// master every request and the channel use mTLS: the gateway presents the
// certificate the master issued at enrollment and verifies the master against ca.pem (never
// against nothing: rejectUnauthorized stays true).
import type { KeyObject } from 'node:crypto';
import { type IncomingMessage, request as httpRequest } from 'node:http';
import { Agent, request } from 'node:https';
import type { InterfaceType } from '@tips/core';
import { signedHeaders } from './sign.ts';

export type MasterErrorCode = 'master_unreachable' | 'master_rejected' | 'master_error' | 'bad_response';

export class MasterError extends Error {
  constructor(
    readonly code: MasterErrorCode,
    message: string,
    readonly status?: number,
    readonly remoteCode?: string,
  ) {
    super(message);
    this.name = 'MasterError';
  }
}

export interface RegistrationRequest {
  mac: string;
  ip: string;
  gatewayInterface: string;
  interfaceType?: InterfaceType;
  pxe?: boolean;
  hostname?: string;
  /** The same on every retry of this registration: the master records it once (issue 13). */
  idempotencyKey?: string;
}

export type RegistrationDecision = { decision: 'active'; tipsId: string } | { decision: 'blocked'; tipsId?: string; reason: string };

export const GATEWAY_API = '/api/gateway/v1';
/** Most registrations the master takes in one batch request. */
export const MAX_BATCH = 256;

/** The TLS side of the gateway's identity: its certificate (PEM), its key and the CAs it trusts for the master. */
export interface TlsMaterial {
  certPem: string;
  keyPem: string;
  caPem: string;
}

/** One HTTPS exchange through `agent` (which carries the client certificate and the trusted CAs). */
function httpsExchange(url: URL, method: string, headers: Record<string, string>, text: string | undefined, timeoutMs: number, agent: Agent): Promise<{ status: number; raw: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: text !== undefined ? { ...headers, 'content-length': String(Buffer.byteLength(text)) } : headers, agent, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, raw: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(text);
  });
}

async function call(
  base: string,
  method: string,
  path: string,
  body: unknown,
  headers: Record<string, string>,
  timeoutMs: number,
  agent?: Agent,
): Promise<{ status: number; json: unknown }> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  const url = new URL(path, base);
  const allHeaders = { ...(text !== undefined ? { 'content-type': 'application/json' } : {}), ...headers };
  let res: { status: number; raw: string };
  try {
    if (url.protocol === 'https:' && agent) {
      res = await httpsExchange(url, method, allHeaders, text, timeoutMs, agent);
    } else {
      const r = await fetch(url, { method, headers: allHeaders, body: text, signal: AbortSignal.timeout(timeoutMs) });
      res = { status: r.status, raw: await r.text().catch(() => '') };
    }
  } catch (err) {
    throw new MasterError('master_unreachable', `${method} ${path}: ${(err as Error).message}`);
  }
  const raw = res.raw;
  let json: unknown;
  try {
    json = raw ? JSON.parse(raw) : undefined;
  } catch {
    json = undefined;
  }
  if (res.status >= 500) throw new MasterError('master_error', `${method} ${path}: HTTP ${res.status}`, res.status);
  if (res.status >= 400) {
    const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new MasterError('master_rejected', `${method} ${path}: HTTP ${res.status} ${e?.code ?? ''} ${e?.message ?? ''}`.trim(), res.status, e?.code);
  }
  return { status: res.status, json };
}

/** The certificate the master issued (at enrollment or renewal) and the CA chain to verify the master with. */
export interface IssuedCertificate {
  certificate: string;
  caChain: string;
  notAfter: string;
}

const PEM_CERT = /^-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----\r?\n?/;

function parseIssued(json: unknown, what: string): IssuedCertificate {
  const j = json as Partial<Record<keyof IssuedCertificate, unknown>> | undefined;
  if (typeof j?.certificate !== 'string' || !PEM_CERT.test(j.certificate) || typeof j.caChain !== 'string' || !PEM_CERT.test(j.caChain) || typeof j.notAfter !== 'string') {
    throw new MasterError('bad_response', `${what} answered without a PEM certificate, CA chain and notAfter`);
  }
  return { certificate: j.certificate, caChain: j.caChain, notAfter: j.notAfter };
}

/**
 * One-time enrollment: spends the token, registers our public key, returns our gatewayId with the
 * TLS client certificate the master issued for that key. Towards an https:// master, `caPem` (the
 * TIPS root the operator got from `tips`) verifies the master; without it the system's CAs do.
 */
export async function enrollGateway(
  base: string,
  req: { enrollmentToken: string; name?: string; publicKey: string },
  opts: { caPem?: string } = {},
): Promise<{ gatewayId: string } & IssuedCertificate> {
  const agent = new URL(base).protocol === 'https:' ? new Agent({ ...(opts.caPem ? { ca: opts.caPem } : {}), keepAlive: false }) : undefined;
  try {
    const r = await call(base, 'POST', `${GATEWAY_API}/enroll`, req, {}, 15_000, agent);
    const id = (r.json as { gatewayId?: unknown } | undefined)?.gatewayId;
    if (typeof id !== 'string' || id.length === 0) throw new MasterError('bad_response', 'enroll answered without a gatewayId');
    return { gatewayId: id, ...parseIssued(r.json, 'enroll') };
  } finally {
    agent?.destroy();
  }
}

export class MasterClient {
  private tls: TlsMaterial | undefined;
  private agent: Agent | undefined;

  /**
   * `tls` (certificate and CA chain from enrollment) is required when `baseUrl` is https://: the
   * gateway then speaks mTLS only, and verifies the master against `tls.caPem`.
   */
  constructor(
    readonly baseUrl: string,
    readonly gatewayId: string,
    private readonly key: KeyObject,
    private readonly timeoutMs = 10_000,
    tls?: { certPem: string; caPem: string },
  ) {
    if (new URL(baseUrl).protocol === 'https:' && !tls) {
      throw new MasterError('master_rejected', `${baseUrl} is https: the gateway needs its certificate (gateway.crt) and ca.pem from enrollment`);
    }
    if (tls) this.useCertificate(tls.certPem, tls.caPem);
  }

  /** The certificate presented from now on (a renewal); connections already open keep the old one. */
  useCertificate(certPem: string, caPem: string): void {
    this.tls = { certPem, caPem, keyPem: this.key.export({ format: 'pem', type: 'pkcs8' }).toString() };
    this.agent?.destroy();
    this.agent = new Agent({ cert: certPem, key: this.tls.keyPem, ca: caPem, keepAlive: true, maxSockets: 16 });
  }

  /** The TLS client certificate in use (PEM), if any. */
  get certificatePem(): string | undefined {
    return this.tls?.certPem;
  }

  private signed(method: string, path: string, body: unknown): Promise<{ status: number; json: unknown }> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const url = new URL(path, this.baseUrl);
    const headers = signedHeaders(this.gatewayId, this.key, { method, pathWithQuery: url.pathname + url.search, body: text });
    return call(this.baseUrl, method, path, body, headers, this.timeoutMs, this.agent);
  }

  /**
   * Issue 13: towards an https:// master the mTLS connection already authenticates this gateway, so
   * registrations go without a TIPS-GW-1 signature (no Ed25519 sign here, no verify and nonce write
   * there). Plain HTTP, and every other route, stay signed.
   */
  private overChannel(method: string, path: string, body: unknown): Promise<{ status: number; json: unknown }> {
    if (this.tls && this.agent && new URL(this.baseUrl).protocol === 'https:') return call(this.baseUrl, method, path, body, {}, this.timeoutMs, this.agent);
    return this.signed(method, path, body);
  }

  /** Signed headers for the channel's WebSocket upgrade, with the TLS client options towards an https:// master. */
  channelHeaders(): { url: string; headers: Record<string, string>; tls?: { cert: string; key: string; ca: string } } {
    const url = new URL(`${GATEWAY_API}/channel`, this.baseUrl);
    const headers = signedHeaders(this.gatewayId, this.key, { method: 'GET', pathWithQuery: url.pathname + url.search });
    const secure = url.protocol === 'https:';
    url.protocol = secure ? 'wss:' : 'ws:';
    return { url: url.toString(), headers, ...(secure && this.tls ? { tls: { cert: this.tls.certPem, key: this.tls.keyPem, ca: this.tls.caPem } } : {}) };
  }

  /** Asks the master for a fresh certificate for the same key (signed; over mTLS with the current one) and uses it. */
  async renewCertificate(): Promise<IssuedCertificate> {
    const r = await this.signed('POST', `${GATEWAY_API}/certificate`, undefined);
    const issued = parseIssued(r.json, 'certificate renewal');
    if (this.tls) this.useCertificate(issued.certificate, issued.caChain);
    return issued;
  }

  /** Closes kept-alive TLS connections. */
  close(): void {
    this.agent?.destroy();
  }

  async register(req: RegistrationRequest): Promise<RegistrationDecision> {
    const r = await this.overChannel('POST', `${GATEWAY_API}/registrations`, req);
    return parseDecision(r.json);
  }

  /** Up to MAX_BATCH registrations in one request (signed, or over mTLS); one decision per item, in order. */
  async registerBatch(reqs: RegistrationRequest[]): Promise<RegistrationDecision[]> {
    if (reqs.length === 0 || reqs.length > MAX_BATCH) throw new RangeError(`a batch holds 1 to ${MAX_BATCH} registrations`);
    const r = await this.overChannel('POST', `${GATEWAY_API}/registrations/batch`, { items: reqs });
    return parseDecisions(r.json, reqs.length);
  }

  async putTable(rows: unknown[]): Promise<void> {
    await this.signed('PUT', `${GATEWAY_API}/table`, { rows });
  }

  /**
   * A signed request whose answer comes back as it arrives (any status, headers, body stream): the
   * boot service relays Phase 1 answers to the metal without buffering a Glaze. Rejects only when the
   * master cannot be reached (`master_unreachable`).
   */
  signedRaw(method: string, pathWithQuery: string, opts: { body?: Uint8Array; contentType?: string; headers?: Record<string, string> } = {}): Promise<IncomingMessage> {
    const url = new URL(pathWithQuery, this.baseUrl);
    const headers: Record<string, string> = {
      ...opts.headers,
      ...signedHeaders(this.gatewayId, this.key, { method, pathWithQuery: url.pathname + url.search, ...(opts.body ? { body: opts.body } : {}) }),
      ...(opts.body ? { 'content-type': opts.contentType ?? 'application/octet-stream', 'content-length': String(opts.body.length) } : {}),
    };
    return new Promise((resolve, reject) => {
      const onResponse = (res: IncomingMessage) => resolve(res);
      const req =
        url.protocol === 'https:'
          ? request(url, { method, headers, agent: this.agent, timeout: this.timeoutMs }, onResponse)
          : httpRequest(url, { method, headers, timeout: this.timeoutMs }, onResponse);
      req.on('timeout', () => req.destroy(new Error(`timed out after ${this.timeoutMs} ms`)));
      req.on('error', (err) => reject(new MasterError('master_unreachable', `${method} ${url.pathname}: ${err.message}`)));
      req.end(opts.body);
    });
  }

  /**
   * The per-metal iPXE script (contract A3 `boot-script`) for `mac`, with URLs under `base` (the
   * gateway's HTTP boot address). `master_rejected` carries the master's code (`unknown_metal`, …).
   */
  async bootScript(mac: string, base: string): Promise<string> {
    const q = new URLSearchParams({ mac, base });
    const path = `${GATEWAY_API}/provisioning/boot-script?${q}`;
    const res = await this.signedRaw('GET', path, { headers: { accept: 'text/plain' } });
    const text = await readAll(res, 256 * 1024, path);
    const status = res.statusCode ?? 0;
    if (status >= 500) throw new MasterError('master_error', `GET boot-script: HTTP ${status}`, status);
    if (status >= 400) {
      let code: string | undefined;
      try {
        code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
      } catch {
        code = undefined;
      }
      throw new MasterError('master_rejected', `GET boot-script: HTTP ${status} ${code ?? ''}`.trim(), status, code);
    }
    if (status !== 200 || !text.startsWith('#!ipxe')) throw new MasterError('bad_response', `GET boot-script answered ${status} without an iPXE script`);
    return text;
  }

  /** A3 `work`: the installer's request, with the MAC the gateway attested. */
  phase1Work(req: { mac: string; token: string; installerKey: string }): Promise<IncomingMessage> {
    return this.signedRaw('POST', `${GATEWAY_API}/provisioning/work`, { body: Buffer.from(JSON.stringify(req)), contentType: 'application/json' });
  }

  /** A3 `glaze`: the job's pinned Glaze bytes, optionally one range (`bytes=a-b`). */
  phase1Glaze(jobId: string, mac: string, range?: string): Promise<IncomingMessage> {
    const q = new URLSearchParams({ mac });
    return this.signedRaw('GET', `${GATEWAY_API}/provisioning/jobs/${encodeURIComponent(jobId)}/glaze?${q}`, range ? { headers: { range } } : {});
  }

  /** A3 `report`: the installer's signed COSE report, as received. */
  phase1Report(jobId: string, mac: string, cose: Uint8Array): Promise<IncomingMessage> {
    const q = new URLSearchParams({ mac });
    return this.signedRaw('POST', `${GATEWAY_API}/provisioning/jobs/${encodeURIComponent(jobId)}/report?${q}`, { body: cose, contentType: 'application/cose' });
  }
}

/** Reads a whole (small) answer; more than `max` bytes is a bad response. */
async function readAll(res: IncomingMessage, max: number, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res) {
    n += (c as Buffer).length;
    if (n > max) {
      res.destroy();
      throw new MasterError('bad_response', `${what}: answer larger than ${max} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Validates TIPS-D's answer: anything else than a well-formed decision is an error (never "active" by default). */
export function parseDecision(json: unknown): RegistrationDecision {
  const j = json as { decision?: unknown; tipsId?: unknown; reason?: unknown } | undefined;
  if (j?.decision === 'active' && typeof j.tipsId === 'string' && j.tipsId.length > 0) return { decision: 'active', tipsId: j.tipsId };
  if (j?.decision === 'blocked') {
    return {
      decision: 'blocked',
      ...(typeof j.tipsId === 'string' ? { tipsId: j.tipsId } : {}),
      reason: typeof j.reason === 'string' ? j.reason : 'rejected',
    };
  }
  throw new MasterError('bad_response', `registration answer is not a decision: ${JSON.stringify(json)?.slice(0, 200)}`);
}

/** Validates a batch answer: exactly one well-formed decision per registration sent, or an error for all. */
export function parseDecisions(json: unknown, count: number): RegistrationDecision[] {
  const items = (json as { items?: unknown } | undefined)?.items;
  if (!Array.isArray(items) || items.length !== count) {
    throw new MasterError('bad_response', `batch answer is not ${count} decisions: ${JSON.stringify(json)?.slice(0, 200)}`);
  }
  return items.map((d) => parseDecision(d));
}
