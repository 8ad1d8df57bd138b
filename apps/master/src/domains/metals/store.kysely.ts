import type { Mac, OwnerId, TipsId } from '@tips/core';
import { CompiledQuery, PostgresAdapter } from 'kysely';
import { CompiledOnce } from '../../db/compiled-once.ts';
import { type Db, forUpdate, readNow, type Tx } from '../../db/database.ts';
import { applyKeyset, containsText, type JoinedPage, type KeysetWindow } from '../../db/keyset.ts';
import type { ReadPool } from '../../db/read-pool.ts';
import { DEFAULT_LIST_VIEW, type ListViewOptions, type ListViewStats, MetalListView } from './list-view.ts';
import type { MetalsTable } from '../../db/schema.ts';
import type { Engine } from '../provisioning/model.ts';
import { type Metal, type MetalInterface, type StoredMetal, storedMetalJson } from './model.ts';
import type { MacHolder, MetalQuery, MetalStore } from './store.ts';

/** The columns a list page reads (`owner_id` is the caller's, known already). */
const LIST_COLUMNS = ['id', 'name', 'labels', 'interfaces', 'engine', 'created_at', 'updated_at'] as const;
/** Up to this many IDs go to the database as `id IN (…)`; a larger set is walked (listInSet). */
const SMALL_SET = 500;
const WALK_BATCH = 2000;
type ListRow = Pick<MetalsTable, (typeof LIST_COLUMNS)[number]>;

/**
 * SQLite: a page of the unfiltered list in ONE statement (one read snapshot, one range scan) — the
 * stored list items of the page and of the row after it (limit + 1 rows) joined by the database into
 * one blob (`cast … as blob`: the driver hands over the bytes, no UTF-8 decoding of 35 KB into a JS
 * string and encoding it again for the socket), how many rows lack their item (0015 backfilled every
 * row; a row without one makes the caller fall back), how many rows there were, and the byte lengths
 * of the items (the last two cut the extra row off and find the page's last item, whose `createdAt`
 * and `id` — written from the row's columns with it — are the next cursor). The scan searches
 * `metals_keyset` (db/keyset.test.ts). The items come in the page's order: SQLite feeds an aggregate
 * the rows of a FROM subquery in that subquery's ORDER BY (it runs as a co-routine);
 * `group_concat(… ORDER BY …)` would say so explicitly but sorts again in a temporary B-tree (2× the
 * cost); store.contract.test.ts compares every page and cursor with `listStored`'s. The next cursor
 * was a second range scan over the keyset index (`limit 2 offset limit - 1`), a fifth of the statement.
 * Parameters: owner, [after.at, after.id,] limit + 1.
 */
const joinedPageSql = (after: boolean): string => {
  const where = `from "metals" where "owner_id" = ?${after ? ' and ("created_at", "id") > (?, ?)' : ''} order by "created_at", "id"`;
  return (
    `select cast(group_concat("list_item", ',') as blob) as items, count(*) as n, count(*) - count("list_item") as missing, ` +
    `group_concat(length(cast("list_item" as blob))) as lengths from (select "list_item" ${where} limit ?)`
  );
};
const JOINED_PAGE_SQL = { first: joinedPageSql(false), after: joinedPageSql(true) };

export class KyselyMetalStore implements MetalStore {
  /**
   * Hot queries whose SQL never changes, only their values (the unfiltered list's page by window
   * shape, a lone MAC's holders): compiled once, the reuse checked against the parameters.
   */
  private readonly compiled = new CompiledOnce();

  /** SQLite: the list served from memory, kept exact by the change log (list-view.ts). */
  private readonly view: MetalListView | undefined;

  /**
   * @param reader read-only SQLite connections on worker threads (`--read-threads`, db/read-pool.ts):
   *   the unfiltered page — a read correct from any snapshot taken after the last acknowledged
   *   write — runs there, off the event loop; without it (PostgreSQL, `:memory:`, 0 threads), or once
   *   it failed, on the main connection.
   * @param view the in-memory list's bounds (SQLite), or false for none.
   */
  constructor(
    private readonly db: Db,
    private readonly reader?: ReadPool,
    view: Partial<ListViewOptions> | false = {},
  ) {
    this.view = view !== false && !(db.getExecutor().adapter instanceof PostgresAdapter) ? new MetalListView(db, { ...DEFAULT_LIST_VIEW, ...view }) : undefined;
  }

  /** Unfiltered pages answered, by where from (metrics). */
  private readonly pagesFrom = { memory: 0, database: 0 };

  /** What the in-memory list holds and how many pages came from it (metrics). */
  listViewStats(): (ListViewStats & { pagesFromMemory: number; pagesFromDatabase: number }) | undefined {
    return this.view ? { ...this.view.stats(), pagesFromMemory: this.pagesFrom.memory, pagesFromDatabase: this.pagesFrom.database } : undefined;
  }

  async insert(m: Metal, within?: (tx: Tx) => Promise<void>): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.insertInto('metals').values(this.row(m)).execute();
      await this.insertInterfaces(tx, m);
      await within?.(tx);
    });
  }

  async update(m: Metal, guard?: (tx: Tx) => Promise<void>): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      if (guard) {
        await forUpdate(tx, tx.selectFrom('metals').select('id').where('id', '=', m.id)).execute();
        await guard(tx);
      }
      const { id, owner_id, ...rest } = this.row(m);
      await tx.updateTable('metals').set(rest).where('id', '=', id).where('owner_id', '=', owner_id).execute();
      await tx.deleteFrom('metal_interfaces').where('metal_id', '=', m.id).execute();
      await this.insertInterfaces(tx, m);
    });
  }

  async delete(ownerId: OwnerId, id: TipsId): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const owned = await tx.selectFrom('metals').select('id').where('id', '=', id).where('owner_id', '=', ownerId).executeTakeFirst();
      if (!owned) return false;
      await tx.deleteFrom('metal_interfaces').where('metal_id', '=', id).execute();
      await tx.deleteFrom('metals').where('id', '=', id).execute();
      return true;
    });
  }

  async findById(ownerId: OwnerId, id: TipsId): Promise<Metal | undefined> {
    const r = await this.db.selectFrom('metals').selectAll().where('id', '=', id).where('owner_id', '=', ownerId).executeTakeFirst();
    return r ? this.hydrate([r])[0] : undefined;
  }

  async findByIdLocked(ownerId: OwnerId, id: TipsId, tx: Tx): Promise<Metal | undefined> {
    const r = await forUpdate(tx, tx.selectFrom('metals').selectAll().where('id', '=', id).where('owner_id', '=', ownerId)).executeTakeFirst();
    return r ? this.hydrate([r])[0] : undefined;
  }

  async findByName(ownerId: OwnerId, name: string): Promise<Metal | undefined> {
    const r = await this.db.selectFrom('metals').selectAll().where('name', '=', name).where('owner_id', '=', ownerId).executeTakeFirst();
    return r ? this.hydrate([r])[0] : undefined;
  }

  async list(ownerId: OwnerId, query: MetalQuery = {}, window?: KeysetWindow): Promise<Metal[]> {
    const rows = await this.listRows(ownerId, query, window);
    const out: Metal[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) out[i] = this.toMetal(rows[i]!, ownerId);
    return out;
  }

  async listStored(ownerId: OwnerId, query: MetalQuery = {}, window?: KeysetWindow): Promise<StoredMetal[]> {
    const rows = await this.listRows(ownerId, query, window);
    const out: StoredMetal[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      out[i] = {
        id: r.id as TipsId,
        name: r.name,
        labelsJson: r.labels,
        interfacesJson: r.interfaces,
        engine: (r.engine ?? null) as Engine | null,
        createdAt: r.created_at,
        updatedAt: r.updated_at,
      };
    }
    return out;
  }

  async listPageJson(ownerId: OwnerId, window: KeysetWindow): Promise<JoinedPage | undefined> {
    if (this.db.getExecutor().adapter instanceof PostgresAdapter) return undefined;
    const fromMemory = this.view?.page(ownerId, window);
    if (fromMemory !== undefined) {
      this.pagesFrom.memory++;
      return fromMemory;
    }
    this.pagesFrom.database++;
    const limit = window.limit - 1;
    const after = window.after;
    const text = after ? JOINED_PAGE_SQL.after : JOINED_PAGE_SQL.first;
    const params = after ? [ownerId, after.at, after.id, limit + 1] : [ownerId, limit + 1];
    type Row = { items: Buffer | null; n: number; missing: number; lengths: string | null };
    let r: Row | undefined;
    if (this.reader?.usable) {
      try {
        r = await this.reader.get<Row>(text, params);
      } catch (e) {
        if (this.reader.usable) throw e; // the statement failed, not the worker
      }
    }
    if (r === undefined) r = (readNow<Row>(this.db, text, params) ?? { row: (await this.db.executeQuery(CompiledQuery.raw(text, params) as CompiledQuery<Row>)).rows[0] }).row;
    if (r === undefined) return undefined;
    if (r.missing !== 0) return undefined; // a row 0015 has not filled: the caller reads listStored
    if (r.n <= limit || r.items === null || r.lengths === null) return { items: r.items, next: null };
    // limit + 1 rows: a next page exists. Cut the extra item (and its comma) off; the page's last
    // item gives the cursor.
    const lengths = r.lengths;
    const c1 = lengths.lastIndexOf(',');
    const c2 = lengths.lastIndexOf(',', c1 - 1);
    const end = r.items.length - Number(lengths.slice(c1 + 1)) - 1;
    const last = JSON.parse(r.items.toString('utf8', end - Number(lengths.slice(c2 + 1, c1)), end)) as { id: string; createdAt: string };
    return { items: r.items.subarray(0, end), next: { at: last.createdAt, id: last.id } };
  }

  private listQuery(ownerId: OwnerId, query: MetalQuery, window: KeysetWindow | undefined) {
    let q = this.db.selectFrom('metals').select(LIST_COLUMNS).where('owner_id', '=', ownerId);
    if (query.name !== undefined) q = q.where('name', '=', query.name);
    if (query.ids !== undefined) q = q.where('id', 'in', [...query.ids]);
    // A range the (owner_id, name) index answers, then the exact prefix test (collations aside).
    if (query.namePrefix !== undefined) {
      const p = query.namePrefix;
      q = q.where('name', '>=', p).where((eb) => eb(eb.fn('substr', ['name', eb.val(1), eb.val(p.length)]), '=', p));
    }
    const label = query.label;
    // Labels are stored as JSON.stringify of a flat string map, so `"key":"value"` occurs in the text
    // exactly when the metal has that label (keys cannot contain quotes; values are escaped the same way).
    if (label) q = q.where(containsText(this.db, 'labels', `${JSON.stringify(label.key)}:${JSON.stringify(label.value)}`));
    return applyKeyset(q, 'created_at', 'id', window);
  }

  private async listRows(ownerId: OwnerId, query: MetalQuery, window: KeysetWindow | undefined): Promise<ListRow[]> {
    if (query.ids !== undefined && query.ids.length === 0) return [];
    if (query.idSet !== undefined) return this.listInSet(ownerId, query, query.idSet, window);
    if (query.name !== undefined || query.ids !== undefined || query.label !== undefined || query.namePrefix !== undefined) return this.listQuery(ownerId, query, window).execute();
    const params: unknown[] = [ownerId];
    if (window?.after) params.push(window.after.at, window.after.id);
    if (window) params.push(window.limit);
    const shape = window ? (window.after ? 'page after' : 'page first') : 'page all';
    return (await this.compiled.execute(this.db, shape, params, () => this.listQuery(ownerId, query, window))).rows;
  }

  /**
   * A page of the metals in `set`: a small set is a primary-key lookup (`id IN …`) in list order; a
   * large one is a walk over the owner's metals in list order, a batch at a time, keeping members
   * (no parameter limit, and a set that large finds its page within a few batches).
   */
  private async listInSet(ownerId: OwnerId, query: MetalQuery, set: ReadonlySet<string>, window: KeysetWindow | undefined): Promise<ListRow[]> {
    const { idSet: _s, ...rest } = query;
    if (set.size === 0) return [];
    if (set.size <= SMALL_SET) return this.listQuery(ownerId, { ...rest, ids: [...set] }, window).execute();
    const want = window?.limit ?? Number.POSITIVE_INFINITY;
    const out: ListRow[] = [];
    let after = window?.after;
    for (;;) {
      const batch = await this.listQuery(ownerId, rest, { limit: WALK_BATCH, ...(after ? { after } : {}) }).execute();
      for (const r of batch) {
        if (set.has(r.id)) out.push(r);
        if (out.length >= want) return out;
      }
      const last = batch.at(-1);
      if (batch.length < WALK_BATCH || !last) return out;
      after = { at: last.created_at, id: last.id };
    }
  }

  async findMany(ownerId: OwnerId, ids: TipsId[], names: string[]): Promise<{ id: TipsId; name: string }[]> {
    const out: { id: TipsId; name: string }[] = [];
    for (const [column, values] of [['id', ids] as const, ['name', names] as const]) {
      if (values.length === 0) continue;
      const rows = await this.db.selectFrom('metals').select(['id', 'name']).where('owner_id', '=', ownerId).where(column, 'in', values).execute();
      for (const r of rows) out.push({ id: r.id as TipsId, name: r.name });
    }
    return out;
  }

  async metalIdsHoldingMacs(ownerId: OwnerId, macs: Mac[]): Promise<TipsId[]> {
    if (macs.length === 0) return [];
    // One unique-index lookup (owner_id, mac) and one small row per MAC; joining `metals` for the
    // holders' names read each holder's whole row (its JSON copies too): twice the time at 85,000 MACs.
    const rows = await this.db.selectFrom('metal_interfaces').select('metal_id').where('owner_id', '=', ownerId).where('mac', 'in', macs).execute();
    return rows.map((r) => r.metal_id as TipsId);
  }

  async findMacHolders(ownerId: OwnerId, macs: Mac[]): Promise<MacHolder[]> {
    if (macs.length === 0) return [];
    const build = () =>
      this.db
        .selectFrom('metal_interfaces')
        .innerJoin('metals', 'metals.id', 'metal_interfaces.metal_id')
        .select(['metal_interfaces.mac', 'metal_interfaces.name as iface', 'metals.id', 'metals.owner_id', 'metals.name'])
        .where('metal_interfaces.owner_id', '=', ownerId)
        .where('metal_interfaces.mac', 'in', macs);
    // A lone MAC is every registration of an unknown MAC (never cached by discovery): compiled once.
    const rows = macs.length === 1 ? (await this.compiled.execute(this.db, 'holders 1', [ownerId, macs[0]], build)).rows : await build().execute();
    return rows.map((r) => ({
      mac: r.mac as Mac,
      metalId: r.id as TipsId,
      ownerId: r.owner_id as OwnerId,
      metalName: r.name,
      interfaceName: r.iface,
    }));
  }

  private row(m: Metal): MetalsTable {
    const labels = JSON.stringify(m.labels);
    // Field by field, so the copy holds exactly the model's fields in the list's order.
    const interfaces = JSON.stringify(m.interfaces.map((i) => ({ name: i.name, mac: i.mac, type: i.type, pxe: i.pxe })));
    return {
      id: m.id,
      owner_id: m.ownerId,
      name: m.name,
      labels,
      interfaces,
      engine: m.engine,
      created_at: m.createdAt,
      updated_at: m.updatedAt,
      list_item: storedMetalJson({ id: m.id, name: m.name, labelsJson: labels, interfacesJson: interfaces, engine: m.engine, createdAt: m.createdAt, updatedAt: m.updatedAt }),
    };
  }

  private async insertInterfaces(tx: Db, m: Metal): Promise<void> {
    if (m.interfaces.length === 0) return;
    await tx
      .insertInto('metal_interfaces')
      .values(m.interfaces.map((i, position) => ({ metal_id: m.id, owner_id: m.ownerId, name: i.name, mac: i.mac, type: i.type, pxe: i.pxe ? 1 : 0, position })))
      .execute();
  }

  /** Rows to metals: the interfaces are the row's own JSON copy (0010), so a page is one query. */
  private hydrate(rows: MetalsTable[]): Metal[] {
    const out: Metal[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) out[i] = this.toMetal(rows[i]!, rows[i]!.owner_id as OwnerId);
    return out;
  }

  private toMetal(r: ListRow, ownerId: OwnerId): Metal {
    return {
      id: r.id as TipsId,
      ownerId,
      name: r.name,
      labels: JSON.parse(r.labels) as Record<string, string>,
      interfaces: JSON.parse(r.interfaces) as MetalInterface[],
      engine: (r.engine ?? null) as Engine | null,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
  }
}
