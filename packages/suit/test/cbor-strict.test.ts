import { describe, expect, it } from 'vitest';
import { bstrHead, canonicalMap, CborTag, type CborValue, decodeCbor, decodeCborPrefix, encodeCbor, majorName, toDiagnostic, typeName, wrapBstr } from '../src/cbor.ts';
import { CborError } from '../src/errors.ts';

const h = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s/g, ''), 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** The error a decode throws: code, message and offset. */
function err(bytes: Uint8Array | string, maxDepth?: number): { code: string; message: string; offset: number | undefined } {
  try {
    decodeCbor(typeof bytes === 'string' ? h(bytes) : bytes, maxDepth === undefined ? {} : { maxDepth });
  } catch (e) {
    expect(e).toBeInstanceOf(CborError);
    const c = e as CborError;
    return { code: c.code, message: c.message, offset: c.offset };
  }
  throw new Error('accepted');
}

describe('S1 strict CBOR: every refusal says what was expected, what came, and where', () => {
  const cases: [string, string, RegExp, number][] = [
    ['', 'cbor_truncated', /^expected a data item, came end of input \(at offset 0\)$/, 0],
    ['19 01', 'cbor_truncated', /^expected 2 argument bytes, came 1 \(at offset 0\)$/, 0],
    ['81 1a 0000', 'cbor_truncated', /^expected 4 argument bytes, came 2 \(at offset 1\)$/, 1],
    ['5f 41 00 ff', 'cbor_indefinite_length', /^expected a definite-length byte string, came an indefinite length \(at offset 0\)$/, 0],
    ['81 7f ff', 'cbor_indefinite_length', /^expected a definite-length text string, came an indefinite length \(at offset 1\)$/, 1],
    ['9f ff', 'cbor_indefinite_length', /definite-length array/, 0],
    ['bf ff', 'cbor_indefinite_length', /definite-length map/, 0],
    ['81 ff', 'cbor_unexpected_break', /^expected a data item, came a break code \(at offset 1\)$/, 1],
    ['81 1d', 'cbor_reserved', /^expected additional information 0\.\.27, came reserved value 29 \(at offset 1\)$/, 1],
    ['1e', 'cbor_reserved', /reserved value 30/, 0],
    ['81 18 17', 'cbor_non_minimal', /^expected the shortest encoding of 23, came 2 bytes \(at offset 1\)$/, 1],
    ['19 00ff', 'cbor_non_minimal', /^expected the shortest encoding of 255, came 3 bytes/, 0],
    ['1a 0000ffff', 'cbor_non_minimal', /of 65535, came 5 bytes/, 0],
    ['1b 00000000ffffffff', 'cbor_non_minimal', /of 4294967295, came 9 bytes/, 0],
    ['42 00', 'cbor_length_exceeds_input', /^expected a byte string that fits the 1 remaining bytes, came a declared length of 2 \(at offset 1\)$/, 1],
    ['63 6161', 'cbor_length_exceeds_input', /^expected a text string that fits the 2 remaining bytes, came a declared length of 3/, 1],
    ['83 01 02', 'cbor_length_exceeds_input', /^expected an array that fits the 2 remaining bytes, came a declared length of 3/, 1],
    ['a2 01 02 03', 'cbor_length_exceeds_input', /^expected a map that fits the 3 remaining bytes, came a declared length of 2/, 1],
    ['5b 0020000000000000', 'cbor_length_exceeds_input', /declared length of 9007199254740992/, 9],
    ['a2 6161 00 6161 01', 'cbor_duplicate_key', /^expected unique map keys, came key "a" twice \(at offset 4\)$/, 4],
    ['a2 4100 00 4100 01', 'cbor_duplicate_key', /^expected unique map keys, came key of type byte string twice \(at offset 4\)$/, 4],
    ['a2 3b ffffffffffffffff 00 3b ffffffffffffffff 01', 'cbor_duplicate_key', /came key -18446744073709551616 twice \(at offset 11\)$/, 11],
    ['00 00', 'cbor_trailing_bytes', /^expected end of input, came 1 more bytes \(at offset 1\)$/, 1],
    ['62 fffe', 'cbor_invalid_utf8', /^expected valid UTF-8 in a text string, came invalid bytes \(at offset 1\)$/, 1],
    ['81 f9 3c00', 'cbor_unsupported', /^expected no floating-point values in signed input, came a float \(at offset 1\)$/, 1],
    ['81 fa 3f800000', 'cbor_unsupported', /came a float \(at offset 1\)$/, 1],
    ['81 fb 3ff0000000000000', 'cbor_unsupported', /came a float \(at offset 1\)$/, 1],
    ['81 f0', 'cbor_unsupported', /^expected false, true, null or undefined, came simple value 16 \(at offset 1\)$/, 1],
    ['81 f8 ff', 'cbor_unsupported', /came simple value 255 \(at offset 1\)$/, 1],
    ['db 0020000000000000 00', 'cbor_unsupported', /^expected a tag number below 2\^53, came 9007199254740992/, 9],
  ];
  for (const [bytes, code, message, offset] of cases) {
    it(`${bytes || '(empty)'} → ${code}`, () => {
      const e = err(bytes);
      expect(e.code).toBe(code);
      expect(e.message).toMatch(message);
      expect(e.offset).toBe(offset);
    });
  }

  it('simple values and floats with a small argument are unsupported, not non-minimal', () => {
    expect(err('f8 10').code).toBe('cbor_unsupported');
    expect(err('f9 0001').code).toBe('cbor_unsupported');
    expect(err('fa 00000001').code).toBe('cbor_unsupported');
  });

  it('map keys count towards the depth limit like values', () => {
    expect(decodeCbor(h('a1 81 81 00 00'), { maxDepth: 3 })).toBeInstanceOf(Map);
    expect(err(h('a1 81 81 81 00 00'), 3).code).toBe('cbor_too_deep');
  });

  it('the depth limit is exact, for arrays, maps and tags', () => {
    const nest = (head: number[], n: number) => new Uint8Array([...new Array(n).fill(head).flat(), 0x00]);
    for (const head of [[0x81], [0xa1, 0x00], [0xc1]]) {
      expect(decodeCbor(nest(head, 5), { maxDepth: 5 })).toBeDefined();
      const e = err(nest(head, 6), 5);
      expect(e.code).toBe('cbor_too_deep');
      expect(e.message).toMatch(/^expected nesting of at most 5, came deeper/);
      expect(decodeCbor(nest(head, 64))).toBeDefined();
      expect(err(nest(head, 65)).code).toBe('cbor_too_deep');
    }
  });
});

describe('S1 strict CBOR: values at every head boundary', () => {
  it('unsigned and negative integers at 23/24, 255/256, 65535/65536, 2^32, 2^53 and 2^64', () => {
    const cases: [string, CborValue][] = [
      ['17', 23],
      ['1818', 24],
      ['18ff', 255],
      ['190100', 256],
      ['19ffff', 65535],
      ['1a00010000', 65536],
      ['1affffffff', 4294967295],
      ['1b0000000100000000', 4294967296],
      ['1b001fffffffffffff', 2 ** 53 - 1],
      ['1b0020000000000000', 2n ** 53n],
      ['1bffffffffffffffff', 2n ** 64n - 1n],
      ['37', -24],
      ['3818', -25],
      ['38ff', -256],
      ['390100', -257],
      ['3a00010000', -65537],
      ['3affffffff', -4294967296],
      ['3b001ffffffffffffe', -(2 ** 53) + 1],
      ['3b001fffffffffffff', -(2n ** 53n)],
      ['3b0020000000000000', -(2n ** 53n) - 1n],
      ['c1 00', new CborTag(1, 0)],
      ['d8 18 00', new CborTag(24, 0)],
      ['d9 0100 00', new CborTag(256, 0)],
      ['da 00010000 00', new CborTag(65536, 0)],
      ['db 001fffffffffffff 00', new CborTag(2 ** 53 - 1, 0)],
      ['f4', false],
      ['f5', true],
      ['f6', null],
      ['f7', undefined],
    ];
    for (const [bytes, value] of cases) {
      expect(decodeCbor(h(bytes)), bytes).toEqual(value);
      expect(hex(encodeCbor(value)), bytes).toBe(bytes.replace(/\s/g, ''));
    }
    // 2^53 - 1 stays a number; beyond, a bigint (exact).
    expect(typeof decodeCbor(h('1b001fffffffffffff'))).toBe('number');
    expect(typeof decodeCbor(h('3b001ffffffffffffe'))).toBe('number');
    expect(typeof decodeCbor(h('3b001fffffffffffff'))).toBe('bigint');
  });

  it('text: ASCII up to 64 bytes and beyond, non-ASCII inside the short path, invalid UTF-8 past it', () => {
    for (const s of ['', 'a'.repeat(63), 'a'.repeat(64), 'a'.repeat(65), 'é', `${'a'.repeat(63)}é`, 'a'.repeat(200), '日本', '\u007f']) {
      const enc = encodeCbor(s);
      expect(decodeCbor(enc)).toBe(s);
      expect(hex(enc)).toBe(hex(new Uint8Array([...bstrHead(Buffer.byteLength(s))].map((b, i) => (i === 0 ? b + 0x20 : b)).concat([...Buffer.from(s)]))));
    }
    const bad = new Uint8Array([0x78, 70, ...new Array(69).fill(0x61), 0xff]);
    expect(err(bad).code).toBe('cbor_invalid_utf8');
    const badShort = new Uint8Array([0x63, 0x61, 0xc3, 0x28]);
    expect(err(badShort).code).toBe('cbor_invalid_utf8');
  });

  it('byte strings are views of the input with the right bounds', () => {
    const v = decodeCbor(h('82 43 010203 41 04')) as Uint8Array[];
    expect(hex(v[0]!)).toBe('010203');
    expect(hex(v[1]!)).toBe('04');
  });

  it('a map key that is a number or a string is compared by value, others by their bytes', () => {
    expect(decodeCbor(h('a2 01 00 02 00'))).toEqual(new Map([[1, 0], [2, 0]]));
    expect(decodeCbor(h('a2 4100 00 4101 00'))).toBeInstanceOf(Map);
    expect(decodeCbor(h('a2 6161 00 6162 00'))).toBeInstanceOf(Map);
    expect(decodeCbor(h('a2 01 00 6131 00'))).toEqual(new Map<CborValue, CborValue>([[1, 0], ['1', 0]]));
  });
});

describe('S1 CBOR encoder', () => {
  it('refuses what CBOR here cannot hold', () => {
    const code = (v: unknown) => {
      try {
        encodeCbor(v as CborValue);
        return 'ok';
      } catch (e) {
        expect(e).toBeInstanceOf(CborError);
        return `${(e as CborError).code}: ${(e as CborError).message}`;
      }
    };
    expect(code(1.5)).toBe('cbor_unsupported: expected an integer, came the float 1.5');
    expect(code(2n ** 64n)).toBe(`cbor_unsupported: expected an argument that fits 64 bits, came ${2n ** 64n}`);
    expect(code(-(2n ** 64n) - 1n)).toMatch(/^cbor_unsupported: expected an argument that fits 64 bits/);
    expect(code(Symbol('x'))).toBe('cbor_unsupported: expected a CBOR value, came symbol');
    let deep: CborValue = 0;
    for (let i = 0; i < 257; i++) deep = [deep];
    expect(code(deep)).toBe('cbor_too_deep: expected nesting of at most 256 when encoding, came deeper');
    expect(code([deep])).toMatch(/^cbor_too_deep/);
    let ok: CborValue = 0;
    for (let i = 0; i < 256; i++) ok = [ok];
    expect(code(ok)).toBe('ok');
    // Maps (as key and as value) and tags count too.
    let deepMapValue: CborValue = 0;
    let deepMapKey: CborValue = 0;
    let deepTag: CborValue = 0;
    for (let i = 0; i < 257; i++) {
      deepMapValue = new Map([[1, deepMapValue]]);
      deepMapKey = new Map([[deepMapKey, 1]]);
      deepTag = new CborTag(1, deepTag);
    }
    for (const v of [deepMapValue, deepMapKey, deepTag]) expect(code(v)).toMatch(/^cbor_too_deep/);
    // Unsafe numbers go through the bigint path exactly.
    expect(hex(encodeCbor(2 ** 60))).toBe('1b1000000000000000');
    expect(hex(encodeCbor(-(2 ** 60)))).toBe('3b0fffffffffffffff');
  });

  it('grows its buffer for large values', () => {
    const big = new Uint8Array(100_000).fill(7);
    const enc = encodeCbor([big, 'x'.repeat(70_000), big]);
    expect(enc.length).toBe(5 + 100_000 + 5 + 70_000 + 5 + 100_000 + 1);
    const back = decodeCbor(enc) as [Uint8Array, string, Uint8Array];
    expect(back[0]!.every((b) => b === 7)).toBe(true);
    expect(back[1]!.length).toBe(70_000);
  });

  it('bstrHead and wrapBstr at every length class', () => {
    expect(hex(bstrHead(0))).toBe('40');
    expect(hex(bstrHead(23))).toBe('57');
    expect(hex(bstrHead(24))).toBe('5818');
    expect(hex(bstrHead(255))).toBe('58ff');
    expect(hex(bstrHead(256))).toBe('590100');
    expect(hex(bstrHead(65535))).toBe('59ffff');
    expect(hex(bstrHead(65536))).toBe('5a00010000');
    expect(hex(bstrHead(2 ** 32))).toBe('5b0000000100000000');
    const w = wrapBstr(new Uint8Array([1, 2]));
    expect(hex(w)).toBe('420102');
  });

  it('canonicalMap orders entries by their encoded keys', () => {
    const m = canonicalMap([
      ['b', 1],
      [10, 2],
      [-1, 3],
      ['a', 4],
      [1, 5],
    ]);
    expect([...m.keys()]).toEqual([1, 10, -1, 'a', 'b']);
  });

  it('decodeCborPrefix reads one item at an offset and says where it ended', () => {
    expect(decodeCborPrefix(h('00 82 01 02 ff'), 1)).toEqual({ value: [1, 2], end: 4 });
    expect(decodeCborPrefix(h('0102'))).toEqual({ value: 1, end: 1 });
    expect(() => decodeCborPrefix(h('8181818100'), 0, { maxDepth: 2 })).toThrow(expect.objectContaining({ code: 'cbor_too_deep' }));
  });
});

describe('S8 CBOR diagnostic notation and type names (tips suit inspect)', () => {
  it('every type, indented and on one line', () => {
    const v = new CborTag(107, new Map<CborValue, CborValue>([
      [1, [-1, 2n ** 64n - 1n, 'a"b', true, false, null, undefined]],
      ['k', new Uint8Array([0xde, 0xad])],
      [2, []],
      [3, new Map()],
    ]));
    expect(toDiagnostic(v, { indent: 0 })).toBe(`107({1: [-1, 18446744073709551615, "a\\"b", true, false, null, undefined], "k": h'dead', 2: [], 3: {}})`);
    expect(toDiagnostic(v)).toBe(
      ['107({', '  1: [', '    -1,', '    18446744073709551615,', '    "a\\"b",', '    true,', '    false,', '    null,', '    undefined', '  ],', `  "k": h'dead',`, '  2: [],', '  3: {}', '})'].join('\n'),
    );
    expect(toDiagnostic([1, [2]], { indent: 4 })).toBe('[\n    1,\n    [\n        2\n    ]\n]');
  });

  it('embedded CBOR only when asked, only for containers and tags, and never for bytes that are not one strict item', () => {
    const inner = encodeCbor(new CborTag(18, [1]));
    expect(toDiagnostic(inner, { embedded: true, indent: 0 })).toBe('<< 18([1]) >>');
    expect(toDiagnostic(inner, { indent: 0 })).toBe(`h'${hex(inner)}'`);
    expect(toDiagnostic(encodeCbor(new Map([[1, 2]])), { embedded: true, indent: 0 })).toBe('<< {1: 2} >>');
    expect(toDiagnostic(encodeCbor(5), { embedded: true, indent: 0 })).toBe("h'05'");
    expect(toDiagnostic(h('8200'), { embedded: true, indent: 0 })).toBe("h'8200'");
    expect(toDiagnostic(new Uint8Array(0), { embedded: true, indent: 0 })).toBe("h''");
    expect(toDiagnostic(encodeCbor([[1]]), { embedded: true })).toBe('<< [\n  [\n    1\n  ]\n] >>');
    // Embedded items deeper than 32 levels are shown as bytes.
    const nest = (n: number) => new Uint8Array([...new Array(n).fill(0x81), 0x00]);
    expect(toDiagnostic(nest(32), { embedded: true, indent: 0 })).toMatch(/^<< /);
    expect(toDiagnostic(nest(33), { embedded: true, indent: 0 })).toBe(`h'${hex(nest(33))}'`);
  });

  it('type names and major type names', () => {
    const cases: [CborValue, string][] = [
      [null, 'null'],
      [undefined, 'undefined'],
      [1, 'integer'],
      [1n, 'integer'],
      ['s', 'text string'],
      [true, 'boolean'],
      [new Uint8Array(0), 'byte string'],
      [[], 'array'],
      [new Map(), 'map'],
      [new CborTag(7, 0), 'tag 7'],
    ];
    for (const [v, name] of cases) expect(typeName(v)).toBe(name);
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(majorName)).toEqual(['unsigned integer', 'negative integer', 'byte string', 'text string', 'array', 'map', 'tag', 'simple/float']);
    expect(majorName(8)).toBe('major type 8');
  });
});
