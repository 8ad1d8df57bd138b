// The gateway's credential: an Ed25519 key pair it generated itself (the enrollment token is spent
// once and never stored) and the gatewayId the master gave it. Files are written temp + fsync + rename.
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export interface GatewayIdentity {
  gatewayId: string;
  master: string;
  name: string | null;
  enrolledAt: string;
  key: KeyObject;
}

export class IdentityError extends Error {
  constructor(
    readonly code: 'not_enrolled' | 'bad_identity',
    message: string,
  ) {
    super(message);
    this.name = 'IdentityError';
  }
}

export const KEY_FILE = 'gateway.key';
export const IDENTITY_FILE = 'gateway.json';

/** Writes a file durably with the given mode: temp file, fsync, rename, fsync of the directory. */
export function writeFileDurably(dir: string, name: string, data: string, mode: number): void {
  const tmp = join(dir, `.${name}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, name));
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

export function generateGatewayKey(): KeyObject {
  return generateKeyPairSync('ed25519').privateKey;
}

export function saveIdentity(dataDir: string, id: GatewayIdentity): void {
  writeFileDurably(dataDir, KEY_FILE, id.key.export({ format: 'pem', type: 'pkcs8' }).toString(), 0o600);
  const meta = { gatewayId: id.gatewayId, master: id.master, name: id.name, enrolledAt: id.enrolledAt };
  writeFileDurably(dataDir, IDENTITY_FILE, `${JSON.stringify(meta, null, 2)}\n`, 0o600);
}

export function loadIdentity(dataDir: string): GatewayIdentity {
  let meta: unknown;
  let pem: string;
  try {
    meta = JSON.parse(readFileSync(join(dataDir, IDENTITY_FILE), 'utf8'));
    pem = readFileSync(join(dataDir, KEY_FILE), 'utf8');
  } catch {
    throw new IdentityError('not_enrolled', `no gateway identity in ${dataDir}: run \`tips-gateway enroll\` first`);
  }
  const m = meta as Partial<GatewayIdentity>;
  if (typeof m.gatewayId !== 'string' || typeof m.master !== 'string') {
    throw new IdentityError('bad_identity', `${join(dataDir, IDENTITY_FILE)} lacks gatewayId/master`);
  }
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new IdentityError('bad_identity', 'the gateway key must be Ed25519');
  return { gatewayId: m.gatewayId, master: m.master, name: m.name ?? null, enrolledAt: m.enrolledAt ?? '', key };
}
