// Every paged list reads its page as one index range scan (db/keyset.ts, migration 0006): the plan
// SQLite makes for each store's real list query — captured as the store runs it, with a cursor —
// searches the list's keyset index and never sorts the owner's rows in a temporary B-tree (which
// would read every row of the owner before returning 100). B5, issue 10.
import type { OwnerId, SpaceId } from '@tips/core';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KyselyDiscoveryStore } from '../domains/discovery/store.kysely.ts';
import { KyselyEnrollmentStore } from '../domains/enrollment/store.kysely.ts';
import { KyselyGatewayStore } from '../domains/gateways/store.kysely.ts';
import { KyselyGlazeStore } from '../domains/glazes/store.kysely.ts';
import { KyselyKeyStore } from '../domains/keys/store.kysely.ts';
import { KyselyMetalStore } from '../domains/metals/store.kysely.ts';
import { KyselyOwnerStore } from '../domains/owners/store.kysely.ts';
import { KyselySpaceStore } from '../domains/spaces/store.kysely.ts';
import { applyKeyset, containsText, type KeysetWindow } from './keyset.ts';
import { migrateToLatest } from './migrations.ts';
import type { Database } from './schema.ts';

const OWNER = 'own_0000000000000000000000000a' as OwnerId;
const W: KeysetWindow = { limit: 101, after: { at: '2030-01-01T00:00:00.000Z', id: 'x_0000000000000000000000000a' } };

let sqlite: SQLite.Database;
let db: Kysely<Database>;
let captured: { sql: string; parameters: readonly unknown[] }[] = [];

beforeAll(async () => {
  sqlite = new SQLite(':memory:');
  db = new Kysely<Database>({
    dialect: new SqliteDialect({ database: sqlite }),
    log: (e) => {
      if (e.level === 'query') captured.push({ sql: e.query.sql, parameters: e.query.parameters });
    },
  });
  await migrateToLatest(db as unknown as Kysely<unknown>);
});
afterAll(async () => db.destroy());

/** Runs `list` and returns SQLite's plan of the query it ran (the one with a LIMIT). */
async function planOf(list: () => Promise<unknown>): Promise<string> {
  captured = [];
  await list();
  const q = captured.find((c) => /\blimit\b/i.test(c.sql));
  if (!q) throw new Error(`no paged query among: ${captured.map((c) => c.sql).join('; ')}`);
  const params = q.parameters.map((p) => (typeof p === 'boolean' ? Number(p) : p));
  return (sqlite.prepare(`EXPLAIN QUERY PLAN ${q.sql}`).all(...params) as { detail: string }[]).map((r) => r.detail).join('\n');
}

describe('B5 every paged list is one range scan of its keyset index (SQLite plans of the stores’ own queries)', () => {
  const cases: [string, string, () => Promise<unknown>][] = [
    ['owners', 'owners_keyset', () => new KyselyOwnerStore(db).listOwners(W)],
    ['tokens', 'api_tokens_keyset', () => new KyselyOwnerStore(db).listTokens(OWNER, W)],
    ['metals', 'metals_keyset', () => new KyselyMetalStore(db).list(OWNER, {}, W)],
    ['metals by label', 'metals_keyset', () => new KyselyMetalStore(db).list(OWNER, { label: { key: 'rack', value: 'r1' } }, W)],
    ['spaces', 'spaces_keyset', () => new KyselySpaceStore(db).list(OWNER, undefined, W)],
    // The primary key (space_id, metal_id, interface_name) is the members' keyset index.
    ['Space members', 'sqlite_autoindex_space_members_1', () => new KyselySpaceStore(db).members('spc_0000000000000000000000000a' as SpaceId, W)],
    ['glazes', 'glazes_keyset', () => new KyselyGlazeStore(db).list(OWNER, undefined, W)],
    ['gateways', 'gateways_keyset', () => new KyselyGatewayStore(db).list(OWNER, W)],
    ['operator keys', 'operator_keys_keyset', () => new KyselyKeyStore(db).list(OWNER, true, W)],
    ['enrollment secrets', 'enrollment_secrets_keyset', () => new KyselyEnrollmentStore(db).listSecrets(OWNER, W)],
    ['enrollment certificates', 'enrollment_certificates_keyset', () => new KyselyEnrollmentStore(db).listCertificates(OWNER, undefined, W)],
    ['registrations, newest first', 'discovery_registrations_keyset', () => new KyselyDiscoveryStore(db).list(OWNER, { limit: 101, before: W.after })],
    ['registrations, oldest first', 'discovery_registrations_keyset', () => new KyselyDiscoveryStore(db).list(OWNER, { limit: 101, after: W.after })],
  ];

  it.each(cases)('%s: searches %s, sorts nothing', async (_list, index, list) => {
    const plan = await planOf(list);
    expect(plan).toMatch(new RegExp(`(SEARCH|SCAN) \\S+ USING (COVERING )?INDEX ${index}\\b`));
    expect(plan).not.toContain('TEMP B-TREE');
    // Bounded by the owner (or the Space): never a scan of the whole table.
    expect(plan).not.toMatch(/^SCAN (?!.*USING)/m);
  });

  it('metals, the page joined by SQLite (0015): one range scan searches metals_keyset, nothing sorted, no table scanned', async () => {
    const plan = await planOf(() => new KyselyMetalStore(db).listPageJson(OWNER, W));
    expect(plan.match(/SEARCH metals USING (COVERING )?INDEX metals_keyset \(owner_id=\? AND \(created_at,id\)>\(\?,\?\)\)/g)).toHaveLength(1);
    expect(plan).not.toContain('TEMP B-TREE');
    // Only the subquery's own rows are scanned (a co-routine: (subquery-n)), never a table.
    const scans = plan.match(/^SCAN .*/gm) ?? [];
    expect(scans.length).toBeGreaterThan(0);
    for (const l of scans) expect(l).toMatch(/^SCAN \(subquery-\d+\)$/);
  });

  it('the plan check fails on a query the index cannot serve (it is not vacuous)', async () => {
    const plan = await planOf(() => db.selectFrom('metals').selectAll().where('owner_id', '=', OWNER).orderBy('updated_at').limit(101).execute());
    expect(plan).toContain('TEMP B-TREE');
  });
});

describe('B5 applyKeyset and containsText answer the right rows (SQLite)', () => {
  const at = (n: number) => `2030-01-0${n}T00:00:00.000Z`;
  // (created_at, id): two rows share a time, so the ID breaks the tie.
  const rows = [
    ['mtl_a', at(1)],
    ['mtl_b', at(2)],
    ['mtl_c', at(2)],
    ['mtl_d', at(3)],
    ['mtl_e', at(4)],
  ] as const;
  beforeAll(async () => {
    await db
      .insertInto('metals')
      .values(rows.map(([id, t]) => ({ id, owner_id: OWNER, name: id, labels: id === 'mtl_c' ? '{"Rack":"r1"}' : '{"rack":"r1"}', interfaces: '[]', created_at: t, updated_at: t })))
      .execute();
  });
  const ids = async (window: KeysetWindow | undefined, direction?: 'asc' | 'desc') =>
    (await applyKeyset(db.selectFrom('metals').select('id').where('owner_id', '=', OWNER), 'created_at', 'id', window, direction).execute()).map((r) => r.id);

  it('orders by (at, id) both ways; a window takes `limit` rows strictly after (or before) its position', async () => {
    expect(await ids(undefined)).toEqual(['mtl_a', 'mtl_b', 'mtl_c', 'mtl_d', 'mtl_e']);
    expect(await ids(undefined, 'desc')).toEqual(['mtl_e', 'mtl_d', 'mtl_c', 'mtl_b', 'mtl_a']);
    expect(await ids({ limit: 2 })).toEqual(['mtl_a', 'mtl_b']);
    // After (at 2, mtl_b): its twin at the same time with a greater ID comes next, itself never again.
    expect(await ids({ limit: 2, after: { at: at(2), id: 'mtl_b' } })).toEqual(['mtl_c', 'mtl_d']);
    expect(await ids({ limit: 10, after: { at: at(2), id: 'mtl_c' } })).toEqual(['mtl_d', 'mtl_e']);
    expect(await ids({ limit: 2, after: { at: at(2), id: 'mtl_c' } }, 'desc')).toEqual(['mtl_b', 'mtl_a']);
    expect(await ids({ limit: 2, after: { at: at(4), id: 'mtl_e' } })).toEqual([]);
  });

  it('containsText is a case-sensitive substring test (SQLite LIKE would ignore case)', async () => {
    const found = async (needle: string) =>
      (await db.selectFrom('metals').select('id').where(containsText(db, 'labels', needle)).orderBy('id').execute()).map((r) => r.id);
    expect(await found('"rack":"r1"')).toEqual(['mtl_a', 'mtl_b', 'mtl_d', 'mtl_e']);
    expect(await found('"Rack":"r1"')).toEqual(['mtl_c']);
    expect(await found('"rack":"r2"')).toEqual([]);
  });
});
