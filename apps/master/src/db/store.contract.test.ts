import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GlazeId, Mac, OwnerId, SpaceId, TipsId } from '@tips/core';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createServices, type Services } from '../app.ts';
import { FsBlobStore } from '../blob/fs-blob-store.ts';
import { KyselyGlazeStore } from '../domains/glazes/store.kysely.ts';
import { KyselyMetalStore } from '../domains/metals/store.kysely.ts';
import { KyselySpaceStore } from '../domains/spaces/store.kysely.ts';
import { type Db, isUniqueViolation, openDatabase } from './database.ts';

/**
 * The Store port's contract, run against both adapters: embedded SQLite and a real PostgreSQL
 * (the throw-away cluster `npm test` starts). The same Kysely queries must behave the same.
 */
const adapters: [string, () => Promise<{ db: Db; cleanup: () => Promise<void> }>][] = [
  [
    'SQLite',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tips-contract-'));
      const db = await openDatabase({ kind: 'sqlite', file: join(dir, 'c.db') });
      return { db, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  ],
  [
    'PostgreSQL',
    async () => {
      const url = inject('pgUrl');
      const schema = `contract_${randomBytes(6).toString('hex')}`;
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query(`CREATE SCHEMA ${schema}`);
      const db = await openDatabase({ kind: 'postgres', url, schema, poolSize: 4 });
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

describe.each(adapters)('T2 Store contract on %s', (_name, open) => {
  let db: Db;
  let cleanup: () => Promise<void>;
  let services: Services;
  let blobDir: string;
  const owner = 'own_00000000000000000000000001' as OwnerId;

  beforeAll(async () => {
    ({ db, cleanup } = await open());
    blobDir = mkdtempSync(join(tmpdir(), 'tips-contract-blobs-'));
    services = createServices({ db, blobs: await FsBlobStore.open(blobDir) });
  });
  afterAll(async () => {
    await db.destroy();
    await cleanup();
    rmSync(blobDir, { recursive: true, force: true });
  });

  it('migrates idempotently', async () => {
    const tables = await db.introspection.getTables();
    expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(['owners', 'api_tokens', 'metals', 'metal_interfaces', 'spaces', 'space_members', 'glazes', 'glaze_spaces']));
  });

  it('round-trips metals with ordered interfaces, labels and owner scoping', async () => {
    const store = new KyselyMetalStore(db);
    const metal = {
      id: 'mtl_0000000000000000000000000a' as TipsId,
      ownerId: owner,
      name: 'pi',
      labels: { a: '1' },
      interfaces: [
        { name: 'wlan0', mac: '02:00:00:00:00:02' as Mac, type: 'wifi' as const, pxe: false },
        { name: 'eth0', mac: '02:00:00:00:00:01' as Mac, type: 'ethernet' as const, pxe: true },
      ],
      createdAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:00:00.000Z',
    };
    await store.insert(metal);
    expect(await store.findById(owner, metal.id)).toEqual(metal);
    expect(await store.findById('own_00000000000000000000000002' as OwnerId, metal.id)).toBeUndefined();
    expect(await store.findMacHolders(['02:00:00:00:00:01' as Mac])).toEqual([
      { mac: '02:00:00:00:00:01', metalId: metal.id, ownerId: owner, metalName: 'pi', interfaceName: 'eth0' },
    ]);
    await store.update({ ...metal, interfaces: [metal.interfaces[1]!], labels: {} });
    expect((await store.findByName(owner, 'pi'))?.interfaces.map((i) => i.name)).toEqual(['eth0']);
  });

  it('reports a duplicate MAC as a unique violation, and the transaction leaves nothing', async () => {
    const store = new KyselyMetalStore(db);
    const dup = {
      id: 'mtl_0000000000000000000000000b' as TipsId,
      ownerId: owner,
      name: 'dup',
      labels: {},
      interfaces: [{ name: 'e', mac: '02:00:00:00:00:01' as Mac, type: 'other' as const, pxe: false }],
      createdAt: 'x',
      updatedAt: 'x',
    };
    const err = await store.insert(dup).catch((e: unknown) => e);
    expect(isUniqueViolation(err)).toBe(true);
    expect(await store.findByName(owner, 'dup')).toBeUndefined();
  });

  it('keeps one default Space per metal across Spaces', async () => {
    const store = new KyselySpaceStore(db);
    const metalId = 'mtl_0000000000000000000000000a' as TipsId;
    const mk = (id: string, name: string) => ({ id: id as SpaceId, ownerId: owner, name, phase: 1 as const, glazeId: null, createdAt: 'x', updatedAt: 'x' });
    await store.insert(mk('spc_0000000000000000000000000a', 's1'));
    await store.insert(mk('spc_0000000000000000000000000b', 's2'));
    await store.putMember('spc_0000000000000000000000000a' as SpaceId, { metalId, interfaces: ['eth0'], isDefault: true });
    await store.putMember('spc_0000000000000000000000000b' as SpaceId, { metalId, interfaces: ['eth0'], isDefault: true });
    const ms = await store.membershipsOfMetal(metalId);
    expect(ms.map((m) => [m.spaceName, m.isDefault])).toEqual([
      ['s1', false],
      ['s2', true],
    ]);
  });

  it('stores Glaze sizes beyond 32 bits and filters by Space', async () => {
    const store = new KyselyGlazeStore(db);
    const g = {
      id: 'glz_0000000000000000000000000a' as GlazeId,
      ownerId: owner,
      name: 'big',
      size: 5 * 2 ** 30,
      sha256: 'a'.repeat(64) as never,
      mediaType: 'application/octet-stream',
      createdAt: 'x',
      spaces: ['spc_0000000000000000000000000a' as SpaceId],
    };
    await store.insert(g);
    expect(await store.findById(owner, g.id)).toEqual(g);
    expect(await store.list(owner, 'spc_0000000000000000000000000a' as SpaceId)).toHaveLength(1);
    expect(await store.list(owner, 'spc_0000000000000000000000000b' as SpaceId)).toHaveLength(0);
  });

  it('runs the whole service layer: owners, tokens, metals, spaces', async () => {
    const admin = await services.owners.ensureAdmin();
    expect(admin).toBeDefined();
    expect(await services.owners.ensureAdmin()).toBeUndefined();
    const who = await services.owners.authenticate(admin!.token);
    expect(who.isAdmin).toBe(true);
    const metal = await services.metals.create(who.id, { name: 'svc', interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:33', type: 'ethernet', pxe: true }] });
    const space = await services.spaces.create(who.id, { name: 'os', phase: 1 });
    await services.spaces.addMember(who.id, 'os', { metal: 'svc', interfaces: ['eth0'], default: true });
    expect((await services.spaces.defaultSpaceOf(metal.id))?.spaceId).toBe(space.id);
    expect((await services.metals.findByMac('02:00:00:00:00:33' as Mac))?.metal.id).toBe(metal.id);
  });

  it('runs raw SQL the same on both (case-sensitive text comparison)', async () => {
    const r = await sql<{ v: number }>`select count(*) as v from metals where name = ${'PI'}`.execute(db);
    expect(Number(r.rows[0]?.v)).toBe(0);
  });
});
