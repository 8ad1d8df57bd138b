/**
 * HTTPS to the master with node:https only (no fetch: Node 18's is experimental and cannot take a
 * client certificate). The master is verified against the CA file of config.json; on the metal API
 * the metal's certificate and key authenticate it (mTLS).
 */
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { ClientError } from '../errors.ts';

export interface TlsMaterial {
  /** PEM of the CA(s) the master's certificate must chain to. */
  ca: string;
  /** The metal's certificate and key (mTLS); absent for EST simpleenroll. */
  cert?: string;
  key?: string;
}

export interface HttpRequest {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  tls: TlsMaterial;
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function options(r: HttpRequest): RequestOptions {
  const u = new URL(r.url);
  if (u.protocol !== 'https:') throw new ClientError('config_invalid', `expected an https:// URL, came ${u.protocol}`);
  return {
    method: r.method ?? 'GET',
    headers: { ...(r.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(r.body)) }), ...r.headers },
    ca: r.tls.ca,
    ...(r.tls.cert ? { cert: r.tls.cert, key: r.tls.key } : {}),
    // One connection per request: the agent's pool would keep a certificate after a re-enrollment.
    agent: false,
    timeout: r.timeoutMs ?? 30_000,
  };
}

/** Starts a request and resolves with the response head (the body is still to be read). */
export function open(r: HttpRequest): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    let req: ReturnType<typeof httpsRequest>;
    try {
      req = httpsRequest(r.url, options(r), resolve);
    } catch (e) {
      reject(e);
      return;
    }
    req.on('timeout', () => req.destroy(new ClientError('master_unreachable', `${r.method ?? 'GET'} ${new URL(r.url).pathname}: no answer within ${r.timeoutMs ?? 30_000} ms`)));
    req.on('error', (e) => reject(e instanceof ClientError ? e : new ClientError('master_unreachable', `${r.method ?? 'GET'} ${new URL(r.url).origin}: ${(e as Error).message}`)));
    req.end(r.body === undefined ? undefined : r.body);
  });
}

/** A whole request: status, headers, body. */
export async function send(r: HttpRequest): Promise<HttpResponse> {
  const res = await open(r);
  const chunks: Buffer[] = [];
  try {
    for await (const c of res) chunks.push(c as Buffer);
  } catch (e) {
    throw new ClientError('master_unreachable', `${new URL(r.url).pathname}: the answer broke off: ${(e as Error).message}`);
  }
  return { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) };
}

/** The `{ error: { code, message } }` of a refusal, when the body has that shape. */
export function errorOf(res: HttpResponse): { code: string; message: string } | undefined {
  try {
    const e = (JSON.parse(res.body.toString('utf8')) as { error?: { code?: unknown; message?: unknown } }).error;
    if (e && typeof e.code === 'string') return { code: e.code, message: typeof e.message === 'string' ? e.message : '' };
  } catch {
    // not JSON
  }
  return undefined;
}
