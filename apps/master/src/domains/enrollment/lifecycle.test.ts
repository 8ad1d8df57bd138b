// S6 S14 over the real HTTPS listener: a renewed certificate replaces the old one only once the
// metal has proven it holds it; until then the old one keeps working, tokens included.
import { X509Certificate } from 'node:crypto';
import { parseCertsOnlyPkcs7 } from '@tips/trust';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { b64, makeCsr, type TlsTestMaster, tlsTestMaster } from '../../tls/testing.ts';

let m: TlsTestMaster;
beforeEach(async () => {
  m = await tlsTestMaster();
});
afterEach(async () => m.close());

const PKCS10 = { 'content-type': 'application/pkcs10' };
const certOf = (body: string) => parseCertsOnlyPkcs7(new Uint8Array(Buffer.from(body, 'base64')))[0]!.toString('pem');

async function enrolled() {
  const metal = (await m.app.inject({ method: 'POST', url: '/api/v1/metals', headers: m.auth(m.alice.token), payload: { name: 'pi-1', interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', type: 'ethernet', pxe: true }] } })).json();
  const s = (await m.app.inject({ method: 'POST', url: '/api/v1/enrollment/secrets', headers: m.auth(m.alice.token), payload: { metal: metal.id } })).json();
  const csr = await makeCsr({ uris: [`urn:tips:metal:${metal.id}`] });
  const r = await m.https('POST', '/.well-known/est/simpleenroll', { headers: { ...PKCS10, authorization: `Basic ${Buffer.from(`${s.id}:${s.secret}`).toString('base64')}` }, body: b64(csr.der) });
  expect(r.status).toBe(200);
  return { id: metal.id as string, tls: { cert: certOf(r.body), key: csr.keyPem } };
}
async function work(tls: { cert: string; key: string }) {
  const t = await m.https('POST', '/api/metal/v1/tokens/issue', tls);
  if (t.status !== 201) return { status: t.status, code: t.json().error.code as string };
  const w = await m.https('GET', '/api/metal/v1/work?phase=2', { ...tls, headers: { authorization: `PoP ${t.json().cwt}` } });
  return { status: w.status, code: w.status === 200 ? 'ok' : (w.json().error.code as string) };
}

describe('S6 S14 a renewal is superseded-on-proof: a lost EST answer never strands the metal', () => {
  it('until the new certificate is used the old one works (its tokens bound to its own key); then only the new one does', async () => {
    const metal = await enrolled();
    const csr = await makeCsr({ uris: [`urn:tips:metal:${metal.id}`] });
    m.clock.advance(1000);
    const r = await m.https('POST', '/.well-known/est/simplereenroll', { ...metal.tls, headers: PKCS10, body: b64(csr.der) });
    expect(r.status).toBe(200);
    // The answer "never reached" the metal: it goes on with its old pair — and must still get work.
    expect(await work(metal.tls)).toEqual({ status: 200, code: 'ok' });
    const fresh = { cert: certOf(r.body), key: csr.keyPem };
    expect(await work(fresh)).toEqual({ status: 200, code: 'ok' });
    expect(await work(metal.tls)).toEqual({ status: 401, code: 'certificate_revoked' });
    const certs = (await m.app.inject({ url: '/api/v1/enrollment/certificates?metal=pi-1', headers: m.auth(m.alice.token) })).json().items;
    const state = (serial: string) => certs.find((c: { serial: string }) => c.serial.toLowerCase() === serial);
    const serialOf = (pem: string) => new X509Certificate(pem).serialNumber.toLowerCase();
    expect(certs).toHaveLength(2);
    expect(state(serialOf(metal.tls.cert))).toMatchObject({ status: 'revoked', revokeReason: 'superseded' });
    expect(state(serialOf(fresh.cert))).toMatchObject({ status: 'active', revokeReason: null });
  });
});
