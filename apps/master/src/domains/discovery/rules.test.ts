import { randomBytes } from 'node:crypto';
import type { GatewayId, Mac, OwnerId, TipsId } from '@tips/core';
import { InvalidValueError } from '@tips/core';
import { beforeEach, describe, expect, it } from 'vitest';
import { DomainEvents } from '../../events.ts';
import type { ChannelCommand, Gateway } from '../gateways/model.ts';
import type { GatewayService } from '../gateways/service.ts';
import type { MetalService } from '../metals/service.ts';
import type { SpaceService } from '../spaces/service.ts';
import type { MetalBlock, RegistrationQuery, RegistrationRecord } from './model.ts';
import { DiscoveryService, parseBatchItem, parseQuery, parseRegistration } from './service.ts';
import type { DiscoveryStore } from './store.ts';

// The discovery service over fakes of its ports: fast and deterministic, so every check of the
// rule (T6), the release (T10), the block guard (T16) and the input validation is pinned by a test
// that fails when the check is removed (mutation/discovery.conf.mjs).

const ALICE = 'own_alice' as OwnerId;
const BOB = 'own_bob' as OwnerId;
const PI = 'mtl_pi' as TipsId;
const ETH = '02:aa:00:00:00:01' as Mac;
const WLAN = '02:aa:00:00:00:02' as Mac;

class Deferred<T> {
  resolve!: (v: T) => void;
  readonly promise = new Promise<T>((r) => {
    this.resolve = r;
  });
}

class FakeStore implements DiscoveryStore {
  records: RegistrationRecord[] = [];
  blocks = new Map<TipsId, MetalBlock>();
  blockReads = 0;
  listCalls = 0;
  /** When set, the next blockedMetalIds() waits for it (a read in flight). */
  nextRead?: Deferred<TipsId[]>;
  async record(records: RegistrationRecord[]) {
    this.records.push(...records);
    return records;
  }
  async list(ownerId: OwnerId, q: RegistrationQuery) {
    this.listCalls++;
    let rs = this.records.filter((r) => q.mac === undefined || r.mac === q.mac);
    rs = rs.filter((r) => r.ownerId === ownerId && (q.decision === undefined || r.decision === q.decision));
    if (q.after) {
      const { at, id } = q.after;
      rs = rs.filter((r) => r.at > at || (r.at === at && r.id > id));
      rs.sort((a, b) => a.at.localeCompare(b.at) || a.id.localeCompare(b.id));
    }
    return rs.slice(0, q.limit);
  }
  async gatewaysThatBlocked(macs: Mac[]) {
    return this.records.filter((r) => r.decision === 'blocked' && macs.includes(r.mac)).map((r) => ({ gatewayId: r.gatewayId, mac: r.mac }));
  }
  async putBlock(b: MetalBlock) {
    this.blocks.set(b.metalId, b);
  }
  async removeBlock(id: TipsId) {
    return this.blocks.delete(id);
  }
  async findBlock(id: TipsId) {
    return this.blocks.get(id);
  }
  async blockedMetalIds() {
    this.blockReads++;
    const pending = this.nextRead;
    this.nextRead = undefined;
    return pending ? pending.promise : [...this.blocks.keys()];
  }
}

interface FakeMetal {
  id: TipsId;
  ownerId: OwnerId;
  name: string;
  macs: Mac[];
}

let now: number;
let store: FakeStore;
let events: DomainEvents;
let metals: FakeMetal[];
let defaults: Set<TipsId>;
let sent: { gatewayId: GatewayId; command: ChannelCommand }[];
let gatewaysOf: Record<string, GatewayId[]>;
let lookups: number;
let service: DiscoveryService;
let bytes: number;
const gw = (id: string, ownerId = ALICE) => ({ id: id as GatewayId, ownerId }) as Gateway;
const join = (mac: string, o: Record<string, unknown> = {}) => ({ mac, ip: '10.77.0.9', gatewayInterface: 'lan0', ...o });

beforeEach(() => {
  now = Date.parse('2026-11-22T10:00:00Z');
  store = new FakeStore();
  events = new DomainEvents();
  metals = [{ id: PI, ownerId: ALICE, name: 'pi', macs: [ETH, WLAN] }];
  defaults = new Set([PI]);
  sent = [];
  gatewaysOf = { [ALICE]: ['gwy_a1', 'gwy_a2'] as GatewayId[], [BOB]: ['gwy_b1'] as GatewayId[] };
  lookups = 0;
  bytes = 0;
  const metalService = {
    async findByMac(ownerId: OwnerId, mac: Mac) {
      lookups++;
      const m = metals.find((x) => x.ownerId === ownerId && x.macs.includes(mac));
      return m && { metal: { id: m.id, ownerId: m.ownerId, name: m.name, interfaces: m.macs.map((x) => ({ mac: x })) }, interfaceName: 'eth0' };
    },
    async get(ownerId: OwnerId, ref: string) {
      const m = metals.find((x) => x.ownerId === ownerId && (x.id === ref || x.name === ref));
      if (!m) throw new Error(`no metal ${ref}`);
      return { id: m.id, ownerId: m.ownerId, name: m.name, interfaces: m.macs.map((mac) => ({ mac })) };
    },
  } as unknown as MetalService;
  const spaceService = {
    async defaultSpaceOf(metalId: TipsId) {
      return defaults.has(metalId) ? { spaceId: 'spc_os', phase: 1, isDefault: true } : undefined;
    },
  } as unknown as SpaceService;
  const gatewayService = {
    async idsOfOwner(ownerId: OwnerId) {
      return gatewaysOf[ownerId] ?? [];
    },
    async send(gatewayId: GatewayId, command: ChannelCommand) {
      sent.push({ gatewayId, command });
    },
    async namesOfOwner() {
      return new Map();
    },
  } as unknown as GatewayService;
  service = new DiscoveryService(store, metalService, spaceService, gatewayService, events, { now: () => new Date(now) }, {
    bytes: (n: number) => {
      bytes += n;
      return new Uint8Array(randomBytes(n));
    },
  });
});

describe('T6 the decision rule, in order, among the gateway owner’s metals only', () => {
  it('unknown_mac, then metal_blocked, then no_default_space, then active — each with the TIPS ID once a metal is found', async () => {
    expect(await service.register(gw('gwy_a1'), join('02:aa:00:00:00:99'))).toEqual({ decision: 'blocked', reason: 'unknown_mac' });
    defaults.clear();
    await service.block(ALICE, 'pi');
    expect(await service.register(gw('gwy_a1'), join(ETH))).toEqual({ decision: 'blocked', reason: 'metal_blocked', tipsId: PI });
    await service.unblock(ALICE, 'pi');
    expect(await service.register(gw('gwy_a1'), join(ETH))).toEqual({ decision: 'blocked', reason: 'no_default_space', tipsId: PI });
    defaults.add(PI);
    expect(await service.register(gw('gwy_a1'), join(WLAN))).toEqual({ decision: 'active', tipsId: PI });
  });

  it("answers another owner's gateway as for a MAC nobody declared", async () => {
    expect(await service.register(gw('gwy_b1', BOB), join(ETH))).toEqual({ decision: 'blocked', reason: 'unknown_mac' });
    expect(store.records.at(-1)).toMatchObject({ ownerId: BOB, decision: 'blocked', reason: 'unknown_mac', tipsId: null });
  });

  it('records each decision with what the gateway reported, its owner and its gateway', async () => {
    await service.register(gw('gwy_a1'), join(ETH.toUpperCase(), { ip: 'fe80::1', gatewayInterface: 'br-lan.10', interfaceType: 'wifi', pxe: true, hostname: 'pi-07' }));
    await service.register(gw('gwy_a1'), join('02:aa:00:00:00:99'));
    expect(store.records).toEqual([
      {
        id: expect.stringMatching(/^reg_[0-9a-z]{10}[A-Za-z0-9_-]{12}$/),
        at: '2026-11-22T10:00:00.000Z',
        ownerId: ALICE,
        gatewayId: 'gwy_a1',
        mac: ETH,
        ip: 'fe80::1',
        gatewayInterface: 'br-lan.10',
        interfaceType: 'wifi',
        pxe: true,
        hostname: 'pi-07',
        idempotencyKey: null,
        decision: 'active',
        reason: null,
        tipsId: PI,
      },
      expect.objectContaining({ mac: '02:aa:00:00:00:99', interfaceType: 'other', pxe: false, hostname: null, decision: 'blocked', reason: 'unknown_mac', tipsId: null }),
    ]);
    expect(store.records[0]!.id.slice(4, 14)).toBe(now.toString(36).padStart(10, '0'));
  });

  it('gives every record a distinct ID, across refills of the random pool', async () => {
    const items = Array.from({ length: 192 }, (_, i) => join(`02:bb:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`));
    for (let k = 0; k < 4; k++) await service.registerBatch(gw('gwy_a1'), items);
    expect(new Set(store.records.map((r) => r.id)).size).toBe(768);
    // One call to the Random port per 256 IDs, not one per decision.
    expect(bytes).toBe(9 * 256 * 3);
  });

  it('caches a complete answer for 30 s at most, and forgets it at once on a local change to the metal or a Space', async () => {
    await service.register(gw('gwy_a1'), join(ETH));
    const first = lookups;
    now += 29_999;
    await service.register(gw('gwy_a1'), join(ETH));
    expect(lookups).toBe(first);
    now += 1;
    await service.register(gw('gwy_a1'), join(ETH));
    expect(lookups).toBe(first + 1);
    defaults.clear();
    await events.emit('space.deleted', { ownerId: ALICE, spaceId: 'spc_os' });
    expect(await service.register(gw('gwy_a1'), join(ETH))).toMatchObject({ reason: 'no_default_space' });
    defaults.add(PI);
    await service.register(gw('gwy_a1'), join(ETH));
    metals = [];
    await events.emit('metal.deleted', { ownerId: ALICE, metalId: PI, macs: [ETH, WLAN] });
    expect(await service.register(gw('gwy_a1'), join(ETH))).toEqual({ decision: 'blocked', reason: 'unknown_mac' });
  });

  it('never caches a refusal: the fix counts at the next registration', async () => {
    defaults.clear();
    expect(await service.register(gw('gwy_a1'), join(ETH))).toMatchObject({ reason: 'no_default_space' });
    defaults.add(PI);
    expect(await service.register(gw('gwy_a1'), join(ETH))).toMatchObject({ decision: 'active' });
  });

  it("keeps one owner's cached answer from deciding for another owner's gateway", async () => {
    expect(await service.register(gw('gwy_a1'), join(ETH))).toMatchObject({ decision: 'active' });
    expect(await service.register(gw('gwy_b1', BOB), join(ETH))).toEqual({ decision: 'blocked', reason: 'unknown_mac' });
  });
});

describe('T10 release: a fixed cause clears the refusal at the owner’s gateways, never for a blocked metal', () => {
  const clears = () => sent.filter((s) => s.command.type === 'clear').map((s) => [s.gatewayId, (s.command as { mac: string }).mac]);
  beforeEach(async () => {
    metals = [];
    await service.register(gw('gwy_a1'), join(ETH));
    await service.register(gw('gwy_b1', BOB), join(ETH));
    await service.register(gw('gwy_a2'), join('02:aa:00:00:00:77'));
    metals = [{ id: PI, ownerId: ALICE, name: 'pi', macs: [ETH] }];
  });

  it("sends clear for an added MAC to the owner's gateway that refused it, and to no other", async () => {
    await events.emit('metal.interfaces.changed', { ownerId: ALICE, metalId: PI, added: [ETH], removed: [], removedNames: [] });
    expect(clears()).toEqual([['gwy_a1', ETH]]);
  });

  it('sends nothing when no MAC was added', async () => {
    await events.emit('metal.interfaces.changed', { ownerId: ALICE, metalId: PI, added: [], removed: [WLAN], removedNames: ['wlan0'] });
    expect(sent).toEqual([]);
  });

  it('sends no clear for a blocked metal (it stays locked), on a new MAC or a new default Space', async () => {
    await service.block(ALICE, 'pi');
    sent = [];
    await events.emit('metal.interfaces.changed', { ownerId: ALICE, metalId: PI, added: [ETH], removed: [], removedNames: [] });
    await events.emit('space.membership.changed', { ownerId: ALICE, metalId: PI, spaceId: 'spc_os' });
    expect(sent).toEqual([]);
  });

  it('sends clear when the metal gains a default Space, and nothing for a membership that is not one', async () => {
    defaults.clear();
    await events.emit('space.membership.changed', { ownerId: ALICE, metalId: PI, spaceId: 'spc_apps' });
    expect(sent).toEqual([]);
    defaults.add(PI);
    await events.emit('space.membership.changed', { ownerId: ALICE, metalId: PI, spaceId: 'spc_os' });
    expect(clears()).toEqual([['gwy_a1', ETH]]);
  });
});

describe('T16 blocks: at every gateway of the owner, at once locally, within 1 s from another replica', () => {
  it('sends block to each of the owner’s gateways with the metal’s MACs and reason, and unblock per MAC', async () => {
    expect(await service.block(ALICE, 'pi', 'tamper')).toEqual({ tipsId: PI, macs: [ETH, WLAN], gateways: 2 });
    expect(store.blocks.get(PI)).toEqual({ metalId: PI, ownerId: ALICE, reason: 'tamper', blockedAt: '2026-11-22T10:00:00.000Z' });
    expect(sent).toEqual([
      { gatewayId: 'gwy_a1', command: { type: 'block', tipsId: PI, macs: [ETH, WLAN], reason: 'tamper' } },
      { gatewayId: 'gwy_a2', command: { type: 'block', tipsId: PI, macs: [ETH, WLAN], reason: 'tamper' } },
    ]);
    sent = [];
    expect(await service.unblock(ALICE, 'pi')).toEqual({ tipsId: PI, macs: [ETH, WLAN], gateways: 2 });
    expect(sent.map((s) => [s.gatewayId, s.command])).toEqual([
      ['gwy_a1', { type: 'unblock', mac: ETH }],
      ['gwy_a1', { type: 'unblock', mac: WLAN }],
      ['gwy_a2', { type: 'unblock', mac: ETH }],
      ['gwy_a2', { type: 'unblock', mac: WLAN }],
    ]);
    await expect(service.unblock(ALICE, 'pi')).rejects.toMatchObject({ code: 'metal_not_blocked', field: 'metal', message: 'metal "pi" is not blocked' });
  });

  it('sends block without a reason when none is given; refuses a reason over 256 characters or not a string, changing nothing', async () => {
    await service.block(ALICE, 'pi');
    expect(sent[0]!.command).toEqual({ type: 'block', tipsId: PI, macs: [ETH, WLAN] });
    expect(store.blocks.get(PI)!.reason).toBeNull();
    await service.unblock(ALICE, 'pi');
    sent = [];
    await service.block(ALICE, 'pi', 'r'.repeat(256));
    await service.unblock(ALICE, 'pi');
    sent = [];
    for (const bad of ['r'.repeat(257), 42 as unknown as string]) {
      await expect(service.block(ALICE, 'pi', bad)).rejects.toMatchObject({ field: 'reason', message: expect.stringContaining('at most 256') });
    }
    expect(store.blocks.size).toBe(0);
    expect(sent).toEqual([]);
  });

  it('sees a block another replica wrote only once 1 s has passed since the last read', async () => {
    expect(await service.isBlocked(PI)).toBe(false);
    await store.putBlock({ metalId: PI, ownerId: ALICE, reason: null, blockedAt: 'x' });
    now += 999;
    expect(await service.isBlocked(PI)).toBe(false);
    now += 1;
    expect(await service.isBlocked(PI)).toBe(true);
    const reads = store.blockReads;
    expect(await service.isBlocked(PI)).toBe(true);
    expect(store.blockReads).toBe(reads);
  });

  it('shares one read among concurrent callers, and reads again after it', async () => {
    store.nextRead = new Deferred<TipsId[]>();
    const pending = store.nextRead;
    const both = Promise.all([service.isBlocked(PI), service.isBlocked(PI)]);
    pending.resolve([PI]);
    expect(await both).toEqual([true, true]);
    expect(store.blockReads).toBe(1);
    now += 1_000;
    expect(await service.isBlocked(PI)).toBe(false);
    expect(store.blockReads).toBe(2);
  });

  it('keeps a local block when a read that started before it comes back without it', async () => {
    store.nextRead = new Deferred<TipsId[]>();
    const stale = store.nextRead;
    const during = service.isBlocked(PI);
    await service.block(ALICE, 'pi');
    stale.resolve([]);
    await during;
    expect(await service.isBlocked(PI)).toBe(true);
    expect(await service.register(gw('gwy_a1'), join(ETH))).toMatchObject({ reason: 'metal_blocked' });
  });

  it('keeps a local unblock when a read that started before it comes back with the block', async () => {
    await service.block(ALICE, 'pi');
    now += 1_000;
    store.nextRead = new Deferred<TipsId[]>();
    const stale = store.nextRead;
    const during = service.isBlocked(PI);
    await service.unblock(ALICE, 'pi');
    stale.resolve([PI]);
    await during;
    expect(await service.isBlocked(PI)).toBe(false);
  });

  it('forgets the block of a deleted metal at once, even against a stale read', async () => {
    await service.block(ALICE, 'pi');
    now += 1_000;
    store.nextRead = new Deferred<TipsId[]>();
    const stale = store.nextRead;
    const during = service.isBlocked(PI);
    await events.emit('metal.deleted', { ownerId: ALICE, metalId: PI, macs: [ETH, WLAN] });
    stale.resolve([PI]);
    await during;
    expect(store.blocks.has(PI)).toBe(false);
    expect(await service.isBlocked(PI)).toBe(false);
  });
});

describe('T5 T9 registrations are validated before anything is decided or recorded', () => {
  it.each([
    ['10.0.0.1', true],
    ['fe80::1', true],
    ['10.0.0.256', false],
    ['', false],
    ['10.0.0.1 ', false],
    [7, false],
  ])('ip %j valid: %s', (ip, ok) => {
    const run = () => parseRegistration(join(ETH, { ip }) as never);
    if (ok) expect(run().ip).toBe(ip);
    else expect(run).toThrow(expect.objectContaining({ field: 'ip', message: expect.stringContaining('is not an IPv4 or IPv6 address') }));
  });

  it.each([
    ['lan0', true],
    ['br-lan.10@eth0', true],
    ['a:b_c', true],
    ['x'.repeat(32), true],
    ['x'.repeat(33), false],
    ['', false],
    [' lan0', false],
    ['lan0 ', false],
    ['-lan0', false],
    ['lan/0', false],
    [1, false],
  ])('gatewayInterface %j valid: %s', (gatewayInterface, ok) => {
    const run = () => parseRegistration(join(ETH, { gatewayInterface }) as never);
    if (ok) expect(run().gatewayInterface).toBe(gatewayInterface);
    else expect(run).toThrow(expect.objectContaining({ field: 'gatewayInterface', message: expect.stringContaining('gateway network interface') }));
  });

  it.each([
    ['pi-07', true],
    ['~', true],
    ['h'.repeat(255), true],
    ['h'.repeat(256), false],
    ['', false],
    ['a b', false],
    [' ab', false],
    ['ab\t', false],
    ['é', false],
    [5, false],
  ])('hostname %j valid: %s', (hostname, ok) => {
    const run = () => parseRegistration(join(ETH, { hostname }) as never);
    if (ok) expect(run().hostname).toBe(hostname);
    else expect(run).toThrow(expect.objectContaining({ field: 'hostname', message: expect.stringContaining('printable characters') }));
  });

  it('never echoes more than 64 characters of a refused address', () => {
    expect(() => parseRegistration(join(ETH, { ip: '9'.repeat(10_000) }))).toThrow(expect.objectContaining({ message: expect.stringMatching(/^.{0,120}$/) }));
  });

  it('defaults interfaceType to other, pxe to false and hostname to null; refuses an unknown type and a bad MAC', () => {
    expect(parseRegistration(join(ETH))).toEqual({ mac: ETH, ip: '10.77.0.9', gatewayInterface: 'lan0', interfaceType: 'other', pxe: false, hostname: null, idempotencyKey: null });
    expect(parseRegistration(join(ETH, { idempotencyKey: 'k'.repeat(8) }))).toMatchObject({ idempotencyKey: 'kkkkkkkk' });
    for (const bad of ['short', 'k'.repeat(65), 'has space!', 7]) {
      expect(() => parseRegistration(join(ETH, { idempotencyKey: bad as string }))).toThrow(expect.objectContaining({ field: 'idempotencyKey' }));
    }
    expect(parseRegistration(join(ETH, { pxe: true, interfaceType: 'ethernet' }))).toMatchObject({ pxe: true, interfaceType: 'ethernet' });
    expect(() => parseRegistration(join(ETH, { interfaceType: 'token-ring' }))).toThrow(expect.objectContaining({ field: 'interfaceType' }));
    expect(() => parseRegistration(join('nope'))).toThrow(expect.objectContaining({ field: 'mac' }));
  });

  it.each([
    [[], 'items', 'items is a list of 1 to 256 registrations'],
    ['x', 'items'],
    [Array.from({ length: 257 }, () => join(ETH)), 'items'],
    [[join(ETH), null], 'items[1]'],
    [[join(ETH), [1]], 'items[1]'],
    [[{ ...join(ETH), speed: 1 }], 'items[0].speed'],
    [[{ ip: '10.0.0.1', gatewayInterface: 'lan0' }], 'items[0].mac', 'missing field "mac"'],
    [[{ mac: ETH, gatewayInterface: 'lan0' }], 'items[0].ip'],
    [[{ mac: ETH, ip: '10.0.0.1' }], 'items[0].gatewayInterface'],
    [[join(ETH, { interfaceType: 3 })], 'items[0].interfaceType', 'interfaceType is a string'],
    [[join(ETH, { interfaceType: 'x'.repeat(17) })], 'items[0].interfaceType'],
    [[join(ETH, { hostname: 'h'.repeat(256) })], 'items[0].hostname'],
    [[join(ETH, { gatewayInterface: 'g'.repeat(65) })], 'items[0].gatewayInterface'],
    [[join(ETH, { ip: '1'.repeat(65) })], 'items[0].ip'],
    [[join(`${ETH}${' '.repeat(60)}`)], 'items[0].mac'],
    [[join(ETH, { pxe: 'yes' })], 'items[0].pxe'],
    [[join(ETH), join(WLAN, { ip: 'nope' })], 'items[1].ip'],
    [[join(ETH), 'x'], 'items[1]', 'each item is an object'],
    [[{ ...join(ETH), ['k'.repeat(100)]: 1 }], `items[0].${'k'.repeat(40)}`, `unknown field "${'k'.repeat(40)}"`],
    [[join(ETH, { interfaceType: 'x'.repeat(100_000) })], 'items[0].interfaceType', 'interfaceType is at most 16 characters'],
    [[join(ETH, { pxe: 1 })], 'items[0].pxe', 'pxe is a boolean'],
  ])('refuses batch %# naming %s and records nothing', async (items, field, message?: string) => {
    const err = await service.registerBatch(gw('gwy_a1'), items).catch((e: unknown) => e as InvalidValueError);
    expect(err).toMatchObject({ field });
    expect((err as InvalidValueError).message.length).toBeLessThan(200);
    if (message) expect((err as InvalidValueError).message).toContain(message);
    else expect((err as InvalidValueError).message).toMatch(/\w{3}/);
    expect(store.records).toEqual([]);
  });

  it('bounds an item’s fields by length before anything echoes them', () => {
    const err = (() => {
      try {
        parseBatchItem(join(ETH, { gatewayInterface: 'g'.repeat(65) }), 0);
      } catch (e) {
        return e as InvalidValueError;
      }
    })();
    expect(err).toBeInstanceOf(InvalidValueError);
    expect(err!.message.length).toBeLessThan(100);
    expect(parseBatchItem(join(ETH, { hostname: 'h'.repeat(255), interfaceType: 'ethernet' }), 3)).toMatchObject({ hostname: 'h'.repeat(255) });
  });

  it('takes 1 and 256 items, decided in order, one record each', async () => {
    expect(await service.registerBatch(gw('gwy_a1'), [join(ETH, { pxe: true, interfaceType: 'ethernet' })])).toEqual([{ decision: 'active', tipsId: PI }]);
    expect(store.records[0]).toMatchObject({ pxe: true, interfaceType: 'ethernet' });
    const many = Array.from({ length: 256 }, (_, i) => join(i % 2 ? ETH : '02:aa:00:00:00:99'));
    const r = await service.registerBatch(gw('gwy_a1'), many);
    expect(r.map((x) => x.decision)).toEqual(many.map((_, i) => (i % 2 ? 'active' : 'blocked')));
    expect(store.records).toHaveLength(257);
  });
});

describe('T9 decision records: queries and the JSON-lines export', () => {
  it.each([
    [{ limit: '0' }, 'limit'],
    [{ limit: '1001' }, 'limit'],
    [{ limit: '10000' }, 'limit'],
    [{ limit: '-1' }, 'limit'],
    [{ limit: '1e3' }, 'limit'],
    [{ reason: 'bored' }, 'reason'],
    [{ decision: 'maybe' }, 'decision'],
    [{ since: 'yesterday' }, 'since'],
    [{ since: '2026-13-45' }, 'since'],
    [{ since: '1700000000' }, 'since'],
    [{ since: '2026-11-2' }, 'since'],
    [{ since: 'Sun 2026-11-22' }, 'since'],
    [{ mac: 'nope' }, 'mac', 'MAC address'],
  ])('refuses %j naming %s', (q, field, word?: string) => {
    expect(() => parseQuery(q)).toThrow(expect.objectContaining({ field, message: expect.stringContaining(word ?? field) }));
  });

  it('parses limits 1 and 1000, a default of 100, and normalises the filters', () => {
    expect(parseQuery({})).toStrictEqual({ limit: 100 });
    expect(() => parseQuery({ reason: 'x' })).toThrow(expect.objectContaining({ message: expect.stringContaining('unknown_mac, metal_blocked, no_default_space') }));
    expect(() => parseQuery({ decision: 'x' })).toThrow(expect.objectContaining({ message: expect.stringContaining('active, blocked') }));
    expect(() => parseQuery({ limit: '0' })).toThrow(expect.objectContaining({ message: expect.stringContaining('1 to 1000') }));
    expect(parseQuery({ limit: '1' }).limit).toBe(1);
    expect(parseQuery({ limit: '1000' }).limit).toBe(1000);
    expect(parseQuery({ mac: ETH.toUpperCase(), gatewayId: 'gwy_a1', reason: 'unknown_mac', decision: 'active', since: '2026-11-22T11:00:00+01:00' })).toEqual({
      limit: 100,
      mac: ETH,
      gatewayId: 'gwy_a1',
      reason: 'unknown_mac',
      decision: 'active',
      since: '2026-11-22T10:00:00.000Z',
    });
  });

  it('lists failures only when asked, and exports every record oldest first across pages of 500', async () => {
    for (let i = 0; i < 1_001; i++) {
      now += 1;
      await service.register(gw('gwy_a1'), join(i === 7 ? ETH : '02:aa:00:00:00:99'));
    }
    expect((await service.list(ALICE, { limit: '1000' }, true)).every((r) => r.decision === 'blocked')).toBe(true);
    const listed = await service.list(ALICE, { limit: '1000' }, false);
    expect(listed).toHaveLength(1000);
    expect(listed.some((r) => r.decision === 'active')).toBe(true);
    const all: RegistrationRecord[] = [];
    store.listCalls = 0;
    for await (const r of service.export(ALICE, {}, false)) all.push(r);
    expect(all).toHaveLength(1_001);
    // Pages of 500, and no query after a short page.
    expect(store.listCalls).toBe(3);
    const one: RegistrationRecord[] = [];
    for await (const r of service.export(ALICE, { mac: ETH }, false)) one.push(r);
    expect(one.map((r) => r.decision)).toEqual(['active']);
    expect(all.map((r) => r.at)).toEqual([...all.map((r) => r.at)].sort());
    const failures: RegistrationRecord[] = [];
    for await (const r of service.export(ALICE, {}, true)) failures.push(r);
    expect(failures).toHaveLength(1_000);
    expect(failures.every((r) => r.decision === 'blocked')).toBe(true);
    const none: RegistrationRecord[] = [];
    for await (const r of service.export(BOB, {}, false)) none.push(r);
    expect(none).toEqual([]);
  });
});
