import { createHash, generateKeyPairSync } from 'node:crypto';
import { decode as cborgDecode } from 'cborg';
import type { TagDecoder } from 'cborg/interface';
import { describe, expect, it } from 'vitest';
import {
  bindGlaze,
  buildEnvelope,
  classIdFrom,
  componentKey,
  type CoseKey,
  decodeEnvelope,
  decodeReport,
  encodeReport,
  exportCoseKey,
  generateSigningKey,
  importKey,
  MemoryDevice,
  reportFromError,
  reportFromRun,
  runManifest,
  SuitError,
  signEnvelope,
  signReport,
  symmetricKey,
  uuid5,
  uuidToString,
  vendorIdFromDomain,
  verifyEnvelope,
  verifyGlazeBinding,
  verifyReport,
} from '../src/index.ts';

const payload = new Uint8Array(Buffer.from('glaze payload: an OS image for a metal'.repeat(100)));
const sha = new Uint8Array(createHash('sha256').update(payload).digest());
const component = 'rootfs';
const vendorId = vendorIdFromDomain('tips.example');
const classId = classIdFrom(vendorId, 'pi4-phase1');

/** cborg, as the independent decoder: tags kept as { tag, value }. */
function independentDecode(bytes: Uint8Array): unknown {
  const tags: TagDecoder[] = [];
  for (const t of [107, 18, 17]) tags[t] = (decode) => ({ tag: t, value: decode() });
  return cborgDecode(bytes, { tags, useMaps: true, rejectDuplicateMapKeys: true, strict: true });
}

describe('S1/S8 uuid5 identifiers match the specification examples', () => {
  it('vendor ID of arm.com and class ID of "suit" are the ones in the spec examples', () => {
    const v = vendorIdFromDomain('arm.com');
    expect(uuidToString(v)).toBe('fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe');
    expect(uuidToString(classIdFrom(v, 'suit'))).toBe('1492af14-2569-5e48-bf42-9b2d51f2ab45');
    // RFC 9562 appendix A.4's example: UUIDv5 of "www.example.com" in the DNS namespace.
    expect(uuidToString(uuid5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'www.example.com'))).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2');
  });
});

describe('S1/S2/S8 builder: both delivery modes, signed, verified, readable by an independent decoder', () => {
  const keys: [string, CoseKey][] = [
    ['ES256', generateSigningKey('es256').key],
    ['Ed25519', generateSigningKey('ed25519').key],
  ];
  for (const [name, key] of keys) {
    it(`integrated payload, ${name}: verifies, passes policy, installs on a device`, async () => {
      const env = buildEnvelope({ vendorDomain: 'tips.example', classInfo: 'pi4-phase1', component, sequenceNumber: 7, payload, delivery: { mode: 'integrated' }, text: 'Phase 1 Glaze', key, invoke: true });
      const v = await verifyEnvelope(env, { trust: [{ publicKey: key.publicKey! }], currentSeq: 6, device: { vendorId, classId, components: [[new Uint8Array(Buffer.from(component))]] } });
      expect(v.manifest.sequenceNumber).toBe(7);
      const dev = new MemoryDevice([[new Uint8Array(Buffer.from(component))]], { vendorId, classId });
      const run = await runManifest(v, dev);
      expect(run.failure).toBeUndefined();
      expect(run.ok).toBe(true);
      expect(Buffer.from(dev.read([new Uint8Array(Buffer.from(component))])!).equals(Buffer.from(payload))).toBe(true);
      expect(dev.invoked).toEqual([componentKey([new Uint8Array(Buffer.from(component))])]);
      expect(dev.fetched).toEqual([]);

      const ind = independentDecode(env) as { tag: number; value: Map<unknown, unknown> };
      expect(ind.tag).toBe(107);
      expect(ind.value.get('#payload')).toEqual(payload);
      const manifest = cborgDecode(ind.value.get(3) as Uint8Array, { useMaps: true, strict: true }) as Map<number, unknown>;
      expect(manifest.get(2)).toBe(7);
    });
  }

  it('URI delivery (manifest alone, payload fetched): the device fetches and checks the digest', async () => {
    const { key } = generateSigningKey('es256');
    const uri = 'https://glazes.tips.example/g/1';
    const env = buildEnvelope({ vendorId, classId, component, sequenceNumber: 1, payload, delivery: { mode: 'uri', uri }, key });
    expect(decodeEnvelope(env).integrated.size).toBe(0);
    const v = await verifyEnvelope(env, { trust: [key], device: { vendorId, classId } });
    const comp = [new Uint8Array(Buffer.from(component))];
    const good = new MemoryDevice([comp], { vendorId, classId }, new Map([[uri, payload]]));
    expect((await runManifest(v, good)).ok).toBe(true);
    expect(good.fetched).toEqual([uri]);
    // A server that hands out other bytes: the image-match condition fails with its reason code.
    const evil = new MemoryDevice([comp], { vendorId, classId }, new Map([[uri, new Uint8Array(payload.length)]]));
    const r = await runManifest(v, evil);
    expect(r.ok).toBe(false);
    expect(r.failure).toMatchObject({ code: 'suit_condition_failed', reason: 10, section: 20 });
  });

  it('severed text travels in the envelope and matches its digest', async () => {
    const { key } = generateSigningKey('ed25519');
    const env = buildEnvelope({ vendorId, classId, component, sequenceNumber: 2, payload, delivery: { mode: 'integrated' }, text: 'release notes', severText: true, key });
    const v = await verifyEnvelope(env, { trust: [key] });
    expect(v.manifest.severable.get(23)?.severed).toBe(true);
    expect(v.members.get(23)?.severed).toBe(false);
  });

  it('sign: an unsigned envelope gets a signature; a second signer is appended; a symmetric key adds a COSE_Mac0', async () => {
    const a = generateSigningKey('es256').key;
    const b = generateSigningKey('ed25519').key;
    const unsigned = buildEnvelope({ vendorId, classId, component, sequenceNumber: 3, payload, delivery: { mode: 'integrated' } });
    await expect(verifyEnvelope(unsigned, { trust: [a] })).rejects.toMatchObject({ code: 'suit_unsigned' });
    const once = signEnvelope(unsigned, a);
    const twice = signEnvelope(once, b);
    expect(decodeEnvelope(twice).authentication!.blocks.length).toBe(2);
    await expect(verifyEnvelope(twice, { trust: [b] })).resolves.toBeTruthy();
    await expect(verifyEnvelope(twice, { trust: [a] })).resolves.toBeTruthy();
    const mac = signEnvelope(unsigned, symmetricKey(new Uint8Array(32).fill(1)));
    await expect(verifyEnvelope(mac, { trust: [symmetricKey(new Uint8Array(32).fill(1))] })).resolves.toBeTruthy();
  });

  it('keys import from PEM, JWK and COSE_Key alike', async () => {
    const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const env = buildEnvelope({ vendorId, classId, component, sequenceNumber: 4, payload, delivery: { mode: 'integrated' }, key: importKey(pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()) });
    const fromPem = importKey(pair.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    const fromJwk = importKey(pair.publicKey.export({ format: 'jwk' }));
    const fromCose = importKey(exportCoseKey(fromPem));
    for (const k of [fromPem, fromJwk, fromCose]) await expect(verifyEnvelope(env, { trust: [k] })).resolves.toBeTruthy();
    expect(() => importKey('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----')).toThrow(SuitError);
  });

  it('bad inputs are typed errors naming the field', () => {
    expect(() => buildEnvelope({ component, sequenceNumber: 1, payload, delivery: { mode: 'integrated' } })).toThrow(/vendorDomain/);
    expect(() => buildEnvelope({ vendorId, classId, component, sequenceNumber: -1, payload, delivery: { mode: 'integrated' } })).toThrow(/sequenceNumber/);
    expect(() => buildEnvelope({ vendorId, classId, component, sequenceNumber: 1, delivery: { mode: 'integrated' } })).toThrow(/payload/);
  });
});

describe('T12 Glaze binding: the envelope image-digest is the Glaze SHA-256', () => {
  it('bindGlaze builds a signed URI envelope that verifyGlazeBinding accepts only for that digest', () => {
    const { key } = generateSigningKey('es256');
    const hex = Buffer.from(sha).toString('hex');
    const env = bindGlaze({ payloadSha256: hex, payloadSize: payload.length, uri: 'https://m/glazes/1/payload', vendorId, classId, component, sequenceNumber: 10, key });
    verifyGlazeBinding(env, hex);
    verifyGlazeBinding(env, sha, { trust: [key] });
    expect(() => verifyGlazeBinding(env, 'ab'.repeat(32))).toThrow(expect.objectContaining({ code: 'glaze_digest_mismatch' }));
    expect(() => verifyGlazeBinding(env, hex, { trust: [generateSigningKey('es256').key] })).toThrow(expect.objectContaining({ code: 'suit_signature_invalid' }));
    expect(() => bindGlaze({ payloadSha256: 'xyz', payloadSize: 1, uri: 'u', vendorId, classId, component, sequenceNumber: 1, key })).toThrow(/payloadSha256/);
  });
});

describe('D1/S12 signed SUIT reports', () => {
  it('a run becomes a report the device signs and the master verifies and decodes', async () => {
    const author = generateSigningKey('es256').key;
    const device = generateSigningKey('ed25519').key;
    const env = buildEnvelope({ vendorId, classId, component, sequenceNumber: 5, payload, delivery: { mode: 'uri', uri: 'https://x/y' }, key: author });
    const v = await verifyEnvelope(env, { trust: [author] });
    const dev = new MemoryDevice([[new Uint8Array(Buffer.from(component))]], { vendorId, classId }, new Map());
    const run = await runManifest(v, dev);
    expect(run.ok).toBe(false);
    const report = reportFromRun(v, run, { nonce: new Uint8Array([1, 2, 3]) });
    const signed = signReport(report, device);
    const back = verifyReport(signed, [{ publicKey: device.publicKey! }]);
    expect(back.result).not.toBe(true);
    if (back.result !== true) expect(back.result.reason).toBe(11);
    expect(back.reference.digest).toEqual(v.manifestDigest);
    expect(back.records.length).toBeGreaterThan(0);
    expect(encodeReport(back)).toEqual(encodeReport(report));
    expect(() => verifyReport(signed, [{ publicKey: author.publicKey! }])).toThrow(SuitError);
  });

  it('a failure before running (rollback) is reported with the unauthorised reason', () => {
    const r = reportFromError(new SuitError('suit_rollback', 'x'), { uri: '', digest: { alg: -16, bytes: sha } });
    const back = decodeReport(encodeReport(r));
    expect(back.result).toMatchObject({ reason: 4 });
    expect(() => decodeReport(new Uint8Array([0xa1, 0x01, 0x00]))).toThrow(expect.objectContaining({ code: 'report_bad_structure' }));
  });

  it('cborg reads a report', () => {
    const r = reportFromError(new SuitError('suit_vendor_mismatch', 'x'), { uri: 'coap://m/x', digest: { alg: -16, bytes: sha } });
    const m = cborgDecode(encodeReport(r), { useMaps: true }) as Map<number, unknown>;
    expect((m.get(99) as unknown[])[0]).toBe('coap://m/x');
  });
});
