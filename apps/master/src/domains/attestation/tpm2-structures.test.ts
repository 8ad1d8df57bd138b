import { createHash, verify } from 'node:crypto';
import { encodeCbor } from '@tips/suit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeTpm2Evidence, objectName, publicKeyOf, Tpm2EvidenceError, tpm2Verifier } from './tpm2.ts';
import { parseTpm2bPublic, parseTpmsAttest, parseTpmtSignature, TPMA_OBJECT, Tpm2FormatError } from './tpm2-structures.ts';

// Bytes a real TPM made (swtpm 0.8 + tpm2-tools 5.4): an AK from `tpm2_createak -G ecc -s ecdsa`,
// the device key `tips factory device create --tpm` makes, a quote over PCRs 0,1,7,16 with
// qualifying data 00112233…eeff ×2, and `tpm2_certify` of the device key by the AK.
const h = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const AK = h('00580023000b00050072000000100018000b00030010002055c43c37c76d8c46e265123f12ac71f40b37faf1c08bf31b62beffa9cedeee7b0020ec552fed356c291057cea44a6e2404a824d7fefeffdaab2742ff26ba412a9d39');
const DEVICE = h('00580023000b00040072000000100018000b00030010002095c0a205a62590b4bc3bfbde166ec31ce72e8f26bfb1ccdc53dc5e77e5c9a72f0020b9dd7a7a4691c97c941f85b8a18f99a79874f45dac645f7c997cac5dc05bc413');
const QUOTE = h('ff54434780180022000bab1c40ec731d588a76187295a5bb7eebd694864f9fa81f289b99862c23139acc002000112233445566778899aabbccddeeff00112233445566778899aabbccddeeff000000000000604a000000010000000001201910230016363600000001000b03830001002038723a2e5e8a17aa7950dc008209944e898f69a7bd10a23c839d341e935fd5ca');
const QUOTE_SIG = h('0018000b0020a78121c76fb1be71d46ffef682ce08fd4dd521251a372091109ce682ea1b12850020da8fed1a9107f3101f4f62376b83d89c885f94a29de8c42f6aa044493a578fd6');
const CERTIFY = h('ff54434780170022000bab1c40ec731d588a76187295a5bb7eebd694864f9fa81f289b99862c23139acc000400ff55aa000000000000822300000001000000000120191023001636360022000b5bfc1e987979f7404fc09e5139f6a8bf7dfeb7bf93248fbaf3a41ebc63847af70022000b3b57c84ea884cbc6a0ac3334ee3e6f995bb793550947da921e12a750adc267b8');
const CERTIFY_SIG = h('0018000b0020558643aa3c41d1f212ee8348340e4e57770e00eb7dd0b2a78c3952b8dcde67780020711f08460358c0a2875bc29837cbb13da82d84f7c0b41a5168e077bb6ec5b062');

const p1363 = (sig: ReturnType<typeof parseTpmtSignature>) => {
  if (sig.alg !== 'ecdsa') throw new Error('expected ecdsa');
  return Buffer.concat([Buffer.alloc(32 - sig.r.length), sig.r, Buffer.alloc(32 - sig.s.length), sig.s]);
};

describe('Z2 TPM 2.0 structures: strict parsers over bytes a real TPM made', () => {
  it('TPM2B_PUBLIC of an AK: restricted ECDSA P-256 signer, fixedTPM; its Name is what the TPM reported', () => {
    const ak = parseTpm2bPublic(AK);
    expect(ak.key.type).toBe('ecc');
    for (const a of ['fixedTPM', 'fixedParent', 'sensitiveDataOrigin', 'restricted', 'sign'] as const) expect(ak.attributes & TPMA_OBJECT[a]).toBeTruthy();
    expect(ak.attributes & TPMA_OBJECT.decrypt).toBe(0);
    expect(ak.scheme).toEqual({ alg: 0x18, hash: 0x0b });
    const dev = parseTpm2bPublic(DEVICE);
    expect(dev.attributes & TPMA_OBJECT.restricted).toBe(0);
    expect(publicKeyOf(dev).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });

  it('TPMS_ATTEST of a quote: magic, type, qualifying data, selection 0,1,7,16 (SHA-256), pcrDigest; the AK signature verifies', () => {
    const q = parseTpmsAttest(QUOTE);
    expect(q.type).toBe(0x8018);
    expect(Buffer.from(q.extraData).toString('hex')).toBe('00112233445566778899aabbccddeeff'.repeat(2));
    expect(q.quote?.selection).toEqual([{ hash: 0x0b, pcrs: [0, 1, 7, 16] }]);
    // All four PCRs were zero: the digest is SHA-256 over 4 × 32 zero bytes.
    expect(Buffer.from(q.quote!.pcrDigest).toString('hex')).toBe(createHash('sha256').update(Buffer.alloc(128)).digest('hex'));
    expect(q.clock.resetCount).toBe(1);
    const sig = parseTpmtSignature(QUOTE_SIG);
    const ak = publicKeyOf(parseTpm2bPublic(AK));
    expect(verify('sha256', QUOTE, { key: ak, dsaEncoding: 'ieee-p1363' }, p1363(sig))).toBe(true);
    const flipped = QUOTE.slice();
    flipped[60]! ^= 1;
    expect(verify('sha256', flipped, { key: ak, dsaEncoding: 'ieee-p1363' }, p1363(sig))).toBe(false);
  });

  it('TPMS_ATTEST of a certification names the device key (its Name = nameAlg ‖ SHA-256(TPMT_PUBLIC)), signed by the AK', () => {
    const c = parseTpmsAttest(CERTIFY);
    expect(c.type).toBe(0x8017);
    expect(Buffer.from(c.certify!.name)).toEqual(Buffer.from(objectName(parseTpm2bPublic(DEVICE))));
    expect(Buffer.from(c.qualifiedSigner)).toEqual(Buffer.from(parseTpmsAttest(QUOTE).qualifiedSigner));
    expect(verify('sha256', CERTIFY, { key: publicKeyOf(parseTpm2bPublic(AK)), dsaEncoding: 'ieee-p1363' }, p1363(parseTpmtSignature(CERTIFY_SIG)))).toBe(true);
  });

  it('refuses with a typed error naming what was expected: bad magic, unknown type, truncation, trailing bytes, unknown algorithms', () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(Tpm2FormatError);
        return `${(e as Tpm2FormatError).code}: ${(e as Error).message}`;
      }
      throw new Error('expected a refusal');
    };
    const badMagic = QUOTE.slice();
    badMagic[0] = 0;
    expect(code(() => parseTpmsAttest(badMagic))).toMatch(/^bad_magic: .*TPM_GENERATED_VALUE/);
    const badType = QUOTE.slice();
    badType[5] = 0x14; // TPM_ST_ATTEST_SESSION_AUDIT
    expect(code(() => parseTpmsAttest(badType))).toMatch(/^unexpected_type: .*0x8014/);
    expect(code(() => parseTpmsAttest(QUOTE.subarray(0, QUOTE.length - 1)))).toMatch(/^truncated: .*pcrDigest/);
    expect(code(() => parseTpmsAttest(new Uint8Array([...QUOTE, 0])))).toMatch(/^trailing_bytes/);
    expect(code(() => parseTpm2bPublic(new Uint8Array([...AK, 0])))).toMatch(/^trailing_bytes: TPM2B_PUBLIC/);
    const sha1Name = AK.slice();
    sha1Name[5] = 0x04;
    expect(code(() => parseTpm2bPublic(sha1Name))).toMatch(/^unsupported_algorithm: .*nameAlg/);
    const hmacSig = QUOTE_SIG.slice();
    hmacSig[1] = 0x05;
    expect(code(() => parseTpmtSignature(hmacSig))).toMatch(/^unsupported_algorithm: .*sigAlg 0x0005/);
  });

  it('fuzz: random and mutated bytes only ever give typed errors (never a crash, never an untyped throw)', () => {
    const seeds = [AK, DEVICE, QUOTE, QUOTE_SIG, CERTIFY, CERTIFY_SIG];
    const mutated = fc.tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat()).map(([s, edits, cut]) => {
      const b = s.slice(0, s.length - (cut % 4 === 0 ? cut % 7 : 0));
      for (const [at, v] of edits) if (b.length) b[at % b.length] = v;
      return b;
    });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated), (bytes) => {
        for (const parse of [parseTpm2bPublic, parseTpmsAttest, parseTpmtSignature]) {
          try {
            parse(bytes);
          } catch (e) {
            if (!(e instanceof Tpm2FormatError)) throw e;
          }
        }
        try {
          decodeTpm2Evidence(bytes);
        } catch (e) {
          if (!(e instanceof Tpm2EvidenceError)) throw e;
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('fuzz: the verifier answers every malformed evidence with { ok: false, reason }, never a throw', async () => {
    const good = new Map<string, unknown>([['ek', new Uint8Array(4)], ['ak', AK], ['credential', new Uint8Array(32)], ['akCertify', new Map([['attest', CERTIFY], ['signature', CERTIFY_SIG]])], ['device', DEVICE], ['quote', QUOTE], ['signature', QUOTE_SIG], ['pcrs', new Map([[0, new Uint8Array(32)]])]]);
    const base = encodeCbor(good as never);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), async (edits) => {
        const b = base.slice();
        for (const [at, v] of edits) b[at % b.length] = v;
        const r = await tpm2Verifier.verify(b, { nonce: new Uint8Array(32), deviceKeySpki: new Uint8Array(8), policy: {} });
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.reason.length).toBeGreaterThan(5);
      }),
      { numRuns: 500 },
    );
  });
});
