import { generateKeyPairSync } from 'node:crypto';
import { importKey } from '@tips/suit';
import { checkToken, parseCertsOnlyPkcs7, signPop } from '@tips/trust';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { b64, makeCsr, type TlsTestMaster, tlsTestMaster } from '../../tls/testing.ts';

let m: TlsTestMaster;
beforeEach(async () => {
  m = await tlsTestMaster();
});
afterEach(async () => m.close());

async function owner(method: string, url: string, payload?: unknown, token = m.alice.token) {
  return m.app.inject({ method: method as 'GET', url, headers: m.auth(token), payload: payload as object });
}
const holder = () => generateKeyPairSync('ed25519');
const pem = (k: ReturnType<typeof holder>) => k.publicKey.export({ type: 'spki', format: 'pem' }).toString();

async function space(name = 'apps') {
  return (await owner('POST', '/api/v1/spaces', { name, phase: 2 })).json().id as string;
}
async function issue(body: Record<string, unknown>, token = m.alice.token) {
  return owner('POST', '/api/v1/tokens/issue', body, token);
}
async function proof(token: string, key: ReturnType<typeof holder>['privateKey']) {
  const { nonce } = (await owner('POST', '/api/v1/tokens/challenge')).json();
  return { nonce, signature: signPop(nonce, token, key) };
}
async function introspect(token: string, audience: string, extra: Record<string, unknown> = {}) {
  const r = await owner('POST', '/api/v1/tokens/introspect', { token, audience, ...extra });
  expect(r.statusCode).toBe(200);
  return r.json();
}
const securityEvents = () => m.logs.filter((l) => l.includes('"event":"security"')).map((l) => JSON.parse(l).code as string);

describe('S11 scoped, short-lived, proof-of-possession authorization tokens', () => {
  it('issues a CWT and a JWT for one hop; both verify with a fresh signed challenge', async () => {
    const spc = await space();
    const h = holder();
    const r = await issue({ audience: 'urn:tips:master', scope: ['update:space:apps'], ttlMinutes: 5, holder: { publicKey: pem(h) } });
    expect(r.statusCode).toBe(201);
    const t = r.json();
    expect(t.scope).toEqual([`update:space:${spc}`]);
    expect(t.subject).toBe(`urn:tips:owner:${m.alice.id}`);
    expect(Date.parse(t.expiresAt) - m.clock.now().getTime()).toBeLessThanOrEqual(5 * 60_000);
    for (const tok of [t.cwt, t.jwt]) {
      const ok = await introspect(tok, 'urn:tips:master', { scope: `update:space:${spc}`, proof: await proof(tok, h.privateKey) });
      expect(ok).toMatchObject({ active: true, sub: `urn:tips:owner:${m.alice.id}`, aud: 'urn:tips:master', pop: 'signature' });
    }
  });

  it('refuses another audience or scope, an expired token, a forged one, and replay without the key', async () => {
    const spc = await space();
    const h = holder();
    const t = (await issue({ audience: 'urn:tips:master', scope: [`update:space:${spc}`], ttlMinutes: 1, holder: { publicKey: pem(h) } })).json();
    const scope = `update:space:${spc}`;
    expect(await introspect(t.cwt, 'urn:tips:metal:mtl_0000000000000000000000000a', { scope, proof: await proof(t.cwt, h.privateKey) })).toEqual({ active: false, reason: 'token_audience_mismatch' });
    expect(await introspect(t.cwt, 'urn:tips:master', { scope: 'pull:glaze:glz_0000000000000000000000000a', proof: await proof(t.cwt, h.privateKey) })).toEqual({
      active: false,
      reason: 'token_scope_insufficient',
    });
    // Someone who copied the token but not the key: no proof, a proof by another key, a replayed proof.
    expect(await introspect(t.cwt, 'urn:tips:master', { scope })).toEqual({ active: false, reason: 'pop_required' });
    expect(await introspect(t.cwt, 'urn:tips:master', { scope, proof: await proof(t.cwt, holder().privateKey) })).toEqual({ active: false, reason: 'pop_invalid' });
    const p = await proof(t.cwt, h.privateKey);
    expect((await introspect(t.cwt, 'urn:tips:master', { scope, proof: p })).active).toBe(true);
    expect(await introspect(t.cwt, 'urn:tips:master', { scope, proof: p })).toEqual({ active: false, reason: 'challenge_invalid' });
    // A proof made for one token does not carry over to another token of the same holder.
    const t2 = (await issue({ audience: 'urn:tips:master', scope: [scope], holder: { publicKey: pem(h) } })).json();
    const p2 = await proof(t.cwt, h.privateKey);
    expect(await introspect(t2.cwt, 'urn:tips:master', { scope, proof: p2 })).toEqual({ active: false, reason: 'pop_invalid' });
    // Forged: a flipped byte in the signature; a JWT with its payload swapped.
    const raw = Buffer.from(t.cwt, 'base64url');
    raw[raw.length - 1]! ^= 1;
    expect((await introspect(raw.toString('base64url'), 'urn:tips:master', { scope })).reason).toBe('token_signature_invalid');
    const [hd, , sg] = t.jwt.split('.');
    const evil = Buffer.from(JSON.stringify({ iss: 'urn:tips:master', aud: 'urn:tips:master', exp: 9999999999, scope: 'update:space:x' })).toString('base64url');
    expect((await introspect(`${hd}.${evil}.${sg}`, 'urn:tips:master', { scope })).reason).toBe('token_signature_invalid');
    expect((await introspect('%%%', 'urn:tips:master')).reason).toBe('token_malformed');
    // Minutes of life only.
    m.clock.advance(61_000);
    expect(await introspect(t.cwt, 'urn:tips:master', { scope, proof: await proof(t.cwt, h.privateKey) })).toEqual({ active: false, reason: 'token_expired' });
    expect(securityEvents()).toContain('pop_invalid');
    expect(securityEvents()).toContain('challenge_invalid');
  });

  it('operator→metal / master→metal hops: the metal checks the token itself with the issuer key, for its own audience only', async () => {
    const me = (await owner('POST', '/api/v1/metals', { name: 'pi', interfaces: [{ name: 'eth0', mac: '02:00:00:00:0d:01', type: 'ethernet', pxe: true }] })).json().id;
    const other = (await owner('POST', '/api/v1/metals', { name: 'pi2', interfaces: [{ name: 'eth0', mac: '02:00:00:00:0d:02', type: 'ethernet', pxe: true }] })).json().id;
    const h = holder();
    const t = (await issue({ audience: `urn:tips:metal:${me}`, scope: ['update:component:rootfs'], holder: { publicKey: pem(h) } })).json();
    const issuer = (await owner('GET', '/api/v1/tokens/issuer-key')).json();
    const issuerKeys = [importKey(new Uint8Array(Buffer.from(issuer.coseKey, 'base64url')))];
    const now = Math.floor(m.clock.now().getTime() / 1000);
    // The metal makes its own nonce; the holder signs it.
    const nonce = 'metal-nonce-1';
    const proof = { nonce, signature: signPop(nonce, t.cwt, h.privateKey) };
    const ok = checkToken(t.cwt, { issuerKeys, issuer: 'urn:tips:master', audience: `urn:tips:metal:${me}`, scope: 'update:component:rootfs', now, proof });
    expect(ok.claims.sub).toBe(`urn:tips:owner:${m.alice.id}`);
    const code = (f: () => unknown) => {
      try {
        f();
        return 'accepted';
      } catch (e) {
        return (e as { code: string }).code;
      }
    };
    expect(code(() => checkToken(t.cwt, { issuerKeys, issuer: 'urn:tips:master', audience: `urn:tips:metal:${other}`, scope: 'update:component:rootfs', now, proof }))).toBe('token_audience_mismatch');
    expect(code(() => checkToken(t.jwt, { issuerKeys, issuer: 'urn:tips:master', audience: `urn:tips:metal:${me}`, scope: 'update:component:bootloader', now, proof }))).toBe('token_scope_insufficient');
    expect(code(() => checkToken(t.cwt, { issuerKeys, issuer: 'urn:tips:master', audience: `urn:tips:metal:${me}`, now: now + 3600, proof }))).toBe('token_expired');
    expect(code(() => checkToken(t.cwt, { issuerKeys, issuer: 'urn:tips:master', audience: `urn:tips:metal:${me}`, now }))).toBe('pop_required');
    expect(code(() => checkToken(t.cwt, { issuerKeys: [importKey(generateKeyPairSync('ed25519').publicKey)], issuer: 'urn:tips:master', audience: `urn:tips:metal:${me}`, now, proof }))).toBe(
      'token_signature_invalid',
    );
  });

  it("refuses to scope a token to another owner's Space, and bad issuance input", async () => {
    const spc = await space();
    const h = pem(holder());
    expect((await issue({ audience: 'urn:tips:master', scope: [`update:space:${spc}`], holder: { publicKey: h } }, m.bob.token)).statusCode).toBe(404);
    expect((await issue({ audience: 'https://evil', scope: [`update:space:${spc}`], holder: { publicKey: h } })).json().error).toMatchObject({ code: 'scope_invalid', field: 'audience' });
    expect((await issue({ audience: 'urn:tips:master', scope: ['root:everything:*'], holder: { publicKey: h } })).json().error).toMatchObject({ code: 'scope_invalid', field: 'scope[0]' });
    expect((await issue({ audience: 'urn:tips:master', scope: [`update:space:${spc}`], ttlMinutes: 600, holder: { publicKey: h } })).json().error.field).toBe('ttlMinutes');
    expect((await issue({ audience: 'urn:tips:master', scope: [`update:space:${spc}`], holder: { publicKey: 'nope' } })).json().error.code).toBe('holder_key_invalid');
  });

  it('metal→master hop: a token bound to the metal certificate key is accepted over that mTLS connection only', async () => {
    const mk = async (name: string, mac: string) => {
      const id = (await owner('POST', '/api/v1/metals', { name, interfaces: [{ name: 'eth0', mac, type: 'ethernet', pxe: true }] })).json().id as string;
      const s = (await owner('POST', '/api/v1/enrollment/secrets', { metal: id })).json();
      const csr = await makeCsr({ uris: [`urn:tips:metal:${id}`] });
      const r = await m.https('POST', '/.well-known/est/simpleenroll', {
        headers: { 'content-type': 'application/pkcs10', authorization: `Basic ${Buffer.from(`${s.id}:${s.secret}`).toString('base64')}` },
        body: b64(csr.der),
      });
      const [cert] = parseCertsOnlyPkcs7(new Uint8Array(Buffer.from(r.body, 'base64')));
      return { id, cert: cert!.toString('pem'), key: csr.keyPem };
    };
    const a = await mk('pi-a', '02:00:00:00:0a:01');
    const b = await mk('pi-b', '02:00:00:00:0b:01');
    const glaze = await m.app.inject({ method: 'POST', url: '/api/v1/glazes?name=os', headers: { ...m.auth(m.alice.token), 'content-type': 'application/octet-stream' }, payload: Buffer.from('image') });
    const g = glaze.json().id;
    const t = (await issue({ audience: 'urn:tips:master', scope: [`pull:glaze:${g}`], holder: { metal: a.id } })).json();
    expect(t.subject).toBe(`urn:tips:metal:${a.id}`);
    const check = (who: { cert: string; key: string }, scope = `pull:glaze:${g}`) =>
      m.https('POST', '/api/metal/v1/tokens/check', { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: t.cwt, scope }), cert: who.cert, key: who.key });
    const ok = await check(a);
    expect(ok.status).toBe(200);
    expect(ok.json()).toMatchObject({ sub: `urn:tips:metal:${a.id}`, pop: 'mtls' });
    const stolen = await check(b);
    expect(stolen.status).toBe(401);
    expect(stolen.json().error.code).toBe('pop_invalid');
    const wider = await check(a, 'update:space:spc_0000000000000000000000000a');
    expect(wider.status).toBe(403);
    expect(wider.json().error.code).toBe('token_scope_insufficient');
  });
});
