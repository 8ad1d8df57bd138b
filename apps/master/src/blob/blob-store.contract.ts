// The BlobStore contract: one suite every adapter passes (blob-store.contract.test.ts runs it on the
// filesystem and on an S3 server). What a Glaze upload relies on: the SHA-256 is computed on the
// way in, a blob is visible only once whole, a failed put leaves nothing, ranges are exact.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { expect, it } from 'vitest';
import { BlobError, type BlobStore } from './blob-store.ts';

export interface BlobHarness {
  store: BlobStore;
  /** Bytes that make a put span several writes of the adapter (S3: more than one multipart part). */
  largeBytes: number;
  /** Leaves what a process killed mid-put leaves (a temp file; a pending multipart upload), under `key`. */
  leavePartial(key: string): Promise<void>;
  /** How many partial writes the backing store holds, seen from outside the adapter. */
  partials(): Promise<number>;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function bytes(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

/** Yields `data` in 64 KiB chunks; waits on `gate` after `pauseAfter` bytes; throws after `failAfter` bytes. */
async function* feed(data: Buffer, opts: { pauseAfter?: number; gate?: Promise<void>; failAfter?: number } = {}): AsyncIterable<Uint8Array> {
  for (let off = 0; off < data.length; off += 65_536) {
    if (opts.failAfter !== undefined && off >= opts.failAfter) throw new Error('source failed mid-way');
    if (opts.pauseAfter !== undefined && off >= opts.pauseAfter && opts.gate) {
      await opts.gate;
      opts.gate = undefined;
    }
    yield data.subarray(off, Math.min(off + 65_536, data.length));
  }
}

const uniq = (p: string) => `${p}_${randomBytes(6).toString('hex')}`;

export function blobStoreContract(harness: () => BlobHarness): void {
  it('stores what it is given and reports its size and SHA-256, computed on the way in (small, empty and multi-part blobs)', async () => {
    const { store, largeBytes } = harness();
    for (const data of [randomBytes(1000), Buffer.alloc(0), randomBytes(largeBytes)]) {
      const key = uniq('glz_put');
      let seen = 0;
      const info = await store.put(key, feed(data), { onBytes: (n) => (seen = n) });
      expect(info).toEqual({ size: data.length, sha256: sha(data) });
      expect(seen).toBe(data.length);
      expect(await store.stat(key)).toEqual({ size: data.length });
      expect(sha(await bytes(await store.get(key)))).toBe(sha(data));
    }
  });

  it('reads exact byte ranges, first, inner and last byte included', async () => {
    const { store, largeBytes } = harness();
    const data = randomBytes(largeBytes);
    const key = uniq('glz_range');
    await store.put(key, Readable.from([data]));
    for (const [start, end] of [
      [0, 0],
      [1, 65_537],
      [largeBytes - 10, largeBytes - 1],
      [0, largeBytes - 1],
    ] as const) {
      expect((await bytes(await store.get(key, { start, end }))).equals(data.subarray(start, end + 1))).toBe(true);
    }
  });

  it('shows a blob to readers only once it is whole: not while its put is under way', async () => {
    const { store, largeBytes } = harness();
    const data = randomBytes(largeBytes);
    const key = uniq('glz_atomic');
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let fed = 0;
    const put = store.put(key, feed(data, { pauseAfter: largeBytes - 65_536, gate }), { onBytes: (n) => (fed = n) });
    await expect.poll(() => fed, { timeout: 30_000 }).toBeGreaterThanOrEqual(largeBytes - 65_536);
    expect(await store.stat(key)).toBeUndefined();
    expect((await store.list()).map((b) => b.key)).not.toContain(key);
    await expect(store.get(key)).rejects.toMatchObject({ code: 'blob_not_found' });
    release();
    await put;
    expect(await store.stat(key)).toEqual({ size: largeBytes });
    expect((await store.list()).find((b) => b.key === key)?.size).toBe(largeBytes);
  });

  it('leaves nothing behind when the source fails mid-way: no blob, no partial write', async () => {
    const { store, largeBytes, partials } = harness();
    const before = await partials();
    for (const failAfter of [65_536, largeBytes - 65_536]) {
      const key = uniq('glz_fail');
      await expect(store.put(key, feed(randomBytes(largeBytes), { failAfter }))).rejects.toThrow('source failed mid-way');
      expect(await store.stat(key)).toBeUndefined();
      expect((await store.list()).map((b) => b.key)).not.toContain(key);
    }
    expect(await partials()).toBe(before);
  });

  it('lists exactly the complete blobs, and delete removes one (twice is fine)', async () => {
    const { store } = harness();
    const a = uniq('glz_list');
    const b = uniq('glz_list');
    await store.put(a, feed(randomBytes(10)));
    await store.put(b, feed(randomBytes(20)));
    const listed = await store.list();
    expect(listed.filter((x) => x.key === a || x.key === b).map((x) => [x.key, x.size])).toEqual(
      expect.arrayContaining([
        [a, 10],
        [b, 20],
      ]),
    );
    for (const x of listed) expect(x.modifiedAt.getTime()).toBeGreaterThan(Date.now() - 3_600_000);
    await store.delete(a);
    await store.delete(a);
    expect(await store.stat(a)).toBeUndefined();
    expect((await store.list()).map((x) => x.key)).toEqual(expect.arrayContaining([b]));
    expect((await store.list()).map((x) => x.key)).not.toContain(a);
  });

  it('refuses keys that are not plain names and answers blob_not_found for a missing blob', async () => {
    const { store } = harness();
    for (const key of ['../x', 'a/b', '', 'x'.repeat(129), 'a b']) {
      await expect(store.put(key, feed(Buffer.from('x')))).rejects.toMatchObject({ code: 'blob_invalid_key' });
      await expect(store.stat(key)).rejects.toBeInstanceOf(BlobError);
    }
    expect(await store.stat('glz_missing')).toBeUndefined();
    await expect(store.get('glz_missing')).rejects.toMatchObject({ code: 'blob_not_found' });
  });

  it("removes partial writes older than the bound and spares younger ones (another replica's live upload)", async () => {
    const { store, leavePartial, partials } = harness();
    const start = await partials();
    const key = uniq('glz_dead');
    const before = new Date(Date.now() - 60_000);
    await leavePartial(key);
    expect(await partials()).toBe(start + 1);
    expect(await store.removeStalePartials(before)).toEqual([]);
    expect(await partials()).toBe(start + 1);
    const removed = await store.removeStalePartials(new Date(Date.now() + 60_000));
    expect(removed.map((r) => r.key.startsWith(key))).toEqual(removed.map(() => true));
    expect(removed).toHaveLength(start + 1);
    expect(await partials()).toBe(0);
    expect(await store.stat(key)).toBeUndefined();
  });
}
