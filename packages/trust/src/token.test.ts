import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { importKey } from '@tips/suit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeClaims, encodeClaims, signCwt, signJwt, signPop, TokenCodecError, verifyCwt, verifyJwt, verifyPop } from './token.ts';

const VECTORS = join(import.meta.dirname, '../../suit/test/vectors/cose-wg/CWT');
const b64u = (h: string) => Buffer.from(h, 'hex').toString('base64url');

describe('S11 CWT claims codec and signatures', () => {
  it('verifies and decodes the RFC 8392 A.3 signed CWT (COSE WG vector)', () => {
    const v = JSON.parse(readFileSync(join(VECTORS, 'A_3.json'), 'utf8'));
    const k = v.input.sign0.key;
    const key = importKey({ kty: 'EC', crv: 'P-256', x: b64u(k.x_hex), y: b64u(k.y_hex) });
    const claims = verifyCwt(new Uint8Array(Buffer.from(v.output.cbor, 'hex')), [key]);
    expect(claims).toEqual({
      iss: 'coap://as.example.com',
      sub: 'erikw',
      aud: 'coap://light.example.com',
      exp: 1444064944,
      nbf: 1443944944,
      iat: 1443944944,
      cti: new Uint8Array([0x0b, 0x71]),
    });
    // Our encoder produces exactly the vector's claims bytes.
    expect(Buffer.from(encodeClaims(claims)).toString('hex')).toBe(v.input.plaintext_hex);
    // A flipped signature bit fails.
    const bad = Buffer.from(v.output.cbor, 'hex');
    bad[bad.length - 1]! ^= 1;
    expect(() => verifyCwt(new Uint8Array(bad), [key])).toThrow();
  });

  it('round-trips every claim, cnf included, in CWT and JWT form', () => {
    const issuer = importKey(generateKeyPairSync('ed25519').privateKey);
    const holder = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const claims = { iss: 'urn:tips:master', sub: 's', aud: 'urn:tips:master', exp: 2000000000, nbf: 1, iat: 2, cti: new Uint8Array([1, 2, 3]), scope: 'pull:glaze:g1 update:space:s1', cnf: holder.publicKey };
    const fromCwt = verifyCwt(signCwt(claims, issuer), [issuer]);
    const fromJwt = verifyJwt(signJwt(claims, issuer, 'k'), [issuer]);
    for (const c of [fromCwt, fromJwt]) {
      const { cnf, ...rest } = c;
      const { cnf: _c, ...want } = claims;
      expect(rest).toEqual(want);
      expect(cnf!.export({ format: 'jwk' })).toEqual(holder.publicKey.export({ format: 'jwk' }));
    }
    const other = importKey(generateKeyPairSync('ed25519').privateKey);
    expect(() => verifyCwt(signCwt(claims, issuer), [other])).toThrow();
    expect(() => verifyJwt(signJwt(claims, issuer), [other])).toThrow();
  });

  it('refuses a JWT with alg "none" and claims of the wrong type', () => {
    const issuer = importKey(generateKeyPairSync('ed25519').privateKey);
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"iss":"x"}').toString('base64url')}.AAAA`;
    expect(() => verifyJwt(none, [issuer])).toThrow();
    expect(() => decodeClaims(new Uint8Array([0xa1, 0x04, 0x61, 0x78]))).toThrow(/exp: expected a non-negative integer/);
    expect(() => decodeClaims(new Uint8Array([0xa2, 0x01, 0x61, 0x78, 0x01, 0x61, 0x79]))).toThrow(TokenCodecError);
  });

  it('proof of possession binds the nonce and the token; another key or token fails', () => {
    const holder = generateKeyPairSync('ed25519');
    const sig = signPop('n1', 'tok', holder.privateKey);
    expect(verifyPop('n1', 'tok', sig, holder.publicKey)).toBe(true);
    expect(verifyPop('n2', 'tok', sig, holder.publicKey)).toBe(false);
    expect(verifyPop('n1', 'tok2', sig, holder.publicKey)).toBe(false);
    expect(verifyPop('n1', 'tok', signPop('n1', 'tok', generateKeyPairSync('ed25519').privateKey), holder.publicKey)).toBe(false);
  });

  it('fuzz: any bytes either decode to claims or throw a TokenCodecError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          decodeClaims(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(TokenCodecError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
