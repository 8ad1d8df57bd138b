import { createHash } from 'node:crypto';
import { type OwnerId, parseName } from '@tips/core';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { Clock, Random } from '../../ports.ts';
import type { MetalPrincipal } from '../enrollment/model.ts';
import type { Owner } from '../owners/model.ts';
import { TelemetryError } from './errors.ts';
import {
  APP_SCOPES,
  APP_TOKEN_FORMAT,
  APP_TOKEN_PREFIX,
  type AppScope,
  type AppToken,
  DEFAULT_APP_TOKEN_SECONDS,
  type Heartbeat,
  MAX_APP_TOKEN_SECONDS,
  MAX_STRING_VALUE,
  MAX_TELEMETRY_BYTES,
  MAX_TELEMETRY_VALUES,
  RATE,
  RETENTION_DAYS,
  TELEMETRY_KEY,
  type TelemetrySample,
  type TelemetryValue,
} from './model.ts';
import type { TelemetryStore } from './store.ts';

/** What the telemetry domain needs of the metals domain: resolve an owner's metal by ID or name. */
export interface MetalLookup {
  get(ownerId: OwnerId, ref: string): Promise<{ id: string; name: string }>;
}

/** The application a token names, once authenticated: one owner's one metal, these scopes. */
export interface AppPrincipal {
  tokenId: string;
  ownerId: OwnerId;
  metalId: string;
  scope: AppScope[];
}

export interface TelemetryMetrics {
  posts: { inc(labels: { kind: string; result: string }): void };
  appAuth: { inc(labels: { result: string }): void };
}

const hashToken = (t: string) => createHash('sha256').update(t, 'utf8').digest('hex');
const b64url = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** The routes an application token may call (method, route pattern as Fastify registered it). */
const APP_ROUTES: Record<AppScope, string[]> = {
  'telemetry:read': ['GET /api/v1/metals/:ref/telemetry', 'GET /api/v1/metals/:ref/heartbeat'],
};

export class TelemetryService {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private metrics: TelemetryMetrics | undefined;
  private inserted = 0;

  constructor(
    private readonly store: TelemetryStore,
    private readonly metals: MetalLookup,
    private readonly clock: Clock,
    private readonly random: Random,
  ) {}

  useMetrics(m: TelemetryMetrics): void {
    this.metrics = m;
  }

  // --- metal API ---------------------------------------------------------------------------------

  /** Validates `{ at, values }`: every refusal names the field, and nothing is stored. */
  parsePost(body: unknown, bytes: number): { at: string; values: Record<string, TelemetryValue> } {
    const bad = (field: string, message: string): never => {
      throw new TelemetryError('invalid_telemetry', message, field);
    };
    if (bytes > MAX_TELEMETRY_BYTES) bad('body', `the body is ${bytes} bytes, at most ${MAX_TELEMETRY_BYTES}`);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return bad('body', 'expected a JSON object { at, values }');
    const o = body as Record<string, unknown>;
    for (const k of Object.keys(o)) if (k !== 'at' && k !== 'values') bad(k, `unknown field "${k.slice(0, 64)}" (expected at, values)`);
    if (typeof o.at !== 'string' || !ISO.test(o.at) || Number.isNaN(Date.parse(o.at))) bad('at', 'at must be an ISO 8601 date-time with a zone (e.g. 2026-11-29T15:00:00Z)');
    const v = o.values;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('values', 'values must be an object of key → number, string or boolean');
    const entries = Object.entries(v as Record<string, unknown>);
    if (entries.length > MAX_TELEMETRY_VALUES) bad('values', `${entries.length} values, at most ${MAX_TELEMETRY_VALUES}`);
    for (const [k, x] of entries) {
      if (!TELEMETRY_KEY.test(k)) bad(`values.${k.slice(0, 64)}`, 'a key is a letter then up to 63 letters, digits, _ . -');
      if (typeof x === 'number' ? !Number.isFinite(x) : typeof x === 'string' ? x.length > MAX_STRING_VALUE : typeof x !== 'boolean') {
        bad(`values.${k}`, `must be a finite number, a boolean or a string of at most ${MAX_STRING_VALUE} characters`);
      }
    }
    return { at: new Date(o.at as string).toISOString(), values: v as Record<string, TelemetryValue> };
  }

  /** A token bucket per metal and kind, in this master's memory (each replica limits on its own). */
  private take(kind: 'telemetry' | 'heartbeat', metalId: string): void {
    const { burst, perMinute } = RATE[kind];
    const now = this.clock.now().getTime();
    const key = `${kind}:${metalId}`;
    const b = this.buckets.get(key) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) * perMinute) / 60_000);
    b.at = now;
    if (b.tokens < 1) {
      this.buckets.set(key, b);
      const retryAfter = Math.max(1, Math.ceil(((1 - b.tokens) * 60) / perMinute));
      this.metrics?.posts.inc({ kind, result: 'rate_limited' });
      throw new TelemetryError('rate_limited', `too many ${kind} posts from this metal: at most ${perMinute} a minute (burst ${burst}); retry in ${retryAfter} s`, undefined, retryAfter);
    }
    b.tokens -= 1;
    this.buckets.set(key, b);
    if (this.buckets.size > 100_000) this.buckets.clear();
  }

  async post(metal: MetalPrincipal, body: unknown, bytes: number): Promise<TelemetrySample> {
    let input: ReturnType<TelemetryService['parsePost']>;
    try {
      input = this.parsePost(body, bytes);
    } catch (e) {
      this.metrics?.posts.inc({ kind: 'telemetry', result: 'invalid' });
      throw e;
    }
    this.take('telemetry', metal.metalId);
    const now = this.clock.now();
    const sample: TelemetrySample = { id: `tel_${b64url(this.random.bytes(12))}`, metalId: metal.metalId, ownerId: metal.ownerId, at: input.at, receivedAt: now.toISOString(), values: input.values };
    await this.store.insertSample(sample);
    this.metrics?.posts.inc({ kind: 'telemetry', result: 'ok' });
    if (++this.inserted % 500 === 1) await this.store.deleteSamplesBefore(new Date(now.getTime() - RETENTION_DAYS * 86_400_000).toISOString());
    return sample;
  }

  async heartbeat(metal: MetalPrincipal, body: unknown, bytes: number): Promise<void> {
    let input: ReturnType<TelemetryService['parsePost']>;
    try {
      input = this.parsePost(body, bytes);
    } catch (e) {
      this.metrics?.posts.inc({ kind: 'heartbeat', result: 'invalid' });
      throw e;
    }
    this.take('heartbeat', metal.metalId);
    await this.store.putHeartbeat({ metalId: metal.metalId, ownerId: metal.ownerId, at: input.at, receivedAt: this.clock.now().toISOString(), values: input.values });
    this.metrics?.posts.inc({ kind: 'heartbeat', result: 'ok' });
  }

  // --- readers (owners and application tokens) --------------------------------------------------

  /** The metal `ref` names for this reader; an application token sees its one metal and no other (404 as for a metal that does not exist). */
  async metalFor(ownerId: OwnerId, ref: string, app?: AppPrincipal): Promise<{ id: string; name: string }> {
    const metal = await this.metals.get(ownerId, ref);
    if (app && metal.id !== app.metalId) throw new TelemetryError('forbidden', 'this application token is for another device', 'ref');
    return { id: metal.id, name: metal.name };
  }

  async samples(ownerId: OwnerId, ref: string, since: string | undefined, window: KeysetWindow | undefined, app?: AppPrincipal): Promise<TelemetrySample[]> {
    if (since !== undefined && (!ISO.test(since) || Number.isNaN(Date.parse(since)))) throw new TelemetryError('invalid_telemetry', 'since must be an ISO 8601 date-time with a zone', 'since');
    const metal = await this.metalFor(ownerId, ref, app);
    return this.store.listSamples(metal.id, since === undefined ? undefined : new Date(since).toISOString(), window);
  }

  async lastHeartbeat(ownerId: OwnerId, ref: string, app?: AppPrincipal): Promise<{ metal: { id: string; name: string }; heartbeat: Heartbeat | undefined }> {
    const metal = await this.metalFor(ownerId, ref, app);
    return { metal, heartbeat: await this.store.findHeartbeat(metal.id) };
  }

  // --- application tokens ----------------------------------------------------------------------

  async createAppToken(owner: Owner, input: { metal: string; scope: string[]; ttlSeconds?: number; name?: string }): Promise<AppToken & { secret: string }> {
    if (input.scope.length === 0) throw new TelemetryError('invalid_app_token', `scope must name at least one of ${APP_SCOPES.join(', ')}`, 'scope');
    for (const s of input.scope) if (!APP_SCOPES.includes(s as AppScope)) throw new TelemetryError('invalid_app_token', `unknown scope "${s.slice(0, 64)}" (known: ${APP_SCOPES.join(', ')})`, 'scope');
    const ttl = input.ttlSeconds ?? DEFAULT_APP_TOKEN_SECONDS;
    if (!Number.isInteger(ttl) || ttl < 60 || ttl > MAX_APP_TOKEN_SECONDS) throw new TelemetryError('invalid_app_token', `ttlSeconds must be an integer from 60 to ${MAX_APP_TOKEN_SECONDS}`, 'ttlSeconds');
    const metal = await this.metals.get(owner.id, input.metal);
    const name = input.name === undefined ? `app-${metal.name}` : parseName(input.name, 'name');
    const now = this.clock.now();
    const token: AppToken = {
      id: `apt_${b64url(this.random.bytes(12))}`,
      ownerId: owner.id,
      metalId: metal.id,
      name,
      scope: [...new Set(input.scope as AppScope[])],
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + ttl * 1000).toISOString(),
    };
    const secret = APP_TOKEN_PREFIX + b64url(this.random.bytes(32));
    await this.store.insertAppToken(token, hashToken(secret));
    return { ...token, secret };
  }

  listAppTokens(owner: Owner, window?: KeysetWindow): Promise<AppToken[]> {
    return this.store.listAppTokens(owner.id, window);
  }

  async revokeAppToken(owner: Owner, id: string): Promise<void> {
    if (!(await this.store.deleteAppToken(owner.id, id))) throw new TelemetryError('app_token_not_found', `no application token ${id.slice(0, 64)}`, 'id');
  }

  /** Whether a bearer credential is an application token (and not an owner's API token). */
  static isAppToken(token: string | undefined): token is string {
    return token?.startsWith(APP_TOKEN_PREFIX) === true;
  }

  /**
   * Resolves an application token for a request to `method route`: 401 when it is not a live token
   * (unknown, revoked, expired — saying as little as possible), 403 for any route its scopes do not
   * name. The metal check (its one device) is the routes' (`metalFor`).
   */
  async authenticateApp(token: string, method: string, route: string | undefined): Promise<AppPrincipal> {
    const found = APP_TOKEN_FORMAT.test(token) ? await this.store.findAppTokenByHash(hashToken(token)) : undefined;
    if (!found || found.expiresAt <= this.clock.now().toISOString()) {
      this.metrics?.appAuth.inc({ result: 'unauthenticated' });
      throw new TelemetryError('unauthenticated', 'a valid API token is required');
    }
    const call = `${method} ${route ?? ''}`;
    if (!found.scope.some((s) => APP_ROUTES[s].includes(call))) {
      this.metrics?.appAuth.inc({ result: 'forbidden' });
      throw new TelemetryError('forbidden', `an application token (scope ${found.scope.join(' ')}) may only read its device's telemetry and heartbeat`);
    }
    this.metrics?.appAuth.inc({ result: 'ok' });
    return { tokenId: found.id, ownerId: found.ownerId, metalId: found.metalId, scope: found.scope };
  }
}
