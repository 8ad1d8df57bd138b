import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { decodeVoucher, type DeviceFacts, deviceFactsDigest, guidToString, makeSetupKey, openSetup, parseDeviceSetup, signProof, verifyVoucherChain } from '@tips/onboarding';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type TestMaster, testMaster } from '../../testing.ts';
import { makeCsr } from '../../tls/testing.ts';
import { voucherFor } from '../vouchers/test-helpers.ts';

const p256 = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const mac = () => `02:${[...randomBytes(5)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
const factsOf = (m = mac()): DeviceFacts => ({ interfaces: [{ name: 'eth0', mac: m, type: 'ethernet', pxe: true }], ramMb: 2048, storageMb: 16_000, arch: 'aarch64' });

const adapters: [string, () => string | undefined][] = [
  ['SQLite', () => undefined],
  ['PostgreSQL', () => inject('pgUrl')],
];

describe.each(adapters)('Z1 Z2 Z4 S14 bootstrapping and onboarding on %s: a proof makes a metal; every bad input changes nothing', (_name, pgUrl) => {
  let m: TestMaster;
  let ownerKeyPem: string;
  let phase1: { id: string };
  let phase2: { id: string };
  const post = (url: string, payload: unknown) => m.app.inject({ method: 'POST', url, payload: payload as object });
  const owner = (method: 'GET' | 'POST', url: string, payload?: unknown) => m.app.inject({ method, url, headers: m.auth(m.alice.token), ...(payload === undefined ? {} : { payload: payload as object }) });
  /** What a refusal must not touch: metals, their interfaces and Spaces, enrollment secrets. */
  const created = async () =>
    JSON.stringify([
      await m.db.selectFrom('metals').select(['id', 'name']).orderBy('id').execute(),
      await m.db.selectFrom('metal_interfaces').select(['metal_id', 'mac']).orderBy('mac').execute(),
      await m.db.selectFrom('space_members').selectAll().orderBy('metal_id').execute(),
      await m.db.selectFrom('enrollment_secrets').select(['id', 'uses']).orderBy('id').execute(),
    ]);
  const record = async (guid: string) => (await owner('GET', `/api/v1/onboardings/${guid}`)).json();

  /** A device of this owner, imported; `hello` and `prove` run its TO2 as apps/client does. */
  async function newDevice(opts: { deviceInfo?: string } = {}) {
    const v = voucherFor(ownerKeyPem, { hops: 2, ...opts });
    const r = await owner('POST', '/api/v1/vouchers', { vouchers: [b64(v.voucher)] });
    expect(r.statusCode, r.body).toBe(200);
    const guidBytes = decodeVoucher(v.voucher).header.guid;
    const guid = guidToString(guidBytes);
    return {
      v,
      guid,
      guidBytes,
      async hello(facts: DeviceFacts) {
        return post('/api/onboarding/v1/hello', { guid, nonce: b64(randomBytes(16)), device: facts });
      },
      async prove(facts: DeviceFacts, o: { key?: ReturnType<typeof p256>['privateKey']; nonce?: Uint8Array; signedFacts?: DeviceFacts } = {}) {
        const hello = await this.hello(facts);
        expect(hello.statusCode, hello.body).toBe(200);
        const nonce = o.nonce ?? new Uint8Array(Buffer.from(hello.json().nonce, 'base64'));
        const setupKey = makeSetupKey();
        const proof = signProof(o.key ?? v.device.privateKey, 'tips-to2-device', [guidBytes, nonce, deviceFactsDigest(o.signedFacts ?? facts), setupKey.publicRaw]);
        const res = await post('/api/onboarding/v1/prove', { guid, nonce: b64(nonce), proof: b64(proof) });
        return { res, nonce, setupKey, helloBody: hello.json() };
      },
    };
  }

  beforeAll(async () => {
    m = await testMaster({ pgUrl: pgUrl(), publicUrls: () => ({ url: 'http://master.test:8080', tlsUrl: 'https://master.test:8443' }) });
    ownerKeyPem = (await owner('POST', '/api/v1/onboarding-keys', { name: 'fleet' })).json().publicKey;
    phase1 = (await owner('POST', '/api/v1/spaces', { name: 'field-p1', phase: 1 })).json();
    phase2 = (await owner('POST', '/api/v1/spaces', { name: 'field-p2', phase: 2 })).json();
  });
  afterAll(async () => m.close());

  it('profiles: create, list, show; bad ones are refused by field and nothing is made', async () => {
    const bad = [
      [{ name: 'two-p1', spaces: [phase1.id, (await owner('POST', '/api/v1/spaces', { name: 'other-p1', phase: 1 })).json().id] }, 422, 'spaces'],
      [{ name: 'no-pcrs', attestation: 'tpm2' }, 422, 'pcrs'],
      [{ name: 'sk-pcrs', pcrs: [7] }, 422, 'pcrs'],
      [{ name: 'ghost', spaces: ['no-such-space'] }, 422, 'spaces[0]'],
      [{ name: 'bad-arch', match: { arch: 'x 86' } }, 400, 'match.arch'],
      [{ name: 'bad-digest', attestation: 'tpm2', pcrs: [7], pcrDigest: 'zz' }, 400, 'pcrDigest'],
    ] as const;
    for (const [body, status, field] of bad) {
      const r = await owner('POST', '/api/v1/bootstrap/profiles', body);
      expect(r.statusCode, r.body).toBe(status);
      expect(r.json().error.field).toBe(field);
    }
    expect((await owner('GET', '/api/v1/bootstrap/profiles')).json().items).toEqual([]);
    const p = await owner('POST', '/api/v1/bootstrap/profiles', { name: 'sensors', match: { vendor: 'acme', class: 'sensor', minRamMb: 1024, arch: 'aarch64' }, spaces: [phase1.id, 'field-p2'], agent: { pollIntervalSeconds: 30 } });
    expect(p.statusCode, p.body).toBe(201);
    expect(p.json()).toMatchObject({ name: 'sensors', spaces: [phase1.id, phase2.id], attestation: 'software-key', protocols: ['http'], pcrs: [] });
    expect((await owner('POST', '/api/v1/bootstrap/profiles', { name: 'sensors' })).statusCode).toBe(409);
    expect((await owner('GET', '/api/v1/bootstrap/profiles/sensors')).json().id).toBe(p.json().id);
    expect((await m.app.inject({ method: 'GET', url: '/api/v1/bootstrap/profiles/sensors', headers: m.auth(m.bob.token) })).statusCode).toBe(404);
  });

  it('profiles: PATCH changes what it names and keeps the rest; a bad change, another owner, a taken name change nothing', async () => {
    const patch = (ref: string, payload: unknown, token = m.alice.token) => m.app.inject({ method: 'PATCH', url: `/api/v1/bootstrap/profiles/${ref}`, headers: m.auth(token), payload: payload as object });
    const made = (await owner('POST', '/api/v1/bootstrap/profiles', { name: 'spare', priority: 500, match: { vendor: 'nobody' }, spaces: [phase2.id] })).json();
    const before = JSON.stringify((await owner('GET', '/api/v1/bootstrap/profiles')).json());
    const bad = [
      [{ attestation: 'tpm2' }, 422, 'pcrs'],
      [{ spaces: ['no-such-space'] }, 422, 'spaces[0]'],
      [{ name: 'sensors' }, 409, 'name'],
      [{ colour: 'red' }, 400, undefined],
      [{}, 400, undefined],
    ] as const;
    for (const [body, status, field] of bad) {
      const r = await patch('spare', body);
      expect(r.statusCode, r.body).toBe(status);
      if (field) expect(r.json().error.field).toBe(field);
    }
    expect((await patch('spare', { priority: 1 }, m.bob.token)).statusCode).toBe(404);
    expect(JSON.stringify((await owner('GET', '/api/v1/bootstrap/profiles')).json())).toBe(before);

    const r = await patch(made.id, { name: 'spare-2', spaces: [phase1.id, phase2.id], match: { vendor: 'nobody', class: 'x' } });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toEqual({ ...made, name: 'spare-2', spaces: [phase1.id, phase2.id], match: { vendor: 'nobody', class: 'x' } });
    expect((await owner('GET', '/api/v1/bootstrap/profiles/spare-2')).json()).toEqual(r.json());
    expect((await owner('GET', '/api/v1/bootstrap/profiles/spare')).statusCode).toBe(404);
  });

  it('a device that proves its voucher key becomes a metal in the profile\'s Spaces, gets its setup sealed to it, enrolls: waiting → attested → registered → enrolled', async () => {
    const d = await newDevice();
    const facts = factsOf();
    const { res, nonce, setupKey, helloBody } = await d.prove(facts);
    expect(helloBody.attestation).toEqual({ verifier: 'software-key', pcrs: [] });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ guid: d.guid, status: 'registered' });
    // Only this device can open the setup, and only the voucher's owner key can have sealed it.
    const owner_ = verifyVoucherChain(d.v.voucher).currentOwner;
    const sealed = new Uint8Array(Buffer.from(res.json().setup, 'base64'));
    expect(() => openSetup(sealed, owner_, d.guidBytes, nonce, makeSetupKey())).toThrow(/does not decrypt/);
    const setup = parseDeviceSetup(openSetup(sealed, owner_, d.guidBytes, nonce, setupKey));
    expect(setup).toMatchObject({ metalId: res.json().metal, masterUrl: 'https://master.test:8443', estUrl: 'https://master.test:8443/.well-known/est', profile: 'sensors', agent: { pollIntervalSeconds: 30 } });
    expect(setup.caPem).toContain('BEGIN CERTIFICATE');

    const metal = (await owner('GET', `/api/v1/metals/${setup.metalId}`)).json();
    expect(metal.interfaces).toEqual([expect.objectContaining({ name: 'eth0', mac: facts.interfaces[0]!.mac, pxe: true })]);
    expect(metal.labels).toMatchObject({ vendor: 'acme', class: 'sensor', 'onboarding/guid': d.guid, 'onboarding/profile': 'sensors' });
    const members = await m.db.selectFrom('space_members').selectAll().where('metal_id', '=', setup.metalId).execute();
    expect(members.map((x) => [x.space_id, Boolean(x.is_default)]).sort()).toEqual([[phase1.id, true], [phase2.id, false]].sort());
    expect((await record(d.guid)).status).toBe('registered');
    expect((await owner('GET', `/api/v1/vouchers/${d.guid}`)).json().status).toBe('onboarded');

    // EST with the secret the device received: the record becomes enrolled.
    const csr = await makeCsr({ uris: [`urn:tips:metal:${setup.metalId}`] });
    await m.services.enrollment.enroll({ id: setup.enrollment.secretId, secret: setup.enrollment.secret }, csr.der);
    const rec = await record(d.guid);
    expect(rec).toMatchObject({ status: 'enrolled', metal: setup.metalId, enrollmentSecret: setup.enrollment.secretId, profile: { name: 'sensors' }, verifier: 'software-key' });
    expect(rec.events.map((e: { status: string }) => e.status)).toEqual(['waiting', 'attested', 'registered', 'enrolled']);
    expect(JSON.stringify(rec)).not.toContain(setup.enrollment.secret);

    // Replayed / already-used voucher: refused, nothing created, the refusal is in the record.
    const before = await created();
    const again = await d.hello(facts);
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('voucher_used');
    expect(await created()).toBe(before);
    const after = await record(d.guid);
    expect(after.status).toBe('enrolled');
    expect(after.events.at(-1)).toMatchObject({ status: 'failed', reason: expect.stringContaining('voucher_used') });
    const metrics = (await m.app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/tips_master_onboardings_total\{result="registered"\} [1-9]/);
    expect(metrics).toMatch(/tips_master_onboardings_total\{result="enrolled"\} [1-9]/);
    expect(metrics).toMatch(/tips_master_onboardings_total\{result="voucher_used"\} [1-9]/);
  });

  it('a different device key, a stale nonce, facts other than those sent at hello: each refused with its reason, nothing created', async () => {
    const d = await newDevice();
    const facts = factsOf();
    const before = await created();
    const cases: [Parameters<typeof d.prove>[1], RegExp][] = [
      [{ key: p256().privateKey }, /did not prove possession of the key its voucher binds/],
      [{ nonce: new Uint8Array(16).fill(7) }, /stale nonce/],
      [{ signedFacts: factsOf() }, /does not sign the device facts sent at hello/],
    ];
    for (const [o, reason] of cases) {
      const { res } = await d.prove(facts, o);
      expect(res.statusCode, res.body).toBe(401);
      expect(res.json().error).toMatchObject({ code: 'attestation_failed', message: expect.stringMatching(reason) });
      const rec = await record(d.guid);
      expect(rec.status).toBe('failed');
      expect(rec.reason).toMatch(reason);
      expect(await created()).toBe(before);
    }
    // A nonce that was good once is stale the second time.
    const ok = await d.prove(facts);
    expect(ok.res.statusCode, ok.res.body).toBe(200);
    const replay = await post('/api/onboarding/v1/prove', { guid: d.guid, nonce: b64(ok.nonce), proof: b64(signProof(d.v.device.privateKey, 'tips-to2-device', [d.guidBytes, ok.nonce, deviceFactsDigest(facts), makeSetupKey().publicRaw])) });
    expect(replay.json().error.code).toBe('attestation_failed');
    expect(replay.json().error.message).toMatch(/stale nonce/);
  });

  it('an unknown GUID, no matching profile, a MAC another metal has: refused, nothing created', async () => {
    const before = await created();
    const unknown = await post('/api/onboarding/v1/hello', { guid: '00000000-0000-0000-0000-000000000001', nonce: b64(randomBytes(16)), device: factsOf() });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.code).toBe('guid_unknown');
    const other = await newDevice({ deviceInfo: 'vendor=globex;class=camera' });
    const none = await other.hello(factsOf());
    expect(none.statusCode).toBe(422);
    expect(none.json().error.code).toBe('no_profile');
    expect((await record(other.guid)).reason).toMatch(/no_profile: no bootstrapping profile matches this device \(vendor=globex;class=camera/);
    const small = await newDevice();
    expect((await small.hello({ ...factsOf(), ramMb: 512 })).json().error.code).toBe('no_profile');
    expect(await created()).toBe(before);

    const taken = (await owner('POST', '/api/v1/metals', { name: 'declared', interfaces: [{ name: 'eth0', mac: '02:00:00:00:aa:01', type: 'ethernet' }] })).json();
    const mid = await created();
    const clash = await newDevice();
    const { res } = await clash.prove(factsOf('02:00:00:00:aa:01'));
    expect(res.statusCode).toBe(422);
    expect(res.json().error.code).toBe('registration_failed');
    expect((await record(clash.guid)).reason).toMatch(/registration_failed: the device cannot become a metal/);
    expect(await created()).toBe(mid);
    expect(taken.id).toBeTruthy();
  });

  it('vouchers with a broken link or ending at another owner: import refused, the reason in a failed record, nothing created', async () => {
    const before = await created();
    const v = voucherFor(ownerKeyPem, { hops: 3 });
    const broken = Uint8Array.from(v.voucher);
    broken[broken.length - 2]! ^= 1;
    const r1 = await owner('POST', '/api/v1/vouchers', { vouchers: [b64(broken)] });
    expect(r1.statusCode).toBe(422);
    const g1 = guidToString(decodeVoucher(v.voucher).header.guid);
    expect((await record(g1)).reason).toMatch(/voucher refused: entry_signature_invalid/);
    const foreign = voucherFor(p256().publicKey);
    const r2 = await owner('POST', '/api/v1/vouchers', { vouchers: [b64(foreign.voucher)] });
    expect(r2.json().error.code).toBe('voucher_wrong_owner');
    expect((await record(guidToString(decodeVoucher(foreign.voucher).header.guid))).reason).toMatch(/voucher refused: voucher_wrong_owner/);
    expect(await created()).toBe(before);
    const failed = (await owner('GET', '/api/v1/onboardings?status=failed')).json().items;
    expect(failed.length).toBeGreaterThanOrEqual(2);
    expect((await m.app.inject({ method: 'GET', url: `/api/v1/onboardings/${g1}`, headers: m.auth(m.bob.token) })).statusCode).toBe(404);
  });
});
