import { randomBytes } from 'node:crypto';
import { readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestMaster, testMaster } from '../../testing.ts';

let m: TestMaster;
beforeEach(async () => {
  m = await testMaster();
});
afterEach(async () => m.close());

const dir = (sub: 'blobs' | 'tmp') => join(m.dir, 'glazes', sub);
const ls = (sub: 'blobs' | 'tmp') => readdirSync(dir(sub)).sort();
const HOUR = 3_600_000;

function file(sub: 'blobs' | 'tmp', name: string, size: number, ageMs: number): void {
  writeFileSync(join(dir(sub), name), randomBytes(size));
  const t = new Date(Date.now() - ageMs);
  utimesSync(join(dir(sub), name), t, t);
}

describe('T12 D4 Glaze repository reconciliation', () => {
  it('removes old unreferenced blobs and old partial writes; spares referenced, young and foreign files', async () => {
    const g = await m.services.glazes.upload(m.alice.id, { name: 'kept', spaces: [] }, Readable.from([new Uint8Array(100)]));
    const t = new Date(Date.now() - 2 * HOUR);
    utimesSync(join(dir('blobs'), g.id), t, t);
    file('blobs', 'glz_orphan', 500, 2 * HOUR);
    file('blobs', 'glz_young', 600, 60_000);
    file('blobs', 'not.a-blob', 700, 2 * HOUR);
    file('tmp', 'glz_dead.aa', 300, 2 * HOUR);
    file('tmp', 'glz_live.bb', 400, 1000);

    const r = await m.services.glazes.reconcile(new Date(Date.now() - HOUR));
    expect(r.blobs).toEqual([expect.objectContaining({ key: 'glz_orphan', size: 500 })]);
    expect(r.partials).toEqual([expect.objectContaining({ key: 'glz_dead.aa', size: 300 })]);
    expect(ls('blobs')).toEqual([g.id, 'glz_young', 'not.a-blob'].sort());
    expect(ls('tmp')).toEqual(['glz_live.bb']);
    const again = await m.services.glazes.reconcile(new Date(Date.now() - HOUR));
    expect(again).toEqual({ blobs: [], partials: [] });
  });

  it('runs when the app starts and reports what it removed in /metrics', async () => {
    file('blobs', 'glz_orphan', 1234, 2 * HOUR);
    file('tmp', 'glz_dead.cc', 99, 2 * HOUR);
    await m.app.ready();
    expect(ls('blobs')).toEqual([]);
    expect(ls('tmp')).toEqual([]);
    const metrics = (await m.app.inject({ url: '/metrics' })).body;
    expect(metrics).toContain('tips_master_glaze_reconciled_bytes_total{kind="blob"} 1234');
    expect(metrics).toContain('tips_master_glaze_reconciled_files_total{kind="partial"} 1');
  });
});
