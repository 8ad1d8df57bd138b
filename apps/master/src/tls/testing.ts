import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { generateKeyPair, privateKeyToPem, x509 } from '@tips/trust';
import { buildApp } from '../app.ts';
import { FsBlobStore } from '../blob/fs-blob-store.ts';
import { openDatabase } from '../db/database.ts';
import { caPem, issueServerCertificate } from '../domains/enrollment/ca.ts';
import { systemRandom } from '../ports.ts';
import { listenTls } from './listener.ts';

/** A clock tests can move. */
export class TestClock {
  constructor(private t = Date.now()) {}
  now(): Date {
    return new Date(this.t);
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

export interface HttpsResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  // biome-ignore lint/suspicious/noExplicitAny: a test helper: parsed JSON of any shape
  json(): any;
}

/**
 * A master on throw-away SQLite with its HTTPS listener on a loopback port, a movable clock and
 * the log lines captured (to check security events and that no secret is ever logged).
 */
export async function tlsTestMaster() {
  const dir = mkdtempSync(join(tmpdir(), 'tips-tls-test-'));
  const db = await openDatabase({ kind: 'sqlite', file: join(dir, 'tips.db') });
  const blobs = await FsBlobStore.open(join(dir, 'glazes'));
  const clock = new TestClock();
  const logs: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const { app, services } = await buildApp({ db, blobs, clock, logger: { level: 'info', stream } });
  const admin = await services.owners.ensureAdmin();
  if (!admin) throw new Error('fresh database must create an admin');
  const alice = await services.owners.createOwnerAsAdmin(admin.owner, 'alice');
  const bob = await services.owners.createOwnerAsAdmin(admin.owner, 'bob');
  const ca = await services.enrollment.ca();
  const server = await issueServerCertificate(ca, { now: clock.now(), random: systemRandom, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const pems = caPem(ca);
  const tls = await listenTls(app, { host: '127.0.0.1', port: 0, certPem: server.chainPem, keyPem: server.keyPem, clientCaPem: pems.rootPem + pems.intermediatePem });

  /** One HTTPS request to the master's TLS listener, optionally with a client certificate. */
  function https(
    method: string,
    path: string,
    opts: { headers?: Record<string, string>; body?: string | Uint8Array; cert?: string; key?: string; agent?: import('node:https').Agent } = {},
  ): Promise<HttpsResult> {
    return new Promise((resolve, reject) => {
      const req = request(
        `${tls.url}${path}`,
        { method, headers: opts.headers ?? {}, ca: pems.rootPem, cert: opts.cert, key: opts.key, agent: opts.agent ?? false, servername: 'localhost' },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) });
          });
        },
      );
      req.on('error', reject);
      req.end(opts.body);
    });
  }

  return {
    app,
    services,
    db,
    dir,
    clock,
    logs,
    ca,
    rootPem: pems.rootPem,
    intermediatePem: pems.intermediatePem,
    url: tls.url,
    https,
    adminToken: admin.token,
    alice: { ...alice.owner, token: alice.token },
    bob: { ...bob.owner, token: bob.token },
    auth: (token: string) => ({ authorization: `Bearer ${token}` }),
    async close() {
      await tls.close();
      await app.close();
      await db.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
export type TlsTestMaster = Awaited<ReturnType<typeof tlsTestMaster>>;

/** A fresh P-256 key and a CSR naming `uris` (and CN), as a metal would make; DER and key PEM. */
export async function makeCsr(opts: { uris?: string[]; cn?: string } = {}): Promise<{ der: Uint8Array; keyPem: string; keys: CryptoKeyPair }> {
  const keys = await generateKeyPair();
  const extensions = opts.uris?.length ? [new x509.SubjectAlternativeNameExtension(opts.uris.map((value) => ({ type: 'url' as const, value })))] : [];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${opts.cn ?? 'metal'}`,
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions,
  });
  return { der: new Uint8Array(csr.rawData), keyPem: await privateKeyToPem(keys.privateKey), keys };
}

export const b64 = (der: Uint8Array): string => Buffer.from(der).toString('base64');
