import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createServices, type Services } from '../../app.ts';
import { FsBlobStore } from '../../blob/fs-blob-store.ts';
import { type Db, openDatabase } from '../../db/database.ts';
import type { Owner } from '../owners/model.ts';
import type { Gateway } from '../gateways/model.ts';
import type { DecisionResult } from './model.ts';

// Two master replicas over one database, sharing a clock the test moves: what one replica changes,
// the other must see — at once for refusals, within the documented bounds for cached facts.
let dir: string;
let dbs: Db[];
let a: Services;
let b: Services;
let now: number;
let owner: Owner;
let gateway: Gateway;
const MAC = '02:ee:00:00:00:01';
const reason = (r: DecisionResult) => (r.decision === 'blocked' ? r.reason : undefined);
const join0 = { mac: MAC, ip: '10.77.0.9', gatewayInterface: 'lan0' };

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tips-discovery-replicas-'));
  now = Date.parse('2026-11-22T10:00:00Z');
  const clock = { now: () => new Date(now) };
  dbs = [await openDatabase({ kind: 'sqlite', file: join(dir, 'tips.db') }), await openDatabase({ kind: 'sqlite', file: join(dir, 'tips.db') })];
  const blobs = await FsBlobStore.open(join(dir, 'glazes'));
  [a, b] = dbs.map((db) => createServices({ db, blobs, clock })) as [Services, Services];
  owner = (await a.owners.ensureAdmin())!.owner;
  const { enrollmentToken } = await a.gateways.create(owner.id, { name: 'gw' });
  gateway = await a.gateways.enroll({ enrollmentToken, publicKey: generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString() });
  await b.spaces.create(owner.id, { name: 'os', phase: 1 });
});
afterEach(async () => {
  for (const db of dbs) await db.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('T2 T6 T16 decisions across master replicas', () => {
  it('never caches a refusal: a fix made through another replica counts at the next registration', async () => {
    expect(await a.discovery.register(gateway, join0)).toEqual({ decision: 'blocked', reason: 'unknown_mac' });
    const metal = await b.metals.create(owner.id, { name: 'pi', interfaces: [{ name: 'eth0', mac: MAC, type: 'ethernet', pxe: true }] });
    expect(await a.discovery.register(gateway, join0)).toEqual({ decision: 'blocked', reason: 'no_default_space', tipsId: metal.id });
    await b.spaces.addMember(owner.id, 'os', { metal: 'pi', interfaces: ['eth0'], default: true });
    expect(await a.discovery.register(gateway, join0)).toEqual({ decision: 'active', tipsId: metal.id });
  });

  it('sees a block made through another replica within 1 s, and one made through itself at once', async () => {
    const metal = await b.metals.create(owner.id, { name: 'pi', interfaces: [{ name: 'eth0', mac: MAC, type: 'ethernet', pxe: true }] });
    await b.spaces.addMember(owner.id, 'os', { metal: 'pi', interfaces: ['eth0'], default: true });
    expect((await a.discovery.register(gateway, join0)).decision).toBe('active');
    await b.discovery.block(owner.id, 'pi');
    expect((await b.discovery.register(gateway, join0)).decision).toBe('blocked');
    now += 1_000;
    expect(await a.discovery.register(gateway, join0)).toEqual({ decision: 'blocked', reason: 'metal_blocked', tipsId: metal.id });
    await a.discovery.unblock(owner.id, 'pi');
    expect((await a.discovery.register(gateway, join0)).decision).toBe('active');
    await a.discovery.block(owner.id, metal.id);
    expect(reason(await a.discovery.register(gateway, join0))).toBe('metal_blocked');
  });

  it('sees a lost default Space through another replica within 30 s, and through itself at once', async () => {
    await b.metals.create(owner.id, { name: 'pi', interfaces: [{ name: 'eth0', mac: MAC, type: 'ethernet', pxe: true }] });
    await b.spaces.addMember(owner.id, 'os', { metal: 'pi', interfaces: ['eth0'], default: true });
    expect((await a.discovery.register(gateway, join0)).decision).toBe('active');
    await b.spaces.removeMember(owner.id, 'os', 'pi');
    expect(reason(await b.discovery.register(gateway, join0))).toBe('no_default_space');
    now += 29_000;
    expect((await a.discovery.register(gateway, join0)).decision).toBe('active');
    now += 1_000;
    expect(reason(await a.discovery.register(gateway, join0))).toBe('no_default_space');
    await a.spaces.addMember(owner.id, 'os', { metal: 'pi', interfaces: ['eth0'], default: true });
    expect((await a.discovery.register(gateway, join0)).decision).toBe('active');
    await a.metals.delete(owner.id, 'pi');
    expect(reason(await a.discovery.register(gateway, join0))).toBe('unknown_mac');
  });

  it('records every decision, through either replica, durably before answering', async () => {
    await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).discovery.register(gateway, { ...join0, ip: `10.77.0.${i + 1}` })));
    const all = await b.discovery.list(owner.id, { limit: '1000' }, true);
    expect(all).toHaveLength(50);
    expect(new Set(all.map((r) => r.ip)).size).toBe(50);
  });
});
