/**
 * The TIPS marker (A6): the last 4096 bytes of a disk say which Glaze it holds. Layout:
 *   "TIPSMARK1\n" + one JSON line + zero padding up to offset 4064, then the SHA-256 of bytes
 *   0..4063. A disk claims a Glaze only with a valid marker; the installer wipes it before the
 *   first byte of a new image and writes it only after the read-back digest matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export const MARKER_SIZE = 4096;
export const MARKER_DIGEST_OFFSET = 4064;
export const MARKER_MAGIC = 'TIPSMARK1\n';

export interface Marker {
  glazeId: string;
  /** SHA-256 of the Glaze image, 64 lower-case hex characters. */
  sha256: string;
  size: number;
  sequence: number;
  jobId: string;
  at: string;
}

export type MarkerResult = { ok: true; marker: Marker } | { ok: false; why: 'empty' | 'no_magic' | 'bad_digest' | 'bad_json' | 'bad_padding' | 'bad_field' };

export function encodeMarker(m: Marker): Uint8Array {
  const json = JSON.stringify({ glazeId: m.glazeId, sha256: m.sha256, size: m.size, sequence: m.sequence, jobId: m.jobId, at: m.at });
  const head = Buffer.from(`${MARKER_MAGIC}${json}\n`, 'utf8');
  if (head.length > MARKER_DIGEST_OFFSET) throw new RangeError(`marker: expected at most ${MARKER_DIGEST_OFFSET} bytes of header and JSON, came ${head.length}`);
  const block = Buffer.alloc(MARKER_SIZE);
  head.copy(block, 0);
  createHash('sha256').update(block.subarray(0, MARKER_DIGEST_OFFSET)).digest().copy(block, MARKER_DIGEST_OFFSET);
  return new Uint8Array(block.buffer, block.byteOffset, MARKER_SIZE);
}

function validMarker(v: unknown): v is Marker {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o.glazeId === 'string' &&
    typeof o.sha256 === 'string' &&
    /^[0-9a-f]{64}$/.test(o.sha256) &&
    Number.isSafeInteger(o.size) &&
    (o.size as number) >= 0 &&
    Number.isSafeInteger(o.sequence) &&
    (o.sequence as number) >= 0 &&
    typeof o.jobId === 'string' &&
    typeof o.at === 'string'
  );
}

/** Reads a 4096-byte marker block. Anything but a block this codec wrote is "no claim". */
export function decodeMarker(block: Uint8Array): MarkerResult {
  if (block.length !== MARKER_SIZE) throw new RangeError(`marker: expected ${MARKER_SIZE} bytes, came ${block.length}`);
  const b = Buffer.from(block.buffer, block.byteOffset, block.length);
  if (b.every((x) => x === 0)) return { ok: false, why: 'empty' };
  if (b.subarray(0, MARKER_MAGIC.length).toString('latin1') !== MARKER_MAGIC) return { ok: false, why: 'no_magic' };
  const want = createHash('sha256').update(b.subarray(0, MARKER_DIGEST_OFFSET)).digest();
  if (!timingSafeEqual(want, b.subarray(MARKER_DIGEST_OFFSET))) return { ok: false, why: 'bad_digest' };
  const nl = b.indexOf(0x0a, MARKER_MAGIC.length);
  if (nl < 0 || nl >= MARKER_DIGEST_OFFSET) return { ok: false, why: 'bad_json' };
  for (let i = nl + 1; i < MARKER_DIGEST_OFFSET; i++) if (b[i] !== 0) return { ok: false, why: 'bad_padding' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(b.subarray(MARKER_MAGIC.length, nl).toString('utf8'));
  } catch {
    return { ok: false, why: 'bad_json' };
  }
  if (!validMarker(parsed)) return { ok: false, why: 'bad_field' };
  const { glazeId, sha256, size, sequence, jobId, at } = parsed;
  return { ok: true, marker: { glazeId, sha256, size, sequence, jobId, at } };
}
