import type { Compilable, CompiledQuery, QueryResult } from 'kysely';
import type { Db } from './database.ts';

/**
 * Queries on a hot path whose SQL text never changes, only their values: Kysely builds and compiles
 * a query anew on every call (≈ 10–20 µs for a join or a multi-row insert), so each is compiled once
 * per key and later calls run that SQL with their own parameters. The reuse is checked, never
 * assumed: a compilation is kept only if its parameters are exactly the values the caller passed, in
 * that order — if Kysely ever inlined a value or reordered them, the query is simply built every
 * time, as without this cache. Works on both dialects (the SQL is compiled by the executing `db`).
 */
export class CompiledOnce {
  private readonly compiled = new Map<string, CompiledQuery>();

  /**
   * Runs `build()`'s query with `parameters` — the values `build` puts into the query, in the order
   * it puts them. `key` names the SQL shape (e.g. a query and its row count) and must change
   * whenever `build` would produce another SQL text. `db` may be a transaction.
   */
  async execute<R>(db: Db, key: string, parameters: readonly unknown[], build: () => Compilable<R>): Promise<QueryResult<R>> {
    const hit = this.compiled.get(key);
    if (hit) return db.executeQuery<R>({ query: hit.query, queryId: hit.queryId, sql: hit.sql, parameters });
    const compiled = build().compile();
    if (sameValues(compiled.parameters, parameters)) this.compiled.set(key, compiled);
    return db.executeQuery(compiled);
  }
}

function sameValues(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}
