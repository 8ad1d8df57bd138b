import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GlazeId, OwnerId, SpaceId, TipsId } from '@tips/core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Db, openDatabase } from '../../db/database.ts';
import type { InstallReport } from './model.ts';
import { KyselyUpdateStore } from './store.kysely.ts';

const adapters: [string, () => Promise<{ db: Db; cleanup: () => Promise<void> }>][] = [
  [
    'SQLite',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tips-updates-contract-'));
      const db = await openDatabase({ kind: 'sqlite', file: join(dir, 'c.db') });
      return { db, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  ],
  [
    'PostgreSQL',
    async () => {
      const url = inject('pgUrl');
      const schema = `updates_${randomBytes(6).toString('hex')}`;
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query(`CREATE SCHEMA ${schema}`);
      const db = await openDatabase({ kind: 'postgres', url, schema, poolSize: 2 });
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

const owner = 'own_0000000000000000000000000a' as OwnerId;
const other = 'own_0000000000000000000000000b' as OwnerId;
const metal = 'mtl_0000000000000000000000000a' as TipsId;
const metal2 = 'mtl_0000000000000000000000000b' as TipsId;
const space = 'spc_0000000000000000000000000a' as SpaceId;
const g1 = 'glz_0000000000000000000000000a' as GlazeId;
const g2 = 'glz_0000000000000000000000000b' as GlazeId;

const report = (n: number, over: Partial<InstallReport> = {}): InstallReport => ({
  id: `rpt_${n}`,
  ownerId: owner,
  metalId: metal,
  spaceId: space,
  glazeId: g1,
  result: 'installed',
  reason: null,
  sequence: 2 ** 40 + n,
  at: `2026-11-29T10:00:0${n}.000Z`,
  cose: new Uint8Array([0xd2, n]),
  createdAt: `2026-11-29T10:00:0${n}.000Z`,
  ...over,
});

describe.each(adapters)('T2 T14 updates store contract on %s', (_name, open) => {
  let db: Db;
  let cleanup: () => Promise<void>;
  let store: KyselyUpdateStore;
  beforeAll(async () => {
    ({ db, cleanup } = await open());
    store = new KyselyUpdateStore(db);
  });
  afterAll(async () => {
    await db?.destroy();
    await cleanup?.();
  });

  it('keeps the installed Glaze through failures and rollbacks, with the full history newest first', async () => {
    expect((await store.recordReport(report(1))).installedGlazeId).toBe(g1);
    const failed = await store.recordReport(report(2, { glazeId: g2, result: 'failed', reason: 'suit_rollback', sequence: 1 }));
    expect(failed).toMatchObject({ installedGlazeId: g1, installedSequence: 2 ** 40 + 1, lastGlazeId: g2, lastResult: 'failed', lastReason: 'suit_rollback' });
    await store.recordReport(report(3, { glazeId: g2, result: 'rolled_back', reason: 'health_check_failed' }));
    const [state] = await store.installations(metal);
    expect(state).toMatchObject({ installedGlazeId: g1, lastResult: 'rolled_back' });
    const history = await store.reports(metal, 10);
    expect(history.map((r) => r.id)).toEqual(['rpt_3', 'rpt_2', 'rpt_1']);
    expect(history[2]!.cose).toEqual(new Uint8Array([0xd2, 1]));
    expect(history[2]!.sequence).toBe(2 ** 40 + 1);
  });

  it('upserts a profile and finds metals by vendor, class and installed or listed Glaze, per owner only', async () => {
    const p = { ownerId: owner, vendorId: 'v-1', classId: 'c-1', glazes: [{ id: g2, name: 'web', version: '1.4', sequence: 3 }], interfaces: [], protocols: ['https'], updatedAt: 'x' };
    await store.putProfile({ ...p, metalId: metal });
    await store.putProfile({ ...p, metalId: metal, classId: 'c-2', glazes: [] });
    await store.putProfile({ ...p, metalId: metal2 });
    await store.putProfile({ ...p, metalId: 'mtl_0000000000000000000000000c' as TipsId, ownerId: other });
    expect((await store.profile(metal))?.classId).toBe('c-2');
    expect(await store.metalsMatching(owner, { vendorId: 'v-1' })).toEqual([metal, metal2]);
    expect(await store.metalsMatching(owner, { classId: 'c-1' })).toEqual([metal2]);
    expect(await store.metalsMatching(owner, { glazeId: g1 })).toEqual([metal]);
    expect(await store.metalsMatching(owner, { glazeId: g2 })).toEqual([metal2]);
    expect(await store.metalsMatching(owner, { glazeId: g2, classId: 'c-2' })).toEqual([]);
    expect(await store.metalsMatching(other, { vendorId: 'v-1' })).toEqual(['mtl_0000000000000000000000000c']);
  });

  it('records events by kind and forgets everything about a deleted metal', async () => {
    await store.addEvent({ id: 'evt_1', ownerId: owner, metalId: metal, kind: 'tamper', code: 'software_outside_tips', detail: { changes: [{ path: '/x', kind: 'added', detail: 'ü' }] }, createdAt: '2026-11-29T10:00:01Z' });
    await store.addEvent({ id: 'evt_2', ownerId: owner, metalId: metal, kind: 'auth_failure', code: 'reauth_required', detail: {}, createdAt: '2026-11-29T10:00:02Z' });
    expect((await store.events(metal, 'tamper', 10)).map((e) => e.detail)).toEqual([{ changes: [{ path: '/x', kind: 'added', detail: 'ü' }] }]);
    expect((await store.events(metal, undefined, 10)).map((e) => e.id)).toEqual(['evt_2', 'evt_1']);
    await store.forgetMetal(metal);
    expect(await store.events(metal, undefined, 10)).toEqual([]);
    expect(await store.installations(metal)).toEqual([]);
    expect(await store.reports(metal, 10)).toEqual([]);
    expect(await store.profile(metal)).toBeUndefined();
    expect(await store.profile(metal2)).toBeDefined();
  });
});
