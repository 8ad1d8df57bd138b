import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GatewayId, GlazeId, Mac, OwnerId, SpaceId, TipsId } from '@tips/core';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createServices, type Services } from '../app.ts';
import { FsBlobStore } from '../blob/fs-blob-store.ts';
import { KyselyDiscoveryStore } from '../domains/discovery/store.kysely.ts';
import type { IssuedCertificate } from '../domains/enrollment/model.ts';
import { KyselyEnrollmentStore } from '../domains/enrollment/store.kysely.ts';
import { KyselyGatewayStore } from '../domains/gateways/store.kysely.ts';
import { KyselyGlazeStore } from '../domains/glazes/store.kysely.ts';
import { storedMetalJson } from '../domains/metals/model.ts';
import { KyselyMetalStore } from '../domains/metals/store.kysely.ts';
import { KyselySpaceStore } from '../domains/spaces/store.kysely.ts';
import { KyselyOwnerStore } from '../domains/owners/store.kysely.ts';
import { joinedPageBody, readPage, readPageJson } from '../http/pagination.ts';
import { type Db, isUniqueViolation, openDatabase } from './database.ts';
import { applyKeyset, type KeysetPosition, type KeysetWindow } from './keyset.ts';

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
    expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(['owners', 'api_tokens', 'metals', 'metal_interfaces', 'spaces', 'space_members', 'glazes', 'glaze_spaces', 'gateways', 'gateway_nonces', 'gateway_tables', 'gateway_commands', 'discovery_registrations', 'discovery_blocks']));
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
      engine: 'tinkerbell' as const,
      createdAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:00:00.000Z',
    };
    await store.insert(metal);
    expect(await store.findById(owner, metal.id)).toEqual(metal);
    expect(await store.findById('own_00000000000000000000000002' as OwnerId, metal.id)).toBeUndefined();
    expect(await store.findMacHolders(owner, ['02:00:00:00:00:01' as Mac])).toEqual([
      { mac: '02:00:00:00:00:01', metalId: metal.id, ownerId: owner, metalName: 'pi', interfaceName: 'eth0' },
    ]);
    // Both MACs name the one metal (once per interface); another owner's lookup and an unknown MAC find nothing.
    expect(await store.metalIdsHoldingMacs(owner, ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:0f:ff'] as Mac[])).toEqual([metal.id, metal.id]);
    expect(await store.metalIdsHoldingMacs('own_00000000000000000000000002' as OwnerId, ['02:00:00:00:00:01' as Mac])).toEqual([]);
    expect(await store.metalIdsHoldingMacs(owner, [])).toEqual([]);
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
      engine: null,
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
    const mk = (id: string, name: string) => ({ id: id as SpaceId, ownerId: owner, name, phase: 1 as const, glazeId: null, engine: 'builtin' as const, engineRules: [], createdAt: 'x', updatedAt: 'x' });
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

  it('keeps a Space’s engine rules in their order (0012_engines); none is stored as none', async () => {
    const store = new KyselySpaceStore(db);
    const s = { id: 'spc_0000000000000000000000000r' as SpaceId, ownerId: owner, name: 'rules', phase: 1 as const, glazeId: null, engine: 'builtin' as const, engineRules: [], createdAt: 'x', updatedAt: 'x' };
    await store.insert(s);
    expect((await store.findByName(owner, 'rules'))?.engineRules).toEqual([]);
    const rules = [
      { match: 'arch=arm64', engine: 'tinkerbell' as const },
      { match: 'rack=r7', engine: 'builtin' as const },
    ];
    await store.update({ ...s, engineRules: rules });
    expect((await store.findByName(owner, 'rules'))?.engineRules).toEqual(rules);
    await store.update({ ...s, engineRules: [] });
    expect((await store.findByName(owner, 'rules'))?.engineRules).toEqual([]);
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
      handler: 'rootfs-ab' as const,
      version: '1.4',
    };
    await store.insert(g);
    expect(await store.findById(owner, g.id)).toEqual(g);
    expect(await store.list(owner, 'spc_0000000000000000000000000a' as SpaceId)).toHaveLength(1);
    expect(await store.list(owner, 'spc_0000000000000000000000000b' as SpaceId)).toHaveLength(0);
  });

  it('T12 tells which blob keys a Glaze row references, across owners and beyond one statement', async () => {
    const store = new KyselyGlazeStore(db);
    await store.insert({ id: 'glz_0000000000000000000000000r' as GlazeId, ownerId: owner, name: 'ref', size: 1, sha256: 'b'.repeat(64) as never, mediaType: 'application/octet-stream', createdAt: 'x', spaces: [], handler: 'archive', version: null });
    const asked = [...Array.from({ length: 1200 }, (_, i) => `glz_orphan${i}`), 'glz_0000000000000000000000000r'];
    expect([...(await store.referencedBlobKeys(asked))]).toEqual(['glz_0000000000000000000000000r']);
    expect((await store.referencedBlobKeys([])).size).toBe(0);
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
    expect((await services.metals.findByMac(who.id, '02:00:00:00:00:33' as Mac))?.metal.id).toBe(metal.id);
  });

  it('T11 gateways: round-trips, spends an enrollment token exactly once under concurrency, deletes with its data', async () => {
    const store = new KyselyGatewayStore(db);
    const gw = (id: string, name: string) => ({
      id: id as GatewayId,
      ownerId: owner,
      name,
      publicKey: null,
      enrolledName: null,
      enrolledAt: null,
      enrollmentExpiresAt: '2026-01-02T00:00:00.000Z',
      createdAt: '2026-01-01T00:00:00.000Z',
      lastSeenAt: null,
    });
    await store.insert(gw('gwy_0000000000000000000000000a', 'gw-a'), 'hash-a');
    await store.insert(gw('gwy_0000000000000000000000000b', 'gw-b'), 'hash-b');
    expect(await store.findById('gwy_0000000000000000000000000a' as GatewayId)).toEqual(gw('gwy_0000000000000000000000000a', 'gw-a'));
    expect(isUniqueViolation(await store.insert(gw('gwy_0000000000000000000000000c', 'gw-a'), 'hash-c').catch((e: unknown) => e))).toBe(true);
    expect((await store.list(owner)).map((g) => g.name)).toEqual(['gw-a', 'gw-b']);
    expect(await store.enroll('hash-a', '2026-01-03T00:00:00.000Z', 'PEM', null)).toBeUndefined();
    const tries = await Promise.all(Array.from({ length: 10 }, (_, i) => store.enroll('hash-a', '2026-01-01T12:00:00.000Z', `PEM${i}`, 'host')));
    const winners = tries.filter((t) => t !== undefined);
    expect(winners).toHaveLength(1);
    expect(winners[0]).toMatchObject({ enrolledName: 'host', enrolledAt: '2026-01-01T12:00:00.000Z', enrollmentExpiresAt: null });
    expect((await store.findById('gwy_0000000000000000000000000a' as GatewayId))?.publicKey).toBe(winners[0]!.publicKey);
    const id = 'gwy_0000000000000000000000000a' as GatewayId;
    const idB = 'gwy_0000000000000000000000000b' as GatewayId;
    const use = (gatewayId: GatewayId, nonce: string, timestamp = 2_000) => ({ gatewayId, nonce, timestamp });
    expect(await store.rememberNonces([use(id, 'n1')])).toEqual([true]);
    expect(await store.rememberNonces([use(id, 'n2'), use(id, 'n1'), use(idB, 'n1'), use(id, 'n2'), use(id, 'n3')])).toEqual([true, false, true, false, true]);
    await store.forgetNoncesBefore(3_000);
    expect(await store.rememberNonces([use(id, 'n1', 4_000), use(id, 'n2', 4_000)])).toEqual([true, true]);
    await store.forgetNoncesBefore(3_000);
    expect(await store.rememberNonces([use(id, 'n1', 4_000)])).toEqual([false]);
    expect(await store.rememberNonces(Array.from({ length: 1200 }, (_, i) => use(idB, `bulk${i % 1100}`, 4_000)))).toEqual(
      Array.from({ length: 1200 }, (_, i) => i < 1100),
    );
    await store.putTable({ gatewayId: id, rows: [{ mac: 'a', state: 'pending' }], updatedAt: 't1' });
    await store.putTable({ gatewayId: id, rows: [{ mac: 'b', state: 'active', nat: [{ protocol: 'tcp' }] }], updatedAt: 't2' });
    expect(await store.getTable(id)).toEqual({ gatewayId: id, rows: [{ mac: 'b', state: 'active', nat: [{ protocol: 'tcp' }] }], updatedAt: 't2' });
    for (const [n, seq] of [3, 1, 2, 4].entries()) {
      await store.enqueue({ id: `cmd_${seq}`, gatewayId: id, seq: 1_700_000_000_000_000 + seq!, command: { type: 'clear', mac: `m${n}` }, createdAt: 'x' }, 3);
    }
    expect((await store.pending(id)).map((c) => c.id)).toEqual(['cmd_2', 'cmd_3', 'cmd_4']);
    expect(await store.ack(id, 'cmd_3')).toBe(true);
    expect(await store.ack('gwy_0000000000000000000000000b' as GatewayId, 'cmd_2')).toBe(false);
    expect((await store.pending(id)).map((c) => [c.id, c.seq])).toEqual([
      ['cmd_2', 1_700_000_000_000_002],
      ['cmd_4', 1_700_000_000_000_004],
    ]);
    expect(await store.delete('own_00000000000000000000000002' as OwnerId, id)).toBe(false);
    expect(await store.delete(owner, id)).toBe(true);
    expect(await store.findById(id)).toBeUndefined();
    expect(await store.getTable(id)).toBeUndefined();
    expect(await store.pending(id)).toEqual([]);
  });

  it('T9 discovery: records decisions in batches, lists with filters and keyset pages, keeps blocks', async () => {
    const store = new KyselyDiscoveryStore(db);
    const rec = (n: number, over: Record<string, unknown> = {}) => ({
      id: `reg_${String(n).padStart(4, '0')}`,
      at: `2026-01-01T00:00:${String(Math.floor(n / 10)).padStart(2, '0')}.000Z`,
      ownerId: owner,
      gatewayId: 'gwy_0000000000000000000000000b' as GatewayId,
      mac: `02:00:00:00:01:${(n % 4).toString(16).padStart(2, '0')}` as Mac,
      ip: '10.0.0.2',
      gatewayInterface: 'lan0',
      interfaceType: 'ethernet' as const,
      pxe: n % 2 === 0,
      hostname: n === 0 ? 'h0' : null,
      decision: (n % 3 === 0 ? 'active' : 'blocked') as 'active' | 'blocked',
      reason: n % 3 === 0 ? null : ('unknown_mac' as const),
      tipsId: n % 3 === 0 ? ('mtl_0000000000000000000000000a' as TipsId) : null,
      idempotencyKey: null,
      ...over,
    });
    await store.record(Array.from({ length: 120 }, (_, n) => rec(n)));
    await store.record([rec(500, { ownerId: 'own_00000000000000000000000002', gatewayId: 'gwy_0000000000000000000000000c' })]);
    const newest = await store.list(owner, { limit: 2 });
    expect(newest.map((r) => r.id)).toEqual(['reg_0119', 'reg_0118']);
    expect((await store.list(owner, { limit: 1000, after: { at: '', id: '' } }))[0]).toEqual(rec(0));
    expect(await store.list(owner, { limit: 1000, decision: 'blocked', mac: '02:00:00:00:01:01' as Mac })).toHaveLength(20);
    expect(await store.list(owner, { limit: 1000, since: '2026-01-01T00:00:11.000Z' })).toHaveLength(10);
    expect(await store.list(owner, { limit: 1000, gatewayId: 'gwy_0000000000000000000000000c' })).toEqual([]);
    const seen: string[] = [];
    let after = { at: '', id: '' };
    for (;;) {
      const page = await store.list(owner, { limit: 7, after });
      seen.push(...page.map((r) => r.id));
      if (page.length < 7) break;
      after = { at: page.at(-1)!.at, id: page.at(-1)!.id };
    }
    expect(seen).toEqual(Array.from({ length: 120 }, (_, n) => rec(n).id));
    expect(await store.gatewaysThatBlocked(['02:00:00:00:01:01' as Mac, '02:00:00:00:01:09' as Mac])).toEqual([
      { gatewayId: 'gwy_0000000000000000000000000b', mac: '02:00:00:00:01:01' },
    ]);
    const metalId = 'mtl_0000000000000000000000000a' as TipsId;
    expect(await store.findBlock(metalId)).toBeUndefined();
    await store.putBlock({ metalId, ownerId: owner, reason: 'r1', blockedAt: 't1' });
    await store.putBlock({ metalId, ownerId: owner, reason: null, blockedAt: 't2' });
    expect(await store.findBlock(metalId)).toEqual({ metalId, ownerId: owner, reason: null, blockedAt: 't2' });
    expect(await store.removeBlock(metalId)).toBe(true);
    expect(await store.removeBlock(metalId)).toBe(false);
  });

  it('issue 13 T9: a registration retried under its idempotency key is recorded once and answered the same, single or batch, even concurrently', async () => {
    const { enrollmentToken } = await services.gateways.create(owner, { name: 'idem-gw' });
    const gateway = await services.gateways.enroll({ enrollmentToken, publicKey: generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString() });
    const mac = (n: number) => `02:1d:00:00:00:${n.toString(16).padStart(2, '0')}`;
    await services.spaces.create(owner, { name: 'idem-os', phase: 1 });
    const metal = await services.metals.create(owner, { name: 'idem-pi', interfaces: [{ name: 'eth0', mac: mac(0), type: 'ethernet', pxe: true }] });
    await services.spaces.addMember(owner, 'idem-os', { metal: 'idem-pi', interfaces: ['eth0'], default: true });
    const item = (n: number, key?: string) => ({ mac: mac(n), ip: `10.1.0.${n + 2}`, gatewayInterface: 'lan0', ...(key ? { idempotencyKey: key } : {}) });
    const batch = [item(0, 'batch-one-0'), item(1, 'batch-one-1'), item(2, 'batch-one-2')];
    const records = async () => {
      const all = await services.discovery.list(owner, { gatewayId: gateway.id, limit: '1000' }, false);
      const n = new Map<string, number>();
      for (const r of all) n.set(r.mac, (n.get(r.mac) ?? 0) + 1);
      return n;
    };

    const first = await services.discovery.registerBatch(gateway, batch);
    expect(first).toEqual([{ decision: 'active', tipsId: metal.id }, { decision: 'blocked', reason: 'unknown_mac' }, { decision: 'blocked', reason: 'unknown_mac' }]);
    // The metal is blocked meanwhile: the retry still gets the decision that was recorded, and adds nothing.
    await services.discovery.block(owner, 'idem-pi');
    expect(await services.discovery.registerBatch(gateway, batch)).toEqual(first);
    // The gateway retries one row of a failed batch on its own, under the same key.
    expect(await services.discovery.register(gateway, item(0, 'batch-one-0'))).toEqual(first[0]);
    expect(await records()).toEqual(new Map([0, 1, 2].map((n) => [mac(n), 1])));

    // Retries arriving together (one group commit, or two replicas' transactions) still make one record each.
    const again = [item(3, 'batch-two-3'), item(0, 'batch-two-0')];
    const answers = await Promise.all([services.discovery.registerBatch(gateway, again), services.discovery.registerBatch(gateway, again), services.discovery.register(gateway, again[1]!)]);
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]![1]);
    expect(answers[0]).toEqual([{ decision: 'blocked', reason: 'unknown_mac' }, { decision: 'blocked', reason: 'metal_blocked', tipsId: metal.id }]);
    expect(await records()).toEqual(new Map([...[0, 1, 2].map((n) => [mac(n), 1] as const), [mac(0), 2], [mac(3), 1]]));

    // Without a key every registration is its own decision (as before 0016).
    await services.discovery.register(gateway, item(4));
    await services.discovery.register(gateway, item(4));
    expect((await records()).get(mac(4))).toBe(2);

    // A key reused for another registration is refused (409), and records nothing; a key twice in one batch is a 400.
    await expect(services.discovery.register(gateway, item(5, 'batch-one-1'))).rejects.toMatchObject({ code: 'idempotency_key_reused', field: 'idempotencyKey' });
    await expect(services.discovery.registerBatch(gateway, [item(6, 'fresh-key-6'), item(5, 'batch-one-2')])).rejects.toMatchObject({ code: 'idempotency_key_reused', field: 'items[1].idempotencyKey' });
    await expect(services.discovery.registerBatch(gateway, [item(7, 'dup-key-77'), item(8, 'dup-key-77')])).rejects.toMatchObject({ field: 'items[1].idempotencyKey' });
    const after = await records();
    for (const n of [5, 7, 8]) expect(after.has(mac(n)), mac(n)).toBe(false);
    // The other item of the refused batch was recorded under its key: its retry is answered from it.
    expect(after.get(mac(6))).toBe(1);
    expect(await services.discovery.register(gateway, item(6, 'fresh-key-6'))).toEqual({ decision: 'blocked', reason: 'unknown_mac' });
    expect((await records()).get(mac(6))).toBe(1);
  });

  it('runs raw SQL the same on both (case-sensitive text comparison)', async () => {
    const r = await sql<{ v: number }>`select count(*) as v from metals where name = ${'PI'}`.execute(db);
    expect(Number(r.rows[0]?.v)).toBe(0);
  });
});

describe.each(adapters)('S6 Enrollment store contract on %s', (_name, open) => {
  let db: Db;
  let cleanup: () => Promise<void>;
  let store: KyselyEnrollmentStore;
  const owner = 'own_00000000000000000000000009' as OwnerId;
  const metal = 'mtl_00000000000000000000000009';
  const cert = (serial: string, over: Partial<IssuedCertificate> = {}): IssuedCertificate => ({
    serial,
    ownerId: owner,
    subject: { kind: 'metal', id: metal },
    fingerprint: `fp-${serial}`,
    publicKey: 'MCowBQYDK2VwAyEA',
    notBefore: '2026-01-01T00:00:00.000Z',
    notAfter: '2026-01-08T00:00:00.000Z',
    status: 'active',
    issuedVia: 'enroll',
    secretId: 'ens_1',
    revokedAt: null,
    revokeReason: null,
    createdAt: '2026-01-01T00:00:00.000Z',
    ...over,
  });
  const secret = (id: string, maxUses: number, expiresAt = '2026-02-01T00:00:00.000Z') => ({
    id,
    ownerId: owner,
    scope: { kind: 'metal' as const, id: metal },
    method: 'secret' as const,
    maxUses,
    uses: 0,
    expiresAt,
    createdAt: '2026-01-01T00:00:00.000Z',
    revokedAt: null,
  });

  beforeAll(async () => {
    ({ db, cleanup } = await open());
    store = new KyselyEnrollmentStore(db);
  });
  afterAll(async () => {
    await db.destroy();
    await cleanup();
  });

  it('counts an N-use secret exactly when enrollments race, and keeps one active certificate per metal', async () => {
    await store.insertSecret(secret('ens_race', 3), 'a'.repeat(64));
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => store.enrollWithSecret('ens_race', '2026-01-01T00:00:00.000Z', cert(`race${i}`))));
    expect(results.filter(Boolean)).toHaveLength(3);
    expect((await store.findSecret('ens_race'))?.secret.uses).toBe(3);
    const certs = await store.listCertificates(owner);
    expect(certs).toHaveLength(3);
    // Every new certificate stays active until one is proven (used); that one supersedes the others of the metal issued no later.
    expect(certs.filter((c) => c.status === 'active')).toHaveLength(3);
    const newest = certs.reduce((a, b) => (b.createdAt > a.createdAt || (b.createdAt === a.createdAt && b.serial > a.serial) ? b : a));
    expect(await store.supersedeOlder(newest, '2026-01-01T00:00:01.000Z')).toBe(2);
    const after = await store.listCertificates(owner);
    expect(after.filter((c) => c.status === 'active').map((c) => c.serial)).toEqual([newest.serial]);
    expect(after.filter((c) => c.revokeReason === 'superseded')).toHaveLength(2);
  });

  it('spends nothing from an expired or revoked secret, and re-enrolls only from an active certificate', async () => {
    await store.insertSecret(secret('ens_old', 5, '2026-01-01T00:00:00.000Z'), 'b'.repeat(64));
    expect(await store.enrollWithSecret('ens_old', '2026-01-01T00:00:00.000Z', cert('old1'))).toBe(false);
    await store.insertSecret(secret('ens_rev', 5), 'c'.repeat(64));
    expect(await store.revokeSecret(owner, 'ens_rev', '2026-01-01T00:00:00.000Z')).toBe(true);
    expect(await store.enrollWithSecret('ens_rev', '2026-01-01T00:00:00.000Z', cert('rev1'))).toBe(false);
    expect(await store.findCertificate('old1')).toBeUndefined();
    expect((await store.findSecret('ens_old'))?.secret.uses).toBe(0);
    const active = (await store.listCertificates(owner)).find((c) => c.status === 'active')!;
    const next = cert('next', { issuedVia: 'reenroll', createdAt: '2026-01-02T00:00:00.000Z' });
    expect(await store.reenroll(active.serial, '2026-01-02T00:00:00.000Z', next)).toBe(true);
    // The previous certificate stays until the new one is proven; then it cannot renew any more.
    expect((await store.findCertificate(active.serial))?.status).toBe('active');
    expect(await store.supersedeOlder(next, '2026-01-02T00:00:01.000Z')).toBe(1);
    expect(await store.reenroll(active.serial, '2026-01-02T00:00:00.000Z', cert('again', { issuedVia: 'reenroll' }))).toBe(false);
    expect(await store.revokeSubject({ kind: 'metal', id: metal }, '2026-01-03T00:00:00.000Z', 'blocked')).toBe(1);
    expect((await store.findCertificate('next'))?.status).toBe('revoked');
  });

  it('S14 retires a metal once: its active certificates and unrevoked metal secrets revoked in one go; the first time stays', async () => {
    await store.insertSecret(secret('ens_ret', 5), 'd'.repeat(64));
    expect(await store.enrollWithSecret('ens_ret', '2026-01-01T00:00:00.000Z', cert('ret1'))).toBe(true);
    expect(await store.retiredAt(metal)).toBeUndefined();
    const unrevoked = (await store.listSecrets(owner)).filter((x) => x.scope.id === metal && x.revokedAt === null).length;
    expect(unrevoked).toBeGreaterThan(0);
    expect(await store.retire(owner, metal, '2026-01-04T00:00:00.000Z')).toEqual({ retiredAt: '2026-01-04T00:00:00.000Z', certificates: 1, secrets: unrevoked });
    expect((await store.listSecrets(owner)).filter((x) => x.scope.id === metal && x.revokedAt === null)).toEqual([]);
    expect(await store.findCertificate('ret1')).toMatchObject({ status: 'revoked', revokeReason: 'retired' });
    expect((await store.findSecret('ens_ret'))?.secret.revokedAt).toBe('2026-01-04T00:00:00.000Z');
    expect(await store.retire(owner, metal, '2026-01-05T00:00:00.000Z')).toEqual({ retiredAt: '2026-01-04T00:00:00.000Z', certificates: 0, secrets: 0 });
    expect(await store.retiredAt(metal)).toBe('2026-01-04T00:00:00.000Z');
  });
});

/** Follows `nextCursor` from the first page to the last, calling `between` after each page. */
async function walk<T, O>(list: string, limit: number, fetch: (w: KeysetWindow) => Promise<T[]>, pos: (t: T) => KeysetPosition, out: (t: T) => O, between?: (page: number) => Promise<void>): Promise<O[]> {
  const seen: O[] = [];
  let cursor: string | undefined;
  for (let page = 0; ; page++) {
    const r = await readPage(list, { limit: String(limit), ...(cursor === undefined ? {} : { cursor }) }, fetch, pos, out);
    expect(r.items.length).toBeLessThanOrEqual(limit);
    seen.push(...r.items);
    if (r.nextCursor === null) return seen;
    expect(r.items).toHaveLength(limit);
    cursor = r.nextCursor;
    await between?.(page);
  }
}

describe.each(adapters)('D6 list pagination (keyset) on %s', (name, open) => {
  let db: Db;
  let cleanup: () => Promise<void>;
  const owner = 'own_0000000000000000000000000p' as OwnerId;
  const other = 'own_0000000000000000000000000q' as OwnerId;
  const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
  const metal = (n: number, createdAt: string, o = owner, labels: Record<string, string> = {}) => ({
    id: `mtl_${String(n).padStart(26, '0')}` as TipsId,
    ownerId: o,
    name: `m${n}`,
    labels,
    interfaces: [{ name: 'eth0', mac: `02:00:00:00:${Math.floor(n / 256).toString(16).padStart(2, '0')}:${(n % 256).toString(16).padStart(2, '0')}` as Mac, type: 'ethernet' as const, pxe: true }],
    engine: null,
    createdAt,
    updatedAt: createdAt,
  });

  beforeAll(async () => {
    ({ db, cleanup } = await open());
  });
  afterAll(async () => {
    await db.destroy();
    await cleanup();
  });

  it('returns every metal exactly once across pages, in (createdAt, id) order, ties on createdAt included, while metals are inserted meanwhile', async () => {
    const store = new KyselyMetalStore(db);
    // 40 metals over 8 timestamps: 5 share each createdAt, so pages split inside a tie.
    const before = Array.from({ length: 40 }, (_, n) => metal(n, at(Math.floor(n / 5))));
    for (const m of [...before].reverse()) await store.insert(m);
    await store.insert(metal(900, at(0), other));
    let next = 1000;
    const inserted: TipsId[] = [];
    const seen = await walk(
      'metals',
      7,
      (w) => store.list(owner, {}, w),
      (m) => ({ at: m.createdAt, id: m.id }),
      (m) => m.id,
      async () => {
        // Concurrent writers: one metal at the newest time, one in the middle of what was already read.
        const late = metal(next++, at(100 + next));
        const early = metal(next++, at(0));
        await store.insert(late);
        await store.insert(early);
        inserted.push(late.id);
      },
    );
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.slice(0, 40)).toEqual(before.map((m) => m.id));
    // Rows created after the walk began at a later time come after, once each; never the other owner's.
    expect(seen.slice(40)).toEqual(inserted);
    expect(seen).not.toContain(metal(900, at(0), other).id);
  });

  it('listStored answers the rows list answers, labels and interfaces as the JSON text the store wrote, for every window and filter', async () => {
    const store = new KyselyMetalStore(db);
    const o = 'own_0000000000000000000000000s' as OwnerId;
    const ms = Array.from({ length: 6 }, (_, n) => metal(3000 + n, at(Math.floor(n / 2)), o, { rack: `r${n % 2}`, note: `"${n}" \\ ü` }));
    for (const m of ms) await store.insert(m);
    const parse = (r: Awaited<ReturnType<typeof store.listStored>>[number]) => ({
      id: r.id,
      ownerId: o,
      name: r.name,
      labels: JSON.parse(r.labelsJson),
      interfaces: JSON.parse(r.interfacesJson),
      engine: r.engine,
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
    });
    const after = { at: ms[1]!.createdAt, id: [ms[0]!.id, ms[1]!.id].sort()[0]! };
    const cases: [Parameters<typeof store.list>[1], Parameters<typeof store.list>[2]][] = [
      [{}, undefined],
      [{}, { limit: 3 }],
      [{}, { limit: 3, after }],
      // Twice each: the second call runs the page query kept by its shape.
      [{}, { limit: 2, after }],
      [{}, { limit: 3 }],
      [{ label: { key: 'rack', value: 'r1' } }, { limit: 10 }],
      [{ name: ms[4]!.name }, { limit: 10, after }],
      [{ ids: [ms[5]!.id, ms[0]!.id] }, undefined],
      [{ ids: [] }, { limit: 10 }],
    ];
    for (const [q, w] of cases) {
      const listed = await store.list(o, q, w);
      const stored = await store.listStored(o, q, w);
      expect(stored.map(parse)).toEqual(listed);
      for (const r of stored) expect(r.labelsJson).toBe(JSON.stringify(ms.find((m) => m.id === r.id)!.labels));
    }
    expect((await store.listStored(o, {}, { limit: 3 })).map((r) => r.id)).toEqual((await store.list(o)).slice(0, 3).map((m) => m.id));
    expect(await store.listStored(o, {}, { limit: 100, after: { at: ms[5]!.createdAt, id: 'mtl_zzzzzzzzzzzzzzzzzzzzzzzzzz' } })).toEqual([]);
  });

  it('listPageJson (0015): on SQLite the page readPageJson writes from listStored, byte for byte, for every window; PostgreSQL or a row without its stored item → undefined (read listStored)', async () => {
    const store = new KyselyMetalStore(db);
    const o = 'own_0000000000000000000000000j' as OwnerId;
    const ms = Array.from({ length: 7 }, (_, n) => metal(3100 + n, at(Math.floor(n / 2)), o, { rack: `r${n % 2}`, note: `"${n}" \\ ü </script>` }));
    for (const m of ms) await store.insert(m);
    const sqlite = name === 'SQLite';
    const windows: KeysetWindow[] = [{ limit: 101 }, { limit: 4 }, { limit: 8 }, { limit: 7 }, { limit: 2 }];
    const all = await store.listStored(o);
    for (let k = 0; k < all.length; k++) windows.push({ limit: 3, after: { at: all[k]!.createdAt, id: all[k]!.id } }, { limit: 2, after: { at: all[k]!.createdAt, id: all[k]!.id } });
    for (const w of windows) {
      const q = { limit: String(w.limit - 1), cursor: undefined as string | undefined };
      const expected = await readPageJson('metals', q, () => store.listStored(o, {}, w), (m) => ({ at: m.createdAt, id: m.id }), storedMetalJson);
      const joined = await store.listPageJson(o, w);
      if (!sqlite) {
        expect(joined).toBeUndefined();
        continue;
      }
      expect(joined).toBeDefined();
      expect(joinedPageBody('metals', joined!).toString('utf8')).toBe(expected);
    }
    if (!sqlite) return;
    // A row the 0015 backfill has not reached (no stored item): not silently left out of the page.
    await sql`update metals set list_item = null where id = ${ms[3]!.id}`.execute(db);
    expect(await store.listPageJson(o, { limit: 101 })).toBeUndefined();
    expect(await store.listPageJson(o, { limit: 3 })).toBeDefined();
  });

  it('keeps filters across pages: label (exact, case-sensitive, quotes and = in values) and name', async () => {
    const store = new KyselyMetalStore(db);
    const o = 'own_0000000000000000000000000r' as OwnerId;
    const labelled = (n: number, labels: Record<string, string>) => metal(2000 + n, at(n), o, labels);
    const ms = [
      labelled(0, { role: 'web' }),
      labelled(1, { role: 'Web' }),
      labelled(2, { role: 'web', rack: '1' }),
      labelled(3, { tier: 'a"role":"web' }),
      labelled(4, { role: 'web=1' }),
      labelled(5, { roles: 'web' }),
      labelled(6, { a: 'x', role: 'web' }),
      labelled(7, {}),
      labelled(8, { role: 'web' }),
    ];
    for (const m of ms) await store.insert({ ...m, labels: Object.fromEntries(Object.entries(m.labels).sort(([a], [b]) => a.localeCompare(b))) });
    const byLabel = (key: string, value: string) => walk('metals', 2, (w) => store.list(o, { label: { key, value } }, w), (m) => ({ at: m.createdAt, id: m.id }), (m) => m.name);
    expect(await byLabel('role', 'web')).toEqual(['m2000', 'm2002', 'm2006', 'm2008']);
    expect(await byLabel('role', 'web=1')).toEqual(['m2004']);
    expect(await byLabel('tier', 'a"role":"web')).toEqual(['m2003']);
    expect(await byLabel('role', 'WEB')).toEqual([]);
    expect(await walk('metals', 2, (w) => store.list(o, { name: 'm2005' }, w), (m) => ({ at: m.createdAt, id: m.id }), (m) => m.name)).toEqual(['m2005']);
  });

  it('pages every other list the same way: spaces, gateways, owners, tokens, glazes, decisions (newest first)', async () => {
    const o = 'own_0000000000000000000000000s' as OwnerId;
    const ids = (prefix: string) => Array.from({ length: 11 }, (_, n) => `${prefix}_${String(n).padStart(26, '0')}`);
    const spaces = new KyselySpaceStore(db);
    for (const [n, id] of ids('spc').entries()) await spaces.insert({ id: id as SpaceId, ownerId: o, name: `s${10 - n}`, phase: 1, glazeId: null, engine: 'builtin', engineRules: [], createdAt: at(n >> 1), updatedAt: at(0) });
    expect(await walk('spaces', 3, (w) => spaces.list(o, undefined, w), (s) => ({ at: s.createdAt, id: s.id }), (s) => s.id)).toEqual(ids('spc'));
    expect(await walk('spaces', 3, (w) => spaces.list(o, 2, w), (s) => ({ at: s.createdAt, id: s.id }), (s) => s.id)).toEqual([]);

    const gateways = new KyselyGatewayStore(db);
    for (const [n, id] of ids('gwy').entries()) {
      await gateways.insert({ id: id as GatewayId, ownerId: o, name: `g${10 - n}`, publicKey: null, enrolledName: null, enrolledAt: null, enrollmentExpiresAt: null, createdAt: at(n >> 2), lastSeenAt: null }, `h${n}${name}`);
    }
    expect(await walk('gateways', 4, (w) => gateways.list(o, w), (g) => ({ at: g.createdAt, id: g.id }), (g) => g.id)).toEqual(ids('gwy'));

    const owners = new KyselyOwnerStore(db);
    for (const [n, id] of [o, ...ids('own').slice(1)].entries()) await owners.insertOwner({ id: id as OwnerId, name: `o${n}-${name}`, isAdmin: false, createdAt: at(5 - (n >> 1)) });
    for (const [n, id] of ids('tok').entries()) await owners.insertToken({ id, ownerId: o, name: `t${n}`, createdAt: at(3), lastUsedAt: null }, `hash-${name}-${n}`);
    expect(await walk('tokens', 5, (w) => owners.listTokens(o, w), (t) => ({ at: t.createdAt, id: t.id }), (t) => t.id)).toEqual(ids('tok'));
    const allOwners = await owners.listOwners();
    expect(allOwners).toHaveLength(11);
    expect(allOwners.map((x) => x.createdAt)).toEqual([...allOwners.map((x) => x.createdAt)].sort());
    expect(await walk('owners', 2, (w) => owners.listOwners(w), (x) => ({ at: x.createdAt, id: x.id }), (x) => x.id)).toEqual(allOwners.map((x) => x.id));

    const glazes = new KyselyGlazeStore(db);
    for (const [n, id] of ids('glz').entries()) {
      await glazes.insert({ id: id as GlazeId, ownerId: o, name: `z${n}`, size: n, sha256: '0'.repeat(64) as never, mediaType: 'application/octet-stream', createdAt: at(n % 3 === 0 ? 1 : 2), spaces: n % 2 ? ['spc_x' as SpaceId] : [], handler: 'archive', version: null });
    }
    const glazeOrder = ids('glz').filter((_, n) => n % 3 === 0).concat(ids('glz').filter((_, n) => n % 3 !== 0));
    expect(await walk('glazes', 2, (w) => glazes.list(o, undefined, w), (g) => ({ at: g.createdAt, id: g.id }), (g) => g.id)).toEqual(glazeOrder);
    expect(await walk('glazes', 2, (w) => glazes.list(o, 'spc_x' as SpaceId, w), (g) => ({ at: g.createdAt, id: g.id }), (g) => g.id)).toEqual(glazeOrder.filter((id) => Number(id.slice(-2)) % 2));

    const discovery = new KyselyDiscoveryStore(db);
    const rec = (n: number) => ({
      id: `reg_${String(n).padStart(4, '0')}`,
      at: at(n >> 2),
      ownerId: o,
      gatewayId: 'gwy_x' as GatewayId,
      mac: '02:00:00:00:09:01' as Mac,
      ip: '10.0.0.2',
      gatewayInterface: 'lan0',
      interfaceType: 'ethernet' as const,
      pxe: true,
      hostname: null,
      decision: (n % 2 ? 'blocked' : 'active') as 'active' | 'blocked',
      reason: n % 2 ? ('unknown_mac' as const) : null,
      tipsId: null,
      idempotencyKey: null,
    });
    await discovery.record(Array.from({ length: 23 }, (_, n) => rec(n)));
    const newestFirst = Array.from({ length: 23 }, (_, n) => rec(22 - n).id);
    const list = (decision?: 'blocked') => (w: KeysetWindow) => discovery.list(o, { limit: w.limit, ...(decision ? { decision } : {}), ...(w.after ? { before: w.after } : {}) });
    expect(await walk('failures', 4, list('blocked'), (r) => ({ at: r.at, id: r.id }), (r) => r.id)).toEqual(newestFirst.filter((id) => Number(id.slice(-2)) % 2));
    let late = 100;
    const seen = await walk('failures', 4, list(), (r) => ({ at: r.at, id: r.id }), (r) => r.id, async () => {
      await discovery.record([{ ...rec(late++), at: at(99) }]);
    });
    expect(seen).toEqual(newestFirst);
  });

});

describe('D6 list pagination: query plan', () => {
  const at = (n: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString();
  const owner = 'own_0000000000000000000000000p' as OwnerId;
  let db: Db;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ db, cleanup } = await adapters[0]![1]());
  });
  afterAll(async () => {
    await db.destroy();
    await cleanup();
  });

  it('answers a page from the keyset index, without sorting the owner’s rows (SQLite plan)', async () => {
    const q = applyKeyset(db.selectFrom('metals').selectAll().where('owner_id', '=', owner), 'created_at', 'id', { limit: 101, after: { at: at(3), id: 'mtl_x' } }).compile();
    const plan = await sql.raw<{ detail: string }>(`EXPLAIN QUERY PLAN ${q.sql.replace(/\?$/, '101').replace(/\?/g, "'x'")}`).execute(db);
    const details = plan.rows.map((r) => r.detail).join('\n');
    expect(details).toContain('metals_keyset');
    expect(details).not.toContain('TEMP B-TREE');
  });
});
