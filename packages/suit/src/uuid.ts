/**
 * RFC 9562 (ex-4122) name-based UUIDs, version 5 (SHA-1), as SUIT uses them for vendor and class
 * identifiers: vendor ID = UUID5(DNS namespace, vendor domain), class ID = UUID5(vendor ID, class info).
 */
import { createHash } from 'node:crypto';
import { SuitError } from './errors.ts';

export const UUID_NAMESPACE_DNS = '6ba7b810-9dad-11d1-80b4-00c04fd430c8';

export function uuidToBytes(uuid: string): Uint8Array {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new SuitError('suit_bad_value', `expected a UUID (32 hex digits with optional dashes), came "${uuid}"`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

export function uuidToString(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new SuitError('suit_bad_value', `expected 16 UUID bytes, came ${bytes.length}`);
  const h = Buffer.from(bytes).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** UUID version 5 of `name` (UTF-8 string or bytes) in `namespace`, as 16 bytes. */
export function uuid5(namespace: Uint8Array | string, name: Uint8Array | string): Uint8Array {
  const ns = typeof namespace === 'string' ? uuidToBytes(namespace) : namespace;
  const n = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
  const h = createHash('sha1').update(ns).update(n).digest();
  const out = new Uint8Array(h.subarray(0, 16));
  out[6] = (out[6]! & 0x0f) | 0x50;
  out[8] = (out[8]! & 0x3f) | 0x80;
  return out;
}

/** SUIT vendor ID: UUID5(DNS, domain). */
export function vendorIdFromDomain(domain: string): Uint8Array {
  if (!/^[A-Za-z0-9.-]{1,253}$/.test(domain)) throw new SuitError('suit_bad_value', `vendor domain: expected a DNS name, came "${domain}"`);
  return uuid5(UUID_NAMESPACE_DNS, domain);
}

/** SUIT class ID: UUID5(vendor ID, class info). */
export function classIdFrom(vendorId: Uint8Array, classInfo: string | Uint8Array): Uint8Array {
  return uuid5(vendorId, classInfo);
}
