import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Mac, OwnerId, TipsId } from '@tips/core';
import SQLite from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../../db/database.ts';
import type { KeysetWindow } from '../../db/keyset.ts';
import { DEFAULT_LIST_VIEW, type ListViewOptions, MetalListView } from './list-view.ts';
import { type Metal, storedMetalJson } from './model.ts';
import { KyselyMetalStore } from './store.kysely.ts';

const A = 'own_0000000000000000000000000a' as OwnerId;
const B = 'own_0000000000000000000000000b' as OwnerId;
const id = (n: number) => `mtl_${n.toString(36).padStart(26, '0')}` as TipsId;
const at = (s: number) => new Date(Date.parse('2026-01-01T00:00:00Z') + s * 1000).toISOString();
const metal = (n: number, owner: OwnerId, second: number, name = `m${n}`): Metal => ({
  id: id(n),
  ownerId: owner,
  name,
  labels: { n: String(n) },
  interfaces: [{ name: 'eth0', mac: `02:00:00:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}` as Mac, type: 'ethernet', pxe: true }],
  engine: null,
  createdAt: at(second),
  updatedAt: at(second),
});

/** Every window of the owner's list: the first page and one after every metal, at a few limits. */
async function windows(store: KyselyMetalStore, owner: OwnerId): Promise<KeysetWindow[]> {
  const all = await store.listStored(owner);
  const out: KeysetWindow[] = [{ limit: 101 }, { limit: 3 }];
  for (const m of all) out.push({ limit: 3, after: { at: m.createdAt, id: m.id } }, { limit: 101, after: { at: m.createdAt, id: m.id } });
  out.push({ limit: 5, after: { at: at(-1), id: id(0) } }, { limit: 5, after: { at: at(99_999), id: id(0) } });
  return out;
}

/** The page the database gives (listStored, as the list route joins it). */
async function fromDatabase(store: KyselyMetalStore, owner: OwnerId, w: KeysetWindow) {
  const rows = await store.listStored(owner, {}, w);
  const limit = w.limit - 1;
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { items: page.length ? page.map(storedMetalJson).join(',') : null, next: rows.length > limit && last ? { at: last.createdAt, id: last.id } : null };
}

async function loaded(view: MetalListView, owner: OwnerId): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (view.page(owner, { limit: 2 }) !== undefined) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error('the view never loaded');
}

describe('T2 D6 issue 10: the metal list from memory is exactly the database’s list (SQLite, 0018_list change log)', () => {
  let dir: string;
  let file: string;
  let db: Db;
  let store: KyselyMetalStore;
  let view: MetalListView;
  const opts = (o: Partial<ListViewOptions> = {}) => ({ ...DEFAULT_LIST_VIEW, loadSlice: 4, ...o });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tips-list-view-'));
    file = join(dir, 'v.db');
    db = await openDatabase({ kind: 'sqlite', file });
    store = new KyselyMetalStore(db, undefined, false);
  });
  afterEach(async () => {
    view?.close();
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const same = async (owner: OwnerId) => {
    for (const w of await windows(store, owner)) {
      const got = view.page(owner, w);
      expect(got, JSON.stringify(w)).toBeDefined();
      const want = await fromDatabase(store, owner, w);
      expect({ items: got?.items?.toString('utf8') ?? null, next: got?.next ?? null }, JSON.stringify(w)).toEqual(want);
    }
  };

  it('answers every window as the database does, through inserts, updates, deletes, another owner’s writes, a rollback and writes from another connection', async () => {
    // Ties on createdAt order by id; more metals than a load slice.
    for (let n = 1; n <= 11; n++) await store.insert(metal(n, A, Math.floor(n / 3)));
    await store.insert(metal(100, B, 0));
    view = new MetalListView(db, opts());
    expect(view.page(A, { limit: 101 })).toBeUndefined(); // loading: the caller reads the database
    await loaded(view, A);
    await same(A);

    await store.insert(metal(12, A, 1)); // in the middle of the list
    await store.update({ ...metal(5, A, Math.floor(5 / 3), 'renamed'), updatedAt: at(500) });
    expect(await store.delete(A, id(7))).toBe(true);
    await store.insert(metal(101, B, 0)); // another owner's write: not in A's list
    await same(A);

    // A transaction that rolls back leaves no trace in the log, so none in the list.
    await expect(
      db.transaction().execute(async (tx) => {
        await tx.deleteFrom('metals').where('id', '=', id(1)).execute();
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    await same(A);
    expect(view.page(A, { limit: 101 })?.items?.toString('utf8')).toContain(id(1));

    // A write made outside this process's store (another connection to the file): the triggers log it.
    const other = new SQLite(file);
    try {
      other.prepare('delete from metals where id = ?').run(id(2));
      other.prepare('update metals set list_item = replace(list_item, ?, ?), name = ? where id = ?').run('"m3"', '"m3-other"', 'm3-other', id(3));
    } finally {
      other.close();
    }
    await same(A);
    const page = view.page(A, { limit: 101 })?.items?.toString('utf8') ?? '';
    expect(page).not.toContain(id(2));
    expect(page).toContain('"m3-other"');
  });

  it('steps aside while a transaction is open on the connection (it would see uncommitted writes)', async () => {
    for (let n = 1; n <= 3; n++) await store.insert(metal(n, A, n));
    view = new MetalListView(db, opts());
    await loaded(view, A);
    let inside: unknown = 'not called';
    await db.transaction().execute(async (tx) => {
      await tx.deleteFrom('metals').where('id', '=', id(1)).execute();
      inside = view.page(A, { limit: 101 });
    });
    expect(inside).toBeUndefined();
    expect(view.page(A, { limit: 101 })?.items?.toString('utf8')).not.toContain(id(1));
  });

  it('loads exactly while writes land between its slices', async () => {
    for (let n = 1; n <= 20; n++) await store.insert(metal(n, A, n));
    view = new MetalListView(db, opts({ loadSlice: 2 }));
    view.page(A, { limit: 2 }); // starts loading, two rows a slice
    // Writes interleaved with the slices: rows already read (the start of the list), rows not yet read.
    const slices = async (k: number) => {
      for (let i = 0; i < k; i++) await new Promise((r) => setImmediate(r));
    };
    await slices(3);
    await store.insert(metal(21, A, 0)); // before the slices' position
    await store.delete(A, id(1)); // read already
    await store.update({ ...metal(2, A, 2, 'second'), updatedAt: at(800) }); // read already
    await slices(1);
    await store.delete(A, id(10));
    await store.update({ ...metal(20, A, 20, 'last'), updatedAt: at(900) });
    await store.insert(metal(22, A, 30));
    await loaded(view, A);
    await same(A);
  });

  it('reloads when the change log was pruned past what it applied, and keeps to its memory bound', async () => {
    for (let n = 1; n <= 5; n++) await store.insert(metal(n, A, n));
    view = new MetalListView(db, opts({ keepChanges: 3 }));
    await loaded(view, A);
    for (let n = 6; n <= 10; n++) await store.insert(metal(n, A, n)); // 5 changes > keepChanges
    expect(view.page(A, { limit: 101 })).toBeUndefined();
    expect(view.stats().reloads).toBe(1);
    await loaded(view, A);
    await same(A);

    const small = new MetalListView(db, opts({ maxItems: 4 }));
    try {
      small.page(A, { limit: 101 });
      await new Promise((r) => setTimeout(r, 50));
      expect(small.page(A, { limit: 101 })).toBeUndefined(); // 10 metals > 4: read from the database
      expect(small.stats().items).toBe(0);
    } finally {
      small.close();
    }
  });

  it('the store serves its pages from the view once loaded, byte for byte the database’s', async () => {
    const served = new KyselyMetalStore(db);
    for (let n = 1; n <= 6; n++) await served.insert(metal(n, A, n));
    await served.listPageJson(A, { limit: 101 }); // starts the load
    await expect.poll(() => served.listViewStats()?.items).toBe(6);
    await served.insert(metal(7, A, 0));
    for (const w of await windows(served, A)) {
      const got = await served.listPageJson(A, w);
      const want = await fromDatabase(served, A, w);
      expect({ items: got?.items?.toString('utf8') ?? null, next: got?.next ?? null }).toEqual(want);
    }
    expect(served.listViewStats()?.items).toBe(7);
  });
});
