import {
  type CaKeyPair,
  createIntermediateCa,
  createRootCa,
  exportCa,
  generateKeyPair,
  issueCertificate,
  loadCa,
  parseCertificate,
  privateKeyToPem,
  serialFrom,
  type x509,
} from '@tips/trust';
import type { Random } from '../../ports.ts';

/**
 * The master's CA: the intermediate it issues with (key held here) and the root it chains to
 * (certificate only — the root key stays wherever `tips ca init` wrote it, ideally offline).
 */
export interface MasterCa {
  root: x509.X509Certificate;
  intermediate: CaKeyPair;
}

const DAY = 86_400_000;

export function caPem(ca: MasterCa): { rootPem: string; intermediatePem: string } {
  return { rootPem: `${ca.root.toString('pem')}\n`, intermediatePem: `${ca.intermediate.cert.toString('pem')}\n` };
}

/**
 * A root and an intermediate made in memory, the root key thrown away at once: for tests and
 * for a master started without a CA directory (it then cannot mint another intermediate).
 */
export async function createEphemeralCa(now: Date, random: Random, name = 'TIPS'): Promise<MasterCa> {
  const notBefore = new Date(now.getTime() - 60_000);
  const root = await createRootCa({ commonName: `${name} root CA`, notBefore, notAfter: new Date(now.getTime() + 20 * 365 * DAY), serial: serialFrom(random.bytes(16)) });
  const intermediate = await createIntermediateCa(root, {
    commonName: `${name} intermediate CA`,
    notBefore,
    notAfter: new Date(now.getTime() + 5 * 365 * DAY),
    serial: serialFrom(random.bytes(16)),
  });
  return { root: root.cert, intermediate };
}

/** The files a CA directory holds (`tips ca init` writes them; the master reads all but root-key.pem). */
export const CA_FILES = {
  root: 'root.pem',
  rootKey: 'root-key.pem',
  intermediate: 'intermediate.pem',
  intermediateKey: 'intermediate-key.pem',
  server: 'server.pem',
  serverKey: 'server-key.pem',
} as const;

export async function loadMasterCa(files: { rootPem: string; intermediatePem: string; intermediateKeyPem: string }): Promise<MasterCa> {
  const intermediate = await loadCa({ certPem: files.intermediatePem, keyPem: files.intermediateKeyPem });
  const root = parseCertificate(files.rootPem);
  if (!(await intermediate.cert.verify({ publicKey: root.publicKey, signatureOnly: true }))) {
    throw new Error('the intermediate certificate is not signed by the root certificate');
  }
  return { root, intermediate };
}

export async function exportMasterCa(ca: MasterCa): Promise<{ rootPem: string; intermediatePem: string; intermediateKeyPem: string }> {
  const i = await exportCa(ca.intermediate);
  return { rootPem: `${ca.root.toString('pem')}\n`, intermediatePem: i.certPem, intermediateKeyPem: i.keyPem };
}

/** Issues the master's own TLS server certificate (a fresh key) for the names it listens under. */
export async function issueServerCertificate(
  ca: MasterCa,
  opts: { now: Date; random: Random; dnsNames: string[]; ipAddresses: string[]; lifetimeDays?: number },
): Promise<{ certPem: string; keyPem: string; chainPem: string; notAfter: Date }> {
  const keys = await generateKeyPair();
  const cert = await issueCertificate(ca.intermediate, {
    identity: { kind: 'master', id: '' },
    publicKey: keys.publicKey,
    serial: serialFrom(opts.random.bytes(16)),
    notBefore: new Date(opts.now.getTime() - 60_000),
    notAfter: new Date(opts.now.getTime() + (opts.lifetimeDays ?? 90) * DAY),
    usage: 'server',
    dnsNames: opts.dnsNames,
    ipAddresses: opts.ipAddresses,
  });
  const certPem = `${cert.toString('pem')}\n`;
  return { certPem, keyPem: await privateKeyToPem(keys.privateKey), chainPem: certPem + caPem(ca).intermediatePem, notAfter: cert.notAfter };
}
