/** AES-128-CCM-8 record protection for DTLS 1.2 (RFC 6655 §3, RFC 5288 §3 nonce, RFC 6347 §4.1.2.1 AAD). */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { DtlsError } from './errors.ts';
import type { DtlsRecord } from './record.ts';

export const EXPLICIT_NONCE_LENGTH = 8;
export const TAG_LENGTH = 8;

export interface RecordKeys {
  key: Uint8Array; // 16 bytes
  salt: Uint8Array; // 4 bytes (the implicit part of the nonce)
}

/** seq_num (epoch ‖ 48-bit sequence) — the explicit nonce and the first 8 bytes of the AAD. */
function seqNum(epoch: number, sequence: number): Uint8Array {
  const b = new Uint8Array(8);
  b[0] = epoch >> 8;
  b[1] = epoch & 0xff;
  const hi = Math.floor(sequence / 2 ** 32);
  b[2] = hi >> 8;
  b[3] = hi & 0xff;
  new DataView(b.buffer).setUint32(4, sequence >>> 0);
  return b;
}

function aad(seq: Uint8Array, type: number, version: number, length: number): Uint8Array {
  const a = new Uint8Array(13);
  a.set(seq, 0);
  a[8] = type;
  a[9] = version >> 8;
  a[10] = version & 0xff;
  a[11] = length >> 8;
  a[12] = length & 0xff;
  return a;
}

function nonce(salt: Uint8Array, explicit: Uint8Array): Uint8Array {
  const n = new Uint8Array(12);
  n.set(salt, 0);
  n.set(explicit, 4);
  return n;
}

/** Returns the record's new fragment: explicit nonce ‖ ciphertext ‖ 8-byte tag. */
export function sealRecord(keys: RecordKeys, rec: Omit<DtlsRecord, 'fragment'>, plaintext: Uint8Array): Uint8Array {
  const explicit = seqNum(rec.epoch, rec.sequence);
  const c = createCipheriv('aes-128-ccm', keys.key, nonce(keys.salt, explicit), { authTagLength: TAG_LENGTH });
  c.setAAD(aad(explicit, rec.type, rec.version, plaintext.length), { plaintextLength: plaintext.length });
  const ct = c.update(plaintext);
  c.final();
  const tag = c.getAuthTag();
  const out = new Uint8Array(EXPLICIT_NONCE_LENGTH + ct.length + TAG_LENGTH);
  out.set(explicit, 0);
  out.set(ct, EXPLICIT_NONCE_LENGTH);
  out.set(tag, EXPLICIT_NONCE_LENGTH + ct.length);
  return out;
}

/** Throws DtlsError('bad_record_mac') when the record does not authenticate. */
export function openRecord(keys: RecordKeys, rec: DtlsRecord): Uint8Array {
  const f = rec.fragment;
  if (f.length < EXPLICIT_NONCE_LENGTH + TAG_LENGTH) throw new DtlsError('bad_record_mac', 'record shorter than nonce and tag');
  const explicit = f.subarray(0, EXPLICIT_NONCE_LENGTH);
  const ct = f.subarray(EXPLICIT_NONCE_LENGTH, f.length - TAG_LENGTH);
  const tag = f.subarray(f.length - TAG_LENGTH);
  try {
    const d = createDecipheriv('aes-128-ccm', keys.key, nonce(keys.salt, explicit), { authTagLength: TAG_LENGTH });
    d.setAuthTag(tag);
    d.setAAD(aad(seqNum(rec.epoch, rec.sequence), rec.type, rec.version, ct.length), { plaintextLength: ct.length });
    const pt = d.update(ct);
    d.final();
    return pt;
  } catch {
    throw new DtlsError('bad_record_mac', 'record does not authenticate');
  }
}
