import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const VECTORS = join(import.meta.dirname, 'vectors');

export function vector(...path: string[]): Uint8Array {
  return new Uint8Array(readFileSync(join(VECTORS, ...path)));
}

export function vectorText(...path: string[]): string {
  return readFileSync(join(VECTORS, ...path), 'utf8');
}

/** The hex blocks of a manifest-spec example, in file order (unsigned ..., signed last). */
export function specExampleHex(n: number): Uint8Array[] {
  const text = vectorText('suit-manifest-spec', `example${n}.txt`);
  const blocks = [...text.matchAll(/~~~\n([0-9a-f\n]+)~~~/g)].map((m) => new Uint8Array(Buffer.from(m[1]!.replace(/\n/g, ''), 'hex')));
  return blocks;
}

export const LIBCSUIT_FILES = readdirSync(join(VECTORS, 'libcsuit'))
  .filter((f) => f.endsWith('.suit'))
  .sort();

/** The public trust anchor of every SUIT example (vectors README). */
export const TRUST_ANCHOR_PEM = readFileSync(join(VECTORS, 'libcsuit', 'trust_anchor_secp256r1_pub.pem'), 'utf8');
export const SPEC_PRIVATE_PEM = readFileSync(join(VECTORS, 'suit-manifest-spec', 'private_key.pem'), 'utf8');
/** HMAC key of expAW/AF/AFS: 32 × 'a'. */
export const HMAC_KEY = new Uint8Array(Buffer.from('a'.repeat(32)));

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}
