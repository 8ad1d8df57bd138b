import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { blockSize, decodeBlock, encodeBlock, szxOf } from './block.ts';
import { CoapFormatError } from './errors.ts';
import { type CoapMessage, codeOf, codeString, decodeMessage, decodeUint, encodeMessage, encodeUint } from './message.ts';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s/g, ''), 'hex'));

function refused(bytes: Uint8Array, code: string): void {
  try {
    decodeMessage(bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(CoapFormatError);
    expect((e as CoapFormatError).code).toBe(code);
    return;
  }
  throw new Error(`accepted ${Buffer.from(bytes).toString('hex')}`);
}

describe('S13 CoAP message codec (RFC 7252 §3)', () => {
  it('decodes a GET with token, Uri-Path and payload exactly as the RFC lays it out', () => {
    // ver 1, CON, TKL 2 | GET | mid 0x1234 | token beef | Uri-Path (11) "work" | Uri-Query (delta 4) "phase=2" | 0xFF "x"
    const m = decodeMessage(hex('42 01 1234 beef b4 776f726b 47 70686173653d32 ff 78'));
    expect(m).toEqual({
      type: 0,
      code: 1,
      messageId: 0x1234,
      token: hex('beef'),
      options: [
        { number: 11, value: new TextEncoder().encode('work') },
        { number: 15, value: new TextEncoder().encode('phase=2') },
      ],
      payload: hex('78'),
    });
  });

  it('uses the 13 and 14 extended forms for deltas and lengths', () => {
    const m: CoapMessage = {
      type: 1,
      code: codeOf('2.05'),
      messageId: 7,
      token: new Uint8Array(0),
      options: [
        { number: 12, value: new Uint8Array(0) },
        { number: 60, value: new Uint8Array(20) },
        { number: 2000, value: new Uint8Array(300) },
      ],
      payload: new Uint8Array(0),
    };
    const b = encodeMessage(m);
    // Content-Format: delta 12, len 0 → 0xC0; Size1: delta 48 → 13 + 35, len 20 → 13 + 7; option 2000: delta 1940 → 14 + (1940 − 269)
    expect(Buffer.from(b.subarray(4, 8)).toString('hex')).toBe('c0dd2307');
    expect(b[28]).toBe(0xee);
    expect((b[29]! << 8) | b[30]!).toBe(1940 - 269);
    expect((b[31]! << 8) | b[32]!).toBe(300 - 269);
    expect(decodeMessage(b)).toEqual(m);
  });

  it('codes: "2.05" ↔ 69, "4.04" ↔ 132, "0.01" ↔ 1', () => {
    expect(codeOf('2.05')).toBe(69);
    expect(codeOf('4.04')).toBe(132);
    expect(codeString(132)).toBe('4.04');
    expect(codeString(1)).toBe('0.01');
    expect(() => codeOf('2.5')).toThrow(RangeError);
    expect(() => codeOf('2.32')).toThrow(RangeError);
  });

  it('refuses every malformation with CoapFormatError naming it', () => {
    refused(hex('4001'), 'coap_truncated');
    refused(hex('80010001'), 'coap_bad_version'); // version 2
    refused(hex('00010001'), 'coap_bad_version'); // version 0
    refused(hex('49010001 000000000000000000'), 'coap_bad_token_length'); // TKL 9
    refused(hex('4f010001'), 'coap_bad_token_length'); // TKL 15
    refused(hex('42010001 aa'), 'coap_truncated'); // token cut short
    refused(hex('40010001 f1 00'), 'coap_bad_option'); // delta 15 with length 1
    refused(hex('40010001 bf'), 'coap_bad_option'); // length nibble 15
    refused(hex('40010001 ff'), 'coap_empty_payload'); // marker and nothing after it
    refused(hex('40010001 b4 7761'), 'coap_truncated'); // Uri-Path says 4 bytes, 2 follow
    refused(hex('40010001 d0'), 'coap_truncated'); // delta 13 without its extension byte
    refused(hex('40010001 e0 00'), 'coap_truncated'); // delta 14 with one of two extension bytes
    refused(hex('40010001 e0 fe f4 e0 0102'), 'coap_bad_option'); // option number > 65535
    refused(hex('40000001 ff 00'), 'coap_bad_empty_message'); // 0.00 with a payload
    refused(hex('41000001 aa'), 'coap_bad_empty_message'); // 0.00 with a token
  });

  it('uint values are minimal big-endian; more than 4 bytes is refused', () => {
    expect(encodeUint(0)).toEqual(new Uint8Array(0));
    expect(encodeUint(0x1234)).toEqual(hex('1234'));
    expect(decodeUint(hex('01000000'))).toBe(0x1000000);
    expect(() => decodeUint(hex('0100000000'))).toThrow(CoapFormatError);
  });
});

describe('S13 Block option values (RFC 7959 §2.2)', () => {
  it('NUM | M | SZX', () => {
    expect(encodeBlock({ num: 0, more: true, szx: 2 })).toEqual(hex('0a'));
    expect(encodeBlock({ num: 16383, more: false, szx: 6 })).toEqual(hex('03fff6'));
    expect(decodeBlock(hex('03fff6'))).toEqual({ num: 16383, more: false, szx: 6 });
    expect(decodeBlock(new Uint8Array(0))).toEqual({ num: 0, more: false, szx: 0 });
    expect(blockSize(6)).toBe(1024);
    expect(szxOf(64)).toBe(2);
    expect(() => szxOf(2048)).toThrow(RangeError);
  });
  it('SZX 7 and values longer than 3 bytes are refused', () => {
    expect(() => decodeBlock(hex('07'))).toThrow(CoapFormatError);
    expect(() => decodeBlock(hex('00000006'))).toThrow(CoapFormatError);
    expect(() => encodeBlock({ num: 1 << 20, more: false, szx: 0 })).toThrow(RangeError);
  });
});

const arbMessage: fc.Arbitrary<CoapMessage> = fc
  .record({
    type: fc.constantFrom(0 as const, 1 as const, 2 as const, 3 as const),
    code: fc.integer({ min: 1, max: 255 }),
    messageId: fc.integer({ min: 0, max: 0xffff }),
    token: fc.uint8Array({ maxLength: 8 }),
    options: fc.array(fc.record({ number: fc.integer({ min: 0, max: 65535 }), value: fc.uint8Array({ maxLength: 300 }) }), { maxLength: 8 }),
    payload: fc.uint8Array({ maxLength: 64 }),
  })
  .map((m) => ({ ...m, options: [...m.options].sort((a, b) => a.number - b.number) }));

describe('S13 codec fuzz (fast-check)', () => {
  it('decode(encode(m)) is m, and encode(decode(b)) is b', () => {
    fc.assert(
      fc.property(arbMessage, (m) => {
        const b = encodeMessage(m);
        expect(decodeMessage(b)).toEqual(m);
        expect(encodeMessage(decodeMessage(b))).toEqual(b);
      }),
      { numRuns: 500 },
    );
  });

  it('random bytes: decode either returns a message that re-encodes to the same bytes or throws CoapFormatError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        let m: CoapMessage;
        try {
          m = decodeMessage(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(CoapFormatError);
          return;
        }
        expect(encodeMessage(m)).toEqual(bytes);
      }),
      { numRuns: 5000 },
    );
  });

  it('mutated valid messages (bit flips, truncation) never throw anything but CoapFormatError', () => {
    fc.assert(
      fc.property(arbMessage, fc.nat(), fc.nat(7), fc.nat(), (m, at, bit, cut) => {
        const b = encodeMessage(m);
        const flipped = b.slice();
        flipped[at % b.length] = (flipped[at % b.length] as number) ^ (1 << bit);
        for (const x of [flipped, b.subarray(0, cut % (b.length + 1))]) {
          try {
            decodeMessage(x);
          } catch (e) {
            expect(e).toBeInstanceOf(CoapFormatError);
          }
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('block values round-trip', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xfffff }), fc.boolean(), fc.integer({ min: 0, max: 6 }), (num, more, szx) => {
        expect(decodeBlock(encodeBlock({ num, more, szx }))).toEqual({ num, more, szx });
      }),
    );
  });
});
