/**
 * HTTP to the gateway with node:http(s) only (Node 18's fetch is experimental and buffers less
 * predictably): JSON requests, a resumable ranged download, and a byte upload.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import { InstallerError } from './errors.ts';

export interface HttpResponse {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

const TIMEOUT_MS = 30_000;

function client(url: URL): typeof http | typeof https {
  return url.protocol === 'https:' ? https : http;
}

/** One request; rejects only on a network error or timeout (any status resolves). */
export function request(method: string, url: string, opts: { headers?: Record<string, string>; body?: Uint8Array } = {}): Promise<HttpResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = client(u).request(u, { method, headers: { ...(opts.headers ?? {}), ...(opts.body ? { 'content-length': String(opts.body.length) } : {}) }, timeout: TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${u.host} within ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(opts.body ? Buffer.from(opts.body.buffer, opts.body.byteOffset, opts.body.length) : undefined);
  });
}

/** The `{ error: { code, message } }` of an answer, when it has one. */
export function errorOf(res: HttpResponse): { code: string; message: string } {
  try {
    const j = JSON.parse(res.body.toString('utf8')) as { error?: { code?: unknown; message?: unknown } };
    if (j.error && typeof j.error.code === 'string') return { code: j.error.code, message: String(j.error.message ?? '') };
  } catch {
    // not JSON
  }
  return { code: `http_${res.status}`, message: res.body.toString('utf8').slice(0, 200) };
}

export interface Backoff {
  /** First delay; doubles up to maxMs. */
  initialMs: number;
  maxMs: number;
  /** Consecutive failed attempts without progress before giving up. */
  attempts: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 500, maxMs: 10_000, attempts: 10 };

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface DownloadOptions {
  url: string;
  /** The size the manifest promises: more bytes, or a server that says another total, is refused. */
  size: number;
  /** Bytes already held (resume from here). */
  from: number;
  /** Takes the bytes in order; the download waits for it (back-pressure). */
  sink: (chunk: Buffer) => Promise<void>;
  log: Logger;
  backoff?: Backoff;
}

class RangeRefused extends Error {}

/**
 * Fetches [from, size) with Range requests, resuming after every broken connection from the
 * last byte the sink took. Throws InstallerError download_failed (gave up) or suit_size_mismatch
 * (the server's Glaze is not the manifest's size).
 */
export async function downloadResumable(o: DownloadOptions): Promise<void> {
  const backoff = o.backoff ?? DEFAULT_BACKOFF;
  let have = o.from;
  let failures = 0;
  let delay = backoff.initialMs;
  let lastLog = 0;
  const progress = (): void => {
    const now = Date.now();
    if (now - lastLog < 2000 && have < o.size) return;
    lastLog = now;
    o.log.info({ phase: 'download', bytes: have, size: o.size, percent: Math.floor((have / o.size) * 100) }, 'download progress');
  };
  while (have < o.size) {
    const before = have;
    try {
      await fetchFrom(o, have, async (chunk) => {
        if (have + chunk.length > o.size) throw new InstallerError('suit_size_mismatch', `the gateway sent more than the manifest's ${o.size} bytes`);
        await o.sink(chunk);
        have += chunk.length;
        progress();
      });
      if (have < o.size) throw new Error(`the connection ended at byte ${have} of ${o.size}`);
    } catch (e) {
      if (e instanceof InstallerError) throw e;
      if (have > before) {
        failures = 0;
        delay = backoff.initialMs;
      }
      failures++;
      if (failures >= backoff.attempts || e instanceof RangeRefused) {
        throw new InstallerError('download_failed', `Glaze download stopped at byte ${have} of ${o.size}: ${(e as Error).message}`);
      }
      o.log.warn({ phase: 'download', bytes: have, attempt: failures, retryInMs: delay, err: (e as Error).message }, 'download interrupted; resuming');
      await sleep(delay);
      delay = Math.min(delay * 2, backoff.maxMs);
    }
  }
  progress();
}

function totalOf(res: IncomingMessage): number | undefined {
  const cr = res.headers['content-range'];
  const m = typeof cr === 'string' ? /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(cr) : null;
  if (m && m[3] !== '*') return Number(m[3]);
  if (res.statusCode === 200 && res.headers['content-length'] !== undefined) return Number(res.headers['content-length']);
  return undefined;
}

function fetchFrom(o: DownloadOptions, from: number, take: (chunk: Buffer) => Promise<void>): Promise<void> {
  const u = new URL(o.url);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = from > 0 ? { range: `bytes=${from}-` } : {};
    const req = client(u).get(u, { headers, timeout: TIMEOUT_MS }, (res) => {
      const status = res.statusCode ?? 0;
      const total = totalOf(res);
      if (status === 416) {
        res.resume();
        reject(new InstallerError('suit_size_mismatch', `the gateway refused bytes ${from}- of a Glaze the manifest says has ${o.size} bytes`));
        return;
      }
      if (status !== 200 && status !== 206) {
        res.resume();
        const err = status >= 400 && status < 500 && status !== 408 && status !== 429 ? new RangeRefused(`HTTP ${status}`) : new Error(`HTTP ${status}`);
        reject(err);
        return;
      }
      if (total !== undefined && total !== o.size) {
        res.resume();
        reject(new InstallerError('suit_size_mismatch', `the gateway's Glaze has ${total} bytes, the manifest says ${o.size}`));
        return;
      }
      // A server that ignores Range answers 200 from byte 0: skip what is already held.
      let skip = status === 200 ? from : 0;
      if (status === 206) {
        const start = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
        if (!start || Number(start[1]) !== from) {
          res.resume();
          reject(new RangeRefused(`expected a range from byte ${from}, came ${String(res.headers['content-range'])}`));
          return;
        }
      }
      (async () => {
        for await (const c of res as AsyncIterable<Buffer>) {
          let chunk = c;
          if (skip > 0) {
            const n = Math.min(skip, chunk.length);
            skip -= n;
            chunk = chunk.subarray(n);
            if (chunk.length === 0) continue;
          }
          await take(chunk);
        }
      })().then(resolve, (e) => {
        res.destroy();
        reject(e);
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no data from ${u.host} within ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
  });
}

/** POST with retries on network errors and 5xx; any other status is returned to the caller. */
export async function requestWithRetry(method: string, url: string, opts: { headers?: Record<string, string>; body?: Uint8Array }, log: Logger, what: string, backoff: Backoff = DEFAULT_BACKOFF): Promise<HttpResponse> {
  let delay = backoff.initialMs;
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await request(method, url, opts);
      if (res.status < 500) return res;
      if (attempt >= backoff.attempts) return res;
      log.warn({ status: res.status, attempt, retryInMs: delay }, `${what}: the gateway answered ${res.status}; retrying`);
    } catch (e) {
      if (attempt >= backoff.attempts) throw e;
      log.warn({ attempt, retryInMs: delay, err: (e as Error).message }, `${what}: the gateway is unreachable; retrying`);
    }
    await sleep(delay);
    delay = Math.min(delay * 2, backoff.maxMs);
  }
}
