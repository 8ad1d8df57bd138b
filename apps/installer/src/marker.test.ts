import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeMarker, encodeMarker, MARKER_DIGEST_OFFSET, MARKER_MAGIC, MARKER_SIZE, type Marker } from './marker.ts';

const m: Marker = { glazeId: 'glz_1', sha256: 'a'.repeat(64), size: 123456, sequence: 1700000000, jobId: 'p1j_7', at: '2026-11-29T09:00:00.000Z' };

describe('T13 Phase 1: the TIPS marker codec (A6)', () => {
  it('round-trips, with the layout A6 names', () => {
    const b = encodeMarker(m);
    expect(b.length).toBe(MARKER_SIZE);
    const s = Buffer.from(b);
    expect(s.subarray(0, 10).toString('latin1')).toBe(MARKER_MAGIC);
    const nl = s.indexOf(0x0a, 10);
    expect(JSON.parse(s.subarray(10, nl).toString())).toEqual(m);
    expect(s.subarray(nl + 1, MARKER_DIGEST_OFFSET).every((x) => x === 0)).toBe(true);
    expect(s.subarray(MARKER_DIGEST_OFFSET).toString('hex')).toBe(createHash('sha256').update(s.subarray(0, MARKER_DIGEST_OFFSET)).digest('hex'));
    expect(decodeMarker(b)).toEqual({ ok: true, marker: m });
  });

  it('a zeroed block claims nothing', () => {
    expect(decodeMarker(new Uint8Array(MARKER_SIZE))).toEqual({ ok: false, why: 'empty' });
  });

  it('any flipped byte makes it claim nothing', () => {
    const good = encodeMarker(m);
    for (const at of [0, 9, 10, 40, 200, MARKER_DIGEST_OFFSET - 1, MARKER_DIGEST_OFFSET, MARKER_SIZE - 1]) {
      const b = Uint8Array.from(good);
      b[at] = b[at]! ^ 0x01;
      expect(decodeMarker(b).ok, `byte ${at}`).toBe(false);
    }
  });

  it('refuses a block whose digest is right but whose content is not what the codec writes', () => {
    const seal = (body: Buffer): Uint8Array => {
      const b = Buffer.alloc(MARKER_SIZE);
      body.copy(b);
      createHash('sha256').update(b.subarray(0, MARKER_DIGEST_OFFSET)).digest().copy(b, MARKER_DIGEST_OFFSET);
      return b;
    };
    expect(decodeMarker(seal(Buffer.from('NOTAMARK\n{}\n')))).toEqual({ ok: false, why: 'no_magic' });
    expect(decodeMarker(seal(Buffer.from(`${MARKER_MAGIC}{not json\n`)))).toEqual({ ok: false, why: 'bad_json' });
    expect(decodeMarker(seal(Buffer.from(`${MARKER_MAGIC}${JSON.stringify(m)}\nX`)))).toEqual({ ok: false, why: 'bad_padding' });
    expect(decodeMarker(seal(Buffer.from(`${MARKER_MAGIC}${JSON.stringify({ ...m, sha256: 'xyz' })}\n`)))).toEqual({ ok: false, why: 'bad_field' });
    expect(decodeMarker(seal(Buffer.from(`${MARKER_MAGIC}${JSON.stringify({ ...m, size: -1 })}\n`)))).toEqual({ ok: false, why: 'bad_field' });
    expect(decodeMarker(seal(Buffer.from(`${MARKER_MAGIC}${JSON.stringify(m)}`)))).toEqual({ ok: false, why: 'bad_json' });
  });

  it('refuses to encode a marker that would overrun the digest', () => {
    expect(() => encodeMarker({ ...m, glazeId: 'g'.repeat(5000) })).toThrow(RangeError);
    expect(() => decodeMarker(new Uint8Array(10))).toThrow(RangeError);
  });
});
