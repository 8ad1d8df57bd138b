import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import {
  type CoapMessage,
  type CoapOption,
  codeOf,
  codeString,
  decodeBlock,
  decodeMessage,
  encodeBlock,
  encodeMessage,
  encodeUint,
  type MemoryPeer,
  memoryTransport,
  OPTION,
  optionUint,
  TYPE_ACK,
  TYPE_CON,
} from '@tips/coap';
import { bindGlaze, type CborValue, coseSign1Sign, decodeCbor, encodeCbor, HEADER_ALG, importKey } from '@tips/suit';
import { decodeTrustList, parseCertsOnlyPkcs7 } from '@tips/trust';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { b64, makeCsr, type TlsTestMaster, tlsTestMaster } from '../../tls/testing.ts';
import { type ConstrainedEndpoint, startConstrained } from './coap.ts';

let m: TlsTestMaster;
let ep: ConstrainedEndpoint;
let transport: ReturnType<typeof memoryTransport>;
beforeEach(async () => {
  m = await tlsTestMaster();
  transport = memoryTransport();
  ep = startConstrained({ transport, ...m.services, logger: pino({ level: 'silent' }), coap: { maxBlockSize: 256 } });
});
afterEach(async () => {
  await ep.close();
  await m.close();
});

const operator = generateKeyPairSync('ed25519');
const te = new TextEncoder();

async function owner(method: string, url: string, payload?: unknown, headers: Record<string, string> = {}, token = m.alice.token) {
  return m.app.inject({ method: method as 'GET', url, headers: { ...m.auth(token), ...headers }, payload: payload as object });
}
async function ok(method: string, url: string, payload?: unknown, status = 200, token = m.alice.token) {
  const r = await owner(method, url, payload, {}, token);
  expect(r.statusCode, r.body).toBe(status);
  return r.statusCode === 204 ? undefined : r.json();
}

async function glaze(name: string, spaces: string[], token = m.alice.token) {
  const bytes = Buffer.from(Array.from({ length: 3000 }, (_, i) => `${name}:${i};`).join('').slice(0, 3000 + name.length));
  const q = new URLSearchParams({ name, spaces: spaces.join(',') });
  const r = (await owner('POST', `/api/v1/glazes?${q}`, bytes, { 'content-type': 'application/octet-stream' }, token)).json();
  const envelope = bindGlaze({
    payloadSha256: createHash('sha256').update(bytes).digest('hex'),
    payloadSize: bytes.length,
    uri: `coaps://master/${name}`,
    vendorDomain: 'tips.local',
    classInfo: name,
    component: name,
    sequenceNumber: 7,
    key: importKey(operator.privateKey),
  });
  const a = await owner('PUT', `/api/v1/glazes/${r.id}/manifest`, Buffer.from(envelope), { 'content-type': 'application/suit-envelope+cose' }, token);
  expect(a.statusCode, a.body).toBe(200);
  return { id: r.id as string, sha256: r.sha256 as string, bytes };
}

async function enrolledMetal(name: string, mac: string) {
  const metal = await ok('POST', '/api/v1/metals', { name, interfaces: [{ name: 'eth0', mac, type: 'ethernet', pxe: true }] }, 201);
  const s = await ok('POST', '/api/v1/enrollment/secrets', { metal: metal.id }, 201);
  const csr = await makeCsr({ uris: [`urn:tips:metal:${metal.id}`] });
  const r = await m.https('POST', '/.well-known/est/simpleenroll', {
    headers: { 'content-type': 'application/pkcs10', authorization: `Basic ${Buffer.from(`${s.id}:${s.secret}`).toString('base64')}` },
    body: b64(csr.der),
  });
  expect(r.status).toBe(200);
  const [cert] = parseCertsOnlyPkcs7(new Uint8Array(Buffer.from(r.body, 'base64')));
  return { id: metal.id as string, der: new Uint8Array(cert!.rawData), keyPem: csr.keyPem };
}

/** A CoAP client on one in-memory "DTLS session": CON requests, Block2 followed to the end. */
class Device {
  private mid = 1;
  private readonly inbox: CoapMessage[] = [];
  readonly notifications: CoapMessage[] = [];
  constructor(readonly mp: MemoryPeer) {
    mp.onMessage((d) => {
      const msg = decodeMessage(d);
      if (msg.type === TYPE_ACK) this.inbox.push(msg);
      else {
        this.notifications.push(msg);
        if (msg.type === TYPE_CON) mp.send(encodeMessage({ type: TYPE_ACK, code: 0, messageId: msg.messageId, token: new Uint8Array(0), options: [], payload: new Uint8Array(0) }));
      }
    });
  }
  async once(method: string, path: string, opts: { query?: string[]; format?: number; payload?: Uint8Array; options?: CoapOption[]; token?: Uint8Array } = {}): Promise<CoapMessage> {
    const mid = this.mid++;
    const options: CoapOption[] = [...(opts.options ?? [])];
    for (const seg of path.split('/').filter(Boolean)) options.push({ number: OPTION.URI_PATH, value: te.encode(seg) });
    for (const q of opts.query ?? []) options.push({ number: OPTION.URI_QUERY, value: te.encode(q) });
    if (opts.format !== undefined) options.push({ number: OPTION.CONTENT_FORMAT, value: encodeUint(opts.format) });
    options.sort((a, b) => a.number - b.number);
    const code = { GET: '0.01', POST: '0.02', PUT: '0.03', DELETE: '0.04' }[method] as string;
    this.mp.send(encodeMessage({ type: TYPE_CON, code: codeOf(code), messageId: mid, token: opts.token ?? Uint8Array.of(mid), options, payload: opts.payload ?? new Uint8Array(0) }));
    for (let i = 0; i < 400; i++) {
      const at = this.inbox.findIndex((x) => x.messageId === mid);
      if (at >= 0) return this.inbox.splice(at, 1)[0]!;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no answer to ${method} ${path}`);
  }
  /** The whole representation (Block2 followed), with the first block's response. */
  async get(path: string, query: string[] = []): Promise<{ first: CoapMessage; body: Uint8Array; blocks: number }> {
    const first = await this.once('GET', path, { query });
    const chunks = [first.payload];
    let blocks = 1;
    let b2 = first.options.find((o) => o.number === OPTION.BLOCK2);
    while (b2 && decodeBlock(b2.value).more) {
      const b = decodeBlock(b2.value);
      const r = await this.once('GET', path, { query, options: [{ number: OPTION.BLOCK2, value: encodeBlock({ num: b.num + 1, more: false, szx: b.szx }) }] });
      expect(codeString(r.code)).toBe('2.05');
      expect(r.options.find((o) => o.number === OPTION.ETAG)?.value).toEqual(first.options.find((o) => o.number === OPTION.ETAG)?.value);
      chunks.push(r.payload);
      blocks++;
      b2 = r.options.find((o) => o.number === OPTION.BLOCK2);
    }
    return { first, body: new Uint8Array(Buffer.concat(chunks)), blocks };
  }
}

const psk = async (metal: string) => (await ok('POST', `/api/v1/metals/${metal}/psk`, undefined, 201)) as { identity: string; key: string };
const pskDevice = (identity: string) => new Device(transport.connect({ kind: 'psk', identity }));
const errorOf = (r: CoapMessage) => ((decodeCbor(r.payload) as Map<string, CborValue>).get('error') as Map<string, CborValue>).get('code');
const cborMap = (o: Record<string, CborValue>) => new Map(Object.entries(o)) as Map<CborValue, CborValue>;

async function setup() {
  await ok('POST', '/api/v1/keys', { name: 'ops', publicKey: operator.publicKey.export({ type: 'spki', format: 'pem' }).toString() }, 201);
  const pi = await enrolledMetal('pi-07', '02:00:00:00:07:01');
  const other = await enrolledMetal('pi-08', '02:00:00:00:08:01');
  for (const [name, phase] of [
    ['base', 2],
    ['secret', 2],
    ['apps', 3],
  ] as const)
    await ok('POST', '/api/v1/spaces', { name, phase }, 201);
  const base = await glaze('os-tools', ['base']);
  const hidden = await glaze('hidden', ['secret']);
  const app1 = await glaze('web-1', ['apps']);
  await ok('PATCH', '/api/v1/spaces/base', { glaze: base.id });
  await ok('PATCH', '/api/v1/spaces/secret', { glaze: hidden.id });
  await ok('PATCH', '/api/v1/spaces/apps', { glaze: app1.id });
  await ok('POST', '/api/v1/spaces/base/members', { metal: pi.id, interfaces: ['eth0'] }, 201);
  await ok('POST', '/api/v1/spaces/apps/members', { metal: pi.id, interfaces: ['eth0'] }, 201);
  await ok('POST', '/api/v1/spaces/apps/members', { metal: other.id, interfaces: ['eth0'] }, 201);
  await ok('POST', '/api/v1/spaces/secret/members', { metal: other.id, interfaces: ['eth0'] }, 201);
  return { pi, other, glazes: { base, hidden, app1 } };
}

describe('S13 T14 CoAP metal API over a DTLS identity (CONTRACT F)', () => {
  it('a PSK metal registers its profile, gets only its own Spaces\' work and the trust list (S5)', async () => {
    const { pi, glazes } = await setup();
    const d = pskDevice((await psk('pi-07')).identity);
    const profile = cborMap({ vendorId: null, classId: null, glazes: [], interfaces: [cborMap({ name: 'eth0', mac: '02:00:00:00:07:01', addresses: ['10.0.0.7'] })], protocols: ['coap'] });
    const put = await d.once('PUT', 'profile', { format: 60, payload: encodeCbor(profile) });
    expect(codeString(put.code)).toBe('2.04');
    expect((await ok('GET', `/api/v1/metals/${pi.id}`)).updates.profile.protocols).toEqual(['coap']);

    const w = await d.get('work', ['phase=2']);
    expect(codeString(w.first.code)).toBe('2.05');
    expect(optionUint(w.first, OPTION.CONTENT_FORMAT)).toBe(60);
    const work = decodeCbor(w.body) as Map<string, CborValue>;
    const items = work.get('items') as Map<string, CborValue>[];
    expect(items.map((i) => (i.get('glaze') as Map<string, CborValue>).get('id'))).toEqual([glazes.base.id]);
    expect(items[0]!.get('blobPath')).toBe(`/glazes/${glazes.base.id}/blob`);
    expect((items[0]!.get('manifest') as Uint8Array).length).toBeGreaterThan(50);

    const t = await d.get('trust-list');
    expect(codeString(t.first.code)).toBe('2.05');
    expect(decodeTrustList(t.body).operators).toHaveLength(1);
  });

  it('Block2: a multi-block Glaze arrives whole, ETag = first 8 bytes of its sha256; the metal is checked once per transfer and the blob opened once per read-ahead window', async () => {
    const { glazes } = await setup();
    const d = pskDevice((await psk('pi-07')).identity);
    const open = vi.spyOn(m.services.glazes, 'open');
    const principal = vi.spyOn(m.services.constrained, 'principal');
    const r = await d.get(`glazes/${glazes.base.id}/blob`);
    expect(r.blocks).toBe(Math.ceil(glazes.base.bytes.length / 256));
    expect(r.blocks).toBeGreaterThan(10);
    expect(createHash('sha256').update(r.body).digest('hex')).toBe(glazes.base.sha256);
    expect(Buffer.from(r.first.options.find((o) => o.number === OPTION.ETAG)!.value).toString('hex')).toBe(glazes.base.sha256.slice(0, 16));
    expect(optionUint(r.first, OPTION.SIZE2)).toBe(glazes.base.bytes.length);
    // 1 s re-check bound: a slow run may re-check once or twice, never per block.
    expect(principal.mock.calls.length).toBeGreaterThanOrEqual(1);
    expect(principal.mock.calls.length).toBeLessThan(r.blocks / 2);
    expect(open).toHaveBeenCalledTimes(1);
    expect(open.mock.calls[0]![2]).toEqual({ start: 0, end: glazes.base.bytes.length - 1 });
  });

  it('Block2: revoking the PSK in the middle of a transfer cuts it at the next block (4.01, no more bytes)', async () => {
    const { glazes } = await setup();
    const cred = await psk('pi-07');
    const d = pskDevice(cred.identity);
    const path = `glazes/${glazes.base.id}/blob`;
    // The transport's Block2 offloads (the native fast path of @tips/dtls): each block answered here offers the
    // rest of the transfer until the next re-check (≤ 1 s); the revocation cancels them all before the next block.
    const offered: { deadline: number; at: number }[] = [];
    let cancelled = 0;
    transport.offloadBlock2 = (_peer, o) => {
      offered.push({ deadline: o.deadline, at: Date.now() });
      return false; // not taken: every block keeps coming here, as with node:dgram
    };
    transport.cancelOffloads = () => {
      cancelled++;
    };
    const block = (num: number) => d.once('GET', path, { options: [{ number: OPTION.BLOCK2, value: encodeBlock({ num, more: false, szx: 4 }) }] });
    for (const num of [0, 1, 2]) expect(codeString((await block(num)).code)).toBe('2.05');
    expect(offered).toHaveLength(3);
    for (const o of offered) expect(o.deadline - o.at).toBeLessThanOrEqual(1_000);
    expect(cancelled).toBe(0);
    await ok('DELETE', `/api/v1/metals/pi-07/psk/${cred.identity}`, undefined, 204);
    expect(cancelled).toBeGreaterThanOrEqual(1);
    const cut = await block(3);
    expect(offered).toHaveLength(3);
    expect(codeString(cut.code)).toBe('4.01');
    expect(errorOf(cut)).toBe('peer_unauthenticated');
    expect(Buffer.from(cut.payload).includes(glazes.base.bytes.subarray(3 * 256, 3 * 256 + 16))).toBe(false);
  });

  it('Block2: a metal removed from the Space mid-transfer gets 4.04 at the next block', async () => {
    const { glazes } = await setup();
    const d = pskDevice((await psk('pi-07')).identity);
    const path = `glazes/${glazes.base.id}/blob`;
    const block = (num: number) => d.once('GET', path, { options: [{ number: OPTION.BLOCK2, value: encodeBlock({ num, more: false, szx: 4 }) }] });
    expect(codeString((await block(0)).code)).toBe('2.05');
    await ok('DELETE', '/api/v1/spaces/base/members/pi-07', undefined, 204);
    expect(codeString((await block(1)).code)).toBe('4.04');
  });

  it("another Space's Glaze and another owner's Glaze are 4.04 and give no bytes", async () => {
    const { glazes } = await setup();
    await ok('POST', '/api/v1/keys', { name: 'ops', publicKey: operator.publicKey.export({ type: 'spki', format: 'pem' }).toString() }, 201, m.bob.token);
    await ok('POST', '/api/v1/spaces', { name: 'bobs', phase: 2 }, 201, m.bob.token);
    const bobs = await glaze('bob-fw', ['bobs'], m.bob.token);
    const d = pskDevice((await psk('pi-07')).identity);
    for (const id of [glazes.hidden.id, bobs.id, 'glz_nothing']) {
      const r = await d.once('GET', `glazes/${id}/blob`);
      expect(codeString(r.code)).toBe('4.04');
      expect(errorOf(r)).toBe('glaze_not_found');
      expect(Buffer.from(r.payload).includes(Buffer.from('hidden:1;'))).toBe(false);
    }
  });

  it('a revoked PSK, an unknown identity and a plain-UDP peer are 4.01 on every resource; pskLookup refuses them', async () => {
    await setup();
    const cred = await psk('pi-07');
    expect(Buffer.from((await m.services.constrained.pskLookup(cred.identity))!).toString('hex')).toBe(cred.key);
    const d = pskDevice(cred.identity);
    expect(codeString((await d.once('GET', 'work', { query: ['phase=2'] })).code)).toBe('2.05');
    await ok('DELETE', `/api/v1/metals/pi-07/psk/${cred.identity}`, undefined, 204);
    expect(await m.services.constrained.pskLookup(cred.identity)).toBeUndefined();
    const before = (await ok('GET', '/api/v1/metals/pi-07')).updates.profile;
    for (const dev of [d, pskDevice('nobody.1'), new Device(transport.connect({ kind: 'none' }))]) {
      const w = await dev.once('GET', 'work', { query: ['phase=2'] });
      expect(codeString(w.code)).toBe('4.01');
      expect(errorOf(w)).toBe('peer_unauthenticated');
      const p = await dev.once('PUT', 'profile', { format: 60, payload: encodeCbor(cborMap({ vendorId: null, classId: null, glazes: [], interfaces: [], protocols: ['coap'] })) });
      expect(codeString(p.code)).toBe('4.01');
    }
    expect((await ok('GET', '/api/v1/metals/pi-07')).updates.profile).toEqual(before);
  });

  it('a certificate identity is checked by enrollment on every request: reports verify; revocation is 4.01, tamper blocks (4.03)', async () => {
    const { pi } = await setup();
    const d = new Device(transport.connect({ kind: 'certificate', chain: [pi.der] }));
    expect(codeString((await d.once('GET', 'work', { query: ['phase=3'] })).code)).toBe('2.05');
    const spaceId = (await ok('GET', '/api/v1/spaces/base')).id;
    const glazeId = (await ok('GET', '/api/v1/spaces/base')).glazeId;
    const payload = encodeCbor(cborMap({ glazeId, spaceId, result: 'installed', reason: null, sequence: 7, at: new Date().toISOString() }));
    const cose = coseSign1Sign({ protectedHeaders: new Map([[HEADER_ALG, -7]]), payload }, importKey(pi.keyPem));
    const wrongFormat = await d.once('POST', 'reports', { format: 60, payload: cose });
    expect(codeString(wrongFormat.code)).toBe('4.15');
    const rep = await d.once('POST', 'reports', { format: 18, payload: cose });
    expect(codeString(rep.code)).toBe('2.04');
    expect((await ok('GET', `/api/v1/metals/${pi.id}`)).updates.lastReport.result).toBe('installed');

    const tamper = await d.once('POST', 'tamper', { format: 60, payload: encodeCbor(cborMap({ changes: [cborMap({ path: '/usr/bin/x', kind: 'added', detail: 'sha256 …' })] })) });
    expect(codeString(tamper.code)).toBe('2.04');
    expect((decodeCbor(tamper.payload) as Map<string, CborValue>).get('eventId')).toMatch(/^evt_/);
    const blocked = await d.once('GET', 'work', { query: ['phase=3'] });
    expect(codeString(blocked.code)).toBe('4.03');
    expect(errorOf(blocked)).toBe('metal_blocked');
    // The same holds for a PSK of the same metal.
    const p = pskDevice((await psk(pi.id)).identity);
    expect(errorOf(await p.once('GET', 'work', { query: ['phase=3'] }))).toBe('metal_blocked');

    const other = await enrolledMetal('pi-09', '02:00:00:00:09:01');
    const o = new Device(transport.connect({ kind: 'certificate', chain: [other.der] }));
    expect(codeString((await o.once('GET', 'trust-list')).code)).toBe('2.05');
    await ok('POST', `/api/v1/enrollment/metals/${other.id}/revoke`, undefined, 200);
    const revoked = await o.once('GET', 'trust-list');
    expect(codeString(revoked.code)).toBe('4.01');
    expect(errorOf(revoked)).toBe('certificate_revoked');
    expect(new X509Certificate(other.der).subject).toBeDefined();
  });

  it('bad input: 4.00 naming the field and nothing stored; unknown path 4.04; wrong method 4.05; bad phase 4.00', async () => {
    const { pi } = await setup();
    const d = pskDevice((await psk('pi-07')).identity);
    const bad = await d.once('PUT', 'profile', { format: 60, payload: encodeCbor(cborMap({ vendorId: null, classId: null, glazes: [], interfaces: [], protocols: ['gopher'] })) });
    expect(codeString(bad.code)).toBe('4.00');
    expect(((decodeCbor(bad.payload) as Map<string, CborValue>).get('error') as Map<string, CborValue>).get('field')).toBe('protocols[0]');
    const notCbor = await d.once('PUT', 'profile', { format: 60, payload: Uint8Array.of(0xff, 0x00) });
    expect(codeString(notCbor.code)).toBe('4.00');
    expect((await ok('GET', `/api/v1/metals/${pi.id}`)).updates.profile).toBeNull();
    expect(codeString((await d.once('GET', 'nothing')).code)).toBe('4.04');
    expect(codeString((await d.once('DELETE', 'work')).code)).toBe('4.05');
    expect(codeString((await d.once('GET', 'work', { query: ['phase=1'] })).code)).toBe('4.00');
  });

  it('Observe /work: a Glaze set on one of the metal\'s Spaces notifies it; a metal not in that Space is not notified', async () => {
    const { pi, other } = await setup();
    const d = pskDevice((await psk(pi.id)).identity);
    const o = pskDevice((await psk(other.id)).identity);
    const observe = [{ number: OPTION.OBSERVE, value: encodeUint(0) }];
    const first = await d.once('GET', 'work', { query: ['phase=2'], options: observe, token: Uint8Array.of(0xd1) });
    expect(optionUint(first, OPTION.OBSERVE)).toBeDefined();
    await o.once('GET', 'work', { query: ['phase=2'], options: observe, token: Uint8Array.of(0xd2) });
    expect(ep.coap.observers('/work')).toHaveLength(2);

    const next = await glaze('os-tools-2', ['base']);
    await ok('PATCH', '/api/v1/spaces/base', { glaze: next.id });
    await ep.lastNotify;
    for (let i = 0; i < 100 && d.notifications.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(d.notifications).toHaveLength(1);
    const n = d.notifications[0]!;
    expect(n.token).toEqual(Uint8Array.of(0xd1));
    expect(optionUint(n, OPTION.OBSERVE)!).toBeGreaterThan(optionUint(first, OPTION.OBSERVE)!);
    // The notification may be the first block only; the rest is fetched with Block2.
    let body: Uint8Array = n.payload;
    if (n.options.some((x) => x.number === OPTION.BLOCK2 && decodeBlock(x.value).more)) body = (await d.get('work', ['phase=2'])).body;
    const items = (decodeCbor(body) as Map<string, CborValue>).get('items') as Map<string, CborValue>[];
    expect(items.map((i) => (i.get('glaze') as Map<string, CborValue>).get('id'))).toEqual([next.id]);
    expect(o.notifications).toHaveLength(0);
    // The session ends: the observer goes with it.
    d.mp.close();
    expect(ep.coap.observers('/work')).toHaveLength(1);
  });
});
