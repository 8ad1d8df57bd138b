/**
 * The metal list served from memory (issue 10, bench/metal-list): per owner, the stored list items
 * (`metals.list_item`) in list order — (createdAt, id) — so a page is a binary search and the page's
 * items joined, instead of a range scan that reads 101 table rows (≈ 40 % of a page's CPU; see
 * bench/RESULTS.md, metal-list seventh round).
 *
 * Kept exact by the database itself: triggers (migration 0018_list) log every committed write to a
 * metal in `metal_list_changes`, in the writing transaction — whichever code path or connection wrote,
 * and nothing that rolled back. Before answering, `page()` reads the log past the last change it
 * applied and re-reads those metals, synchronously on the master's connection with no transaction
 * open (`sqliteNow`): the page is what a read of the database at that moment would give.
 *
 * SQLite only (on PostgreSQL several replicas write: the list is read from the database). An owner's
 * items are loaded on their first list request, in slices between other work (until then, and when
 * anything is off — a transaction open, a row without its item, the bound reached, the log pruned past
 * what was applied — `page()` answers undefined and the caller reads the database as before).
 * Memory: at most `maxItems` items over all owners (least recently listed owner dropped first).
 */
import type { OwnerId } from '@tips/core';
import { type Db, sqliteNow } from '../../db/database.ts';
import type { JoinedPage, KeysetWindow } from '../../db/keyset.ts';

export interface ListViewOptions {
  /** Items kept over all owners (≈ 0.4 KB each: the default bounds the view near 100 MB). */
  maxItems: number;
  /** Rows read per slice while loading an owner. */
  loadSlice: number;
  /** Changes the log keeps (older ones are pruned); a view further behind reloads. */
  keepChanges: number;
  /** How often the log is pruned, ms. */
  pruneMs: number;
}

export const DEFAULT_LIST_VIEW: ListViewOptions = { maxItems: 250_000, loadSlice: 5_000, keepChanges: 10_000, pruneMs: 30_000 };

const COMMA = Buffer.from(',');

/** One owner's list, sorted by (at, id) as SQLite's BINARY collation sorts ASCII text. */
class OwnerList {
  readonly ats: string[] = [];
  readonly ids: string[] = [];
  readonly items: Buffer[] = [];
  /** id → createdAt, to find an entry again. */
  readonly byId = new Map<string, string>();
  usedAt = 0;

  /** First index whose (at, id) is greater than the given position. */
  after(at: string, id: string): number {
    let lo = 0;
    let hi = this.ats.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const a = this.ats[mid] as string;
      if (a < at || (a === at && (this.ids[mid] as string) <= id)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  remove(id: string): void {
    const at = this.byId.get(id);
    if (at === undefined) return;
    const i = this.after(at, id) - 1;
    if (i >= 0 && this.ids[i] === id) {
      this.ats.splice(i, 1);
      this.ids.splice(i, 1);
      this.items.splice(i, 1);
    }
    this.byId.delete(id);
  }

  put(at: string, id: string, item: Buffer): void {
    if (this.byId.get(id) === at) {
      // Same position (an update: createdAt never changes): the item in place, nothing moves.
      const i = this.after(at, id) - 1;
      if (i >= 0 && this.ids[i] === id) {
        this.items[i] = item;
        return;
      }
    }
    this.remove(id);
    const i = this.after(at, id);
    if (i === this.ats.length) {
      this.ats.push(at);
      this.ids.push(id);
      this.items.push(item);
    } else {
      this.ats.splice(i, 0, at);
      this.ids.splice(i, 0, id);
      this.items.splice(i, 0, item);
    }
    this.byId.set(id, at);
  }
}

type Loading = { kind: 'loading' };
type Conn = NonNullable<ReturnType<typeof sqliteNow>>;
type Entry = OwnerList | Loading;

export interface ListViewStats {
  owners: number;
  items: number;
  applied: number;
  reloads: number;
}

export class MetalListView {
  private readonly owners = new Map<string, Entry>();
  private items = 0;
  /** The last change (metal_list_changes.seq) reflected in every loaded owner. */
  private applied = 0;
  private reloads = 0;
  /** Owners read from the database: too large for the bound, or a row without its stored item. */
  private readonly fromDatabase = new Set<string>();
  private readonly pruneTimer: NodeJS.Timeout;
  private useSeq = 0;

  constructor(
    private readonly db: Db,
    private readonly opts: ListViewOptions = DEFAULT_LIST_VIEW,
  ) {
    this.pruneTimer = setInterval(() => this.prune(), opts.pruneMs);
    this.pruneTimer.unref();
  }

  close(): void {
    clearInterval(this.pruneTimer);
  }

  stats(): ListViewStats {
    return { owners: [...this.owners.values()].filter((e) => e instanceof OwnerList).length, items: this.items, applied: this.applied, reloads: this.reloads };
  }

  /** The page of `window` (limit + 1 as `readPage` asks), or undefined: read the database. */
  page(ownerId: OwnerId, window: KeysetWindow): JoinedPage | undefined {
    if (this.fromDatabase.has(ownerId)) return undefined;
    const c = sqliteNow(this.db);
    if (c === undefined) return undefined;
    const entry = this.owners.get(ownerId);
    if (entry === undefined) {
      this.load(ownerId);
      return undefined;
    }
    if (!(entry instanceof OwnerList)) return undefined;
    try {
      if (!this.catchUp(c)) return undefined;
    } catch {
      this.reset(); // the log unreadable: read the database
      return undefined;
    }
    const list = this.owners.get(ownerId);
    if (!(list instanceof OwnerList)) return undefined;
    list.usedAt = ++this.useSeq;
    const limit = window.limit - 1;
    const start = window.after ? list.after(window.after.at, window.after.id) : 0;
    const n = Math.min(limit, list.items.length - start);
    if (n <= 0) return { items: null, next: null };
    const parts: Buffer[] = new Array(2 * n - 1);
    let length = n - 1;
    for (let i = 0; i < n; i++) {
      const item = list.items[start + i] as Buffer;
      if (i > 0) parts[2 * i - 1] = COMMA;
      parts[2 * i] = item;
      length += item.length;
    }
    const items = Buffer.concat(parts, length);
    const last = start + n - 1;
    return { items, next: list.items.length - start > limit ? { at: list.ats[last] as string, id: list.ids[last] as string } : null };
  }

  /** Applies the logged changes past `applied`; false when the view cannot be trusted now (then reloads). */
  private catchUp(c: Conn): boolean {
    const top = this.top(c);
    if (top === this.applied) return true;
    if (top < this.applied || top - this.applied > this.opts.keepChanges) return this.reset();
    const rows = c.prepare('select seq, owner_id, metal_id from metal_list_changes where seq > ? order by seq').all(this.applied) as { seq: number; owner_id: string; metal_id: string }[];
    // The log was pruned past what this view applied: changes are missing.
    if (rows.length === 0 || (rows[0] as { seq: number }).seq !== this.applied + 1) return this.reset();
    const touched = new Map<string, string>();
    for (const r of rows) if (this.owners.get(r.owner_id) instanceof OwnerList) touched.set(r.metal_id, r.owner_id);
    for (const [id, ownerId] of touched) {
      const list = this.owners.get(ownerId);
      if (!(list instanceof OwnerList)) continue;
      const before = list.items.length;
      if (!this.refresh(c, list, ownerId, id)) {
        this.drop(ownerId);
        this.fromDatabase.add(ownerId);
        continue;
      }
      this.items += list.items.length - before;
    }
    this.applied = (rows[rows.length - 1] as { seq: number }).seq;
    if (this.items > this.opts.maxItems) this.evict();
    return true;
  }

  /**
   * Re-reads one metal into the owner's list as the database holds it now: gone or another owner's →
   * removed, else put at its position. False for a row without its stored item (an old writer): the
   * owner is then read from the database.
   */
  private refresh(c: Conn, list: OwnerList, ownerId: string, id: string): boolean {
    const row = c.prepare('select owner_id, created_at, list_item from metals where id = ?').get(id) as { owner_id: string; created_at: string; list_item: string | null } | undefined;
    if (row === undefined || row.owner_id !== ownerId) list.remove(id);
    else if (row.list_item === null) return false;
    else list.put(row.created_at, id, Buffer.from(row.list_item, 'utf8'));
    return true;
  }

  /** The last change logged (0 before the first). */
  private top(c: Conn): number {
    return (c.prepare('select seq from sqlite_sequence where name = ?').get('metal_list_changes') as { seq: number } | undefined)?.seq ?? 0;
  }

  /** Forgets every owner (they reload on their next request). */
  private reset(): false {
    this.owners.clear();
    this.items = 0;
    this.reloads++;
    return false;
  }

  private drop(ownerId: string): void {
    const e = this.owners.get(ownerId);
    if (e instanceof OwnerList) this.items -= e.items.length;
    this.owners.delete(ownerId);
  }

  private evict(): void {
    while (this.items > this.opts.maxItems) {
      let oldest: [string, OwnerList] | undefined;
      for (const [k, e] of this.owners) if (e instanceof OwnerList && (!oldest || e.usedAt < oldest[1].usedAt)) oldest = [k, e];
      if (!oldest) return;
      this.drop(oldest[0]);
    }
  }

  /**
   * Reads the owner's items a slice at a time (one synchronous read each, other requests served
   * between them); changes made meanwhile are in the log past `from` and applied when it is done.
   */
  private load(ownerId: OwnerId): void {
    const marker: Loading = { kind: 'loading' };
    this.owners.set(ownerId, marker);
    const list = new OwnerList();
    let from: number | undefined;
    let after: { at: string; id: string } | undefined;
    const step = () => {
      if (this.owners.get(ownerId) !== marker) return; // reset meanwhile
      const c = sqliteNow(this.db);
      if (c === undefined) {
        setTimeout(step, 1).unref(); // a transaction is open: try again after it
        return;
      }
      try {
        if (from === undefined) from = this.top(c);
        const rows = (
          after
            ? c
                .prepare('select created_at, id, list_item from metals where owner_id = ? and (created_at, id) > (?, ?) order by created_at, id limit ?')
                .all(ownerId, after.at, after.id, this.opts.loadSlice)
            : c.prepare('select created_at, id, list_item from metals where owner_id = ? order by created_at, id limit ?').all(ownerId, this.opts.loadSlice)
        ) as { created_at: string; id: string; list_item: string | null }[];
        for (const r of rows) {
          if (r.list_item === null || this.items + list.items.length >= this.opts.maxItems) {
            this.owners.delete(ownerId);
            this.fromDatabase.add(ownerId);
            return;
          }
          list.ats.push(r.created_at);
          list.ids.push(r.id);
          list.items.push(Buffer.from(r.list_item, 'utf8'));
          list.byId.set(r.id, r.created_at);
        }
        const last = rows[rows.length - 1];
        if (rows.length === this.opts.loadSlice && last) {
          after = { at: last.created_at, id: last.id };
          setImmediate(step);
          return;
        }
        // Loaded as of somewhere between `from` and now. Bring the owners already loaded to the log's
        // top (or, with none, just take the top as the position), then re-read this owner's metals
        // changed after `from`: the list is then exact as of the top, like every other owner's.
        if ([...this.owners.values()].some((e) => e instanceof OwnerList)) {
          if (!this.catchUp(c)) return; // reset: every owner, this one included, reloads
        } else {
          this.applied = this.top(c);
        }
        const oldest = (c.prepare('select min(seq) as seq from metal_list_changes').get() as { seq: number | null }).seq;
        if (this.applied > from && oldest !== null && oldest > from + 1) {
          this.owners.delete(ownerId); // pruned while loading (a burst of writes): load again on the next request
          return;
        }
        const redo = c.prepare('select distinct metal_id from metal_list_changes where seq > ? and seq <= ? and owner_id = ?').all(from, this.applied, ownerId) as { metal_id: string }[];
        for (const { metal_id } of redo) {
          if (!this.refresh(c, list, ownerId, metal_id)) {
            this.owners.delete(ownerId);
            this.fromDatabase.add(ownerId);
            return;
          }
        }
        list.usedAt = ++this.useSeq;
        this.items += list.items.length;
        this.owners.set(ownerId, list);
        if (this.items > this.opts.maxItems) this.evict();
      } catch {
        // A table missing (the migration not run: a test's bare schema) or a read failed: not served from memory.
        this.owners.delete(ownerId);
        this.fromDatabase.add(ownerId);
      }
    };
    setImmediate(step);
  }

  /** Keeps the last `keepChanges` log rows (a housekeeping write on the master's connection). */
  private prune(): void {
    const c = sqliteNow(this.db);
    if (c === undefined) return;
    try {
      c.prepare('delete from metal_list_changes where seq <= (select seq from sqlite_sequence where name = ?) - ?').run('metal_list_changes', this.opts.keepChanges);
    } catch {
      // the table is missing: nothing to prune
    }
  }
}
