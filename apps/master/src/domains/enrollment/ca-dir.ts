import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { parseCertificates, x509 } from '@tips/trust';
import type { Clock, Random } from '../../ports.ts';
import { CA_FILES, caPem, createEphemeralCa, exportMasterCa, issueServerCertificate, loadMasterCa, type MasterCa } from './ca.ts';

/** Durable write: temp file, fsync, rename; keys get mode 0600. */
export function writeFileAtomic(path: string, data: string, mode = 0o644): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * Runs `fn` holding `<dir>/.lock` (O_EXCL), so master replicas starting together on one CA
 * directory make one CA, one server certificate and one token key, never several.
 */
export async function withCaDirLock<T>(dir: string, fn: () => Promise<T> | T, timeoutMs = 30_000): Promise<T> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const lock = join(dir, '.lock');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx', 0o600));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (Date.now() > deadline) throw new Error(`CA directory ${dir} stays locked by ${lock}; remove that file if no master is starting`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

/**
 * Opens the master's CA directory: root.pem, intermediate.pem and intermediate-key.pem as
 * `tips ca init` wrote them (root-key.pem, if present, is never read). An empty directory gets a
 * fresh root and intermediate, the root key discarded at once (a master that mints its own CA
 * can never be made to sign another intermediate).
 */
export function openCaDir(dir: string, ports: { clock: Clock; random: Random }): Promise<{ ca: MasterCa; created: boolean }> {
  return withCaDirLock(dir, () => openCaDirLocked(dir, ports));
}

async function openCaDirLocked(dir: string, ports: { clock: Clock; random: Random }): Promise<{ ca: MasterCa; created: boolean }> {
  const files = [CA_FILES.root, CA_FILES.intermediate, CA_FILES.intermediateKey].map((f) => join(dir, f));
  const present = files.filter((f) => existsSync(f));
  if (present.length === files.length) {
    const [rootPem, intermediatePem, intermediateKeyPem] = files.map((f) => readFileSync(f, 'utf8')) as [string, string, string];
    return { ca: await loadMasterCa({ rootPem, intermediatePem, intermediateKeyPem }), created: false };
  }
  if (present.length > 0) throw new Error(`CA directory ${dir} is incomplete: it needs ${CA_FILES.root}, ${CA_FILES.intermediate} and ${CA_FILES.intermediateKey}`);
  const ca = await createEphemeralCa(ports.clock.now(), ports.random);
  const pems = await exportMasterCa(ca);
  writeFileAtomic(join(dir, CA_FILES.root), pems.rootPem);
  writeFileAtomic(join(dir, CA_FILES.intermediate), pems.intermediatePem);
  writeFileAtomic(join(dir, CA_FILES.intermediateKey), pems.intermediateKeyPem, 0o600);
  return { ca, created: true };
}

/**
 * The master's TLS server certificate, issued by its own intermediate: reused while it is issued
 * by the current intermediate, names `hostnames` and has more than a day left; reissued otherwise.
 */
export function ensureServerCertificate(
  dir: string,
  ca: MasterCa,
  opts: { hostnames: string[]; clock: Clock; random: Random },
): Promise<{ chainPem: string; keyPem: string; clientCaPem: string }> {
  return withCaDirLock(dir, () => ensureServerCertificateLocked(dir, ca, opts));
}

async function ensureServerCertificateLocked(
  dir: string,
  ca: MasterCa,
  opts: { hostnames: string[]; clock: Clock; random: Random },
): Promise<{ chainPem: string; keyPem: string; clientCaPem: string }> {
  const certFile = join(dir, CA_FILES.server);
  const keyFile = join(dir, CA_FILES.serverKey);
  const dnsNames = [...new Set(opts.hostnames.filter((h) => isIP(h) === 0))];
  const ipAddresses = [...new Set(opts.hostnames.filter((h) => isIP(h) !== 0))];
  const pems = caPem(ca);
  const clientCaPem = pems.rootPem + pems.intermediatePem + (await previousIntermediatesPem(dir, ca, opts.clock.now()));
  if (existsSync(certFile) && existsSync(keyFile)) {
    const chainPem = readFileSync(certFile, 'utf8');
    const [leaf] = parseCertificates(chainPem);
    const now = opts.clock.now().getTime();
    if (leaf && leaf.notAfter.getTime() - now > 86_400_000 && (await leaf.verify({ publicKey: ca.intermediate.cert.publicKey, signatureOnly: true }))) {
      const san = new Set((leaf.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON() ?? []).map((n) => n.value));
      if ([...dnsNames, ...ipAddresses].every((n) => san.has(n))) return { chainPem, keyPem: readFileSync(keyFile, 'utf8'), clientCaPem };
    }
  }
  const issued = await issueServerCertificate(ca, { now: opts.clock.now(), random: opts.random, dnsNames, ipAddresses });
  writeFileAtomic(keyFile, issued.keyPem, 0o600);
  writeFileAtomic(certFile, issued.chainPem);
  return { chainPem: issued.chainPem, keyPem: issued.keyPem, clientCaPem };
}

/**
 * Intermediates retired by a rotation (`previous-intermediate*.pem`), still valid and signed by the
 * root: kept in the client CA list so metals they certified keep working until they re-enroll.
 */
export async function previousIntermediatesPem(dir: string, ca: MasterCa, now: Date): Promise<string> {
  let out = '';
  for (const f of readdirSync(dir).filter((n) => /^previous-intermediate.*\.pem$/.test(n)).sort()) {
    for (const c of parseCertificates(readFileSync(join(dir, f), 'utf8'))) {
      if (now > c.notAfter || !(await c.verify({ publicKey: ca.root.publicKey, signatureOnly: true }))) continue;
      out += `${c.toString('pem')}\n`;
    }
  }
  return out;
}

/** The Ed25519 key authorization tokens are signed with: token-key.pem in the CA directory, made on first start. */
export function openTokenKey(dir: string): Promise<ReturnType<typeof createPrivateKey>> {
  return withCaDirLock(dir, () => openTokenKeyLocked(dir));
}

function openTokenKeyLocked(dir: string): ReturnType<typeof createPrivateKey> {
  const file = join(dir, 'token-key.pem');
  if (existsSync(file)) {
    const key = createPrivateKey(readFileSync(file, 'utf8'));
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${file} must hold an Ed25519 private key`);
    return key;
  }
  const { privateKey } = generateKeyPairSync('ed25519');
  writeFileAtomic(file, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600);
  return privateKey;
}

/**
 * A 32-byte secret kept in the CA directory as 64 hex digits (mode 0600): read when it exists, made
 * (random, written atomically) on first start otherwise, under the CA directory's lock so two
 * replicas starting together agree on one. psk-wrap.key and tpm2-activation.key are such files.
 */
export function openSecretKeyFile(dir: string, name: string): Promise<Uint8Array> {
  return withCaDirLock(dir, () => {
    const file = join(dir, name);
    if (existsSync(file)) {
      const hex = readFileSync(file, 'utf8').trim();
      if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${file} must hold 32 bytes as 64 hex digits`);
      return new Uint8Array(Buffer.from(hex, 'hex'));
    }
    const fresh = new Uint8Array(randomBytes(32));
    writeFileAtomic(file, `${Buffer.from(fresh).toString('hex')}\n`, 0o600);
    return fresh;
  });
}
