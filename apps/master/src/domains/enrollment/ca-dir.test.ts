import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer } from 'node:tls';
import { createIntermediateCa, createRootCa, exportCa, generateKeyPair, issueCertificate, privateKeyToPem, serialFrom } from '@tips/trust';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock, systemRandom } from '../../ports.ts';
import { ensureServerCertificate, openCaDir, openTokenKey } from './ca-dir.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tips-ca-dir-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));
const ports = { clock: systemClock, random: systemRandom };

describe('S6 the master CA directory', () => {
  it('replicas starting together on one directory make one CA, one server certificate and one token key', async () => {
    const cas = await Promise.all([openCaDir(dir, ports), openCaDir(dir, ports), openCaDir(dir, ports)]);
    expect(cas.filter((c) => c.created)).toHaveLength(1);
    const serials = new Set(cas.map((c) => c.ca.intermediate.cert.serialNumber));
    expect(serials.size).toBe(1);
    expect(statSync(join(dir, 'intermediate-key.pem')).mode & 0o777).toBe(0o600);
    const ca = cas[0]!.ca;
    const servers = await Promise.all([1, 2].map(() => ensureServerCertificate(dir, ca, { hostnames: ['localhost', '127.0.0.1'], ...ports })));
    expect(servers[0]!.chainPem).toBe(servers[1]!.chainPem);
    // A new name forces a new certificate.
    const renamed = await ensureServerCertificate(dir, ca, { hostnames: ['tips.example'], ...ports });
    expect(renamed.chainPem).not.toBe(servers[0]!.chainPem);
    const keys = await Promise.all([openTokenKey(dir), openTokenKey(dir)]);
    expect(keys[0]!.export({ format: 'jwk' })).toEqual(keys[1]!.export({ format: 'jwk' }));
  });

  it('refuses an incomplete CA directory instead of silently making a new CA', async () => {
    writeFileSync(join(dir, 'root.pem'), 'x');
    await expect(openCaDir(dir, ports)).rejects.toThrow(/incomplete/);
  });
});

describe('B4 S6 intermediate rotation from the offline root', () => {
  it('keeps metals certified by the previous intermediate working over TLS until they renew', async () => {
    const now = new Date();
    const years = (n: number) => new Date(now.getTime() + n * 365 * 86_400_000);
    const root = await createRootCa({ commonName: 'r', notBefore: now, notAfter: years(10), serial: serialFrom(systemRandom.bytes(16)) });
    const oldInt = await createIntermediateCa(root, { commonName: 'old', notBefore: now, notAfter: years(2), serial: serialFrom(systemRandom.bytes(16)) });
    const newInt = await createIntermediateCa(root, { commonName: 'new', notBefore: now, notAfter: years(2), serial: serialFrom(systemRandom.bytes(16)) });
    const write = (name: string, text: string) => writeFileSync(join(dir, name), text);
    const r = await exportCa(root);
    const n = await exportCa(newInt);
    write('root.pem', r.certPem);
    write('intermediate.pem', n.certPem);
    write('intermediate-key.pem', n.keyPem);
    write('previous-intermediate-2026.pem', (await exportCa(oldInt)).certPem);
    const { ca } = await openCaDir(dir, ports);
    const server = await ensureServerCertificate(dir, ca, { hostnames: ['localhost'], ...ports });
    expect(server.clientCaPem).toContain((await exportCa(oldInt)).certPem.trim());
    // A metal certified by the old intermediate completes mutual TLS against the rotated master.
    const keys = await generateKeyPair();
    const leaf = await issueCertificate(oldInt, { identity: { kind: 'metal', id: 'mtl_0123456789abcdefghjkmnpqrs' }, publicKey: keys.publicKey, serial: serialFrom(systemRandom.bytes(16)), notBefore: now, notAfter: years(1), usage: 'client' });
    const authorized = await new Promise<boolean>((resolve, reject) => {
      const srv = createServer({ cert: server.chainPem, key: server.keyPem, ca: server.clientCaPem, requestCert: true, rejectUnauthorized: false }, (s) => {
        resolve(s.authorized);
        s.end();
        srv.close();
      });
      srv.listen(0, '127.0.0.1', async () => {
        const port = (srv.address() as { port: number }).port;
        const c = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: r.certPem, cert: leaf.toString('pem'), key: await privateKeyToPem(keys.privateKey) });
        c.on('error', reject);
        c.on('data', () => {});
      });
    });
    expect(authorized).toBe(true);
  });
});
