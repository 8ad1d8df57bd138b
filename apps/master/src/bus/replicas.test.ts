import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildApp, createServices, type Services } from '../app.ts';
import { FsBlobStore } from '../blob/fs-blob-store.ts';
import { type Db, openDatabase } from '../db/database.ts';
import { BlobTransfers } from '../domains/constrained/transfers.ts';
import type { MetalPrincipal } from '../domains/enrollment/model.ts';
import type { Gateway } from '../domains/gateways/model.ts';
import type { Glaze } from '../domains/glazes/model.ts';
import type { ChannelSocket } from '../domains/gateways/service.ts';
import type { NotificationBus } from '../domains/notifications/model.ts';
import type { Owner } from '../domains/owners/model.ts';
import { InProcessBus } from './in-process.ts';
import { MqttBus } from './mqtt.ts';
import { type Mosquitto, startMosquitto } from './test-servers.ts';

// Three master replicas in one process over one SQLite file, sharing one in-process bus and a clock
// the test holds still: whatever one replica changes, the others must honour without the clock
// moving (so no time-bound cache could have expired) — and, with the bus down, within the old bounds.
let dir: string;
let dbs: Db[];
let bus: InProcessBus;
let r: Services[];
let logs: string[][];
let now: number;
let owner: Owner;
let gateway: Gateway;
const MAC = '02:ee:00:00:00:01';
const join0 = { mac: MAC, ip: '10.77.0.9', gatewayInterface: 'lan0' };
const reasonOf = async (s: Services) => {
  const d = await s.discovery.register(gateway, join0);
  return d.decision === 'blocked' ? d.reason : d.decision;
};

/** An embedded broker as the notifications domain sees it: records what it publishes and whom it disconnects. */
function fakeBroker() {
  const published: string[] = [];
  const disconnected: string[] = [];
  const broker: NotificationBus = {
    url: 'mqtts://replica:8883',
    publish: async (topic) => {
      published.push(topic);
    },
    connectedMetals: () => 0,
    disconnectMetal: (id) => {
      disconnected.push(id);
      return 1;
    },
    close: async () => {},
  };
  return { broker, published, disconnected };
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tips-bus-replicas-'));
  now = Date.parse('2026-11-29T10:00:00Z');
  const clock = { now: () => new Date(now) };
  bus = new InProcessBus({ sharedByReplicas: true });
  dbs = [];
  r = [];
  logs = [];
  const blobs = await FsBlobStore.open(join(dir, 'glazes'));
  for (let i = 0; i < 3; i++) {
    const db = await openDatabase({ kind: 'sqlite', file: join(dir, 'tips.db') });
    const lines: string[] = [];
    const services = createServices({ db, blobs, clock, bus, busKind: 'inprocess' });
    services.bus.useLog({ info: (o) => lines.push(JSON.stringify(o)), warn: (o) => lines.push(JSON.stringify(o)) });
    dbs.push(db);
    r.push(services);
    logs.push(lines);
  }
  owner = (await r[0]!.owners.ensureAdmin())!.owner;
  const { enrollmentToken } = await r[0]!.gateways.create(owner.id, { name: 'gw' });
  gateway = await r[0]!.gateways.enroll({ enrollmentToken, publicKey: generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString() });
  await r[0]!.spaces.create(owner.id, { name: 'os', phase: 1 });
  await r[0]!.metals.create(owner.id, { name: 'pi', interfaces: [{ name: 'eth0', mac: MAC, type: 'ethernet', pxe: true }] });
  await r[0]!.spaces.addMember(owner.id, 'os', { metal: 'pi', interfaces: ['eth0'], default: true });
  // Every replica has decided once: its caches hold the metal as eligible and not blocked.
  for (const s of r) expect(await reasonOf(s)).toBe('active');
});
afterEach(async () => {
  for (const db of dbs) await db.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('T2 B5 T16 replicas follow each other over the bus', () => {
  it('a block through one replica is refused by the others with the clock standing still; an unblock too', async () => {
    await r[0]!.discovery.block(owner.id, 'pi');
    for (const s of r.slice(1)) await expect.poll(() => reasonOf(s), { timeout: 1_000 }).toBe('metal_blocked');
    await r[2]!.discovery.unblock(owner.id, 'pi');
    for (const s of r.slice(0, 2)) await expect.poll(() => reasonOf(s), { timeout: 1_000 }).toBe('active');
    // A block message is only a reason to re-read: one that no database row backs blocks nothing.
    const metal = await r[0]!.metals.get(owner.id, 'pi');
    await bus.publish('tips.metal.block', { o: 'intruder', m: { metalId: metal.id, blocked: true } });
    await new Promise((res) => setTimeout(res, 50));
    expect(await reasonOf(r[1]!)).toBe('active');
  });

  it('a lost default Space or a deleted metal through one replica counts on the others at once (the 30 s cache is dropped)', async () => {
    await r[1]!.spaces.removeMember(owner.id, 'os', 'pi');
    await expect.poll(() => reasonOf(r[0]!), { timeout: 1_000 }).toBe('no_default_space');
    await expect.poll(() => reasonOf(r[2]!), { timeout: 1_000 }).toBe('no_default_space');
    await r[0]!.spaces.addMember(owner.id, 'os', { metal: 'pi', interfaces: ['eth0'], default: true });
    for (const s of r) expect(await reasonOf(s)).toBe('active');
    await r[2]!.metals.delete(owner.id, 'pi');
    await expect.poll(() => reasonOf(r[0]!), { timeout: 1_000 }).toBe('unknown_mac');
  });

  it('with the bus down each replica falls back to its time-bound caches (logged once), and re-reads them when it is back', async () => {
    bus.partition(true);
    expect(logs[1]!.filter((l) => l.includes('"bus_down"'))).toHaveLength(1);
    await r[0]!.discovery.block(owner.id, 'pi');
    // The message is lost; replica 1 still holds its read of the blocks, until its 1 s bound.
    expect(await reasonOf(r[1]!)).toBe('active');
    now += 1_000;
    expect(await reasonOf(r[1]!)).toBe('metal_blocked');
    // A change made while the bus is down, then the bus back: replica 2 re-reads what it cached.
    await r[0]!.spaces.removeMember(owner.id, 'os', 'pi');
    await r[0]!.discovery.unblock(owner.id, 'pi');
    bus.partition(false);
    expect(logs[2]!.filter((l) => l.includes('"bus_up"'))).toHaveLength(1);
    expect(logs[2]!.filter((l) => l.includes('"bus_down"'))).toHaveLength(1);
    now += 1_000;
    expect(await reasonOf(r[2]!)).toBe('no_default_space');
  });

  it('a gateway removed through one replica is refused by the others at once and its channel there is closed', async () => {
    const closed: number[] = [];
    const socket: ChannelSocket = { send: () => {}, close: (code) => closed.push(code) };
    await r[2]!.gateways.channelOpened(gateway.id, socket);
    await r[0]!.gateways.delete(owner.id, 'gw');
    await expect.poll(() => closed, { timeout: 1_000 }).toEqual([4001]);
    expect(r[2]!.gateways.isConnected(gateway.id)).toBe(false);
  });

  it('a command queued through one replica is pushed by the replica that holds the gateway’s channel; a bus message naming no queued command pushes nothing', async () => {
    const sent: string[] = [];
    await r[2]!.gateways.channelOpened(gateway.id, { send: (t) => sent.push(t), close: () => {} });
    const queued = await r[0]!.gateways.send(gateway.id, { type: 'clear', mac: MAC });
    await expect.poll(() => sent.map((t) => JSON.parse(t).id), { timeout: 1_000 }).toEqual([queued.id]);
    expect(JSON.parse(sent[0]!)).toEqual({ id: queued.id, type: 'clear', mac: MAC });
    // Whoever can publish on the bus cannot make up a command: only queued ones are pushed.
    await bus.publish('tips.gateway.command', { o: 'intruder', m: { gatewayId: gateway.id, commandId: 'cmd_forged' } });
    await new Promise((res) => setTimeout(res, 100));
    expect(sent).toHaveLength(1);
  });

  it('Phase 3 notifications reach the metals of every replica’s broker; a revocation ends the metal’s sessions on every replica', async () => {
    const brokers = r.map((s) => {
      const f = fakeBroker();
      s.notifications.useBus(f.broker);
      return f;
    });
    expect(await r[0]!.notifications.notify(['m1', 'm2'], { glazes: ['g'], spaceId: 's', reason: 'glaze_set', notBefore: null })).toBe(2);
    for (const b of brokers) await expect.poll(() => [...b.published].sort(), { timeout: 1_000 }).toEqual(['tips/metal/m1', 'tips/metal/m2']);
    const metal = await r[0]!.metals.get(owner.id, 'pi');
    await r[1]!.enrollment.revokeMetal(owner.id, 'pi');
    for (const b of brokers) await expect.poll(() => b.disconnected, { timeout: 1_000 }).toEqual([metal.id]);
  });
});

/**
 * A replica's Block2 transfer cache (constrained/transfers.ts) on a clock held still, wired to its
 * services as the CoAP endpoint wires it (coap.ts: constrained.onAccessChanged → revoke): one transfer
 * of `metalId` in progress, served from the cache ('hit') until a revocation makes it re-check.
 */
function transferCache(s: Services, clock: () => number, metalId: string) {
  const t = new BlobTransfers(clock);
  s.constrained.onAccessChanged(() => t.revoke());
  const key = 'peer-1|glz_1';
  const begin = () => {
    t.start(key, { metalId, ownerId: owner.id } as MetalPrincipal, { id: 'glz_1', sha256: '00', size: 1 } as Glaze);
    expect(t.lookup(key).result).toBe('hit');
  };
  begin();
  return { begin, next: () => t.lookup(key).result };
}

describe('issue 12 issue 13 T2 B5 a revocation on one replica stops Block2 transfers on the others at their next block', () => {
  it('PSK revoked, metal blocked, certificates revoked, metal deleted: the other replicas re-check with the clock standing still; with the bus down the 1 s re-check does', async () => {
    const metal = await r[0]!.metals.get(owner.id, 'pi');
    const caches = r.map((s) => transferCache(s, () => now, metal.id));
    const others = (i: number) => caches.filter((_, j) => j !== i);
    const { credential } = await r[0]!.constrained.issuePsk(owner.id, 'pi');
    await r[0]!.constrained.revokePsk(owner.id, 'pi', credential.identity);
    expect(caches[0]!.next()).toBe('recheck');
    for (const c of others(0)) await expect.poll(() => c.next(), { timeout: 1_000 }).toBe('recheck');
    for (const c of caches) c.begin();
    await r[1]!.discovery.block(owner.id, 'pi');
    for (const c of others(1)) await expect.poll(() => c.next(), { timeout: 1_000 }).toBe('recheck');
    // An unblock revokes nothing: the transfers elsewhere keep being served from the cache.
    for (const c of caches) c.begin();
    await r[1]!.discovery.unblock(owner.id, 'pi');
    await new Promise((res) => setTimeout(res, 100));
    expect(caches[0]!.next()).toBe('hit');
    expect(caches[2]!.next()).toBe('hit');
    await r[2]!.enrollment.revokeMetal(owner.id, 'pi');
    for (const c of others(2)) await expect.poll(() => c.next(), { timeout: 1_000 }).toBe('recheck');

    // Bus down: the message is lost, the transfer on replica 1 is served until its 1 s re-check.
    for (const c of caches) c.begin();
    bus.partition(true);
    const second = await r[0]!.constrained.issuePsk(owner.id, 'pi');
    await r[0]!.constrained.revokePsk(owner.id, 'pi', second.credential.identity);
    await new Promise((res) => setTimeout(res, 100));
    expect(caches[1]!.next()).toBe('hit');
    now += 1_001;
    expect(caches[1]!.next()).toBe('recheck');
    // Back up: every transfer re-checks once (what was missed meanwhile is not known).
    now += 1_001;
    caches[2]!.begin();
    bus.partition(false);
    expect(caches[2]!.next()).toBe('recheck');
    for (const c of caches) c.begin();
    await r[0]!.metals.delete(owner.id, 'pi');
    for (const c of others(0)) await expect.poll(() => c.next(), { timeout: 1_000 }).toBe('recheck');
  });
});

describe('issue 12 issue 13 T2 B5 over Debian\'s Mosquitto: a PSK revoked on replica A stops replica B\'s Block2 transfer at its next block', () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('reaches B through the broker with B\'s clock standing still', async () => {
    const d = mkdtempSync(join(tmpdir(), 'tips-bus-transfers-'));
    const log = { info: () => {}, warn: () => {} };
    const ends = [new MqttBus(broker.url, log), new MqttBus(broker.url, log)];
    const dbsHere: Db[] = [];
    try {
      const blobs = await FsBlobStore.open(join(d, 'glazes'));
      const still = Date.parse('2026-11-29T10:00:00Z');
      const replicas: Services[] = [];
      for (const end of ends) {
        const db = await openDatabase({ kind: 'sqlite', file: join(d, 'tips.db') });
        dbsHere.push(db);
        replicas.push(createServices({ db, blobs, clock: { now: () => new Date(still) }, bus: end, busKind: 'mqtt' }));
      }
      for (const s of replicas) await expect.poll(() => s.bus.up(), { timeout: 10_000 }).toBe(true);
      const admin = (await replicas[0]!.owners.ensureAdmin())!.owner;
      const metal = await replicas[0]!.metals.create(admin.id, { name: 'mote', interfaces: [{ name: 'eth0', mac: '02:ee:00:00:00:07', type: 'ethernet', pxe: true }] });
      const { credential } = await replicas[0]!.constrained.issuePsk(admin.id, 'mote');
      const t = new BlobTransfers(() => still);
      replicas[1]!.constrained.onAccessChanged(() => t.revoke());
      t.start('peer-1|glz_1', { metalId: metal.id as string, ownerId: admin.id } as MetalPrincipal, { id: 'glz_1', sha256: '00', size: 1 } as Glaze);
      expect(t.lookup('peer-1|glz_1').result).toBe('hit');
      await replicas[0]!.constrained.revokePsk(admin.id, 'mote', credential.identity);
      await expect.poll(() => t.lookup('peer-1|glz_1').result, { timeout: 5_000 }).toBe('recheck');
    } finally {
      for (const e of ends) await e.close();
      for (const db of dbsHere) await db.destroy();
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('T2 B5 /readyz and metrics show the bus', () => {
  it('says degraded (200, bus down) while the bus is down, ready when it is back, and counts messages', async () => {
    const shared = new InProcessBus({ sharedByReplicas: true });
    const d = mkdtempSync(join(tmpdir(), 'tips-bus-readyz-'));
    const db = await openDatabase({ kind: 'sqlite', file: join(d, 'tips.db') });
    const { app, services } = await buildApp({ db, blobs: await FsBlobStore.open(join(d, 'glazes')), bus: shared, busKind: 'nats' });
    const peer: unknown[] = [];
    shared.subscribe('tips.metal.block', (m) => peer.push(m));
    try {
      expect((await app.inject({ url: '/readyz' })).json()).toEqual({ status: 'ready', bus: 'up' });
      shared.partition(true);
      const down = await app.inject({ url: '/readyz' });
      expect([down.statusCode, down.json()]).toEqual([200, { status: 'degraded', bus: 'down' }]);
      expect((await app.inject({ url: '/metrics' })).body).toMatch(/tips_master_bus_up\{bus="nats"\} 0/);
      await services.bus.publish('tips.metal.block', { metalId: 'm', blocked: true });
      shared.partition(false);
      await services.bus.publish('tips.metal.block', { metalId: 'm', blocked: false });
      expect((await app.inject({ url: '/readyz' })).json()).toEqual({ status: 'ready', bus: 'up' });
      const metrics = (await app.inject({ url: '/metrics' })).body;
      expect(metrics).toMatch(/tips_master_bus_up\{bus="nats"\} 1/);
      expect(metrics).toMatch(/tips_master_bus_messages_total\{direction="dropped",topic="tips.metal.block"\} 1/);
      expect(metrics).toMatch(/tips_master_bus_messages_total\{direction="out",topic="tips.metal.block"\} 1/);
      await expect.poll(() => peer, { timeout: 5_000 }).toEqual([{ o: services.bus.origin, m: { metalId: 'm', blocked: false } }]);
    } finally {
      await app.close();
      await db.destroy();
      rmSync(d, { recursive: true, force: true });
    }
  });
});
