import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from './fs-blob-store.ts';
import { MeteredBlobStore } from './metered.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tips-metered-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const value = async (r: Registry, line: RegExp) => Number(line.exec(await r.metrics())?.[1] ?? Number.NaN);

describe('T2 blob store figures for Prometheus (files here; s3 in e2e/glaze-s3)', () => {
  it('counts operations by result, bytes in and bytes a reader actually took, without changing what it reads', async () => {
    const registry = new Registry();
    const store = new MeteredBlobStore(await FsBlobStore.open(dir), 'files');
    store.useMetrics(registry);
    await store.put('glz_a', Readable.from([Buffer.from('hello '), Buffer.from('world')]));
    expect(await text(await store.get('glz_a'))).toBe('hello world');
    expect(await text(await store.get('glz_a', { start: 6, end: 10 }))).toBe('world');
    await expect(store.get('glz_missing')).rejects.toMatchObject({ code: 'blob_not_found' });
    expect(await value(registry, /tips_master_blob_bytes_total\{store="files",direction="in"\} (\d+)/)).toBe(11);
    expect(await value(registry, /tips_master_blob_bytes_total\{store="files",direction="out"\} (\d+)/)).toBe(16);
    expect(await value(registry, /tips_master_blob_operations_total\{store="files",op="get",result="ok"\} (\d+)/)).toBe(2);
    expect(await value(registry, /tips_master_blob_operations_total\{store="files",op="get",result="not_found"\} (\d+)/)).toBe(1);
    expect(await value(registry, /tips_master_blob_operations_total\{store="files",op="put",result="ok"\} (\d+)/)).toBe(1);
    expect(store.downloadUrl).toBeUndefined();
  });
});
