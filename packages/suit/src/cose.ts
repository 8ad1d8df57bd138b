/**
 * COSE (RFC 9052/9053) single-signer structures over the strict CBOR codec: COSE_Sign1 and
 * COSE_Mac0, attached or detached payload, external AAD. Primitives come from node:crypto.
 * Kept general (headers as Maps, payload bytes) so CWTs and reports can use it as well as SUIT.
 */
import { createHmac, type KeyObject, sign as nodeSign, verify as nodeVerify, timingSafeEqual } from 'node:crypto';
import { bstrHead, type CborMap, CborTag, type CborValue, decodeCbor, encodeCbor, typeName } from './cbor.ts';
import { SuitError } from './errors.ts';
import type { CoseKey } from './keys.ts';

export const COSE_SIGN1_TAG = 18;
export const COSE_MAC0_TAG = 17;
export const COSE_SIGN_TAG = 98;
export const COSE_MAC_TAG = 97;
export const COSE_ENCRYPT_TAG = 96;

/** Common header parameters (RFC 9052 §3.1). */
export const HEADER_ALG = 1;
export const HEADER_CRIT = 2;
export const HEADER_CONTENT_TYPE = 3;
export const HEADER_KID = 4;
export const HEADER_IV = 5;
export const HEADER_PARTIAL_IV = 6;
const UNDERSTOOD_HEADERS = new Set<CborValue>([HEADER_ALG, HEADER_CRIT, HEADER_CONTENT_TYPE, HEADER_KID, HEADER_IV, HEADER_PARTIAL_IV]);

/** Algorithms (IANA COSE Algorithms registry). */
export const ALG_ES256 = -7;
export const ALG_ESP256 = -9;
export const ALG_EDDSA = -8;
export const ALG_ED25519 = -19;
export const ALG_ES384 = -35;
export const ALG_ES512 = -36;
export const ALG_HMAC_256_64 = 4;
export const ALG_HMAC_256_256 = 5;
export const ALG_HMAC_384_384 = 6;
export const ALG_HMAC_512_512 = 7;

interface SignAlg {
  kind: 'ecdsa' | 'eddsa';
  hash: string | null;
  /** Curves a key may have for this algorithm (node's names). */
  curves: readonly string[];
}
export const SIGNATURE_ALGORITHMS: ReadonlyMap<number, SignAlg> = new Map<number, SignAlg>([
  [ALG_ES256, { kind: 'ecdsa', hash: 'sha256', curves: ['prime256v1', 'secp384r1', 'secp521r1'] }],
  [ALG_ESP256, { kind: 'ecdsa', hash: 'sha256', curves: ['prime256v1'] }],
  [ALG_ES384, { kind: 'ecdsa', hash: 'sha384', curves: ['prime256v1', 'secp384r1', 'secp521r1'] }],
  [ALG_ES512, { kind: 'ecdsa', hash: 'sha512', curves: ['prime256v1', 'secp384r1', 'secp521r1'] }],
  [ALG_EDDSA, { kind: 'eddsa', hash: null, curves: ['ed25519'] }],
  [ALG_ED25519, { kind: 'eddsa', hash: null, curves: ['ed25519'] }],
]);
export const MAC_ALGORITHMS: ReadonlyMap<number, { hash: string; tagLength: number }> = new Map([
  [ALG_HMAC_256_64, { hash: 'sha256', tagLength: 8 }],
  [ALG_HMAC_256_256, { hash: 'sha256', tagLength: 32 }],
  [ALG_HMAC_384_384, { hash: 'sha384', tagLength: 48 }],
  [ALG_HMAC_512_512, { hash: 'sha512', tagLength: 64 }],
]);

/** A decoded COSE_Sign1 or COSE_Mac0: the protected header kept as its exact bytes. */
export interface CoseSingle {
  type: 'sign1' | 'mac0';
  tagged: boolean;
  protectedBytes: Uint8Array;
  protectedHeaders: CborMap;
  unprotectedHeaders: CborMap;
  /** null when detached. */
  payload: Uint8Array | null;
  /** Signature or MAC tag. */
  tag: Uint8Array;
}

function bad(message: string): never {
  throw new SuitError('cose_bad_structure', message);
}

function headerMap(v: CborValue, what: string): CborMap {
  if (!(v instanceof Map)) bad(`expected ${what} to be a map, came ${typeName(v)}`);
  for (const k of v.keys()) {
    if (typeof k !== 'number' && typeof k !== 'string') bad(`expected ${what} labels to be int or tstr, came ${typeName(k)}`);
  }
  return v;
}

/** Decodes a COSE_Sign1 / COSE_Mac0 (tagged or not) from a decoded CBOR value. */
export function parseCoseSingle(value: CborValue, expect: 'sign1' | 'mac0' | 'any' = 'any'): CoseSingle {
  let tagged = false;
  let type: 'sign1' | 'mac0' | undefined;
  let body = value;
  if (value instanceof CborTag) {
    tagged = true;
    if (value.tag === COSE_SIGN1_TAG) type = 'sign1';
    else if (value.tag === COSE_MAC0_TAG) type = 'mac0';
    else if (value.tag === COSE_SIGN_TAG || value.tag === COSE_MAC_TAG) {
      throw new SuitError('cose_alg_unsupported', `expected COSE_Sign1 (18) or COSE_Mac0 (17), came multi-recipient tag ${value.tag}`);
    } else bad(`expected COSE tag 18 or 17, came tag ${value.tag}`);
    body = value.value;
  }
  if (expect !== 'any') {
    if (type && type !== expect) bad(`expected COSE_${expect === 'sign1' ? 'Sign1' : 'Mac0'}, came COSE_${type === 'sign1' ? 'Sign1' : 'Mac0'}`);
    type = expect;
  }
  if (!Array.isArray(body) || body.length !== 4) bad(`expected a 4-element COSE array, came ${Array.isArray(body) ? `${body.length} elements` : typeName(body)}`);
  const [p, u, payload, sig] = body;
  if (!(p instanceof Uint8Array)) bad(`expected protected header as bstr, came ${typeName(p!)}`);
  const protectedHeaders: CborMap = p.length === 0 ? new Map() : headerMap(decodeCbor(p, { maxDepth: 16 }), 'protected header');
  const unprotectedHeaders = headerMap(u!, 'unprotected header');
  for (const k of unprotectedHeaders.keys()) {
    if (protectedHeaders.has(k)) bad(`expected header label ${String(k)} in only one bucket, came in both`);
  }
  if (payload !== null && !(payload instanceof Uint8Array)) bad(`expected payload bstr or nil, came ${typeName(payload!)}`);
  if (!(sig instanceof Uint8Array)) bad(`expected signature bstr, came ${typeName(sig!)}`);
  const crit = protectedHeaders.get(HEADER_CRIT);
  if (crit !== undefined) {
    if (!Array.isArray(crit) || crit.length === 0) bad('expected crit to be a non-empty array of labels');
    for (const label of crit) {
      if (!UNDERSTOOD_HEADERS.has(label)) throw new SuitError('cose_unknown_critical_header', `expected critical headers this verifier understands, came label ${String(label)}`);
    }
  }
  if (unprotectedHeaders.has(HEADER_CRIT)) bad('expected crit in the protected bucket, came in the unprotected one');
  if (!type) {
    const alg = protectedHeaders.get(HEADER_ALG);
    type = typeof alg === 'number' && MAC_ALGORITHMS.has(alg) ? 'mac0' : 'sign1';
  }
  return { type, tagged, protectedBytes: p, protectedHeaders, unprotectedHeaders, payload: payload as Uint8Array | null, tag: sig };
}

export function decodeCoseSingle(bytes: Uint8Array, expect: 'sign1' | 'mac0' | 'any' = 'any'): CoseSingle {
  return parseCoseSingle(decodeCbor(bytes), expect);
}

export function encodeCoseSingle(c: CoseSingle): Uint8Array {
  const body: CborValue = [c.protectedBytes, c.unprotectedHeaders, c.payload, c.tag];
  return encodeCbor(c.tagged ? new CborTag(c.type === 'sign1' ? COSE_SIGN1_TAG : COSE_MAC0_TAG, body) : body);
}

/**
 * The algorithm of a COSE object, from the protected bucket only: RFC 9052 §3.1 requires alg to be
 * authenticated, and an unprotected alg could be swapped by anyone on the path (to a weaker MAC
 * length, say). One found only in the unprotected bucket is refused, never used.
 */
export function coseAlg(c: CoseSingle): number {
  if (c.unprotectedHeaders.has(HEADER_ALG)) bad('expected alg in the protected header only, came it in the unprotected one (RFC 9052 §3.1)');
  const alg = c.protectedHeaders.get(HEADER_ALG);
  if (typeof alg !== 'number') throw new SuitError('cose_alg_unsupported', `expected an integer alg header, came ${alg === undefined ? 'none' : typeName(alg)}`);
  return alg;
}

export function coseKid(c: CoseSingle): Uint8Array | undefined {
  const kid = c.protectedHeaders.get(HEADER_KID) ?? c.unprotectedHeaders.get(HEADER_KID);
  return kid instanceof Uint8Array ? kid : undefined;
}

const CONTEXT_HEADS = { Signature1: encodeCbor('Signature1'), MAC0: encodeCbor('MAC0') };

/** Sig_structure / MAC_structure (RFC 9052 §4.4, §6.3), written straight into one buffer. */
export function sigStructure(context: 'Signature1' | 'MAC0', protectedBytes: Uint8Array, externalAad: Uint8Array, payload: Uint8Array): Uint8Array {
  const ctx = CONTEXT_HEADS[context];
  const size = 1 + ctx.length + headLength(protectedBytes.length) + protectedBytes.length + headLength(externalAad.length) + externalAad.length + headLength(payload.length) + payload.length;
  const out = new Uint8Array(size);
  out[0] = 0x84;
  out.set(ctx, 1);
  let at = 1 + ctx.length;
  at = putBstr(out, at, protectedBytes);
  at = putBstr(out, at, externalAad);
  putBstr(out, at, payload);
  return out;
}

function headLength(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x100000000 ? 5 : 9;
}

function putBstr(out: Uint8Array, at: number, data: Uint8Array): number {
  const head = headLength(data.length) === 9 ? bstrHead(data.length) : null;
  const n = data.length;
  if (head) {
    out.set(head, at);
    at += head.length;
  } else if (n < 24) out[at++] = 0x40 | n;
  else if (n < 0x100) {
    out[at++] = 0x58;
    out[at++] = n;
  } else if (n < 0x10000) {
    out[at++] = 0x59;
    out[at++] = n >> 8;
    out[at++] = n & 0xff;
  } else {
    out[at++] = 0x5a;
    out[at++] = (n >>> 24) & 0xff;
    out[at++] = (n >>> 16) & 0xff;
    out[at++] = (n >>> 8) & 0xff;
    out[at++] = n & 0xff;
  }
  out.set(data, at);
  return at + n;
}

function signingAlg(alg: number): SignAlg {
  const a = SIGNATURE_ALGORITHMS.get(alg);
  if (!a) throw new SuitError('cose_alg_unsupported', `expected one of ES256 (-7), ESP256 (-9), ES384 (-35), ES512 (-36), EdDSA (-8), Ed25519 (-19), came alg ${alg}`);
  return a;
}

function keyFits(key: KeyObject, a: SignAlg): boolean {
  if (a.kind === 'eddsa') return key.asymmetricKeyType === 'ed25519';
  return key.asymmetricKeyType === 'ec' && a.curves.includes(key.asymmetricKeyDetails?.namedCurve ?? '');
}

const ECDSA_SIG_LENGTH: Record<string, number> = { prime256v1: 64, secp384r1: 96, secp521r1: 132 };

/** Verifies one signature; false on any mismatch (wrong length, wrong key type included). */
export function verifySignature(alg: number, key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  const a = signingAlg(alg);
  if (!keyFits(key, a)) return false;
  if (a.kind === 'ecdsa' && signature.length !== ECDSA_SIG_LENGTH[key.asymmetricKeyDetails?.namedCurve ?? '']) return false;
  if (a.kind === 'eddsa' && signature.length !== 64) return false;
  try {
    return nodeVerify(a.hash, data, a.kind === 'ecdsa' ? { key, dsaEncoding: 'ieee-p1363' } : key, signature);
  } catch {
    return false;
  }
}

export function createSignature(alg: number, key: KeyObject, data: Uint8Array): Uint8Array {
  const a = signingAlg(alg);
  if (key.type !== 'private') throw new SuitError('cose_key_invalid', 'expected a private key to sign, came a public key');
  if (!keyFits(key, a)) throw new SuitError('cose_key_alg_mismatch', `expected a key for alg ${alg}, came a ${key.asymmetricKeyType} key`);
  return new Uint8Array(nodeSign(a.hash, data, a.kind === 'ecdsa' ? { key, dsaEncoding: 'ieee-p1363' } : key));
}

export function computeMac(alg: number, secret: Uint8Array, data: Uint8Array): Uint8Array {
  const m = MAC_ALGORITHMS.get(alg);
  if (!m) throw new SuitError('cose_alg_unsupported', `expected HMAC 256/64 (4), 256/256 (5), 384/384 (6) or 512/512 (7), came alg ${alg}`);
  return new Uint8Array(createHmac(m.hash, secret).update(data).digest().subarray(0, m.tagLength));
}

export interface CoseSignInput {
  protectedHeaders: CborMap;
  unprotectedHeaders?: CborMap;
  payload: Uint8Array;
  /** Leave the payload out of the structure (it travels elsewhere, as in SUIT). */
  detached?: boolean;
  externalAad?: Uint8Array;
  /** Emit tag 18/17 (default true). */
  tagged?: boolean;
}

/** Creates a COSE_Sign1. The alg header must be in `protectedHeaders`. Ed25519 is deterministic. */
export function coseSign1Sign(input: CoseSignInput, key: CoseKey): Uint8Array {
  const alg = input.protectedHeaders.get(HEADER_ALG);
  if (typeof alg !== 'number') throw new SuitError('cose_alg_unsupported', 'expected an integer alg in the protected header');
  if (!key.privateKey) throw new SuitError('cose_key_invalid', 'expected a private key to sign');
  const p = encodeCbor(input.protectedHeaders);
  const signature = createSignature(alg, key.privateKey, sigStructure('Signature1', p, input.externalAad ?? new Uint8Array(0), input.payload));
  return encodeCoseSingle({
    type: 'sign1',
    tagged: input.tagged ?? true,
    protectedBytes: p,
    protectedHeaders: input.protectedHeaders,
    unprotectedHeaders: input.unprotectedHeaders ?? new Map(),
    payload: input.detached ? null : input.payload,
    tag: signature,
  });
}

/** Creates a COSE_Mac0 with a symmetric key. */
export function coseMac0Create(input: CoseSignInput, key: CoseKey): Uint8Array {
  const alg = input.protectedHeaders.get(HEADER_ALG);
  if (typeof alg !== 'number') throw new SuitError('cose_alg_unsupported', 'expected an integer alg in the protected header');
  if (!key.secret) throw new SuitError('cose_key_invalid', 'expected a symmetric key for COSE_Mac0');
  const p = encodeCbor(input.protectedHeaders);
  const tag = computeMac(alg, key.secret, sigStructure('MAC0', p, input.externalAad ?? new Uint8Array(0), input.payload));
  return encodeCoseSingle({
    type: 'mac0',
    tagged: input.tagged ?? true,
    protectedBytes: p,
    protectedHeaders: input.protectedHeaders,
    unprotectedHeaders: input.unprotectedHeaders ?? new Map(),
    payload: input.detached ? null : input.payload,
    tag,
  });
}

export interface CoseVerifyOptions {
  externalAad?: Uint8Array;
  /** The payload when the structure carries nil. */
  detachedPayload?: Uint8Array;
  /** Accepted algorithms (default: all supported). */
  algorithms?: readonly number[];
}

export interface CoseVerified {
  payload: Uint8Array;
  alg: number;
  key: CoseKey;
  cose: CoseSingle;
}

function payloadOf(c: CoseSingle, opts: CoseVerifyOptions): Uint8Array {
  if (c.payload !== null) return c.payload;
  if (!opts.detachedPayload) throw new SuitError('cose_payload_missing', 'expected a detached payload to be supplied, came none');
  return opts.detachedPayload;
}

/**
 * Verifies a COSE_Sign1 or COSE_Mac0 against a list of keys; the first key that verifies wins.
 * Keys with a kid are tried only when the message names that kid (or names none).
 */
export function coseVerify(input: Uint8Array | CoseSingle, keys: readonly CoseKey[], opts: CoseVerifyOptions = {}): CoseVerified {
  const c = input instanceof Uint8Array ? decodeCoseSingle(input) : input;
  const alg = coseAlg(c);
  if (opts.algorithms && !opts.algorithms.includes(alg)) throw new SuitError('cose_alg_unsupported', `expected one of algs ${opts.algorithms.join(', ')}, came ${alg}`);
  const isMac = c.type === 'mac0';
  if (isMac ? !MAC_ALGORITHMS.has(alg) : !SIGNATURE_ALGORITHMS.has(alg)) {
    throw new SuitError('cose_alg_unsupported', `expected a ${isMac ? 'MAC algorithm for COSE_Mac0' : 'signature algorithm for COSE_Sign1'}, came alg ${alg}`);
  }
  const payload = payloadOf(c, opts);
  const kid = coseKid(c);
  const candidates: CoseKey[] = [];
  for (const k of keys) if (keyCandidate(k, kid, alg, isMac)) candidates.push(k);
  if (candidates.length === 0) {
    throw new SuitError('suit_untrusted_key', `expected a trusted ${isMac ? 'symmetric' : 'public'} key for alg ${alg}${kid ? ` and kid ${Buffer.from(kid).toString('hex')}` : ''}, came none in the trust list`);
  }
  // The protected bucket holds alg (coseAlg refused it otherwise), so it is signed as it came.
  const data = sigStructure(isMac ? 'MAC0' : 'Signature1', c.protectedBytes, opts.externalAad ?? new Uint8Array(0), payload);
  for (const k of candidates) {
    if (isMac) {
      const expected = computeMac(alg, k.secret!, data);
      if (expected.length === c.tag.length && timingSafeEqual(expected, c.tag)) return { payload, alg, key: k, cose: c };
    } else if (verifySignature(alg, k.publicKey!, data, c.tag)) return { payload, alg, key: k, cose: c };
  }
  throw new SuitError('suit_signature_invalid', `expected a ${isMac ? 'MAC' : 'signature'} made by a trusted key, came one that no trusted key verifies`);
}

function keyCandidate(k: CoseKey, kid: Uint8Array | undefined, alg: number, isMac: boolean): boolean {
  if (kid && k.kid && Buffer.compare(Buffer.from(kid), Buffer.from(k.kid)) !== 0) return false;
  if (k.alg !== undefined && k.alg !== alg && !(isEcdsaP256Pair(k.alg, alg) || isEdPair(k.alg, alg))) return false;
  if (isMac) return k.secret !== undefined;
  return k.publicKey !== undefined && keyFits(k.publicKey, SIGNATURE_ALGORITHMS.get(alg)!);
}

function isEcdsaP256Pair(a: number, b: number): boolean {
  return (a === ALG_ES256 || a === ALG_ESP256) && (b === ALG_ES256 || b === ALG_ESP256);
}
function isEdPair(a: number, b: number): boolean {
  return (a === ALG_EDDSA || a === ALG_ED25519) && (b === ALG_EDDSA || b === ALG_ED25519);
}

export function coseSign1Verify(input: Uint8Array | CoseSingle, keys: readonly CoseKey[], opts: CoseVerifyOptions = {}): CoseVerified {
  const c = input instanceof Uint8Array ? decodeCoseSingle(input, 'sign1') : input;
  if (c.type !== 'sign1') bad('expected COSE_Sign1, came COSE_Mac0');
  return coseVerify(c, keys, opts);
}

export function coseMac0Verify(input: Uint8Array | CoseSingle, keys: readonly CoseKey[], opts: CoseVerifyOptions = {}): CoseVerified {
  const c = input instanceof Uint8Array ? decodeCoseSingle(input, 'mac0') : input;
  if (c.type !== 'mac0') bad('expected COSE_Mac0, came COSE_Sign1');
  return coseVerify(c, keys, opts);
}
