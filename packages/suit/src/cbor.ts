/**
 * Strict CBOR (RFC 8949) codec for signed input. Decoding accepts only the deterministic subset:
 * definite lengths, minimal-length heads, no duplicate map keys, no trailing bytes, valid UTF-8,
 * bounded nesting, lengths that fit the input. Floats and unassigned simple values are rejected
 * because no structure this package reads uses them and each one is a second spelling of a value.
 * Encoding writes minimal heads and keeps map insertion order, so decode → encode is the identity
 * on every input the decoder accepts.
 */
import { CborError } from './errors.ts';

export class CborTag {
  constructor(
    readonly tag: number,
    readonly value: CborValue,
  ) {}
}

export type CborMap = Map<CborValue, CborValue>;
export type CborValue = number | bigint | string | Uint8Array | boolean | null | undefined | CborValue[] | CborMap | CborTag;

export const MT_UINT = 0;
export const MT_NINT = 1;
export const MT_BSTR = 2;
export const MT_TSTR = 3;
export const MT_ARRAY = 4;
export const MT_MAP = 5;
export const MT_TAG = 6;
export const MT_SIMPLE = 7;

const SIMPLE_FALSE = 20;
const SIMPLE_TRUE = 21;
const SIMPLE_NULL = 22;
const SIMPLE_UNDEFINED = 23;
const AI_INDEFINITE = 31;

export interface DecodeOptions {
  /** Deepest nesting of arrays, maps and tags accepted (default 64). */
  maxDepth?: number;
}

const MAJOR_NAMES = ['unsigned integer', 'negative integer', 'byte string', 'text string', 'array', 'map', 'tag', 'simple/float'];
export function majorName(mt: number): string {
  return MAJOR_NAMES[mt] ?? `major type ${mt}`;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

class Reader {
  pos = 0;
  constructor(
    readonly buf: Uint8Array,
    readonly maxDepth: number,
  ) {}

  fail(code: ConstructorParameters<typeof CborError>[0], message: string): never {
    throw new CborError(code, `${message} (at offset ${this.pos})`, this.pos);
  }

  /** Major type and additional information of the last head read. */
  mt = 0;
  ai = 0;

  /** Reads a head; sets mt/ai and returns the argument. Arguments beyond 2^53 come back as bigint. */
  head(): number | bigint {
    const buf = this.buf;
    if (this.pos >= buf.length) this.fail('cbor_truncated', 'expected a data item, came end of input');
    const start = this.pos;
    const ib = buf[this.pos++]!;
    const mt = ib >> 5;
    const ai = ib & 0x1f;
    this.mt = mt;
    this.ai = ai;
    if (ai < 24) return ai;
    if (ai === AI_INDEFINITE) {
      this.pos = start;
      if (mt === MT_SIMPLE) this.fail('cbor_unexpected_break', 'expected a data item, came a break code');
      this.fail('cbor_indefinite_length', `expected a definite-length ${majorName(mt)}, came an indefinite length`);
    }
    if (ai > 27) {
      this.pos = start;
      this.fail('cbor_reserved', `expected additional information 0..27, came reserved value ${ai}`);
    }
    const n = 1 << (ai - 24);
    if (this.pos + n > buf.length) {
      this.pos = start;
      this.fail('cbor_truncated', `expected ${n} argument bytes, came ${buf.length - start - 1}`);
    }
    let v: number | bigint;
    if (n === 1) v = buf[this.pos]!;
    else if (n === 2) v = (buf[this.pos]! << 8) | buf[this.pos + 1]!;
    else if (n === 4) v = ((buf[this.pos]! << 24) >>> 0) + ((buf[this.pos + 1]! << 16) | (buf[this.pos + 2]! << 8) | buf[this.pos + 3]!);
    else {
      const hi = ((buf[this.pos]! << 24) >>> 0) + ((buf[this.pos + 1]! << 16) | (buf[this.pos + 2]! << 8) | buf[this.pos + 3]!);
      const lo = ((buf[this.pos + 4]! << 24) >>> 0) + ((buf[this.pos + 5]! << 16) | (buf[this.pos + 6]! << 8) | buf[this.pos + 7]!);
      v = hi < 0x200000 ? hi * 0x100000000 + lo : (BigInt(hi) << 32n) | BigInt(lo);
    }
    this.pos += n;
    if (mt !== MT_SIMPLE) {
      const min = n === 1 ? 24 : n === 2 ? 0x100 : n === 4 ? 0x10000 : 0x100000000;
      if (v < min) {
        this.pos = start;
        this.fail('cbor_non_minimal', `expected the shortest encoding of ${String(v)}, came ${n + 1} bytes`);
      }
    }
    return v;
  }

  /** `what` carries its article ("an array", "a map"): the message is read by people. */
  length(v: number | bigint, what: string, unit: number): number {
    const remaining = this.buf.length - this.pos;
    if (typeof v === 'bigint' || v * unit > remaining) {
      this.fail('cbor_length_exceeds_input', `expected ${what} that fits the ${remaining} remaining bytes, came a declared length of ${String(v)}`);
    }
    return v;
  }

  item(depth: number): CborValue {
    const v = this.head();
    const mt = this.mt;
    const ai = this.ai;
    switch (mt) {
      case MT_UINT:
        return v;
      case MT_NINT:
        return typeof v === 'bigint' || v >= Number.MAX_SAFE_INTEGER ? -1n - BigInt(v) : -1 - v;
      case MT_BSTR: {
        const len = this.length(v, 'a byte string', 1);
        const out = this.buf.subarray(this.pos, this.pos + len);
        this.pos += len;
        return out;
      }
      case MT_TSTR: {
        const len = this.length(v, 'a text string', 1);
        const at = this.pos;
        this.pos += len;
        if (len <= 64) {
          // Short ASCII (labels, URIs): cheaper than a TextDecoder call.
          const buf = this.buf;
          let str = '';
          let i = at;
          for (; i < at + len; i++) {
            const c = buf[i]!;
            if (c > 0x7f) break;
            str += String.fromCharCode(c);
          }
          if (i === at + len) return str;
        }
        try {
          return utf8.decode(this.buf.subarray(at, at + len));
        } catch {
          this.pos = at;
          return this.fail('cbor_invalid_utf8', 'expected valid UTF-8 in a text string, came invalid bytes');
        }
      }
      case MT_ARRAY: {
        if (depth >= this.maxDepth) this.fail('cbor_too_deep', `expected nesting of at most ${this.maxDepth}, came deeper`);
        const len = this.length(v, 'an array', 1);
        const out: CborValue[] = new Array(len);
        for (let i = 0; i < len; i++) out[i] = this.item(depth + 1);
        return out;
      }
      case MT_MAP: {
        if (depth >= this.maxDepth) this.fail('cbor_too_deep', `expected nesting of at most ${this.maxDepth}, came deeper`);
        const len = this.length(v, 'a map', 2);
        const out: CborMap = new Map();
        let seen: Set<string> | undefined;
        for (let i = 0; i < len; i++) {
          const keyStart = this.pos;
          const key = this.item(depth + 1);
          let dup: boolean;
          if (typeof key === 'number' || typeof key === 'string') dup = out.has(key);
          else {
            seen ??= new Set();
            const id = Buffer.from(this.buf.buffer, this.buf.byteOffset + keyStart, this.pos - keyStart).toString('latin1');
            dup = seen.has(id);
            seen.add(id);
          }
          if (dup) {
            this.pos = keyStart;
            this.fail('cbor_duplicate_key', `expected unique map keys, came key ${describeKey(key)} twice`);
          }
          out.set(key, this.item(depth + 1));
        }
        return out;
      }
      case MT_TAG: {
        if (depth >= this.maxDepth) this.fail('cbor_too_deep', `expected nesting of at most ${this.maxDepth}, came deeper`);
        if (typeof v === 'bigint') this.fail('cbor_unsupported', `expected a tag number below 2^53, came ${v}`);
        return new CborTag(v, this.item(depth + 1));
      }
      default: {
        if (ai === SIMPLE_FALSE) return false;
        if (ai === SIMPLE_TRUE) return true;
        if (ai === SIMPLE_NULL) return null;
        if (ai === SIMPLE_UNDEFINED) return undefined;
        this.pos -= ai >= 25 ? 1 + (1 << (ai - 24)) : ai === 24 ? 2 : 1;
        if (ai >= 25) this.fail('cbor_unsupported', 'expected no floating-point values in signed input, came a float');
        return this.fail('cbor_unsupported', `expected false, true, null or undefined, came simple value ${String(v)}`);
      }
    }
  }
}

function describeKey(key: CborValue): string {
  if (typeof key === 'string') return JSON.stringify(key);
  if (typeof key === 'number' || typeof key === 'bigint') return String(key);
  return `of type ${typeName(key)}`;
}

/** A short human name for the CBOR type of a decoded value, for error messages. */
export function typeName(v: CborValue): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'number' || typeof v === 'bigint') return 'integer';
  if (typeof v === 'string') return 'text string';
  if (typeof v === 'boolean') return 'boolean';
  if (v instanceof Uint8Array) return 'byte string';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Map) return 'map';
  return `tag ${v.tag}`;
}

/** Decodes exactly one data item that must span the whole input. Throws CborError. */
export function decodeCbor(bytes: Uint8Array, options: DecodeOptions = {}): CborValue {
  const r = new Reader(bytes, options.maxDepth ?? 64);
  const value = r.item(0);
  if (r.pos !== bytes.length) r.fail('cbor_trailing_bytes', `expected end of input, came ${bytes.length - r.pos} more bytes`);
  return value;
}

/** Decodes one data item at `offset` and returns it with the offset just past it. */
export function decodeCborPrefix(bytes: Uint8Array, offset = 0, options: DecodeOptions = {}): { value: CborValue; end: number } {
  const r = new Reader(bytes, options.maxDepth ?? 64);
  r.pos = offset;
  const value = r.item(0);
  return { value, end: r.pos };
}

class Writer {
  buf: Uint8Array;
  constructor(size = 64) {
    this.buf = new Uint8Array(size);
  }
  pos = 0;
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
  head(mt: number, v: number | bigint): void {
    this.ensure(9);
    const b = this.buf;
    const m = mt << 5;
    if (typeof v === 'bigint') {
      if (v < 0n || v > 0xffffffffffffffffn) throw new CborError('cbor_unsupported', `expected an argument that fits 64 bits, came ${v}`);
      if (v <= BigInt(Number.MAX_SAFE_INTEGER)) {
        this.head(mt, Number(v));
        return;
      }
      b[this.pos++] = m | 27;
      for (let i = 7; i >= 0; i--) b[this.pos++] = Number((v >> BigInt(i * 8)) & 0xffn);
      return;
    }
    if (v < 24) b[this.pos++] = m | v;
    else if (v < 0x100) {
      b[this.pos++] = m | 24;
      b[this.pos++] = v;
    } else if (v < 0x10000) {
      b[this.pos++] = m | 25;
      b[this.pos++] = v >> 8;
      b[this.pos++] = v & 0xff;
    } else if (v < 0x100000000) {
      b[this.pos++] = m | 26;
      b[this.pos++] = (v >>> 24) & 0xff;
      b[this.pos++] = (v >>> 16) & 0xff;
      b[this.pos++] = (v >>> 8) & 0xff;
      b[this.pos++] = v & 0xff;
    } else {
      b[this.pos++] = m | 27;
      const hi = Math.floor(v / 0x100000000);
      const lo = v >>> 0;
      for (const w of [hi, lo]) {
        b[this.pos++] = (w >>> 24) & 0xff;
        b[this.pos++] = (w >>> 16) & 0xff;
        b[this.pos++] = (w >>> 8) & 0xff;
        b[this.pos++] = w & 0xff;
      }
    }
  }
  bytes(data: Uint8Array): void {
    this.ensure(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }
  item(v: CborValue, depth: number): void {
    if (depth > 256) throw new CborError('cbor_too_deep', 'expected nesting of at most 256 when encoding, came deeper');
    if (typeof v === 'number') {
      if (!Number.isInteger(v)) throw new CborError('cbor_unsupported', `expected an integer, came the float ${v}`);
      if (!Number.isSafeInteger(v)) this.item(BigInt(v), depth);
      else if (v >= 0) this.head(MT_UINT, v);
      else this.head(MT_NINT, -1 - v);
    } else if (typeof v === 'bigint') {
      if (v >= 0n) this.head(MT_UINT, v);
      else this.head(MT_NINT, -1n - v);
    } else if (typeof v === 'string') {
      if (v.length < 64 && /^[\x00-\x7f]*$/.test(v)) {
        // ASCII: one byte per char, no TextEncoder round trip.
        this.head(MT_TSTR, v.length);
        this.ensure(v.length);
        for (let i = 0; i < v.length; i++) this.buf[this.pos++] = v.charCodeAt(i);
        return;
      }
      const data = utf8Encoder.encode(v);
      this.head(MT_TSTR, data.length);
      this.bytes(data);
    } else if (v instanceof Uint8Array) {
      this.head(MT_BSTR, v.length);
      this.bytes(v);
    } else if (Array.isArray(v)) {
      this.head(MT_ARRAY, v.length);
      for (const x of v) this.item(x, depth + 1);
    } else if (v instanceof Map) {
      this.head(MT_MAP, v.size);
      for (const [k, x] of v) {
        this.item(k, depth + 1);
        this.item(x, depth + 1);
      }
    } else if (v instanceof CborTag) {
      this.head(MT_TAG, v.tag);
      this.item(v.value, depth + 1);
    } else if (v === false) this.head(MT_SIMPLE, SIMPLE_FALSE);
    else if (v === true) this.head(MT_SIMPLE, SIMPLE_TRUE);
    else if (v === null) this.head(MT_SIMPLE, SIMPLE_NULL);
    else if (v === undefined) this.head(MT_SIMPLE, SIMPLE_UNDEFINED);
    else throw new CborError('cbor_unsupported', `expected a CBOR value, came ${typeof v}`);
  }
}

/** Encodes with minimal heads, definite lengths and the map order given (build maps in key order). */
export function encodeCbor(value: CborValue): Uint8Array {
  const w = new Writer();
  w.item(value, 0);
  return w.buf.slice(0, w.pos);
}

/** The CBOR head of a byte string of `length` bytes (what "bstr-wrapping" puts in front). */
export function bstrHead(length: number): Uint8Array {
  if (length < 24) return Uint8Array.of(0x40 | length);
  if (length < 0x100) return Uint8Array.of(0x58, length);
  if (length < 0x10000) return Uint8Array.of(0x59, length >> 8, length & 0xff);
  const w = new Writer(16);
  w.head(MT_BSTR, length);
  return w.buf.slice(0, w.pos);
}

/** `bstr .cbor x` as it appears on the wire: head + content. */
export function wrapBstr(content: Uint8Array): Uint8Array {
  const head = bstrHead(content.length);
  const out = new Uint8Array(head.length + content.length);
  out.set(head);
  out.set(content, head.length);
  return out;
}

/** Sorts map entries by the bytewise order of their encoded keys (RFC 8949 §4.2.1). */
export function canonicalMap(entries: Iterable<[CborValue, CborValue]>): CborMap {
  const list = [...entries].map(([k, v]) => ({ k, v, e: encodeCbor(k) }));
  list.sort((a, b) => Buffer.compare(a.e, b.e));
  return new Map(list.map((x) => [x.k, x.v]));
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
}

/**
 * CBOR diagnostic notation (RFC 8949 §8). Byte strings that hold exactly one strictly decodable
 * item are shown as embedded CBOR `<< ... >>` when `embedded` is set, as `tips suit inspect` does.
 */
export function toDiagnostic(v: CborValue, options: { embedded?: boolean; indent?: number } = {}): string {
  const step = options.indent ?? 2;
  const emb = options.embedded ?? false;
  const go = (x: CborValue, lvl: number): string => {
    const pad = step > 0 ? `\n${' '.repeat((lvl + 1) * step)}` : '';
    const end = step > 0 ? `\n${' '.repeat(lvl * step)}` : '';
    const sep = step > 0 ? ',' : ', ';
    if (typeof x === 'number' || typeof x === 'bigint') return String(x);
    if (typeof x === 'string') return JSON.stringify(x);
    if (x instanceof Uint8Array) {
      if (emb && x.length > 0) {
        try {
          const inner = decodeCbor(x, { maxDepth: 32 });
          if (inner instanceof Map || Array.isArray(inner) || inner instanceof CborTag) return `<< ${go(inner, lvl)} >>`;
        } catch {
          // not embedded CBOR: print as bytes
        }
      }
      return `h'${hex(x)}'`;
    }
    if (Array.isArray(x)) {
      if (x.length === 0) return '[]';
      return `[${x.map((e) => pad + go(e, lvl + 1)).join(sep)}${end}]`;
    }
    if (x instanceof Map) {
      if (x.size === 0) return '{}';
      return `{${[...x].map(([k, e]) => `${pad}${go(k, lvl + 1)}: ${go(e, lvl + 1)}`).join(sep)}${end}}`;
    }
    if (x instanceof CborTag) return `${x.tag}(${go(x.value, lvl)})`;
    return String(x);
  };
  return go(v, 0);
}
