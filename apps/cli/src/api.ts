import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import type { IncomingMessage, RequestOptions } from 'node:http';
import type { CliConfig } from './config.ts';
import { CliError, EXIT, exitCodeForStatus } from './errors.ts';

// node:http, node:https (TLS), node:stream and node:fs/promises are loaded when a transfer starts,
// not by every `tips` run: together they were ~20 ms of each start (bench/cli-startup.ts). JSON calls
// use fetch, which Node loads lazily itself.
async function transferModules() {
  const [http, https, stream, streamPromises, fsPromises] = await Promise.all([import('node:http'), import('node:https'), import('node:stream'), import('node:stream/promises'), import('node:fs/promises')]);
  const request = (url: URL, options: RequestOptions) => (url.protocol === 'https:' ? https.request : http.request)(url, options);
  return { request, Transform: stream.Transform, pipeline: streamPromises.pipeline, rename: fsPromises.rename, rm: fsPromises.rm, stat: fsPromises.stat };
}

export interface Progress {
  start(total: number): void;
  update(done: number): void;
  stop(): void;
}

/** Items asked per request when following a list (the master's maximum is 1000). */
const PAGE_SIZE = 500;

interface ApiErrorBody {
  error?: { code?: string; message?: string; field?: string };
}

/** A small client for the owner API (`/api/v1`) that turns every failure into a `CliError`. */
export class Api {
  constructor(private readonly config: CliConfig) {}

  private url(path: string): URL {
    try {
      return new URL(path, this.config.url.endsWith('/') ? this.config.url : `${this.config.url}/`);
    } catch {
      throw new CliError('bad_url', `the master URL "${this.config.url}" is not a URL`, EXIT.usage);
    }
  }

  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.url(path), {
        method,
        headers: { authorization: `Bearer ${this.config.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw this.unreachable(err);
    }
    const text = await res.text();
    if (!res.ok) throw this.apiError(res.status, text);
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  /**
   * Follows a list's pages (`?limit=&cursor=`, answered `{ items, nextCursor }`) from the first to
   * the last, or until `max` items; yields each page as it arrives, so output can stream. `from`:
   * a cursor another answer gave (a detail's first page), to continue after it.
   */
  async *pages<T>(path: string, query: URLSearchParams = new URLSearchParams(), max = Number.POSITIVE_INFINITY, from: string | null = null): AsyncGenerator<T[]> {
    let cursor: string | null = from;
    let left = max;
    while (left > 0) {
      const q = new URLSearchParams(query);
      q.set('limit', String(Math.min(PAGE_SIZE, left)));
      if (cursor !== null) q.set('cursor', cursor);
      const page: { items: T[]; nextCursor?: string | null } = await this.call('GET', `${path}?${q}`);
      const items = page.items.slice(0, left);
      left -= items.length;
      yield items;
      cursor = page.nextCursor ?? null;
      if (cursor === null) return;
    }
  }

  /** Streams a file to the master (never reading it whole), reporting progress. */
  async upload<T>(path: string, file: string, progress?: Progress, extraHeaders: Record<string, string> = {}): Promise<{ body: T; sha256: string }> {
    const { request, Transform, pipeline, stat } = await transferModules();
    const { size } = await stat(file);
    const url = this.url(path);
    progress?.start(size);
    let sent = 0;
    const hash = createHash('sha256');
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        sent += chunk.length;
        hash.update(chunk);
        progress?.update(sent);
        cb(null, chunk);
      },
    });
    try {
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = request(url, {
          method: 'POST',
          headers: { ...extraHeaders, authorization: `Bearer ${this.config.token}`, 'content-type': 'application/octet-stream', 'content-length': size },
        });
        req.on('response', resolve);
        req.on('error', reject);
        pipeline(createReadStream(file), counter, req).catch(reject);
      });
      const text = await readAll(res);
      if ((res.statusCode ?? 500) >= 400) throw this.apiError(res.statusCode ?? 500, text);
      return { body: JSON.parse(text) as T, sha256: hash.digest('hex') };
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw this.unreachable(err);
    } finally {
      progress?.stop();
    }
  }

  /** Downloads to `dest` via a temp file and rename, resuming nothing half-written. */
  async download(path: string, dest: string, progress?: Progress): Promise<{ bytes: number; etag?: string }> {
    const { request, Transform, pipeline, rename, rm } = await transferModules();
    const url = this.url(path);
    const get = (u: URL, headers: Record<string, string>) =>
      new Promise<IncomingMessage>((resolve, reject) => {
        const req = request(u, { headers });
        req.on('response', resolve);
        req.on('error', (err) => reject(this.unreachable(err)));
        req.end();
      });
    let res = await get(url, { authorization: `Bearer ${this.config.token}` });
    // A master with --s3-presign redirects to a pre-signed object-store URL: followed once, and
    // without the API token, which is for the master only (the URL carries its own authorisation).
    if ((res.statusCode === 302 || res.statusCode === 307) && res.headers.location) {
      res.resume();
      res = await get(new URL(res.headers.location, url), {});
    }
    if ((res.statusCode ?? 500) >= 400) throw this.apiError(res.statusCode ?? 500, await readAll(res));
    const total = Number(res.headers['content-length'] ?? 0);
    progress?.start(total);
    let got = 0;
    const tmp = `${dest}.part`;
    try {
      await pipeline(
        res,
        new Transform({
          transform(chunk: Buffer, _e, cb) {
            got += chunk.length;
            progress?.update(got);
            cb(null, chunk);
          },
        }),
        createWriteStream(tmp, { mode: 0o644 }),
      );
      if (total && got !== total) throw new CliError('download_truncated', `received ${got} of ${total} bytes`, EXIT.failure);
      await rename(tmp, dest);
      return { bytes: got, etag: res.headers.etag };
    } catch (err) {
      await rm(tmp, { force: true });
      throw err instanceof CliError ? err : this.unreachable(err);
    } finally {
      progress?.stop();
    }
  }

  private unreachable(err: unknown): CliError {
    const cause = (err as { cause?: { code?: string } })?.cause?.code ?? (err as { code?: string })?.code ?? (err as Error)?.message;
    return new CliError('unreachable', `cannot reach the master at ${this.config.url} (${cause})`, EXIT.unreachable);
  }

  private apiError(status: number, text: string): CliError {
    let body: ApiErrorBody = {};
    try {
      body = JSON.parse(text) as ApiErrorBody;
    } catch {
      // A proxy or a non-TIPS server answered: report its status only.
    }
    return new CliError(body.error?.code ?? `http_${status}`, body.error?.message ?? `the master answered HTTP ${status}`, exitCodeForStatus(status), body.error?.field);
  }
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
