import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
