import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createDtlsClient, createDtlsServer } from '@tips/dtls';
import { bindGlaze, importKey } from '@tips/suit';
import { Lwm2mSim, until } from '@tips/testbed';
import pino from 'pino';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TIPS } from './helpers.ts';
import { type ConstrainedEndpoint, startConstrained } from '../apps/master/src/domains/constrained/coap.ts';
import { installLwm2mCoap } from '../apps/master/src/domains/devicemgmt/coap.ts';
import { type TestMaster, testMaster } from '../apps/master/src/testing.ts';

/**
 * ISSUE-12 test 2 (Z5 S13 S4 S5): the testbed's LwM2M client simulator — its own CoAP and TLV code,
 * over a real DTLS 1.2 PSK session (@tips/dtls) to the master's CoapServer — bootstraps, registers,
 * is read and observed, takes a firmware update through object 5 (verifies the SUIT manifest with
 * its own trust list, downloads the Glaze block-wise, checks the digest, reports result 1), and a
 * device whose lifetime runs out is marked offline.
 *
 * The master runs in-process (its HTTP API on a real port for the `tips` CLI) with its CoAP endpoint
 * built as tips-master builds it: DTLS with constrained.pskLookup, the constrained domain's resources
 * (GET /glazes/:id/blob among them) and the LwM2M routes on the same CoapServer. PSKs are issued with
 * POST /api/v1/metals/{ref}/psk.
 */
const logger = pino({ level: 'silent' });
const operator = generateKeyPairSync('ed25519');
const stranger = generateKeyPairSync('ed25519');

let m: TestMaster;
let ep: ConstrainedEndpoint;
let base = '';
let url = '';
/** The real `tips` CLI against this master. */
const tips = async (...args: string[]) => (await promisify(execFile)(process.execPath, [TIPS, ...args], { env: { ...process.env, TIPS_URL: url, TIPS_TOKEN: m.alice.token, TIPS_CONFIG: '/nonexistent/tips.json' } })).stdout;
const sims: Lwm2mSim[] = [];
const api = (method: string, url: string, payload?: unknown) => m.app.inject({ method: method as 'GET', url, headers: m.auth(m.alice.token), payload: payload as object });
const ok = async (method: string, url: string, payload?: unknown, status = 200) => {
  const r = await api(method, url, payload);
  expect(r.statusCode, `${method} ${url}: ${r.body}`).toBe(status);
  return r.json();
};

async function metal(name: string) {
  const r = await ok('POST', '/api/v1/metals', { name, interfaces: [{ name: 'eth0', mac: `02:00:00:12:00:${name.slice(-2)}`, type: 'ethernet', pxe: true }] }, 201);
  const p = await ok('POST', `/api/v1/metals/${r.id}/psk`, undefined, 201);
  return { id: r.id as string, identity: p.identity as string, key: new Uint8Array(Buffer.from(p.key, 'hex')) };
}

async function device(who: { id: string; identity: string; key: Uint8Array }, endpoint: string, lifetime = 300) {
  const link = await createDtlsClient({ host: '127.0.0.1', port: Number(new URL(base.replace('coaps', 'http')).port), psk: { identity: who.identity, key: who.key } });
  const sim = new Lwm2mSim({ endpoint, link, lifetime, trust: [{ ...importKey(operator.publicKey.export({ type: 'spki', format: 'pem' }).toString()), name: 'ops' }], blockSize: 512, ackTimeoutMs: 1000 });
  sims.push(sim);
  return sim;
}

async function signedGlaze(name: string, bytes: Buffer, key = operator.privateKey) {
  const g = (await m.app.inject({ method: 'POST', url: `/api/v1/glazes?name=${name}&spaces=fleet`, headers: { ...m.auth(m.alice.token), 'content-type': 'application/octet-stream' }, payload: bytes })).json();
  const envelope = bindGlaze({ payloadSha256: createHash('sha256').update(bytes).digest('hex'), payloadSize: bytes.length, uri: `coaps://master/${name}`, vendorDomain: 'tips.local', classInfo: 'sensor', component: 'firmware', sequenceNumber: 10, key: importKey(key) });
  const a = await m.app.inject({ method: 'PUT', url: `/api/v1/glazes/${g.id}/manifest`, headers: { ...m.auth(m.alice.token), 'content-type': 'application/suit-envelope+cose' }, payload: Buffer.from(envelope) });
  expect(a.statusCode, a.body).toBe(200);
  return g.id as string;
}

beforeAll(async () => {
  m = await testMaster({ lwm2m: { graceSeconds: 1, sweepMs: 200 } });
  url = await m.app.listen({ host: '127.0.0.1', port: 0 });
  const transport = await createDtlsServer({ host: '127.0.0.1', port: 0, logger, psk: (id) => m.services.constrained.pskLookup(id) });
  base = `coaps://127.0.0.1:${transport.address().port}`;
  ep = startConstrained({ transport, ...m.services, logger, coap: { ackTimeoutMs: 1000 } });
  installLwm2mCoap(ep.coap, m.services.devices, { principal: (peer) => m.services.constrained.principal(peer), baseUri: () => base, pskKey: (id) => m.services.constrained.pskLookup(id) });
  await ok('POST', '/api/v1/keys', { name: 'ops', publicKey: operator.publicKey.export({ type: 'spki', format: 'pem' }).toString() }, 201);
  await ok('POST', '/api/v1/keys', { name: 'other', publicKey: stranger.publicKey.export({ type: 'spki', format: 'pem' }).toString() }, 201);
  await ok('POST', '/api/v1/spaces', { name: 'fleet', phase: 2 }, 201);
}, 60_000);

afterAll(async () => {
  for (const s of sims) await s.close().catch(() => {});
  await ep?.close();
  await m?.close();
});

describe('Z5 S13 ISSUE-12 test 2: an LwM2M device over DTLS-PSK, bootstrap to firmware update', () => {
  it('bootstraps, registers (only as its own metal), is read in SenML-CBOR and TLV, and updated through object 5', async () => {
    const a = await metal('sensor-01');
    const b = await metal('sensor-02');
    await ok('POST', '/api/v1/spaces/fleet/members', { metal: a.id, interfaces: ['eth0'] }, 201);

    // Bootstrap: the server writes Security (/0/0) and Server (/1/0), then Bootstrap-Finish.
    const dev = await device(a, a.id);
    await dev.bootstrap();
    expect(dev.bootstrapFinished).toBe(true);
    expect(dev.resources.get('0/0/0')).toBe(base);
    expect(dev.resources.get('0/0/2')).toBe(0);
    expect(Buffer.from(dev.resources.get('0/0/3') as Uint8Array).toString()).toBe(a.identity);
    expect(dev.resources.get('1/0/1')).toBe(300);

    // A device whose session is sensor-02 cannot register as sensor-01: 4.03, nothing stored.
    const liar = await device(b, 'sensor-01');
    expect(await liar.register()).toBe('4.03');
    expect((await ok('GET', '/api/v1/metals/sensor-02')).lwm2m).toBeNull();

    expect(await dev.register('1.1')).toBe('2.01');
    expect(dev.registrationPath?.[0]).toBe('rd');
    const shown = (await ok('GET', '/api/v1/metals/sensor-01')).lwm2m;
    expect(shown).toMatchObject({ registrationId: dev.registrationPath?.[1], lifetime: 300, binding: 'U', online: true, lwm2mVersion: '1.1', firmware: null });
    expect(shown.objects.map((o: { objectId: number }) => o.objectId)).toEqual([1, 3, 5]);
    // The fleet-wide list (the console's LwM2M view) shows it to its owner only.
    expect((await ok('GET', '/api/v1/lwm2m/devices')).items).toEqual([{ ...shown, metalId: a.id, metalName: 'sensor-01' }]);
    expect((await m.app.inject({ method: 'GET', url: '/api/v1/lwm2m/devices', headers: m.auth(m.bob.token) })).json()).toEqual({ items: [], nextCursor: null });
    expect(await dev.update()).toBe('2.04');

    // Read: a 1.1 device in SenML-CBOR; the values are kept and readable through the owner API.
    const read = await ok('POST', '/api/v1/metals/sensor-01/lwm2m/read', { path: '/3/0' });
    expect(read.records).toEqual(expect.arrayContaining([{ path: '/3/0/0', value: 'TIPS testbed' }, { path: '/3/0/6/1', value: 5 }]));
    expect((await ok('GET', '/api/v1/metals/sensor-01/lwm2m/resources/3/0/9')).value).toBe(87);

    // Firmware Update: signed manifest to /5/0/0, CoAP URI to /5/0/1, block-wise download, Update, result 1.
    const image = randomBytes(6000);
    const glaze = await signedGlaze('fw-1', image);
    await ok('PATCH', '/api/v1/spaces/fleet', { glaze });
    const job = await ok('POST', '/api/v1/metals/sensor-01/lwm2m/firmware', { glaze }, 202);
    expect(job.packageUri).toBe(`${base}/glazes/${glaze}/blob`);
    const done = await until('firmware job finished', async () => {
      const f = (await ok('GET', '/api/v1/metals/sensor-01/lwm2m')).firmware;
      return f.status === 'succeeded' || f.status === 'failed' ? f : undefined;
    });
    expect(done).toMatchObject({ status: 'succeeded', state: 'idle', result: 'success', glazeId: glaze });
    expect(Buffer.compare(Buffer.from(dev.firmwareImage!), image)).toBe(0);
    expect(dev.firmwareEvents).toEqual([
      { state: 1, result: 0 },
      { state: 2, result: 0 },
      { state: 3, result: 0 },
      { state: 0, result: 1 },
    ]);
    expect((await ok('GET', '/api/v1/metals/sensor-01/lwm2m/resources/5/0/5')).value).toBe(1);
    expect(JSON.parse(await tips('lwm2m', 'show', 'sensor-01', '--json')).firmware).toMatchObject({ status: 'succeeded', result: 'success' });
    expect(await tips('metal', 'show', 'sensor-01')).toMatch(/lwm2m: +online {2}registration \S+ {2}LwM2M 1\.1[\s\S]*firmware: +succeeded {2}state idle {2}result success/);
    expect(await tips('lwm2m', 'read', 'sensor-01', '/5/0/3')).toMatch(/^\/5\/0\/3 +0$/m);

    // A Glaze signed by a key the owner registered but the device does not trust: the device refuses
    // the manifest (integrity check failure), downloads nothing, and the job fails.
    const bad = await signedGlaze('fw-2', randomBytes(3000), stranger.privateKey);
    await ok('PATCH', '/api/v1/spaces/fleet', { glaze: bad });
    const before = dev.firmwareImage;
    const refused = await api('POST', '/api/v1/metals/sensor-01/lwm2m/firmware', { glaze: bad });
    expect(refused.statusCode).toBe(502);
    expect(refused.json().error.code).toBe('lwm2m_device_error');
    expect((await ok('GET', '/api/v1/metals/sensor-01/lwm2m')).firmware).toMatchObject({ status: 'failed', glazeId: bad });
    expect(dev.firmwareImage).toBe(before);
    expect(dev.resources.get('5/0/5')).toBe(5);

    // A 1.0 device is read in TLV.
    const old = await device(b, b.id);
    expect(await old.register('1.0')).toBe('2.01');
    const tlv = await ok('POST', '/api/v1/metals/sensor-02/lwm2m/read', { path: '/3/0/6' });
    expect(tlv.records).toEqual([{ path: '/3/0/6/0', value: 1 }, { path: '/3/0/6/1', value: 5 }]);
    expect(await old.deregister()).toBe('2.02');
    expect((await ok('GET', '/api/v1/metals/sensor-02')).lwm2m).toBeNull();
  }, 60_000);

  it('a device that stops updating is marked offline after lifetime + grace; the one that updates stays online', async () => {
    const c = await metal('sensor-03');
    const d = await metal('sensor-04');
    const silent = await device(c, c.id, 1);
    const alive = await device(d, d.id, 2);
    expect(await silent.register()).toBe('2.01');
    expect(await alive.register()).toBe('2.01');
    alive.startUpdates(700);
    expect((await ok('GET', '/api/v1/metals/sensor-03/lwm2m')).online).toBe(true);
    await until('sensor-03 offline', async () => (await ok('GET', '/api/v1/metals/sensor-03/lwm2m')).online === false, 20_000);
    expect((await ok('GET', '/api/v1/metals/sensor-04/lwm2m')).online).toBe(true);
    // The sweeper marks it in the database too (the view alone would already say offline at the deadline).
    await until('the sweeper marked it', async () => (await m.services.devices.counts()).online === (await m.services.devices.counts()).registered - 1, 20_000);
    // The list pages in TIPS ID order, each device once, the silent one offline.
    const first = await ok('GET', '/api/v1/lwm2m/devices?limit=2');
    expect(first.items).toHaveLength(2);
    const second = await ok('GET', `/api/v1/lwm2m/devices?limit=2&cursor=${first.nextCursor}`);
    expect(second.nextCursor).toBeNull();
    const listed = [...first.items, ...second.items] as { metalId: string; metalName: string; online: boolean }[];
    expect(listed.map((x) => x.metalId)).toEqual(listed.map((x) => x.metalId).sort());
    expect(Object.fromEntries(listed.map((x) => [x.metalName, x.online]))).toEqual({ 'sensor-01': true, 'sensor-03': false, 'sensor-04': true });
    const metrics = (await m.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/tips_master_lwm2m_expired_total [1-9]/);
    expect(metrics).toMatch(/tips_master_lwm2m_devices\{state="online"\} 2/);
    expect(metrics).toMatch(/tips_master_lwm2m_registrations_total\{op="update"\} [1-9]/);
    const r = await api('POST', '/api/v1/metals/sensor-03/lwm2m/read', { path: '/3/0' });
    expect(r.json().error.code).toBe('lwm2m_offline');
    alive.stopUpdates();
  }, 60_000);
});
