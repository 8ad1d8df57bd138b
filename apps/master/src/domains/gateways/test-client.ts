// A gateway for tests: enrolls through the real API and signs requests exactly as TIPS-G does
// (TIPS-GW-1), with hooks to forge each part of a signature. Used by route tests only.
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import WebSocket from 'ws';
import { SIGNATURE_SCHEME } from './signature.ts';

export interface SignOptions {
  timestamp?: number;
  nonce?: string;
  /** Claim another gateway's ID while signing with this gateway's key. */
  claimId?: string;
  /** Sign this body but send `body`. */
  signedBody?: string | Buffer;
  /** Content-Type of a body (default application/json). */
  contentType?: string;
  key?: KeyObject;
}

export class TestGateway {
  constructor(
    readonly app: FastifyInstance,
    readonly id: string,
    readonly key: KeyObject,
    /** The TLS client certificate (PEM) and CA chain the master issued at enrollment. */
    readonly certificate = '',
    readonly caChain = '',
  ) {}

  /** The private key as PKCS#8 PEM (for a TLS client). */
  get keyPem(): string {
    return this.key.export({ format: 'pem', type: 'pkcs8' }).toString();
  }

  /** Declares a gateway for the owner and enrolls it with a fresh Ed25519 key. */
  static async enroll(app: FastifyInstance, ownerToken: string, name: string): Promise<TestGateway> {
    const created = await app.inject({ method: 'POST', url: '/api/v1/gateways', headers: { authorization: `Bearer ${ownerToken}` }, payload: { name } });
    if (created.statusCode !== 201) throw new Error(`create gateway: ${created.body}`);
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const r = await app.inject({ method: 'POST', url: '/api/gateway/v1/enroll', payload: { enrollmentToken: created.json().enrollmentToken, publicKey: pem, name } });
    if (r.statusCode !== 201) throw new Error(`enroll: ${r.body}`);
    return new TestGateway(app, r.json().gatewayId, privateKey, r.json().certificate, r.json().caChain);
  }

  headers(method: string, pathWithQuery: string, body: string | Buffer | undefined, o: SignOptions = {}): Record<string, string> {
    const timestamp = o.timestamp ?? Date.now();
    const nonce = o.nonce ?? randomBytes(16).toString('base64url');
    const signed = o.signedBody ?? body ?? '';
    const digest = createHash('sha256').update(typeof signed === 'string' ? Buffer.from(signed, 'utf8') : signed).digest('hex');
    const canonical = `${SIGNATURE_SCHEME}\n${method}\n${pathWithQuery}\n${timestamp}\n${nonce}\n${digest}`;
    return {
      'x-tips-gateway': o.claimId ?? this.id,
      'x-tips-timestamp': String(timestamp),
      'x-tips-nonce': nonce,
      'x-tips-signature': sign(null, Buffer.from(canonical, 'utf8'), o.key ?? this.key).toString('base64url'),
      ...(body !== undefined ? { 'content-type': o.contentType ?? 'application/json' } : {}),
    };
  }

  request(method: 'GET' | 'POST' | 'PUT', path: string, payload?: unknown, o: SignOptions = {}): Promise<LightMyRequestResponse> {
    const body = payload === undefined ? undefined : JSON.stringify(payload);
    return this.app.inject({ method, url: path, headers: this.headers(method, path, body, o), payload: body });
  }

  register(body: Record<string, unknown>, o: SignOptions = {}) {
    return this.request('POST', '/api/gateway/v1/registrations', body, o);
  }

  registerBatch(items: unknown[], o: SignOptions = {}) {
    return this.request('POST', '/api/gateway/v1/registrations/batch', { items }, o);
  }

  /** Opens the command channel over a real WebSocket to a listening master. */
  async connect(baseUrl: string, o: SignOptions = {}): Promise<TestChannel> {
    const path = '/api/gateway/v1/channel';
    const ws = new WebSocket(baseUrl.replace(/^http/, 'ws') + path, { headers: this.headers('GET', path, undefined, o) });
    const channel = new TestChannel(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`channel refused: HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
    ws.send(JSON.stringify({ type: 'hello' }));
    return channel;
  }
}

export interface Command {
  id: string;
  type: string;
  mac?: string;
  macs?: string[];
  tipsId?: string;
  reason?: string;
}

/** Collects master → gateway commands; `next` waits for one matching a predicate. */
export class TestChannel {
  readonly received: Command[] = [];
  private waiters: { match: (c: Command) => boolean; resolve: (c: Command) => void }[] = [];
  readonly closed: Promise<number>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const c = JSON.parse(data.toString()) as Command;
      this.received.push(c);
      for (const w of [...this.waiters]) {
        if (w.match(c)) {
          this.waiters = this.waiters.filter((x) => x !== w);
          w.resolve(c);
        }
      }
    });
    this.closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
  }

  next(match: (c: Command) => boolean, timeoutMs = 5000): Promise<Command> {
    const seen = this.received.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no matching command within ${timeoutMs} ms; got ${JSON.stringify(this.received)}`)), timeoutMs);
      this.waiters.push({
        match,
        resolve: (c) => {
          clearTimeout(t);
          resolve(c);
        },
      });
    });
  }

  ack(c: Command): void {
    this.ws.send(JSON.stringify({ type: 'ack', ref: c.id }));
  }

  async close(): Promise<void> {
    this.ws.close();
    await this.closed;
  }
}
