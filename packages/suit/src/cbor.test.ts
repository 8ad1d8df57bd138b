import { decode as cborgDecode, encode as cborgEncode } from 'cborg';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CborTag, type CborValue, decodeCbor, encodeCbor, toDiagnostic, wrapBstr } from './cbor.ts';
import { CBOR_ERROR_CODES, SuitError } from './errors.ts';

const h = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s/g, ''), 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function codeOf(bytes: Uint8Array): string {
  try {
    decodeCbor(bytes);
    return 'accepted';
  } catch (e) {
    expect(e).toBeInstanceOf(SuitError);
    return (e as SuitError).code;
  }
}

describe('S1 strict CBOR decoding rejects every non-deterministic or hostile form with a stable code', () => {
  const cases: [string, string, string][] = [
    ['empty input', '', 'cbor_truncated'],
    ['missing argument byte', '18', 'cbor_truncated'],
    ['byte string longer than the input', '4201', 'cbor_length_exceeds_input'],
    ['array count beyond the input', '83 01 02', 'cbor_length_exceeds_input'],
    ['array element cut short', '81 18', 'cbor_truncated'],
    ['non-minimal uint (1-byte arg < 24)', '1805', 'cbor_non_minimal'],
    ['non-minimal uint (2-byte arg < 256)', '190010', 'cbor_non_minimal'],
    ['non-minimal length', '5801 00', 'cbor_non_minimal'],
    ['non-minimal 8-byte argument', '1b 00000000ffffffff', 'cbor_non_minimal'],
    ['indefinite byte string', '5f 41 00 ff', 'cbor_indefinite_length'],
    ['indefinite array', '9f ff', 'cbor_indefinite_length'],
    ['indefinite map', 'bf ff', 'cbor_indefinite_length'],
    ['lone break', 'ff', 'cbor_unexpected_break'],
    ['reserved additional info', '1c', 'cbor_reserved'],
    ['duplicate int key', 'a2 01 00 01 00', 'cbor_duplicate_key'],
    ['duplicate text key', 'a2 6161 00 6161 01', 'cbor_duplicate_key'],
    ['duplicate array key', 'a2 814100 00 814100 01', 'cbor_duplicate_key'],
    ['trailing bytes', '00 00', 'cbor_trailing_bytes'],
    ['invalid UTF-8', '62 fffe', 'cbor_invalid_utf8'],
    ['half float', 'f9 3c00', 'cbor_unsupported'],
    ['double float', 'fb 3ff0000000000000', 'cbor_unsupported'],
    ['unassigned simple value', 'f0', 'cbor_unsupported'],
    ['huge byte string length', '5b ffffffffffffffff', 'cbor_length_exceeds_input'],
    ['huge array count', '9b 0000000100000000', 'cbor_length_exceeds_input'],
    ['huge map count', 'ba ffffffff', 'cbor_length_exceeds_input'],
  ];
  for (const [name, bytes, code] of cases) {
    it(`${name} → ${code}`, () => expect(codeOf(h(bytes))).toBe(code));
  }

  it('nesting bombs stop at the depth limit', () => {
    expect(codeOf(new Uint8Array([...new Array(100_000).fill(0x81), 0x00]))).toBe('cbor_too_deep');
    expect(codeOf(new Uint8Array([...new Array(100_000).fill(0xc1), 0x00]))).toBe('cbor_too_deep');
    expect(codeOf(new Uint8Array([...new Array(50_000).fill([0xa1, 0x00]).flat(), 0x00]))).toBe('cbor_too_deep');
    expect(decodeCbor(new Uint8Array([...new Array(10).fill(0x81), 0x00]), { maxDepth: 10 })).toBeTruthy();
  });

  it('error messages say what was expected and what came, with the offset', () => {
    try {
      decodeCbor(h('a2 01 00 01 00'));
    } catch (e) {
      expect((e as SuitError).message).toMatch(/expected unique map keys, came key 1 twice \(at offset 3\)/);
      expect((e as SuitError).offset).toBe(3);
    }
  });

  it('length errors name the item with its article ("an array", not "a array")', () => {
    const message = (bytes: string) => {
      try {
        decodeCbor(h(bytes));
      } catch (e) {
        return (e as SuitError).message;
      }
      return 'accepted';
    };
    expect(message('9b 0000000100000000')).toMatch(/^expected an array that fits/);
    expect(message('ba ffffffff')).toMatch(/^expected a map that fits/);
    expect(message('5b ffffffffffffffff')).toMatch(/^expected a byte string that fits/);
  });

  it('64-bit integers and their negatives round-trip as bigint', () => {
    for (const s of ['1b ffffffffffffffff', '3b ffffffffffffffff', '1b 0020000000000000', '3b 001fffffffffffff', '1a ffffffff', '3a ffffffff']) {
      expect(hex(encodeCbor(decodeCbor(h(s))))).toBe(s.replace(/\s/g, ''));
    }
    expect(decodeCbor(h('3b ffffffffffffffff'))).toBe(-(2n ** 64n));
    expect(decodeCbor(h('1b 001fffffffffffff'))).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('wrapBstr produces the bstr head + content (what SUIT digests cover)', () => {
    expect(hex(wrapBstr(new Uint8Array(24)))).toBe(`5818${'00'.repeat(24)}`);
    expect(hex(wrapBstr(new Uint8Array(300))).slice(0, 6)).toBe('59012c');
  });

  it('diagnostic notation shows embedded CBOR', () => {
    const v = new Map<CborValue, CborValue>([[3, encodeCbor([1, 'a'])]]);
    expect(toDiagnostic(v, { embedded: true, indent: 0 })).toBe('{3: << [1, "a"] >>}');
  });
});

const cborValue: fc.Arbitrary<CborValue> = fc.letrec<{ v: CborValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.integer(),
    fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n - 1n }),
    fc.string(),
    fc.uint8Array({ maxLength: 40 }),
    fc.constantFrom<CborValue>(true, false, null, undefined),
    fc.array(tie('v'), { maxLength: 5 }),
    fc.uniqueArray(fc.tuple(fc.oneof(fc.integer(), fc.string()), tie('v')), { maxLength: 5, selector: (t) => `${typeof t[0]}:${String(t[0])}` }).map((e) => new Map<CborValue, CborValue>(e)),
    fc.tuple(fc.integer({ min: 0, max: 100_000 }), tie('v')).map(([t, v]) => new CborTag(t, v)),
  ),
})).v;

describe('S1 CBOR codec properties (fast-check)', () => {
  it('encode → decode → encode is the identity on bytes', () => {
    fc.assert(
      fc.property(cborValue, (v) => {
        const a = encodeCbor(v);
        expect(hex(encodeCbor(decodeCbor(a)))).toBe(hex(a));
      }),
      { numRuns: 2000 },
    );
  });

  it('an independent decoder (cborg) reads what we encode; we read what cborg encodes', () => {
    const simple = fc.letrec<{ v: unknown }>((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        fc.integer(),
        fc.string(),
        fc.uint8Array({ maxLength: 20 }),
        fc.boolean(),
        fc.constant(null),
        fc.array(tie('v'), { maxLength: 4 }),
      ),
    })).v;
    fc.assert(
      fc.property(simple, (v) => {
        const ours = encodeCbor(v as CborValue);
        expect(cborgDecode(ours)).toEqual(v);
        expect(hex(ours)).toBe(hex(cborgEncode(v)));
      }),
      { numRuns: 1000 },
    );
  });

  it('arbitrary bytes either decode to something that re-encodes identically or fail with a CBOR code', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          const v = decodeCbor(bytes);
          expect(hex(encodeCbor(v))).toBe(hex(bytes));
        } catch (e) {
          expect(e).toBeInstanceOf(SuitError);
          expect(CBOR_ERROR_CODES).toContain((e as SuitError).code);
        }
      }),
      { numRuns: 5000 },
    );
  });
});
