import type { OwnerId } from '@tips/core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type TestMaster, testMaster } from '../../testing.ts';
import { KyselyTelemetryStore } from './store.kysely.ts';

const adapters: [string, () => string | undefined][] = [
  ['SQLite', () => undefined],
  ['PostgreSQL', () => inject('pgUrl')],
];
const alice = 'own_alice' as OwnerId;
const t = (s: number) => new Date(Date.UTC(2026, 10, 29, 12, 0, s)).toISOString();

describe.each(adapters)('issue 11 telemetry store on %s', (_name, pgUrl) => {
  let m: TestMaster;
  let store: KyselyTelemetryStore;
  beforeAll(async () => {
    m = await testMaster({ pgUrl: pgUrl() });
    store = new KyselyTelemetryStore(m.db);
  });
  afterAll(async () => m.close());

  it('pages a metal\'s samples in (receivedAt, id) order, after `since`, never another metal\'s; sweeps old ones', async () => {
    for (const [id, metal, s] of [['tel_b', 'mtl_1', 2], ['tel_a', 'mtl_1', 2], ['tel_c', 'mtl_1', 3], ['tel_x', 'mtl_2', 1], ['tel_0', 'mtl_1', 0]] as const) {
      await store.insertSample({ id, metalId: metal, ownerId: alice, at: t(s), receivedAt: t(s), values: { n: s, ok: true, s: 'x' } });
    }
    expect((await store.listSamples('mtl_1', undefined)).map((s) => s.id)).toEqual(['tel_0', 'tel_a', 'tel_b', 'tel_c']);
    expect((await store.listSamples('mtl_1', undefined, { limit: 2, after: { at: t(2), id: 'tel_a' } })).map((s) => s.id)).toEqual(['tel_b', 'tel_c']);
    expect((await store.listSamples('mtl_1', t(2))).map((s) => s.id)).toEqual(['tel_c']);
    expect((await store.listSamples('mtl_1', t(0)))[0]?.values).toEqual({ n: 2, ok: true, s: 'x' });
    expect(await store.deleteSamplesBefore(t(2))).toBe(2);
    expect((await store.listSamples('mtl_2', undefined)).length).toBe(0);
  });

  it('keeps only the latest heartbeat per metal', async () => {
    await store.putHeartbeat({ metalId: 'mtl_1', ownerId: alice, at: t(1), receivedAt: t(1), values: { up: 1 } });
    await store.putHeartbeat({ metalId: 'mtl_1', ownerId: alice, at: t(5), receivedAt: t(5), values: { up: 5 } });
    expect(await store.findHeartbeat('mtl_1')).toEqual({ metalId: 'mtl_1', ownerId: alice, at: t(5), receivedAt: t(5), values: { up: 5 } });
    expect(await store.findHeartbeat('mtl_2')).toBeUndefined();
  });

  it('finds application tokens by hash only, lists and deletes them per owner', async () => {
    const tok = { id: 'apt_1', ownerId: alice, metalId: 'mtl_1', name: 'app', scope: ['telemetry:read' as const], createdAt: t(1), expiresAt: t(59) };
    await store.insertAppToken(tok, 'hash-1');
    await expect(store.insertAppToken({ ...tok, id: 'apt_2' }, 'hash-1')).rejects.toThrow();
    expect(await store.findAppTokenByHash('hash-1')).toEqual(tok);
    expect(await store.findAppTokenByHash('hash-2')).toBeUndefined();
    expect(await store.listAppTokens('own_bob' as OwnerId)).toEqual([]);
    expect(await store.deleteAppToken('own_bob' as OwnerId, 'apt_1')).toBe(false);
    expect(await store.listAppTokens(alice)).toEqual([tok]);
    expect(await store.deleteAppToken(alice, 'apt_1')).toBe(true);
    expect(await store.findAppTokenByHash('hash-1')).toBeUndefined();
  });
});
