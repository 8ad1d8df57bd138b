import { type Brand, InvalidValueError } from './brand.ts';

/** Globally unique, unguessable identifiers. Prefix says what the ID names; body is 128 random bits. */
export type TipsId = Brand<string, 'TipsId'>;
export type SpaceId = Brand<string, 'SpaceId'>;
export type GlazeId = Brand<string, 'GlazeId'>;
export type OwnerId = Brand<string, 'OwnerId'>;
export type GatewayId = Brand<string, 'GatewayId'>;
export type KeyId = Brand<string, 'KeyId'>;
export type EnrollmentSecretId = Brand<string, 'EnrollmentSecretId'>;
export type OnboardingKeyId = Brand<string, 'OnboardingKeyId'>;

export const ID_PREFIX = {
  metal: 'mtl',
  space: 'spc',
  glaze: 'glz',
  owner: 'own',
  gateway: 'gwy',
  key: 'key',
  enrollmentSecret: 'ens',
  onboardingKey: 'obk',
} as const;
export type IdKind = keyof typeof ID_PREFIX;

export type IdOf<K extends IdKind> = K extends 'metal'
  ? TipsId
  : K extends 'space'
    ? SpaceId
    : K extends 'glaze'
      ? GlazeId
      : K extends 'owner'
        ? OwnerId
        : K extends 'key'
          ? KeyId
          : K extends 'enrollmentSecret'
            ? EnrollmentSecretId
            : K extends 'onboardingKey'
              ? OnboardingKeyId
              : GatewayId;

// Crockford base32 without padding: 26 characters for 128 bits, case-insensitive, no ambiguity.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

export function encodeBase32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const b of bytes) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/** Makes a new ID from 16 bytes of randomness supplied by the caller (tests pass fixed bytes). */
export function newId<K extends IdKind>(kind: K, random16: Uint8Array): IdOf<K> {
  if (random16.length !== 16) throw new InvalidValueError('random', 'an ID needs exactly 16 random bytes');
  return `${ID_PREFIX[kind]}_${encodeBase32(random16)}` as IdOf<K>;
}

/** "a" or "an" before a word, so generated messages read as English ("an owner ID", "an array"). */
export function article(word: string): 'a' | 'an' {
  return /^[aeiou]/i.test(word) ? 'an' : 'a';
}

const ID_RE = /^([a-z]{3})_([0-9a-hjkmnp-tv-z]{26})$/;

/** Validates a string as an ID of the given kind. */
export function parseId<K extends IdKind>(kind: K, value: unknown, field = 'id'): IdOf<K> {
  if (typeof value !== 'string') throw new InvalidValueError(field, `expected ${article(kind)} ${kind} ID string`);
  const m = ID_RE.exec(value);
  if (!m || m[1] !== ID_PREFIX[kind]) {
    throw new InvalidValueError(field, `expected ${article(kind)} ${kind} ID like ${ID_PREFIX[kind]}_<26 base32 chars>, got "${value.slice(0, 64)}"`);
  }
  return value as IdOf<K>;
}

export function isId(kind: IdKind, value: unknown): boolean {
  return typeof value === 'string' && ID_RE.exec(value)?.[1] === ID_PREFIX[kind];
}

/**
 * Every identifier shape TIPS issues: the `newId` kinds above (matched without regard to case or
 * to Crockford's excluded letters, so no spelling of an ID can pass for a name), and the IDs made
 * with base64url bodies — API tokens (`tok_`), gateway commands (`cmd_`), discovery records (`reg_`).
 */
const ID_SHAPES: readonly RegExp[] = [
  new RegExp(`^(${Object.values(ID_PREFIX).join('|')})_[0-9a-z]{26}$`, 'i'),
  /^(tok|cmd)_[A-Za-z0-9_-]{16}$/,
  /^reg_[0-9a-z]{10}[A-Za-z0-9_-]{12}$/,
];

/** True when `value` has the shape of any TIPS ID, whatever its kind. */
export function looksLikeId(value: string): boolean {
  return ID_SHAPES.some((re) => re.test(value));
}

/**
 * Finds what a reference names — an ID or a name, never both (issue 10): a reference with the shape
 * of any ID is looked up only as an ID of `kind` (an ID of another kind names nothing), anything
 * else only as a name. Names can never take an ID's shape (`parseName` refuses it), so a name can
 * never stand in for another object's ID.
 */
export async function findByRef<K extends IdKind, T>(
  kind: K,
  ref: string,
  byId: (id: IdOf<K>) => Promise<T | undefined>,
  byName: (name: string) => Promise<T | undefined>,
): Promise<T | undefined> {
  if (looksLikeId(ref)) return isId(kind, ref) ? byId(ref as IdOf<K>) : undefined;
  return byName(ref);
}
