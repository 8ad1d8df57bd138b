import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { declaredObjects, formatObjects, parseLinkFormat } from './link-format.ts';
import { resourceType } from './objects.ts';
import { decodeSenmlCbor, decodeSenmlJson, encodeSenmlCbor, encodeSenmlJson } from './senml.ts';
import { decodeTlv, decodeTlvValue, encodeTlv, encodeTlvValue, recordsToTlv, tlvToRecords } from './tlv.ts';
import { Lwm2mFormatError, parsePath, type ResourceRecord } from './values.ts';

const hex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

// OMA-TS-LightweightM2M_Core-V1_1 §7.4.3.2, "Read on Object Instance /3/0" example.
const DEVICE_TLV = hex(`
  C8 00 14 4F 70 65 6E 20 4D 6F 62 69 6C 65 20 41 6C 6C 69 61 6E 63 65
  C8 01 16 4C 69 67 68 74 77 65 69 67 68 74 20 4D 32 4D 20 43 6C 69 65 6E 74
  C8 02 09 33 34 35 30 30 30 31 32 33
  C3 03 31 2E 30
  86 06 41 00 01 41 01 05
  88 07 08 42 00 0E D8 42 01 13 88
  87 08 41 00 7D 42 01 03 84
  C1 09 64
  C1 0A 0F
  83 0B 41 00 00
  C4 0D 51 82 42 8F
  C6 0E 2B 30 32 3A 30 30
  C1 10 55`);

describe('Z5 LwM2M TLV (11542)', () => {
  it('reads the specification example of /3/0 with its multiple resources, and writes the same bytes back', () => {
    const records = tlvToRecords(DEVICE_TLV, [3, 0], resourceType);
    const byPath = new Map(records.map((r) => [r.path.join('/'), r.value]));
    expect(byPath.get('3/0/0')).toBe('Open Mobile Alliance');
    expect(byPath.get('3/0/1')).toBe('Lightweight M2M Client');
    expect(byPath.get('3/0/3')).toBe('1.0');
    expect(byPath.get('3/0/6/0')).toBe(1);
    expect(byPath.get('3/0/6/1')).toBe(5);
    expect(byPath.get('3/0/7/0')).toBe(3800);
    expect(byPath.get('3/0/7/1')).toBe(5000);
    expect(byPath.get('3/0/9')).toBe(100);
    expect(byPath.get('3/0/11/0')).toBe(0);
    expect(byPath.get('3/0/13')).toBe(1367491215);
    expect(byPath.get('3/0/16')).toBe('U');
    expect(recordsToTlv(records, [3, 0])).toEqual(DEVICE_TLV);
  });

  it('uses 16-bit identifiers and 8/16/24-bit lengths when needed', () => {
    const big = new Uint8Array(70_000).fill(7);
    const bytes = encodeTlv([
      { kind: 0b11, id: 300, value: big },
      { kind: 0b11, id: 1, value: new Uint8Array(300) },
    ]);
    expect(bytes[0]).toBe(0b11_1_11_000);
    expect(decodeTlv(bytes)).toEqual([
      { kind: 0b11, id: 300, value: big },
      { kind: 0b11, id: 1, value: new Uint8Array(300) },
    ]);
  });

  it('refuses truncated entries, wrong nesting and malformed values with what was expected', () => {
    expect(() => decodeTlv(hex('C8 00 14 4F'))).toThrow(/says 20 bytes but 1 remain/);
    expect(() => decodeTlv(hex('08 00 03 41 01 01'))).toThrow(/resource instance cannot sit inside a object instance/);
    expect(() => decodeTlv(hex('83 06 C1 01 01'))).toThrow(/resource cannot sit inside a multiple resource/);
    expect(() => decodeTlvValue(hex('00 00 00'), 'integer')).toThrow(/1, 2, 4 or 8 bytes, not 3/);
    expect(() => decodeTlvValue(hex('02'), 'boolean')).toThrow(/boolean/);
    expect(() => decodeTlvValue(hex('FF'), 'string')).toThrow(/UTF-8/);
    expect(() => tlvToRecords(hex('C1 05 01'), [5, 0, 3], resourceType)).toThrow(/resource 5 answered for \/5\/0\/3/);
  });

  it('reads a single resource, a whole object, and a multiple resource under its own path', () => {
    expect(tlvToRecords(hex('C1 03 02'), [5, 0, 3], resourceType)).toEqual([{ path: [5, 0, 3], value: 2 }]);
    expect(tlvToRecords(hex('41 00 01 41 01 05'), [3, 0, 6], resourceType)).toEqual([
      { path: [3, 0, 6, 0], value: 1 },
      { path: [3, 0, 6, 1], value: 5 },
    ]);
    const obj = recordsToTlv([{ path: [1, 0, 1], value: 300 }, { path: [1, 1, 1], value: 60 }], [1]);
    expect(tlvToRecords(obj, [1], resourceType)).toEqual([{ path: [1, 0, 1], value: 300 }, { path: [1, 1, 1], value: 60 }]);
  });

  it('encodes integers in the fewest bytes, two-complement, and 64-bit values as bigint', () => {
    expect(encodeTlvValue(-1)).toEqual(hex('FF'));
    expect(encodeTlvValue(128)).toEqual(hex('00 80'));
    expect(encodeTlvValue(-32769)).toEqual(hex('FF FF 7F FF'));
    expect(decodeTlvValue(encodeTlvValue(2n ** 62n), 'integer')).toBe(2n ** 62n);
    expect(decodeTlvValue(hex('FF FF FF FF FF FF FF FF'), 'unsigned')).toBe(2n ** 64n - 1n);
    expect(() => encodeTlvValue(2n ** 63n)).toThrow(/64 bits/);
  });

  it('fuzz: decode never throws anything but a format error; what decodes re-encodes to the same entries', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          const entries = decodeTlv(bytes);
          expect(decodeTlv(encodeTlv(entries))).toEqual(entries);
        } catch (e) {
          if (!(e instanceof Lwm2mFormatError)) throw e;
        }
      }),
      { numRuns: 3000 },
    );
  });
});

const value = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  fc.boolean(),
  fc.uint8Array({ maxLength: 20 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
  fc.record({ objectId: fc.integer({ min: 0, max: 65535 }), instanceId: fc.integer({ min: 0, max: 65535 }) }),
);
const id = fc.integer({ min: 0, max: 65535 });
const records = fc
  .array(fc.record({ path: fc.oneof(fc.tuple(id, id, id), fc.tuple(id, id, id, id)), value }), { maxLength: 8 })
  .map((rs) => {
    // One record per resource path and no resource both single and multiple (a device cannot send that).
    const seen = new Set<string>();
    return rs.filter((r) => {
      const res = r.path.slice(0, 3).join('/');
      const key = r.path.length === 4 ? `${res}/m` : `${res}/s`;
      const other = r.path.length === 4 ? `${res}/s` : `${res}/m`;
      if (seen.has(other) || (r.path.length === 3 && seen.has(key)) || seen.has(r.path.join('/'))) return false;
      seen.add(key);
      seen.add(r.path.join('/'));
      return true;
    }) as ResourceRecord[];
  });

describe('Z5 SenML-CBOR (112) and SenML-JSON (110)', () => {
  it('names records by base name + name and carries every LwM2M value kind', () => {
    const rs: ResourceRecord[] = [
      { path: [3, 0, 0], value: 'TIPS' },
      { path: [3, 0, 9], value: 87 },
      { path: [3, 0, 6, 0], value: 1 },
      { path: [3, 0, 6, 1], value: 5 },
      { path: [5, 0, 0], value: hex('0102') },
      { path: [1, 0, 6], value: true },
      { path: [3, 0, 99], value: { objectId: 3, instanceId: 0 } },
    ];
    expect(decodeSenmlCbor(encodeSenmlCbor(rs))).toEqual(rs);
    expect(decodeSenmlJson(encodeSenmlJson(rs))).toEqual(rs);
    const json = JSON.parse(new TextDecoder().decode(encodeSenmlJson(rs.slice(0, 4))));
    expect(json[0]).toEqual({ bn: '/3/0/', n: '0', vs: 'TIPS' });
    expect(json[2]).toEqual({ n: '6/0', v: 1 });
  });

  it('reads a Leshan-style JSON body and refuses records without a resource name or with two values', () => {
    const body = new TextEncoder().encode('[{"bn":"/5/0/","n":"3","v":1},{"n":"5","v":0},{"n":"1","vs":"coaps://m/glazes/g/blob"}]');
    expect(decodeSenmlJson(body)).toEqual([
      { path: [5, 0, 3], value: 1 },
      { path: [5, 0, 5], value: 0 },
      { path: [5, 0, 1], value: 'coaps://m/glazes/g/blob' },
    ]);
    expect(() => decodeSenmlJson(new TextEncoder().encode('[{"bn":"/5/","v":1}]'))).toThrow(/does not name a resource/);
    expect(() => decodeSenmlJson(new TextEncoder().encode('[{"n":"/5/0/3","v":1,"vs":"x"}]'))).toThrow(/exactly one value/);
    expect(() => decodeSenmlJson(new TextEncoder().encode('[{"n":"/5/0/3","v":1,"x_":1}]'))).toThrow(/must-understand/);
    expect(() => decodeSenmlCbor(hex('A1 00 61 30'))).toThrow(/array of records/);
  });

  it('fuzz: records round-trip through CBOR and JSON; random bytes only ever raise format errors', () => {
    fc.assert(
      fc.property(records, (rs) => {
        expect(decodeSenmlCbor(encodeSenmlCbor(rs))).toEqual(rs);
        expect(decodeSenmlJson(encodeSenmlJson(rs))).toEqual(rs);
        expect(tlvToRecords(recordsToTlv(rs.filter((r) => r.path[0] === rs[0]?.path[0]), [rs[0]?.path[0] ?? 0]), [rs[0]?.path[0] ?? 0], () => 'opaque').length).toBe(
          rs.filter((r) => r.path[0] === rs[0]?.path[0]).length,
        );
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        for (const f of [decodeSenmlCbor, decodeSenmlJson]) {
          try {
            f(bytes);
          } catch (e) {
            if (!(e instanceof Lwm2mFormatError)) throw e;
          }
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('Z5 link format (RFC 6690) in Register', () => {
  it('reads objects, instances and versions, with quoted values holding separators', () => {
    const text = '</>;rt="oma.lwm2m";ct=11543,</1/0>,</3>;ver=1.1,</3/0>,</5/0>,</9/0>;title="a,b;c\\"d"';
    expect(parseLinkFormat(text)[5]).toEqual({ uri: '/9/0', params: { title: 'a,b;c"d' } });
    expect(declaredObjects(text)).toEqual({
      rootPath: '/',
      objects: [
        { objectId: 1, instances: [0] },
        { objectId: 3, version: '1.1', instances: [0] },
        { objectId: 5, instances: [0] },
        { objectId: 9, instances: [0] },
      ],
    });
    expect(declaredObjects('</lwm2m>;rt="oma.lwm2m",</lwm2m/3/0>').objects).toEqual([{ objectId: 3, instances: [0] }]);
    expect(declaredObjects(formatObjects([{ objectId: 3, version: '1.1', instances: [0] }, { objectId: 5, instances: [0] }])).objects).toEqual([
      { objectId: 3, version: '1.1', instances: [0] },
      { objectId: 5, instances: [0] },
    ]);
  });

  it('refuses links outside the root, unclosed brackets and quotes, and paths that are not objects', () => {
    expect(() => declaredObjects('</lwm2m>;rt="oma.lwm2m",</3/0>')).toThrow(/outside the root path/);
    expect(() => parseLinkFormat('</3/0')).toThrow(/never closed/);
    expect(() => parseLinkFormat('</3/0>;t="x')).toThrow(/never closed/);
    expect(() => declaredObjects('</3/0/1>')).toThrow(/neither an object/);
    expect(() => declaredObjects('</x/0>')).toThrow(/not an ID/);
    expect(() => parsePath('/70000')).toThrow(/not an ID/);
  });

  it('fuzz: any text parses or raises a format error', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80, unit: fc.constantFrom('<', '>', '/', '3', '0', ',', ';', '=', '"', 'a', ' ', '\\') }), (t) => {
        try {
          declaredObjects(t);
        } catch (e) {
          if (!(e instanceof Lwm2mFormatError)) throw e;
        }
      }),
      { numRuns: 3000 },
    );
  });
});
