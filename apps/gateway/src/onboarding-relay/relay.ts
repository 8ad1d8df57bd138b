// The onboarding relay (issue 11, Z1): the one door of the gateway a device nobody declared may
// use. It listens on the LAN address at ONBOARDING_RELAY_PORT (the nftables rule that lets an
// unknown, Pending or unknown-MAC-Blocked source reach it is in enforcer/nft.ts) and forwards only
// the onboarding routes — rendezvous TO1 and the owner's TO2 — to this gateway's master over its
// signed (mTLS towards https) uplink. Everything else on the port is 404 and logged. It never
// decides anything: the master answers, and a device becomes Active only through a registration
// the master decides (the `clear` the master sends once the device is a metal; see gateway.ts).
// EST is not relayed: it runs end to end over TLS pinned to the owner's CA once the row is Active,
// so the enrollment secret never crosses the LAN in the clear (docs/THREAT-MODEL.md).
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { ONBOARDING_RELAY_PROBE, ONBOARDING_RELAY_ROUTES } from '@tips/onboarding';
import type { Logger } from 'pino';
import type { GatewayMetrics } from '../status/metrics.ts';
import { MasterError } from '../uplink/client.ts';
import { HttpRefusal as Refusal, readBody, remoteIp } from '../http/request.ts';

export type RelayRoute = (typeof ONBOARDING_RELAY_ROUTES)[keyof typeof ONBOARDING_RELAY_ROUTES];

/** What the relay needs of the master: one signed request whose answer streams back. */
export interface RelayMaster {
  signedRaw(method: string, pathWithQuery: string, opts: { body?: Uint8Array; contentType?: string; headers?: Record<string, string> }): Promise<IncomingMessage>;
}

/** Who is asking, from the gateway's own state (lease table, interface table), never from the request. */
export type RelayAdmission = { admit: true; mac: string } | { admit: false; code: 'no_lease' | 'interface_blocked'; message: string };

export interface RelayLimits {
  /** Largest request body forwarded (the TO2 bodies are a few KiB; a voucher answer is larger). */
  maxBody: number;
  /** Largest answer relayed back. */
  maxAnswer: number;
  /** Requests per source address: a bucket of `burst`, refilled at `perMinute`. */
  burst: number;
  perMinute: number;
  /** Time a request may take to arrive whole (headers and body). */
  requestTimeoutMs: number;
  /** After a successful TO2 prove: how long to wait for the device's row to turn Active before answering. */
  activeWaitMs: number;
}

export const DEFAULT_RELAY_LIMITS: RelayLimits = { maxBody: 128 * 1024, maxAnswer: 1024 * 1024, burst: 12, perMinute: 30, requestTimeoutMs: 10_000, activeWaitMs: 15_000 };

export interface OnboardingRelayOptions {
  address: string;
  port: number;
  master: RelayMaster;
  admit: (ip: string) => RelayAdmission;
  /**
   * The device proved itself and the master made it a metal: resolves once its row is Active (or
   * the wait is over). The answer goes back only then, so the device's next step — EST, straight
   * to the master — finds its traffic let through.
   */
  proved: (mac: string, waitMs: number) => Promise<boolean>;
  log: Logger;
  metrics: GatewayMetrics;
  limits?: Partial<RelayLimits>;
  now?: () => number;
}


/** A token bucket per source address; buckets that are full again are forgotten. */
export class SourceRateLimit {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly burst: number,
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  take(source: string): boolean {
    const t = this.now();
    const b = this.buckets.get(source) ?? { tokens: this.burst, at: t };
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) * this.perMinute) / 60_000);
    b.at = t;
    if (this.buckets.size > 4096) for (const [k, v] of this.buckets) if (v.tokens >= this.burst) this.buckets.delete(k);
    if (b.tokens < 1) {
      this.buckets.set(source, b);
      return false;
    }
    b.tokens -= 1;
    this.buckets.set(source, b);
    return true;
  }
}

export class OnboardingRelay {
  private server: http.Server | undefined;
  private readonly limits: RelayLimits;
  private readonly rate: SourceRateLimit;

  constructor(private readonly o: OnboardingRelayOptions) {
    this.limits = { ...DEFAULT_RELAY_LIMITS, ...o.limits };
    this.rate = new SourceRateLimit(this.limits.burst, this.limits.perMinute, o.now);
  }

  get port(): number {
    const a = this.server?.address();
    return typeof a === 'object' && a ? a.port : this.o.port;
  }

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      void this.handle(req, res);
    });
    this.server.requestTimeout = this.limits.requestTimeoutMs;
    this.server.headersTimeout = this.limits.requestTimeoutMs;
    this.server.maxHeadersCount = 32;
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.o.port, this.o.address, () => resolve());
    });
    this.o.log.info({ address: this.o.address, port: this.port }, 'onboarding relay listening');
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server?.closeAllConnections();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ip = remoteIp(req);
    const path = (req.url ?? '').split('?')[0] ?? '';
    const route: RelayRoute | 'probe' | 'other' = path === ONBOARDING_RELAY_PROBE ? 'probe' : ((ONBOARDING_RELAY_ROUTES as Record<string, RelayRoute | undefined>)[path] ?? 'other');
    const count = (outcome: string) => this.o.metrics.onboardingRelayRequests.inc({ route, outcome });
    try {
      if (route === 'other') {
        this.o.log.warn({ source: ip, method: req.method, path: path.slice(0, 200) }, 'onboarding relay: not an onboarding route');
        throw new Refusal(404, 'not_found', 'the onboarding relay forwards only the onboarding routes (rendezvous TO1, owner TO2)');
      }
      const expected = route === 'probe' ? 'GET' : 'POST';
      if (req.method !== expected) throw new Refusal(405, 'method_not_allowed', `${path} takes ${expected}`);
      if (!this.rate.take(ip)) throw new Refusal(429, 'rate_limited', `at most ${this.limits.perMinute} onboarding requests a minute from one address`);
      const who = this.o.admit(ip);
      if (!who.admit) {
        this.o.log.warn({ source: ip, route, code: who.code }, 'onboarding relay: source refused');
        throw new Refusal(403, who.code, who.message);
      }
      if (route === 'probe') {
        count('ok');
        return this.json(res, 200, { relay: 'tips-onboarding', routes: Object.keys(ONBOARDING_RELAY_ROUTES) });
      }
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== 'application/json') throw new Refusal(415, 'unsupported_media_type', 'the onboarding routes take application/json', 'content-type');
      const body = await this.readBody(req);
      const answer = await this.o.master.signedRaw('POST', path, { body, contentType: 'application/json', headers: { accept: 'application/json' } });
      const status = answer.statusCode ?? 502;
      const text = await this.readAnswer(answer);
      if (route === 'to2-prove' && status === 200) {
        const active = await this.o.proved(who.mac, this.limits.activeWaitMs);
        this.o.log.info({ source: ip, mac: who.mac, active }, 'onboarding relay: device onboarded');
      }
      count(status < 400 ? 'ok' : 'refused_by_master');
      this.o.log.info({ source: ip, mac: who.mac, route, status }, 'onboarding relay: forwarded');
      res.writeHead(status, { 'content-type': answer.headers['content-type'] ?? 'application/json', 'content-length': String(text.length), 'cache-control': 'no-store' });
      res.end(text);
    } catch (err) {
      if (err instanceof Refusal) {
        count(err.code);
        return this.error(res, err.status, err.code, err.message, err.field);
      }
      if (err instanceof MasterError) {
        count(err.code);
        this.o.log.warn({ source: ip, route, code: err.code, msg: err.message }, 'onboarding relay: master not reached');
        return this.error(res, 502, err.code, 'the master could not be reached through the gateway; try again');
      }
      count('internal');
      this.o.log.error({ err, source: ip, route }, 'onboarding relay: request failed');
      return this.error(res, 500, 'internal', 'internal error');
    }
  }

  private async readBody(req: IncomingMessage): Promise<Buffer> {
    const body = await readBody(req, this.limits.maxBody);
    if (body.length === 0) throw new Refusal(400, 'body_missing', 'the onboarding routes take a JSON body');
    return body;
  }

  private async readAnswer(res: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of res) {
      n += (c as Buffer).length;
      if (n > this.limits.maxAnswer) {
        res.destroy();
        throw new MasterError('bad_response', `the master answered more than ${this.limits.maxAnswer} bytes`);
      }
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks);
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), 'cache-control': 'no-store' });
    res.end(text);
  }

  private error(res: ServerResponse, status: number, code: string, message: string, field?: string): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    this.json(res, status, { error: { code, message, ...(field ? { field } : {}) }, requestId: randomUUID() });
  }
}
