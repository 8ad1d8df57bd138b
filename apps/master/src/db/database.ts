import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresAdapter, PostgresDialect, SqliteDialect, type SqliteDatabase } from 'kysely';
import pg from 'pg';
import { migrateToLatest } from './migrations.ts';
import type { Database } from './schema.ts';

export type Db = Kysely<Database>;

export type DatabaseConfig =
  | { kind: 'sqlite'; file: string }
  | { kind: 'postgres'; url: string; schema?: string; poolSize?: number };

// PostgreSQL returns int8 as strings; every bigint we store (sizes, times) fits a JS number.
pg.types.setTypeParser(20, (v) => Number.parseInt(v, 10));

/**
 * better-sqlite3 compiles a statement on every `prepare`; Kysely prepares each query anew. The
 * queries are a small fixed set of SQL texts, so compiled statements are kept by text (bounded).
 */
function cachingPrepare(sqlite: SQLite.Database): SqliteDatabase & { prepare(sql: string): SQLite.Statement } {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(sql: string) {
      let stmt = cache.get(sql);
      if (!stmt) {
        stmt = sqlite.prepare(sql);
        if (cache.size >= 500) cache.delete(cache.keys().next().value as string);
        cache.set(sql, stmt);
      }
      return stmt;
    },
  };
}

/** The SQLite connection behind a `Db` opened by `openDatabase` (not behind a transaction's). */
const sqliteOf = new WeakMap<object, { sqlite: SQLite.Database; prepare(sql: string): SQLite.Statement }>();

/**
 * SQLite: the first row of a read-only statement, read at once on the master's connection — without
 * Kysely's executor, whose connection mutex, promises and result plumbing cost a hot read (the token
 * lookup and the list page every API request runs: bench/RESULTS.md, metal-list sixth round) more
 * than the statement itself. Answers `undefined` — read through Kysely then — on PostgreSQL, for a
 * transaction's `Tx`, and while a transaction is open on the connection: a read there would see that
 * transaction's uncommitted writes, where through Kysely it waits for its end. With no transaction
 * open the read sees exactly what Kysely's would (same connection, same statement, synchronous).
 */
export function readNow<R>(db: Db, sql: string, params: readonly unknown[]): { row: R | undefined } | undefined {
  const c = sqliteNow(db);
  return c === undefined ? undefined : { row: c.prepare(sql).get(params) as R | undefined };
}

/**
 * SQLite: the master's connection itself, for reads (and small housekeeping writes) made at once
 * outside Kysely — on the terms of `readNow`: `undefined` on PostgreSQL, for a transaction's `Tx`,
 * and while a transaction is open on the connection (a caller then goes through Kysely).
 */
export function sqliteNow(db: Db): { prepare(sql: string): SQLite.Statement } | undefined {
  const d = sqliteOf.get(db);
  if (d === undefined || d.sqlite.inTransaction) return undefined;
  return d;
}

/** SQLite page cache per connection, KiB. */
const SQLITE_CACHE_KIB = 64 * 1024;

/** Opens the configured database (the `Store` port's two adapters) and migrates it. */
export async function openDatabase(config: DatabaseConfig): Promise<Db> {
  let db: Db;
  if (config.kind === 'sqlite') {
    if (config.file !== ':memory:') mkdirSync(dirname(config.file), { recursive: true });
    const sqlite = new SQLite(config.file);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    // The page cache holds the hot pages of the lists (bench/RESULTS.md, metal-list sixth round);
    // SQLite's default (2 MiB) reread them from the OS on every page. An upper bound, filled by use.
    sqlite.pragma(`cache_size = -${SQLITE_CACHE_KIB}`);
    const database = cachingPrepare(sqlite);
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
    sqliteOf.set(db, { sqlite, prepare: database.prepare });
  } else {
    const pool = new pg.Pool({
      connectionString: config.url,
      max: config.poolSize ?? 10,
      ...(config.schema ? { options: `-c search_path=${config.schema}` } : {}),
    });
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  }
  await migrateToLatest(db as unknown as Kysely<unknown>);
  return db;
}

/**
 * A transaction of a store, handed to a check that must see the same state the write will change
 * (a check of another domain, through that domain's service, runs inside the writer's transaction).
 */
export type Tx = Db;

/**
 * Locks the selected rows until the transaction ends: `SELECT … FOR UPDATE` on PostgreSQL. SQLite
 * needs no row lock: the master's one SQLite connection runs one transaction at a time, and other
 * queries wait for it (Kysely's SQLite driver holds the connection for the whole transaction).
 */
export function forUpdate<Q extends { forUpdate(): Q }>(db: Db, q: Q): Q {
  return db.getExecutor().adapter instanceof PostgresAdapter ? q.forUpdate() : q;
}

/** True when an error from either driver is a unique-constraint violation. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
