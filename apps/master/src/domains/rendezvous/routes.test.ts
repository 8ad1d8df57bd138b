import { generateKeyPairSync } from 'node:crypto';
import { decodeVoucher, signProof, signTo1d, verifyProof, verifyVoucherChain } from '@tips/onboarding';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type TestMaster, testMaster } from '../../testing.ts';
import { voucherFor } from '../vouchers/test-helpers.ts';

const p256 = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const soon = () => Math.floor(Date.now() / 1000) + 600;

const adapters: [string, () => string | undefined][] = [
  ['SQLite', () => undefined],
  ['PostgreSQL', () => inject('pgUrl')],
];

describe.each(adapters)('Z1 rendezvous (TO0/TO1) and TO2 on %s: each refusal changes nothing', (_name, pgUrl) => {
  let m: TestMaster;
  const post = (url: string, payload: unknown) => m.app.inject({ method: 'POST', url, payload: payload as object });
  const rows = async () =>
    JSON.stringify([
      await m.db.selectFrom('rendezvous_registrations').selectAll().orderBy('guid').execute(),
      await m.db.selectFrom('vouchers').select(['guid', 'status']).orderBy('guid').execute(),
    ]);

  beforeAll(async () => {
    m = await testMaster({ pgUrl: pgUrl() });
  });
  afterAll(async () => m.close());

  it('TO0: a registration must come with a sound voucher and a to1d signed by its current owner', async () => {
    const owner = p256();
    const v = voucherFor(owner.publicKey);
    const guid = decodeVoucher(v.voucher).header.guid;
    const before = await rows();
    const notOwner = await post('/api/rendezvous/v1/registrations', { voucher: b64(v.voucher), to1d: b64(signTo1d(p256().privateKey, { guid, addresses: ['http://x:1'], expiresAt: soon() })) });
    expect(notOwner.statusCode).toBe(422);
    expect(notOwner.json().error).toMatchObject({ code: 'to1d_invalid', field: 'to1d' });
    const otherDevice = await post('/api/rendezvous/v1/registrations', { voucher: b64(v.voucher), to1d: b64(signTo1d(owner.privateKey, { guid: new Uint8Array(16), addresses: ['http://x:1'], expiresAt: soon() })) });
    expect(otherDevice.json().error.code).toBe('to1d_invalid');
    const expired = await post('/api/rendezvous/v1/registrations', { voucher: b64(v.voucher), to1d: b64(signTo1d(owner.privateKey, { guid, addresses: ['http://x:1'], expiresAt: 1000 })) });
    expect(expired.json().error.code).toBe('to1d_invalid');
    const broken = Uint8Array.from(v.voucher);
    broken[broken.length - 2]! ^= 1;
    const badVoucher = await post('/api/rendezvous/v1/registrations', { voucher: b64(broken), to1d: b64(signTo1d(owner.privateKey, { guid, addresses: ['http://x:1'], expiresAt: soon() })) });
    expect(badVoucher.statusCode).toBe(422);
    expect(badVoucher.json().error.message).toContain('entry 1');
    expect(await rows()).toBe(before);
    const ok = await post('/api/rendezvous/v1/registrations', { voucher: b64(v.voucher), to1d: b64(signTo1d(owner.privateKey, { guid, addresses: ['http://x:1'], expiresAt: soon() })) });
    expect(ok.statusCode, ok.body).toBe(200);
  });

  it('TO1: an unknown GUID, a proof by another key, a replayed nonce: each refused', async () => {
    const owner = p256();
    const v = voucherFor(owner.publicKey);
    const guid = decodeVoucher(v.voucher).header.guid;
    const g = Buffer.from(guid).toString('hex');
    expect((await post('/api/rendezvous/v1/hello', { guid: g })).json().error.code).toBe('guid_unknown');
    const to1d = signTo1d(owner.privateKey, { guid, addresses: ['http://owner:8080'], expiresAt: soon() });
    expect((await post('/api/rendezvous/v1/registrations', { voucher: b64(v.voucher), to1d: b64(to1d) })).statusCode).toBe(200);
    const nonce = Buffer.from((await post('/api/rendezvous/v1/hello', { guid: g })).json().nonce, 'base64');
    const wrong = await post('/api/rendezvous/v1/prove', { guid: g, proof: b64(signProof(p256().privateKey, 'tips-to1-device', [guid, nonce])) });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error.code).toBe('proof_invalid');
    const otherStep = await post('/api/rendezvous/v1/prove', { guid: g, proof: b64(signProof(v.device.privateKey, 'tips-to2-device', [guid, nonce])) });
    expect(otherStep.statusCode).toBe(401);
    const proof = b64(signProof(v.device.privateKey, 'tips-to1-device', [guid, nonce]));
    const right = await post('/api/rendezvous/v1/prove', { guid: g, proof });
    expect(right.statusCode, right.body).toBe(200);
    expect(Buffer.from(right.json().to1d, 'base64')).toEqual(Buffer.from(to1d));
    expect((await post('/api/rendezvous/v1/prove', { guid: g, proof })).json().error.code).toBe('proof_invalid');
  });

  it('TO2: the owner proves itself first; a device proving another key or a replayed proof is refused and the status stays', async () => {
    const key = (await m.app.inject({ method: 'POST', url: '/api/v1/onboarding-keys', headers: m.auth(m.alice.token), payload: { name: 'fleet' } })).json();
    const v = voucherFor(key.publicKey);
    const imported = await m.app.inject({ method: 'POST', url: '/api/v1/vouchers', headers: m.auth(m.alice.token), payload: { vouchers: [b64(v.voucher)] } });
    const guid = imported.json().items[0].voucher.guid as string;
    const guidBytes = decodeVoucher(v.voucher).header.guid;
    expect((await post('/api/onboarding/v1/hello', { guid: '00000000-0000-0000-0000-000000000000', nonce: b64(new Uint8Array(16)) })).json().error.code).toBe('guid_unknown');
    expect((await post('/api/onboarding/v1/hello', { guid, nonce: b64(new Uint8Array(4)) })).statusCode).toBe(400);
    const deviceNonce = new Uint8Array(16).fill(9);
    const hello = (await post('/api/onboarding/v1/hello', { guid, nonce: b64(deviceNonce) })).json();
    // What the device checks: the owner's proof is over its GUID and both nonces, by the key the voucher ends at.
    const chain = verifyVoucherChain(new Uint8Array(Buffer.from(hello.voucher, 'base64')));
    const [g, dn, on] = verifyProof(new Uint8Array(Buffer.from(hello.ownerProof, 'base64')), chain.currentOwner, 'tips-to2-owner');
    expect([g, dn, on]).toEqual([guidBytes, deviceNonce, new Uint8Array(Buffer.from(hello.nonce, 'base64'))]);
    const before = await rows();
    const ownerNonce = Buffer.from(hello.nonce, 'base64');
    const wrong = await post('/api/onboarding/v1/prove', { guid, proof: b64(signProof(p256().privateKey, 'tips-to2-device', [guidBytes, ownerNonce])) });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error.code).toBe('proof_invalid');
    const staleNonce = await post('/api/onboarding/v1/prove', { guid, proof: b64(signProof(v.device.privateKey, 'tips-to2-device', [guidBytes, new Uint8Array(16)])) });
    expect(staleNonce.statusCode).toBe(401);
    expect(await rows()).toBe(before);
    const proof = b64(signProof(v.device.privateKey, 'tips-to2-device', [guidBytes, ownerNonce]));
    const ok = await post('/api/onboarding/v1/prove', { guid, proof });
    expect(ok.json()).toEqual({ guid, status: 'onboarded' });
    expect((await post('/api/onboarding/v1/prove', { guid, proof })).statusCode).toBe(401);
    const metrics = (await m.app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/tips_master_vouchers_refused_total\{reason="proof_invalid"\} [1-9]/);
    expect(metrics).toMatch(/tips_master_rendezvous_requests_total\{step="to1_prove",result="proof_invalid"\} [1-9]/);
    expect(metrics).toMatch(/tips_master_rendezvous_requests_total\{step="to0_register",result="ok"\} [1-9]/);
  });
});
