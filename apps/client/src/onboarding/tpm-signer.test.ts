import { generateKeyPairSync, sign, verify } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { derToP1363 } from './tpm-signer.ts';

describe('Z2 the TPM signer: tpm2_sign DER signatures become COSE r‖s', () => {
  it('every DER signature converts to r‖s that verifies (short r and s included)', () => {
    const k = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (data) => {
        const der = new Uint8Array(sign('sha256', data, { key: k.privateKey, dsaEncoding: 'der' }));
        const raw = derToP1363(der);
        expect(raw).toHaveLength(64);
        expect(verify('sha256', data, { key: k.publicKey, dsaEncoding: 'ieee-p1363' }, raw)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('anything that is not one DER ECDSA signature is refused', () => {
    for (const bad of [[], [0x30], [0x31, 0x00], [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00], [0x30, 0x04, 0x02, 0x00, 0x02, 0x00]]) {
      expect(() => derToP1363(Uint8Array.from(bad))).toThrow(/DER ECDSA/);
    }
  });
});
