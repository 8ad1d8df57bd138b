/**
 * Keys for COSE: imported from PEM (SPKI, PKCS#8, SEC1), JWK or COSE_Key (RFC 9052 §7), held as
 * node:crypto KeyObjects (asymmetric) or raw bytes (symmetric).
 */
import { createPrivateKey, createPublicKey, createSecretKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { type CborMap, type CborValue, decodeCbor, encodeCbor } from './cbor.ts';
import { SuitError } from './errors.ts';

export interface CoseKey {
  kid?: Uint8Array;
  /** COSE alg the key is restricted to, when the key says so. */
  alg?: number;
  publicKey?: KeyObject;
  privateKey?: KeyObject;
  /** Symmetric key bytes (HMAC). */
  secret?: Uint8Array;
}

/** A key the device trusts to author manifests (S5), with an optional name for reports. */
export interface TrustedKey extends CoseKey {
  name?: string;
}

/** COSE_Key labels and values (RFC 9052 §7.1, RFC 9053 §7). */
export const COSE_KEY_KTY = 1;
export const COSE_KEY_KID = 2;
export const COSE_KEY_ALG = 3;
export const COSE_KEY_CRV = -1;
export const COSE_KEY_X = -2;
export const COSE_KEY_Y = -3;
export const COSE_KEY_D = -4;
export const COSE_KEY_K = -1;
export const KTY_OKP = 1;
export const KTY_EC2 = 2;
export const KTY_SYMMETRIC = 4;
const CRV_TO_JWK: Record<number, string> = { 1: 'P-256', 2: 'P-384', 3: 'P-521', 6: 'Ed25519' };
const JWK_TO_CRV: Record<string, number> = { 'P-256': 1, 'P-384': 2, 'P-521': 3, Ed25519: 6 };

function invalid(message: string): never {
  throw new SuitError('cose_key_invalid', message);
}

const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
const fromB64u = (s: unknown, field: string): Uint8Array => {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s)) invalid(`expected base64url in JWK field "${field}"`);
  return new Uint8Array(Buffer.from(s, 'base64url'));
};

function fromPem(pem: string): CoseKey {
  const blocks = [...pem.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g)];
  if (blocks.length === 0) invalid('expected a PEM block, came none');
  for (const b of blocks) {
    const label = b[1]!;
    try {
      if (label === 'PUBLIC KEY') return { publicKey: createPublicKey(b[0]) };
      if (label === 'PRIVATE KEY' || label === 'EC PRIVATE KEY') {
        const privateKey = createPrivateKey(b[0]);
        return { privateKey, publicKey: createPublicKey(privateKey) };
      }
      if (label === 'CERTIFICATE') return { publicKey: createPublicKey(b[0]) };
    } catch (e) {
      invalid(`expected a readable ${label} PEM block: ${(e as Error).message}`);
    }
  }
  return invalid(`expected a PUBLIC KEY, PRIVATE KEY, EC PRIVATE KEY or CERTIFICATE block, came ${blocks.map((b) => b[1]).join(', ')}`);
}

function fromJwk(jwk: JsonWebKey & { kid?: string }): CoseKey {
  const out: CoseKey = {};
  if (typeof jwk.kid === 'string') out.kid = new Uint8Array(Buffer.from(jwk.kid, 'utf8'));
  if (jwk.kty === 'oct') {
    out.secret = fromB64u(jwk.k, 'k');
    return out;
  }
  if (jwk.kty !== 'EC' && jwk.kty !== 'OKP') invalid(`expected JWK kty EC, OKP or oct, came ${String(jwk.kty)}`);
  try {
    if (jwk.d) {
      out.privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
      out.publicKey = createPublicKey(out.privateKey);
    } else out.publicKey = createPublicKey({ key: jwk, format: 'jwk' });
  } catch (e) {
    invalid(`expected a valid ${jwk.kty} JWK: ${(e as Error).message}`);
  }
  return out;
}

function bytesField(m: CborMap, label: number, name: string): Uint8Array | undefined {
  const v = m.get(label);
  if (v === undefined) return undefined;
  if (!(v instanceof Uint8Array)) invalid(`expected COSE_Key ${name} (${label}) as bstr`);
  return v;
}

function fromCoseKey(m: CborMap): CoseKey {
  const kty = m.get(COSE_KEY_KTY);
  const out: CoseKey = {};
  const kid = bytesField(m, COSE_KEY_KID, 'kid');
  if (kid) out.kid = kid;
  const alg = m.get(COSE_KEY_ALG);
  if (typeof alg === 'number') out.alg = alg;
  if (kty === KTY_SYMMETRIC) {
    const k = bytesField(m, COSE_KEY_K, 'k');
    if (!k) invalid('expected COSE_Key k (-1) for a symmetric key');
    out.secret = k;
    return out;
  }
  const crv = m.get(COSE_KEY_CRV);
  const crvName = typeof crv === 'number' ? CRV_TO_JWK[crv] : undefined;
  if (!crvName) invalid(`expected COSE_Key crv 1, 2, 3 or 6, came ${String(crv)}`);
  const x = bytesField(m, COSE_KEY_X, 'x');
  const d = bytesField(m, COSE_KEY_D, 'd');
  if (!x) invalid('expected COSE_Key x (-2)');
  let jwk: JsonWebKey;
  if (kty === KTY_OKP) {
    if (crvName !== 'Ed25519') invalid(`expected OKP crv Ed25519 (6), came ${String(crv)}`);
    jwk = { kty: 'OKP', crv: crvName, x: b64u(x) };
  } else if (kty === KTY_EC2) {
    const y = bytesField(m, COSE_KEY_Y, 'y');
    if (!y) invalid('expected COSE_Key y (-3) as bstr (compressed points are not supported)');
    jwk = { kty: 'EC', crv: crvName, x: b64u(x), y: b64u(y) };
  } else return invalid(`expected COSE_Key kty 1 (OKP), 2 (EC2) or 4 (Symmetric), came ${String(kty)}`);
  if (d) jwk.d = b64u(d);
  const k = fromJwk(jwk);
  return { ...out, ...k };
}

export type KeyInput = string | Uint8Array | CborMap | (JsonWebKey & { kid?: string }) | KeyObject;

/**
 * Imports a key from a PEM string, a JWK object, a COSE_Key (CBOR bytes or decoded Map) or a
 * KeyObject. `extra` adds a kid or alg restriction.
 */
export function importKey(input: KeyInput, extra: { kid?: Uint8Array | string; alg?: number } = {}): CoseKey {
  let key: CoseKey;
  if (typeof input === 'string') key = input.trimStart().startsWith('{') ? fromJwk(JSON.parse(input)) : fromPem(input);
  else if (input instanceof Uint8Array) {
    let m: CborValue;
    try {
      m = decodeCbor(input, { maxDepth: 8 });
    } catch (e) {
      return invalid(`expected a COSE_Key in CBOR: ${(e as Error).message}`);
    }
    if (!(m instanceof Map)) invalid('expected a COSE_Key map');
    key = fromCoseKey(m);
  } else if (input instanceof Map) key = fromCoseKey(input);
  else if (isKeyObject(input)) {
    if (input.type === 'secret') key = { secret: new Uint8Array(input.export()) };
    else if (input.type === 'private') key = { privateKey: input, publicKey: createPublicKey(input) };
    else key = { publicKey: input };
  } else key = fromJwk(input);
  if (extra.kid !== undefined) key.kid = typeof extra.kid === 'string' ? new Uint8Array(Buffer.from(extra.kid, 'utf8')) : extra.kid;
  if (extra.alg !== undefined) key.alg = extra.alg;
  return key;
}

function isKeyObject(v: unknown): v is KeyObject {
  return typeof v === 'object' && v !== null && 'asymmetricKeyType' in v && typeof (v as KeyObject).export === 'function';
}

/** A symmetric key for COSE_Mac0. */
export function symmetricKey(secret: Uint8Array, kid?: Uint8Array): CoseKey {
  createSecretKey(secret);
  return kid ? { secret, kid } : { secret };
}

/** The public COSE_Key (EC2 or OKP) of a key, as CBOR bytes. */
export function exportCoseKey(key: CoseKey, options: { includePrivate?: boolean } = {}): Uint8Array {
  if (key.secret) {
    const m: CborMap = new Map<CborValue, CborValue>([[COSE_KEY_KTY, KTY_SYMMETRIC]]);
    if (key.kid) m.set(COSE_KEY_KID, key.kid);
    m.set(COSE_KEY_K, key.secret);
    return encodeCbor(m);
  }
  const src = options.includePrivate && key.privateKey ? key.privateKey : key.publicKey;
  if (!src) invalid('expected a key with a public half');
  const jwk = src.export({ format: 'jwk' });
  const m: CborMap = new Map();
  m.set(COSE_KEY_KTY, jwk.kty === 'OKP' ? KTY_OKP : KTY_EC2);
  if (key.kid) m.set(COSE_KEY_KID, key.kid);
  if (key.alg !== undefined) m.set(COSE_KEY_ALG, key.alg);
  m.set(COSE_KEY_CRV, JWK_TO_CRV[jwk.crv ?? ''] ?? invalid(`unsupported curve ${String(jwk.crv)}`));
  m.set(COSE_KEY_X, fromB64u(jwk.x, 'x'));
  if (jwk.y) m.set(COSE_KEY_Y, fromB64u(jwk.y, 'y'));
  if (options.includePrivate && jwk.d) m.set(COSE_KEY_D, fromB64u(jwk.d, 'd'));
  return encodeCbor(m);
}

/** Generates a signing key pair for ES256 (P-256) or Ed25519. */
export function generateSigningKey(alg: 'es256' | 'ed25519'): { key: CoseKey; privatePem: string; publicPem: string } {
  const pair = alg === 'es256' ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' }) : generateKeyPairSync('ed25519');
  return {
    key: { privateKey: pair.privateKey, publicKey: pair.publicKey },
    privatePem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** The COSE alg a key signs with by default: ES256 for P-256, EdDSA for Ed25519. */
export function defaultAlgFor(key: CoseKey): number {
  if (key.alg !== undefined) return key.alg;
  if (key.secret) return 5;
  const k = key.privateKey ?? key.publicKey;
  if (k?.asymmetricKeyType === 'ed25519') return -8;
  const curve = k?.asymmetricKeyDetails?.namedCurve;
  if (curve === 'prime256v1') return -7;
  if (curve === 'secp384r1') return -35;
  if (curve === 'secp521r1') return -36;
  return invalid(`expected a P-256, P-384, P-521 or Ed25519 key, came ${k?.asymmetricKeyType ?? 'none'}`);
}
