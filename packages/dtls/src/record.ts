/** DTLS 1.2 record layer (RFC 6347 §4.1): header codec and several records per datagram. */
import { DtlsError } from './errors.ts';
import { Writer } from './wire.ts';

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


/** Splits a datagram into its records. A datagram whose framing is broken throws (the caller drops it). */
export function decodeRecords(datagram: Uint8Array): DtlsRecord[] {
  const out: DtlsRecord[] = [];
  const n = datagram.length;
  let p = 0;
  // Read by hand (no Reader object): this runs for every datagram of a session.
  while (p < n) {
    if (n - p < RECORD_HEADER_LENGTH) {
      const field = n - p < 1 ? 'type' : n - p < 3 ? 'version' : n - p < 5 ? 'epoch' : n - p < 11 ? 'sequence_number' : 'fragment';
      throw new DtlsError('decode_error', `DTLSPlaintext: ${field} truncated, ${n - p} bytes left`);
    }
    const type = datagram[p] as number;
    if (type < ContentType.change_cipher_spec || type > ContentType.application_data) throw new DtlsError('decode_error', `DTLSPlaintext: unknown content type ${type}`);
    const version = ((datagram[p + 1] as number) << 8) | (datagram[p + 2] as number);
    if (version !== DTLS_1_2 && version !== DTLS_1_0) {
      throw new DtlsError('protocol_version', `DTLSPlaintext: version 0x${version.toString(16)}, expected 0xfefd or 0xfeff`);
    }
    const epoch = ((datagram[p + 3] as number) << 8) | (datagram[p + 4] as number);
    const sequence =
      (((datagram[p + 5] as number) << 8) | (datagram[p + 6] as number)) * 2 ** 32 +
      (((datagram[p + 7] as number) << 24) >>> 0) +
      (((datagram[p + 8] as number) << 16) | ((datagram[p + 9] as number) << 8) | (datagram[p + 10] as number));
    const length = ((datagram[p + 11] as number) << 8) | (datagram[p + 12] as number);
    if (length > MAX_RECORD_FRAGMENT) throw new DtlsError('decode_error', `DTLSPlaintext: fragment length ${length} outside 0..${MAX_RECORD_FRAGMENT}`);
    p += RECORD_HEADER_LENGTH;
    if (n - p < length) throw new DtlsError('decode_error', `DTLSPlaintext: fragment needs ${length} bytes, ${n - p} left`);
    out.push({ type, version, epoch, sequence, fragment: datagram.subarray(p, p + length) });
    p += length;
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
