// HTTP client of the gateway API of the master (TIPS-D). Every request but enroll is signed (sign.ts).
import type { KeyObject } from 'node:crypto';
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
}

export type RegistrationDecision = { decision: 'active'; tipsId: string } | { decision: 'blocked'; tipsId?: string; reason: string };

export const GATEWAY_API = '/api/gateway/v1';
/** Most registrations the master takes in one batch request. */
export const MAX_BATCH = 256;

async function call(
  base: string,
  method: string,
  path: string,
  body: unknown,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<{ status: number; json: unknown }> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  let res: Response;
  try {
    res = await fetch(new URL(path, base), {
      method,
      headers: { ...(text !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: text,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new MasterError('master_unreachable', `${method} ${path}: ${(err as Error).message}`);
  }
  const raw = await res.text().catch(() => '');
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

/** One-time enrollment: spends the token, registers our public key, returns our gatewayId. */
export async function enrollGateway(base: string, req: { enrollmentToken: string; name?: string; publicKey: string }): Promise<string> {
  const r = await call(base, 'POST', `${GATEWAY_API}/enroll`, req, {}, 15_000);
  const id = (r.json as { gatewayId?: unknown } | undefined)?.gatewayId;
  if (typeof id !== 'string' || id.length === 0) throw new MasterError('bad_response', 'enroll answered without a gatewayId');
  return id;
}

export class MasterClient {
  constructor(
    readonly baseUrl: string,
    readonly gatewayId: string,
    private readonly key: KeyObject,
    private readonly timeoutMs = 10_000,
  ) {}

  private signed(method: string, path: string, body: unknown): Promise<{ status: number; json: unknown }> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const url = new URL(path, this.baseUrl);
    const headers = signedHeaders(this.gatewayId, this.key, { method, pathWithQuery: url.pathname + url.search, body: text });
    return call(this.baseUrl, method, path, body, headers, this.timeoutMs);
  }

  /** Signed headers for the channel's WebSocket upgrade. */
  channelHeaders(): { url: string; headers: Record<string, string> } {
    const url = new URL(`${GATEWAY_API}/channel`, this.baseUrl);
    const headers = signedHeaders(this.gatewayId, this.key, { method: 'GET', pathWithQuery: url.pathname + url.search });
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return { url: url.toString(), headers };
  }

  async register(req: RegistrationRequest): Promise<RegistrationDecision> {
    const r = await this.signed('POST', `${GATEWAY_API}/registrations`, req);
    return parseDecision(r.json);
  }

  /** Up to MAX_BATCH registrations in one signed request; one decision per item, in order. */
  async registerBatch(reqs: RegistrationRequest[]): Promise<RegistrationDecision[]> {
    if (reqs.length === 0 || reqs.length > MAX_BATCH) throw new RangeError(`a batch holds 1 to ${MAX_BATCH} registrations`);
    const r = await this.signed('POST', `${GATEWAY_API}/registrations/batch`, { items: reqs });
    return parseDecisions(r.json, reqs.length);
  }

  async putTable(rows: unknown[]): Promise<void> {
    await this.signed('PUT', `${GATEWAY_API}/table`, { rows });
  }
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
