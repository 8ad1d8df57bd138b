// The gateway's credential: an Ed25519 key pair it generated itself (the enrollment token is spent
// once and never stored) and the gatewayId the master gave it. Files are written temp + fsync + rename.
import { createPrivateKey, generateKeyPairSync, type KeyObject, X509Certificate } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export interface GatewayIdentity {
  gatewayId: string;
  master: string;
  name: string | null;
  enrolledAt: string;
  key: KeyObject;
  /** The TLS client certificate the master issued for `key` and the CA chain that verifies the master (absent before the mTLS upgrade). */
  tls?: { certPem: string; caPem: string };
}

export class IdentityError extends Error {
  constructor(
    readonly code: 'not_enrolled' | 'bad_identity' | 'bad_certificate',
    message: string,
  ) {
    super(message);
    this.name = 'IdentityError';
  }
}

export const KEY_FILE = 'gateway.key';
export const IDENTITY_FILE = 'gateway.json';
/** The gateway's TLS client certificate (PEM), for the key in KEY_FILE. Public: 0644. */
export const CERT_FILE = 'gateway.crt';
/** The intermediate and root CA certificates the master is verified against. Public: 0644. */
export const CA_FILE = 'ca.pem';

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
  if (id.tls) saveCertificate(dataDir, id.tls.certPem, id.tls.caPem, id.key);
}

/**
 * Stores the certificate and CA chain the master issued, each durably; refuses a certificate that
 * is not for the gateway's own key (nothing written then).
 */
export function saveCertificate(dataDir: string, certPem: string, caPem: string, key: KeyObject): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
    new X509Certificate(caPem);
  } catch {
    throw new IdentityError('bad_certificate', 'the master sent a certificate or CA chain that is not PEM X.509');
  }
  if (!cert.checkPrivateKey(key)) throw new IdentityError('bad_certificate', 'the certificate the master sent is not for this gateway key');
  writeFileDurably(dataDir, CA_FILE, caPem, 0o644);
  writeFileDurably(dataDir, CERT_FILE, certPem, 0o644);
}

/** How long the certificate has left and whether it is due for renewal (past half its lifetime). */
export function renewalDue(certPem: string, now: Date): { due: boolean; notAfter: Date } {
  const cert = new X509Certificate(certPem);
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  return { due: now.getTime() >= from + (to - from) / 2, notAfter: new Date(to) };
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
  const certFile = join(dataDir, CERT_FILE);
  const caFile = join(dataDir, CA_FILE);
  const tls = existsSync(certFile) && existsSync(caFile) ? { certPem: readFileSync(certFile, 'utf8'), caPem: readFileSync(caFile, 'utf8') } : undefined;
  return { gatewayId: m.gatewayId, master: m.master, name: m.name ?? null, enrolledAt: m.enrolledAt ?? '', key, ...(tls ? { tls } : {}) };
}
