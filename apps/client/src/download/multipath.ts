/**
 * T17 multi-homing: one Glaze payload fetched as disjoint byte ranges over several links at once —
 * HTTPS Range requests on sockets bound to each link's local address — and assembled in one file.
 *
 * - Work stealing: each link starts with an equal share (one request: no gap between chunks, one TCP
 *   window to grow); a link with nothing left to take splits the largest range still in flight on
 *   another link and fetches its second half, so a slow link never holds the end of the download.
 * - A link that fails (no answer, no byte within the idle timeout, a refused connection) gives what
 *   it has not fetched back to the others; after `maxLinkFailures` broken ranges in a row it is
 *   dropped and the download goes on over the rest. Only when every link is down does the
 *   download fail (the agent retries it, resuming).
 * - Power-safe resume: bytes land at their offsets in `<file>.mp`; a range counts as done only after
 *   its bytes were fdatasync'ed, and the list of done ranges is written durably beside it
 *   (`<file>.mp.json`, temp + fsync + rename), at the end of a range and every 4 MiB within one. A
 *   kill -9 loses at most the last few MiB of each link. When
 *   every byte is there the file is fsync'ed and renamed to `file`; the caller checks the SUIT digest.
 */
import { type FileHandle, open, rename } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import { ClientError } from '../errors.ts';
import { errorOf, type TlsMaterial } from '../http/https.ts';
import { readJsonIfExists, removeDurably, syncDir, writeJsonDurably } from '../state/files.ts';
import type { Link } from './links.ts';

export interface MultipathOptions {
  /** The blob's https:// URL. */
  url: string;
  /** Where the assembled payload ends (renamed into place when complete). */
  file: string;
  size: number;
  /** The payload's SHA-256: a resume record for other bytes is thrown away. */
  sha256: string;
  links: Link[];
  tls: TlsMaterial;
  /** The `Authorization` header value (PoP token), fetched per request. */
  authorization: () => Promise<string>;
  /** Called when the master asks for a fresh token (`reauth_required`, `token_expired`). */
  dropToken: () => void;
  log: Logger;
  /**
   * Bytes a link takes at a time (default: an equal share per link — one request each; the links
   * that finish first then steal from the others, so unequal links balance themselves).
   */
  chunkBytes?: number;
  /** Within a range, written bytes are recorded as done every this many bytes (default 4 MiB). */
  checkpointBytes?: number;
  /** A range is split by a thief only when at least twice this much of it is left (default 1 MiB). */
  minStealBytes?: number;
  /** No byte for this long on a request: the link is treated as failed for that range (default 10 s). */
  idleTimeoutMs?: number;
  maxLinkFailures?: number;
  onProgress?: (done: number, perLink: Record<string, number>) => void;
}

export interface MultipathResult {
  bytes: number;
  /** Bytes each link carried in this run, by local address. */
  perLink: Record<string, number>;
  /** Bytes already on disk from an earlier run. */
  resumed: number;
  deadLinks: string[];
  /** Per link: requests made, ranges stolen from another link, ms from the start to its last byte. */
  linkStats: Record<string, { requests: number; steals: number; lastByteMs: number }>;
}

interface ResumeRecord {
  size: number;
  sha256: string;
  /** Done byte ranges [start, end) — sorted, merged. */
  done: [number, number][];
}

/** A range being fetched: [pos, end) is still to come; a thief may lower `end`. */
interface InFlight {
  start: number;
  pos: number;
  end: number;
  link: string;
}

type Range = [number, number];

/** Merges [start, end) into sorted, disjoint `ranges`. */
export function addRange(ranges: Range[], r: Range): Range[] {
  if (r[1] <= r[0]) return ranges;
  const all = [...ranges, r].sort((a, b) => a[0] - b[0]);
  const out: Range[] = [];
  for (const x of all) {
    const last = out[out.length - 1];
    if (last && x[0] <= last[1]) last[1] = Math.max(last[1], x[1]);
    else out.push([x[0], x[1]]);
  }
  return out;
}

/** The parts of [0, size) not in `done`, cut into chunks of at most `chunk` bytes. */
export function missingChunks(done: Range[], size: number, chunk: number): Range[] {
  const out: Range[] = [];
  let at = 0;
  const gaps: Range[] = [];
  for (const [s, e] of done) {
    if (s > at) gaps.push([at, s]);
    at = Math.max(at, e);
  }
  if (at < size) gaps.push([at, size]);
  for (const [s, e] of gaps) for (let p = s; p < e; p += chunk) out.push([p, Math.min(e, p + chunk)]);
  return out;
}

const sum = (ranges: Range[]) => ranges.reduce((n, [s, e]) => n + (e - s), 0);

class LinkDown extends Error {}

function isLocalFileError(e: unknown): boolean {
  const sys = (e as NodeJS.ErrnoException | undefined)?.syscall;
  return sys === 'write' || sys === 'fdatasync' || sys === 'fsync' || sys === 'open' || sys === 'ftruncate';
}

export async function downloadMultipath(o: MultipathOptions): Promise<MultipathResult> {
  const dataFile = `${o.file}.mp`;
  const recordFile = `${o.file}.mp.json`;
  const linkCount = Math.max(o.links.length, 1);
  const chunk = o.chunkBytes ?? Math.max(1 << 20, Math.ceil(o.size / linkCount));
  const checkpoint = o.checkpointBytes ?? 4 << 20;
  const minSteal = o.minStealBytes ?? 1 << 20;
  const idleMs = o.idleTimeoutMs ?? 10_000;
  const maxFailures = o.maxLinkFailures ?? 3;

  let record = readJsonIfExists<ResumeRecord>(recordFile);
  if (record && (record.size !== o.size || record.sha256 !== o.sha256)) record = undefined;
  let fh: FileHandle;
  try {
    fh = await open(dataFile, record ? 'r+' : 'w', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    record = undefined;
    fh = await open(dataFile, 'w', 0o600);
  }
  if (!record) {
    record = { size: o.size, sha256: o.sha256, done: [] };
    writeJsonDurably(recordFile, record, 0o600);
  }
  await fh.truncate(o.size);
  const resumed = sum(record.done);
  if (resumed > 0) o.log.info({ event: 'download_resume', file: basename(o.file), bytes: resumed, size: o.size }, `resuming: ${resumed} of ${o.size} bytes already here`);

  const pending: Range[] = missingChunks(record.done, o.size, chunk);
  const inflight = new Set<InFlight>();
  const perLink: Record<string, number> = Object.fromEntries(o.links.map((l) => [l.localAddress, 0]));
  const dead: string[] = [];
  const t0 = Date.now();
  const stats: MultipathResult['linkStats'] = Object.fromEntries(o.links.map((l) => [l.localAddress, { requests: 0, steals: 0, lastByteMs: 0 }]));
  let done = resumed;
  let lastTenth = Math.floor((done * 10) / Math.max(o.size, 1));
  let fatal: Error | undefined;
  // Wakes idle workers when something changes (a range given back, a range finished, a fatal error).
  let wake: () => void = () => {};
  let changed = new Promise<void>((r) => {
    wake = r;
  });
  const notify = () => {
    const w = wake;
    changed = new Promise<void>((r) => {
      wake = r;
    });
    w();
  };

  // One durable record update at a time, in order.
  let persisting = Promise.resolve();
  const markDone = (r: Range): Promise<void> => {
    persisting = persisting.then(async () => {
      await fh.datasync();
      record.done = addRange(record.done, r);
      writeJsonDurably(recordFile, record, 0o600);
    });
    return persisting;
  };

  const take = (link: string): InFlight | undefined => {
    const next = pending.shift();
    if (next) return { start: next[0], pos: next[0], end: next[1], link };
    // Steal: split the range with the most left on another link.
    let victim: InFlight | undefined;
    for (const f of inflight) if (f.link !== link && (!victim || f.end - f.pos > victim.end - victim.pos)) victim = f;
    if (!victim || victim.end - victim.pos < 2 * minSteal) return undefined;
    const mid = victim.pos + Math.floor((victim.end - victim.pos) / 2);
    const stolen: InFlight = { start: mid, pos: mid, end: victim.end, link };
    victim.end = mid;
    const st = stats[link];
    if (st) st.steals++;
    o.log.debug({ event: 'download_steal', from: victim.link, by: link, start: mid, end: stolen.end }, 'range split for an idle link');
    return stolen;
  };

  const agents = new Map(o.links.map((l) => [l.localAddress, new Agent({ keepAlive: true, maxSockets: 1, localAddress: l.localAddress })]));

  /** Fetches f.pos..f.end over `link`, writing as it comes; resolves when f.pos reaches f.end (which may shrink). */
  const fetchRange = async (link: Link, f: InFlight): Promise<void> => {
    const st = stats[link.localAddress]!;
    st.requests++;
    // What this request asks for; a thief may lower f.end before or while the answer comes.
    const asked = f.end;
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(o.url, {
        method: 'GET',
        agent: agents.get(link.localAddress),
        localAddress: link.localAddress,
        ca: o.tls.ca,
        cert: o.tls.cert,
        key: o.tls.key,
        headers: { range: `bytes=${f.pos}-${f.end - 1}` },
      });
      o.authorization().then(
        (a) => {
          req.setHeader('authorization', a);
          req.end();
        },
        (e) => {
          req.destroy();
          reject(e);
        },
      );
      req.setTimeout(idleMs, () => req.destroy(new LinkDown(`no answer from ${link.localAddress} within ${idleMs} ms`)));
      req.on('response', resolve);
      req.on('error', (e) => reject(e instanceof LinkDown || e instanceof ClientError ? e : new LinkDown(`${link.iface} (${link.localAddress}): ${e.message}`)));
    });
    if (res.statusCode !== 206) {
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks);
      const code = errorOf({ status: res.statusCode ?? 0, headers: res.headers, body })?.code ?? `http_${res.statusCode}`;
      if (res.statusCode === 401 && (code === 'reauth_required' || code === 'token_expired')) {
        o.dropToken();
        return;
      }
      const what = `GET range ${f.pos}-${f.end - 1} → ${res.statusCode} ${code}`;
      if (res.statusCode === 401) throw new ClientError('unauthenticated', what, code);
      if (res.statusCode === 403) throw new ClientError('forbidden', what, code);
      throw new ClientError('download_failed', what, code);
    }
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(res.headers['content-range'] ?? ''));
    if (!m || Number(m[1]) !== f.pos || Number(m[3]) !== o.size) {
      res.destroy();
      throw new ClientError('download_failed', `expected Content-Range from ${f.pos} of ${o.size}, came ${res.headers['content-range'] ?? 'none'}`);
    }
    // The socket's small chunks are coalesced into 1 MiB positional writes that run behind the reading
    // (up to 8 MiB queued), so a slow write or a concurrent fdatasync does not stall the link.
    let buf: Buffer[] = [];
    let bufBytes = 0;
    let bufAt = f.pos;
    let writes = Promise.resolve();
    let queued = 0;
    const flush = () => {
      if (bufBytes === 0) return;
      const data = buf.length === 1 ? buf[0]! : Buffer.concat(buf, bufBytes);
      const at = bufAt;
      buf = [];
      bufAt += bufBytes;
      bufBytes = 0;
      queued += data.length;
      writes = writes.then(async () => {
        await fh.write(data, 0, data.length, at);
        queued -= data.length;
      });
    };
    try {
      for await (const c of res) {
        let piece = c as Buffer;
        const room = f.end - f.pos;
        if (piece.length > room) piece = piece.subarray(0, room);
        buf.push(piece);
        bufBytes += piece.length;
        f.pos += piece.length;
        perLink[link.localAddress] = (perLink[link.localAddress] ?? 0) + piece.length;
        done += piece.length;
        const tenth = Math.floor((done * 10) / Math.max(o.size, 1));
        if (tenth !== lastTenth) {
          lastTenth = tenth;
          o.onProgress?.(done, { ...perLink });
        }
        if (bufBytes >= 1 << 20) {
          flush();
          // Checkpoint: once written and synced these bytes count as done, so a kill loses little of a long range.
          if (f.pos - f.start >= checkpoint) {
            const r: Range = [f.start, f.pos];
            f.start = f.pos;
            writes = writes.then(() => {
              markDone(r).catch((e: Error) => {
                fatal ??= e;
              });
            });
          }
          if (queued > 8 << 20) await writes;
        }
        // A thief took the rest of what was asked: this answer is no use any more (its connection
        // goes). A range that simply completed lets the answer end, so the connection is kept.
        if (f.pos >= f.end && f.end < asked) break;
      }
    } finally {
      st.lastByteMs = Date.now() - t0;
      flush();
      await writes;
    }
    if (f.pos < f.end) throw new LinkDown(`${link.iface} (${link.localAddress}): the answer broke off at ${f.pos} of ${f.end}`);
  };

  const worker = async (link: Link): Promise<void> => {
    let failures = 0;
    while (!fatal) {
      const f = take(link.localAddress);
      if (!f) {
        if (inflight.size === 0 && pending.length === 0) return;
        await changed;
        continue;
      }
      inflight.add(f);
      const before = f.pos;
      let broke = false;
      try {
        await fetchRange(link, f);
      } catch (e) {
        broke = true;
        // The master's refusals and local disk errors end the download; anything else is the link's.
        if (e instanceof ClientError || isLocalFileError(e)) fatal ??= e as Error;
        // A trickle that keeps breaking off counts as much as silence: failures reset only on a range done.
        failures++;
        if (!fatal) o.log.warn({ event: 'download_link_error', iface: link.iface, localAddress: link.localAddress, failures, message: (e as Error).message }, `${link.iface}: ${(e as Error).message}`);
      } finally {
        inflight.delete(f);
        // Recorded in the background (datasync, then the record): the link goes on meanwhile.
        if (f.pos > f.start) markDone([f.start, f.pos]).catch((e: Error) => {
          fatal ??= e;
        });
        if (f.pos < f.end) pending.unshift([f.pos, f.end]);
        notify();
      }
      if (f.pos >= f.end && f.pos > before && !broke) failures = 0;
      if (failures >= maxFailures) {
        dead.push(link.localAddress);
        o.log.warn({ event: 'download_link_down', iface: link.iface, localAddress: link.localAddress, carried: perLink[link.localAddress] }, `${link.iface} dropped after ${failures} failures; the other links carry on`);
        return;
      }
      if (failures > 0) await new Promise((r) => setTimeout(r, Math.min(200 * 2 ** failures, 2000)));
    }
  };

  try {
    await Promise.all(
      o.links.map(async (l) => {
        await worker(l);
        notify();
      }),
    );
    await persisting;
    if (fatal) throw fatal;
    const missing = o.size - sum(record.done);
    if (missing > 0) throw new ClientError('download_failed', `every link is down (${dead.join(', ')}); ${missing} of ${o.size} bytes missing (kept for the next attempt)`);
    await fh.sync();
  } finally {
    for (const a of agents.values()) a.destroy();
    await fh.close();
  }
  await rename(dataFile, o.file);
  syncDir(dirname(o.file));
  removeDurably(recordFile);
  return { bytes: o.size, perLink, resumed, deadLinks: dead, linkStats: stats };
}
