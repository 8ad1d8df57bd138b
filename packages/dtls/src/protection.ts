/**
 * AES-128-CCM-8 record protection for DTLS 1.2 (RFC 6655 §3, RFC 5288 §3 nonce, RFC 6347 §4.1.2.1 AAD).
 *
 * CCM (RFC 3610) is computed here from two long-lived AES cipher objects per key instead of a new
 * node:crypto `aes-128-ccm` cipher per record (creating one costs more than the AES work of a 1 KiB
 * record): one AES-ECB encryption of all the counter blocks gives the CTR keystream, and one AES-CBC
 * encryption of the formatted blocks gives the CBC-MAC. The CBC cipher keeps its chaining value from
 * one call to the next, so each MAC's first block is XORed with the previous call's last output block:
 * E(B0 ⊕ prev ⊕ prev) = E(B0), i.e. every MAC starts from the zero IV as CCM requires. Checked against
 * RFC 3610's packet vectors and node:crypto's own CCM (protection.test.ts).
 */
import { type Cipher, createCipheriv } from 'node:crypto';
import { DtlsError } from './errors.ts';
import type { DtlsRecord } from './record.ts';

export const EXPLICIT_NONCE_LENGTH = 8;
export const TAG_LENGTH = 8;

export interface RecordKeys {
  key: Uint8Array; // 16 bytes
  salt: Uint8Array; // 4 bytes (the implicit part of the nonce)
}

const ZERO_IV = new Uint8Array(16);

/** AES-CCM (RFC 3610) with a fixed key, any nonce of 7..13 bytes, a tag of `tagLength` bytes. */
export class Ccm {
  private readonly ecb: Cipher;
  private readonly cbc: Cipher;
  private chain: Uint8Array = ZERO_IV;

  constructor(
    key: Uint8Array,
    readonly tagLength = TAG_LENGTH,
  ) {
    if (key.length !== 16) throw new RangeError(`AES-128-CCM key must be 16 bytes, got ${key.length}`);
    if (tagLength < 4 || tagLength > 16 || tagLength % 2 !== 0) throw new RangeError(`CCM tag length must be 4, 6, …, 16; got ${tagLength}`);
    this.ecb = createCipheriv('aes-128-ecb', key, null).setAutoPadding(false);
    this.cbc = createCipheriv('aes-128-cbc', key, ZERO_IV).setAutoPadding(false);
  }

  /** Encrypts `plaintext` into `out` at `at`: ciphertext, then the tag (plaintext.length + tagLength bytes). */
  encrypt(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, at: number): void {
    const n = plaintext.length;
    const s = this.keystream(nonce, n);
    for (let i = 0; i < n; i++) out[at + i] = (plaintext[i] as number) ^ (s[16 + i] as number);
    const t = this.mac(nonce, aad, plaintext);
    for (let i = 0; i < this.tagLength; i++) out[at + n + i] = (t[i] as number) ^ (s[i] as number);
  }

  /** Decrypts `ciphertext` (without the tag); undefined unless `tag` authenticates it and `aad`. */
  decrypt(nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array): Uint8Array | undefined {
    const n = ciphertext.length;
    if (tag.length !== this.tagLength) return undefined;
    const s = this.keystream(nonce, n);
    const pt = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) pt[i] = (ciphertext[i] as number) ^ (s[16 + i] as number);
    const t = this.mac(nonce, aad, pt);
    let d = 0;
    for (let i = 0; i < this.tagLength; i++) d |= (t[i] as number) ^ (s[i] as number) ^ (tag[i] as number);
    return d === 0 ? pt : undefined;
  }

  /** S_0 ‖ S_1 ‖ … : E(A_i) for the counter blocks A_0 … A_⌈n/16⌉ (RFC 3610 §2.3), one ECB call. */
  private keystream(nonce: Uint8Array, n: number): Uint8Array {
    const L = 15 - nonce.length;
    if (L < 2 || L > 8) throw new RangeError(`CCM nonce must be 7..13 bytes, got ${nonce.length}`);
    const blocks = 1 + Math.ceil(n / 16);
    const a = Buffer.allocUnsafe(blocks * 16);
    a[0] = L - 1;
    a.set(nonce, 1);
    a.fill(0, 1 + nonce.length, 16);
    // A_1 … copies of A_0 (doubling the filled part with copyWithin), then each block's counter, big-endian in the last L bytes.
    for (let filled = 16; filled < a.length; filled *= 2) a.copyWithin(filled, 0, Math.min(filled, a.length - filled));
    const cb = Math.min(L, 4);
    for (let b = 1; b < blocks; b++) {
      let c = b;
      for (let k = b * 16 + 15; k > b * 16 + 15 - cb; k--) {
        a[k] = c & 0xff;
        c >>>= 8;
      }
    }
    return this.ecb.update(a);
  }

  /** The first tagLength bytes of the CBC-MAC over B_0, the encoded AAD and the message (RFC 3610 §2.2). */
  private mac(nonce: Uint8Array, aad: Uint8Array, m: Uint8Array): Uint8Array {
    const L = 15 - nonce.length;
    if (aad.length >= 0xff00) throw new RangeError('CCM AAD longer than 65279 bytes is not supported');
    const aadBlocks = aad.length === 0 ? 0 : Math.ceil((2 + aad.length) / 16);
    const total = 16 + aadBlocks * 16 + Math.ceil(m.length / 16) * 16;
    const x = Buffer.allocUnsafe(total);
    x.fill(0, 0, 16 + aadBlocks * 16); // B_0's length field and the AAD's padding
    const tail = 16 + aadBlocks * 16 + m.length;
    if (tail < total) x.fill(0, tail, total); // the message's padding
    x[0] = (aad.length > 0 ? 0x40 : 0) | (((this.tagLength - 2) / 2) << 3) | (L - 1);
    x.set(nonce, 1);
    let len = m.length;
    for (let k = 15; k > 15 - L; k--) {
      x[k] = len & 0xff;
      len = Math.floor(len / 256);
    }
    if (aad.length > 0) {
      x[16] = aad.length >> 8;
      x[17] = aad.length & 0xff;
      x.set(aad, 18);
    }
    x.set(m, 16 + aadBlocks * 16);
    const prev = this.chain;
    for (let i = 0; i < 16; i++) x[i] = (x[i] as number) ^ (prev[i] as number);
    const y = this.cbc.update(x);
    const last = y.subarray(total - 16);
    this.chain = last;
    return last;
  }
}

const ciphers = new WeakMap<RecordKeys, Ccm>();
function ccmOf(keys: RecordKeys): Ccm {
  let c = ciphers.get(keys);
  if (!c) {
    c = new Ccm(keys.key, TAG_LENGTH);
    ciphers.set(keys, c);
  }
  return c;
}

function writeSeqNum(b: Uint8Array, at: number, epoch: number, sequence: number): void {
  b[at] = epoch >> 8;
  b[at + 1] = epoch & 0xff;
  const hi = Math.floor(sequence / 2 ** 32);
  b[at + 2] = hi >> 8;
  b[at + 3] = hi & 0xff;
  const lo = sequence >>> 0;
  b[at + 4] = lo >>> 24;
  b[at + 5] = (lo >>> 16) & 0xff;
  b[at + 6] = (lo >>> 8) & 0xff;
  b[at + 7] = lo & 0xff;
}

/** AAD: seq_num (epoch ‖ 48-bit sequence) ‖ type ‖ version ‖ length. */
function aad(epoch: number, sequence: number, type: number, version: number, length: number): Uint8Array {
  const a = new Uint8Array(13);
  writeSeqNum(a, 0, epoch, sequence);
  a[8] = type;
  a[9] = version >> 8;
  a[10] = version & 0xff;
  a[11] = length >> 8;
  a[12] = length & 0xff;
  return a;
}

function nonce(salt: Uint8Array, explicit: Uint8Array, at: number): Uint8Array {
  const n = new Uint8Array(12);
  n.set(salt, 0);
  for (let i = 0; i < 8; i++) n[4 + i] = explicit[at + i] as number;
  return n;
}

/** Length of a protected fragment carrying `plaintextLength` bytes. */
export const sealedLength = (plaintextLength: number): number => EXPLICIT_NONCE_LENGTH + plaintextLength + TAG_LENGTH;

/**
 * Writes the record's protected fragment — explicit nonce ‖ ciphertext ‖ 8-byte tag — into `out` at
 * `at` (sealedLength(plaintext.length) bytes), so a caller can put the record header in front without a copy.
 */
export function sealRecordInto(keys: RecordKeys, rec: Omit<DtlsRecord, 'fragment'>, plaintext: Uint8Array, out: Uint8Array, at: number): void {
  writeSeqNum(out, at, rec.epoch, rec.sequence);
  ccmOf(keys).encrypt(nonce(keys.salt, out, at), aad(rec.epoch, rec.sequence, rec.type, rec.version, plaintext.length), plaintext, out, at + EXPLICIT_NONCE_LENGTH);
}

/** Returns the record's new fragment: explicit nonce ‖ ciphertext ‖ 8-byte tag. */
export function sealRecord(keys: RecordKeys, rec: Omit<DtlsRecord, 'fragment'>, plaintext: Uint8Array): Uint8Array {
  const out = new Uint8Array(sealedLength(plaintext.length));
  sealRecordInto(keys, rec, plaintext, out, 0);
  return out;
}

/** Throws DtlsError('bad_record_mac') when the record does not authenticate. */
export function openRecord(keys: RecordKeys, rec: DtlsRecord): Uint8Array {
  const f = rec.fragment;
  if (f.length < EXPLICIT_NONCE_LENGTH + TAG_LENGTH) throw new DtlsError('bad_record_mac', 'record shorter than nonce and tag');
  const ct = f.subarray(EXPLICIT_NONCE_LENGTH, f.length - TAG_LENGTH);
  const tag = f.subarray(f.length - TAG_LENGTH);
  const pt = ccmOf(keys).decrypt(nonce(keys.salt, f, 0), aad(rec.epoch, rec.sequence, rec.type, rec.version, ct.length), ct, tag);
  if (!pt) throw new DtlsError('bad_record_mac', 'record does not authenticate');
  return pt;
}
