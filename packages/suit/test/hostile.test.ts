import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CborMap,
  CborTag,
  type CborValue,
  componentKey,
  decodeCbor,
  decodeCoseSingle,
  decodeEnvelope,
  decodeReport,
  encodeCbor,
  encodeEnvelope,
  importKey,
  SUIT_ERROR_CODES,
  SuitError,
  coseSign1Sign,
  digestWith,
  wrapBstr,
  symmetricKey,
  verifyEnvelope,
  verifyEnvelopeResult,
  type VerifyOptions,
} from '../src/index.ts';
import { HMAC_KEY, LIBCSUIT_FILES, SPEC_PRIVATE_PEM, specExampleHex, TRUST_ANCHOR_PEM, vector } from './helpers.ts';

const trust = [importKey(TRUST_ANCHOR_PEM), symmetricKey(HMAC_KEY)];
const example0 = specExampleHex(0).at(-1)!;
const VENDOR = new Uint8Array(Buffer.from('fa6b4a53d5ad5fdfbe9de663e4d41ffe', 'hex'));
const CLASS = new Uint8Array(Buffer.from('1492af1425695e48bf429b2d51f2ab45', 'hex'));

/**
 * Verifies and returns 'accepted' or the error code. Calls the throwing API so that anything other
 * than a SuitError (a TypeError from a parser bug, say) fails the test instead of being wrapped.
 */
async function codeOf(bytes: Uint8Array, options: Partial<VerifyOptions> = {}): Promise<string> {
  try {
    await verifyEnvelope(bytes, { trust, ...options });
    return 'accepted';
  } catch (e) {
    expect(e).toBeInstanceOf(SuitError);
    const code = (e as SuitError).code;
    expect(SUIT_ERROR_CODES).toContain(code);
    expect(code).not.toBe('suit_operation_failed');
    return code;
  }
}

/** Rebuilds example 0 with a changed envelope or manifest map, re-signed with the spec key. */
function variant(mutate: (manifest: CborMap) => void, sign = true): Uint8Array {
  const env = decodeCbor(example0) as CborTag;
  const m = env.value as CborMap;
  const manifest = decodeCbor(m.get(3) as Uint8Array) as CborMap;
  mutate(manifest);
  const manifestBytes = encodeCbor(manifest);
  // Signed by hand (not through signEnvelope, which refuses to decode these manifests).
  const digestBytes = encodeCbor([-16, digestWith(-16, wrapBstr(manifestBytes))]);
  const blocks = sign ? [coseSign1Sign({ protectedHeaders: new Map([[1, -7]]), payload: digestBytes, detached: true }, importKey(SPEC_PRIVATE_PEM))] : [];
  const out = new Map<CborValue, CborValue>([
    [2, encodeCbor([digestBytes, ...blocks])],
    [3, manifestBytes],
  ]);
  return encodeCbor(new CborTag(107, out));
}

describe('S1/S3 hostile envelopes are rejected with the right code, nothing escapes', () => {
  it('example 0 itself is accepted (baseline)', async () => {
    expect(await codeOf(example0)).toBe('accepted');
  });

  it('every single-bit and whole-byte flip at every offset of example 0 is rejected', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < example0.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const b = new Uint8Array(example0);
        b[i] = b[i]! ^ mask;
        const code = await codeOf(b);
        expect(code, `offset ${i} mask ${mask}`).not.toBe('accepted');
        seen.add(code);
      }
    }
    // Flips land in the CBOR structure, the manifest, the digest and the signature alike.
    for (const c of ['suit_digest_mismatch', 'suit_signature_invalid', 'cbor_trailing_bytes']) expect(seen).toContain(c);
  });

  it('truncation at every offset of example 0 is rejected as truncated input', async () => {
    for (let n = 0; n < example0.length; n++) {
      const code = await codeOf(example0.subarray(0, n));
      expect(['cbor_truncated', 'cbor_length_exceeds_input']).toContain(code);
    }
  });

  it('a key that is not in the trust list: suit_signature_invalid (same kind) or suit_untrusted_key (other kind)', async () => {
    const other = importKey(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey);
    expect(await codeOf(example0, { trust: [other] })).toBe('suit_signature_invalid');
    const ed = importKey(generateKeyPairSync('ed25519').publicKey);
    expect(await codeOf(example0, { trust: [ed] })).toBe('suit_untrusted_key');
    expect(await codeOf(example0, { trust: [] })).toBe('suit_untrusted_key');
  });

  it('a validly signed digest over another manifest: suit_digest_mismatch', async () => {
    const env = decodeEnvelope(example0);
    env.manifestBytes = decodeEnvelope(specExampleHex(1).at(-1)!).manifestBytes;
    env.manifest = decodeEnvelope(specExampleHex(1).at(-1)!).manifest;
    expect(await codeOf(encodeEnvelope(env))).toBe('suit_digest_mismatch');
  });

  it('an envelope without signatures: suit_unsigned', async () => {
    expect(await codeOf(specExampleHex(0)[0]!)).toBe('suit_unsigned');
    expect(await codeOf(variant(() => {}, false))).toBe('suit_unsigned');
  });

  it('S4 rollback: equal or lower sequence numbers are refused, per component', async () => {
    const seq3 = specExampleHex(3).at(-1)!; // sequence number 3
    expect(await codeOf(seq3, { currentSeq: 3 })).toBe('suit_rollback');
    expect(await codeOf(seq3, { currentSeq: 4 })).toBe('suit_rollback');
    expect(await codeOf(seq3, { currentSeq: 2 })).toBe('accepted');
    const comp = componentKey([new Uint8Array([0])]);
    const store = { get: async (k: string) => (k === comp ? 3 : undefined) };
    expect(await codeOf(seq3, { sequenceStore: store })).toBe('suit_rollback');
    expect(await codeOf(seq3, { sequenceStore: { get: () => 2n } })).toBe('accepted');
    expect(await codeOf(seq3, { sequenceStore: { get: () => undefined } })).toBe('accepted');
  });

  it('S3 vendor, class and component policy', async () => {
    const other = new Uint8Array(16).fill(7);
    expect(await codeOf(example0, { device: { vendorId: VENDOR, classId: CLASS } })).toBe('accepted');
    expect(await codeOf(example0, { device: { vendorId: other, classId: CLASS } })).toBe('suit_vendor_mismatch');
    expect(await codeOf(example0, { device: { vendorId: VENDOR, classId: other } })).toBe('suit_class_mismatch');
    expect(await codeOf(example0, { device: { components: [[new Uint8Array([0])]] } })).toBe('accepted');
    expect(await codeOf(example0, { device: { components: [[new Uint8Array([1])]] } })).toBe('suit_component_not_allowed');
    // A manifest that names no vendor is not for a device that requires one.
    const noVendor = vector('libcsuit', 'suit_manifest_expS0.suit');
    expect(await codeOf(noVendor)).toBe('accepted');
    expect(await codeOf(noVendor, { device: { vendorId: VENDOR } })).toBe('suit_vendor_mismatch');
  });

  it('strict decoding of signed structures: duplicate keys, indefinite lengths, non-minimal ints, unknown keys, wrong types', async () => {
    const body = example0.subarray(2); // the envelope map without its tag
    // duplicate manifest key in the envelope map
    const dup = new Uint8Array([0xd8, 0x6b, 0xa3, ...body.subarray(1), 0x03, 0x40]);
    expect(await codeOf(dup)).toBe('cbor_duplicate_key');
    // indefinite-length envelope map
    expect(await codeOf(new Uint8Array([0xd8, 0x6b, 0xbf, ...body.subarray(1), 0xff]))).toBe('cbor_indefinite_length');
    // non-minimal tag argument
    expect(await codeOf(new Uint8Array([0xd9, 0x00, 0x6b, ...body]))).toBe('cbor_non_minimal');
    // trailing garbage after the envelope
    expect(await codeOf(new Uint8Array([...example0, 0x00]))).toBe('cbor_trailing_bytes');
    // wrong tag
    expect(await codeOf(new Uint8Array([0xd8, 0x6c, ...body]))).toBe('suit_bad_tag');
    // unknown critical manifest key, validly signed
    expect(await codeOf(variant((m) => m.set(99, 1)))).toBe('suit_unknown_critical_key');
    // unknown envelope key
    const env = decodeCbor(example0) as CborTag;
    (env.value as CborMap).set(99, new Uint8Array(0));
    expect(await codeOf(encodeCbor(env))).toBe('suit_unknown_critical_key');
    // wrong types, validly signed
    expect(await codeOf(variant((m) => m.set(2, 'seven')))).toBe('suit_bad_type');
    expect(await codeOf(variant((m) => m.set(3, [1])))).toBe('suit_bad_type');
    expect(await codeOf(variant((m) => m.set(1, 2)))).toBe('suit_unsupported_version');
    expect(await codeOf(variant((m) => m.delete(3)))).toBe('suit_missing_member');
    expect(await codeOf(variant((m) => m.set(7, encodeCbor([3]))))).toBe('suit_bad_type');
    expect(await codeOf(variant((m) => m.set(7, encodeCbor([3, 'x']))))).toBe('suit_bad_type');
  });

  it('nesting bombs and huge lengths inside the signed manifest are stopped', async () => {
    const deepTry = (n: number): Uint8Array => (n === 0 ? encodeCbor([14, 0]) : encodeCbor([15, [deepTry(n - 1)]]));
    expect(await codeOf(variant((m) => m.set(7, deepTry(20))))).toBe('suit_bad_value');
    expect(await codeOf(variant((m) => m.set(7, deepTry(3))))).toBe('accepted');
    const bomb = new Uint8Array([...new Array(5000).fill(0x81), 0x00]);
    expect(await codeOf(new Uint8Array([0xd8, 0x6b, 0xa1, 0x03, 0x59, 0x13, 0x89, ...bomb]))).toBe('cbor_too_deep');
    expect(await codeOf(new Uint8Array([0xd8, 0x6b, 0xa1, 0x03, 0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).toBe('cbor_length_exceeds_input');
    expect(await codeOf(new Uint8Array([0xd8, 0x6b, 0xba, 0xff, 0xff, 0xff, 0xff]))).toBe('cbor_length_exceeds_input');
  });

  it('a severed member supplied for a member that is not severed: suit_severed_mismatch', async () => {
    const env = decodeCbor(vector('libcsuit', 'suit_manifest_exp0.suit')) as CborTag;
    (env.value as CborMap).set(20, encodeCbor([12, 0]));
    expect(await codeOf(encodeCbor(env))).toBe('suit_severed_mismatch');
  });
});

describe('S1 fuzz: thousands of mutated envelopes, no crash, no accept (fast-check)', () => {
  const seeds = [example0, specExampleHex(2).at(-1)!, ...LIBCSUIT_FILES.map((f) => vector('libcsuit', f))];
  const mutation = fc.record({
    seed: fc.integer({ min: 0, max: seeds.length - 1 }),
    edits: fc.array(
      fc.record({
        kind: fc.constantFrom('flip', 'set', 'insert', 'delete', 'truncate'),
        at: fc.nat(),
        value: fc.integer({ min: 0, max: 255 }),
      }),
      { minLength: 1, maxLength: 4 },
    ),
  });

  it('mutated vectors are never accepted and every failure is a typed SuitError', async () => {
    await fc.assert(
      fc.asyncProperty(mutation, async ({ seed, edits }) => {
        const original = seeds[seed]!;
        let b = Array.from(original);
        for (const e of edits) {
          const at = b.length === 0 ? 0 : e.at % b.length;
          if (e.kind === 'flip') b[at] = (b[at] ?? 0) ^ (1 << (e.value % 8));
          else if (e.kind === 'set') b[at] = e.value;
          else if (e.kind === 'insert') b.splice(at, 0, e.value);
          else if (e.kind === 'delete') b.splice(at, 1);
          else b = b.slice(0, at);
        }
        const bytes = new Uint8Array(b);
        const r = await verifyEnvelopeResult(bytes, { trust });
        if (Buffer.compare(Buffer.from(bytes), Buffer.from(original)) === 0) return;
        // verifyEnvelopeResult wraps foreign exceptions as suit_operation_failed: none may occur.
        if (!r.ok) expect(r.error.code).not.toBe('suit_operation_failed');
        if (r.ok) {
          // The only acceptable "accept": the mutation hit a byte outside what is signed and the
          // envelope is still well-formed, e.g. an integrated payload or the COSE unprotected map.
          const a = decodeEnvelope(bytes);
          const o = decodeEnvelope(original);
          expect(Buffer.compare(Buffer.from(a.manifestBytes), Buffer.from(o.manifestBytes))).toBe(0);
          return;
        }
        expect(SUIT_ERROR_CODES).toContain(r.error.code);
      }),
      { numRuns: 4000 },
    );
  });

  it('random CBOR under the envelope tag never crashes the verifier', async () => {
    const anyCbor = fc.letrec<{ v: CborValue }>((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        fc.integer({ min: -30, max: 30 }),
        fc.uint8Array({ maxLength: 8 }),
        fc.string({ maxLength: 4 }),
        fc.constant(null),
        fc.array(tie('v'), { maxLength: 4 }),
        fc.uniqueArray(fc.tuple(fc.integer({ min: -2, max: 25 }), tie('v')), { maxLength: 5, selector: (t) => t[0] }).map((e) => new Map<CborValue, CborValue>(e)),
        tie('v').map((v) => encodeCbor(v)),
      ),
    })).v;
    await fc.assert(
      fc.asyncProperty(anyCbor, anyCbor, async (manifest, auth) => {
        const env = new Map<CborValue, CborValue>([
          [2, encodeCbor(auth)],
          [3, encodeCbor(manifest)],
        ]);
        expect(await codeOf(encodeCbor(new CborTag(107, env)))).not.toBe('accepted');
      }),
      { numRuns: 1500 },
    );
  });

  it('the other parsers (COSE, COSE_Key, SUIT_Report) only ever fail with a SuitError', () => {
    const parsers = [decodeCoseSingle, (b: Uint8Array) => importKey(b), decodeReport];
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 80 }), fc.constantFrom(...seeds.slice(0, 3)).map((s) => s.subarray(2))), fc.nat(), (bytes, pick) => {
        const parse = parsers[pick % parsers.length]!;
        try {
          parse(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(SuitError);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('the HMAC-authenticated vectors reject a MAC under another key', async () => {
    const other = symmetricKey(new Uint8Array(32).fill(0x62));
    await expect(verifyEnvelope(vector('libcsuit', 'suit_manifest_expAW.suit'), { trust: [other] })).rejects.toMatchObject({ code: 'suit_signature_invalid' });
  });
});
