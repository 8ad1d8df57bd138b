// tips-client enroll (contract B) against a real tips-master: the bundle apps/client/dist/tips-client.cjs
// runs under Debian 12's Node 18 (the metal's `nodejs` package), EST simpleenroll over HTTPS with the
// CA file of config.json; openssl verifies what it kept and curl uses it for mTLS.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientTestMaster, startClientTestMaster, writeClientFiles } from './client-master.ts';
import { debianNode18 } from './client-node18.ts';
import { ROOT } from './helpers.ts';

const BUNDLE = join(ROOT, 'apps/client/dist/tips-client.cjs');
let work: string;
let m: ClientTestMaster;
let node: string[];
let nodeVersion: string;

function client(args: string[]) {
  const r = spawnSync(node[0]!, [...node.slice(1), BUNDLE, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
function sh(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { cwd: work, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
async function newMetal(name: string, mac: string) {
  const metal = await m.api<{ id: string }>('POST', '/api/v1/metals', { name, interfaces: [{ name: 'eth0', mac, type: 'ethernet', pxe: true }] });
  const secret = await m.api<{ id: string; secret: string }>('POST', '/api/v1/enrollment/secrets', { metal: metal.id });
  return { metal, secret };
}

describe('S6 S14 T14 tips-client enroll: EST from the Node 18 bundle against the real master', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'tips-client-enroll-e2e-'));
    const n18 = debianNode18();
    if (n18) {
      node = n18.argv;
      nodeVersion = n18.version;
    } else {
      // Only when Debian's nodejs package cannot be fetched (no apt archive): said loudly, not hidden.
      console.warn('tips-client e2e: Debian Node 18 unavailable (apt-get download failed); running the bundle with this machine\'s node');
      node = [process.execPath];
      nodeVersion = process.version;
    }
    m = await startClientTestMaster(work);
  });
  afterAll(async () => {
    await m?.master.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('the bundle is one file that runs on Node 18 with no native addon', () => {
    expect(nodeVersion).toMatch(/^v18\./);
    const text = readFileSync(BUNDLE, 'utf8');
    const required = [...text.matchAll(/require\("([^"]+)"\)/g)].map((x) => x[1]!);
    expect(required.filter((r) => !builtinModules.includes(r.replace(/^node:/, '')))).toEqual([]);
    expect(text).not.toMatch(/\.node"\)/);
    const help = client(['--help']);
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: tips-client/);
    for (const cmd of ['enroll']) {
      const h = client([cmd, '--help']);
      expect(h.status, h.stderr).toBe(0);
      expect(h.stdout).toContain(`Usage: tips-client ${cmd}`);
    }
  });

  it('enrolls: key 0600 and certificate in the state dir, openssl verifies it, enrollment.json removed, mTLS works', async () => {
    const { metal, secret } = await newMetal('pi-enroll', '02:c1:00:00:00:01');
    const state = join(work, 'state-1');
    const config = writeClientFiles(join(work, 'etc-1'), m, metal, secret, state);
    const r = client(['enroll', '--config', config, '--state-dir', state, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ status: 'enrolled', tipsId: metal.id });
    const gen = join(state, 'identity', readlinkSync(join(state, 'identity', 'current')));
    expect(statSync(join(gen, 'key.pem')).mode & 0o777).toBe(0o600);
    const verify = sh('openssl', ['verify', '-CAfile', 'offline/root.pem', '-untrusted', 'offline/intermediate.pem', join(gen, 'cert.pem')]);
    expect(verify.stdout, verify.stderr).toContain(': OK');
    expect(sh('openssl', ['x509', '-in', join(gen, 'cert.pem'), '-noout', '-ext', 'subjectAltName']).stdout).toContain(`URI:urn:tips:metal:${metal.id}`);
    // The certificate certifies the key the client made and kept.
    expect(sh('openssl', ['x509', '-in', join(gen, 'cert.pem'), '-noout', '-pubkey']).stdout).toBe(sh('openssl', ['pkey', '-in', join(gen, 'key.pem'), '-pubout']).stdout);
    expect(existsSync(join(work, 'etc-1', 'enrollment.json'))).toBe(false);
    // The secret never reached a log line.
    expect(r.stderr).not.toContain(secret.secret);
    expect(m.master.output()).not.toContain(secret.secret);
    const who = sh('curl', ['-sS', '--cacert', 'offline/root.pem', '--cert', join(gen, 'cert.pem'), '--key', join(gen, 'key.pem'), `${m.httpsUrl}/api/metal/v1/whoami`]);
    expect(JSON.parse(who.stdout).metal, who.stderr).toBe(metal.id);

    // Idempotent: a second run changes nothing and exits 0.
    const before = readdirSync(join(state, 'identity')).sort();
    const again = client(['enroll', '--config', config, '--state-dir', state, '--json']);
    expect(again.status, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ status: 'already_enrolled', serial: out.serial });
    expect(readdirSync(join(state, 'identity')).sort()).toEqual(before);
  });

  it('a wrong secret is refused (exit 3): nothing in force, enrollment.json kept for the next try', async () => {
    const { metal, secret } = await newMetal('pi-wrong', '02:c1:00:00:00:02');
    const state = join(work, 'state-2');
    const etc = join(work, 'etc-2');
    const config = writeClientFiles(etc, m, metal, { id: secret.id, secret: `est_${'x'.repeat(43)}` }, state);
    const r = client(['enroll', '--config', config, '--state-dir', state]);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('enrollment_secret_invalid');
    expect(existsSync(join(state, 'identity', 'current'))).toBe(false);
    expect(existsSync(join(etc, 'enrollment.json'))).toBe(true);
    // The right secret afterwards enrolls, and the half-made key of the refused try is gone.
    writeFileSync(join(etc, 'enrollment.json'), JSON.stringify({ secretId: secret.id, secret: secret.secret }), { mode: 0o600 });
    const ok = client(['enroll', '--config', config, '--state-dir', state]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(readdirSync(join(state, 'identity')).length).toBe(2); // current + its generation
  });

  it('a CA file that does not certify the master refuses the connection (exit 7), the secret unspent', async () => {
    const { metal, secret } = await newMetal('pi-mitm', '02:c1:00:00:00:03');
    const state = join(work, 'state-3');
    const etc = join(work, 'etc-3');
    const config = writeClientFiles(etc, m, metal, secret, state);
    sh('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'other.key', '-subj', '/CN=other', '-days', '1', '-out', join(etc, 'ca.pem')]);
    const r = client(['enroll', '--config', config, '--state-dir', state]);
    expect(r.status).toBe(7);
    expect(existsSync(join(etc, 'enrollment.json'))).toBe(true);
    const secrets = await m.api<{ items: { id: string; uses: number }[] }>('GET', '/api/v1/enrollment/secrets');
    expect(secrets.items.find((s) => s.id === secret.id)?.uses).toBe(0);
  });

  it('bad config is named by field (exit 1), nothing written', () => {
    const etc = join(work, 'etc-bad');
    const state = join(work, 'state-bad');
    writeClientFiles(etc, m, { id: 'mtl_00000000000000000000000000' }, undefined, state);
    const cfg = JSON.parse(readFileSync(join(etc, 'config.json'), 'utf8'));
    writeFileSync(join(etc, 'config.json'), JSON.stringify({ ...cfg, masterUrl: 'http://plain:80' }));
    const r = client(['enroll', '--config', join(etc, 'config.json'), '--state-dir', state]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('config masterUrl: expected an https:// URL');
    expect(existsSync(state)).toBe(false);
  });
});
