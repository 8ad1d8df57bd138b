/**
 * The metal's credential in the state directory. Each generation (key + certificate) lives in its
 * own directory `identity/<generation>/` and `identity/current` is a symlink to the one in use,
 * switched by rename — so a re-enrollment interrupted at any point leaves the old pair or the new
 * one in force, never a key with another key's certificate.
 *
 *   identity/current -> g-<time>-<random>/
 *   identity/g-…/key.pem   (0600, PKCS#8 P-256)
 *   identity/g-…/cert.pem  (the metal certificate, then any chain the master sent)
 */
import { randomBytes, X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ClientError } from '../errors.ts';
import { syncDir, writeFileDurably } from '../state/files.ts';

export interface MetalIdentity {
  dir: string;
  keyPem: string;
  certPem: string;
  key: KeyObject;
  cert: X509Certificate;
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

export const identityDir = (stateDir: string) => join(stateDir, 'identity');
const CURRENT = 'current';

/** A fresh directory for a new generation (not yet in force). */
export function newGeneration(stateDir: string, now = new Date()): string {
  const root = identityDir(stateDir);
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const dir = join(root, `g-${now.getTime()}-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir, { mode: 0o700 });
  syncDir(root);
  return dir;
}

export function writeKey(genDir: string, keyPem: string): void {
  writeFileDurably(join(genDir, 'key.pem'), keyPem, 0o600);
}

export function writeCertificate(genDir: string, certPem: string): void {
  writeFileDurably(join(genDir, 'cert.pem'), certPem, 0o644);
}

/** Puts a generation in force: symlink beside, then rename over `current` (atomic). */
export function activate(stateDir: string, genDir: string): void {
  const root = identityDir(stateDir);
  const tmp = join(root, `.current.${process.pid}.tmp`);
  rmSync(tmp, { force: true });
  symlinkSync(genDir.slice(root.length + 1), tmp);
  renameSync(tmp, join(root, CURRENT));
  syncDir(root);
}

function parse(dir: string): MetalIdentity {
  const keyPem = readFileSync(join(dir, 'key.pem'), 'utf8');
  const certPem = readFileSync(join(dir, 'cert.pem'), 'utf8');
  const key = createPrivateKey(keyPem);
  const first = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(certPem);
  if (!first) throw new ClientError('not_enrolled', `${dir}/cert.pem holds no certificate`);
  const cert = new X509Certificate(first[0]);
  if (!cert.checkPrivateKey(key)) throw new ClientError('not_enrolled', `${dir}: the certificate is not for the key`);
  return { dir, keyPem, certPem, key, cert, serial: cert.serialNumber.toLowerCase(), notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo) };
}

/** The credential in force, or undefined before the first enrollment. */
export function loadIdentity(stateDir: string): MetalIdentity | undefined {
  const root = identityDir(stateDir);
  let target: string;
  try {
    target = readlinkSync(join(root, CURRENT));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return parse(join(root, target));
}

/**
 * Called at every start. A generation holding a key and a certificate for it that is newer than the
 * one in force is an enrollment that finished at the master but died before `activate` (the master
 * has already revoked the older certificate on re-enrollment): it is put in force. Every other
 * generation not in force (a key whose request never came back) is removed.
 */
export function recoverIdentity(stateDir: string): { activated: string | undefined; removed: number } {
  const root = identityDir(stateDir);
  if (!existsSync(root)) return { activated: undefined, removed: 0 };
  let current: MetalIdentity | undefined;
  try {
    current = loadIdentity(stateDir);
  } catch {
    current = undefined;
  }
  const inForce = current ? current.dir.slice(root.length + 1) : undefined;
  let best: MetalIdentity | undefined;
  for (const e of readdirSync(root)) {
    if (e === CURRENT || e === inForce || e.startsWith('.')) continue;
    try {
      const g = parse(join(root, e));
      if ((!current || g.notBefore >= current.notBefore) && (!best || g.notBefore > best.notBefore)) best = g;
    } catch {
      // incomplete generation: removed below
    }
  }
  if (best) activate(stateDir, best.dir);
  const keep = new Set([best?.dir.slice(root.length + 1), inForce && !best ? inForce : undefined].filter(Boolean));
  let removed = 0;
  for (const e of readdirSync(root)) {
    if (e === CURRENT || keep.has(e)) continue;
    rmSync(join(root, e), { recursive: true, force: true });
    removed++;
  }
  if (removed) syncDir(root);
  return { activated: best?.dir, removed };
}
