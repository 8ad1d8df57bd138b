import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { bindGlaze, coseSign1Sign, encodeCbor, HEADER_ALG, importKey } from '@tips/suit';
import { decodeTrustList, parseCertsOnlyPkcs7 } from '@tips/trust';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { b64, makeCsr, type TlsTestMaster, tlsTestMaster } from '../../tls/testing.ts';

let m: TlsTestMaster;
beforeEach(async () => {
  m = await tlsTestMaster();
});
afterEach(async () => m.close());

const operator = generateKeyPairSync('ed25519');

async function owner(method: string, url: string, payload?: unknown, headers: Record<string, string> = {}) {
  return m.app.inject({ method: method as 'GET', url, headers: { ...m.auth(m.alice.token), ...headers }, payload: payload as object });
}
async function ok(method: string, url: string, payload?: unknown, status = 200) {
  const r = await owner(method, url, payload);
  expect(r.statusCode, r.body).toBe(status);
  return r.statusCode === 204 ? undefined : r.json();
}

/** A Glaze with a manifest signed by the owner's registered key, allowed in `spaces`. */
async function glaze(name: string, spaces: string[], opts: { handler?: string; version?: string; signed?: boolean } = {}) {
  const bytes = Buffer.from(`payload of ${name} ${opts.version ?? ''} `.repeat(100));
  const q = new URLSearchParams({ name, spaces: spaces.join(','), ...(opts.handler ? { handler: opts.handler } : {}), ...(opts.version ? { version: opts.version } : {}) });
  const g = await ok('POST', `/api/v1/glazes?${q}`, bytes, 201).catch(async () => undefined);
  const r = g ?? (await owner('POST', `/api/v1/glazes?${q}`, bytes, { 'content-type': 'application/octet-stream' })).json();
  if (opts.signed !== false) {
    const envelope = bindGlaze({
      payloadSha256: createHash('sha256').update(bytes).digest('hex'),
      payloadSize: bytes.length,
      uri: `https://master/${name}`,
      vendorDomain: 'tips.local',
      classInfo: name,
      component: name,
      sequenceNumber: 7,
      key: importKey(operator.privateKey),
    });
    const a = await owner('PUT', `/api/v1/glazes/${r.id}/manifest`, Buffer.from(envelope), { 'content-type': 'application/suit-envelope+cose' });
    expect(a.statusCode, a.body).toBe(200);
  }
  return { ...r, bytes } as { id: string; name: string; sha256: string; handler: string; version: string | null; bytes: Buffer };
}

async function enrolledMetal(name: string, mac: string) {
  const metal = await ok('POST', '/api/v1/metals', { name, interfaces: [{ name: 'eth0', mac, type: 'ethernet', pxe: true }, { name: 'wlan0', mac: mac.replace(/..$/, 'ff'), type: 'wifi' }] }, 201);
  const s = await ok('POST', '/api/v1/enrollment/secrets', { metal: metal.id }, 201);
  const csr = await makeCsr({ uris: [`urn:tips:metal:${metal.id}`] });
  const r = await m.https('POST', '/.well-known/est/simpleenroll', {
    headers: { 'content-type': 'application/pkcs10', authorization: `Basic ${Buffer.from(`${s.id}:${s.secret}`).toString('base64')}` },
    body: b64(csr.der),
  });
  expect(r.status).toBe(200);
  const [cert] = parseCertsOnlyPkcs7(new Uint8Array(Buffer.from(r.body, 'base64')));
  const tls = { cert: cert!.toString('pem'), key: csr.keyPem };
  const token = async () => {
    const t = await m.https('POST', '/api/metal/v1/tokens/issue', tls);
    expect(t.status, t.body).toBe(201);
    return t.json().cwt as string;
  };
  return { id: metal.id as string, tls, keyPem: csr.keyPem, token, pop: (t: string) => ({ authorization: `PoP ${t}` }) };
}

async function space(name: string, phase: number) {
  return (await ok('POST', '/api/v1/spaces', { name, phase }, 201)).id as string;
}
async function join(spaceRef: string, metal: string) {
  await ok('POST', `/api/v1/spaces/${spaceRef}/members`, { metal, interfaces: ['wlan0'] }, 201);
}

function signedReport(keyPem: string, body: Record<string, unknown>): Buffer {
  const payload = encodeCbor(new Map(Object.entries(body)) as never);
  return Buffer.from(coseSign1Sign({ protectedHeaders: new Map([[HEADER_ALG, -7]]), payload }, importKey(keyPem)));
}
const COSE = { 'content-type': 'application/cose' };

async function setup() {
  await ok('POST', '/api/v1/keys', { name: 'ops', publicKey: operator.publicKey.export({ type: 'spki', format: 'pem' }).toString() }, 201);
  const pi = await enrolledMetal('pi-07', '02:00:00:00:07:01');
  const other = await enrolledMetal('pi-08', '02:00:00:00:08:01');
  const [a, b, c, p3] = [await space('base', 2), await space('tools', 2), await space('secret', 2), await space('apps', 3)];
  const ga = await glaze('os-tools', ['base'], { handler: 'rootfs-ab', version: '1.0' });
  const gb = await glaze('cli', ['tools'], { handler: 'script' });
  const gc = await glaze('hidden', ['secret']);
  const g3 = await glaze('web', ['apps'], { version: '1.4', handler: 'systemd-service' });
  for (const [s, g] of [
    ['base', ga],
    ['tools', gb],
    ['secret', gc],
    ['apps', g3],
  ] as const)
    await ok('PATCH', `/api/v1/spaces/${s}`, { glaze: g.id });
  await join('base', pi.id);
  await join('tools', pi.id);
  await join('apps', pi.id);
  await join('secret', other.id);
  return { pi, other, spaces: { a, b, c, p3 }, glazes: { ga, gb, gc, g3 } };
}

describe('T14 Phase 2 metal API: per-Space work, authenticated on every request', () => {
  it('delivers exactly one item per Phase 2 Space the metal is in, never another Space, and serves only those blobs', async () => {
    const { pi, spaces, glazes } = await setup();
    const t = await pi.token();
    const w = await m.https('GET', '/api/metal/v1/work?phase=2', { ...pi.tls, headers: pi.pop(t) });
    expect(w.status, w.body).toBe(200);
    const work = w.json();
    expect(work.items.map((i: { spaceId: string }) => i.spaceId).sort()).toEqual([spaces.a, spaces.b].sort());
    const item = work.items.find((i: { spaceId: string }) => i.spaceId === spaces.a);
    expect(item.glaze).toEqual({ id: glazes.ga.id, name: 'os-tools', version: '1.0', size: glazes.ga.bytes.length, sha256: glazes.ga.sha256, handler: 'rootfs-ab' });
    expect(item.blobPath).toBe(`/api/metal/v1/glazes/${glazes.ga.id}/blob`);
    expect(Buffer.from(item.manifest, 'base64').length).toBeGreaterThan(50);
    expect(work.reauthAfterSeconds).toBe(120);
    expect(work.notify).toBeNull();
    const w3 = (await m.https('GET', '/api/metal/v1/work?phase=3', { ...pi.tls, headers: pi.pop(t) })).json();
    expect(w3.items.map((i: { glaze: { id: string } }) => i.glaze.id)).toEqual([glazes.g3.id]);

    const part = await m.https('GET', item.blobPath, { ...pi.tls, headers: { ...pi.pop(t), range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(part.body).toBe(glazes.ga.bytes.subarray(10, 20).toString());
    expect(part.headers['content-range']).toBe(`bytes 10-19/${glazes.ga.bytes.length}`);
    const whole = await m.https('GET', item.blobPath, { ...pi.tls, headers: pi.pop(t) });
    expect(createHash('sha256').update(whole.body).digest('hex')).toBe(glazes.ga.sha256);
    // Another Space's Glaze: not found, as if it did not exist.
    const hidden = await m.https('GET', `/api/metal/v1/glazes/${glazes.gc.id}/blob`, { ...pi.tls, headers: pi.pop(t) });
    expect(hidden.status).toBe(404);
    expect(hidden.body).not.toContain('payload of');
    const bad = await m.https('GET', '/api/metal/v1/work?phase=1', { ...pi.tls, headers: pi.pop(t) });
    expect(bad.status).toBe(400);
  });

  it('leaves out a Space whose Glaze has no signed manifest', async () => {
    const { pi } = await setup();
    const u = await glaze('unsigned', ['tools'], { signed: false });
    await ok('PATCH', '/api/v1/spaces/tools', { glaze: u.id });
    const items = (await m.https('GET', '/api/metal/v1/work?phase=2', { ...pi.tls, headers: pi.pop(await pi.token()) })).json().items;
    expect(items.map((i: { glaze: { name: string } }) => i.glaze.name)).toEqual(['os-tools']);
  });

  it('refuses a missing, foreign or stale token, and shows each refusal to the owner', async () => {
    const { pi, other } = await setup();
    const none = await m.https('GET', '/api/metal/v1/work?phase=2', pi.tls);
    expect(none.status).toBe(401);
    expect(none.json().error.code).toBe('unauthenticated');
    // The other metal's token, presented over this metal's connection: it grants another metal.
    const foreign = await m.https('GET', '/api/metal/v1/work?phase=2', { ...pi.tls, headers: other.pop(await other.token()) });
    expect(foreign.status).toBe(403);
    expect(foreign.json().error.code).toBe('forbidden');
    // Not a token at all.
    const garbage = await m.https('GET', '/api/metal/v1/work?phase=2', { ...pi.tls, headers: pi.pop('A'.repeat(40)) });
    expect(garbage.status).toBe(401);
    // An owner token for the metal with another scope: authenticated, but not for this API.
    const spc = await space('misc', 2);
    const scoped = await ok('POST', '/api/v1/tokens/issue', { audience: 'urn:tips:master', scope: [`update:space:${spc}`], holder: { metal: 'pi-07' } }, 201);
    const forbidden = await m.https('GET', '/api/metal/v1/work?phase=2', { ...pi.tls, headers: pi.pop(scoped.cwt) });
    expect(forbidden.status).toBe(403);
    expect(forbidden.json().error.code).toBe('forbidden');
    // A token the owner had issued to the metal's key for the owner's own subject: not the metal's authentication.
    const { createPublicKey } = await import('node:crypto');
    const metalKeyPem = createPublicKey(pi.keyPem).export({ type: 'spki', format: 'pem' }).toString();
    const ownerSub = await ok('POST', '/api/v1/tokens/issue', { audience: 'urn:tips:master', scope: [`pull:metal:${pi.id}`], holder: { publicKey: metalKeyPem } }, 201);
    const notTheMetal = await m.https('GET', '/api/metal/v1/work?phase=2', { ...pi.tls, headers: pi.pop(ownerSub.cwt) });
    expect(notTheMetal.status).toBe(403);
    expect(notTheMetal.json().error.message).toMatch(/another subject/);
    const t = await pi.token();
    m.clock.advance(121_000);
    const stale = await m.https('GET', '/api/metal/v1/work?phase=2', { ...pi.tls, headers: pi.pop(t) });
    expect(stale.status).toBe(401);
    expect(stale.json().error.code).toBe('reauth_required');
    expect((await m.https('GET', '/api/metal/v1/work?phase=2', { ...pi.tls, headers: pi.pop(await pi.token()) })).status).toBe(200);
    const events = await ok('GET', '/api/v1/metals/pi-07/events?kind=auth_failure');
    expect(events.items.map((e: { code: string }) => e.code).sort()).toEqual(['forbidden', 'forbidden', 'forbidden', 'reauth_required', 'unauthenticated', 'unauthenticated']);
    // Refused requests never delivered work: the metal has no installation state.
    expect((await ok('GET', '/api/v1/metals/pi-07')).updates.installed).toEqual([]);
  });
});

describe('S5/S7 trust list and profile', () => {
  it("serves the owner's active operator keys as a @tips/trust list, and lists metals by profile", async () => {
    const { pi, other, glazes } = await setup();
    const t = await pi.token();
    const tl = await m.app.inject({ method: 'GET', url: '/api/metal/v1/trust-list' });
    expect(tl.statusCode).toBe(401);
    const r = await fetchBytes(`/api/metal/v1/trust-list`, pi.tls, pi.pop(t));
    const list = decodeTrustList(r);
    expect(list.operators.map((o) => o.name)).toEqual(['ops']);
    expect(list.operators[0]!.publicKey.export({ type: 'spki', format: 'der' })).toEqual(operator.publicKey.export({ type: 'spki', format: 'der' }));
    expect(list.updateServers[0]!.caFingerprints).toHaveLength(2);

    const vendor = '7c3fa2a0-3c1e-5c0a-9b8d-0123456789ab';
    const profile = { vendorId: vendor, classId: null, glazes: [{ id: glazes.ga.id, name: 'os-tools', version: '1.0', sequence: 7 }], interfaces: [{ name: 'wlan0', mac: '02:00:00:00:07:ff', addresses: ['10.0.0.7'] }], protocols: ['https', 'mqtt'] };
    const put = await m.https('PUT', '/api/metal/v1/profile', { ...pi.tls, headers: { ...pi.pop(t), 'content-type': 'application/json' }, body: JSON.stringify(profile) });
    expect(put.status, put.body).toBe(204);
    const badProfile = await m.https('PUT', '/api/metal/v1/profile', { ...other.tls, headers: { ...other.pop(await other.token()), 'content-type': 'application/json' }, body: JSON.stringify({ ...profile, vendorId: 'not a uuid!' }) });
    expect(badProfile.status).toBe(400);
    expect(badProfile.json().error.field).toBe('vendorId');
    const names = async (q: string) => (await ok('GET', `/api/v1/metals?${q}`)).items.map((x: { name: string }) => x.name);
    expect(await names(`vendor=${vendor}`)).toEqual(['pi-07']);
    expect(await names(`vendor=${vendor.toUpperCase()}`)).toEqual(['pi-07']);
    expect(await names('glaze=os-tools@1.0')).toEqual(['pi-07']);
    expect(await names(`glaze=os-tools@1.0&vendor=${vendor}`)).toEqual(['pi-07']);
    expect(await names('vendor=00000000-0000-0000-0000-000000000000')).toEqual([]);
    expect((await owner('GET', '/api/v1/metals?glaze=os-tools@9.9')).statusCode).toBe(404);
    const show = await ok('GET', '/api/v1/metals/pi-07');
    expect(show.updates.profile).toMatchObject({ vendorId: vendor, protocols: ['https', 'mqtt'] });
  });
});

describe('T17 multi-homing: a work item lists the interfaces that link the metal to its Space', () => {
  it('names each linking interface with its MAC and the addresses of the registered profile, and no other interface', async () => {
    const { pi, spaces } = await setup();
    const both = await space('dual', 2);
    const g = await glaze('big', ['dual']);
    await ok('PATCH', '/api/v1/spaces/dual', { glaze: g.id });
    await ok('POST', '/api/v1/spaces/dual/members', { metal: pi.id, interfaces: ['eth0', 'wlan0'] }, 201);
    const t = await pi.token();
    const items = async () => (await m.https('GET', '/api/metal/v1/work?phase=2', { ...pi.tls, headers: pi.pop(t) })).json().items as { spaceId: string; interfaces: unknown }[];
    // No profile yet: the links are known, their addresses are not.
    await expect(items().then((i) => i.find((x) => x.spaceId === both)?.interfaces)).resolves.toEqual([
      { name: 'eth0', mac: '02:00:00:00:07:01', addresses: [] },
      { name: 'wlan0', mac: '02:00:00:00:07:ff', addresses: [] },
    ]);
    const profile = {
      vendorId: null,
      classId: null,
      glazes: [],
      interfaces: [
        { name: 'enp1s0', mac: '02:00:00:00:07:01', addresses: ['10.1.0.2'] },
        { name: 'wlp2s0', mac: '02:00:00:00:07:FF', addresses: ['10.2.0.2', 'fd00::2'] },
        { name: 'usb0', mac: '02:00:00:00:07:77', addresses: ['10.3.0.2'] },
      ],
      protocols: ['https'],
    };
    const put = await m.https('PUT', '/api/metal/v1/profile', { ...pi.tls, headers: { ...pi.pop(t), 'content-type': 'application/json' }, body: JSON.stringify(profile) });
    expect(put.status, put.body).toBe(204);
    const now = await items();
    // Matched by MAC (the OS may name an interface differently from the Metal Object).
    expect(now.find((x) => x.spaceId === both)?.interfaces).toEqual([
      { name: 'eth0', mac: '02:00:00:00:07:01', addresses: ['10.1.0.2'] },
      { name: 'wlan0', mac: '02:00:00:00:07:ff', addresses: ['10.2.0.2', 'fd00::2'] },
    ]);
    // A Space linked by one interface lists only that one.
    expect(now.find((x) => x.spaceId === spaces.a)?.interfaces).toEqual([{ name: 'wlan0', mac: '02:00:00:00:07:ff', addresses: ['10.2.0.2', 'fd00::2'] }]);
  });
});

async function fetchBytes(path: string, tls: { cert: string; key: string }, headers: Record<string, string>): Promise<Uint8Array> {
  const { request } = await import('node:https');
  return new Promise((resolve, reject) => {
    const req = request(`${m.url}${path}`, { headers, ca: m.rootPem, cert: tls.cert, key: tls.key, agent: false, servername: 'localhost' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(new Uint8Array(Buffer.concat(chunks))) : reject(new Error(`${res.statusCode} ${Buffer.concat(chunks)}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('T14 signed reports move installation state and history', () => {
  it('records a report signed by the metal certificate key, and refuses one signed by any other key', async () => {
    const { pi, spaces, glazes } = await setup();
    const t = await pi.token();
    const report = { glazeId: glazes.ga.id, spaceId: spaces.a, result: 'installed', reason: null, sequence: 7, at: '2026-11-29T10:00:00.000Z' };
    const forged = signedReport((await makeCsr()).keyPem, report);
    const refused = await m.https('POST', '/api/metal/v1/reports', { ...pi.tls, headers: { ...pi.pop(t), ...COSE }, body: forged });
    expect(refused.status).toBe(401);
    expect(refused.json().error.code).toBe('report_invalid');
    expect((await ok('GET', '/api/v1/metals/pi-07')).updates.history).toEqual([]);

    const r = await m.https('POST', '/api/metal/v1/reports', { ...pi.tls, headers: { ...pi.pop(t), ...COSE }, body: signedReport(pi.keyPem, report) });
    expect(r.status, r.body).toBe(204);
    m.clock.advance(1000);
    const failed = signedReport(pi.keyPem, { ...report, glazeId: glazes.gb.id, spaceId: spaces.b, result: 'failed', reason: 'suit_rollback', sequence: 3 });
    expect((await m.https('POST', '/api/metal/v1/reports', { ...pi.tls, headers: { ...pi.pop(t), ...COSE }, body: failed })).status).toBe(204);
    // A Space the metal is not in: refused, nothing recorded.
    const foreign = signedReport(pi.keyPem, { ...report, glazeId: glazes.gc.id, spaceId: spaces.c });
    const fr = await m.https('POST', '/api/metal/v1/reports', { ...pi.tls, headers: { ...pi.pop(t), ...COSE }, body: foreign });
    expect(fr.status).toBe(422);
    const malformed = signedReport(pi.keyPem, { ...report, result: 'exploded' });
    const mr = await m.https('POST', '/api/metal/v1/reports', { ...pi.tls, headers: { ...pi.pop(t), ...COSE }, body: malformed });
    expect(mr.status).toBe(400);
    expect(mr.json().error.field).toBe('result');
    const json = await m.https('POST', '/api/metal/v1/reports', { ...pi.tls, headers: { ...pi.pop(t), 'content-type': 'application/json' }, body: '{}' });
    expect(json.status).toBe(415);

    const show = (await ok('GET', '/api/v1/metals/pi-07')).updates;
    expect(show.installed).toEqual([{ spaceId: spaces.a, glazeId: glazes.ga.id, glazeName: 'os-tools', version: '1.0', sequence: 7, installedAt: report.at }]);
    expect(show.history.map((h: { result: string }) => h.result)).toEqual(['failed', 'installed']);
    expect(show.lastReport).toMatchObject({ result: 'failed', reason: 'suit_rollback', spaceId: spaces.b });
    const events = (await ok('GET', '/api/v1/metals/pi-07/events?kind=auth_failure')).items;
    expect(events.map((e: { code: string }) => e.code)).toEqual(['report_invalid']);
  });

  it('records a rollback request for an installed Glaze, and refuses one for a Glaze never installed', async () => {
    const { pi, spaces, glazes } = await setup();
    const none = await owner('POST', '/api/v1/metals/pi-07/rollback', {});
    expect(none.statusCode).toBe(409);
    const t = await pi.token();
    const report = { glazeId: glazes.g3.id, spaceId: spaces.p3, result: 'installed', reason: null, sequence: 7, at: '2026-11-29T10:00:00.000Z' };
    expect((await m.https('POST', '/api/metal/v1/reports', { ...pi.tls, headers: { ...pi.pop(t), ...COSE }, body: signedReport(pi.keyPem, report) })).status).toBe(204);
    expect((await owner('POST', '/api/v1/metals/pi-07/rollback', { glaze: 'os-tools' })).statusCode).toBe(409);
    const r = await ok('POST', '/api/v1/metals/pi-07/rollback', { glaze: 'web@1.4' }, 202);
    expect(r.spaces).toEqual([{ spaceId: spaces.p3, glazeId: glazes.g3.id }]);
    expect(r.notified).toBe(0);
    const ev = (await ok('GET', '/api/v1/metals/pi-07/events?kind=rollback_requested')).items;
    expect(ev).toHaveLength(1);
  });
  it('T15 a rollback request waits in the Phase 3 work answer (pull, when the hint is lost) until the metal reports it', async () => {
    const { pi, other, spaces, glazes } = await setup();
    const t = await pi.token();
    const work = async (phase: 2 | 3, who = pi, tok = t) => (await m.https('GET', `/api/metal/v1/work?phase=${phase}`, { ...who.tls, headers: who.pop(tok) })).json();
    const post = async (body: Record<string, unknown>) => {
      m.clock.advance(1000);
      const r = await m.https('POST', '/api/metal/v1/reports', { ...pi.tls, headers: { ...pi.pop(t), ...COSE }, body: signedReport(pi.keyPem, body) });
      expect(r.status, r.body).toBe(204);
    };
    const installed = { glazeId: glazes.g3.id, spaceId: spaces.p3, result: 'installed', reason: null, sequence: 7, at: '2026-11-29T10:00:00.000Z' };
    await post(installed);
    expect((await work(3)).rollbacks).toEqual([]);
    m.clock.advance(1000);
    const r = await ok('POST', '/api/v1/metals/pi-07/rollback', { glaze: 'web@1.4' }, 202);
    const w3 = await work(3);
    expect(w3.rollbacks).toEqual([{ eventId: r.eventId, spaceId: spaces.p3, glazeId: glazes.g3.id, requestedAt: expect.any(String) }]);
    // Only the asked phase's Spaces; another metal never sees it.
    expect((await work(2)).rollbacks).toEqual([]);
    expect((await work(3, other, await other.token())).rollbacks).toEqual([]);
    // An unrelated report does not answer it; the metal's rolled_back report does.
    await post({ ...installed, result: 'failed', reason: 'download_failed' });
    expect((await work(3)).rollbacks).toHaveLength(1);
    await post({ ...installed, result: 'rolled_back', reason: 'rollback_requested' });
    expect((await work(3)).rollbacks).toEqual([]);
    // A second request (the metal installed 1.4 again: the rollback left nothing TIPS installed), answered by "cannot": a rollback_* reason answers it too.
    await post(installed);
    m.clock.advance(1000);
    await ok('POST', '/api/v1/metals/pi-07/rollback', {}, 202);
    expect((await work(3)).rollbacks).toHaveLength(1);
    await post({ ...installed, result: 'failed', reason: 'rollback_unavailable' });
    expect((await work(3)).rollbacks).toEqual([]);
  });
});

describe('T15 D2 S14 tips metal show after a rollback and after retirement', () => {
  it('shows what the metal runs after a rolled_back report (the version it went back to) and marks the rollback in its history', async () => {
    const { pi, spaces, glazes } = await setup();
    // (Glaze names are unique per owner: the versions before and after 1.4 go by their own names.)
    const g13 = await glaze('web-old', ['apps'], { version: '1.3', handler: 'systemd-service' });
    const g15 = await glaze('web-next', ['apps'], { version: '1.5', handler: 'systemd-service' });
    const t = await pi.token();
    const post = async (body: Record<string, unknown>) => {
      m.clock.advance(1000);
      const r = await m.https('POST', '/api/metal/v1/reports', { ...pi.tls, headers: { ...pi.pop(t), ...COSE }, body: signedReport(pi.keyPem, body) });
      expect(r.status, r.body).toBe(204);
    };
    const base = { spaceId: spaces.p3, reason: null };
    await post({ ...base, glazeId: g13.id, result: 'installed', sequence: 13, at: '2026-11-29T10:00:00.000Z' });
    await post({ ...base, glazeId: glazes.g3.id, result: 'installed', sequence: 14, at: '2026-11-29T11:00:00.000Z' });
    // 1.5's health check failed: the metal never left 1.4 — nothing changes in what it runs.
    await post({ ...base, glazeId: g15.id, result: 'rolled_back', reason: 'health_check_failed', sequence: 15, at: '2026-11-29T11:30:00.000Z' });
    let show = (await ok('GET', '/api/v1/metals/pi-07')).updates;
    expect(show.installed).toEqual([{ spaceId: spaces.p3, glazeId: glazes.g3.id, glazeName: 'web', version: '1.4', sequence: 14, installedAt: '2026-11-29T11:00:00.000Z' }]);
    expect(show.history[0]).not.toHaveProperty('rolledBackTo');

    // `tips metal rollback`: the metal leaves 1.4 and runs 1.3 again.
    await post({ ...base, glazeId: glazes.g3.id, result: 'rolled_back', reason: 'rollback_requested', sequence: 14, at: '2026-11-29T12:00:00.000Z' });
    show = (await ok('GET', '/api/v1/metals/pi-07')).updates;
    expect(show.installed).toEqual([{ spaceId: spaces.p3, glazeId: g13.id, glazeName: 'web-old', version: '1.3', sequence: 13, installedAt: '2026-11-29T12:00:00.000Z' }]);
    expect(show.history[0]).toMatchObject({ glazeId: glazes.g3.id, result: 'rolled_back', rolledBackTo: { glazeId: g13.id, glazeName: 'web-old', version: '1.3' } });
    expect(show.history.filter((h: { rolledBackTo?: unknown }) => h.rolledBackTo)).toHaveLength(1);
    const ev = (await ok('GET', '/api/v1/metals/pi-07/events?kind=rolled_back')).items;
    expect(ev).toEqual([expect.objectContaining({ kind: 'rolled_back', code: 'glaze_rolled_back', detail: expect.objectContaining({ spaceId: spaces.p3, from: glazes.g3.id, to: g13.id }) })]);
    // The profile query follows: it runs 1.3, not 1.4.
    expect((await ok('GET', '/api/v1/metals?glaze=web@1.4')).items).toEqual([]);
    expect((await ok('GET', '/api/v1/metals?glaze=web-old@1.3')).items.map((x: { name: string }) => x.name)).toEqual(['pi-07']);

    // Rolled back from 1.3 too: the one before it (1.4) was left already — nothing TIPS installed runs there.
    await post({ ...base, glazeId: g13.id, result: 'rolled_back', reason: 'rollback_requested', sequence: 13, at: '2026-11-29T13:00:00.000Z' });
    show = (await ok('GET', '/api/v1/metals/pi-07')).updates;
    expect(show.installed).toEqual([]);
    expect(show.history[0]).toMatchObject({ glazeId: g13.id, rolledBackTo: { glazeId: null, glazeName: null, version: null } });
    expect((await owner('POST', '/api/v1/metals/pi-07/rollback', {})).statusCode).toBe(409);
  });

  it('shows when a retired metal was retired (null while in service)', async () => {
    await setup();
    expect((await ok('GET', '/api/v1/metals/pi-08')).retiredAt).toBeNull();
    const r = await ok('POST', '/api/v1/metals/pi-08/retire', {});
    const shown = await ok('GET', '/api/v1/metals/pi-08');
    expect(shown.retiredAt).toBe(r.retiredAt);
    expect(Date.parse(shown.retiredAt)).not.toBeNaN();
    expect((await ok('GET', '/api/v1/metals/pi-07')).retiredAt).toBeNull();
  });
});

describe('T16 tamper reports block the metal everywhere and are visible to the owner', () => {
  it('records what changed, blocks the metal, and the metal API refuses it afterwards', async () => {
    const { pi, other } = await setup();
    const t = await pi.token();
    const bad = await m.https('POST', '/api/metal/v1/tamper', { ...pi.tls, headers: { ...pi.pop(t), 'content-type': 'application/json' }, body: JSON.stringify({ changes: [{ path: '/x', kind: 'exploded', detail: '' }] }) });
    expect(bad.status).toBe(400);
    expect(await m.services.discovery.isBlocked(pi.id as never)).toBe(false);
    const changes = [
      { path: '/var/lib/dpkg/status', kind: 'package', detail: 'hello 2.10-3 installed outside TIPS' },
      { path: '/usr/local/bin/x', kind: 'added', detail: 'sha256 ab…' },
    ];
    const r = await m.https('POST', '/api/metal/v1/tamper', { ...pi.tls, headers: { ...pi.pop(t), 'content-type': 'application/json' }, body: JSON.stringify({ changes }) });
    expect(r.status, r.body).toBe(202);
    expect(await m.services.discovery.isBlocked(pi.id as never)).toBe(true);
    expect(await m.services.discovery.isBlocked(other.id as never)).toBe(false);
    const ev = (await ok('GET', '/api/v1/metals/pi-07/events?kind=tamper')).items;
    expect(ev).toHaveLength(1);
    expect(ev[0].detail.changes).toEqual(changes);
    const after = await m.https('GET', '/api/metal/v1/work?phase=2', { ...pi.tls, headers: pi.pop(t) });
    expect(after.status).toBe(403);

    // The fleet-wide list (the console's tamper view): this report, the metal's name, blocked now.
    const fleet = await ok('GET', '/api/v1/tamper-events?limit=10');
    expect(fleet.items).toEqual([expect.objectContaining({ id: ev[0].id, kind: 'tamper', metalId: pi.id, metalName: 'pi-07', blocked: true, detail: { changes } })]);
    expect(fleet.nextCursor).toBeNull();
    await ok('POST', '/api/v1/metals/pi-07/unblock', undefined, 202);
    expect((await ok('GET', '/api/v1/tamper-events')).items[0].blocked).toBe(false);
    // Another owner sees none of it.
    const bob = await m.app.inject({ url: '/api/v1/tamper-events', headers: m.auth(m.bob.token) });
    expect(bob.json().items).toEqual([]);
  });
});

describe('T15 S9 rollback requests and Glaze changes reach the metal over the embedded broker (real TLS, mqtt.js)', () => {
  it('delivers a rollback and a Phase 3 Glaze change to the metal; refuses a revoked certificate at CONNECT; counts connected metals', async () => {
    const { startEmbeddedBroker } = await import('../notifications/broker.ts');
    const { issueServerCertificate } = await import('../enrollment/ca.ts');
    const mqtt = (await import('mqtt')).default;
    const { pi, other, spaces, glazes } = await setup();
    const server = await issueServerCertificate(m.ca, { now: m.clock.now(), random: { bytes: (n) => new Uint8Array(randomBytes(n)) }, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const bus = await startEmbeddedBroker({
      host: '127.0.0.1',
      port: 0,
      publicHost: 'localhost',
      certPem: server.chainPem,
      keyPem: server.keyPem,
      clientCaPem: m.rootPem + m.intermediatePem,
      authenticateMetal: (peer) => m.services.enrollment.authenticateMetal(peer),
      log: { info: () => {}, warn: () => {} },
    });
    m.services.notifications.useBus(bus);
    const connect = (tls: { cert: string; key: string }) =>
      mqtt.connectAsync({ host: '127.0.0.1', port: bus.port, protocol: 'mqtts', ca: m.rootPem, cert: tls.cert, key: tls.key, servername: 'localhost', reconnectPeriod: 0, connectTimeout: 10_000 });
    const client = await connect(pi.tls);
    try {
      const got: { topic: string; body: Record<string, unknown> }[] = [];
      client.on('message', (topic, payload) => got.push({ topic, body: JSON.parse(payload.toString()) }));
      expect((await client.subscribeAsync(`tips/metal/${pi.id}`, { qos: 1 })).map((g) => g.qos)).toEqual([1]);
      // Another metal's topic: refused in the SUBACK (0x80), the connection stays up.
      await expect(client.subscribeAsync(`tips/metal/${other.id}`, { qos: 1 })).rejects.toThrow(/Subscribe error/);
      await expect(client.subscribeAsync('tips/metal/#', { qos: 1 })).rejects.toThrow(/Subscribe error/);
      expect(client.connected).toBe(true);
      expect(bus.connectedMetals()).toBe(1);
      const metrics = await m.app.inject({ method: 'GET', url: '/metrics' });
      expect(metrics.body).toMatch(/tips_master_mqtt_connected_metals 1/);

      const t = await pi.token();
      const report = { glazeId: glazes.g3.id, spaceId: spaces.p3, result: 'installed', reason: null, sequence: 7, at: '2026-11-29T10:00:00.000Z' };
      expect((await m.https('POST', '/api/metal/v1/reports', { ...pi.tls, headers: { ...pi.pop(t), ...COSE }, body: signedReport(pi.keyPem, report) })).status).toBe(204);
      const r = await ok('POST', '/api/v1/metals/pi-07/rollback', {}, 202);
      expect(r.notified).toBe(1);
      const g4 = await glaze('web2', ['apps'], { version: '1.5' });
      await ok('PATCH', '/api/v1/spaces/apps', { glaze: 'web2@1.5' });
      await m.services.updates.lastFanOut;
      await until(() => got.length >= 2);
      expect(got).toEqual([
        { topic: `tips/metal/${pi.id}`, body: { glazes: [glazes.g3.id], spaceId: spaces.p3, reason: 'rollback', notBefore: null } },
        { topic: `tips/metal/${pi.id}`, body: { glazes: [g4.id], spaceId: spaces.p3, reason: 'glaze_set', notBefore: null } },
      ]);
      // A Glaze set on a Phase 2 Space notifies nobody: those metals pull.
      await ok('PATCH', '/api/v1/spaces/base', { glaze: glazes.ga.id });
      await new Promise((r) => setTimeout(r, 300));
      await m.services.updates.lastFanOut;
      expect(got).toHaveLength(2);

      // The other metal's certificate, revoked: refused at CONNECT.
      await ok('POST', `/api/v1/enrollment/metals/${other.id}/revoke`);
      await expect(connect(other.tls)).rejects.toThrow(/Not authorized|not authorized/i);
      expect(bus.connectedMetals()).toBe(1);
    } finally {
      await client.endAsync(true);
      m.services.notifications.useBus(undefined);
      await bus.close();
    }
  }, 60_000);
});

async function until(ok: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
