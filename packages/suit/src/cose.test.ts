import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeCbor } from './cbor.ts';
import { sigStructure } from './cose.ts';

describe('S1 COSE Sig_structure', () => {
  it('the direct writer equals the generic CBOR encoding for every length class', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<'Signature1' | 'MAC0'>('Signature1', 'MAC0'),
        fc.uint8Array({ maxLength: 30 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.integer({ min: 0, max: 70_000 }),
        (ctx, p, aad, n) => {
          const payload = new Uint8Array(n).fill(n & 0xff);
          expect(Buffer.from(sigStructure(ctx, p, aad, payload)).equals(Buffer.from(encodeCbor([ctx, p, aad, payload])))).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});
