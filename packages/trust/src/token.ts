/**
 * CWT (RFC 8392) and its JWT twin (RFC 7519) for TIPS authorization tokens (S11): the claims
 * codec, COSE_Sign1 signing/verification over @tips/suit, proof-of-possession keys (`cnf`,
 * RFC 8747 / RFC 7800), and `checkToken` — what a metal (or any resource server) runs to accept a
 * token for its own hop without asking the master. Pure over bytes and KeyObjects.
 */
import { createHash, createPublicKey, type KeyObject, sign as nodeSign, verify as nodeVerify, timingSafeEqual } from 'node:crypto';
import {
  type CborMap,
  CborTag,
  type CborValue,
  type CoseKey,
  coseSign1Sign,
  coseSign1Verify,
  decodeCbor,
  defaultAlgFor,
  encodeCbor,
  exportCoseKey,
  HEADER_ALG,
  HEADER_KID,
  importKey,
  parseCoseSingle,
  typeName,
} from '@tips/suit';

/** CWT claim keys (RFC 8392 §4, RFC 8747 cnf, RFC 9200 scope). */
export const CWT_ISS = 1;
export const CWT_SUB = 2;
export const CWT_AUD = 3;
export const CWT_EXP = 4;
export const CWT_NBF = 5;
export const CWT_IAT = 6;
export const CWT_CTI = 7;
export const CWT_CNF = 8;
export const CWT_SCOPE = 9;
/** cnf members (RFC 8747 §3.1). */
export const CNF_COSE_KEY = 1;
/** The CWT CBOR tag (RFC 8392 §6). */
export const CWT_TAG = 61;

export class TokenCodecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenCodecError';
  }
}
const bad = (m: string): never => {
  throw new TokenCodecError(m);
};

export interface TokenClaims {
  iss?: string;
  sub?: string;
  aud?: string;
  /** Seconds since the epoch. */
  exp?: number;
  nbf?: number;
  iat?: number;
  cti?: Uint8Array;
  /** Space-separated scope tokens (RFC 9200 §5.8.1). */
  scope?: string;
  /** The holder's public key (proof of possession). */
  cnf?: KeyObject;
}

function str(v: CborValue, name: string): string {
  return typeof v === 'string' ? v : bad(`${name}: expected a text string, came ${typeName(v)}`);
}
function time(v: CborValue, name: string): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  return bad(`${name}: expected a non-negative integer NumericDate, came ${typeName(v)}`);
}

/** Encodes claims as the CWT claims map. */
export function encodeClaims(c: TokenClaims): Uint8Array {
  const m: CborMap = new Map();
  if (c.iss !== undefined) m.set(CWT_ISS, c.iss);
  if (c.sub !== undefined) m.set(CWT_SUB, c.sub);
  if (c.aud !== undefined) m.set(CWT_AUD, c.aud);
  if (c.exp !== undefined) m.set(CWT_EXP, c.exp);
  if (c.nbf !== undefined) m.set(CWT_NBF, c.nbf);
  if (c.iat !== undefined) m.set(CWT_IAT, c.iat);
  if (c.cti !== undefined) m.set(CWT_CTI, c.cti);
  if (c.cnf !== undefined) m.set(CWT_CNF, new Map([[CNF_COSE_KEY, decodeCbor(exportCoseKey({ publicKey: c.cnf }))]]));
  if (c.scope !== undefined) m.set(CWT_SCOPE, c.scope);
  return encodeCbor(m);
}

/** Strictly decodes a CWT claims map (the codec rejects duplicate keys, indefinite lengths, trailing bytes). */
export function decodeClaims(bytes: Uint8Array): TokenClaims {
  let v: CborValue;
  try {
    v = decodeCbor(bytes, { maxDepth: 8 });
  } catch (e) {
    return bad(`claims: ${(e as Error).message}`);
  }
  if (!(v instanceof Map)) return bad(`claims: expected a map, came ${typeName(v)}`);
  const c: TokenClaims = {};
  for (const [k, val] of v) {
    switch (k) {
      case CWT_ISS:
        c.iss = str(val, 'iss');
        break;
      case CWT_SUB:
        c.sub = str(val, 'sub');
        break;
      case CWT_AUD:
        c.aud = str(val, 'aud');
        break;
      case CWT_EXP:
        c.exp = time(val, 'exp');
        break;
      case CWT_NBF:
        c.nbf = time(val, 'nbf');
        break;
      case CWT_IAT:
        c.iat = time(val, 'iat');
        break;
      case CWT_CTI:
        c.cti = val instanceof Uint8Array ? val : bad(`cti: expected a byte string, came ${typeName(val)}`);
        break;
      case CWT_SCOPE:
        c.scope = str(val, 'scope');
        break;
      case CWT_CNF: {
        if (!(val instanceof Map)) return bad(`cnf: expected a map, came ${typeName(val)}`);
        const key = val.get(CNF_COSE_KEY);
        if (!(key instanceof Map) || val.size !== 1) return bad('cnf: expected exactly a COSE_Key (1)');
        try {
          const k2 = importKey(key);
          c.cnf = k2.publicKey ?? bad('cnf: expected a public key');
        } catch (e) {
          return bad(`cnf: ${(e as Error).message}`);
        }
        break;
      }
      default:
        // Unknown claims are ignored, as RFC 8392 §3 requires of processors that do not understand them.
        break;
    }
  }
  return c;
}

/** Signs claims as a tagged COSE_Sign1 (a CWT). */
export function signCwt(claims: TokenClaims, key: CoseKey, kid?: Uint8Array): Uint8Array {
  const p: CborMap = new Map<CborValue, CborValue>([[HEADER_ALG, defaultAlgFor(key)]]);
  const u: CborMap = new Map();
  if (kid) u.set(HEADER_KID, kid);
  return coseSign1Sign({ protectedHeaders: p, unprotectedHeaders: u, payload: encodeClaims(claims) }, key);
}

/** Verifies a CWT (COSE_Sign1, optionally inside tag 61) against the issuer keys; returns its claims. */
export function verifyCwt(bytes: Uint8Array, keys: readonly CoseKey[]): TokenClaims {
  let v: CborValue;
  try {
    v = decodeCbor(bytes, { maxDepth: 16 });
  } catch (e) {
    return bad(`CWT: ${(e as Error).message}`);
  }
  if (v instanceof CborTag && v.tag === CWT_TAG) v = v.value;
  const cose = parseCoseSingle(v, 'sign1');
  const verified = coseSign1Verify(cose, keys);
  return decodeClaims(verified.payload);
}

const b64u = (b: Uint8Array | Buffer | string) => Buffer.from(b).toString('base64url');

/** The JWT form of the same claims (compact JWS, EdDSA or ES256), for HTTP tools. */
export function signJwt(claims: TokenClaims, key: CoseKey, kid?: string): string {
  const priv = key.privateKey ?? bad('JWT: expected a private key');
  const alg = priv.asymmetricKeyType === 'ed25519' ? 'EdDSA' : 'ES256';
  const header = { alg, typ: 'JWT', ...(kid ? { kid } : {}) };
  const payload: Record<string, unknown> = {};
  if (claims.iss !== undefined) payload.iss = claims.iss;
  if (claims.sub !== undefined) payload.sub = claims.sub;
  if (claims.aud !== undefined) payload.aud = claims.aud;
  if (claims.exp !== undefined) payload.exp = claims.exp;
  if (claims.nbf !== undefined) payload.nbf = claims.nbf;
  if (claims.iat !== undefined) payload.iat = claims.iat;
  if (claims.cti !== undefined) payload.jti = b64u(claims.cti);
  if (claims.scope !== undefined) payload.scope = claims.scope;
  if (claims.cnf !== undefined) payload.cnf = { jwk: claims.cnf.export({ format: 'jwk' }) };
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(payload))}`;
  const sig = alg === 'EdDSA' ? nodeSign(null, Buffer.from(input), priv) : nodeSign('sha256', Buffer.from(input), { key: priv, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64u(sig)}`;
}

const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Verifies a compact JWT: only EdDSA/ES256 matching the key type (never "none"). */
export function verifyJwt(token: string, keys: readonly CoseKey[]): TokenClaims {
  if (!JWT_RE.test(token)) bad('JWT: expected three base64url parts');
  const [h, p, s] = token.split('.') as [string, string, string];
  let header: { alg?: unknown };
  let payload: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  } catch {
    return bad('JWT: expected JSON header and payload');
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) bad('JWT: expected a JSON object payload');
  const sig = Buffer.from(s, 'base64url');
  const data = Buffer.from(`${h}.${p}`);
  const ok = keys.some((k) => {
    const pub = k.publicKey;
    if (!pub) return false;
    if (header.alg === 'EdDSA' && pub.asymmetricKeyType === 'ed25519') return nodeVerify(null, data, pub, sig);
    if (header.alg === 'ES256' && pub.asymmetricKeyType === 'ec' && sig.length === 64) return nodeVerify('sha256', data, { key: pub, dsaEncoding: 'ieee-p1363' }, sig);
    return false;
  });
  if (!ok) throw new JwtSignatureError();
  const c: TokenClaims = {};
  const s2 = (k: string) => (payload[k] === undefined ? undefined : typeof payload[k] === 'string' ? (payload[k] as string) : bad(`${k}: expected a string`));
  const t2 = (k: string) => (payload[k] === undefined ? undefined : Number.isInteger(payload[k]) && (payload[k] as number) >= 0 ? (payload[k] as number) : bad(`${k}: expected a NumericDate`));
  c.iss = s2('iss');
  c.sub = s2('sub');
  c.aud = s2('aud');
  c.exp = t2('exp');
  c.nbf = t2('nbf');
  c.iat = t2('iat');
  const jti = s2('jti');
  if (jti !== undefined) c.cti = new Uint8Array(Buffer.from(jti, 'base64url'));
  c.scope = s2('scope');
  const cnf = payload.cnf as { jwk?: Record<string, unknown> } | undefined;
  if (cnf !== undefined) {
    try {
      c.cnf = createPublicKey({ key: cnf.jwk as never, format: 'jwk' });
    } catch {
      bad('cnf: expected { jwk } with a public key');
    }
  }
  for (const k of Object.keys(c) as (keyof TokenClaims)[]) if (c[k] === undefined) delete c[k];
  return c;
}

export class JwtSignatureError extends Error {
  readonly code = 'suit_signature_invalid';
}

/** The bytes a holder signs to prove possession: binds the challenge to this very token. */
export function popMessage(nonce: string, token: string): Buffer {
  return Buffer.from(`tips-pop-v1:${nonce}:${createHash('sha256').update(token).digest('hex')}`, 'utf8');
}

/** Signs a PoP message with the holder's key (Ed25519 or P-256/SHA-256, r||s). */
export function signPop(nonce: string, token: string, key: KeyObject): string {
  const data = popMessage(nonce, token);
  const sig = key.asymmetricKeyType === 'ed25519' ? nodeSign(null, data, key) : nodeSign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
  return b64u(sig);
}

export function verifyPop(nonce: string, token: string, signature: string, key: KeyObject): boolean {
  const data = popMessage(nonce, token);
  const sig = Buffer.from(signature, 'base64url');
  try {
    if (key.asymmetricKeyType === 'ed25519') return sig.length === 64 && nodeVerify(null, data, key, sig);
    return sig.length === 64 && nodeVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig);
  } catch {
    return false;
  }
}

/** SubjectPublicKeyInfo DER of a key: how a cnf key is compared with a TLS certificate's key. */
export function spkiOf(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}

export type TokenCheckCode =
  | 'token_malformed'
  | 'token_signature_invalid'
  | 'token_issuer_unknown'
  | 'token_expired'
  | 'token_not_yet_valid'
  | 'token_audience_mismatch'
  | 'token_scope_insufficient'
  | 'pop_required'
  | 'pop_invalid';

export class TokenCheckError extends Error {
  constructor(
    readonly code: TokenCheckCode,
    message: string,
  ) {
    super(message);
    this.name = 'TokenCheckError';
  }
}

export interface TokenCheck {
  /** The issuer's public keys (e.g. from the master's /api/v1/tokens/issuer-key). */
  issuerKeys: readonly CoseKey[];
  issuer: string;
  /** This resource server, e.g. urn:tips:metal:<own TIPS ID>. */
  audience: string;
  /** A scope the request needs. */
  scope?: string;
  /** Seconds since the epoch. */
  now: number;
  /** Proof of possession: a signature over a nonce this verifier issued, or the TLS peer's SPKI. */
  proof?: { nonce: string; signature: string } | { tlsSpki: Uint8Array };
}

/**
 * Checks a token for one hop: signature, issuer, time, audience, scope, then proof of possession
 * of the `cnf` key. The caller owns nonce freshness (issue each nonce once, accept it once).
 */
export function checkToken(token: string, c: TokenCheck): { claims: TokenClaims; format: 'cwt' | 'jwt' } {
  let claims: TokenClaims;
  let format: 'cwt' | 'jwt';
  try {
    if (token.includes('.')) {
      format = 'jwt';
      claims = verifyJwt(token, c.issuerKeys);
    } else {
      format = 'cwt';
      if (!/^[A-Za-z0-9_-]+$/.test(token)) throw new TokenCodecError('expected base64url');
      claims = verifyCwt(new Uint8Array(Buffer.from(token, 'base64url')), c.issuerKeys);
    }
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (e instanceof JwtSignatureError || code === 'suit_signature_invalid' || code === 'suit_untrusted_key') {
      throw new TokenCheckError('token_signature_invalid', 'the token is not signed by a trusted issuer');
    }
    throw new TokenCheckError('token_malformed', `the token cannot be read: ${(e as Error).message}`);
  }
  if (claims.iss !== c.issuer) throw new TokenCheckError('token_issuer_unknown', 'the token names another issuer');
  if (claims.exp === undefined || c.now >= claims.exp) throw new TokenCheckError('token_expired', 'the token has expired');
  if (claims.nbf !== undefined && c.now < claims.nbf) throw new TokenCheckError('token_not_yet_valid', 'the token is not valid yet');
  if (claims.aud !== c.audience) throw new TokenCheckError('token_audience_mismatch', `the token is for another audience, not ${c.audience}`);
  const scopes = (claims.scope ?? '').split(' ').filter(Boolean);
  if (c.scope !== undefined && !scopes.includes(c.scope)) throw new TokenCheckError('token_scope_insufficient', `the token does not grant ${c.scope.slice(0, 100)}`);
  if (!claims.cnf) throw new TokenCheckError('pop_required', 'the token carries no holder key');
  if (!c.proof) throw new TokenCheckError('pop_required', 'proof of possession of the token key is required');
  if ('tlsSpki' in c.proof) {
    const want = spkiOf(claims.cnf);
    if (!(want.length === c.proof.tlsSpki.length && timingSafeEqual(want, c.proof.tlsSpki))) throw new TokenCheckError('pop_invalid', 'the TLS client key is not the token key');
  } else if (!verifyPop(c.proof.nonce, token, c.proof.signature, claims.cnf)) {
    throw new TokenCheckError('pop_invalid', 'the proof is not signed by the token key');
  }
  return { claims, format };
}
