/**
 * The signed-off baseline (`<stateDir>/tamper/baseline.json`): the snapshot of what TIPS installed,
 * recorded at first start and after every TIPS install. It carries the SHA-256 of its canonical
 * body and, when the agent gives its key, a signature by the metal's key — a baseline edited to hide
 * a change then no longer verifies, and that is itself reported.
 */
import { createHash, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Snapshot } from './snapshot.ts';

export const baselinePath = (stateDir: string) => join(stateDir, 'tamper', 'baseline.json');

export interface Baseline {
  version: 1;
  at: string;
  snapshot: Snapshot;
}

interface BaselineFile {
  body: Baseline;
  sha256: string;
  /** base64 signature of the canonical body by the metal's key (SHA-256), when a key was given. */
  signature?: string;
}

/** JSON with object keys sorted, so the bytes signed do not depend on insertion order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    return `{${Object.keys(obj)
      .sort()
      .filter((k) => obj[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

function writeDurably(path: string, text: string): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

/** Ed25519/Ed448 sign the message itself; RSA and ECDSA keys sign its SHA-256. */
const digestFor = (key: KeyObject) => (key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448' ? null : 'sha256');

export function writeBaseline(stateDir: string, snapshot: Snapshot, key?: KeyObject, at = new Date()): Baseline {
  const body: Baseline = { version: 1, at: at.toISOString(), snapshot };
  const bytes = Buffer.from(canonicalJson(body), 'utf8');
  const file: BaselineFile = { body, sha256: createHash('sha256').update(bytes).digest('hex') };
  if (key) file.signature = sign(digestFor(key), bytes, key).toString('base64');
  writeDurably(baselinePath(stateDir), `${JSON.stringify(file)}\n`);
  return body;
}

export type LoadedBaseline = { state: 'missing' } | { state: 'invalid'; reason: string } | { state: 'ok'; baseline: Baseline };

export function readBaseline(stateDir: string, key?: KeyObject): LoadedBaseline {
  let text: string;
  try {
    text = readFileSync(baselinePath(stateDir), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' };
    throw e;
  }
  let file: BaselineFile;
  try {
    file = JSON.parse(text) as BaselineFile;
  } catch {
    return { state: 'invalid', reason: 'the tamper baseline is not JSON' };
  }
  if (!file || typeof file !== 'object' || !file.body || file.body.version !== 1 || !file.body.snapshot) {
    return { state: 'invalid', reason: 'the tamper baseline has no version 1 body' };
  }
  const bytes = Buffer.from(canonicalJson(file.body), 'utf8');
  if (createHash('sha256').update(bytes).digest('hex') !== file.sha256) return { state: 'invalid', reason: 'the tamper baseline does not match its SHA-256' };
  if (key) {
    if (typeof file.signature !== 'string') return { state: 'invalid', reason: 'the tamper baseline is not signed' };
    const pub = key.type === 'private' ? createPublicKey(key) : key;
    if (!verify(digestFor(pub), bytes, pub, Buffer.from(file.signature, 'base64'))) return { state: 'invalid', reason: "the tamper baseline's signature does not verify" };
  }
  return { state: 'ok', baseline: file.body };
}
