import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { isUniqueViolation } from '../../db/database.ts';
import { migrations } from '../../db/migrations.ts';
import type { Database } from '../../db/schema.ts';

/** Both adapters, opened without migrating, so the test can stop at 0004 and put data in first. */
const adapters: [string, () => Promise<{ db: Kysely<Database>; cleanup: () => Promise<void> }>][] = [
  [
    'SQLite',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tips-mig5-'));
      const sqlite = new SQLite(join(dir, 'm.db'));
      sqlite.pragma('foreign_keys = ON');
      const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
      return { db, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  ],
  [
    'PostgreSQL',
    async () => {
      const url = inject('pgUrl');
      const schema = `mig5_${randomBytes(6).toString('hex')}`;
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query(`CREATE SCHEMA ${schema}`);
      const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2, options: `-c search_path=${schema}` }) }) });
      return {
        db,
        cleanup: async () => {
          await admin.query(`DROP SCHEMA ${schema} CASCADE`);
          await admin.end();
        },
      };
    },
  ],
];

describe.each(adapters)('T6 T3 migrations 0005 (a MAC is unique per owner), 0010 (interfaces copied onto metals) and 0015 (list items), on %s', (_name, open) => {
  it('keeps every interface with its owner, then lets another owner use the MAC but not the same owner', async () => {
    const { db, cleanup } = await open();
    try {
      const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
      expect((await migrator.migrateTo('0004_gateway_certificates')).error).toBeUndefined();
      const metal = (id: string, owner: string) => ({ id, owner_id: owner, name: id, labels: '{}', created_at: 'x', updated_at: 'x' });
      // The metals table as 0001 made it (0010 adds `interfaces`).
      const legacyMetals = db as unknown as Kysely<{ metals: Omit<Database['metals'], 'interfaces'> }>;
      await legacyMetals.insertInto('metals').values([metal('mtl_a', 'own_a'), metal('mtl_b', 'own_b')]).execute();
      const legacy = db as unknown as Kysely<{ metal_interfaces: Omit<Database['metal_interfaces'], 'owner_id'> }>;
      await legacy
        .insertInto('metal_interfaces')
        .values([
          { metal_id: 'mtl_a', name: 'eth0', mac: '02:00:00:00:00:01', type: 'ethernet', pxe: 1, position: 0 },
          { metal_id: 'mtl_a', name: 'wlan0', mac: '02:00:00:00:00:02', type: 'wifi', pxe: 0, position: 1 },
          { metal_id: 'mtl_b', name: 'eth0', mac: '02:00:00:00:00:03', type: 'ethernet', pxe: 1, position: 0 },
        ])
        .execute();
      const done = await migrator.migrateToLatest();
      expect(done.error).toBeUndefined();
      expect(done.results?.map((r) => r.migrationName)).toContain('0005_metal_mac_per_owner');
      const rows = await db.selectFrom('metal_interfaces').selectAll().orderBy('metal_id').orderBy('position').execute();
      expect(rows.map((r) => [r.metal_id, r.owner_id, r.name, r.mac, r.type, Number(r.pxe), Number(r.position)])).toEqual([
        ['mtl_a', 'own_a', 'eth0', '02:00:00:00:00:01', 'ethernet', 1, 0],
        ['mtl_a', 'own_a', 'wlan0', '02:00:00:00:00:02', 'wifi', 0, 1],
        ['mtl_b', 'own_b', 'eth0', '02:00:00:00:00:03', 'ethernet', 1, 0],
      ]);
      // 0010: each metal carries its interface list (position order, pxe a boolean), copied from the rows.
      expect(done.results?.map((r) => r.migrationName)).toContain('0010_perf');
      const copies = await db.selectFrom('metals').select(['id', 'interfaces']).orderBy('id').execute();
      expect(copies.map((r) => [r.id, JSON.parse(r.interfaces)])).toEqual([
        [
          'mtl_a',
          [
            { name: 'eth0', mac: '02:00:00:00:00:01', type: 'ethernet', pxe: true },
            { name: 'wlan0', mac: '02:00:00:00:00:02', type: 'wifi', pxe: false },
          ],
        ],
        ['mtl_b', [{ name: 'eth0', mac: '02:00:00:00:00:03', type: 'ethernet', pxe: true }]],
      ]);
      // 0015: each metal carries its list item, the exact text the list answers for it, built from its row.
      expect(done.results?.map((r) => r.migrationName)).toContain('0015_perf');
      const items = await db.selectFrom('metals').select(['id', 'list_item']).orderBy('id').execute();
      expect(items.map((r) => r.list_item)).toEqual([
        '{"id":"mtl_a","name":"mtl_a","labels":{},"interfaces":[{"name":"eth0","mac":"02:00:00:00:00:01","type":"ethernet","pxe":true},{"name":"wlan0","mac":"02:00:00:00:00:02","type":"wifi","pxe":false}],"engine":null,"createdAt":"x","updatedAt":"x"}',
        '{"id":"mtl_b","name":"mtl_b","labels":{},"interfaces":[{"name":"eth0","mac":"02:00:00:00:00:03","type":"ethernet","pxe":true}],"engine":null,"createdAt":"x","updatedAt":"x"}',
      ]);
      // Owner B may now hold owner A's MAC; a second metal of owner A may not.
      await db.insertInto('metal_interfaces').values({ metal_id: 'mtl_b', owner_id: 'own_b', name: 'eth1', mac: '02:00:00:00:00:01', type: 'ethernet', pxe: 0, position: 1 }).execute();
      await legacyMetals.insertInto('metals').values(metal('mtl_a2', 'own_a')).execute();
      expect((await db.selectFrom('metals').select('interfaces').where('id', '=', 'mtl_a2').executeTakeFirstOrThrow()).interfaces).toBe('[]');
      const dup = await db
        .insertInto('metal_interfaces')
        .values({ metal_id: 'mtl_a2', owner_id: 'own_a', name: 'eth0', mac: '02:00:00:00:00:01', type: 'ethernet', pxe: 0, position: 0 })
        .execute()
        .catch((e: unknown) => e);
      expect(isUniqueViolation(dup)).toBe(true);
      // The foreign key survived the rebuild: deleting a metal still takes its interfaces.
      await db.deleteFrom('metals').where('id', '=', 'mtl_b').execute();
      expect(await db.selectFrom('metal_interfaces').select('metal_id').where('metal_id', '=', 'mtl_b').execute()).toEqual([]);
    } finally {
      await db.destroy();
      await cleanup();
    }
  });
});
