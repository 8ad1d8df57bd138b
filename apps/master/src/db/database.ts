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
function cachingPrepare(sqlite: SQLite.Database): SqliteDatabase {
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
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: cachingPrepare(sqlite) }) });
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
