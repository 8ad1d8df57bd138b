// The gateway's Glaze cache (A2): complete Glazes under `<cache-dir>/glazes/<sha256>`, each written
// to a temp file while it streams from the master, hashed on the way, and renamed into place only
// when size and SHA-256 match (fsync of file and directory first). A file found in the cache is
// hashed again before this process serves it the first time (and whenever its inode, size or mtime
// change), so a file someone altered on disk is dropped, never served. Jobs (jobId → sha256, size,
// MAC) are learnt from the master's `work` answers the gateway relays, also written durably.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type Stats } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

export interface CachedJob {
  jobId: string;
  sha256: string;
  size: number;
  mac: string;
}

const SHA256 = /^[0-9a-f]{64}$/;
export const JOB_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Writes `data` to dir/name durably: temp file with a random name, fsync, rename, fsync of the directory. */
export async function writeDurably(dir: string, name: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
  await syncDir(dir);
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

export type FillResult = { ok: true } | { ok: false; reason: 'digest_mismatch' | 'size_mismatch' | 'source_failed' };

export class GlazeCache {
  private readonly glazes: string;
  private readonly jobs: string;
  /** sha256 → the stat of the file this process hashed and found right. */
  private readonly verified = new Map<string, { ino: number; size: number; mtimeMs: number }>();
  private readonly filling = new Set<string>();

  constructor(readonly dir: string) {
    this.glazes = join(dir, 'glazes');
    this.jobs = join(dir, 'jobs');
  }

  async init(): Promise<void> {
    await mkdir(this.glazes, { recursive: true, mode: 0o700 });
    await mkdir(this.jobs, { recursive: true, mode: 0o700 });
  }

  async rememberJob(job: CachedJob): Promise<void> {
    if (!JOB_ID.test(job.jobId) || !SHA256.test(job.sha256) || !Number.isSafeInteger(job.size) || job.size < 0) return;
    await writeDurably(this.jobs, `${job.jobId}.json`, `${JSON.stringify(job)}\n`);
  }

  async job(jobId: string): Promise<CachedJob | undefined> {
    if (!JOB_ID.test(jobId)) return undefined;
    try {
      const j = JSON.parse(await readFile(join(this.jobs, `${jobId}.json`), 'utf8')) as CachedJob;
      return j.jobId === jobId && SHA256.test(j.sha256) && Number.isSafeInteger(j.size) ? j : undefined;
    } catch {
      return undefined;
    }
  }

  path(sha256: string): string {
    if (!SHA256.test(sha256)) throw new Error('not a sha256');
    return join(this.glazes, sha256);
  }

  isFilling(sha256: string): boolean {
    return this.filling.has(sha256);
  }

  /**
   * The path of a complete, verified copy, or undefined. Hashes the file when this process has not
   * verified this very file yet; a copy that does not match is deleted.
   */
  async verifiedPath(sha256: string, size: number): Promise<string | undefined> {
    const p = this.path(sha256);
    let st: Stats;
    try {
      st = await stat(p);
    } catch {
      return undefined;
    }
    const known = this.verified.get(sha256);
    if (known && known.ino === st.ino && known.size === st.size && known.mtimeMs === st.mtimeMs && st.size === size) return p;
    this.verified.delete(sha256);
    if (st.size === size && (await sha256File(p)) === sha256) {
      this.verified.set(sha256, { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs });
      return p;
    }
    await rm(p, { force: true });
    return undefined;
  }

  /**
   * Streams `source` into the cache; `onChunk` sees every chunk as it passes (the metal being served
   * while the cache fills) and may apply backpressure. The copy lands only when size and digest match.
   */
  async fill(sha256: string, size: number, source: Readable, onChunk?: (c: Buffer) => Promise<void>): Promise<FillResult> {
    const final = this.path(sha256);
    const tmp = `${final}.${randomBytes(6).toString('hex')}.part`;
    this.filling.add(sha256);
    const h = createHash('sha256');
    let n = 0;
    const out = createWriteStream(tmp, { mode: 0o600 });
    const outDone = new Promise<void>((resolve, reject) => {
      out.on('finish', resolve);
      out.on('error', reject);
    });
    try {
      try {
        for await (const c of source) {
          const chunk = c as Buffer;
          h.update(chunk);
          n += chunk.length;
          if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
          if (onChunk) await onChunk(chunk);
        }
      } catch {
        out.end();
        await outDone.catch(() => undefined);
        await rm(tmp, { force: true });
        return { ok: false, reason: 'source_failed' };
      }
      out.end();
      await outDone;
      if (n !== size) {
        await rm(tmp, { force: true });
        return { ok: false, reason: 'size_mismatch' };
      }
      if (h.digest('hex') !== sha256) {
        await rm(tmp, { force: true });
        return { ok: false, reason: 'digest_mismatch' };
      }
      const fh = await open(tmp, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, final);
      await syncDir(this.glazes);
      const st = await stat(final);
      this.verified.set(sha256, { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs });
      return { ok: true };
    } finally {
      this.filling.delete(sha256);
    }
  }
}
