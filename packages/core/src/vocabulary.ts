import { type Brand, InvalidValueError } from './brand.ts';
import { looksLikeId } from './ids.ts';

/** The three provisioning phases (T4): 1 = OS + client, 2 = applications, 3 = lifelong updates. */
export const PHASES = [1, 2, 3] as const;
export type Phase = (typeof PHASES)[number];
export function parsePhase(value: unknown, field = 'phase'): Phase {
  if (value === 1 || value === 2 || value === 3) return value;
  throw new InvalidValueError(field, `phase must be 1, 2 or 3, got ${JSON.stringify(value)}`);
}

/** State of one (MAC, gateway interface) row at a gateway (T5–T8). */
export const INTERFACE_STATES = ['pending', 'active', 'blocked'] as const;
export type InterfaceState = (typeof INTERFACE_STATES)[number];

export const INTERFACE_TYPES = ['ethernet', 'wifi', 'other'] as const;
export type InterfaceType = (typeof INTERFACE_TYPES)[number];
export function parseInterfaceType(value: unknown, field = 'type'): InterfaceType {
  if (typeof value === 'string' && (INTERFACE_TYPES as readonly string[]).includes(value)) return value as InterfaceType;
  throw new InvalidValueError(field, `interface type must be one of ${INTERFACE_TYPES.join(', ')}, got ${JSON.stringify(value)}`);
}

/** Lower-case hex SHA-256 digest. */
export type Sha256 = Brand<string, 'Sha256'>;
export function parseSha256(value: unknown, field = 'sha256'): Sha256 {
  if (typeof value === 'string' && /^[0-9a-f]{64}$/.test(value)) return value as Sha256;
  throw new InvalidValueError(field, 'expected 64 lower-case hex characters (a SHA-256 digest)');
}

/** SUIT sequence number: a non-negative safe integer that only ever grows per component (S4). */
export type SeqNo = Brand<number, 'SeqNo'>;
export function parseSeqNo(value: unknown, field = 'sequenceNumber'): SeqNo {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value as SeqNo;
  throw new InvalidValueError(field, 'expected a non-negative integer sequence number');
}

/**
 * Names shown to people: 1–64 chars, letters, digits, dot, dash, underscore; starts alphanumeric;
 * never the shape of an ID (`mtl_…`, `spc_…`, any kind): references take an ID or a name, and a
 * name that looked like another object's ID would make a reference point at the wrong object.
 * The one factory for the name of every object that has one (metals, Spaces, Glazes, gateways,
 * owners, API tokens, operator keys).
 */
export type Name = Brand<string, 'Name'>;
export const NAME_MAX = 64;
export const NAME_RULE = `1–${NAME_MAX} letters, digits, ".", "-" or "_", starting with a letter or digit, and not shaped like an ID (such as mtl_<26 characters>)`;
export function parseName(value: unknown, field = 'name'): Name {
  if (typeof value !== 'string') throw new InvalidValueError(field, 'expected a name string');
  if (value.length === 0 || value.length > NAME_MAX) {
    throw new InvalidValueError(field, `name must be 1–${NAME_MAX} characters, got ${value.length}`);
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(value)) {
    throw new InvalidValueError(field, `name "${value}" may contain only letters, digits, ".", "-" and "_", starting with a letter or digit`);
  }
  if (looksLikeId(value)) {
    throw new InvalidValueError(field, `name "${value}" has the shape of an ID; choose a name that does not (IDs are given by the master)`);
  }
  return value as Name;
}

/**
 * Why a Phase 1 install failed, as the installer reports it and the master records it on the job
 * (CONTRACT A4). One list for both ends; a refusal leaves the disk untouched.
 */
export const PHASE1_REPORT_REASONS = [
  'suit_signature_invalid',
  'suit_unknown_key',
  'suit_digest_mismatch',
  'suit_size_mismatch',
  'suit_rollback',
  'suit_vendor_mismatch',
  'suit_class_mismatch',
  'disk_too_small',
  'write_failed',
  'verify_failed',
  'download_failed',
] as const;
export type Phase1ReportReason = (typeof PHASE1_REPORT_REASONS)[number];
