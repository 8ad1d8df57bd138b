import { generateKeyPairSync } from 'node:crypto';
import { armorVoucher, decodeVoucher, encodeVoucher } from '@tips/onboarding';
import { encodeCbor, decodeCbor } from '@tips/suit';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type TestMaster, testMaster } from '../../testing.ts';
import { voucherFor } from './test-helpers.ts';

const adapters: [string, () => string | undefined][] = [
  ['SQLite', () => undefined],
  ['PostgreSQL', () => inject('pgUrl')],
];

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

describe.each(adapters)('Z3 S14 voucher import on %s: the chain must end at one of your onboarding keys', (_name, pgUrl) => {
  let m: TestMaster;
  let aliceKey: { id: string; publicKey: string; fingerprint: string };
  const call = (method: string, url: string, payload?: unknown, token?: string) =>
    m.app.inject({ method: method as 'GET', url, headers: m.auth(token ?? m.alice.token), ...(payload === undefined ? {} : { payload: payload as object }) });
  const rows = async () => (await m.db.selectFrom('vouchers').selectAll().execute()).map((r) => `${r.owner_id}/${r.guid}/${r.sha256}/${r.status}`).sort();

  beforeAll(async () => {
    m = await testMaster({ pgUrl: pgUrl() });
    const r = await call('POST', '/api/v1/onboarding-keys', { name: 'fleet' });
    expect(r.statusCode, r.body).toBe(201);
    aliceKey = r.json();
  });
  afterAll(async () => m.close());

  it('onboarding keys: made by the master (P-256), listed a page at a time, shown by name; a name once per owner', async () => {
    expect(aliceKey.publicKey).toContain('BEGIN PUBLIC KEY');
    expect(aliceKey.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect((await call('POST', '/api/v1/onboarding-keys', { name: 'fleet' })).statusCode).toBe(409);
    expect((await call('POST', '/api/v1/onboarding-keys', { name: 'spare' })).statusCode).toBe(201);
    const page = (await call('GET', '/api/v1/onboarding-keys?limit=1')).json();
    expect(page.items.map((k: { name: string }) => k.name)).toEqual(['fleet']);
    expect((await call('GET', `/api/v1/onboarding-keys?cursor=${page.nextCursor}`)).json().items.map((k: { name: string }) => k.name)).toEqual(['spare']);
    expect((await call('GET', '/api/v1/onboarding-keys/fleet')).json().id).toBe(aliceKey.id);
    expect((await call('GET', '/api/v1/onboarding-keys/fleet', undefined, m.bob.token)).statusCode).toBe(404);
    // The private key never leaves the master.
    expect(JSON.stringify((await call('GET', '/api/v1/onboarding-keys')).json())).not.toContain('PRIVATE');
  });

  it('imports a 3-hop voucher, lists it with its status, shows it; importing again changes nothing', async () => {
    const v = voucherFor(aliceKey.publicKey, { hops: 3, deviceInfo: 'vendor=acme;class=gateway' });
    const r = await call('POST', '/api/v1/vouchers', { vouchers: [b64(v.voucher)] });
    expect(r.statusCode, r.body).toBe(200);
    const body = r.json();
    expect(body).toMatchObject({ imported: 1, unchanged: 0 });
    const item = body.items[0];
    expect(item.result).toBe('imported');
    expect(item.voucher).toMatchObject({ status: 'imported', deviceInfo: 'vendor=acme;class=gateway', entries: 3, rendezvous: ['https://rv.example.com:8041'], onboardingKey: { id: aliceKey.id, name: 'fleet' } });
    expect(item.voucher.ownerChain.at(-1)).toBe(aliceKey.fingerprint);
    const before = await rows();
    const again = await call('POST', '/api/v1/vouchers', { vouchers: [armorVoucher(v.voucher)] });
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json()).toMatchObject({ imported: 0, unchanged: 1, items: [{ result: 'unchanged', voucher: { guid: item.voucher.guid } }] });
    expect(await rows()).toEqual(before);
    const list = (await call('GET', '/api/v1/vouchers')).json();
    expect(list.items.map((x: { guid: string }) => x.guid)).toContain(item.voucher.guid);
    const shown = await call('GET', `/api/v1/vouchers/${item.voucher.guid.replaceAll('-', '')}`);
    expect(shown.statusCode).toBe(200);
    expect(shown.json().voucher).toBe(armorVoucher(v.voucher));
    // Another owner sees nothing of it.
    expect((await call('GET', `/api/v1/vouchers/${item.voucher.guid}`, undefined, m.bob.token)).statusCode).toBe(404);
    expect((await call('GET', '/api/v1/vouchers', undefined, m.bob.token)).json().items).toEqual([]);
  });

  it('bulk is all or nothing: one broken voucher names its index and link, and the good ones are not imported', async () => {
    const good = voucherFor(aliceKey.publicKey);
    const tampered = voucherFor(aliceKey.publicKey);
    const parts = decodeCbor(tampered.voucher) as unknown[];
    const header = decodeCbor(parts[1] as Uint8Array) as unknown[];
    header[3] = 'vendor=evil';
    const bad = encodeCbor([parts[0], encodeCbor(header as never), parts[2], parts[3], parts[4]] as never);
    const before = await rows();
    const r = await call('POST', '/api/v1/vouchers', { vouchers: [b64(good.voucher), b64(bad)] });
    expect(r.statusCode).toBe(422);
    expect(r.json().error).toMatchObject({ code: 'entry_prev_hash_mismatch', field: 'vouchers[1]' });
    expect(r.json().error.message).toMatch(/^vouchers\[1\]: entry 0: /);
    expect(await rows()).toEqual(before);
  });

  it("another owner's import is refused at the last entry, and so is a chain cut short of this owner", async () => {
    const v = voucherFor(aliceKey.publicKey, { hops: 2 });
    const before = await rows();
    const bobs = await call('POST', '/api/v1/vouchers', { vouchers: [b64(v.voucher)] }, m.bob.token);
    expect(bobs.statusCode).toBe(422);
    expect(bobs.json().error).toMatchObject({ code: 'voucher_wrong_owner', field: 'vouchers[0]' });
    expect(bobs.json().error.message).toContain('entry 1:');
    expect(bobs.json().error.message).toContain('no onboarding key yet');
    const cut = await call('POST', '/api/v1/vouchers', { vouchers: [b64(v.beforeLastHop)] });
    expect(cut.json().error).toMatchObject({ code: 'voucher_wrong_owner' });
    expect(cut.json().error.message).toContain('entry 0:');
    expect(await rows()).toEqual(before);
  });

  it('an entry signed by the wrong key, a voucher nobody signed over, bad base64: each refused, nothing written', async () => {
    const v = voucherFor(aliceKey.publicKey, { hops: 2 });
    const decoded = decodeVoucher(v.voucher);
    const wrong = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const { coseSign1Sign } = await import('@tips/suit');
    const resigned = coseSign1Sign({ protectedHeaders: new Map([[1, -7]]), payload: decoded.entries[1]!.cose.payload! }, { privateKey: wrong.privateKey });
    const forged = encodeVoucher({ ...decoded, entries: [decoded.entries[0]!, { ...decoded.entries[1]!, bytes: resigned }] });
    const before = await rows();
    const r = await call('POST', '/api/v1/vouchers', { vouchers: [b64(forged)] });
    expect(r.statusCode).toBe(422);
    expect(r.json().error).toMatchObject({ code: 'entry_signature_invalid', field: 'vouchers[0]' });
    expect(r.json().error.message).toContain('entry 1: not signed by the key entry 0 hands ownership to');
    const fresh = voucherFor(aliceKey.publicKey);
    const zeroEntries = encodeVoucher({ ...decodeVoucher(fresh.voucher), entries: [] });
    expect((await call('POST', '/api/v1/vouchers', { vouchers: [b64(zeroEntries)] })).json().error.code).toBe('voucher_no_entries');
    const notB64 = await call('POST', '/api/v1/vouchers', { vouchers: [b64(fresh.voucher), 'not base64!'] });
    expect(notB64.statusCode).toBe(400);
    expect(notB64.json().error).toMatchObject({ code: 'voucher_malformed', field: 'vouchers[1]' });
    const garbage = await call('POST', '/api/v1/vouchers', { vouchers: [b64(new Uint8Array([1, 2, 3]))] });
    expect(garbage.statusCode).toBe(400);
    expect((await call('POST', '/api/v1/vouchers', { vouchers: [] })).statusCode).toBe(400);
    expect(await rows()).toEqual(before);
  });

  it('a device imported with another voucher is a conflict; nothing is replaced', async () => {
    const guid = new Uint8Array(16).fill(0xab);
    const first = voucherFor(aliceKey.publicKey, { guid });
    const second = voucherFor(aliceKey.publicKey, { guid });
    expect((await call('POST', '/api/v1/vouchers', { vouchers: [b64(first.voucher)] })).statusCode).toBe(200);
    const before = await rows();
    const r = await call('POST', '/api/v1/vouchers', { vouchers: [b64(second.voucher)] });
    expect(r.statusCode).toBe(409);
    expect(r.json().error).toMatchObject({ code: 'voucher_conflict', field: 'vouchers[0]' });
    expect(await rows()).toEqual(before);
    // The same device twice in one request, with different vouchers: the same refusal, at the second.
    const third = voucherFor(aliceKey.publicKey, { guid: new Uint8Array(16).fill(0xcd) });
    const fourth = voucherFor(aliceKey.publicKey, { guid: new Uint8Array(16).fill(0xcd) });
    const both = await call('POST', '/api/v1/vouchers', { vouchers: [b64(third.voucher), b64(fourth.voucher)] });
    expect(both.json().error).toMatchObject({ code: 'voucher_conflict', field: 'vouchers[1]' });
    expect(await rows()).toEqual(before);
  });

  it('lists are paged like every list; metrics count imports and refusals by reason', async () => {
    const vs = [voucherFor(aliceKey.publicKey), voucherFor(aliceKey.publicKey), voucherFor(aliceKey.publicKey)];
    expect((await call('POST', '/api/v1/vouchers', { vouchers: vs.map((v) => b64(v.voucher)) })).json().imported).toBe(3);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: { guid: string }[]; nextCursor: string | null } = (await call('GET', `/api/v1/vouchers?limit=2${cursor ? `&cursor=${cursor}` : ''}`)).json();
      seen.push(...page.items.map((x) => x.guid));
      cursor = page.nextCursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe((await rows()).filter((r) => r.startsWith(`${m.alice.id}/`)).length);
    const metrics = (await m.app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/tips_master_vouchers_imported_total\{result="imported"\} [1-9]/);
    expect(metrics).toMatch(/tips_master_vouchers_imported_total\{result="unchanged"\} [1-9]/);
    expect(metrics).toMatch(/tips_master_vouchers_refused_total\{reason="voucher_wrong_owner"\} [1-9]/);
    expect(metrics).toMatch(/tips_master_vouchers_refused_total\{reason="entry_signature_invalid"\} [1-9]/);
  });
});
