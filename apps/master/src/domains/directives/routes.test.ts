import { buildEnvelope, generateSigningKey } from '@tips/suit';
import { ENROLLMENT_COMPONENT, encodeReenrollment, encodeTrustList, TRUST_LIST_COMPONENT } from '@tips/trust';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestMaster, testMaster } from '../../testing.ts';

let m: TestMaster;
beforeEach(async () => {
  m = await testMaster();
});
afterEach(async () => m.close());

type Key = ReturnType<typeof generateSigningKey>;
const trustList = (k: Key, version = 5) => encodeTrustList({ version, operators: [{ name: 'ops', publicKey: k.key.publicKey! }], updateServers: [] });
const signed = (k: Key | undefined, component: Uint8Array[], payload: Uint8Array, seq = 5) =>
  buildEnvelope({ vendorDomain: 'tips.directive', classInfo: 'x', component, sequenceNumber: seq, payload, delivery: { mode: 'integrated' }, ...(k ? { key: k.key } : {}) });
const order = () => encodeReenrollment({ estUri: 'https://m/.well-known/est', secretId: `ens_${'0'.repeat(26)}`, secret: `est_${'a'.repeat(43)}` });

async function post(env: Uint8Array, query = '', token = m.alice.token) {
  return m.app.inject({ method: 'POST', url: `/api/v1/directives${query}`, headers: { ...m.auth(token), 'content-type': 'application/suit-envelope+cose' }, payload: Buffer.from(env) });
}
async function register(k: Key, token = m.alice.token) {
  const r = await m.app.inject({ method: 'POST', url: '/api/v1/keys', headers: m.auth(token), payload: { name: `k${Math.random().toString(36).slice(2, 8)}`, publicKey: k.publicPem } });
  expect(r.statusCode).toBe(201);
  return r.json().id as string;
}
const count = async () => (await m.db.selectFrom('metal_directives').selectAll().execute()).length;

describe('S5 S6 S14 directives: signed orders to metals', () => {
  it('publishes a trust-list update signed by an active key, for every metal; a re-enrollment order for one metal', async () => {
    const k = generateSigningKey('ed25519');
    const keyId = await register(k);
    const a = await post(signed(k, TRUST_LIST_COMPONENT, trustList(k)));
    expect(a.statusCode, a.body).toBe(201);
    expect(a.json()).toMatchObject({ kind: 'trust-list', metal: null, signedBy: keyId, sequenceNumber: '5' });
    const metal = (await m.app.inject({ method: 'POST', url: '/api/v1/metals', headers: m.auth(m.alice.token), payload: { name: 'pi-1', interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', type: 'ethernet', pxe: true }] } })).json();
    const b = await post(signed(k, ENROLLMENT_COMPONENT, order(), 9), '?metal=pi-1');
    expect(b.statusCode, b.body).toBe(201);
    expect(b.json()).toMatchObject({ kind: 'reenroll', metal: metal.id, sequenceNumber: '9' });
    const forMetal = await m.services.directives.forMetal(m.alice.id, metal.id);
    expect(forMetal.map((d) => d.kind).sort()).toEqual(['reenroll', 'trust-list']);
    expect(await m.services.directives.forMetal(m.bob.id, metal.id)).toEqual([]);
    const list = await m.app.inject({ method: 'GET', url: '/api/v1/directives', headers: m.auth(m.alice.token) });
    expect(list.json().items.map((d: { kind: string }) => d.kind)).toEqual(['reenroll', 'trust-list']);
    expect((await m.app.inject({ method: 'GET', url: '/api/v1/directives', headers: m.auth(m.bob.token) })).json().items).toEqual([]);
    const metrics = (await m.app.inject({ url: '/metrics' })).body;
    expect(metrics).toContain('tips_master_directives_published_total{kind="trust-list"} 1');
    expect(metrics).toContain('tips_master_directives_published_total{kind="reenroll"} 1');
    // Retirement is counted once, however often it is asked.
    for (let i = 0; i < 2; i++) expect((await m.app.inject({ method: 'POST', url: '/api/v1/metals/pi-1/retire', headers: m.auth(m.alice.token) })).statusCode).toBe(200);
    expect((await m.app.inject({ url: '/metrics' })).body).toContain('tips_master_metals_retired_total 1');
  });

  it('refuses unsigned, foreign-signed (a stranger, another owner), other components, missing or stray metal, garbage — nothing stored', async () => {
    const k = generateSigningKey('ed25519');
    await register(k);
    const bobs = generateSigningKey('ed25519');
    await register(bobs, m.bob.token);
    await m.app.inject({ method: 'POST', url: '/api/v1/metals', headers: m.auth(m.alice.token), payload: { name: 'pi-1', interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', type: 'ethernet', pxe: true }] } });
    const refusals: [Uint8Array, string, number, string][] = [
      [signed(undefined, TRUST_LIST_COMPONENT, trustList(k)), '', 422, 'directive_untrusted'],
      [signed(generateSigningKey('ed25519'), TRUST_LIST_COMPONENT, trustList(k)), '', 422, 'directive_untrusted'],
      [signed(bobs, TRUST_LIST_COMPONENT, trustList(k)), '', 422, 'directive_untrusted'],
      [signed(k, [new Uint8Array(Buffer.from('rootfs'))], trustList(k)), '', 422, 'directive_component_unknown'],
      [signed(k, TRUST_LIST_COMPONENT, new Uint8Array([1, 2, 3])), '', 400, 'directive_malformed'],
      [signed(k, ENROLLMENT_COMPONENT, order()), '', 400, 'directive_metal_required'],
      [signed(k, TRUST_LIST_COMPONENT, trustList(k)), '?metal=pi-1', 400, 'directive_metal_unexpected'],
      [new Uint8Array([0xd8, 0x6b, 0xa0]), '', 400, 'directive_malformed'],
    ];
    for (const [env, q, status, code] of refusals) {
      const r = await post(env, q);
      expect([r.statusCode, r.json().error.code], code).toEqual([status, code]);
    }
    const notFound = await post(signed(k, ENROLLMENT_COMPONENT, order()), '?metal=nope');
    expect(notFound.statusCode).toBe(404);
    expect(await count()).toBe(0);
  });
});
