/** RFC 7959 §2.2 Block1/Block2 option values: NUM (up to 20 bits) | M | SZX, size = 2^(SZX+4). */
import { CoapFormatError } from './errors.ts';
import { decodeUint, encodeUint } from './message.ts';

export interface Block {
  num: number;
  more: boolean;
  szx: number;
}

export const MAX_BLOCK_NUM = 0xfffff;
export const blockSize = (szx: number): number => 1 << (szx + 4);

/** 16..1024 → 0..6; anything else is a RangeError (a configuration mistake, not input). */
export function szxOf(size: number): number {
  const szx = Math.log2(size) - 4;
  if (!Number.isInteger(szx) || szx < 0 || szx > 6) throw new RangeError(`block size must be 16, 32, …, 1024; got ${size}`);
  return szx;
}

export function encodeBlock(b: Block): Uint8Array {
  if (!Number.isInteger(b.num) || b.num < 0 || b.num > MAX_BLOCK_NUM) throw new RangeError(`block NUM must be 0..${MAX_BLOCK_NUM}, got ${b.num}`);
  if (!Number.isInteger(b.szx) || b.szx < 0 || b.szx > 6) throw new RangeError(`block SZX must be 0..6, got ${b.szx}`);
  return encodeUint(b.num * 16 + (b.more ? 8 : 0) + b.szx);
}

export function decodeBlock(value: Uint8Array): Block {
  if (value.length > 3) throw new CoapFormatError('coap_bad_block', `block option must be 0..3 bytes, got ${value.length}`);
  const v = decodeUint(value, 'block option');
  const szx = v & 7;
  // §2.2: SZX 7 is reserved (BERT exists only over reliable transports, RFC 8323).
  if (szx === 7) throw new CoapFormatError('coap_bad_block', 'block SZX 7 is reserved');
  return { num: v >> 4, more: (v & 8) !== 0, szx };
}
