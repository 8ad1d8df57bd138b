/** DTLS 1.2 record layer (RFC 6347 §4.1): header codec and several records per datagram. */
import { DtlsError } from './errors.ts';
import { Reader, Writer } from './wire.ts';

export const ContentType = { change_cipher_spec: 20, alert: 21, handshake: 22, application_data: 23 } as const;
/** DTLS 1.2 on the wire is {254, 253}; DTLS 1.0 {254, 255} (HelloVerifyRequest, RFC 6347 §4.2.1). */
export const DTLS_1_2 = 0xfefd;
export const DTLS_1_0 = 0xfeff;
export const RECORD_HEADER_LENGTH = 13;
/** RFC 6347 §4.1: 2^14 plaintext + 2048 expansion is the most a record may carry. */
export const MAX_RECORD_FRAGMENT = 2 ** 14 + 2048;
export const MAX_SEQUENCE = 2 ** 48 - 1;

export interface DtlsRecord {
  type: number;
  version: number;
  epoch: number;
  sequence: number; // 48 bits
  fragment: Uint8Array;
}

const KNOWN_TYPES = new Set<number>(Object.values(ContentType));

/** Splits a datagram into its records. A datagram whose framing is broken throws (the caller drops it). */
export function decodeRecords(datagram: Uint8Array): DtlsRecord[] {
  const r = new Reader(datagram, 'DTLSPlaintext');
  const out: DtlsRecord[] = [];
  while (r.remaining > 0) {
    const type = r.u8('type');
    if (!KNOWN_TYPES.has(type)) throw new DtlsError('decode_error', `DTLSPlaintext: unknown content type ${type}`);
    const version = r.u16('version');
    if (version !== DTLS_1_2 && version !== DTLS_1_0) {
      throw new DtlsError('protocol_version', `DTLSPlaintext: version 0x${version.toString(16)}, expected 0xfefd or 0xfeff`);
    }
    const epoch = r.u16('epoch');
    const sequence = r.u48('sequence_number');
    const fragment = r.vector(2, 'fragment', 0, MAX_RECORD_FRAGMENT);
    out.push({ type, version, epoch, sequence, fragment });
  }
  return out;
}

export function encodeRecord(rec: DtlsRecord): Uint8Array {
  return new Writer().u8(rec.type).u16(rec.version).u16(rec.epoch).u48(rec.sequence).vector(2, rec.fragment).finish();
}

/** Writes a record header (13 bytes) at the start of `out`; the fragment of `length` bytes follows it. */
export function writeRecordHeader(out: Uint8Array, type: number, version: number, epoch: number, sequence: number, length: number): void {
  out[0] = type;
  out[1] = version >> 8;
  out[2] = version & 0xff;
  out[3] = epoch >> 8;
  out[4] = epoch & 0xff;
  const hi = Math.floor(sequence / 2 ** 32);
  const lo = sequence >>> 0;
  out[5] = hi >> 8;
  out[6] = hi & 0xff;
  out[7] = lo >>> 24;
  out[8] = (lo >>> 16) & 0xff;
  out[9] = (lo >>> 8) & 0xff;
  out[10] = lo & 0xff;
  out[11] = length >> 8;
  out[12] = length & 0xff;
}
