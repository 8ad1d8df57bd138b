import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type CborMap, CborTag, type CborValue, decodeCbor, encodeCbor } from '../src/cbor.ts';
import {
  ALG_ED25519,
  ALG_EDDSA,
  ALG_ES256,
  ALG_ES384,
  ALG_ESP256,
  ALG_HMAC_256_64,
  ALG_HMAC_256_256,
  coseAlg,
  coseKid,
  coseMac0Create,
  coseMac0Verify,
  coseSign1Sign,
  coseSign1Verify,
  coseVerify,
  computeMac,
  createSignature,
  decodeCoseSingle,
  encodeCoseSingle,
  parseCoseSingle,
  sigStructure,
  verifySignature,
} from '../src/cose.ts';
import { SuitError } from '../src/errors.ts';
import { type CoseKey, generateSigningKey, importKey, symmetricKey } from '../src/keys.ts';

const es = generateSigningKey('es256').key;
const ed = generateSigningKey('ed25519').key;
const secret = new Uint8Array(32).fill(0x61);
const mac = symmetricKey(secret);
const payload = new Uint8Array(Buffer.from('the claims or the manifest digest'));
const empty = new Uint8Array(0);
const K = (s: string) => new Uint8Array(Buffer.from(s));

/** The error code a call throws; fails the test when it throws something other than a SuitError. */
function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SuitError);
    return (e as SuitError).code;
  }
  return 'accepted';
}

/** A structure with any headers, correctly signed/MACed over its protected bytes (alg given explicitly). */
function forge(o: { type: 'sign1' | 'mac0'; alg: number; p: CborMap; u?: CborMap; key: CoseKey; data?: Uint8Array; tagged?: boolean; detached?: boolean }): Uint8Array {
  const pBytes = o.p.size === 0 ? empty : encodeCbor(o.p);
  const tbs = sigStructure(o.type === 'sign1' ? 'Signature1' : 'MAC0', pBytes, empty, o.data ?? payload);
  const tag = o.type === 'sign1' ? createSignature(o.alg, o.key.privateKey!, tbs) : computeMac(o.alg, o.key.secret!, tbs);
  const body: CborValue = [pBytes, o.u ?? new Map(), o.detached ? null : (o.data ?? payload), tag];
  return encodeCbor(o.tagged === false ? body : new CborTag(o.type === 'sign1' ? 18 : 17, body));
}

const m = (...e: [CborValue, CborValue][]): CborMap => new Map(e);

describe('S1 COSE alg protection (RFC 9052 §3.1): alg only in the unprotected bucket is refused', () => {
  it('a correctly signed COSE_Sign1 whose alg is only unprotected does not verify (ES256, EdDSA)', () => {
    for (const [alg, key] of [
      [ALG_ES256, es],
      [ALG_EDDSA, ed],
    ] as const) {
      const bytes = forge({ type: 'sign1', alg, p: m(), u: m([1, alg]), key });
      expect(codeOf(() => coseSign1Verify(bytes, [key]))).toBe('cose_bad_structure');
      expect(codeOf(() => coseVerify(bytes, [key]))).toBe('cose_bad_structure');
      // The same signature with alg protected verifies: the refusal is about where alg is.
      expect(codeOf(() => coseSign1Verify(forge({ type: 'sign1', alg, p: m([1, alg]), key }), [key]))).toBe('accepted');
    }
  });

  it('a COSE_Mac0 whose alg is only unprotected does not verify (a path could pick HMAC 256/64)', () => {
    const bytes = forge({ type: 'mac0', alg: ALG_HMAC_256_64, p: m([3, 0]), u: m([1, ALG_HMAC_256_64]), key: mac });
    expect(codeOf(() => coseMac0Verify(bytes, [mac]))).toBe('cose_bad_structure');
    expect(codeOf(() => coseMac0Verify(forge({ type: 'mac0', alg: ALG_HMAC_256_64, p: m([1, ALG_HMAC_256_64]), key: mac }), [mac]))).toBe('accepted');
  });

  it('coseAlg reads the protected bucket only; no alg at all and a non-integer alg are cose_alg_unsupported', () => {
    const c = decodeCoseSingle(forge({ type: 'sign1', alg: ALG_ES256, p: m(), u: m([1, ALG_ES256]), key: es }));
    expect(codeOf(() => coseAlg(c))).toBe('cose_bad_structure');
    expect(coseAlg(decodeCoseSingle(forge({ type: 'sign1', alg: ALG_ES256, p: m([1, ALG_ES256]), key: es })))).toBe(ALG_ES256);
    expect(codeOf(() => coseAlg(decodeCoseSingle(forge({ type: 'sign1', alg: ALG_ES256, p: m([3, 0]), key: es }))))).toBe('cose_alg_unsupported');
    expect(codeOf(() => coseAlg(decodeCoseSingle(forge({ type: 'sign1', alg: ALG_ES256, p: m([1, 'ES256']), key: es }))))).toBe('cose_alg_unsupported');
  });

  it('an untagged structure is typed by its protected alg only (an unprotected MAC alg does not make it a Mac0)', () => {
    expect(decodeCoseSingle(forge({ type: 'mac0', alg: ALG_HMAC_256_256, p: m([1, ALG_HMAC_256_256]), key: mac, tagged: false })).type).toBe('mac0');
    expect(decodeCoseSingle(forge({ type: 'sign1', alg: ALG_ES256, p: m([1, ALG_ES256]), key: es, tagged: false })).type).toBe('sign1');
    expect(decodeCoseSingle(forge({ type: 'mac0', alg: ALG_HMAC_256_256, p: m(), u: m([1, ALG_HMAC_256_256]), key: mac, tagged: false })).type).toBe('sign1');
    expect(decodeCoseSingle(forge({ type: 'mac0', alg: ALG_HMAC_256_256, p: m([1, 'x']), key: mac, tagged: false })).type).toBe('sign1');
    // An untagged Mac0 verifies as a Mac0 through the generic entry point.
    expect(coseVerify(forge({ type: 'mac0', alg: ALG_HMAC_256_256, p: m([1, ALG_HMAC_256_256]), key: mac, tagged: false }), [mac]).alg).toBe(ALG_HMAC_256_256);
  });
});

describe('S1 COSE header buckets and crit (RFC 9052 §3, §3.1)', () => {
  it('a label in both buckets is refused, whichever label it is', () => {
    for (const label of [1, 4, 3, 'x', -70000]) {
      const p = m([1, ALG_ES256]);
      p.set(label, label === 1 ? ALG_ES256 : K('a'));
      const bytes = forge({ type: 'sign1', alg: ALG_ES256, p, u: m([label, label === 1 ? ALG_ES256 : K('b')]), key: es });
      expect(codeOf(() => decodeCoseSingle(bytes)), String(label)).toBe('cose_bad_structure');
    }
    // Different labels in each bucket are fine.
    expect(codeOf(() => coseSign1Verify(forge({ type: 'sign1', alg: ALG_ES256, p: m([1, ALG_ES256]), u: m([4, K('k')]), key: es }), [es]))).toBe('accepted');
  });

  it('crit in the protected bucket naming understood labels verifies; an unknown critical label is refused', () => {
    const ok = forge({ type: 'sign1', alg: ALG_ES256, p: m([1, ALG_ES256], [2, [1, 3, 4, 5, 6]], [3, 0]), key: es });
    expect(codeOf(() => coseSign1Verify(ok, [es]))).toBe('accepted');
    // crit naming the crit label itself is understood too.
    expect(codeOf(() => coseSign1Verify(forge({ type: 'sign1', alg: ALG_ES256, p: m([1, ALG_ES256], [2, [2]]), key: es }), [es]))).toBe('accepted');
    for (const label of [99, -65537, 'exp', 0, 7]) {
      const bytes = forge({ type: 'sign1', alg: ALG_ES256, p: m([1, ALG_ES256], [2, [3, label]], [label, 1]), key: es });
      expect(codeOf(() => coseSign1Verify(bytes, [es])), String(label)).toBe('cose_unknown_critical_header');
    }
  });

  it('crit must be a non-empty array, and never in the unprotected bucket', () => {
    expect(codeOf(() => decodeCoseSingle(forge({ type: 'sign1', alg: ALG_ES256, p: m([1, ALG_ES256], [2, []]), key: es })))).toBe('cose_bad_structure');
    expect(codeOf(() => decodeCoseSingle(forge({ type: 'sign1', alg: ALG_ES256, p: m([1, ALG_ES256], [2, 1]), key: es })))).toBe('cose_bad_structure');
    // Unprotected crit, even naming only understood labels, is refused: it could be stripped.
    expect(codeOf(() => decodeCoseSingle(forge({ type: 'sign1', alg: ALG_ES256, p: m([1, ALG_ES256]), u: m([2, [1]]), key: es })))).toBe('cose_bad_structure');
    expect(codeOf(() => decodeCoseSingle(forge({ type: 'sign1', alg: ALG_ES256, p: m([1, ALG_ES256]), u: m([2, [99]]), key: es })))).toBe('cose_bad_structure');
  });

  it('header labels are int or tstr; header buckets are maps', () => {
    expect(codeOf(() => decodeCoseSingle(forge({ type: 'sign1', alg: ALG_ES256, p: m([1, ALG_ES256], [K('b'), 1]), key: es })))).toBe('cose_bad_structure');
    expect(codeOf(() => decodeCoseSingle(forge({ type: 'sign1', alg: ALG_ES256, p: m([1, ALG_ES256]), u: m([K('b'), 1]), key: es })))).toBe('cose_bad_structure');
    expect(codeOf(() => decodeCoseSingle(encodeCbor(new CborTag(18, [encodeCbor([1]), new Map(), payload, K('s')]))))).toBe('cose_bad_structure');
    expect(codeOf(() => decodeCoseSingle(encodeCbor(new CborTag(18, [encodeCbor(m([1, -7])), [], payload, K('s')]))))).toBe('cose_bad_structure');
  });
});

describe('S1 COSE structure', () => {
  const good = (): CborValue[] => [encodeCbor(m([1, ALG_ES256])), new Map(), payload, new Uint8Array(64)];

  it('tags: 18 and 17 are read, 98/97 are multi-recipient (unsupported), anything else is refused', () => {
    expect(decodeCoseSingle(encodeCbor(new CborTag(18, good())))).toMatchObject({ type: 'sign1', tagged: true });
    expect(decodeCoseSingle(encodeCbor(new CborTag(17, good())))).toMatchObject({ type: 'mac0', tagged: true });
    expect(decodeCoseSingle(encodeCbor(good()))).toMatchObject({ type: 'sign1', tagged: false });
    expect(codeOf(() => decodeCoseSingle(encodeCbor(new CborTag(98, good()))))).toBe('cose_alg_unsupported');
    expect(codeOf(() => decodeCoseSingle(encodeCbor(new CborTag(97, good()))))).toBe('cose_alg_unsupported');
    for (const t of [16, 19, 96, 61]) expect(codeOf(() => decodeCoseSingle(encodeCbor(new CborTag(t, good())))), String(t)).toBe('cose_bad_structure');
  });

  it('the expected type is enforced on tagged input and imposed on untagged input', () => {
    expect(codeOf(() => decodeCoseSingle(encodeCbor(new CborTag(18, good())), 'mac0'))).toBe('cose_bad_structure');
    expect(codeOf(() => decodeCoseSingle(encodeCbor(new CborTag(17, good())), 'sign1'))).toBe('cose_bad_structure');
    expect(decodeCoseSingle(encodeCbor(good()), 'mac0').type).toBe('mac0');
    expect(decodeCoseSingle(encodeCbor(new CborTag(17, good())), 'mac0').type).toBe('mac0');
    // The typed verifiers refuse the other type, given bytes or a decoded structure.
    const sign1 = coseSign1Sign({ protectedHeaders: m([1, ALG_ES256]), payload }, es);
    const mac0 = coseMac0Create({ protectedHeaders: m([1, ALG_HMAC_256_256]), payload }, mac);
    expect(codeOf(() => coseMac0Verify(sign1, [mac]))).toBe('cose_bad_structure');
    expect(codeOf(() => coseSign1Verify(mac0, [es]))).toBe('cose_bad_structure');
    expect(codeOf(() => coseMac0Verify(decodeCoseSingle(sign1), [mac]))).toBe('cose_bad_structure');
    expect(codeOf(() => coseSign1Verify(decodeCoseSingle(mac0), [es]))).toBe('cose_bad_structure');
  });

  it('array of exactly four; protected bstr; payload bstr or nil; signature bstr', () => {
    const g = good();
    for (const body of [g.slice(0, 3), [...g, null], m([1, 1]), [1, new Map(), payload, K('s')], [g[0], new Map(), 7, K('s')], [g[0], new Map(), 'p', K('s')], [g[0], new Map(), payload, null], [g[0], new Map(), payload, 'sig']]) {
      expect(codeOf(() => parseCoseSingle(new CborTag(18, body as CborValue))), JSON.stringify(String(body))).toBe('cose_bad_structure');
    }
    expect(parseCoseSingle([g[0]!, new Map(), null, K('s')]).payload).toBeNull();
    expect(parseCoseSingle([empty, new Map(), null, K('s')]).protectedHeaders.size).toBe(0);
  });

  it('encodeCoseSingle is the inverse of decodeCoseSingle, tagged or not, both types', () => {
    for (const bytes of [
      coseSign1Sign({ protectedHeaders: m([1, ALG_ES256]), unprotectedHeaders: m([4, K('k')]), payload }, es),
      coseSign1Sign({ protectedHeaders: m([1, ALG_ES256]), payload, tagged: false, detached: true }, es),
      coseMac0Create({ protectedHeaders: m([1, ALG_HMAC_256_256]), payload }, mac),
    ]) {
      expect(Buffer.from(encodeCoseSingle(decodeCoseSingle(bytes))).equals(Buffer.from(bytes))).toBe(true);
    }
  });
});

describe('S1 COSE signing and verification', () => {
  it('sign: tagged by default, untagged on request, detached leaves nil, unprotected headers carried', () => {
    const t = decodeCbor(coseSign1Sign({ protectedHeaders: m([1, ALG_ES256]), payload }, es));
    expect(t).toBeInstanceOf(CborTag);
    expect((t as CborTag).tag).toBe(18);
    const u = decodeCbor(coseSign1Sign({ protectedHeaders: m([1, ALG_ES256]), payload, tagged: false, detached: true, unprotectedHeaders: m([4, K('k')]) }, es)) as CborValue[];
    expect(Array.isArray(u)).toBe(true);
    expect(u[2]).toBeNull();
    expect((u[1] as CborMap).get(4)).toEqual(K('k'));
    const mt = decodeCbor(coseMac0Create({ protectedHeaders: m([1, ALG_HMAC_256_256]), payload }, mac)) as CborTag;
    expect(mt.tag).toBe(17);
    const mu = decodeCbor(coseMac0Create({ protectedHeaders: m([1, ALG_HMAC_256_256]), payload, tagged: false, detached: true, unprotectedHeaders: m([4, K('k')]) }, mac)) as CborValue[];
    expect(mu[2]).toBeNull();
    expect((mu[1] as CborMap).get(4)).toEqual(K('k'));
  });

  it('sign refuses: alg not protected or not an integer, no private key, a public key, a key of another type', () => {
    expect(codeOf(() => coseSign1Sign({ protectedHeaders: m(), unprotectedHeaders: m([1, ALG_ES256]), payload }, es))).toBe('cose_alg_unsupported');
    expect(codeOf(() => coseSign1Sign({ protectedHeaders: m([1, 'ES256']), payload }, es))).toBe('cose_alg_unsupported');
    expect(codeOf(() => coseSign1Sign({ protectedHeaders: m([1, ALG_ES256]), payload }, { publicKey: es.publicKey! }))).toBe('cose_key_invalid');
    expect(codeOf(() => createSignature(ALG_ES256, es.publicKey!, payload))).toBe('cose_key_invalid');
    expect(codeOf(() => coseSign1Sign({ protectedHeaders: m([1, ALG_ES256]), payload }, ed))).toBe('cose_key_alg_mismatch');
    expect(codeOf(() => coseSign1Sign({ protectedHeaders: m([1, ALG_EDDSA]), payload }, es))).toBe('cose_key_alg_mismatch');
    expect(codeOf(() => coseSign1Sign({ protectedHeaders: m([1, 999]), payload }, es))).toBe('cose_alg_unsupported');
    expect(codeOf(() => coseMac0Create({ protectedHeaders: m(), unprotectedHeaders: m([1, ALG_HMAC_256_256]), payload }, mac))).toBe('cose_alg_unsupported');
    expect(codeOf(() => coseMac0Create({ protectedHeaders: m([1, ALG_HMAC_256_256]), payload }, es))).toBe('cose_key_invalid');
    expect(codeOf(() => coseMac0Create({ protectedHeaders: m([1, ALG_ES256]), payload }, mac))).toBe('cose_alg_unsupported');
  });

  it('external AAD is bound: verifying with other AAD fails', () => {
    const aad = K('context');
    const s = coseSign1Sign({ protectedHeaders: m([1, ALG_ES256]), payload, externalAad: aad }, es);
    expect(codeOf(() => coseSign1Verify(s, [es], { externalAad: aad }))).toBe('accepted');
    expect(codeOf(() => coseSign1Verify(s, [es]))).toBe('suit_signature_invalid');
    const t = coseMac0Create({ protectedHeaders: m([1, ALG_HMAC_256_256]), payload, externalAad: aad }, mac);
    expect(codeOf(() => coseMac0Verify(t, [mac], { externalAad: aad }))).toBe('accepted');
    expect(codeOf(() => coseMac0Verify(t, [mac]))).toBe('suit_signature_invalid');
  });

  it('a detached payload must be supplied; an attached one wins over a supplied one', () => {
    const d = coseSign1Sign({ protectedHeaders: m([1, ALG_ES256]), payload, detached: true }, es);
    expect(codeOf(() => coseSign1Verify(d, [es]))).toBe('cose_payload_missing');
    expect(Buffer.from(coseSign1Verify(d, [es], { detachedPayload: payload }).payload).equals(Buffer.from(payload))).toBe(true);
    expect(codeOf(() => coseSign1Verify(d, [es], { detachedPayload: K('other') }))).toBe('suit_signature_invalid');
    const a = coseSign1Sign({ protectedHeaders: m([1, ALG_ES256]), payload }, es);
    expect(Buffer.from(coseSign1Verify(a, [es], { detachedPayload: K('other') }).payload).equals(Buffer.from(payload))).toBe(true);
  });

  it('the algorithms option restricts what verifies', () => {
    const s = coseSign1Sign({ protectedHeaders: m([1, ALG_ES256]), payload }, es);
    expect(codeOf(() => coseSign1Verify(s, [es], { algorithms: [ALG_EDDSA] }))).toBe('cose_alg_unsupported');
    expect(codeOf(() => coseSign1Verify(s, [es], { algorithms: [ALG_EDDSA, ALG_ES256] }))).toBe('accepted');
  });

  it('a Mac0 with a signature alg, or a Sign1 with a MAC alg, is cose_alg_unsupported', () => {
    const s = decodeCoseSingle(coseSign1Sign({ protectedHeaders: m([1, ALG_ES256]), payload }, es));
    expect(codeOf(() => coseVerify({ ...s, type: 'mac0' }, [mac]))).toBe('cose_alg_unsupported');
    const t = decodeCoseSingle(coseMac0Create({ protectedHeaders: m([1, ALG_HMAC_256_256]), payload }, mac));
    expect(codeOf(() => coseVerify({ ...t, type: 'sign1' }, [es, mac]))).toBe('cose_alg_unsupported');
    expect(codeOf(() => coseVerify(forge({ type: 'sign1', alg: ALG_ES256, p: m([1, 12345]), key: es }), [es]))).toBe('cose_alg_unsupported');
  });

  it('a MAC tag of another length (truncated or extended) is refused as a bad MAC, never a crash', () => {
    const c = decodeCoseSingle(coseMac0Create({ protectedHeaders: m([1, ALG_HMAC_256_256]), payload }, mac));
    expect(codeOf(() => coseVerify({ ...c, tag: c.tag.subarray(0, 8) }, [mac]))).toBe('suit_signature_invalid');
    expect(codeOf(() => coseVerify({ ...c, tag: new Uint8Array([...c.tag, 0]) }, [mac]))).toBe('suit_signature_invalid');
    const flipped = new Uint8Array(c.tag);
    flipped[31] = flipped[31]! ^ 1;
    expect(codeOf(() => coseVerify({ ...c, tag: flipped }, [mac]))).toBe('suit_signature_invalid');
    expect(coseVerify(c, [mac]).alg).toBe(ALG_HMAC_256_256);
  });

  it('the trust list: no key of the right kind is suit_untrusted_key; a wrong key of the right kind is suit_signature_invalid', () => {
    const s = coseSign1Sign({ protectedHeaders: m([1, ALG_ES256]), payload }, es);
    expect(codeOf(() => coseSign1Verify(s, []))).toBe('suit_untrusted_key');
    expect(codeOf(() => coseSign1Verify(s, [mac, ed]))).toBe('suit_untrusted_key');
    expect(codeOf(() => coseSign1Verify(s, [generateSigningKey('es256').key]))).toBe('suit_signature_invalid');
    const t = coseMac0Create({ protectedHeaders: m([1, ALG_HMAC_256_256]), payload }, mac);
    expect(codeOf(() => coseMac0Verify(t, [es, ed]))).toBe('suit_untrusted_key');
    expect(codeOf(() => coseMac0Verify(t, [symmetricKey(new Uint8Array(32).fill(0x62))]))).toBe('suit_signature_invalid');
    // The first key that verifies wins, after keys that do not.
    const other = generateSigningKey('es256').key;
    expect(coseSign1Verify(s, [other, mac, es]).key).toBe(es);
  });

  it('the kid filter: keys with another kid are not tried; keys without a kid always are', () => {
    const a = { ...generateSigningKey('es256').key, kid: K('a') };
    const b = { ...generateSigningKey('es256').key, kid: K('b') };
    const signedBy = (key: CoseKey, kid?: Uint8Array, where: 'p' | 'u' = 'u') =>
      coseSign1Sign({ protectedHeaders: where === 'p' && kid ? m([1, ALG_ES256], [4, kid]) : m([1, ALG_ES256]), ...(where === 'u' && kid ? { unprotectedHeaders: m([4, kid]) } : {}), payload }, key);
    expect(coseSign1Verify(signedBy(b, K('b')), [a, b]).key).toBe(b);
    expect(coseSign1Verify(signedBy(b, K('b'), 'p'), [a, b]).key).toBe(b);
    expect(coseSign1Verify(signedBy(b), [a, b]).key).toBe(b);
    // Signed by b but naming a: only a is tried, and a does not verify it.
    expect(codeOf(() => coseSign1Verify(signedBy(b, K('a')), [a, b]))).toBe('suit_signature_invalid');
    // A kid of the same length but other bytes, or a prefix, matches no key.
    expect(codeOf(() => coseSign1Verify(signedBy(b, K('c')), [a, b]))).toBe('suit_untrusted_key');
    expect(codeOf(() => coseSign1Verify(signedBy({ ...b, kid: K('bb') }, K('bb')), [a, b]))).toBe('suit_untrusted_key');
    // A key without a kid is a candidate for any kid.
    const anon = { privateKey: b.privateKey!, publicKey: b.publicKey! };
    expect(coseSign1Verify(signedBy(b, K('zz')), [a, anon]).key).toBe(anon);
    expect(coseKid(decodeCoseSingle(signedBy(b, K('b'), 'p')))).toEqual(K('b'));
    expect(coseKid(decodeCoseSingle(signedBy(b)))).toBeUndefined();
    expect(coseKid(decodeCoseSingle(forge({ type: 'sign1', alg: ALG_ES256, p: m([1, ALG_ES256]), u: m([4, 'text-kid']), key: es })))).toBeUndefined();
    // The same filter for MACs.
    const ka = symmetricKey(secret, K('a'));
    const kb = symmetricKey(new Uint8Array(32).fill(0x62), K('b'));
    const t = coseMac0Create({ protectedHeaders: m([1, ALG_HMAC_256_256]), unprotectedHeaders: m([4, K('b')]), payload }, kb);
    expect(coseMac0Verify(t, [ka, kb]).key).toBe(kb);
    expect(codeOf(() => coseMac0Verify(t, [ka]))).toBe('suit_untrusted_key');
  });

  it("a key's pinned alg: an HMAC 256/256 key refuses a 64-bit tag it would otherwise verify", () => {
    const t64 = coseMac0Create({ protectedHeaders: m([1, ALG_HMAC_256_64]), payload }, mac);
    expect(codeOf(() => coseMac0Verify(t64, [mac]))).toBe('accepted');
    const pinned: CoseKey = { secret, alg: ALG_HMAC_256_256 };
    expect(codeOf(() => coseMac0Verify(t64, [pinned]))).toBe('suit_untrusted_key');
    expect(codeOf(() => coseMac0Verify(coseMac0Create({ protectedHeaders: m([1, ALG_HMAC_256_256]), payload }, mac), [pinned]))).toBe('accepted');
  });

  it("a key's pinned alg: an ES256 key refuses ES384 with the same P-256 key; ES256/ESP256 and EdDSA/Ed25519 are one pair each", () => {
    const es384 = coseSign1Sign({ protectedHeaders: m([1, ALG_ES384]), payload }, es);
    expect(codeOf(() => coseSign1Verify(es384, [es]))).toBe('accepted');
    expect(codeOf(() => coseSign1Verify(es384, [{ publicKey: es.publicKey!, alg: ALG_ES256 }]))).toBe('suit_untrusted_key');
    expect(codeOf(() => coseSign1Verify(coseSign1Sign({ protectedHeaders: m([1, ALG_ES256]), payload }, es), [{ publicKey: es.publicKey!, alg: ALG_ES384 }]))).toBe('suit_untrusted_key');
    for (const [keyAlg, msgAlg] of [
      [ALG_ES256, ALG_ESP256],
      [ALG_ESP256, ALG_ES256],
      [ALG_ES256, ALG_ES256],
      [ALG_ESP256, ALG_ESP256],
    ]) {
      expect(codeOf(() => coseSign1Verify(coseSign1Sign({ protectedHeaders: m([1, msgAlg!]), payload }, es), [{ publicKey: es.publicKey!, alg: keyAlg! }])), `${keyAlg}/${msgAlg}`).toBe('accepted');
    }
    for (const [keyAlg, msgAlg] of [
      [ALG_EDDSA, ALG_ED25519],
      [ALG_ED25519, ALG_EDDSA],
      [ALG_ED25519, ALG_ED25519],
    ]) {
      expect(codeOf(() => coseSign1Verify(coseSign1Sign({ protectedHeaders: m([1, msgAlg!]), payload }, ed), [{ publicKey: ed.publicKey!, alg: keyAlg! }])), `${keyAlg}/${msgAlg}`).toBe('accepted');
    }
    // Across the pairs nothing is allowed, even when the key type would fit the curve list.
    expect(codeOf(() => coseSign1Verify(coseSign1Sign({ protectedHeaders: m([1, ALG_EDDSA]), payload }, ed), [{ publicKey: ed.publicKey!, alg: ALG_ES256 }]))).toBe('suit_untrusted_key');
    expect(codeOf(() => coseSign1Verify(coseSign1Sign({ protectedHeaders: m([1, ALG_ESP256]), payload }, es), [{ publicKey: es.publicKey!, alg: ALG_EDDSA }]))).toBe('suit_untrusted_key');
    expect(codeOf(() => coseSign1Verify(coseSign1Sign({ protectedHeaders: m([1, ALG_ES384]), payload }, es), [{ publicKey: es.publicKey!, alg: ALG_ESP256 }]))).toBe('suit_untrusted_key');
    expect(codeOf(() => coseSign1Verify(coseSign1Sign({ protectedHeaders: m([1, ALG_ED25519]), payload }, ed), [{ publicKey: ed.publicKey!, alg: ALG_ES384 }]))).toBe('suit_untrusted_key');
  });

  it('ESP256 takes only P-256 keys; ES384 takes P-384; Ed25519 only Ed25519', () => {
    const p384 = importKey(generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey);
    expect(codeOf(() => coseSign1Sign({ protectedHeaders: m([1, ALG_ESP256]), payload }, p384))).toBe('cose_key_alg_mismatch');
    const s = coseSign1Sign({ protectedHeaders: m([1, ALG_ES384]), payload }, p384);
    expect(coseSign1Verify(s, [p384]).alg).toBe(ALG_ES384);
    expect(decodeCoseSingle(s).tag.length).toBe(96);
    const x448 = importKey(generateKeyPairSync('ed448').publicKey);
    expect(codeOf(() => coseSign1Verify(coseSign1Sign({ protectedHeaders: m([1, ALG_EDDSA]), payload }, ed), [x448]))).toBe('suit_untrusted_key');
  });

  it('a protected bucket nested deeper than 16 levels is refused before it is read', () => {
    let deep: CborValue = 0;
    for (let i = 0; i < 20; i++) deep = [deep];
    const bytes = forge({ type: 'sign1', alg: ALG_ES256, p: m([1, ALG_ES256], [99, deep]), key: es });
    expect(codeOf(() => coseSign1Verify(bytes, [es]))).toBe('cbor_too_deep');
    let ok: CborValue = 0;
    for (let i = 0; i < 14; i++) ok = [ok];
    expect(codeOf(() => coseSign1Verify(forge({ type: 'sign1', alg: ALG_ES256, p: m([1, ALG_ES256], [99, ok]), key: es }), [es]))).toBe('accepted');
  });

  it('the key must fit the algorithm even when the signature would verify: a P-384 key under ESP256', () => {
    const p384 = importKey(generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey);
    const tbs = K('data');
    const sig = createSignature(ALG_ES256, p384.privateKey!, tbs);
    expect(verifySignature(ALG_ES256, p384.publicKey!, tbs, sig)).toBe(true);
    expect(verifySignature(ALG_ESP256, p384.publicKey!, tbs, sig)).toBe(false);
  });

  it('Sig_structure heads at every length boundary of each field', () => {
    for (const n of [0, 23, 24, 25, 255, 256, 257, 65535, 65536, 65537]) {
      const b = new Uint8Array(n).fill(1);
      for (const [p, aad, pl] of [
        [b, empty, empty],
        [empty, b, empty],
        [empty, empty, b],
      ]) {
        expect(Buffer.from(sigStructure('MAC0', p!, aad!, pl!)).equals(Buffer.from(encodeCbor(['MAC0', p!, aad!, pl!]))), String(n)).toBe(true);
      }
    }
  });

  it('signatures of the wrong length or encoding are false, not exceptions', () => {
    const tbs = K('data');
    const sig = createSignature(ALG_ES256, es.privateKey!, tbs);
    expect(verifySignature(ALG_ES256, es.publicKey!, tbs, sig)).toBe(true);
    expect(verifySignature(ALG_ES256, es.publicKey!, tbs, sig.subarray(0, 63))).toBe(false);
    expect(verifySignature(ALG_ES256, es.publicKey!, tbs, new Uint8Array([...sig, 0]))).toBe(false);
    expect(verifySignature(ALG_ES256, ed.publicKey!, tbs, sig)).toBe(false);
    const edSig = createSignature(ALG_EDDSA, ed.privateKey!, tbs);
    expect(verifySignature(ALG_EDDSA, ed.publicKey!, tbs, edSig)).toBe(true);
    expect(verifySignature(ALG_EDDSA, ed.publicKey!, tbs, edSig.subarray(0, 63))).toBe(false);
    expect(verifySignature(ALG_EDDSA, ed.publicKey!, tbs, new Uint8Array([...edSig, 0]))).toBe(false);
    expect(verifySignature(ALG_EDDSA, es.publicKey!, tbs, edSig)).toBe(false);
    expect(codeOf(() => verifySignature(ALG_HMAC_256_256, es.publicKey!, tbs, sig))).toBe('cose_alg_unsupported');
    // An all-zero r||s is not a valid ECDSA signature: false, not a throw.
    expect(verifySignature(ALG_ES256, es.publicKey!, tbs, new Uint8Array(64))).toBe(false);
  });

  it('HMAC tag lengths follow the algorithm', () => {
    expect(computeMac(ALG_HMAC_256_64, secret, payload).length).toBe(8);
    expect(computeMac(ALG_HMAC_256_256, secret, payload).length).toBe(32);
    expect(computeMac(6, secret, payload).length).toBe(48);
    expect(computeMac(7, secret, payload).length).toBe(64);
    expect(Buffer.from(computeMac(ALG_HMAC_256_64, secret, payload)).equals(Buffer.from(computeMac(ALG_HMAC_256_256, secret, payload).subarray(0, 8)))).toBe(true);
    expect(codeOf(() => computeMac(ALG_ES256, secret, payload))).toBe('cose_alg_unsupported');
  });
});

describe('S1 COSE refusals say what was expected and what came', () => {
  const msgOf = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(SuitError);
      return `${(e as SuitError).code}: ${(e as SuitError).message}`;
    }
    return 'accepted';
  };
  const g = (): CborValue[] => [encodeCbor(m([1, ALG_ES256])), new Map(), payload, new Uint8Array(64)];
  const sign1 = () => coseSign1Sign({ protectedHeaders: m([1, ALG_ES256]), payload }, es);
  const mac0 = () => coseMac0Create({ protectedHeaders: m([1, ALG_HMAC_256_256]), payload }, mac);

  it('structure', () => {
    const cases: [() => unknown, string][] = [
      [() => parseCoseSingle(new CborTag(18, [encodeCbor([1]), new Map(), payload, K('s')])), 'cose_bad_structure: expected protected header to be a map, came array'],
      [() => parseCoseSingle(new CborTag(18, [g()[0]!, 5, payload, K('s')])), 'cose_bad_structure: expected unprotected header to be a map, came integer'],
      [() => parseCoseSingle(new CborTag(18, [g()[0]!, m([K('b'), 1]), payload, K('s')])), 'cose_bad_structure: expected unprotected header labels to be int or tstr, came byte string'],
      [() => parseCoseSingle(new CborTag(98, g())), 'cose_alg_unsupported: expected COSE_Sign1 (18) or COSE_Mac0 (17), came multi-recipient tag 98'],
      [() => parseCoseSingle(new CborTag(97, g())), 'cose_alg_unsupported: expected COSE_Sign1 (18) or COSE_Mac0 (17), came multi-recipient tag 97'],
      [() => parseCoseSingle(new CborTag(16, g())), 'cose_bad_structure: expected COSE tag 18 or 17, came tag 16'],
      [() => parseCoseSingle(new CborTag(18, g()), 'mac0'), 'cose_bad_structure: expected COSE_Mac0, came COSE_Sign1'],
      [() => parseCoseSingle(new CborTag(17, g()), 'sign1'), 'cose_bad_structure: expected COSE_Sign1, came COSE_Mac0'],
      [() => parseCoseSingle(g().slice(0, 3)), 'cose_bad_structure: expected a 4-element COSE array, came 3 elements'],
      [() => parseCoseSingle(m()), 'cose_bad_structure: expected a 4-element COSE array, came map'],
      [() => parseCoseSingle([1, new Map(), payload, K('s')]), 'cose_bad_structure: expected protected header as bstr, came integer'],
      [() => parseCoseSingle([encodeCbor(m([4, K('a')], [1, -7])), m([4, K('b')]), payload, K('s')]), 'cose_bad_structure: expected header label 4 in only one bucket, came in both'],
      [() => parseCoseSingle([g()[0]!, new Map(), 'p', K('s')]), 'cose_bad_structure: expected payload bstr or nil, came text string'],
      [() => parseCoseSingle([g()[0]!, new Map(), payload, 7]), 'cose_bad_structure: expected signature bstr, came integer'],
      [() => parseCoseSingle([encodeCbor(m([1, -7], [2, []])), new Map(), payload, K('s')]), 'cose_bad_structure: expected crit to be a non-empty array of labels'],
      [() => parseCoseSingle([encodeCbor(m([1, -7], [2, ['x']])), new Map(), payload, K('s')]), 'cose_unknown_critical_header: expected critical headers this verifier understands, came label x'],
      [() => parseCoseSingle([g()[0]!, m([2, [1]]), payload, K('s')]), 'cose_bad_structure: expected crit in the protected bucket, came in the unprotected one'],
      [() => coseAlg(parseCoseSingle([empty, m([1, -7]), payload, K('s')])), 'cose_bad_structure: expected alg in the protected header only, came it in the unprotected one (RFC 9052 §3.1)'],
      // A structure built by hand (not parsed) with alg in both buckets is refused as well.
      [() => coseAlg({ ...parseCoseSingle([g()[0]!, new Map(), payload, K('s')]), unprotectedHeaders: m([1, -7]) }), 'cose_bad_structure: expected alg in the protected header only, came it in the unprotected one (RFC 9052 §3.1)'],
      [() => coseVerify({ ...decodeCoseSingle(sign1()), type: 'mac0' }, [mac]), 'cose_alg_unsupported: expected a MAC algorithm for COSE_Mac0, came alg -7'],
      [() => coseVerify({ ...decodeCoseSingle(mac0()), type: 'sign1' }, [es]), 'cose_alg_unsupported: expected a signature algorithm for COSE_Sign1, came alg 5'],
      [() => coseVerify(parseCoseSingle([encodeCbor(m([1, 77])), new Map(), payload, K('s')]), [es]), 'cose_alg_unsupported: expected a signature algorithm for COSE_Sign1, came alg 77'],
      [() => coseAlg(parseCoseSingle([empty, new Map(), payload, K('s')])), 'cose_alg_unsupported: expected an integer alg header, came none'],
      [() => coseAlg(parseCoseSingle([encodeCbor(m([1, K('x')])), new Map(), payload, K('s')])), 'cose_alg_unsupported: expected an integer alg header, came byte string'],
      [() => coseSign1Verify(mac0(), [es]), 'cose_bad_structure: expected COSE_Sign1, came COSE_Mac0'],
      [() => coseMac0Verify(decodeCoseSingle(sign1()), [mac]), 'cose_bad_structure: expected COSE_Mac0, came COSE_Sign1'],
      [() => coseSign1Verify(decodeCoseSingle(mac0()), [es]), 'cose_bad_structure: expected COSE_Sign1, came COSE_Mac0'],
    ];
    for (const [f, want] of cases) expect(msgOf(f)).toBe(want);
  });

  it('keys, algorithms and signatures', () => {
    const kid = new Uint8Array([0xab, 0xcd]);
    const cases: [() => unknown, string][] = [
      [() => createSignature(12, es.privateKey!, payload), 'cose_alg_unsupported: expected one of ES256 (-7), ESP256 (-9), ES384 (-35), ES512 (-36), EdDSA (-8), Ed25519 (-19), came alg 12'],
      [() => createSignature(ALG_ES256, es.publicKey!, payload), 'cose_key_invalid: expected a private key to sign, came a public key'],
      [() => createSignature(ALG_ES256, ed.privateKey!, payload), 'cose_key_alg_mismatch: expected a key for alg -7, came a ed25519 key'],
      [() => computeMac(-7, secret, payload), 'cose_alg_unsupported: expected HMAC 256/64 (4), 256/256 (5), 384/384 (6) or 512/512 (7), came alg -7'],
      [() => coseSign1Sign({ protectedHeaders: m(), payload }, es), 'cose_alg_unsupported: expected an integer alg in the protected header'],
      [() => coseSign1Sign({ protectedHeaders: m([1, -7]), payload }, { publicKey: es.publicKey! }), 'cose_key_invalid: expected a private key to sign'],
      [() => coseMac0Create({ protectedHeaders: m(), payload }, mac), 'cose_alg_unsupported: expected an integer alg in the protected header'],
      [() => coseMac0Create({ protectedHeaders: m([1, 5]), payload }, es), 'cose_key_invalid: expected a symmetric key for COSE_Mac0'],
      [() => coseVerify(sign1(), [es], { algorithms: [-8, -19] }), 'cose_alg_unsupported: expected one of algs -8, -19, came -7'],
      [() => coseVerify(coseSign1Sign({ protectedHeaders: m([1, -7]), payload, detached: true }, es), [es]), 'cose_payload_missing: expected a detached payload to be supplied, came none'],
      [() => coseVerify(sign1(), [mac]), 'suit_untrusted_key: expected a trusted public key for alg -7, came none in the trust list'],
      [() => coseVerify(mac0(), [es]), 'suit_untrusted_key: expected a trusted symmetric key for alg 5, came none in the trust list'],
      [() => coseVerify(coseSign1Sign({ protectedHeaders: m([1, -7], [4, kid]), payload }, es), [mac]), 'suit_untrusted_key: expected a trusted public key for alg -7 and kid abcd, came none in the trust list'],
      [() => coseVerify(sign1(), [generateSigningKey('es256').key]), 'suit_signature_invalid: expected a signature made by a trusted key, came one that no trusted key verifies'],
      [() => coseVerify(mac0(), [symmetricKey(new Uint8Array(32))]), 'suit_signature_invalid: expected a MAC made by a trusted key, came one that no trusted key verifies'],
    ];
    for (const [f, want] of cases) expect(msgOf(f)).toBe(want);
  });
});
