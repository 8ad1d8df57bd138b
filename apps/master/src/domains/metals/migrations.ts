import { type Kysely, PostgresAdapter, sql } from 'kysely';
import type { Database } from '../../db/schema.ts';
import type { Engine } from '../provisioning/model.ts';
import { storedMetalJson } from './model.ts';

/**
 * 0005_metal_mac_per_owner — a MAC is unique per owner, no longer system-wide (T6 decides per
 * gateway owner, so that suffices): a system-wide constraint told one owner, through `mac_taken`,
 * that another owner holds a MAC. `metal_interfaces` gains its metal's `owner_id` and the unique
 * key (owner_id, mac). Neither SQLite nor a portable DDL can drop a column's inline UNIQUE, so the
 * table is rebuilt (same on both dialects); constraint names carry `_v5` because PostgreSQL
 * constraint/index names must be unique while the old table still exists.
 */
export async function up0005MetalMacPerOwner(raw: Kysely<unknown>): Promise<void> {
  const db = raw as unknown as Kysely<Database & { metal_interfaces_v5: Database['metal_interfaces'] }>;
  await db.schema
    .createTable('metal_interfaces_v5')
    .addColumn('metal_id', 'text', (c) => c.notNull().references('metals.id').onDelete('cascade'))
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('mac', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('pxe', 'integer', (c) => c.notNull())
    .addColumn('position', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('metal_interfaces_v5_pk', ['metal_id', 'name'])
    .addUniqueConstraint('metal_interfaces_v5_owner_mac', ['owner_id', 'mac'])
    .execute();
  await db
    .insertInto('metal_interfaces_v5')
    .columns(['metal_id', 'owner_id', 'name', 'mac', 'type', 'pxe', 'position'])
    .expression(
      db
        .selectFrom('metal_interfaces')
        .innerJoin('metals', 'metals.id', 'metal_interfaces.metal_id')
        .select([
          'metal_interfaces.metal_id',
          'metals.owner_id',
          'metal_interfaces.name',
          'metal_interfaces.mac',
          'metal_interfaces.type',
          'metal_interfaces.pxe',
          'metal_interfaces.position',
        ]),
    )
    .execute();
  await db.schema.dropTable('metal_interfaces').execute();
  await db.schema.alterTable('metal_interfaces_v5').renameTo('metal_interfaces').execute();
}

/**
 * 0010_perf — `metals.interfaces`: the metal's interface list as JSON (`[{ name, mac, type, pxe }]`
 * in position order), a read copy of its `metal_interfaces` rows written in the same transaction.
 * A page of the metal list is then one index range scan of `metals` — no second query fetching 200
 * interface rows by `metal_id IN (…)`, sorting them and building a JS object per row, which cost
 * twice the metals query itself (bench/RESULTS.md, metal-list). `metal_interfaces` stays the table
 * of record for what needs an index: a MAC's uniqueness per owner and the lookup by MAC.
 */
export async function up0010Perf(raw: Kysely<unknown>): Promise<void> {
  const db = raw as unknown as Kysely<Database>;
  await db.schema
    .alterTable('metals')
    .addColumn('interfaces', 'text', (c) => c.notNull().defaultTo('[]'))
    .execute();
  const rows = await db.selectFrom('metal_interfaces').select(['metal_id', 'name', 'mac', 'type', 'pxe']).orderBy('metal_id').orderBy('position').execute();
  const byMetal = new Map<string, { name: string; mac: string; type: string; pxe: boolean }[]>();
  for (const r of rows) {
    const list = byMetal.get(r.metal_id) ?? [];
    if (list.length === 0) byMetal.set(r.metal_id, list);
    list.push({ name: r.name, mac: r.mac, type: r.type, pxe: r.pxe === 1 });
  }
  for (const [id, list] of byMetal) await db.updateTable('metals').set({ interfaces: JSON.stringify(list) }).where('id', '=', id).execute();
}

/**
 * 0015_perf — `metals.list_item`: the metal's list item as the JSON the list answers
 * (`storedMetalJson`: the list schema's fields in its order), written by the store with the row. On
 * SQLite a page of the list is then the database joining 100 stored strings into one blob instead
 * of the driver building 101 row objects of seven strings each (bench/RESULTS.md, metal-list).
 * Backfilled here from each row's own columns; nullable, and a page meeting a row without its item
 * is read the old way (the store checks), so nothing depends on the backfill having run first.
 */
export async function up0015Perf(raw: Kysely<unknown>): Promise<void> {
  const db = raw as unknown as Kysely<Database>;
  await db.schema.alterTable('metals').addColumn('list_item', 'text').execute();
  const rows = await db.selectFrom('metals').select(['id', 'name', 'labels', 'interfaces', 'engine', 'created_at', 'updated_at']).execute();
  for (const r of rows) {
    const item = storedMetalJson({ id: r.id as never, name: r.name, labelsJson: r.labels, interfacesJson: r.interfaces, engine: (r.engine ?? null) as Engine | null, createdAt: r.created_at, updatedAt: r.updated_at });
    await db.updateTable('metals').set({ list_item: item }).where('id', '=', r.id).execute();
  }
}

/**
 * 0018_list — `metal_list_changes`: one row per write to a metal (insert, update, delete), written by
 * triggers in the writing transaction, so the in-memory list view (list-view.ts) learns of every
 * committed change — whichever code path or connection made it — and of none that rolled back.
 * SQLite only: the view serves the embedded master's list; on PostgreSQL the list is read from the
 * database as before (several replicas write there), so nothing is created.
 */
export async function up0018List(raw: Kysely<unknown>): Promise<void> {
  if (raw.getExecutor().adapter instanceof PostgresAdapter) return;
  await sql`create table metal_list_changes (seq integer primary key autoincrement, owner_id text not null, metal_id text not null)`.execute(raw);
  for (const [event, row] of [
    ['insert', 'new'],
    ['delete', 'old'],
  ] as const) {
    await sql
      .raw(`create trigger metal_list_${event} after ${event} on metals begin insert into metal_list_changes (owner_id, metal_id) values (${row}.owner_id, ${row}.id); end`)
      .execute(raw);
  }
  // An update logs the metal under its old owner and, if it moved, under its new one.
  await sql
    .raw(
      'create trigger metal_list_update after update on metals begin ' +
        'insert into metal_list_changes (owner_id, metal_id) values (old.owner_id, old.id); ' +
        'insert into metal_list_changes (owner_id, metal_id) select new.owner_id, new.id where new.owner_id <> old.owner_id or new.id <> old.id; end',
    )
    .execute(raw);
}
