import { createPublicKey } from 'node:crypto';
import { Agent } from 'node:https';
import { createEphemeralCa } from './ca.ts';
import { MAX_FAILED_ENROLLMENTS_PER_IDENTITY } from './model.ts';
import { issueCertificate, parseCertificate, parseCertsOnlyPkcs7, serialFrom, verifyChain } from '@tips/trust';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemRandom } from '../../ports.ts';
import { b64, makeCsr, type TlsTestMaster, tlsTestMaster } from '../../tls/testing.ts';

let m: TlsTestMaster;
beforeEach(async () => {
  m = await tlsTestMaster();
});
afterEach(async () => m.close());

const PKCS10 = { 'content-type': 'application/pkcs10' };
const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });

async function owner(method: string, url: string, payload?: unknown, token = m.alice.token) {
  return m.app.inject({ method: method as 'GET', url, headers: m.auth(token), payload: payload as object });
}

async function metal(name = 'pi-1', mac = '02:00:00:00:01:01') {
  const r = await owner('POST', '/api/v1/metals', { name, interfaces: [{ name: 'eth0', mac, type: 'ethernet', pxe: true }] });
  expect(r.statusCode).toBe(201);
  return r.json().id as string;
}

async function secret(body: Record<string, unknown>) {
  const r = await owner('POST', '/api/v1/enrollment/secrets', body);
  expect(r.statusCode).toBe(201);
  return r.json() as { id: string; secret: string; maxUses: number };
}

async function enroll(s: { id: string; secret: string }, metalId: string, csr?: Awaited<ReturnType<typeof makeCsr>>) {
  const c = csr ?? (await makeCsr({ uris: [`urn:tips:metal:${metalId}`] }));
  const r = await m.https('POST', '/.well-known/est/simpleenroll', { headers: { ...PKCS10, ...basic(s.id, s.secret) }, body: b64(c.der) });
  let certPem: string | undefined;
  if (r.status === 200) {
    const [cert] = parseCertsOnlyPkcs7(new Uint8Array(Buffer.from(r.body, 'base64')));
    certPem = cert!.toString('pem');
  }
  return { r, certPem, keyPem: c.keyPem };
}

const securityEvents = () => m.logs.filter((l) => l.includes('"event":"security"')).map((l) => JSON.parse(l).code as string);

describe('S6 EST server (RFC 7030) on HTTPS', () => {
  it('serves cacerts as base64 certs-only PKCS#7 holding the intermediate and the root', async () => {
    const r = await m.https('GET', '/.well-known/est/cacerts');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/pkcs7-mime; smime-type=certs-only');
    const certs = parseCertsOnlyPkcs7(new Uint8Array(Buffer.from(r.body, 'base64')));
    expect(certs.map((c) => c.subject)).toEqual([m.ca.intermediate.cert.subject, m.ca.root.subject]);
    const attrs = await m.https('GET', '/.well-known/est/csrattrs');
    expect(attrs.status).toBe(200);
    expect(attrs.headers['content-type']).toBe('application/csrattrs');
    expect(Buffer.from(attrs.body, 'base64')[0]).toBe(0x30);
  });

  it('refuses EST over plain HTTP', async () => {
    const r = await m.app.inject({ url: '/.well-known/est/cacerts' });
    expect(r.statusCode).toBe(403);
    expect(r.json().error.code).toBe('https_required');
  });

  it('enrolls a metal with a one-time secret: the certificate names urn:tips:metal:<id> and chains to the root', async () => {
    const id = await metal();
    const s = await secret({ metal: id });
    expect(s.secret).toMatch(/^est_/);
    const { r, certPem } = await enroll(s, id);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/pkcs7-mime; smime-type=certs-only');
    const cert = parseCertificate(certPem!);
    expect(cert.getExtension('2.5.29.17')).toBeTruthy();
    expect(await verifyChain(cert, [m.ca.intermediate.cert], m.ca.root, m.clock.now())).toBe(true);
    const listed = (await owner('GET', `/api/v1/enrollment/certificates?metal=${id}`)).json().items;
    expect(listed).toMatchObject([{ subject: { kind: 'metal', id }, status: 'active', issuedVia: 'enroll' }]);
    expect((await owner('GET', '/api/v1/enrollment/secrets')).json().items).toMatchObject([{ id: s.id, uses: 1, maxUses: 1 }]);
    // The secret itself is stored hashed and never logged.
    expect(m.logs.join('')).not.toContain(s.secret);
  });

  it('refuses a wrong secret, a reused one-time secret and an expired secret; nothing is issued; each is a security event', async () => {
    const id = await metal();
    const s = await secret({ metal: id, expiresInMinutes: 10 });
    const wrong = await enroll({ id: s.id, secret: `est_${'A'.repeat(43)}` }, id);
    expect(wrong.r.status).toBe(401);
    expect(wrong.r.json().error.code).toBe('enrollment_secret_invalid');
    expect(wrong.r.headers['www-authenticate']).toContain('Basic');
    const none = await m.https('POST', '/.well-known/est/simpleenroll', { headers: PKCS10, body: b64((await makeCsr({ uris: [`urn:tips:metal:${id}`] })).der) });
    expect(none.json().error.code).toBe('enrollment_unauthenticated');
    expect((await enroll(s, id)).r.status).toBe(200);
    const again = await enroll(s, id);
    expect(again.r.status).toBe(401);
    expect(again.r.json().error.code).toBe('enrollment_secret_exhausted');
    const late = await secret({ metal: id, expiresInMinutes: 1 });
    m.clock.advance(61_000);
    const expired = await enroll(late, id);
    expect(expired.r.json().error.code).toBe('enrollment_secret_expired');
    expect((await owner('GET', `/api/v1/enrollment/certificates?metal=${id}`)).json().items).toHaveLength(1);
    expect(securityEvents()).toEqual(['enrollment_secret_invalid', 'enrollment_unauthenticated', 'enrollment_secret_exhausted', 'enrollment_secret_expired']);
  });

  it('counts an N-use secret exactly under concurrent use', async () => {
    const space = (await owner('POST', '/api/v1/spaces', { name: 'fleet', phase: 1 })).json();
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      const id = await metal(`pi-${i}`, `02:00:00:00:02:0${i}`);
      expect((await owner('POST', `/api/v1/spaces/${space.id}/members`, { metal: id, interfaces: ['eth0'], default: true })).statusCode).toBe(201);
      ids.push(id);
    }
    const s = await secret({ space: 'fleet', maxUses: 3 });
    const csrs = await Promise.all(ids.map((id) => makeCsr({ uris: [`urn:tips:metal:${id}`] })));
    const results = await Promise.all(ids.map((id, i) => enroll(s, id, csrs[i])));
    const ok = results.filter((x) => x.r.status === 200);
    expect(ok).toHaveLength(3);
    for (const x of results.filter((y) => y.r.status !== 200)) expect(x.r.json().error.code).toBe('enrollment_secret_exhausted');
    expect((await owner('GET', '/api/v1/enrollment/certificates')).json().items).toHaveLength(3);
    expect((await owner('GET', '/api/v1/enrollment/secrets')).json().items[0].uses).toBe(3);
  });

  it('refuses a CSR whose signature does not match its key, one for another TIPS ID, and one outside the Space', async () => {
    const id = await metal();
    const other = await metal('pi-2', '02:00:00:00:01:02');
    const s = await secret({ metal: id, maxUses: 5 });
    const good = await makeCsr({ uris: [`urn:tips:metal:${id}`] });
    const forged = new Uint8Array(good.der);
    forged[forged.length - 5]! ^= 0x55; // inside the signature: the key no longer signs this request
    const bad = await m.https('POST', '/.well-known/est/simpleenroll', { headers: { ...PKCS10, ...basic(s.id, s.secret) }, body: b64(forged) });
    expect(bad.status).toBe(400);
    expect(['csr_signature_invalid', 'csr_malformed']).toContain(bad.json().error.code);
    // The CSR carries key B but was signed by key A: swap B's SubjectPublicKeyInfo into A's request.
    const keyB = await makeCsr({ uris: [`urn:tips:metal:${id}`] });
    const spkiA = Buffer.from(await crypto.subtle.exportKey('spki', good.keys.publicKey));
    const spkiB = Buffer.from(await crypto.subtle.exportKey('spki', keyB.keys.publicKey));
    const swapped = Buffer.from(good.der);
    const at = swapped.indexOf(spkiA);
    expect(at).toBeGreaterThan(0);
    spkiB.copy(swapped, at);
    const mismatch = await m.https('POST', '/.well-known/est/simpleenroll', { headers: { ...PKCS10, ...basic(s.id, s.secret) }, body: b64(swapped) });
    expect(mismatch.status).toBe(400);
    expect(mismatch.json().error).toMatchObject({ code: 'csr_signature_invalid', field: 'csr' });
    const otherId = await enroll(s, id, await makeCsr({ uris: [`urn:tips:metal:${other}`] }));
    expect(otherId.r.status).toBe(403);
    expect(otherId.r.json().error).toMatchObject({ code: 'csr_identity_mismatch', field: 'csr' });
    const two = await enroll(s, id, await makeCsr({ uris: [`urn:tips:metal:${id}`, `urn:tips:metal:${other}`] }));
    expect(two.r.json().error.code).toBe('csr_identity_mismatch');
    const noId = await enroll(s, id, await makeCsr({ cn: 'hello' }));
    expect(noId.r.json().error.code).toBe('csr_identity_missing');
    const garbage = await m.https('POST', '/.well-known/est/simpleenroll', { headers: { ...PKCS10, ...basic(s.id, s.secret) }, body: 'not base64!' });
    expect(garbage.json().error.code).toBe('csr_malformed');
    // Nothing was issued and no use was spent by a refused request.
    expect((await owner('GET', '/api/v1/enrollment/certificates')).json().items).toHaveLength(0);
    expect((await owner('GET', '/api/v1/enrollment/secrets')).json().items[0].uses).toBe(0);
    // A per-Space secret enrolls only metals of that Space.
    await owner('POST', '/api/v1/spaces', { name: 'fleet', phase: 1 });
    await owner('POST', '/api/v1/spaces/fleet/members', { metal: id, interfaces: ['eth0'], default: true });
    const sp = await secret({ space: 'fleet' });
    expect((await enroll(sp, other)).r.json().error.code).toBe('csr_identity_mismatch');
    expect((await enroll(sp, id)).r.status).toBe(200);
  });

  it('refuses a body of any other type than application/pkcs10 with 415 naming the expected type, in the one error shape; nothing issued', async () => {
    const id = await metal();
    const s = await secret({ metal: id });
    const { cert, key } = await (async () => {
      const e = await enroll(await secret({ metal: id }), id);
      return { cert: e.certPem!, key: e.keyPem };
    })();
    const csr = b64((await makeCsr({ uris: [`urn:tips:metal:${id}`] })).der);
    const types: (string | undefined)[] = ['application/octet-stream', 'application/x-www-form-urlencoded', 'application/json', 'text/plain', 'application/pkcs7-mime', undefined];
    for (const type of types) {
      const headers = { ...(type === undefined ? {} : { 'content-type': type }), ...basic(s.id, s.secret) };
      for (const [path, tls] of [['simpleenroll', {}], ['simplereenroll', { cert, key }]] as const) {
        const r = await m.https('POST', `/.well-known/est/${path}`, { headers, body: csr, ...tls });
        expect(r.status, `${path} ${type}`).toBe(415);
        expect(Object.keys(r.json()).sort()).toEqual(['error', 'requestId']);
        expect(r.json().error).toMatchObject({ code: 'unsupported_media_type', field: 'content-type' });
        expect(r.json().error.message).toContain('expected Content-Type application/pkcs10');
      }
    }
    // Nothing issued beyond the one enrollment above, and the secret kept its use.
    expect((await owner('GET', `/api/v1/enrollment/certificates?metal=${id}`)).json().items).toHaveLength(1);
    expect((await owner('GET', '/api/v1/enrollment/secrets')).json().items.find((x: { id: string }) => x.id === s.id).uses).toBe(0);
    // Media type parameters are allowed.
    const ok = await m.https('POST', '/.well-known/est/simpleenroll', { headers: { 'content-type': 'application/pkcs10; charset=us-ascii', ...basic(s.id, s.secret) }, body: csr });
    expect(ok.status).toBe(200);
  });

  it("refuses secrets for another owner's metal or a Phase 2 Space, and bad secret parameters", async () => {
    const id = await metal();
    expect((await owner('POST', '/api/v1/enrollment/secrets', { metal: id }, m.bob.token)).statusCode).toBe(404);
    await owner('POST', '/api/v1/spaces', { name: 'apps', phase: 2 });
    expect((await owner('POST', '/api/v1/enrollment/secrets', { space: 'apps' })).json().error.code).toBe('scope_invalid');
    expect((await owner('POST', '/api/v1/enrollment/secrets', { metal: id, maxUses: 0 })).json().error).toMatchObject({ code: 'invalid_value', field: 'maxUses' });
    expect((await owner('POST', '/api/v1/enrollment/secrets', { metal: id, space: 'apps' })).json().error.code).toBe('invalid_value');
    expect((await owner('GET', '/api/v1/enrollment/secrets')).json().items).toEqual([]);
  });
});

describe('S6 mTLS metal API and revocation', () => {
  async function enrolled() {
    const id = await metal();
    const s = await secret({ metal: id });
    const e = await enroll(s, id);
    expect(e.r.status).toBe(200);
    return { id, cert: e.certPem!, key: e.keyPem };
  }

  it('the metal certificate is the identity on /api/metal/v1 and is refused on the owner API; an owner token is refused on the metal API', async () => {
    const { id, cert, key } = await enrolled();
    const who = await m.https('GET', '/api/metal/v1/whoami', { cert, key });
    expect(who.status).toBe(200);
    expect(who.json().metal).toBe(id);
    const ownerApi = await m.https('GET', '/api/v1/me', { cert, key });
    expect(ownerApi.status).toBe(401);
    expect(ownerApi.json().error.code).toBe('certificate_not_accepted_here');
    const tokenOnMetal = await m.https('GET', '/api/metal/v1/whoami', { headers: m.auth(m.alice.token) });
    expect(tokenOnMetal.status).toBe(401);
    expect(tokenOnMetal.json().error.code).toBe('client_certificate_required');
    // The owner API over HTTPS still works with a token.
    expect((await m.https('GET', '/api/v1/me', { headers: m.auth(m.alice.token) })).status).toBe(200);
    expect(securityEvents()).toEqual(['certificate_not_accepted_here', 'client_certificate_required']);
  });

  it('a revocation bites on the next request, even on a kept-alive TLS connection', async () => {
    const { id, cert, key } = await enrolled();
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: m.rootPem, cert, key });
    try {
      expect((await m.https('GET', '/api/metal/v1/whoami', { cert, key, agent })).status).toBe(200);
      const r = await owner('POST', `/api/v1/enrollment/metals/${id}/revoke`);
      expect(r.json()).toEqual({ revoked: 1 });
      const after = await m.https('GET', '/api/metal/v1/whoami', { cert, key, agent });
      expect(after.status).toBe(401);
      expect(after.json().error.code).toBe('certificate_revoked');
    } finally {
      agent.destroy();
    }
  });

  it('refuses an expired certificate and one from another CA naming the same metal', async () => {
    const { id, cert, key } = await enrolled();
    const foreign = await createEphemeralCa(m.clock.now(), systemRandom, 'evil');
    const csr = await makeCsr({ uris: [`urn:tips:metal:${id}`] });
    const forged = await issueCertificate(foreign.intermediate, {
      identity: { kind: 'metal', id },
      publicKey: csr.keys.publicKey,
      serial: serialFrom(systemRandom.bytes(16)),
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3_600_000),
      usage: 'client',
    });
    const r = await m.https('GET', '/api/metal/v1/whoami', { cert: forged.toString('pem') + '\n' + foreign.intermediate.cert.toString('pem'), key: csr.keyPem });
    expect(r.status).toBe(401);
    expect(r.json().error.code).toBe('client_certificate_invalid');
    m.clock.advance(8 * 24 * 3_600_000);
    const old = await m.https('GET', '/api/metal/v1/whoami', { cert, key });
    expect(old.json().error.code).toBe('certificate_expired');
  });

  it('re-enrolls with the current certificate (simplereenroll): the old one is revoked, the new one works', async () => {
    const { id, cert, key } = await enrolled();
    const next = await makeCsr({ uris: [`urn:tips:metal:${id}`] });
    const r = await m.https('POST', '/.well-known/est/simplereenroll', { headers: PKCS10, body: b64(next.der), cert, key });
    expect(r.status).toBe(200);
    const [fresh] = parseCertsOnlyPkcs7(new Uint8Array(Buffer.from(r.body, 'base64')));
    expect((await m.https('GET', '/api/metal/v1/whoami', { cert: fresh!.toString('pem'), key: next.keyPem })).status).toBe(200);
    expect((await m.https('GET', '/api/metal/v1/whoami', { cert, key })).json().error.code).toBe('certificate_revoked');
    const items = (await owner('GET', `/api/v1/enrollment/certificates?metal=${id}`)).json().items;
    expect(items.map((c: { status: string; issuedVia: string }) => [c.issuedVia, c.status]).sort()).toEqual([
      ['enroll', 'revoked'],
      ['reenroll', 'active'],
    ]);
    // Re-enrolling for another metal, or with no certificate, is refused.
    const other = await metal('pi-9', '02:00:00:00:09:09');
    const steal = await m.https('POST', '/.well-known/est/simplereenroll', { headers: PKCS10, body: b64((await makeCsr({ uris: [`urn:tips:metal:${other}`] })).der), cert: fresh!.toString('pem'), key: next.keyPem });
    expect(steal.json().error.code).toBe('csr_identity_mismatch');
    const anon = await m.https('POST', '/.well-known/est/simplereenroll', { headers: PKCS10, body: b64(next.der) });
    expect(anon.json().error.code).toBe('client_certificate_required');
  });

  it('a metal blocked by its owner (T16) is refused on the metal API until unblocked', async () => {
    const { id, cert, key } = await enrolled();
    expect((await owner('POST', `/api/v1/metals/${id}/block`, { reason: 'tampered' })).statusCode).toBe(202);
    const blocked = await m.https('GET', '/api/metal/v1/whoami', { cert, key });
    expect(blocked.status).toBe(403);
    expect(blocked.json().error.code).toBe('metal_blocked');
    expect(securityEvents()).toContain('metal_blocked');
    expect((await owner('POST', `/api/v1/metals/${id}/unblock`)).statusCode).toBe(202);
    expect((await m.https('GET', '/api/metal/v1/whoami', { cert, key })).status).toBe(200);
  });

  it('deleting (retiring) a metal revokes its certificates', async () => {
    const { id, cert, key } = await enrolled();
    expect((await owner('DELETE', `/api/v1/metals/${id}`)).statusCode).toBe(204);
    expect((await m.https('GET', '/api/metal/v1/whoami', { cert, key })).json().error.code).toBe('certificate_revoked');
  });
});

describe('T14 S6 image-key enrollment: the key pair of the Phase 1 image, rotated after Phase 1', () => {
  it('enrolls with a CSR signed by the registered image key (no secret), then rotates to a fresh key', async () => {
    const id = await metal();
    const image = await makeCsr({ uris: [`urn:tips:metal:${id}`] });
    const imagePublicKey = createPublicKey(image.keyPem).export({ type: 'spki', format: 'pem' }).toString();
    const r = await owner('POST', '/api/v1/enrollment/secrets', { metal: id, imagePublicKey, maxUses: 1 });
    expect(r.statusCode).toBe(201);
    expect(r.json()).toMatchObject({ method: 'image-key' });
    expect(r.json().secret).toBeUndefined();
    // Another key (not the image's) cannot enroll without a secret.
    const stranger = await m.https('POST', '/.well-known/est/simpleenroll', { headers: PKCS10, body: b64((await makeCsr({ uris: [`urn:tips:metal:${id}`] })).der) });
    expect(stranger.json().error.code).toBe('enrollment_unauthenticated');
    const e = await m.https('POST', '/.well-known/est/simpleenroll', { headers: PKCS10, body: b64(image.der) });
    expect(e.status).toBe(200);
    const [cert] = parseCertsOnlyPkcs7(new Uint8Array(Buffer.from(e.body, 'base64')));
    // Rotation after Phase 1: re-enroll with a key generated on the metal; the image key is spent.
    const fresh = await makeCsr({ uris: [`urn:tips:metal:${id}`] });
    const re = await m.https('POST', '/.well-known/est/simplereenroll', { headers: PKCS10, body: b64(fresh.der), cert: cert!.toString('pem'), key: image.keyPem });
    expect(re.status).toBe(200);
    const again = await m.https('POST', '/.well-known/est/simpleenroll', { headers: PKCS10, body: b64(image.der) });
    expect(again.json().error.code).toBe('enrollment_secret_exhausted');
    // An image key is not a password: it never works as HTTP Basic.
    const asBasic = await enroll({ id: r.json().id, secret: 'anything' }, id);
    expect(asBasic.r.json().error.code).toBe('enrollment_secret_invalid');
  });
});

describe('D1 S6 EST refusal throttle: per (address, presented identity), with a per-address ceiling', () => {
  it('one bad device behind a NAT address locks out only itself; a good device at the same address enrolls; the window ends the lock', async () => {
    const bad = await metal('pi-bad', '02:00:00:00:0b:01');
    const good = await metal('pi-good', '02:00:00:00:0b:02');
    const sBad = await secret({ metal: bad });
    const sGood = await secret({ metal: good });
    const csr = await makeCsr({ uris: [`urn:tips:metal:${bad}`] });
    const wrong = () => m.https('POST', '/.well-known/est/simpleenroll', { headers: { ...PKCS10, ...basic(sBad.id, `est_${'Z'.repeat(43)}`) }, body: b64(csr.der) });
    for (let i = 0; i < MAX_FAILED_ENROLLMENTS_PER_IDENTITY; i++) expect((await wrong()).json().error.code).toBe('enrollment_secret_invalid');
    // That secret ID is locked at this address, even with the right secret now …
    const locked = await enroll(sBad, bad, csr);
    expect(locked.r.status).toBe(429);
    expect(locked.r.json().error.code).toBe('too_many_attempts');
    expect((await wrong()).status).toBe(429);
    // … while another device behind the same address, with its own secret, gets its certificate.
    expect((await enroll(sGood, good)).r.status).toBe(200);
    expect((await owner('GET', `/api/v1/enrollment/certificates?metal=${bad}`)).json().items).toHaveLength(0);
    m.clock.advance(61_000);
    expect((await enroll(sBad, bad, csr)).r.status).toBe(200);
  });

  it('image-key mode: the identity is the metal the CSR names; a stranger key for one metal does not lock out another', async () => {
    const x = await metal('pi-x', '02:00:00:00:0c:01');
    const y = await metal('pi-y', '02:00:00:00:0c:02');
    const imageY = await makeCsr({ uris: [`urn:tips:metal:${y}`] });
    const imagePublicKey = createPublicKey(imageY.keyPem).export({ type: 'spki', format: 'pem' }).toString();
    expect((await owner('POST', '/api/v1/enrollment/secrets', { metal: y, imagePublicKey })).statusCode).toBe(201);
    const strangerX = b64((await makeCsr({ uris: [`urn:tips:metal:${x}`] })).der);
    const tryX = () => m.https('POST', '/.well-known/est/simpleenroll', { headers: PKCS10, body: strangerX });
    for (let i = 0; i < MAX_FAILED_ENROLLMENTS_PER_IDENTITY; i++) expect((await tryX()).json().error.code).toBe('enrollment_unauthenticated');
    expect((await tryX()).json().error.code).toBe('too_many_attempts');
    // Another stranger key for the same metal is the same claimed identity: still locked.
    const otherKeyX = b64((await makeCsr({ uris: [`urn:tips:metal:${x}`] })).der);
    expect((await m.https('POST', '/.well-known/est/simpleenroll', { headers: PKCS10, body: otherKeyX })).status).toBe(429);
    expect((await m.https('POST', '/.well-known/est/simpleenroll', { headers: PKCS10, body: b64(imageY.der) })).status).toBe(200);
  });

  it('simplereenroll: the identity is the client certificate; a metal failing with a revoked certificate does not lock out a valid one', async () => {
    const a = await metal('pi-a', '02:00:00:00:0d:01');
    const b = await metal('pi-b', '02:00:00:00:0d:02');
    const ea = await enroll(await secret({ metal: a }), a);
    const eb = await enroll(await secret({ metal: b }), b);
    await owner('POST', `/api/v1/enrollment/metals/${a}/revoke`);
    const csrA = b64((await makeCsr({ uris: [`urn:tips:metal:${a}`] })).der);
    const reA = () => m.https('POST', '/.well-known/est/simplereenroll', { headers: PKCS10, body: csrA, cert: ea.certPem!, key: ea.keyPem });
    for (let i = 0; i < MAX_FAILED_ENROLLMENTS_PER_IDENTITY; i++) expect((await reA()).json().error.code).toBe('certificate_revoked');
    expect((await reA()).json().error.code).toBe('too_many_attempts');
    const csrB = b64((await makeCsr({ uris: [`urn:tips:metal:${b}`] })).der);
    expect((await m.https('POST', '/.well-known/est/simplereenroll', { headers: PKCS10, body: csrB, cert: eb.certPem!, key: eb.keyPem })).status).toBe(200);
  });
});
