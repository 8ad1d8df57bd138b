/** The TLS 1.2 PRF with SHA-256 (RFC 5246 §5), master secret (§8.1, RFC 7627) and key block (§6.3). */
import { createHash, createHmac } from 'node:crypto';
import { concat } from './wire.ts';

const te = new TextEncoder();

export function pSha256(secret: Uint8Array, seed: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let a: Uint8Array = seed;
  let o = 0;
  while (o < length) {
    a = createHmac('sha256', secret).update(a).digest();
    const block = createHmac('sha256', secret).update(a).update(seed).digest();
    out.set(block.subarray(0, Math.min(block.length, length - o)), o);
    o += block.length;
  }
  return out;
}

export function prf(secret: Uint8Array, label: string, seed: Uint8Array, length: number): Uint8Array {
  return pSha256(secret, concat(te.encode(label), seed), length);
}

export function sha256(data: Uint8Array): Uint8Array {
  return createHash('sha256').update(data).digest();
}

/** RFC 4279 §2: the premaster secret of plain PSK — N zero bytes, then the N-byte key, each length-prefixed. */
export function pskPremaster(psk: Uint8Array): Uint8Array {
  const n = psk.length;
  const out = new Uint8Array(4 + 2 * n);
  out[0] = n >> 8;
  out[1] = n & 0xff;
  out[2 + n] = n >> 8;
  out[3 + n] = n & 0xff;
  out.set(psk, 4 + n);
  return out;
}

export function masterSecret(
  premaster: Uint8Array,
  clientRandom: Uint8Array,
  serverRandom: Uint8Array,
  extendedSessionHash?: Uint8Array,
): Uint8Array {
  if (extendedSessionHash) return prf(premaster, 'extended master secret', extendedSessionHash, 48);
  return prf(premaster, 'master secret', concat(clientRandom, serverRandom), 48);
}

export interface KeyBlock {
  clientWriteKey: Uint8Array;
  serverWriteKey: Uint8Array;
  clientWriteIv: Uint8Array;
  serverWriteIv: Uint8Array;
}

/** AES_128_CCM_8 (RFC 6655): no MAC keys, 16-byte keys, 4-byte implicit IVs (salts). */
export function keyBlock(master: Uint8Array, clientRandom: Uint8Array, serverRandom: Uint8Array): KeyBlock {
  const kb = prf(master, 'key expansion', concat(serverRandom, clientRandom), 40);
  return {
    clientWriteKey: kb.slice(0, 16),
    serverWriteKey: kb.slice(16, 32),
    clientWriteIv: kb.slice(32, 36),
    serverWriteIv: kb.slice(36, 40),
  };
}

export function finishedVerifyData(master: Uint8Array, sender: 'client' | 'server', transcriptHash: Uint8Array): Uint8Array {
  return prf(master, `${sender} finished`, transcriptHash, 12);
}
