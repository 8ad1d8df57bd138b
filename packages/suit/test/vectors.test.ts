import { createPrivateKey, type JsonWebKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  authenticate,
  type CborMap,
  coseMac0Verify,
  coseSign1Sign,
  coseSign1Verify,
  decodeCbor,
  decodeCoseSingle,
  decodeEnvelope,
  decodeStage,
  encodeCbor,
  encodeEnvelope,
  encodeManifest,
  importKey,
  SuitError,
  symmetricKey,
  verifyEnvelope,
} from '../src/index.ts';
import { HMAC_KEY, hex, LIBCSUIT_FILES, specExampleHex, TRUST_ANCHOR_PEM, vectorText } from './helpers.ts';
import { vector } from './helpers.ts';

const trust = [importKey(TRUST_ANCHOR_PEM)];
const hmacTrust = [symmetricKey(HMAC_KEY)];

/** The libcsuit files the issue names; the ones not in the public test set are listed here. */
const NAMED_IN_ISSUE = ['0', '1', '2', '3', '4', '5', '2A', '2B', 'S0', 'S2', 'S3', 'U0', 'U1', 'U2', 'U3', 'AW', 'AF', 'AFS', 'EW', 'ED', 'U', 'I', 'D'];
const MAC_VECTORS = new Set(['AW', 'AF', 'AFS']);

function nameOf(file: string): string {
  return file.replace('suit_manifest_exp', '').replace('.suit', '');
}

describe('S1 libcsuit vectors: decode, authenticate with the published key, re-encode byte-identical', () => {
  it('has every file the issue names, except the ones libcsuit does not publish', () => {
    const present = new Set(LIBCSUIT_FILES.map(nameOf));
    const absent = NAMED_IN_ISSUE.filter((n) => !present.has(n));
    // libcsuit publishes exp2A/exp2B instead of exp2; every other named file is present.
    expect(absent).toEqual(['2']);
    expect(LIBCSUIT_FILES.length).toBe(22);
  });

  for (const file of LIBCSUIT_FILES) {
    const name = nameOf(file);
    it(`exp${name}`, async () => {
      const bytes = vector('libcsuit', file);
      const env = decodeEnvelope(bytes);
      expect(hex(encodeEnvelope(env))).toBe(hex(bytes));
      expect(hex(encodeManifest(env.manifest, env.manifestTagged))).toBe(hex(env.manifestBytes));
      const keys = MAC_VECTORS.has(name) ? hmacTrust : trust;
      const verified = await verifyEnvelope(bytes, { trust: keys });
      expect(verified.manifest.sequenceNumber).toBe(env.manifest.sequenceNumber);
      // The signature must not verify under the other kind of key.
      expect(() => authenticate(decodeStage(bytes), MAC_VECTORS.has(name) ? trust : hmacTrust)).toThrow(SuitError);
      // Untagged TEEP manifests stay untagged.
      if (['U', 'I', 'D'].includes(name)) expect(env.tagged).toBe(bytes[0] === 0xd8);
    });
  }

  it('ESP256 (-9) is what libcsuit signs with, ES256 (-7) what the spec signs with', () => {
    const block = decodeEnvelope(vector('libcsuit', 'suit_manifest_exp0.suit')).authentication!.blocks[0]!;
    expect(decodeCoseSingle(block).protectedHeaders.get(1)).toBe(-9);
    const spec = decodeEnvelope(specExampleHex(0).at(-1)!).authentication!.blocks[0]!;
    expect(decodeCoseSingle(spec).protectedHeaders.get(1)).toBe(-7);
  });

  it('encrypted-payload manifests (EW, ED) decode and authenticate; their encryption-info stays opaque', () => {
    for (const n of ['EW', 'ED']) {
      const env = decodeEnvelope(vector('libcsuit', `suit_manifest_exp${n}.suit`));
      expect(env.manifest.severable.has(20)).toBe(true);
    }
  });
});

describe('S1 manifest-spec examples 0–5 (ES256)', () => {
  for (let n = 0; n <= 5; n++) {
    it(`example ${n}: every published form decodes and re-encodes; the signed one authenticates`, async () => {
      const forms = specExampleHex(n);
      expect(forms.length).toBeGreaterThanOrEqual(2);
      for (const b of forms) expect(hex(encodeEnvelope(decodeEnvelope(b)))).toBe(hex(b));
      const signed = forms.at(-1)!;
      const v = await verifyEnvelope(signed, { trust });
      expect(v.manifest.sequenceNumber).toBe(n);
      // The unsigned form carries the digest only.
      await expect(verifyEnvelope(forms[0]!, { trust })).rejects.toMatchObject({ code: 'suit_unsigned' });
    });
  }

  it('example 2 verifies with and without its severed members, and the members match their digests', async () => {
    const [, withoutSevered, withSevered] = specExampleHex(2);
    const a = await verifyEnvelope(withSevered!, { trust });
    expect([...a.members.keys()].sort()).toEqual([20, 23]);
    const b = await verifyEnvelope(withoutSevered!, { trust });
    expect(b.members.size).toBe(0);
    expect(b.manifest.severable.get(20)?.severed).toBe(true);
  });

  it('example 2 with a tampered severed member is rejected', async () => {
    const bytes = specExampleHex(2)[2]!;
    const env = decodeEnvelope(bytes);
    const text = env.severed.get(23)!;
    const tampered = new Uint8Array(text);
    tampered[tampered.length - 2] = tampered[tampered.length - 2]! ^ 0x01;
    env.severed.set(23, tampered);
    await expect(verifyEnvelope(encodeEnvelope(env), { trust })).rejects.toMatchObject({ code: 'suit_severed_mismatch' });
  });

  it('the spec private key re-signs example 0 and the result verifies with the public trust anchor', async () => {
    const { signEnvelope } = await import('../src/index.ts');
    const priv = importKey(vectorText('suit-manifest-spec', 'private_key.pem'));
    const resigned = signEnvelope(specExampleHex(0)[0]!, priv);
    await expect(verifyEnvelope(resigned, { trust })).resolves.toBeTruthy();
  });
});

interface CoseExample {
  title: string;
  fail?: boolean;
  input: {
    plaintext?: string;
    plaintext_hex?: string;
    sign0?: { key: Record<string, string>; protected?: Record<string, unknown>; unprotected?: Record<string, unknown>; external?: string };
    mac0?: { recipients: { key: Record<string, string> }[] };
  };
  output: { cbor: string };
}

function example(...p: string[]): CoseExample {
  return JSON.parse(vectorText('cose-wg', ...p));
}

function jwkOf(k: Record<string, string>): JsonWebKey {
  const b = (h: string | undefined, s: string | undefined) => (h ? Buffer.from(h, 'hex').toString('base64url') : s);
  if (k.x_hex && !k.y_hex && !k.y) return { kty: 'OKP', crv: 'Ed25519', x: b(k.x_hex, k.x)!, d: b(k.d_hex, k.d)! };
  const crv = k.crv ?? 'P-256';
  return { kty: 'EC', crv, x: b(k.x_hex, k.x)!, y: b(k.y_hex, k.y)!, d: b(k.d_hex, k.d)! };
}

function payloadOf(e: CoseExample): Uint8Array {
  return new Uint8Array(e.input.plaintext_hex ? Buffer.from(e.input.plaintext_hex, 'hex') : Buffer.from(e.input.plaintext ?? '', 'utf8'));
}

function verifySign1(e: CoseExample): void {
  const key = importKey(jwkOf(e.input.sign0!.key));
  const ext = e.input.sign0!.external;
  const out = coseSign1Verify(new Uint8Array(Buffer.from(e.output.cbor, 'hex')), [{ publicKey: key.publicKey! }], ext ? { externalAad: new Uint8Array(Buffer.from(ext, 'hex')) } : {});
  expect(Buffer.from(out.payload).toString('hex')).toBe(Buffer.from(payloadOf(e)).toString('hex'));
}

describe('S1 COSE WG Sign1 examples', () => {
  const passing = [
    ['ecdsa-examples', 'ecdsa-sig-01.json'],
    ['ecdsa-examples', 'ecdsa-sig-02.json'],
    ['ecdsa-examples', 'ecdsa-sig-04.json'],
    ['eddsa-examples', 'eddsa-sig-01.json'],
    ['RFC8152', 'Appendix_C_2_1.json'],
    ['sign1-tests', 'sign-pass-02.json'],
    ['sign1-tests', 'sign-pass-03.json'],
    ['CWT', 'A_3.json'],
  ];
  for (const [dir, file] of passing) {
    it(`${file} verifies`, () => verifySign1(example(dir!, file!)));
  }

  it('eddsa-sig-01 is reproduced byte for byte (Ed25519 is deterministic)', () => {
    const e = example('eddsa-examples', 'eddsa-sig-01.json');
    const key = importKey(jwkOf(e.input.sign0!.key));
    const out = coseSign1Sign(
      {
        protectedHeaders: new Map([
          [1, -8],
          [3, 0],
        ]) as CborMap,
        unprotectedHeaders: new Map([[4, new Uint8Array(Buffer.from('11'))]]) as CborMap,
        payload: payloadOf(e),
      },
      key,
    );
    expect(hex(out).toUpperCase()).toBe(e.output.cbor);
  });

  it('CWT A.4 (COSE_Mac0, HMAC 256/64) verifies with its shared key', () => {
    const e = example('CWT', 'A_4.json');
    const k = symmetricKey(new Uint8Array(Buffer.from(e.input.mac0!.recipients[0]!.key.k_hex!, 'hex')));
    const out = coseMac0Verify(new Uint8Array(Buffer.from(e.output.cbor, 'hex')), [k]);
    expect(hex(out.payload)).toBe(e.input.plaintext_hex);
  });

  it('sign-pass-01 (alg only in the unprotected bucket, written for RFC 8152) is refused: RFC 9052 §3.1 wants alg protected', () => {
    const e = example('sign1-tests', 'sign-pass-01.json');
    expect(e.fail).toBeUndefined();
    expect(() => verifySign1(e)).toThrow(expect.objectContaining({ code: 'cose_bad_structure' }));
  });

  const failing: [string, string][] = [
    ['sign-fail-01.json', 'cose_bad_structure'],
    ['sign-fail-02.json', 'suit_signature_invalid'],
    ['sign-fail-03.json', 'cose_alg_unsupported'],
    ['sign-fail-04.json', 'cose_alg_unsupported'],
    ['sign-fail-06.json', 'suit_signature_invalid'],
    ['sign-fail-07.json', 'suit_signature_invalid'],
  ];
  for (const [file, code] of failing) {
    it(`${file} is rejected with ${code}`, () => {
      const e = example('sign1-tests', file);
      expect(e.fail).toBe(true);
      try {
        verifySign1(e);
        expect.unreachable('accepted a failing vector');
      } catch (err) {
        expect(err).toBeInstanceOf(SuitError);
        expect((err as SuitError).code).toBe(code);
      }
    });
  }

  it('a private key in PEM from the spec signs like its JWK twin (same public key)', () => {
    const pem = vectorText('suit-manifest-spec', 'private_key.pem');
    const a = importKey(pem);
    const b = importKey(createPrivateKey(pem));
    expect(a.publicKey!.export({ format: 'jwk' })).toEqual(b.publicKey!.export({ format: 'jwk' }));
    expect(encodeCbor(decodeCbor(new Uint8Array([0xa0])))).toEqual(new Uint8Array([0xa0]));
  });
});

describe('S1 COSE algorithms and envelope forms', () => {
  it('ES256 (-7), ESP256 (-9), EdDSA (-8), Ed25519 (-19) and HMAC 256/256 (5) sign and verify SUIT envelopes', async () => {
    const { generateSigningKey, signEnvelope } = await import('../src/index.ts');
    const unsigned = specExampleHex(0)[0]!;
    const cases: [number, ReturnType<typeof generateSigningKey>['key']][] = [
      [-7, generateSigningKey('es256').key],
      [-9, generateSigningKey('es256').key],
      [-8, generateSigningKey('ed25519').key],
      [-19, generateSigningKey('ed25519').key],
    ];
    for (const [alg, key] of cases) {
      const signed = signEnvelope(unsigned, key, { alg });
      const block = decodeEnvelope(signed).authentication!.blocks[0]!;
      expect(decodeCoseSingle(block).protectedHeaders.get(1)).toBe(alg);
      await expect(verifyEnvelope(signed, { trust: [{ publicKey: key.publicKey! }] })).resolves.toBeTruthy();
      // A restricted trust list refuses the other algorithms.
      await expect(verifyEnvelope(signed, { trust: [{ publicKey: key.publicKey! }], algorithms: [alg === -7 ? -9 : -7] })).rejects.toMatchObject({ code: 'cose_alg_unsupported' });
    }
    const mac = signEnvelope(unsigned, symmetricKey(HMAC_KEY));
    expect(decodeCoseSingle(decodeEnvelope(mac).authentication!.blocks[0]!).protectedHeaders.get(1)).toBe(5);
    await expect(verifyEnvelope(mac, { trust: hmacTrust })).resolves.toBeTruthy();
  });

  it('an untagged envelope decodes, re-encodes byte-identical and verifies', async () => {
    const tagged = specExampleHex(0).at(-1)!;
    expect([tagged[0], tagged[1]]).toEqual([0xd8, 0x6b]);
    const untagged = tagged.subarray(2);
    const env = decodeEnvelope(untagged);
    expect(env.tagged).toBe(false);
    expect(hex(encodeEnvelope(env))).toBe(hex(untagged));
    await expect(verifyEnvelope(untagged, { trust })).resolves.toBeTruthy();
  });

  it('the libcsuit HMAC vectors are COSE_Mac0 with HMAC 256/256 (5)', () => {
    for (const n of ['AW', 'AF', 'AFS']) {
      const block = decodeEnvelope(vector('libcsuit', `suit_manifest_exp${n}.suit`)).authentication!.blocks[0]!;
      const c = decodeCoseSingle(block);
      expect(c.type).toBe('mac0');
      expect(c.protectedHeaders.get(1)).toBe(5);
    }
  });
});
