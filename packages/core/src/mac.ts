import { type Brand, InvalidValueError } from './brand.ts';

/** A 48-bit hardware address, normalised to lower-case colon form: `dc:a6:32:01:02:03`. */
export type Mac = Brand<string, 'Mac'>;

const SEPARATED = /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i;
const DOTTED = /^([0-9a-f]{4})\.([0-9a-f]{4})\.([0-9a-f]{4})$/i;
const BARE = /^[0-9a-f]{12}$/i;
/** Already in the normalised form (what gateways send): one test instead of three and a rebuild. */
const CANONICAL = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;

/** Accepts `aa:bb:..`, `aa-bb-..`, `aabb.ccdd.eeff` and `aabbccddeeff`; rejects broadcast and zero. */
export function parseMac(value: unknown, field = 'mac'): Mac {
  if (typeof value !== 'string') throw new InvalidValueError(field, 'expected a MAC address string');
  if (CANONICAL.test(value) && value !== '00:00:00:00:00:00' && value !== 'ff:ff:ff:ff:ff:ff' && (Number.parseInt(value.slice(0, 2), 16) & 1) === 0) return value as Mac;
  let hex: string | undefined;
  const s = SEPARATED.exec(value);
  if (s) hex = [s[1], s[3], s[4], s[5], s[6], s[7]].join('');
  const d = DOTTED.exec(value);
  if (d) hex = d[1]! + d[2]! + d[3]!;
  if (BARE.test(value)) hex = value;
  if (!hex) {
    throw new InvalidValueError(field, `"${value.slice(0, 40)}" is not a MAC address (expected six hex octets like dc:a6:32:01:02:03)`);
  }
  hex = hex.toLowerCase();
  if (hex === '000000000000' || hex === 'ffffffffffff') {
    throw new InvalidValueError(field, `${value} is not a device address (all zeros or broadcast)`);
  }
  if ((Number.parseInt(hex.slice(0, 2), 16) & 1) === 1) {
    throw new InvalidValueError(field, `${value} is a multicast address, not a device's`);
  }
  return hex.match(/../g)!.join(':') as Mac;
}

export function macToBytes(mac: Mac): Uint8Array {
  return Uint8Array.from(mac.split(':').map((h) => Number.parseInt(h, 16)));
}

export function macFromBytes(bytes: Uint8Array): Mac {
  if (bytes.length < 6) throw new InvalidValueError('mac', 'a MAC needs 6 bytes');
  return parseMac(Array.from(bytes.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(':'));
}
