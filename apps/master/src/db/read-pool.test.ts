import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Mac, OwnerId, TipsId } from '@tips/core';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Metal } from '../domains/metals/model.ts';
import { KyselyMetalStore } from '../domains/metals/store.kysely.ts';
import { joinedPageBody } from '../http/pagination.ts';
import { type Db, openDatabase, readNow } from './database.ts';
import type { KeysetWindow } from './keyset.ts';
import { openReadPool, type ReadPool } from './read-pool.ts';

const owner = 'own_0000000000000000000000000w' as OwnerId;
const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
const metal = (n: number, createdAt: string): Metal => ({
  id: `mtl_${String(n).padStart(26, '0')}` as TipsId,
  ownerId: owner,
  name: `w${n}`,
  labels: { note: `"${n}" \\ ü </script>` },
  interfaces: [{ name: 'eth0', mac: `02:00:00:00:77:${n.toString(16).padStart(2, '0')}` as Mac, type: 'ethernet', pxe: true }],
  engine: null,
  createdAt,
  updatedAt: createdAt,
});

describe('D6 T2 the metal list page read on worker threads (--read-threads): same bytes, fresh after every write, read-only', () => {
  let dir: string;
  let db: Db;
  let pool: ReadPool;
  let main: KyselyMetalStore;
  let pooled: KyselyMetalStore;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tips-read-pool-'));
    const file = join(dir, 'tips.db');
    db = await openDatabase({ kind: 'sqlite', file });
    pool = await openReadPool(file, 2);
    main = new KyselyMetalStore(db);
    pooled = new KyselyMetalStore(db, pool);
  });
  afterAll(async () => {
    await pool.close();
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const body = async (store: KyselyMetalStore, w: KeysetWindow) => {
    const page = await store.listPageJson(owner, w);
    expect(page).toBeDefined();
    return joinedPageBody('metals', page!).toString('utf8');
  };

  it('answers every window byte for byte as the main connection does, many reads in flight at once', async () => {
    for (let n = 0; n < 9; n++) await main.insert(metal(n, at(Math.floor(n / 3))));
    const all = await main.listStored(owner);
    const windows: KeysetWindow[] = [{ limit: 101 }, { limit: 4 }, { limit: 10 }, { limit: 9 }];
    for (const m of all) windows.push({ limit: 3, after: { at: m.createdAt, id: m.id } }, { limit: 2, after: { at: m.createdAt, id: m.id } });
    const expected = await Promise.all(windows.map((w) => body(main, w)));
    // All at once: batched per turn of the event loop, spread over both workers, answered in order.
    const got = await Promise.all(windows.map((w) => body(pooled, w)));
    expect(got).toEqual(expected);
    expect(JSON.parse(got[0]!).items).toHaveLength(9);
    expect(pool.usable).toBe(true);
  });

  it('sees each acknowledged write at once (WAL: a read begins after the commit), deletes included', async () => {
    const before = JSON.parse(await body(pooled, { limit: 101 })).items as { id: string }[];
    const added = metal(40, at(50));
    await main.insert(added);
    const after = JSON.parse(await body(pooled, { limit: 101 })).items as { id: string; name: string }[];
    expect(after.map((m) => m.id)).toEqual([...before.map((m) => m.id), added.id]);
    await main.update({ ...added, name: 'renamed', updatedAt: at(51) });
    expect((JSON.parse(await body(pooled, { limit: 101 })).items as { id: string; name: string }[]).at(-1)?.name).toBe('renamed');
    await main.delete(owner, added.id);
    expect(await body(pooled, { limit: 101 })).toBe(await body(main, { limit: 101 }));
    expect(JSON.parse(await body(pooled, { limit: 101 })).items).toHaveLength(before.length);
  });

  it('refuses any statement that writes, and the data stays as it was', async () => {
    const count = async () => (await sql<{ n: number }>`select count(*) as n from metals`.execute(db)).rows[0]!.n;
    const n = await count();
    await expect(pool.get('delete from metals', [])).rejects.toThrow(/rows/);
    await expect(pool.get('delete from metals returning id', [])).rejects.toThrow(/readonly|read-only|query_only|attempt to write/i);
    expect(await count()).toBe(n);
    expect(pool.usable).toBe(true);
  });

  it('once closed, refuses its reads, and the store reads on the main connection', async () => {
    const other = await openReadPool(join(dir, 'tips.db'), 1);
    const store = new KyselyMetalStore(db, other);
    const expected = await body(main, { limit: 5 });
    expect(await body(store, { limit: 5 })).toBe(expected);
    await other.close();
    expect(other.usable).toBe(false);
    await expect(other.get('select 1 as one', [])).rejects.toThrow(/closed/);
    expect(await body(store, { limit: 5 })).toBe(expected);
  });

  it('refuses a file that does not exist instead of creating one', async () => {
    await expect(openReadPool(join(dir, 'missing.db'), 1)).rejects.toThrow();
    await expect(openReadPool(join(dir, 'tips.db'), 0)).rejects.toThrow(/from 1 to 16/);
  });
});

describe('D6 readNow: a hot read on the main SQLite connection without Kysely’s executor sees what Kysely would', () => {
  let dir: string;
  let db: Db;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tips-read-now-'));
    db = await openDatabase({ kind: 'sqlite', file: join(dir, 'tips.db') });
  });
  afterAll(async () => {
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const count = 'select count(*) as n from metals where owner_id = ?';
  const row = (n: number) => ({ id: metal(n, at(n)).id, owner_id: owner, name: `w${n}`, labels: '{}', interfaces: '[]', created_at: at(n), updated_at: at(n) });

  it('reads at once with no transaction open, and declines while one is (its writes are not committed) and for a Tx', async () => {
    const store = new KyselyMetalStore(db);
    await store.insert(metal(1, at(1)));
    expect(readNow<{ n: number }>(db, count, [owner])).toEqual({ row: { n: 1 } });
    let inside: unknown = 'not run';
    let insideTx: unknown = 'not run';
    let kyselyDuring: Promise<number> | undefined;
    await db.transaction().execute(async (tx) => {
      await tx.insertInto('metals').values(row(2)).execute();
      inside = readNow(db, count, [owner]);
      insideTx = readNow(tx, count, [owner]);
      // Through Kysely the same read waits for the transaction's end.
      kyselyDuring = sql<{ n: number }>`select count(*) as n from metals where owner_id = ${owner}`.execute(db).then((r) => r.rows[0]!.n);
      await new Promise((r) => setTimeout(r, 20));
    });
    expect(inside).toBeUndefined();
    expect(insideTx).toBeUndefined();
    expect(await kyselyDuring).toBe(2);
    expect(readNow<{ n: number }>(db, count, [owner])).toEqual({ row: { n: 2 } });
    // A rolled-back write is never seen.
    await expect(
      db.transaction().execute(async (tx) => {
        await tx.insertInto('metals').values(row(3)).execute();
        expect(readNow(db, count, [owner])).toBeUndefined();
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(readNow<{ n: number }>(db, count, [owner])).toEqual({ row: { n: 2 } });
  });
});
