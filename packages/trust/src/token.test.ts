import { createHash, generateKeyPairSync, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CborTag, decodeCbor, encodeCbor, importKey } from '@tips/suit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkToken,
  decodeClaims,
  encodeClaims,
  JwtSignatureError,
  popMessage,
  signCwt,
  signJwt,
  signPop,
  spkiOf,
  type TokenClaims,
  TokenCodecError,
  verifyCwt,
  verifyJwt,
  verifyPop,
} from './token.ts';

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

describe('S11 checkToken: every stage a resource server runs, at its boundaries', () => {
  const issuer = importKey(generateKeyPairSync('ed25519').privateKey);
  const issuerEc = importKey(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey);
  const holderEd = generateKeyPairSync('ed25519');
  const holderEc = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const base = { iss: 'urn:tips:master', sub: 'urn:tips:owner:o', aud: 'urn:tips:metal:m', exp: 1000, nbf: 100, iat: 100, scope: 'pull:glaze:g update:space:s', cnf: holderEd.publicKey };
  const cwt = (c: object = base, k = issuer) => Buffer.from(signCwt(c as TokenClaims, k)).toString('base64url');
  const jwt = (c: object = base, k = issuer) => signJwt(c as TokenClaims, k);
  const check = { issuerKeys: [issuer], issuer: 'urn:tips:master', audience: 'urn:tips:metal:m', now: 500 };
  const sig = (token: string, nonce = 'n', key = holderEd.privateKey) => ({ nonce, signature: signPop(nonce, token, key) });
  /** The refusal's code — and every refusal must say what is wrong. */
  const code = (f: () => unknown): string => {
    try {
      f();
      return 'accepted';
    } catch (e) {
      const { code: c, message } = e as { code?: string; message?: string };
      return message ? (c ?? String(e)) : `${c} without a message`;
    }
  };

  it('accepts a CWT and a JWT with a signature proof or the TLS key, and says which format it read', () => {
    for (const [token, format] of [
      [cwt(), 'cwt'],
      [jwt(), 'jwt'],
    ] as const) {
      const r = checkToken(token, { ...check, scope: 'update:space:s', proof: sig(token) });
      expect(r.format).toBe(format);
      expect(r.claims.sub).toBe('urn:tips:owner:o');
      expect(checkToken(token, { ...check, proof: { tlsSpki: new Uint8Array(spkiOf(holderEd.publicKey)) } }).format).toBe(format);
    }
    // A P-256 issuer (ES256 / COSE -7) and a P-256 holder work the same way.
    const t = jwt({ ...base, cnf: holderEc.publicKey }, issuerEc);
    expect(checkToken(t, { ...check, issuerKeys: [issuerEc], proof: sig(t, 'n', holderEc.privateKey) }).format).toBe('jwt');
    const c = cwt({ ...base, cnf: holderEc.publicKey }, issuerEc);
    expect(checkToken(c, { ...check, issuerKeys: [issuerEc], proof: sig(c, 'n', holderEc.privateKey) }).format).toBe('cwt');
  });

  it('time: expired at exp exactly, valid the second before; not valid before nbf, valid at nbf; no exp is expired', () => {
    const t = cwt();
    expect(code(() => checkToken(t, { ...check, now: 999, proof: sig(t) }))).toBe('accepted');
    expect(code(() => checkToken(t, { ...check, now: 1000, proof: sig(t) }))).toBe('token_expired');
    expect(code(() => checkToken(t, { ...check, now: 100, proof: sig(t) }))).toBe('accepted');
    expect(code(() => checkToken(t, { ...check, now: 99, proof: sig(t) }))).toBe('token_not_yet_valid');
    const { exp: _e, ...noExp } = base;
    const t2 = cwt(noExp);
    expect(code(() => checkToken(t2, { ...check, now: 0, proof: sig(t2) }))).toBe('token_expired');
    const { nbf: _n, ...noNbf } = base;
    const t3 = cwt(noNbf);
    expect(code(() => checkToken(t3, { ...check, now: 0, proof: sig(t3) }))).toBe('accepted');
  });

  it('issuer, audience and scope must match exactly; scopes are whole space-separated words', () => {
    const t = cwt();
    expect(code(() => checkToken(t, { ...check, issuer: 'urn:tips:other', proof: sig(t) }))).toBe('token_issuer_unknown');
    expect(code(() => checkToken(cwt({ ...base, iss: undefined }), { ...check, proof: sig(t) }))).toBe('token_issuer_unknown');
    expect(code(() => checkToken(t, { ...check, audience: 'urn:tips:metal:n', proof: sig(t) }))).toBe('token_audience_mismatch');
    expect(code(() => checkToken(t, { ...check, scope: 'pull:glaze:g', proof: sig(t) }))).toBe('accepted');
    for (const s of ['pull:glaze', 'glaze:g', 'pull:glaze:g update:space:s', '', 'update:space:s2']) {
      expect(code(() => checkToken(t, { ...check, scope: s, proof: sig(t) })), s).toBe('token_scope_insufficient');
    }
    const none = cwt({ ...base, scope: undefined });
    expect(code(() => checkToken(none, { ...check, scope: 'pull:glaze:g', proof: sig(none) }))).toBe('token_scope_insufficient');
    expect(code(() => checkToken(none, { ...check, proof: sig(none) }))).toBe('accepted');
    const spaced = cwt({ ...base, scope: '  pull:glaze:g  ' });
    expect(code(() => checkToken(spaced, { ...check, scope: 'pull:glaze:g', proof: sig(spaced) }))).toBe('accepted');
  });

  it('proof of possession: none, a token without cnf, another TLS key, a key of another length, a signature by another key', () => {
    const t = cwt();
    expect(code(() => checkToken(t, check))).toBe('pop_required');
    const noCnf = cwt({ ...base, cnf: undefined });
    expect(code(() => checkToken(noCnf, { ...check, proof: sig(noCnf) }))).toBe('pop_required');
    expect(code(() => checkToken(t, { ...check, proof: { tlsSpki: new Uint8Array(spkiOf(generateKeyPairSync('ed25519').publicKey)) } }))).toBe('pop_invalid');
    expect(code(() => checkToken(t, { ...check, proof: { tlsSpki: new Uint8Array(spkiOf(holderEc.publicKey)) } }))).toBe('pop_invalid');
    expect(code(() => checkToken(t, { ...check, proof: sig(t, 'n', generateKeyPairSync('ed25519').privateKey) }))).toBe('pop_invalid');
  });

  it('signature and form: an untrusted issuer (CWT and JWT), characters outside base64url, garbage CBOR', () => {
    const other = importKey(generateKeyPairSync('ed25519').privateKey);
    expect(code(() => checkToken(cwt(base, other), check))).toBe('token_signature_invalid');
    expect(code(() => checkToken(jwt(base, other), check))).toBe('token_signature_invalid');
    expect(code(() => checkToken(`${cwt()}=`, check))).toBe('token_malformed');
    expect(code(() => checkToken('AAAA', check))).toBe('token_malformed');
    expect(code(() => checkToken('a.b', check))).toBe('token_malformed');
  });
});

describe('S11 token codec details a metal relies on', () => {
  const issuer = importKey(generateKeyPairSync('ed25519').privateKey);
  const bytesOf = (m: Map<number, unknown>) => encodeCbor(m as never);

  it('the proof-of-possession message is exactly tips-pop-v1:<nonce>:<sha256(token) hex> (another implementation must sign the same bytes)', () => {
    expect(popMessage('n0nce', 'tok').toString('utf8')).toBe(`tips-pop-v1:n0nce:${createHash('sha256').update('tok').digest('hex')}`);
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const s = signPop('n', 't', ec.privateKey);
    expect(Buffer.from(s, 'base64url')).toHaveLength(64);
    expect(verifyPop('n', 't', s, ec.publicKey)).toBe(true);
    expect(verifyPop('n', 't', Buffer.from(s, 'base64url').subarray(1).toString('base64url'), ec.publicKey)).toBe(false);
    const ed = generateKeyPairSync('ed25519');
    expect(verifyPop('n', 't', Buffer.from(signPop('n', 't', ed.privateKey), 'base64url').subarray(0, 63).toString('base64url'), ed.publicKey)).toBe(false);
    // The same bytes, accepted by node's own verifier: the format is not ours alone.
    expect(nodeVerify('sha256', popMessage('n', 't'), { key: ec.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'))).toBe(true);
  });

  it('decodeClaims refuses each claim of the wrong type and a malformed cnf, ignores unknown claims', () => {
    const cases: [Map<number, unknown>, RegExp][] = [
      [new Map([[1, 7]]), /iss: expected a text string/],
      [new Map([[2, 7]]), /sub: expected a text string/],
      [new Map([[3, 7]]), /aud: expected a text string/],
      [new Map([[5, -1]]), /nbf: expected a non-negative integer/],
      [new Map([[6, 'x']]), /iat: expected a non-negative integer/],
      [new Map([[7, 'x']]), /cti: expected a byte string/],
      [new Map([[9, 7]]), /scope: expected a text string/],
      [new Map([[8, 7]]), /cnf: expected a map/],
      [new Map([[8, new Map([[2, 1]])]]), /cnf: expected exactly a COSE_Key/],
      [new Map([[8, new Map<number, unknown>([[1, new Map([[1, 1]])], [2, 1]])]]), /cnf: expected exactly a COSE_Key/],
      [new Map([[8, new Map([[1, 5]])]]), /cnf: expected exactly a COSE_Key/],
      [new Map([[8, new Map([[1, new Map([[1, 99]])]])]]), /cnf: /],
    ];
    for (const [m, re] of cases) expect(() => decodeClaims(bytesOf(m)), String(re)).toThrow(re);
    expect(() => decodeClaims(encodeCbor([1] as never))).toThrow(/claims: expected a map/);
    expect(() => decodeClaims(new Uint8Array([0xff]))).toThrow(/^claims: /);
    expect(decodeClaims(bytesOf(new Map<number, unknown>([[1, 'i'], [4, 0], [99, 'ignored']])))).toEqual({ iss: 'i', exp: 0 });
    // Nesting beyond the claims' depth is refused.
    let deep: unknown = 1;
    for (let i = 0; i < 12; i++) deep = [deep];
    expect(() => decodeClaims(bytesOf(new Map([[99, deep]])))).toThrow(TokenCodecError);
  });

  it('a CWT verifies tagged (61) and untagged; garbage is a codec error naming CWT', () => {
    const claims = { iss: 'i', exp: 5 };
    const untagged = signCwt(claims, issuer);
    const tagged = encodeCbor(new CborTag(61, decodeCbor(untagged)) as never);
    expect(verifyCwt(untagged, [issuer])).toEqual(claims);
    expect(verifyCwt(tagged, [issuer])).toEqual(claims);
    expect(() => verifyCwt(encodeCbor(new CborTag(62, decodeCbor(untagged)) as never), [issuer])).toThrow();
    expect(() => verifyCwt(new Uint8Array([0xff]), [issuer])).toThrow(/^CWT: /);
    // The kid given goes into the unprotected header.
    const sign1 = (b: Uint8Array) => {
      const v = decodeCbor(b);
      return (v instanceof CborTag ? v.value : v) as unknown as [Uint8Array, Map<number, unknown>];
    };
    expect(sign1(signCwt(claims, issuer, new Uint8Array([1, 2])))[1].get(4)).toEqual(new Uint8Array([1, 2]));
    expect(sign1(untagged)[1].size).toBe(0);
  });

  it('JWT: the header names alg, typ and kid only when given; every claim type and the form are checked', () => {
    const header = (t: string) => JSON.parse(Buffer.from(t.split('.')[0]!, 'base64url').toString());
    expect(header(signJwt({ iss: 'i' }, issuer, 'k1'))).toEqual({ alg: 'EdDSA', typ: 'JWT', kid: 'k1' });
    expect(header(signJwt({ iss: 'i' }, issuer))).toEqual({ alg: 'EdDSA', typ: 'JWT' });
    const ec = importKey(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey);
    expect(header(signJwt({ iss: 'i' }, ec)).alg).toBe('ES256');
    expect(() => signJwt({ iss: 'i' }, { publicKey: ec.publicKey })).toThrow(/JWT: expected a private key/);
    // Only the claims given appear, and decode gives exactly them back (no undefined members).
    expect(Object.keys(verifyJwt(signJwt({ iss: 'i', exp: 3 }, issuer), [issuer]))).toEqual(['iss', 'exp']);
    expect(JSON.parse(Buffer.from(signJwt({}, issuer).split('.')[1]!, 'base64url').toString())).toEqual({});
    // A hand-made JWT signed by the issuer, to reach each claim check.
    const forge = (payload: unknown, alg = 'EdDSA', key = issuer) => {
      const input = `${Buffer.from(JSON.stringify({ alg })).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
      const s = alg === 'EdDSA' ? nodeSign(null, Buffer.from(input), key.privateKey!) : nodeSign('sha256', Buffer.from(input), { key: key.privateKey!, dsaEncoding: 'ieee-p1363' });
      return `${input}.${s.toString('base64url')}`;
    };
    expect(verifyJwt(forge({ iss: 'i' }), [issuer])).toEqual({ iss: 'i' });
    for (const [claim, value] of [['iss', 1], ['sub', 1], ['aud', 1], ['scope', 1], ['jti', 1], ['exp', '1'], ['nbf', -1], ['iat', 1.5]] as const) {
      expect(() => verifyJwt(forge({ [claim]: value }), [issuer]), claim).toThrow(new RegExp(`^${claim}: expected`));
    }
    expect(() => verifyJwt(forge({ cnf: { jwk: { kty: 'nope' } } }), [issuer])).toThrow(/cnf: expected \{ jwk \}/);
    expect(() => verifyJwt(forge([1]), [issuer])).toThrow(/JWT: expected a JSON object payload/);
    expect(() => verifyJwt(forge(null), [issuer])).toThrow(/JWT: expected a JSON object payload/);
    expect(() => verifyJwt('a.b.c', [issuer])).toThrow(/JWT: expected JSON header and payload/);
    expect(() => verifyJwt('a.b.c.d', [issuer])).toThrow(/JWT: expected three base64url parts/);
    expect(() => verifyJwt(' a.b.c', [issuer])).toThrow(/JWT: expected three base64url parts/);
    expect(() => verifyJwt('a.b.c ', [issuer])).toThrow(/JWT: expected three base64url parts/);
    expect(verifyJwt(forge({ jti: Buffer.from([9, 8]).toString('base64url') }), [issuer]).cti).toEqual(new Uint8Array([9, 8]));
    // The alg must fit the key: EdDSA by an EC key, ES256 by an Ed25519 key, a truncated ES256 signature, a key without a public half.
    expect(() => verifyJwt(forge({ iss: 'i' }, 'ES256', ec), [issuer])).toThrow(JwtSignatureError);
    expect(verifyJwt(forge({ iss: 'i' }, 'ES256', ec), [ec])).toEqual({ iss: 'i' });
    expect(() => verifyJwt(forge({ iss: 'i' }), [ec])).toThrow(JwtSignatureError);
    expect(() => verifyJwt(forge({ iss: 'i' }, 'ES256', ec).slice(0, -4), [ec])).toThrow(JwtSignatureError);
    expect(() => verifyJwt(forge({ iss: 'i' }), [{ privateKey: issuer.privateKey }])).toThrow(JwtSignatureError);
    expect(verifyJwt(forge({ iss: 'i' }), [ec, issuer])).toEqual({ iss: 'i' });
  });
});
