/**
 * The files the installer (or an image builder) writes for TIPS-C (contract B):
 * /etc/tips-client/config.json and the one-use /etc/tips-client/enrollment.json.
 */
import { readFileSync } from 'node:fs';
import { ClientError } from '../errors.ts';

export const DEFAULT_CONFIG = '/etc/tips-client/config.json';
export const DEFAULT_STATE_DIR = '/var/lib/tips-client';

export interface ClientConfig {
  masterUrl: string;
  estUrl: string;
  caFile: string;
  /** The metal's TIPS ID (what the certificate names). */
  tipsId: string;
  metalId: string;
  enrollmentFile: string;
  stateDir: string;
  /** Hex UUIDs (16 bytes) or null: the SUIT vendor/class identifiers this metal accepts. */
  vendorId: string | null;
  classId: string | null;
  /** S10: more update servers (master replicas, gateway caches), tried in order before masterUrl. */
  servers: string[];
  /** T16: files and directories TIPS manages, watched for changes made outside TIPS. */
  managedPaths: string[];
}

export interface EnrollmentSecretFile {
  secretId: string;
  secret: string;
}

const TIPS_ID_RE = /^mtl_[0-9a-hjkmnp-tv-z]{26}$/;
const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

function bad(field: string, what: string): never {
  throw new ClientError('config_invalid', `config ${field}: ${what}`);
}

function httpsUrl(v: unknown, field: string): string {
  if (typeof v !== 'string') return bad(field, 'expected an https:// URL');
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return bad(field, `expected an https:// URL, came "${v.slice(0, 100)}"`);
  }
  if (u.protocol !== 'https:') bad(field, `expected an https:// URL, came ${u.protocol}`);
  return v.replace(/\/+$/, '');
}

function path(v: unknown, field: string, fallback?: string): string {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'string' || !v.startsWith('/')) return bad(field, 'expected an absolute path');
  return v;
}

function uuidOrNull(v: unknown, field: string): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string' || !UUID_RE.test(v)) return bad(field, 'expected a UUID or null');
  return v.toLowerCase();
}

function list(v: unknown, field: string, item: (v: unknown, field: string) => string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > 32) return bad(field, 'expected an array of at most 32 entries');
  return v.map((x, i) => item(x, `${field}[${i}]`));
}

/** Parses and validates config.json; every field is checked and named when wrong. */
export function parseConfig(raw: unknown): ClientConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('', 'expected a JSON object');
  const o = raw as Record<string, unknown>;
  const tipsId = typeof o.tipsId === 'string' ? o.tipsId : typeof o.metalId === 'string' ? o.metalId : undefined;
  if (!tipsId || !TIPS_ID_RE.test(tipsId)) bad('tipsId', 'expected a TIPS ID (mtl_ and 26 characters)');
  const metalId = o.metalId === undefined ? tipsId : o.metalId;
  if (typeof metalId !== 'string' || !TIPS_ID_RE.test(metalId)) bad('metalId', 'expected a metal ID (mtl_ and 26 characters)');
  return {
    masterUrl: httpsUrl(o.masterUrl, 'masterUrl'),
    estUrl: httpsUrl(o.estUrl, 'estUrl'),
    caFile: path(o.caFile, 'caFile'),
    tipsId,
    metalId,
    enrollmentFile: path(o.enrollmentFile, 'enrollmentFile', '/etc/tips-client/enrollment.json'),
    stateDir: path(o.stateDir, 'stateDir', DEFAULT_STATE_DIR),
    vendorId: uuidOrNull(o.vendorId, 'vendorId'),
    classId: uuidOrNull(o.classId, 'classId'),
    servers: list(o.servers, 'servers', httpsUrl),
    managedPaths: list(o.managedPaths, 'managedPaths', (v, f) => path(v, f)),
  };
}

export function loadConfig(file: string): ClientConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ClientError('config_missing', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ClientError('config_invalid', `${file} is not JSON`);
  }
  return parseConfig(raw);
}

/** The enrollment secret, or undefined when the file is gone (spent). Never logged. */
export function loadEnrollmentSecret(file: string): EnrollmentSecretFile | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ClientError('enrollment_invalid', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new ClientError('enrollment_invalid', `${file} is not JSON`);
  }
  if (typeof o?.secretId !== 'string' || o.secretId.length === 0 || o.secretId.includes(':')) throw new ClientError('enrollment_invalid', `${file}: secretId is missing or has a colon`);
  if (typeof o.secret !== 'string' || o.secret.length === 0) throw new ClientError('enrollment_invalid', `${file}: secret is missing`);
  return { secretId: o.secretId, secret: o.secret };
}
