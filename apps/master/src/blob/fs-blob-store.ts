import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { type BlobInfo, BlobError, type BlobStore, type ByteRange, type StoredBlob } from './blob-store.ts';

const KEY_RE = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * Blobs as files: `<root>/blobs/<key>`. Writes go to `<root>/tmp/<random>`, are fsynced, then
 * renamed into place and the directory fsynced, so a kill at any moment leaves either the whole
 * blob or nothing under its key. Temp files a killed process left are not removed on open — the
 * directory may be shared by replicas, one of which may be writing — but by the Glaze repository's
 * reconciliation (`removeStalePartials`), once they are older than any live upload can be.
 */
export class FsBlobStore implements BlobStore {
  readonly kind = 'files' as const;
  private constructor(private readonly root: string) {}

  static async open(root: string): Promise<FsBlobStore> {
    await mkdir(join(root, 'blobs'), { recursive: true });
    await mkdir(join(root, 'tmp'), { recursive: true });
    return new FsBlobStore(root);
  }

  private path(key: string): string {
    if (!KEY_RE.test(key)) throw new BlobError('blob_invalid_key', `invalid blob key ${JSON.stringify(key)}`);
    return join(this.root, 'blobs', key);
  }

  async put(key: string, source: AsyncIterable<Uint8Array> | Readable, opts: { onBytes?: (total: number) => void } = {}): Promise<BlobInfo> {
    const final = this.path(key);
    const tmp = join(this.root, 'tmp', `${key}.${randomBytes(6).toString('hex')}`);
    const hash = createHash('sha256');
    const fh = await open(tmp, 'wx', 0o600);
    let size = 0;
    try {
      for await (const chunk of source as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        size += chunk.length;
        let off = 0;
        while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
        opts.onBytes?.(size);
      }
      await fh.sync();
      // The blob's mtime says when it was placed (rename keeps it), not when its last byte came:
      // reconciliation spares unreferenced blobs younger than its grace period (a row may be coming).
      const placed = new Date();
      await fh.utimes(placed, placed);
      await fh.close();
      await rename(tmp, final);
      await this.syncDir(join(this.root, 'blobs'));
      return { size, sha256: hash.digest('hex') };
    } catch (err) {
      await fh.close().catch(() => {});
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const p = this.path(key);
    if (!(await this.stat(key))) throw new BlobError('blob_not_found', `no blob ${key}`);
    return createReadStream(p, range ? { start: range.start, end: range.end } : {});
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    try {
      const s = await stat(this.path(key));
      return { size: s.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
    await this.syncDir(join(this.root, 'blobs'));
  }

  async list(): Promise<StoredBlob[]> {
    return this.listDir('blobs');
  }

  async removeStalePartials(olderThan: Date): Promise<StoredBlob[]> {
    const removed: StoredBlob[] = [];
    for (const f of await this.listDir('tmp')) {
      if (f.modifiedAt >= olderThan) continue;
      try {
        await unlink(join(this.root, 'tmp', f.key));
        removed.push(f);
      } catch (err) {
        // Another replica reconciling the same directory got there first.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return removed;
  }

  private async listDir(dir: 'blobs' | 'tmp'): Promise<StoredBlob[]> {
    const out: StoredBlob[] = [];
    for (const name of await readdir(join(this.root, dir))) {
      // Only names this store writes: anything else in blobs/ is not ours to list or remove.
      if (dir === 'blobs' && !KEY_RE.test(name)) continue;
      try {
        const s = await stat(join(this.root, dir, name));
        if (s.isFile()) out.push({ key: name, size: s.size, modifiedAt: s.mtime });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return out;
  }

  private async syncDir(dir: string): Promise<void> {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
}
