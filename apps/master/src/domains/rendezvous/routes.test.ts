import { generateKeyPairSync } from 'node:crypto';
import { decodeVoucher, signProof, signTo1d } from '@tips/onboarding';
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

describe.each(adapters)('Z1 rendezvous (TO0/TO1) on %s: each refusal changes nothing (TO2: bootstrap/routes.test.ts)', (_name, pgUrl) => {
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
});
