/** Test PKI for the DTLS tests: a TIPS-shaped root → intermediate → P-256 leaves, and a stranger CA. */
import { createPrivateKey, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIntermediateCa, createRootCa, generateKeyPair, issueCertificate, privateKeyToPem, serialFrom } from '@tips/trust';

const DAY = 86_400_000;

export interface Leaf {
  der: Uint8Array;
  pem: string;
  keyPem: string;
  key: ReturnType<typeof createPrivateKey>;
  chain: Uint8Array[]; // leaf, intermediate
  chainPem: string;
}

export interface TestPki {
  dir: string;
  rootDer: Uint8Array;
  rootPem: string;
  server: Leaf;
  client: Leaf;
  /** A client certificate from a CA that is not a trust anchor. */
  stranger: Leaf;
  files: Record<'root' | 'intermediate' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey' | 'clientChain' | 'strangerCert' | 'strangerKey', string>;
}

async function makeCa(name: string) {
  const now = Date.now();
  const root = await createRootCa({ commonName: `${name} root`, notBefore: new Date(now - 60_000), notAfter: new Date(now + 30 * DAY), serial: serialFrom(randomBytes(16)) });
  const inter = await createIntermediateCa(root, { commonName: `${name} intermediate`, notBefore: new Date(now - 60_000), notAfter: new Date(now + 20 * DAY), serial: serialFrom(randomBytes(16)) });
  return { root, inter };
}

async function leaf(ca: Awaited<ReturnType<typeof makeCa>>, kind: 'metal' | 'master', id: string): Promise<Leaf> {
  const keys = await generateKeyPair();
  const cert = await issueCertificate(ca.inter, {
    identity: { kind, id },
    publicKey: keys.publicKey,
    serial: serialFrom(randomBytes(16)),
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 10 * DAY),
    usage: kind === 'master' ? 'server' : 'client',
    dnsNames: kind === 'master' ? ['localhost'] : undefined,
    ipAddresses: kind === 'master' ? ['127.0.0.1'] : undefined,
  });
  const keyPem = await privateKeyToPem(keys.privateKey);
  const der = new Uint8Array(cert.rawData);
  const interDer = new Uint8Array(ca.inter.cert.rawData);
  const pem = `${cert.toString('pem')}\n`;
  return { der, pem, keyPem, key: createPrivateKey(keyPem), chain: [der, interDer], chainPem: pem + `${ca.inter.cert.toString('pem')}\n` };
}

export async function makeTestPki(): Promise<TestPki> {
  const tips = await makeCa('TIPS');
  const other = await makeCa('Stranger');
  const server = await leaf(tips, 'master', '');
  const client = await leaf(tips, 'metal', 'metal-1');
  const stranger = await leaf(other, 'metal', 'metal-x');
  const dir = mkdtempSync(join(tmpdir(), 'tips-dtls-'));
  const rootPem = `${tips.root.cert.toString('pem')}\n`;
  const files = {
    root: join(dir, 'root.pem'),
    intermediate: join(dir, 'intermediate.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server-key.pem'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client-key.pem'),
    clientChain: join(dir, 'client-chain.pem'),
    strangerCert: join(dir, 'stranger.pem'),
    strangerKey: join(dir, 'stranger-key.pem'),
  };
  writeFileSync(files.root, rootPem);
  writeFileSync(files.intermediate, `${tips.inter.cert.toString('pem')}\n`);
  writeFileSync(files.serverCert, server.chainPem);
  writeFileSync(files.serverKey, server.keyPem);
  writeFileSync(files.clientCert, client.pem);
  writeFileSync(files.clientChain, client.chainPem);
  writeFileSync(files.clientKey, client.keyPem);
  writeFileSync(files.strangerCert, stranger.chainPem);
  writeFileSync(files.strangerKey, stranger.keyPem);
  return { dir, rootDer: new Uint8Array(tips.root.cert.rawData), rootPem, server, client, stranger, files };
}
