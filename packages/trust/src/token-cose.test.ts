import { generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { type CborMap, type CborValue, CborTag, encodeCbor, importKey, sigStructure } from '@tips/suit';
import { describe, expect, it } from 'vitest';
import { checkToken, encodeClaims, signPop, TokenCheckError, type TokenClaims, verifyCwt } from './token.ts';

const issuer = importKey(generateKeyPairSync('ed25519').privateKey);
const holder = generateKeyPairSync('ed25519');
const now = 1_800_000_000;
const claims: TokenClaims = { iss: 'urn:tips:master', aud: 'urn:tips:metal:m1', exp: now + 300, iat: now, scope: 'pull:glaze:g1', cnf: holder.publicKey };

/** A CWT whose signature is right for its protected bytes, with the headers put where we say. */
function cwt(p: CborMap, u: CborMap, tag61 = false): string {
  const pBytes = p.size === 0 ? new Uint8Array(0) : encodeCbor(p);
  const payload = encodeClaims(claims);
  const sig = nodeSign(null, sigStructure('Signature1', pBytes, new Uint8Array(0), payload), issuer.privateKey!);
  let v: CborValue = new CborTag(18, [pBytes, u, payload, new Uint8Array(sig)]);
  if (tag61) v = new CborTag(61, v);
  return Buffer.from(encodeCbor(v)).toString('base64url');
}

function check(token: string): string {
  try {
    checkToken(token, { issuerKeys: [issuer], issuer: 'urn:tips:master', audience: 'urn:tips:metal:m1', scope: 'pull:glaze:g1', now, proof: { nonce: 'n1', signature: signPop('n1', token, holder.privateKey) } });
    return 'accepted';
  } catch (e) {
    expect(e).toBeInstanceOf(TokenCheckError);
    return (e as TokenCheckError).code;
  }
}

const m = (...e: [CborValue, CborValue][]): CborMap => new Map(e);
const EDDSA = -8;

describe('S11 CWT over COSE: the algorithm must be protected (RFC 9052 §3.1)', () => {
  it('baseline: the same token with alg in the protected bucket is accepted, tag 61 or not', () => {
    expect(check(cwt(m([1, EDDSA]), m()))).toBe('accepted');
    expect(check(cwt(m([1, EDDSA]), m([4, new Uint8Array([1])]), true))).toBe('accepted');
  });

  it('a correctly signed CWT with alg only in the unprotected bucket is refused', () => {
    for (const tag61 of [false, true]) {
      const token = cwt(m(), m([1, EDDSA]), tag61);
      expect(() => verifyCwt(new Uint8Array(Buffer.from(token, 'base64url')), [issuer])).toThrow(expect.objectContaining({ code: 'cose_bad_structure' }));
      expect(check(token)).not.toBe('accepted');
      expect(check(token)).toBe('token_malformed');
    }
    // Other protected headers do not make up for it.
    expect(check(cwt(m([3, 0]), m([1, EDDSA])))).toBe('token_malformed');
  });

  it('alg in both buckets, crit in the unprotected bucket and an unknown critical header are refused', () => {
    expect(check(cwt(m([1, EDDSA]), m([1, EDDSA])))).toBe('token_malformed');
    expect(check(cwt(m([1, EDDSA]), m([2, [1]])))).toBe('token_malformed');
    expect(check(cwt(m([1, EDDSA], [2, [99]], [99, 1]), m()))).toBe('token_malformed');
    expect(check(cwt(m([1, EDDSA], [2, [1]]), m()))).toBe('accepted');
  });
});
