import type { FirmwareJob } from './model.ts';
import { createHash, generateKeyPairSync } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { bindGlaze, importKey } from '@tips/suit';
import type { TipsId } from '@tips/core';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { type TestMaster, testMaster } from '../../testing.ts';
import { DeviceMgmtError } from './errors.ts';
import { FW_RESULT, FW_STATE, nextJobStatus } from './firmware.ts';
import { DeviceMgmtService, type DeviceChannel, MAX_QUEUED } from './service.ts';
import { KyselyDeviceMgmtStore } from './store.kysely.ts';
import type { Lwm2mPath, ResourceRecord } from './values.ts';

const operator = generateKeyPairSync('ed25519');
const enc = (s: string) => new TextEncoder().encode(s);
const BODY = enc('</>;rt="oma.lwm2m",</1/0>,</3/0>,</5/0>');

/** A device behind a fake channel: what it was asked, and a Firmware Update object that walks the spec's states. */
class FakeDevice implements DeviceChannel {
  calls: string[] = [];
  observers = new Map<string, (r: ResourceRecord[]) => void>();
  state = 0;
  result = 0;
  failWrite = false;
  /** Set: the download starts only when the test calls it (so a job is certainly still running). */
  startDownload: (() => void) | undefined;
  holdDownload = false;
  baseUri = () => 'coaps://master.test:5684';
  private notify() {
    this.observers.get('5/0/3')?.([{ path: [5, 0, 3], value: this.state }]);
    this.observers.get('5/0/5')?.([{ path: [5, 0, 5], value: this.result }]);
  }
  async read(_m: TipsId, path: Lwm2mPath) {
    this.calls.push(`read ${path.join('/')}`);
    return [{ path: [3, 0, 9], value: 87 }, { path: [3, 0, 0], value: 'ACME' }];
  }
  async write(_m: TipsId, path: Lwm2mPath) {
    this.calls.push(`write ${path.join('/')}`);
  }
  async writeRaw(_m: TipsId, path: Lwm2mPath, value: Uint8Array | string) {
    this.calls.push(`writeRaw ${path.join('/')} ${typeof value === 'string' ? value : `${value.length} bytes`}`);
    if (this.failWrite) throw new DeviceMgmtError('lwm2m_device_error', 'device answered 4.00', 'device');
    if (path.join('/') === '5/0/1') {
      const download = () => {
        this.state = FW_STATE.DOWNLOADING;
        this.notify();
        this.state = FW_STATE.DOWNLOADED;
        this.notify();
      };
      if (this.holdDownload) this.startDownload = download;
      else queueMicrotask(download);
    }
  }
  async execute(_m: TipsId, path: Lwm2mPath) {
    this.calls.push(`execute ${path.join('/')}`);
    this.state = FW_STATE.UPDATING;
    this.notify();
    this.state = FW_STATE.IDLE;
    this.result = FW_RESULT.SUCCESS;
    this.notify();
  }
  async observe(_m: TipsId, path: Lwm2mPath, on: (r: ResourceRecord[]) => void) {
    this.calls.push(`observe ${path.join('/')}`);
    this.observers.set(path.join('/'), on);
    on([{ path: path as number[], value: path[2] === 3 ? this.state : this.result }]);
  }
}

/** The `change` events of an owner's live stream (the server ends it after ?seconds=), `act` run once it is ready. */
async function changes(url: string, headers: Record<string, string>, act: () => Promise<void>): Promise<{ kind: string; resource?: string }[]> {
  const r = await fetch(url, { headers });
  const reader = r.body!.getReader();
  let text = '';
  let acted = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += Buffer.from(value).toString('utf8');
    if (!acted && text.includes('event: ready')) {
      acted = true;
      await act();
    }
  }
  return [...text.matchAll(/^event: change\ndata: (.*)$/gm)].map((x) => JSON.parse(x[1]!));
}

for (const db of ['sqlite', 'postgres'] as const) {
  describe(`Z5 S13 LwM2M registrations and firmware jobs (${db})`, () => {
    let m: TestMaster;
    let now = Date.parse('2026-11-29T16:00:00Z');
    let devices: DeviceMgmtService;
    const owner = (method: string, url: string, payload?: unknown) => m.app.inject({ method: method as 'GET', url, headers: m.auth(m.alice.token), payload: payload as object });
    beforeEach(async () => {
      m = await testMaster(db === 'postgres' ? { pgUrl: inject('pgUrl') } : {});
      const s = m.services;
      // The service with a clock the test moves; the routes' service shares its store (same database).
      devices = new DeviceMgmtService(new KyselyDeviceMgmtStore(m.db), s.metals, s.spaces, s.glazes, s.keys, s.events, { now: () => new Date(now) }, { bytes: (n) => new Uint8Array(n).map(() => Math.floor(Math.random() * 256)) }, 10);
    });
    afterEach(async () => m.close());

    async function metal(name: string) {
      const r = await owner('POST', '/api/v1/metals', { name, interfaces: [{ name: 'eth0', mac: `02:00:00:00:00:${name.slice(-2)}`, type: 'ethernet', pxe: true }] });
      expect(r.statusCode, r.body).toBe(201);
      return { metalId: r.json().id as string, ownerId: m.alice.id };
    }

    it('registers only the metal of the session (ep by TIPS ID or name), updates, expires after lifetime + grace, de-registers', async () => {
      const a = await metal('sensor-01');
      const b = await metal('sensor-02');
      await expect(devices.register(a, { ep: 'sensor-02', lt: '60', lwm2m: '1.1', b: 'U' }, BODY)).rejects.toMatchObject({ code: 'lwm2m_endpoint_mismatch' });
      await expect(devices.register(a, { ep: 'nobody', lt: '60' }, BODY)).rejects.toMatchObject({ code: 'lwm2m_endpoint_mismatch' });
      expect(await devices.registrationOf(b.metalId as TipsId)).toBeUndefined();
      expect(await devices.registrationOf(a.metalId as TipsId)).toBeUndefined();
      for (const [q, field] of [
        [{ ep: 'sensor-01', lt: '0' }, 'lt'],
        [{ ep: 'sensor-01', lt: '12x' }, 'lt'],
        [{ ep: 'sensor-01', b: 'T' }, 'b'],
        [{ ep: 'sensor-01', lwm2m: '2.0' }, 'lwm2m'],
        [{ lt: '5' }, 'ep'],
      ] as const) {
        await expect(devices.register(a, q as Record<string, string>, BODY)).rejects.toMatchObject({ code: 'lwm2m_malformed', field });
      }
      await expect(devices.register(a, { ep: 'sensor-01' }, enc('</3/0'))).rejects.toMatchObject({ code: 'lwm2m_malformed', field: 'payload' });
      expect(await devices.registrationOf(a.metalId as TipsId)).toBeUndefined();

      const r = await devices.register(a, { ep: 'sensor-01', lt: '60', lwm2m: '1.1', b: 'UQ' }, BODY);
      expect(r).toMatchObject({ lifetime: 60, queueMode: true, online: true, objects: [{ objectId: 1, instances: [0] }, { objectId: 3, instances: [0] }, { objectId: 5, instances: [0] }] });
      // Another metal cannot touch it: not found, nothing changes.
      await expect(devices.update(b, r.id, { lt: '5' }, new Uint8Array())).rejects.toMatchObject({ code: 'lwm2m_registration_not_found' });
      await expect(devices.deregister(b, r.id)).rejects.toMatchObject({ code: 'lwm2m_registration_not_found' });
      expect((await devices.registrationOf(a.metalId as TipsId))?.lifetime).toBe(60);

      now += 65_000;
      expect(await devices.sweep()).toBe(0);
      await devices.update(a, r.id, { lt: '30' }, new Uint8Array());
      now += 39_000;
      expect(await devices.sweep()).toBe(0);
      expect((await devices.view(a.metalId as TipsId))?.online).toBe(true);
      now += 2_000;
      expect(await devices.sweep()).toBe(1);
      const shown = await owner('GET', '/api/v1/metals/sensor-01');
      expect(shown.json().lwm2m).toMatchObject({ registrationId: r.id, lifetime: 30, binding: 'UQ', online: false, firmware: null });
      expect((await owner('GET', '/api/v1/metals/sensor-02')).json().lwm2m).toBeNull();
      // An Update brings it back online.
      await devices.update(a, r.id, {}, new Uint8Array());
      expect((await devices.view(a.metalId as TipsId))?.online).toBe(true);
      await devices.deregister(a, r.id);
      expect(await devices.registrationOf(a.metalId as TipsId)).toBeUndefined();
      expect((await owner('GET', '/api/v1/metals/sensor-01/lwm2m')).statusCode).toBe(404);
    });

    it('Z5 S4 S5: a firmware job writes the signed manifest then the CoAP URI, executes Update at Downloaded once, ends at success', async () => {
      const a = await metal('sensor-01');
      expect((await owner('POST', '/api/v1/keys', { name: 'ops', publicKey: operator.publicKey.export({ type: 'spki', format: 'pem' }).toString() })).statusCode).toBe(201);
      expect((await owner('POST', '/api/v1/spaces', { name: 'fleet', phase: 2 })).statusCode).toBe(201);
      const bytes = Buffer.from('firmware '.repeat(300));
      const g = (await m.app.inject({ method: 'POST', url: '/api/v1/glazes?name=fw&spaces=fleet', headers: { ...m.auth(m.alice.token), 'content-type': 'application/octet-stream' }, payload: bytes })).json();
      const other = (await m.app.inject({ method: 'POST', url: '/api/v1/glazes?name=fw2', headers: { ...m.auth(m.alice.token), 'content-type': 'application/octet-stream' }, payload: bytes })).json();
      expect((await owner('POST', '/api/v1/spaces/fleet/members', { metal: a.metalId, interfaces: ['eth0'] })).statusCode).toBe(201);
      expect((await owner('PATCH', '/api/v1/spaces/fleet', { glaze: g.id })).statusCode).toBe(200);
      const dev = new FakeDevice();
      devices.useChannel(dev);
      await expect(devices.startFirmwareUpdate(m.alice.id, 'sensor-01', g.id)).rejects.toMatchObject({ code: 'lwm2m_not_registered' });
      await devices.register(a, { ep: a.metalId, lt: '300' }, BODY);
      await expect(devices.startFirmwareUpdate(m.alice.id, 'sensor-01', g.id)).rejects.toMatchObject({ code: 'lwm2m_glaze_unsigned' });
      await expect(devices.startFirmwareUpdate(m.alice.id, 'sensor-01', other.id)).rejects.toMatchObject({ code: 'lwm2m_glaze_not_for_metal' });
      expect(dev.calls).toEqual([]);
      const envelope = bindGlaze({ payloadSha256: createHash('sha256').update(bytes).digest('hex'), payloadSize: bytes.length, uri: 'x', vendorDomain: 'tips.local', classInfo: 'fw', component: 'fw', sequenceNumber: 3, key: importKey(operator.privateKey) });
      expect((await m.app.inject({ method: 'PUT', url: `/api/v1/glazes/${g.id}/manifest`, headers: { ...m.auth(m.alice.token), 'content-type': 'application/suit-envelope+cose' }, payload: Buffer.from(envelope) })).statusCode).toBe(200);

      // Every move of the job is told to the owner's console (it shows the progress live).
      const told: string[] = [];
      devices.useChanges((ownerId, what) => told.push(`${ownerId === m.alice.id ? 'alice' : ownerId} ${what}`));
      dev.holdDownload = true;
      const job = (await devices.startFirmwareUpdate(m.alice.id, 'sensor-01', g.id)) as FirmwareJob;
      expect(job.packageUri).toBe(`coaps://master.test:5684/glazes/${g.id}/blob`);
      await expect(devices.startFirmwareUpdate(m.alice.id, 'sensor-01', g.id)).rejects.toMatchObject({ code: 'lwm2m_firmware_busy' });
      dev.startDownload?.();
      for (let i = 0; i < 500 && (await devices.view(a.metalId as TipsId))?.firmware?.status !== 'succeeded'; i++) await new Promise((r) => setTimeout(r, 20));
      expect(dev.calls).toEqual(['observe 5/0/3', 'observe 5/0/5', `writeRaw 5/0/0 ${envelope.length} bytes`, `writeRaw 5/0/1 ${job.packageUri}`, 'execute 5/0/2']);
      const v = await owner('GET', '/api/v1/metals/sensor-01/lwm2m');
      expect(v.json().firmware).toMatchObject({ jobId: job.id, status: 'succeeded', state: 'idle', result: 'success', glazeId: g.id });
      expect(told.length).toBeGreaterThanOrEqual(4); // downloading, downloaded, updating, succeeded
      expect(new Set(told)).toEqual(new Set(['alice firmware']));
      const res = await owner('GET', '/api/v1/metals/sensor-01/lwm2m/resources/5/0/5');
      expect(res.json()).toMatchObject({ path: '/5/0/5', value: 1 });
      expect((await owner('GET', '/api/v1/metals/sensor-01/lwm2m/resources/3/0/9')).json().error.code).toBe('lwm2m_resource_not_found');

      // A device that refuses the write fails the job with its answer; nothing is executed.
      dev.failWrite = true;
      dev.calls = [];
      told.length = 0;
      await expect(devices.startFirmwareUpdate(m.alice.id, 'sensor-01', g.id)).rejects.toMatchObject({ code: 'lwm2m_device_error' });
      expect((await devices.view(a.metalId as TipsId))?.firmware).toMatchObject({ status: 'failed' });
      expect(told).toEqual(['alice firmware']);
      expect(dev.calls.filter((c) => c.startsWith('execute'))).toEqual([]);
    });

    it('owner API: reads live through the channel and keeps the values; offline and unregistered devices are 409', async () => {
      const a = await metal('sensor-01');
      const r = await owner('POST', '/api/v1/metals/sensor-01/lwm2m/read', { path: '/3/0' });
      expect(r.statusCode).toBe(409);
      expect(r.json().error.code).toBe('lwm2m_not_registered');
      // The routes' own service (the app's) has no CoAP endpoint in this test master.
      await m.services.devices.register(a, { ep: 'sensor-01', lt: '60' }, BODY);
      const n = await owner('POST', '/api/v1/metals/sensor-01/lwm2m/read', { path: '/3/0' });
      expect(n.statusCode).toBe(503);
      expect((await owner('POST', '/api/v1/metals/sensor-01/lwm2m/read', { path: '/3/x' })).statusCode).toBe(400);
      expect((await owner('POST', '/api/v1/metals/sensor-01/lwm2m/read', { path: '/0/0' })).json().error).toMatchObject({ code: 'lwm2m_malformed', field: 'path' });
      m.services.devices.useChannel(new FakeDevice());
      const ok = await owner('POST', '/api/v1/metals/sensor-01/lwm2m/read', { path: '/3/0' });
      expect(ok.statusCode, ok.body).toBe(200);
      expect(ok.json().records).toEqual([{ path: '/3/0/9', value: 87 }, { path: '/3/0/0', value: 'ACME' }]);
      expect((await owner('GET', '/api/v1/metals/sensor-01/lwm2m/resources/3/0/0')).json().value).toBe('ACME');
      expect((await owner('GET', '/api/v1/metals/sensor-01/lwm2m/resources/3/0/x')).statusCode).toBe(400);
      // Bob sees none of it.
      const bob = await m.app.inject({ method: 'GET', url: '/api/v1/metals/sensor-01/lwm2m', headers: m.auth(m.bob.token) });
      expect(bob.statusCode).toBe(404);
    });

    it('queue mode (UQ): reads wait for the next update (202, nothing sent), at most MAX_QUEUED, then go out in order', async () => {
      const a = await metal('sensor-01');
      const dev = new FakeDevice();
      devices.useChannel(dev);
      const r = await devices.register(a, { ep: 'sensor-01', lt: '60', b: 'UQ' }, BODY);
      const ops = [];
      for (let i = 0; i < MAX_QUEUED; i++) ops.push(await devices.read(m.alice.id, 'sensor-01', `/3/0/${i}`));
      expect(ops.every((o) => !Array.isArray(o) && o.queued.status === 'queued')).toBe(true);
      await expect(devices.read(m.alice.id, 'sensor-01', '/3/0/9')).rejects.toMatchObject({ code: 'lwm2m_queue_full', field: 'metal' });
      expect(dev.calls).toEqual([]);
      await devices.update(a, r.id, {}, new Uint8Array(0));
      await devices.flushQueue(a.metalId as TipsId);
      expect(dev.calls).toEqual(Array.from({ length: MAX_QUEUED }, (_, i) => `read 3/0/${i}`));
      const after = await devices.queued(m.alice.id, 'sensor-01');
      expect(after.map((o) => o.status)).toEqual(Array(MAX_QUEUED).fill('done'));
      expect(after[0]!.records).toEqual([{ path: '/3/0/9', value: 87 }, { path: '/3/0/0', value: 'ACME' }]);
      // A device in binding U is read at once.
      await devices.update(a, r.id, { b: 'U' }, new Uint8Array(0));
      expect(Array.isArray(await devices.read(m.alice.id, 'sensor-01', '/3/0'))).toBe(true);
    });

    it('queue mode → U (Core §6.5, §6.2.2): a device that switches to binding U in an Update gets what was queued at that Update; so does one that re-registers in U; a read asked once it is U goes at once', async () => {
      const a = await metal('sensor-01');
      const dev = new FakeDevice();
      devices.useChannel(dev);
      const r = await devices.register(a, { ep: 'sensor-01', lt: '60', b: 'UQ' }, BODY);
      expect(r.sendQueued).toBe(true);
      const q1 = await devices.read(m.alice.id, 'sensor-01', '/3/0/1');
      if (Array.isArray(q1)) throw new Error('a UQ device was read at once');
      // The Update that switches it to U is the moment it is reachable: the registration interface
      // sends the queued read after answering (coap.ts runs flushQueue when sendQueued), not at a next
      // UQ update that may never come.
      const u = await devices.update(a, r.id, { b: 'U' }, new Uint8Array(0));
      expect([u.queueMode, u.sendQueued]).toEqual([false, true]);
      await devices.flushQueue(a.metalId as TipsId);
      expect((await devices.queued(m.alice.id, 'sensor-01')).map((o) => [o.id, o.status])).toEqual([[q1.queued.id, 'done']]);
      expect(dev.calls).toEqual(['read 3/0/1']);
      // From then on it is a U device: a next Update has nothing to send, a read goes at once.
      expect((await devices.update(a, r.id, {}, new Uint8Array(0))).sendQueued).toBe(false);
      expect(Array.isArray(await devices.read(m.alice.id, 'sensor-01', '/3/0/2'))).toBe(true);

      // A device back in queue mode, then re-registering (a reboot) in plain U: the same.
      await devices.update(a, r.id, { b: 'UQ' }, new Uint8Array(0));
      const q2 = await devices.read(m.alice.id, 'sensor-01', '/3/0/3');
      if (Array.isArray(q2)) throw new Error('a UQ device was read at once');
      expect((await devices.register(a, { ep: 'sensor-01', lt: '60', b: 'U' }, BODY)).sendQueued).toBe(true);
      await devices.flushQueue(a.metalId as TipsId);
      expect((await devices.queued(m.alice.id, 'sensor-01')).find((o) => o.id === q2.queued.id)?.status).toBe('done');
      // A device that never slept has nothing queued to send.
      expect((await devices.register(a, { ep: 'sensor-01', lt: '60', b: 'U' }, BODY)).sendQueued).toBe(false);
      expect(dev.calls).toEqual(['read 3/0/1', 'read 3/0/2', 'read 3/0/3']);

      // The race behind it: a replica that saw UQ and queues after the switch to U committed does not
      // leave the operation waiting for a flush that will not come — the store answers 'awake'.
      const store = new KyselyDeviceMgmtStore(m.db);
      const at = new Date(now).toISOString();
      expect(await store.enqueue({ id: 'lwq_RACE', metalId: a.metalId as TipsId, ownerId: m.alice.id, kind: 'read', target: '/3/0/4', status: 'queued', createdAt: at, updatedAt: at }, MAX_QUEUED)).toBe('awake');
      expect((await devices.queued(m.alice.id, 'sensor-01')).map((o) => o.id)).not.toContain('lwq_RACE');
    });

    it('D6 live: registrations (register, update, de-register, offline at lifetime expiry) and queued operations moving are told to the owner; the app puts them on the owner\'s event stream only', async () => {
      const a = await metal('sensor-01');
      const dev = new FakeDevice();
      devices.useChannel(dev);
      const seen: string[] = [];
      devices.useChanges((ownerId, what) => seen.push(`${ownerId === m.alice.id ? 'alice' : ownerId} ${what}`));
      const r = await devices.register(a, { ep: 'sensor-01', lt: '60', b: 'UQ' }, BODY);
      await devices.read(m.alice.id, 'sensor-01', '/3/0/9');
      await devices.update(a, r.id, {}, new Uint8Array(0));
      await devices.flushQueue(a.metalId as TipsId);
      // sent, then done
      expect(seen).toEqual(['alice register', 'alice update', 'alice queue', 'alice queue']);
      seen.length = 0;
      now += 71_000;
      expect(await devices.sweep()).toBe(1);
      expect(await devices.sweep()).toBe(0);
      await devices.deregister(a, r.id);
      expect(seen).toEqual(['alice offline', 'alice deregister']);

      // Through the app's own service: on alice's Server-Sent Events stream, not on bob's.
      await m.app.listen({ port: 0, host: '127.0.0.1' });
      const base = `http://127.0.0.1:${(m.app.server.address() as AddressInfo).port}`;
      const bobSaw = changes(`${base}/api/v1/events?seconds=2`, m.auth(m.bob.token), async () => undefined);
      const aliceSaw = await changes(`${base}/api/v1/events?seconds=2`, m.auth(m.alice.token), async () => {
        await m.services.devices.register(a, { ep: 'sensor-01', lt: '60' }, BODY);
      });
      expect(aliceSaw).toEqual([expect.objectContaining({ kind: 'metal', resource: 'lwm2m' })]);
      expect(await bobSaw).toEqual([]);
    });

    it('issue 13 queue mode across replicas: queued on one, listed and sent by another (each operation once, even when both flush at once), kept across a restart; a send cut off by a dead replica ends failed', async () => {
      const a = await metal('sensor-01');
      const devA = new FakeDevice();
      const devB = new FakeDevice();
      devices.useChannel(devA);
      const r = await devices.register(a, { ep: 'sensor-01', lt: '600', b: 'UQ' }, BODY);
      const queued = [];
      for (const p of ['/3/0/1', '/3/0/2', '/3/0/3']) {
        const q = await devices.read(m.alice.id, 'sensor-01', p);
        if (Array.isArray(q)) throw new Error('a UQ device was read at once');
        queued.push(q.queued);
      }
      // Another replica (or this one restarted: nothing in memory) sees the same queue, in order.
      const replica = () => new DeviceMgmtService(new KyselyDeviceMgmtStore(m.db), m.services.metals, m.services.spaces, m.services.glazes, m.services.keys, m.services.events, { now: () => new Date(now) }, { bytes: (n) => new Uint8Array(n).map(() => Math.floor(Math.random() * 256)) }, 10);
      const b = replica();
      expect((await b.queued(m.alice.id, 'sensor-01')).map((o) => [o.id, o.target, o.status])).toEqual(queued.map((o) => [o.id, o.target, 'queued']));
      // The device's update reaches both replicas in quick succession: both flush, each read goes out once.
      b.useChannel(devB);
      await b.update(a, r.id, {}, new Uint8Array(0));
      await Promise.all([devices.flushQueue(a.metalId as TipsId), b.flushQueue(a.metalId as TipsId), b.flushQueue(a.metalId as TipsId)]);
      expect([...devA.calls, ...devB.calls].sort()).toEqual(['read 3/0/1', 'read 3/0/2', 'read 3/0/3']);
      const done = await replica().queued(m.alice.id, 'sensor-01');
      expect(done.map((o) => [o.id, o.status])).toEqual(queued.map((o) => [o.id, 'done']));
      expect(done[0]!.records).toEqual([{ path: '/3/0/9', value: 87 }, { path: '/3/0/0', value: 'ACME' }]);
      // Nothing is sent twice: a later flush sends nothing.
      await devices.flushQueue(a.metalId as TipsId);
      expect(devA.calls.length + devB.calls.length).toBe(3);
      // One operation through the owner API (and `tips lwm2m queue <metal> <op>`); another owner's or an unknown one is 404.
      const one = await owner('GET', `/api/v1/metals/sensor-01/lwm2m/queue/${queued[1]!.id}`);
      expect(one.statusCode, one.body).toBe(200);
      expect(one.json()).toMatchObject({ id: queued[1]!.id, kind: 'read', target: '/3/0/2', status: 'done', records: [{ path: '/3/0/9', value: 87 }, { path: '/3/0/0', value: 'ACME' }] });
      expect((await owner('GET', '/api/v1/metals/sensor-01/lwm2m/queue/lwq_NOSUCH')).json().error).toMatchObject({ code: 'lwm2m_operation_not_found', field: 'op' });
      expect((await m.app.inject({ method: 'GET', url: `/api/v1/metals/sensor-01/lwm2m/queue/${queued[1]!.id}`, headers: m.auth(m.bob.token) })).statusCode).toBe(404);
      expect((await owner('GET', '/api/v1/metals/sensor-01/lwm2m/queue/not-an-id')).statusCode).toBe(400);
      // A replica that claimed an operation and died: the operation is not sent again, it ends failed.
      const lost = await devices.read(m.alice.id, 'sensor-01', '/3/0/4');
      if (Array.isArray(lost)) throw new Error('a UQ device was read at once');
      expect(await new KyselyDeviceMgmtStore(m.db).claimQueued(a.metalId as TipsId, new Date(now).toISOString())).toMatchObject({ id: lost.queued.id, status: 'sent' });
      now += 11 * 60_000;
      await b.update(a, r.id, {}, new Uint8Array(0));
      await b.flushQueue(a.metalId as TipsId);
      expect(devB.calls.filter((c) => c === 'read 3/0/4')).toEqual([]);
      expect((await devices.queued(m.alice.id, 'sensor-01')).find((o) => o.id === lost.queued.id)).toMatchObject({ status: 'failed', error: { code: 'lwm2m_delivery_interrupted' } });
    });
  });
}

describe('Z5 firmware job status from State/Result reports', () => {
  it('counts success only after Updating, and fails on a failure result or a transition the spec does not allow', () => {
    expect(nextJobStatus('delivering', 0, 1, 0)).toBe('downloading');
    expect(nextJobStatus('downloading', 1, 2, 0)).toBe('downloaded');
    expect(nextJobStatus('downloaded', 2, 3, 0)).toBe('updating');
    expect(nextJobStatus('updating', 3, 0, 1)).toBe('succeeded');
    expect(nextJobStatus('delivering', 0, 0, 1)).toBe('failed');
    expect(nextJobStatus('downloading', 1, 0, 5)).toBe('failed');
    expect(nextJobStatus('delivering', 0, 3, 0)).toBe('failed');
    expect(nextJobStatus('succeeded', 3, 0, 8)).toBe('succeeded');
  });
});
