// CompiledOnce (issue 13, the registration path): a query compiled once per key answers every later
// call with that call's own values, and a query whose compiled parameters are not the caller's values
// is never reused (built every time), so a wrong key or an inlined value cannot return stale rows.
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CompiledOnce } from './compiled-once.ts';
import type { Db } from './database.ts';

interface T {
  kv: { k: string; v: number };
}

let db: Kysely<T>;
let compiles = 0;

beforeAll(async () => {
  db = new Kysely<T>({ dialect: new SqliteDialect({ database: new SQLite(':memory:') }) });
  await db.schema.createTable('kv').addColumn('k', 'text', (c) => c.primaryKey()).addColumn('v', 'integer').execute();
  await db.insertInto('kv').values([{ k: 'a', v: 1 }, { k: 'b', v: 2 }, { k: 'c', v: 3 }]).execute();
});
afterAll(async () => db.destroy());

const select = (k: string) => () => {
  compiles++;
  return db.selectFrom('kv').select('v').where('k', '=', k);
};

describe('T6 B5 CompiledOnce: one compilation per SQL shape, each call with its own values', () => {
  it('answers each call with its own parameters and builds the query only once', async () => {
    const q = new CompiledOnce();
    compiles = 0;
    const run = async (k: string) => (await q.execute(db as unknown as Db, 'kv by k', [k], select(k))).rows;
    expect(await run('a')).toEqual([{ v: 1 }]);
    expect(await run('b')).toEqual([{ v: 2 }]);
    expect(await run('zz')).toEqual([]);
    expect(await run('c')).toEqual([{ v: 3 }]);
    expect(compiles).toBe(1);
  });

  it('does not keep a compilation whose parameters are not the values passed (built every time instead)', async () => {
    const q = new CompiledOnce();
    compiles = 0;
    // The caller claims one value but the query binds another: never reused.
    const run = async (k: string) => (await q.execute(db as unknown as Db, 'kv mismatch', ['not-the-bound-value'], select(k))).rows;
    expect(await run('a')).toEqual([{ v: 1 }]);
    expect(await run('b')).toEqual([{ v: 2 }]);
    expect(compiles).toBe(2);
  });

  it('runs inside a transaction and writes with the later call’s values', async () => {
    const q = new CompiledOnce();
    const insert = (k: string, v: number) =>
      db.transaction().execute((tx) => q.execute(tx as unknown as Db, 'insert', [k, v], () => tx.insertInto('kv').values({ k, v })));
    await insert('d', 4);
    await insert('e', 5);
    expect(await db.selectFrom('kv').selectAll().where('k', 'in', ['d', 'e']).orderBy('k').execute()).toEqual([
      { k: 'd', v: 4 },
      { k: 'e', v: 5 },
    ]);
  });
});
