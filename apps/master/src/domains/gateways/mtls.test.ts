// mTLS on the gateway API (S6 S11 T11): over the master's real HTTPS listener on loopback, the
// gateway's certificate is its identity on top of its TIPS-GW-1 signature.
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { issueCertificate, parseCertificate, parseCertsOnlyPkcs7, serialFrom, x509 } from '@tips/trust';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { systemRandom } from '../../ports.ts';
import { b64, makeCsr, type TlsTestMaster, tlsTestMaster } from '../../tls/testing.ts';
import { TestGateway } from './test-client.ts';

let m: TlsTestMaster;
beforeEach(async () => {
  m = await tlsTestMaster();
});
afterEach(async () => m.close());

const TABLE = '/api/gateway/v1/table';
const ROWS = { rows: [{ mac: '02:00:00:00:00:01', state: 'pending' }] };

/** A signed PUT /table over HTTPS, presenting `cert`/`key` (or no certificate). */
function putTable(signer: TestGateway, tls: { cert?: string; key?: string }, o: { claimId?: string } = {}) {
  const body = JSON.stringify(ROWS);
  return m.https('PUT', TABLE, { headers: signer.headers('PUT', TABLE, body, { timestamp: m.clock.now().getTime(), ...o }), body, ...tls });
}
const own = (g: TestGateway) => ({ cert: g.certificate, key: g.keyPem });
const refusals = () => m.logs.filter((l) => l.includes('"securityEvent":"gateway_auth_failed"'));

describe('S6 S11 T11 gateway identity over mTLS', () => {
  it('issues the gateway a short-lived clientAuth certificate for its own Ed25519 key, naming urn:tips:gateway:<id>', async () => {
    const gw = await TestGateway.enroll(m.app, m.alice.token, 'gw-a');
    const cert = parseCertificate(gw.certificate);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON();
    expect(san).toEqual([{ type: 'url', value: `urn:tips:gateway:${gw.id}` }]);
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages).toEqual([x509.ExtendedKeyUsage.clientAuth]);
    const spki = createPublicKey(gw.key).export({ format: 'der', type: 'spki' });
    expect(Buffer.from(cert.publicKey.rawData).equals(spki)).toBe(true);
    expect(await cert.verify({ publicKey: m.ca.intermediate.cert.publicKey, signatureOnly: true })).toBe(true);
    const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
    expect(lifetime).toBeLessThanOrEqual(7 * 86_400_000 + 60_000);
    expect(gw.caChain).toBe(m.intermediatePem + m.rootPem);
  });

  it("accepts the gateway's own certificate with its own signature, for requests and the WebSocket channel", async () => {
    const gw = await TestGateway.enroll(m.app, m.alice.token, 'gw-a');
    expect((await putTable(gw, own(gw))).status).toBe(204);
    const path = '/api/gateway/v1/channel';
    const ws = new WebSocket(m.url.replace(/^https/, 'wss') + path, {
      headers: gw.headers('GET', path, undefined, { timestamp: m.clock.now().getTime() }),
      cert: gw.certificate,
      key: gw.keyPem,
      ca: m.rootPem,
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`channel refused: HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
    expect(m.services.gateways.isConnected(gw.id as never)).toBe(true);
    ws.close();
  });

  it("refuses over TLS a valid signature without a certificate, or with another gateway's certificate", async () => {
    const a = await TestGateway.enroll(m.app, m.alice.token, 'gw-a');
    const b = await TestGateway.enroll(m.app, m.alice.token, 'gw-b');
    const bobs = await TestGateway.enroll(m.app, m.bob.token, 'gw-c');
    for (const [signer, tls] of [
      [a, {}],
      [b, own(a)],
      [bobs, own(a)],
    ] as const) {
      const r = await putTable(signer, tls);
      expect(r.status).toBe(401);
      expect(r.json().error.code).toBe('gateway_auth_failed');
    }
    // A's certificate and key, claiming B's ID: the signature (A's key) does not verify for B.
    expect((await putTable(a, own(a), { claimId: b.id })).status).toBe(401);
    const why = refusals().map((l) => JSON.parse(l).why);
    expect(why).toEqual(['no client certificate over TLS', 'client certificate names another gateway', 'client certificate names another gateway', 'bad signature']);
    expect(refusals().every((l) => l.includes('"tls":true'))).toBe(true);
  });

  it('refuses a metal certificate on the gateway API, and a gateway certificate on the owner API', async () => {
    const gw = await TestGateway.enroll(m.app, m.alice.token, 'gw-a');
    const metal = await m.app.inject({ method: 'POST', url: '/api/v1/metals', headers: m.auth(m.alice.token), payload: { name: 'm1', interfaces: [{ name: 'eth0', mac: '02:00:00:00:01:01', type: 'ethernet', pxe: true }] } });
    expect(metal.statusCode).toBe(201);
    const csr = await makeCsr({ uris: [`urn:tips:metal:${metal.json().id}`] });
    const secret = await m.app.inject({ method: 'POST', url: '/api/v1/enrollment/secrets', headers: m.auth(m.alice.token), payload: { metal: metal.json().id } });
    expect(secret.statusCode).toBe(201);
    const est = await m.https('POST', '/.well-known/est/simpleenroll', {
      headers: { 'content-type': 'application/pkcs10', authorization: `Basic ${Buffer.from(`${secret.json().id}:${secret.json().secret}`).toString('base64')}` },
      body: b64(csr.der),
    });
    expect(est.status).toBe(200);
    const [metalCert] = parseCertsOnlyPkcs7(Buffer.from(est.body, 'base64'));
    // The metal's real certificate works on the metal API ...
    const metalTls = { cert: metalCert!.toString('pem'), key: csr.keyPem };
    expect((await m.https('GET', '/api/metal/v1/whoami', metalTls)).status).toBe(200);
    // ... and not on the gateway API, even beside a valid gateway signature.
    const r = await putTable(gw, metalTls);
    expect(r.status).toBe(401);
    expect(r.json().error.code).toBe('gateway_auth_failed');
    expect(JSON.parse(refusals().at(-1)!).why).toBe('client certificate does not name a gateway');
    // The gateway's certificate means nothing on the owner API, nor does an owner token on the gateway API.
    const owner = await m.https('GET', '/api/v1/gateways', own(gw));
    expect(owner.status).toBe(401);
    expect(owner.json().error.code).toBe('certificate_not_accepted_here');
    const token = await m.https('PUT', TABLE, { headers: { ...m.auth(m.alice.token), 'content-type': 'application/json' }, body: JSON.stringify(ROWS), ...own(gw) });
    expect(token.status).toBe(401);
    expect(token.json().error.code).toBe('gateway_auth_failed');
  });

  it('refuses a certificate from our CA that was never recorded for the gateway, and one past its recorded expiry; renewal issues a new one', async () => {
    const gw = await TestGateway.enroll(m.app, m.alice.token, 'gw-a');
    const now = m.clock.now();
    const forged = await issueCertificate(m.ca.intermediate, {
      identity: { kind: 'gateway', id: gw.id },
      publicKey: parseCertificate(gw.certificate).publicKey,
      serial: serialFrom(systemRandom.bytes(16)),
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + 3_600_000),
      usage: 'client',
    });
    expect((await putTable(gw, { cert: forged.toString('pem'), key: gw.keyPem })).status).toBe(401);
    expect(JSON.parse(refusals().at(-1)!).why).toBe('client certificate unknown');
    // Renewal, signed and over TLS with the current certificate.
    const renew = await m.https('POST', '/api/gateway/v1/certificate', { headers: gw.headers('POST', '/api/gateway/v1/certificate', undefined, { timestamp: m.clock.now().getTime() }), ...own(gw) });
    expect(renew.status).toBe(200);
    const renewed = renew.json();
    expect(parseCertificate(renewed.certificate).serialNumber).not.toBe(parseCertificate(gw.certificate).serialNumber);
    expect(renewed.caChain).toBe(m.intermediatePem + m.rootPem);
    // Eight days on (the master's clock), the first certificate is expired in the master's record.
    m.clock.advance(8 * 86_400_000);
    expect((await putTable(gw, own(gw))).status).toBe(401);
    expect(JSON.parse(refusals().at(-1)!).why).toBe('client certificate expired');
  });

  it('issue 13: over mTLS the registration routes take the certificate alone (no TIPS-GW-1 headers); nothing else does, and plain HTTP never', async () => {
    const gw = await TestGateway.enroll(m.app, m.alice.token, 'gw-a');
    const other = await TestGateway.enroll(m.app, m.bob.token, 'gw-b');
    const reg = JSON.stringify({ mac: '02:00:00:00:00:09', ip: '10.0.0.9', gatewayInterface: 'lan0' });
    const json = { 'content-type': 'application/json' };
    const agent = new (await import('node:https')).Agent({ keepAlive: true, maxSockets: 1, ca: m.rootPem, cert: gw.certificate, key: gw.keyPem });
    try {
      const one = await m.https('POST', '/api/gateway/v1/registrations', { headers: json, body: reg, agent });
      expect(one.status, one.body).toBe(200);
      expect(one.json()).toEqual({ decision: 'blocked', reason: 'unknown_mac' });
      const batch = await m.https('POST', '/api/gateway/v1/registrations/batch', { headers: json, body: JSON.stringify({ items: [JSON.parse(reg), JSON.parse(reg)] }), agent });
      expect(batch.status, batch.body).toBe(200);
      expect(batch.json().items).toHaveLength(2);
      // Recorded as this gateway's, like a signed one.
      const recs = await m.db.selectFrom('discovery_registrations').select(['gateway_id']).execute();
      expect(recs.map((r) => r.gateway_id)).toEqual([gw.id, gw.id, gw.id]);
      // Another gateway's certificate makes the decision that gateway's (the certificate is the identity).
      expect((await m.https('POST', '/api/gateway/v1/registrations', { headers: json, body: reg, ...own(other) })).status).toBe(200);
      expect((await m.db.selectFrom('discovery_registrations').select(['gateway_id']).where('gateway_id', '=', other.id).execute()).length).toBe(1);
      // Without a certificate, over plain HTTP, and on a route that is not a registration: refused, nothing recorded.
      const before = (await m.db.selectFrom('discovery_registrations').select(['id']).execute()).length;
      expect((await m.https('POST', '/api/gateway/v1/registrations', { headers: json, body: reg })).status).toBe(401);
      expect((await m.app.inject({ method: 'POST', url: '/api/gateway/v1/registrations', headers: json, payload: reg })).statusCode).toBe(401);
      expect((await m.https('PUT', TABLE, { headers: json, body: JSON.stringify(ROWS), agent })).status).toBe(401);
      expect((await m.db.selectFrom('discovery_registrations').select(['id']).execute()).length).toBe(before);
      // The owner removes the gateway (its certificate revoked): the kept-alive connection is refused
      // once its check is a second old, and a new connection at once.
      expect((await m.app.inject({ method: 'DELETE', url: '/api/v1/gateways/gw-a', headers: m.auth(m.alice.token) })).statusCode).toBe(204);
      m.clock.advance(1_001);
      const late = await m.https('POST', '/api/gateway/v1/registrations', { headers: json, body: reg, agent });
      expect(late.status).toBe(401);
      expect(late.json().error.code).toBe('gateway_auth_failed');
      expect((await m.https('POST', '/api/gateway/v1/registrations', { headers: json, body: reg, ...own(gw) })).status).toBe(401);
      expect((await m.db.selectFrom('discovery_registrations').select(['id']).execute()).length).toBe(before);
    } finally {
      agent.destroy();
    }
  });

  it('revokes the certificate when the owner removes the gateway: refused on the very next request', async () => {
    const gw = await TestGateway.enroll(m.app, m.alice.token, 'gw-a');
    expect((await putTable(gw, own(gw))).status).toBe(204);
    expect((await m.app.inject({ method: 'DELETE', url: '/api/v1/gateways/gw-a', headers: m.auth(m.alice.token) })).statusCode).toBe(204);
    const r = await putTable(gw, own(gw));
    expect(r.status).toBe(401);
    expect(r.json().error.code).toBe('gateway_auth_failed');
    const rows = await m.db.selectFrom('gateway_certificates').select(['status', 'revoked_at']).where('gateway_id', '=', gw.id).execute();
    expect(rows).toEqual([{ status: 'revoked', revoked_at: expect.any(String) }]);
  });

  it('with --gateway-require-tls refuses gateway requests over plain HTTP, enrollment included, and still serves mTLS', async () => {
    const gw = await TestGateway.enroll(m.app, m.alice.token, 'gw-a');
    m.services.gateways.useTls({ ca: () => m.services.enrollment.ca(), requireTls: true });
    const plain = await gw.request('PUT', TABLE, ROWS);
    expect(plain.statusCode).toBe(401);
    expect(plain.json().error.code).toBe('gateway_auth_failed');
    const created = await m.app.inject({ method: 'POST', url: '/api/v1/gateways', headers: m.auth(m.alice.token), payload: { name: 'gw-b' } });
    const pem = generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const enroll = await m.app.inject({ method: 'POST', url: '/api/gateway/v1/enroll', payload: { enrollmentToken: created.json().enrollmentToken, publicKey: pem } });
    expect(enroll.statusCode).toBe(401);
    // The token was not spent: enrollment over HTTPS still works.
    const overTls = await m.https('POST', '/api/gateway/v1/enroll', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ enrollmentToken: created.json().enrollmentToken, publicKey: pem }),
    });
    expect(overTls.status).toBe(201);
    expect((await putTable(gw, own(gw))).status).toBe(204);
  });
});
