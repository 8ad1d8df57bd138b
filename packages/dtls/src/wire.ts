/** Bounds-checked reading and writing of the TLS presentation language (RFC 5246 §4). */
import { DtlsError } from './errors.ts';

export class Reader {
  private pos = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly what: string,
  ) {}
  get remaining(): number {
    return this.buf.length - this.pos;
  }
  get offset(): number {
    return this.pos;
  }
  private need(n: number, field: string): void {
    if (this.remaining < n) {
      throw new DtlsError('decode_error', `${this.what}: ${field} needs ${n} bytes, ${this.remaining} left`);
    }
  }
  u8(field: string): number {
    this.need(1, field);
    return this.buf[this.pos++] as number;
  }
  u16(field: string): number {
    this.need(2, field);
    const v = ((this.buf[this.pos] as number) << 8) | (this.buf[this.pos + 1] as number);
    this.pos += 2;
    return v;
  }
  u24(field: string): number {
    this.need(3, field);
    const b = this.buf;
    const p = this.pos;
    this.pos += 3;
    return ((b[p] as number) << 16) | ((b[p + 1] as number) << 8) | (b[p + 2] as number);
  }
  u48(field: string): number {
    const hi = this.u16(field);
    this.need(4, field);
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return hi * 2 ** 32 + (((b[p] as number) << 24) >>> 0) + (((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number));
  }
  bytes(n: number, field: string): Uint8Array {
    this.need(n, field);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  /** A vector with a length prefix of `lenBytes` bytes, whose length must lie in [min, max]. */
  vector(lenBytes: 1 | 2 | 3, field: string, min = 0, max = 2 ** (8 * lenBytes) - 1): Uint8Array {
    const n = lenBytes === 1 ? this.u8(field) : lenBytes === 2 ? this.u16(field) : this.u24(field);
    if (n < min || n > max) throw new DtlsError('decode_error', `${this.what}: ${field} length ${n} outside ${min}..${max}`);
    return this.bytes(n, field);
  }
  rest(): Uint8Array {
    const v = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return v;
  }
  end(): void {
    if (this.remaining !== 0) throw new DtlsError('decode_error', `${this.what}: ${this.remaining} trailing bytes`);
  }
}

export class Writer {
  private parts: Uint8Array[] = [];
  private len = 0;
  private push(b: Uint8Array): this {
    this.parts.push(b);
    this.len += b.length;
    return this;
  }
  u8(v: number): this {
    return this.push(Uint8Array.of(v & 0xff));
  }
  u16(v: number): this {
    return this.push(Uint8Array.of((v >>> 8) & 0xff, v & 0xff));
  }
  u24(v: number): this {
    return this.push(Uint8Array.of((v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff));
  }
  u48(v: number): this {
    const hi = Math.floor(v / 2 ** 32);
    const lo = v >>> 0;
    return this.push(Uint8Array.of((hi >>> 8) & 0xff, hi & 0xff, lo >>> 24, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff));
  }
  bytes(b: Uint8Array): this {
    return this.push(b);
  }
  vector(lenBytes: 1 | 2 | 3, b: Uint8Array): this {
    if (b.length >= 2 ** (8 * lenBytes)) throw new DtlsError('internal_error', `vector of ${b.length} bytes too long`);
    if (lenBytes === 1) this.u8(b.length);
    else if (lenBytes === 2) this.u16(b.length);
    else this.u24(b.length);
    return this.push(b);
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.len);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const w = new Writer();
  for (const p of parts) w.bytes(p);
  return w.finish();
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= (a[i] as number) ^ (b[i] as number);
  return d === 0;
}
