import { type ExpressionBuilder, type Kysely, PostgresAdapter, type RawBuilder, type SelectQueryBuilder, sql } from 'kysely';

/**
 * Keyset pagination: a page is "the next `limit` rows after this position" in a stable, unique
 * order — (created_at, id) for most lists, immutable once a row exists — never OFFSET, so a page
 * costs one index range scan however deep it is, and rows inserted meanwhile can neither shift a
 * row into the next page twice nor push one out of it.
 */
export interface KeysetPosition {
  /** The first sort column of the last row already seen (a timestamp). */
  at: string;
  /** Its unique tiebreak (an ID or a serial). */
  id: string;
}

/** Which rows a list query returns: at most `limit`, strictly after `after` in the list's order. */
export interface KeysetWindow {
  limit: number;
  after?: KeysetPosition;
}

/**
 * A page a store already joined: `items` is the page's items as JSON text joined by `,` (UTF-8,
 * null for none), `next` the position of its last item when another row follows it.
 */
export interface JoinedPage {
  items: Buffer | null;
  next: KeysetPosition | null;
}

/**
 * Applies a window to a query ordered by (`atColumn`, `idColumn`), ascending (oldest first) or
 * descending (newest first). The position is compared as a row value, `(at, id) > (?, ?)`, which both
 * SQLite and PostgreSQL answer from a composite index `(owner_id, at, id)` as one range scan.
 */
export function applyKeyset<DB, TB extends keyof DB, O>(
  q: SelectQueryBuilder<DB, TB, O>,
  atColumn: string,
  idColumn: string,
  window: KeysetWindow | undefined,
  direction: 'asc' | 'desc' = 'asc',
): SelectQueryBuilder<DB, TB, O> {
  // Column names are fixed strings chosen by each store, never input.
  type Ref = Parameters<ExpressionBuilder<DB, TB>['refTuple']>[0];
  const at = atColumn as unknown as Ref;
  const id = idColumn as unknown as Ref;
  let out = q.orderBy(at as never, direction).orderBy(id as never, direction);
  if (!window) return out;
  const after = window.after;
  if (after) out = out.where((eb) => eb(eb.refTuple(at, id), direction === 'asc' ? '>' : '<', eb.tuple(after.at, after.id) as never));
  return out.limit(window.limit);
}

/**
 * `column` contains `needle` as a case-sensitive substring (SQLite's LIKE ignores ASCII case, so
 * each dialect's own position function): `instr` on SQLite, `strpos` on PostgreSQL.
 */
export function containsText<DB>(db: Kysely<DB>, column: string, needle: string): RawBuilder<boolean> {
  const fn = db.getExecutor().adapter instanceof PostgresAdapter ? sql.raw('strpos') : sql.raw('instr');
  return sql<boolean>`${fn}(${sql.ref(column)}, ${needle}) > 0`;
}
