import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createDtlsClient } from '@tips/dtls';
import { decodeVoucher, type DeviceFacts, deviceFactsDigest, guidToString, makeSetupKey, signProof } from '@tips/onboarding';
import { bindGlaze, importKey } from '@tips/suit';
import { Lwm2mSim, until } from '@tips/testbed';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { voucherFor } from '../apps/master/src/domains/vouchers/test-helpers.ts';
import { type RunningMaster, startMaster, TIPS } from './helpers.ts';

/**
 * ISSUE-12 test 2 (Z5 S13 S4 S5, contract K): the testbed's LwM2M client simulator — its own CoAP and
 * TLV code, over a real DTLS 1.2 PSK session (@tips/dtls) to a real `tips-master` process started
 * with `--coap-port 0` as a user starts it — bootstraps (with the values of the bootstrapping profile
 * its onboarding named, or the master's defaults), registers, is read and observed, takes a firmware
 * update through object 5 (verifies the SUIT manifest with its own trust list, downloads the Glaze
 * block-wise, checks the digest, reports result 1), and a device whose lifetime runs out is marked
 * offline. Everything the owner does goes through the HTTP API or the `tips` CLI.
 */
const operator = generateKeyPairSync('ed25519');
const stranger = generateKeyPairSync('ed25519');
const ADMIN = `tips_${randomBytes(24).toString('base64url')}`;

let master: RunningMaster;
let work = '';
let base = '';
/** The real `tips` CLI against this master. */
const tipsCli = async (...args: string[]) => (await promisify(execFile)(process.execPath, [TIPS, ...args], { env: { ...process.env, TIPS_URL: master.url, TIPS_TOKEN: ADMIN, TIPS_CONFIG: '/nonexistent/tips.json' } })).stdout;
const tipsFails = async (...args: string[]) => {
  try {
    await tipsCli(...args);
  } catch (e) {
    return e as { code: number; stderr: string };
  }
  throw new Error(`tips ${args.join(' ')} succeeded`);
};
const sims: Lwm2mSim[] = [];
async function api(method: string, path: string, payload?: unknown, headers: Record<string, string> = {}) {
  const body = payload === undefined ? undefined : Buffer.isBuffer(payload) ? new Uint8Array(payload) : JSON.stringify(payload);
  const res = await fetch(new URL(path, master.url), {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body,
  });
  const text = await res.text();
  return { statusCode: res.status, body: text, json: () => JSON.parse(text) };
}
const ok = async (method: string, url: string, payload?: unknown, status = 200) => {
  const r = await api(method, url, payload);
  expect(r.statusCode, `${method} ${url}: ${r.body}`).toBe(status);
  return r.statusCode === 204 ? undefined : r.json();
};

async function metal(name: string) {
  const r = await ok('POST', '/api/v1/metals', { name, interfaces: [{ name: 'eth0', mac: `02:00:00:12:00:${name.slice(-2)}`, type: 'ethernet', pxe: true }] }, 201);
  return { id: r.id as string, ...(await psk(r.id)) };
}
async function psk(metalId: string) {
  const p = await ok('POST', `/api/v1/metals/${metalId}/psk`, undefined, 201);
  return { identity: p.identity as string, key: new Uint8Array(Buffer.from(p.key, 'hex')) };
}

async function device(who: { identity: string; key: Uint8Array }, endpoint: string, lifetime = 300, binding?: 'U' | 'UQ') {
  const link = await createDtlsClient({ host: '127.0.0.1', port: Number(new URL(base.replace('coaps', 'http')).port), psk: { identity: who.identity, key: who.key } });
  const sim = new Lwm2mSim({ endpoint, link, lifetime, binding, trust: [{ ...importKey(operator.publicKey.export({ type: 'spki', format: 'pem' }).toString()), name: 'ops' }], blockSize: 512, ackTimeoutMs: 1000 });
  sims.push(sim);
  return sim;
}

async function signedGlaze(name: string, bytes: Buffer, key = operator.privateKey) {
  const g = (await api('POST', `/api/v1/glazes?name=${name}&spaces=fleet`, bytes, { 'content-type': 'application/octet-stream' })).json();
  const envelope = bindGlaze({ payloadSha256: createHash('sha256').update(bytes).digest('hex'), payloadSize: bytes.length, uri: `coaps://master/${name}`, vendorDomain: 'tips.local', classInfo: 'sensor', component: 'firmware', sequenceNumber: 10, key: importKey(key) });
  const a = await api('PUT', `/api/v1/glazes/${g.id}/manifest`, Buffer.from(envelope), { 'content-type': 'application/suit-envelope+cose' });
  expect(a.statusCode, a.body).toBe(200);
  return g.id as string;
}

/** A device onboarded zero-touch (TO2 as apps/client runs it, over the master's HTTP port): its metal ID. */
async function onboardedMetal(ownerKeyPem: string, mac: string): Promise<string> {
  const v = voucherFor(ownerKeyPem, { hops: 2, deviceInfo: 'vendor=acme;class=lwm2m-sensor' });
  await ok('POST', '/api/v1/vouchers', { vouchers: [Buffer.from(v.voucher).toString('base64')] });
  const guidBytes = decodeVoucher(v.voucher).header.guid;
  const guid = guidToString(guidBytes);
  const facts: DeviceFacts = { interfaces: [{ name: 'eth0', mac, type: 'ethernet', pxe: true }], ramMb: 1, storageMb: 1, arch: 'armv7m' };
  const hello = await api('POST', '/api/onboarding/v1/hello', { guid, nonce: randomBytes(16).toString('base64'), device: facts });
  expect(hello.statusCode, hello.body).toBe(200);
  const nonce = new Uint8Array(Buffer.from(hello.json().nonce, 'base64'));
  const proof = signProof(v.device.privateKey, 'tips-to2-device', [guidBytes, nonce, deviceFactsDigest(facts), makeSetupKey().publicRaw]);
  const res = await api('POST', '/api/onboarding/v1/prove', { guid, nonce: Buffer.from(nonce).toString('base64'), proof: Buffer.from(proof).toString('base64') });
  expect(res.statusCode, res.body).toBe(200);
  return res.json().metal as string;
}

/** Starts (or, on the same data and CA directories, restarts) the master; `base` is its CoAP endpoint. */
async function start() {
  master = await startMaster(['--data-dir', join(work, 'data'), '--ca-dir', join(work, 'ca'), '--mqtt-port', 'off', '--coap-port', '0', '--lwm2m-grace', '1'], { TIPS_BOOTSTRAP_ADMIN_TOKEN: ADMIN });
  const port = /CoAP listening on coaps:\/\/\S*:(\d+)/.exec(master.output())?.[1];
  expect(port, master.output()).toBeDefined();
  base = `coaps://127.0.0.1:${port}`;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'tips-e2e-lwm2m-'));
  await start();
  await ok('POST', '/api/v1/keys', { name: 'ops', publicKey: operator.publicKey.export({ type: 'spki', format: 'pem' }).toString() }, 201);
  await ok('POST', '/api/v1/keys', { name: 'other', publicKey: stranger.publicKey.export({ type: 'spki', format: 'pem' }).toString() }, 201);
  await ok('POST', '/api/v1/spaces', { name: 'fleet', phase: 2 }, 201);
}, 60_000);

afterAll(async () => {
  for (const s of sims) await s.close().catch(() => {});
  await master?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
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
    const bob = await ok('POST', '/api/v1/owners', { name: 'bob' }, 201);
    expect((await api('GET', '/api/v1/lwm2m/devices', undefined, { authorization: `Bearer ${bob.token}` })).json()).toEqual({ items: [], nextCursor: null });
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
    expect(JSON.parse(await tipsCli('lwm2m', 'show', 'sensor-01', '--json')).firmware).toMatchObject({ status: 'succeeded', result: 'success' });
    expect(await tipsCli('metal', 'show', 'sensor-01')).toMatch(/lwm2m: +online {2}registration \S+ {2}LwM2M 1\.1[\s\S]*firmware: +succeeded {2}state idle {2}result success/);
    expect(await tipsCli('lwm2m', 'read', 'sensor-01', '/5/0/3')).toMatch(/^\/5\/0\/3 +0$/m);

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
    const metrics = await until('the sweeper marked it', async () => {
      const text = (await api('GET', '/metrics')).body;
      return /tips_master_lwm2m_expired_total [1-9]/.test(text) ? text : undefined;
    }, 20_000);
    // The list pages in TIPS ID order, each device once, the silent one offline.
    const first = await ok('GET', '/api/v1/lwm2m/devices?limit=2');
    expect(first.items).toHaveLength(2);
    const second = await ok('GET', `/api/v1/lwm2m/devices?limit=2&cursor=${first.nextCursor}`);
    expect(second.nextCursor).toBeNull();
    const listed = [...first.items, ...second.items] as { metalId: string; metalName: string; online: boolean }[];
    expect(listed.map((x) => x.metalId)).toEqual(listed.map((x) => x.metalId).sort());
    expect(Object.fromEntries(listed.map((x) => [x.metalName, x.online]))).toEqual({ 'sensor-01': true, 'sensor-03': false, 'sensor-04': true });
    expect(metrics).toMatch(/tips_master_lwm2m_devices\{state="online"\} 2/);
    expect(metrics).toMatch(/tips_master_lwm2m_registrations_total\{op="update"\} [1-9]/);
    const r = await api('POST', '/api/v1/metals/sensor-03/lwm2m/read', { path: '/3/0' });
    expect(r.json().error.code).toBe('lwm2m_offline');
    alive.stopUpdates();
  }, 60_000);

  it('contract K: an onboarded device is bootstrapped with the LwM2M part of the profile its onboarding named; bad values are 400 by field and change nothing', async () => {
    const ownerKey = (await ok('POST', '/api/v1/onboarding-keys', { name: 'lwm2m-fleet' }, 201)).publicKey as string;
    const created = JSON.parse(
      await tipsCli(
        ...['bootstrap', 'profile', 'create', 'lwm2m-sensors', '--vendor', 'acme', '--class', 'lwm2m-sensor', '--space', 'fleet', '--protocol', 'coap'],
        ...['--lwm2m-lifetime', '120', '--lwm2m-binding', 'UQ', '--lwm2m-server', 'coaps://lwm2m.example.test:5684', '--lwm2m-min-period', '5', '--lwm2m-max-period', '90', '--json'],
      ),
    );
    expect(created.lwm2m).toEqual({ serverUri: 'coaps://lwm2m.example.test:5684', lifetime: 120, binding: 'UQ', defaultMinPeriod: 5, defaultMaxPeriod: 90 });

    // Refused by field, and the profile is as it was.
    const refusals: [string[], Record<string, unknown>, string][] = [
      [['--lwm2m-lifetime', '120', '--lwm2m-server', 'http://lwm2m.example.test'], { lifetime: 120, binding: 'U', serverUri: 'http://lwm2m.example.test' }, 'lwm2m.serverUri'],
      [['--lwm2m-lifetime', '0'], { lifetime: 0, binding: 'U' }, 'lwm2m.lifetime'],
      [['--lwm2m-lifetime', '60', '--lwm2m-binding', 'T'], { lifetime: 60, binding: 'T' }, 'lwm2m.binding'],
      [['--lwm2m-lifetime', '60', '--lwm2m-min-period', '30', '--lwm2m-max-period', '10'], { lifetime: 60, binding: 'U', defaultMinPeriod: 30, defaultMaxPeriod: 10 }, 'lwm2m.defaultMaxPeriod'],
    ];
    for (const [args, lwm2m, field] of refusals) {
      const r = await api('PATCH', '/api/v1/bootstrap/profiles/lwm2m-sensors', { lwm2m });
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json().error.field).toBe(field);
      // The CLI says the same (two of them: each `tips` run is a process start).
      if (field === 'lwm2m.serverUri' || field === 'lwm2m.lifetime') expect((await tipsFails('bootstrap', 'profile', 'update', 'lwm2m-sensors', ...args)).stderr).toContain(field);
    }
    expect((await ok('GET', '/api/v1/bootstrap/profiles/lwm2m-sensors')).lwm2m).toEqual(created.lwm2m);
    expect(await tipsCli('bootstrap', 'profile', 'show', 'lwm2m-sensors')).toMatch(/^lwm2m: +lifetime 120 s, binding UQ, server coaps:\/\/lwm2m\.example\.test:5684, min period 5 s, max period 90 s$/m);

    const metalId = await onboardedMetal(ownerKey, '02:00:00:12:00:51');
    expect((await ok('GET', `/api/v1/onboardings?status=registered`)).items.map((r: { metal: string; profile: { name: string } }) => [r.metal, r.profile.name])).toContainEqual([metalId, 'lwm2m-sensors']);
    const dev = await device(await psk(metalId), metalId);
    await dev.bootstrap();
    expect(dev.resources.get('0/0/0')).toBe('coaps://lwm2m.example.test:5684');
    expect(dev.resources.get('0/0/10')).toBe(1);
    expect(dev.resources.get('1/0/1')).toBe(120);
    expect(dev.resources.get('1/0/2')).toBe(5);
    expect(dev.resources.get('1/0/3')).toBe(90);
    expect(dev.resources.get('1/0/7')).toBe('UQ');

    // Queue mode (binding UQ from the profile): the device sleeps between its updates. What the operator
    // asks meanwhile is queued (202), not sent; its next registration update delivers it, in order.
    expect(await dev.register('1.1')).toBe('2.01');
    expect((await ok('GET', `/api/v1/metals/${metalId}/lwm2m`)).binding).toBe('UQ');
    const image = randomBytes(5000);
    const fw = await signedGlaze('fw-q', image);
    await ok('PATCH', '/api/v1/spaces/fleet', { glaze: fw });
    const read = JSON.parse(await tipsCli('lwm2m', 'read', metalId, '/3/0/9', '--json'));
    expect(read.queued).toMatchObject({ kind: 'read', target: '/3/0/9', status: 'queued' });
    expect(await tipsCli('lwm2m', 'update', metalId, '--glaze', fw)).toMatch(/^queued lwq_\S+: the device is in queue mode/);
    expect((await api('GET', `/api/v1/metals/${metalId}/lwm2m/resources/3/0/9`)).statusCode).toBe(404);
    expect((await ok('GET', `/api/v1/metals/${metalId}/lwm2m`)).firmware).toBeNull();
    expect((await ok('GET', `/api/v1/metals/${metalId}/lwm2m/queue`)).items.map((o: { kind: string; status: string }) => [o.kind, o.status])).toEqual([
      ['read', 'queued'],
      ['firmware', 'queued'],
    ]);
    expect(await dev.update()).toBe('2.04');
    const sent = await until('the queue delivered', async () => {
      const items = (await ok('GET', `/api/v1/metals/${metalId}/lwm2m/queue`)).items as { kind: string; status: string; records?: unknown[]; jobId?: string }[];
      return items.every((o) => o.status === 'done' || o.status === 'failed') ? items : undefined;
    });
    expect(sent[0]).toMatchObject({ kind: 'read', status: 'done', records: [{ path: '/3/0/9', value: 87 }] });
    expect(sent[1]).toMatchObject({ kind: 'firmware', status: 'done', jobId: expect.stringMatching(/^fwj_/) });
    const done = await until('the queued firmware job finished', async () => {
      const f = (await ok('GET', `/api/v1/metals/${metalId}/lwm2m`)).firmware;
      return f && (f.status === 'succeeded' || f.status === 'failed') ? f : undefined;
    });
    expect(done).toMatchObject({ jobId: sent[1]!.jobId, status: 'succeeded', glazeId: fw });
    expect(Buffer.compare(Buffer.from(dev.firmwareImage!), image)).toBe(0);
    expect(await tipsCli('lwm2m', 'queue', metalId)).toMatch(/lwq_\S+ +read \/3\/0\/9 +done +\/3\/0\/9=87/);
    expect((await api('GET', '/metrics')).body).toMatch(/tips_master_lwm2m_queued_operations_total\{kind="read",status="done"\} 1/);

    // An update changes what the next bootstrap writes (the master's endpoint when serverUri is left out).
    const updated = JSON.parse(await tipsCli('bootstrap', 'profile', 'update', 'lwm2m-sensors', '--lwm2m-lifetime', '600', '--json'));
    expect(updated.lwm2m).toEqual({ lifetime: 600, binding: 'U' });
    const again = await device(await psk(metalId), metalId);
    await again.bootstrap();
    expect(again.resources.get('0/0/0')).toBe(base);
    expect(again.resources.get('1/0/1')).toBe(600);
    expect(again.resources.get('1/0/7')).toBe('U');
  }, 60_000);

  it('issue 13 queue mode: an operation queued before a master restart is kept in the database and sent once when the device next updates, at the restarted master', async () => {
    const q = await metal('sensor-05');
    const dev = await device(q, q.id, 300, 'UQ');
    expect(await dev.register('1.1')).toBe('2.01');
    const read = JSON.parse(await tipsCli('lwm2m', 'read', 'sensor-05', '/3/0/9', '--json'));
    expect(read.queued).toMatchObject({ kind: 'read', target: '/3/0/9', status: 'queued' });
    const op = read.queued.id as string;

    // The master stops and starts again (nothing of the queue is in its memory now); the device wakes
    // up and sends its registration update over a new DTLS session to the new process.
    await master.stop();
    await start();
    expect(JSON.parse(await tipsCli('lwm2m', 'queue', 'sensor-05', op, '--json'))).toMatchObject({ id: op, status: 'queued' });
    const woken = await device(q, q.id, 300, 'UQ');
    woken.registrationPath = dev.registrationPath;
    expect(await woken.update()).toBe('2.04');
    const done = await until('the queued read was sent after the restart', async () => {
      const o = JSON.parse(await tipsCli('lwm2m', 'queue', 'sensor-05', op, '--json'));
      return o.status === 'done' || o.status === 'failed' ? o : undefined;
    });
    expect(done).toMatchObject({ id: op, kind: 'read', status: 'done', records: [{ path: '/3/0/9', value: 87 }] });
    expect((await ok('GET', '/api/v1/metals/sensor-05/lwm2m/resources/3/0/9')).value).toBe(87);
    // Sent once: a second update finds nothing left to send, and the operation stays as it ended.
    expect(await woken.update()).toBe('2.04');
    await until('the second update was handled', async () => /tips_master_lwm2m_registrations_total\{op="update"\} 2/.test((await api('GET', '/metrics')).body));
    expect((await ok('GET', '/api/v1/metals/sensor-05/lwm2m/queue')).items.map((o: { id: string; status: string }) => [o.id, o.status])).toEqual([[op, 'done']]);
    expect((await api('GET', '/metrics')).body).toMatch(/tips_master_lwm2m_queued_operations_total\{kind="read",status="done"\} 1/);
    expect(await tipsCli('lwm2m', 'queue', 'sensor-05', op)).toMatch(/^lwq_\S+ +read \/3\/0\/9 +done +\/3\/0\/9=87\n +queued \S+ +updated \S+$/m);

    // Out of queue mode (Core §6.5): an operation queued while it slept goes out at the very Update that
    // switches it to b=U, not at a next UQ update that will not come; from then on reads go at once.
    const left = JSON.parse(await tipsCli('lwm2m', 'read', 'sensor-05', '/3/0/0', '--json')).queued.id as string;
    expect(await woken.update(['b=U'])).toBe('2.04');
    const sent = await until('the read queued before the switch to U was sent at it', async () => {
      const o = JSON.parse(await tipsCli('lwm2m', 'queue', 'sensor-05', left, '--json'));
      return o.status === 'done' || o.status === 'failed' ? o : undefined;
    });
    expect(sent).toMatchObject({ id: left, status: 'done', records: [{ path: '/3/0/0', value: expect.any(String) }] });
    expect((await ok('GET', '/api/v1/metals/sensor-05/lwm2m')).binding).toBe('U');
    expect(JSON.parse(await tipsCli('lwm2m', 'read', 'sensor-05', '/3/0/9', '--json'))).toMatchObject({ records: [{ path: '/3/0/9', value: 87 }] });
  }, 90_000);

  it('issue 13 queue mode across replicas: an operation queued through master A is sent once, by master B, when the device updates there (two tips-master processes on one PostgreSQL)', async () => {
    const admin = new pg.Client({ connectionString: inject('pgUrl') });
    await admin.connect();
    const dbName = `lwm2m_${randomBytes(5).toString('hex')}`;
    await admin.query(`CREATE DATABASE ${dbName}`);
    const url = new URL(inject('pgUrl'));
    url.pathname = `/${dbName}`;
    const replicas: RunningMaster[] = [];
    try {
      const args = (n: string) => ['--data-dir', join(work, `replica-${n}`), '--ca-dir', join(work, 'replica-ca'), '--database-url', url.toString(), '--mqtt-port', 'off', '--coap-port', '0', '--lwm2m-grace', '1'];
      // A makes the CA (and the PSK wrapping key); B starts on it.
      replicas.push(await startMaster(args('a'), { TIPS_BOOTSTRAP_ADMIN_TOKEN: ADMIN }));
      replicas.push(await startMaster(args('b'), { TIPS_BOOTSTRAP_ADMIN_TOKEN: ADMIN }));
      const [A, B] = replicas as [RunningMaster, RunningMaster];
      const call = async (m: RunningMaster, method: string, path: string, payload?: unknown) => {
        const res = await fetch(new URL(path, m.url), { method, headers: { authorization: `Bearer ${ADMIN}`, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) }, body: payload === undefined ? undefined : JSON.stringify(payload) });
        const text = await res.text();
        return { status: res.status, text, json: () => JSON.parse(text) };
      };
      const created = await call(A, 'POST', '/api/v1/metals', { name: 'sensor-21', interfaces: [{ name: 'eth0', mac: '02:00:00:12:00:21', type: 'ethernet', pxe: true }] });
      expect(created.status, created.text).toBe(201);
      const metalId = created.json().id as string;
      const key = (await call(A, 'POST', `/api/v1/metals/${metalId}/psk`)).json();
      const at = async (m: RunningMaster) => {
        const port = Number(/CoAP listening on coaps:\/\/\S*:(\d+)/.exec(m.output())?.[1]);
        const link = await createDtlsClient({ host: '127.0.0.1', port, psk: { identity: key.identity, key: new Uint8Array(Buffer.from(key.key, 'hex')) } });
        const sim = new Lwm2mSim({ endpoint: metalId, link, lifetime: 300, binding: 'UQ', trust: [], blockSize: 512, ackTimeoutMs: 1000 });
        sims.push(sim);
        return sim;
      };
      const atA = await at(A);
      expect(await atA.register('1.1')).toBe('2.01');
      const queued = await call(A, 'POST', `/api/v1/metals/${metalId}/lwm2m/read`, { path: '/3/0/9' });
      expect(queued.status, queued.text).toBe(202);
      const op = queued.json().queued.id as string;
      // B sees A's queue (it is in the database), before and after.
      expect((await call(B, 'GET', `/api/v1/metals/${metalId}/lwm2m/queue`)).json().items).toMatchObject([{ id: op, status: 'queued' }]);

      // The device wakes up and its registration update reaches B (another DTLS session, another process).
      const atB = await at(B);
      atB.registrationPath = atA.registrationPath;
      expect(await atB.update()).toBe('2.04');
      const done = await until('B sent the operation A queued', async () => {
        const o = (await call(A, 'GET', `/api/v1/metals/${metalId}/lwm2m/queue/${op}`)).json();
        return o.status === 'done' || o.status === 'failed' ? o : undefined;
      });
      expect(done).toMatchObject({ id: op, kind: 'read', status: 'done', records: [{ path: '/3/0/9', value: 87 }] });
      expect((await call(B, 'GET', '/metrics')).text).toMatch(/tips_master_lwm2m_queued_operations_total\{kind="read",status="done"\} 1/);
      // The device then updates at A: the operation is claimed already, A does not send it (exactly once is
      // proved under concurrency in devicemgmt/service.test.ts on both stores).
      expect(await atA.update()).toBe('2.04');
      await until('A handled the update', async () => /tips_master_lwm2m_registrations_total\{op="update"\} 1/.test((await call(A, 'GET', '/metrics')).text));
      const metricsA = (await call(A, 'GET', '/metrics')).text;
      expect(metricsA).toMatch(/tips_master_lwm2m_queued_operations_total\{kind="read",status="queued"\} 1/);
      expect(metricsA).not.toMatch(/tips_master_lwm2m_queued_operations_total\{kind="read",status="(done|failed)"\}/);
      expect((await call(B, 'GET', `/api/v1/metals/${metalId}/lwm2m/queue`)).json().items).toMatchObject([{ id: op, status: 'done' }]);
    } finally {
      for (const m of replicas) await m.stop();
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await admin.end();
    }
  }, 120_000);
});
