/**
 * RFC 7252 §3 message format: a pure, strict codec. `decodeMessage` accepts exactly the byte strings
 * `encodeMessage` produces (the encoding is canonical, so `encodeMessage(decodeMessage(b))` is `b`),
 * and refuses everything else with a CoapFormatError.
 */
import { COAP_VERSION } from './constants.ts';
import { CoapFormatError } from './errors.ts';

export type CoapType = 0 | 1 | 2 | 3; // CON, NON, ACK, RST
export interface CoapOption {
  number: number;
  value: Uint8Array;
}
export interface CoapMessage {
  type: CoapType;
  /** class << 5 | detail */
  code: number;
  messageId: number;
  token: Uint8Array;
  /** sorted by number; repeated options keep their order */
  options: CoapOption[];
  payload: Uint8Array;
}

const PAYLOAD_MARKER = 0xff;
const MAX_OPTION_NUMBER = 0xffff;
const MAX_OPTION_LENGTH = 0xffff + 269;

export function codeOf(s: string): number {
  const m = /^([0-7])\.([0-3][0-9])$/.exec(s);
  if (!m) throw new RangeError(`CoAP code must look like "2.05", got ${JSON.stringify(s)}`);
  const detail = Number(m[2]);
  if (detail > 31) throw new RangeError(`CoAP code detail must be 0..31, got ${detail}`);
  return (Number(m[1]) << 5) | detail;
}

export function codeString(n: number): string {
  return `${(n >> 5) & 7}.${String(n & 31).padStart(2, '0')}`;
}

export const isRequestCode = (code: number): boolean => code >= 1 && code <= 31;
export const isResponseCode = (code: number): boolean => code >> 5 >= 2 && code >> 5 <= 5;

function truncated(what: string, need: number, have: number): CoapFormatError {
  return new CoapFormatError('coap_truncated', `${what}: need ${need} byte(s), ${have} left`);
}

export function decodeMessage(bytes: Uint8Array): CoapMessage {
  if (bytes.length < 4) throw truncated('header', 4, bytes.length);
  const b0 = bytes[0] as number;
  const version = b0 >> 6;
  if (version !== COAP_VERSION) {
    throw new CoapFormatError('coap_bad_version', `version must be ${COAP_VERSION}, got ${version}`);
  }
  const type = ((b0 >> 4) & 3) as CoapType;
  const tkl = b0 & 0x0f;
  if (tkl > 8) throw new CoapFormatError('coap_bad_token_length', `token length must be 0..8, got ${tkl}`);
  const code = bytes[1] as number;
  const messageId = ((bytes[2] as number) << 8) | (bytes[3] as number);
  if (code === 0 && (tkl !== 0 || bytes.length !== 4)) {
    // §4.1: an Empty message is the 4-byte header and nothing else.
    throw new CoapFormatError('coap_bad_empty_message', `an empty message (0.00) must be 4 bytes, got ${bytes.length}`);
  }
  if (bytes.length < 4 + tkl) throw truncated('token', tkl, bytes.length - 4);
  // Views into the datagram, not copies: a decoded message shares the bytes it was decoded from.
  const token = bytes.subarray(4, 4 + tkl);
  const options: CoapOption[] = [];
  let pos = 4 + tkl;
  let number = 0;
  let payload: Uint8Array = new Uint8Array(0);
  while (pos < bytes.length) {
    const head = bytes[pos] as number;
    pos += 1;
    if (head === PAYLOAD_MARKER) {
      if (pos === bytes.length) {
        throw new CoapFormatError('coap_empty_payload', 'payload marker 0xFF followed by an empty payload');
      }
      payload = bytes.subarray(pos);
      pos = bytes.length;
      break;
    }
    let delta = head >> 4;
    let length = head & 0x0f;
    if (delta === 15) throw new CoapFormatError('coap_bad_option', `option delta nibble 15 outside the payload marker (byte ${pos - 1})`);
    if (length === 15) throw new CoapFormatError('coap_bad_option', `option length nibble 15 is reserved (byte ${pos - 1})`);
    [delta, pos] = extended(bytes, delta, pos, 'option delta');
    [length, pos] = extended(bytes, length, pos, 'option length');
    number += delta;
    if (number > MAX_OPTION_NUMBER) {
      throw new CoapFormatError('coap_bad_option', `option number must be at most ${MAX_OPTION_NUMBER}, got ${number}`);
    }
    if (pos + length > bytes.length) throw truncated(`option ${number} value`, length, bytes.length - pos);
    options.push({ number, value: bytes.subarray(pos, pos + length) });
    pos += length;
  }
  return { type, code, messageId, token, options, payload };
}

function extended(bytes: Uint8Array, nibble: number, pos: number, what: string): [number, number] {
  if (nibble === 13) {
    if (pos + 1 > bytes.length) throw truncated(`${what} extension`, 1, bytes.length - pos);
    return [(bytes[pos] as number) + 13, pos + 1];
  }
  if (nibble === 14) {
    if (pos + 2 > bytes.length) throw truncated(`${what} extension`, 2, bytes.length - pos);
    return [(((bytes[pos] as number) << 8) | (bytes[pos + 1] as number)) + 269, pos + 2];
  }
  return [nibble, pos];
}

/** Bytes an option delta or length takes beyond the header nibble (§3.1: 13 → 1 byte, 14 → 2 bytes). */
const extLength = (n: number): number => (n < 13 ? 0 : n < 269 ? 1 : 2);

function writeExt(out: Uint8Array, pos: number, n: number): number {
  if (n < 13) return pos;
  if (n < 269) {
    out[pos] = n - 13;
    return pos + 1;
  }
  out[pos] = ((n - 269) >> 8) & 0xff;
  out[pos + 1] = (n - 269) & 0xff;
  return pos + 2;
}

const nibbleOf = (n: number): number => (n < 13 ? n : n < 269 ? 13 : 14);

/** Encodes a message; options are sorted by number (stable, so repeated options keep their order). */
export function encodeMessage(m: CoapMessage): Uint8Array {
  if (m.type < 0 || m.type > 3 || !Number.isInteger(m.type)) throw new RangeError(`type must be 0..3, got ${m.type}`);
  if (m.code < 0 || m.code > 255 || !Number.isInteger(m.code)) throw new RangeError(`code must be 0..255, got ${m.code}`);
  if (m.messageId < 0 || m.messageId > 0xffff || !Number.isInteger(m.messageId)) {
    throw new RangeError(`messageId must be 0..65535, got ${m.messageId}`);
  }
  if (m.token.length > 8) throw new RangeError(`token must be at most 8 bytes, got ${m.token.length}`);
  if (m.code === 0 && (m.token.length > 0 || m.options.length > 0 || m.payload.length > 0)) {
    throw new RangeError('an empty message (0.00) carries no token, options or payload');
  }
  let options = m.options;
  for (let i = 1; i < options.length; i++) {
    if ((options[i] as CoapOption).number < (options[i - 1] as CoapOption).number) {
      options = options
        .map((o, j) => ({ o, j }))
        .sort((a, b) => a.o.number - b.o.number || a.j - b.j)
        .map((x) => x.o);
      break;
    }
  }
  // First pass: validate and size; second: write into one buffer.
  let size = 4 + m.token.length;
  let prev = 0;
  for (const o of options) {
    if (o.number < prev || o.number > MAX_OPTION_NUMBER || !Number.isInteger(o.number)) {
      throw new RangeError(`option number must be 0..${MAX_OPTION_NUMBER}, got ${o.number}`);
    }
    if (o.value.length > MAX_OPTION_LENGTH) throw new RangeError(`option ${o.number} value too long (${o.value.length})`);
    size += 1 + extLength(o.number - prev) + extLength(o.value.length) + o.value.length;
    prev = o.number;
  }
  if (m.payload.length > 0) size += 1 + m.payload.length;
  // Every byte is written below; from Node's buffer pool (a 1 KiB block is not worth its own ArrayBuffer).
  const pooled = Buffer.allocUnsafe(size);
  const out = new Uint8Array(pooled.buffer, pooled.byteOffset, size);
  out[0] = (COAP_VERSION << 6) | (m.type << 4) | m.token.length;
  out[1] = m.code;
  out[2] = m.messageId >> 8;
  out[3] = m.messageId & 0xff;
  out.set(m.token, 4);
  let pos = 4 + m.token.length;
  prev = 0;
  for (const o of options) {
    const delta = o.number - prev;
    const len = o.value.length;
    out[pos++] = (nibbleOf(delta) << 4) | nibbleOf(len);
    pos = writeExt(out, pos, delta);
    pos = writeExt(out, pos, len);
    if (len === 1) out[pos] = o.value[0] as number;
    else if (len > 0) out.set(o.value, pos);
    pos += len;
    prev = o.number;
  }
  if (m.payload.length > 0) {
    out[pos] = PAYLOAD_MARKER;
    out.set(m.payload, pos + 1);
  }
  return out;
}

/** RFC 7252 §3.2 uint option values: minimal big-endian, zero is the empty string. */
export function encodeUint(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`uint option must be 0..2^32-1, got ${n}`);
  const len = n === 0 ? 0 : n < 0x100 ? 1 : n < 0x10000 ? 2 : n < 0x1000000 ? 3 : 4;
  const out = new Uint8Array(len);
  let v = n;
  for (let i = len - 1; i >= 0; i--) {
    out[i] = v & 0xff;
    v = Math.floor(v / 256);
  }
  return out;
}

export function decodeUint(value: Uint8Array, what = 'uint option'): number {
  if (value.length > 4) throw new CoapFormatError('coap_bad_option', `${what} must be at most 4 bytes, got ${value.length}`);
  let n = 0;
  for (const b of value) n = n * 256 + b;
  return n;
}

export function optionValues(m: { options: CoapOption[] }, number: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const o of m.options) if (o.number === number) out.push(o.value);
  return out;
}

export function optionUint(m: { options: CoapOption[] }, number: number): number | undefined {
  for (const o of m.options) if (o.number === number) return decodeUint(o.value, `option ${number}`);
  return undefined;
}

export const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

export function decodeUtf8(value: Uint8Array, what: string): string {
  try {
    return utf8Decoder.decode(value);
  } catch {
    throw new CoapFormatError('coap_bad_option', `${what} must be UTF-8`);
  }
}
