import { generateKeyPairSync } from 'node:crypto';
import { bindGlaze, importKey } from '@tips/suit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestMaster, testMaster } from '../../testing.ts';

let m: TestMaster;
beforeEach(async () => {
  m = await testMaster();
});
afterEach(async () => m.close());

const ed = () => generateKeyPairSync('ed25519');
const pub = (k: ReturnType<typeof ed>) => k.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const priv = (k: ReturnType<typeof ed>) => k.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

async function owner(method: string, url: string, payload?: unknown, token = m.alice.token) {
  return m.app.inject({ method: method as 'GET', url, headers: m.auth(token), payload: payload as object });
}
async function glaze(name = 'os', body = 'the image') {
  const r = await m.app.inject({ method: 'POST', url: `/api/v1/glazes?name=${name}`, headers: { ...m.auth(m.alice.token), 'content-type': 'application/octet-stream' }, payload: Buffer.from(body) });
  expect(r.statusCode).toBe(201);
  return r.json() as { id: string; sha256: string; size: number };
}
function envelope(g: { sha256: string; size: number }, key: ReturnType<typeof ed>, seq = 7) {
  return bindGlaze({ payloadSha256: g.sha256, payloadSize: g.size, uri: 'https://m/x', vendorDomain: 'tips.local', classInfo: 'os', component: 'os', sequenceNumber: seq, key: importKey(priv(key)) });
}
async function put(ref: string, env: Uint8Array, token = m.alice.token) {
  return m.app.inject({ method: 'PUT', url: `/api/v1/glazes/${ref}/manifest`, headers: { ...m.auth(token), 'content-type': 'application/suit-envelope+cose' }, payload: Buffer.from(env) });
}

describe('S5 S8 operator signing keys and signed Glaze manifests', () => {
  it('stores public keys only; accepts a manifest signed by a registered key that binds the Glaze digest', async () => {
    const k = ed();
    const r = await owner('POST', '/api/v1/keys', { name: 'laptop', publicKey: priv(k) });
    expect(r.statusCode).toBe(201);
    expect(r.json()).toMatchObject({ name: 'laptop', alg: 'EdDSA', serverHeld: false, publicKey: pub(k) });
    expect(r.json().warning).toBeUndefined();
    expect(r.headers['x-tips-server-held-key']).toBeUndefined();
    const g = await glaze();
    const a = await put('os', envelope(g, k));
    expect(a.statusCode).toBe(200);
    expect(a.json()).toMatchObject({ glazeId: g.id, sequenceNumber: '7', signedBy: { name: 'laptop' } });
    const back = await owner('GET', '/api/v1/glazes/os/manifest');
    expect(back.headers['content-type']).toBe('application/suit-envelope+cose');
    expect(new Uint8Array(back.rawPayload)).toEqual(envelope(g, k));
    // The database holds no private key for a registered key.
    const rows = await m.db.selectFrom('operator_keys').selectAll().execute();
    expect(rows.every((x) => x.server_private_key === null)).toBe(true);
  });

  it('refuses a manifest by an unregistered or revoked key, one binding another payload, garbage; nothing is attached', async () => {
    const k = ed();
    await owner('POST', '/api/v1/keys', { name: 'laptop', publicKey: pub(k) });
    const g = await glaze();
    const other = await glaze('other', 'another image');
    const stranger = await put('os', envelope(g, ed()));
    expect(stranger.statusCode).toBe(422);
    expect(stranger.json().error.code).toBe('manifest_untrusted');
    const wrongDigest = await put('os', envelope(other, k));
    expect(wrongDigest.json().error.code).toBe('manifest_digest_mismatch');
    expect((await put('os', new Uint8Array([1, 2, 3]))).json().error.code).toBe('manifest_malformed');
    // Bob's key does not sign for Alice, and Bob cannot attach to Alice's Glaze.
    const b = ed();
    await owner('POST', '/api/v1/keys', { name: 'bobs', publicKey: pub(b) }, m.bob.token);
    expect((await put('os', envelope(g, b))).json().error.code).toBe('manifest_untrusted');
    expect((await put(g.id, envelope(g, b), m.bob.token)).statusCode).toBe(404);
    expect((await owner('GET', '/api/v1/glazes/os/manifest')).json().error.code).toBe('manifest_not_found');
    expect((await owner('DELETE', '/api/v1/keys/laptop')).statusCode).toBe(204);
    expect((await put('os', envelope(g, k))).json().error.code).toBe('manifest_untrusted');
  });

  it('a server-held key exists only on explicit opt-in, and every response about it says so', async () => {
    const r = await owner('POST', '/api/v1/keys', { name: 'hobby', serverHeld: true });
    expect(r.statusCode).toBe(201);
    expect(r.json()).toMatchObject({ serverHeld: true, warning: expect.stringContaining('held by the master') });
    expect(r.headers['x-tips-server-held-key']).toBe('true');
    const list = await owner('GET', '/api/v1/keys');
    expect(list.headers['x-tips-server-held-key']).toBe('true');
    expect(list.json().items[0]).toMatchObject({ serverHeld: true, warning: expect.any(String) });
    await glaze();
    const s = await owner('POST', '/api/v1/glazes/os/manifest/sign', { key: 'hobby', sequenceNumber: 3, vendorDomain: 'tips.local', classInfo: 'os', component: 'os', uri: 'https://m/x' });
    expect(s.statusCode).toBe(200);
    expect(s.headers['x-tips-server-held-key']).toBe('true');
    expect(s.json().signedBy).toMatchObject({ serverHeld: true, warning: expect.any(String) });
    // Neither both nor neither of publicKey / serverHeld.
    expect((await owner('POST', '/api/v1/keys', { name: 'x' })).statusCode).toBe(400);
    // A registered (client-held) key cannot be used for server-side signing.
    await owner('POST', '/api/v1/keys', { name: 'laptop', publicKey: pub(ed()) });
    const no = await owner('POST', '/api/v1/glazes/os/manifest/sign', { key: 'laptop', sequenceNumber: 4, vendorDomain: 'tips.local', classInfo: 'os', component: 'os', uri: 'https://m/x' });
    expect(no.json().error.code).toBe('key_not_server_held');
  });

  it('refuses bad keys and duplicates', async () => {
    const k = ed();
    expect((await owner('POST', '/api/v1/keys', { name: 'a', publicKey: 'junk' })).json().error.code).toBe('key_invalid');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect((await owner('POST', '/api/v1/keys', { name: 'a', publicKey: rsa })).json().error.code).toBe('key_invalid');
    await owner('POST', '/api/v1/keys', { name: 'a', publicKey: pub(k) });
    expect((await owner('POST', '/api/v1/keys', { name: 'a', publicKey: pub(ed()) })).json().error.code).toBe('key_name_taken');
    expect((await owner('POST', '/api/v1/keys', { name: 'b', publicKey: pub(k) })).json().error.code).toBe('key_already_registered');
  });
});

describe('T12 who signed each Glaze, for a list of Glazes in one request (the console)', () => {
  it('names the key of each signed manifest; an unsigned Glaze has no item; refuses what is not a Glaze ID', async () => {
    const k = ed();
    const key = (await owner('POST', '/api/v1/keys', { name: 'release', publicKey: pub(k) })).json();
    const signed = await glaze('signed', 'one image');
    const unsigned = await glaze('unsigned', 'another image');
    expect((await put('signed', envelope(signed, k, 9))).statusCode).toBe(200);
    const r = await owner('GET', `/api/v1/manifests?glazes=${signed.id},${unsigned.id}`);
    expect(r.statusCode).toBe(200);
    expect(r.json().items).toEqual([{ glazeId: signed.id, sequenceNumber: '9', createdAt: expect.any(String), signedBy: expect.objectContaining({ id: key.id, name: 'release', kid: key.kid }) }]);
    // Another owner's request names the same Glaze and learns nothing.
    expect((await owner('GET', `/api/v1/manifests?glazes=${signed.id}`, undefined, m.bob.token)).json().items).toEqual([]);
    const bad = await owner('GET', '/api/v1/manifests?glazes=signed');
    expect([bad.statusCode, bad.json().error.field]).toEqual([400, 'querystring.glazes']);
  });
});
