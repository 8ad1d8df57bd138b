// Issue 9 tests 1 and 4 with the real parts: tips-master (the Update Manager's metal API), the `tips`
// CLI for the operator, and the tips-client bundle under Debian's Node 18 on the metal side; curl and
// openssl as the peers we did not write for the refusals.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classIdFrom, uuidToString, vendorIdFromDomain } from '@tips/suit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientTestMaster, runClient, startClientTestMaster, tipsOk, writeClientFiles } from './client-master.ts';
import { debianNode18 } from './client-node18.ts';

const VENDOR = uuidToString(vendorIdFromDomain('acme.example'));
const CLASS = uuidToString(classIdFrom(vendorIdFromDomain('acme.example'), 'pi4'));

let work: string;
let m: ClientTestMaster;
let node: string[];
let env: NodeJS.ProcessEnv;
const metals: Record<string, { id: string; config: string; state: string }> = {};

const client = (args: string[]) => runClient(node, args);
const cli = (args: string[]) => tipsOk(env, args);
function sh(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { cwd: work, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
/** A .tar.gz holding hello.txt = text. */
function tarball(name: string, text: string): string {
  const src = join(work, `src-${name}`);
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'hello.txt'), text);
  sh('tar', ['-czf', join(work, `${name}.tgz`), '-C', src, '.']);
  return join(work, `${name}.tgz`);
}
/** Pushes a signed archive Glaze allowed in `space` and makes it the Space's Glaze. */
function push(space: string, name: string, version: string, o: { seq: number; key?: string; vendor?: string; klass?: string; component?: string; glazeName?: string }) {
  const g = cli([
    'glaze', 'push', tarball(`${name}-${version}`, `${name} ${version}`), '--name', o.glazeName ?? name, '--version', version, '--handler', 'archive', '--space', space,
    '--sign-key', join(work, o.key ?? 'ops.pem'), '--vendor-domain', o.vendor ?? 'acme.example', '--class', o.klass ?? 'pi4', '--component', o.component ?? name, '--seq', String(o.seq),
    '--no-progress', '--json',
  ]);
  cli(['space', 'update', space, '--glaze', g.id, '--json']);
  return g as { id: string; sha256: string };
}
async function metal(name: string, mac: string) {
  const created = cli(['metal', 'create', '--name', name, '--iface', `eth0=${mac},ethernet,pxe`, '--json']);
  const secret = cli(['enrollment', 'secret', 'create', '--metal', name, '--json']);
  const state = join(work, `state-${name}`);
  const config = writeClientFiles(join(work, `etc-${name}`), m, { id: created.id, vendorId: VENDOR, classId: CLASS }, { id: secret.id, secret: secret.secret }, state);
  metals[name] = { id: created.id, config, state };
  const r = client(['enroll', '--config', config]);
  expect(r.status, r.stderr).toBe(0);
  return metals[name]!;
}
const run = (name: string, extra: string[] = []) => client(['run', '--once', '--config', metals[name]!.config, ...extra]);
const status = (name: string) => JSON.parse(client(['status', '--json', '--config', metals[name]!.config]).stdout);
const updates = async (name: string) => (await m.api<{ updates: { installed: { glazeId: string; spaceId: string }[]; history: { glazeId: string; result: string; reason: string | null }[]; profile: { glazes: { name: string; version: string }[] } | null } }>('GET', `/api/v1/metals/${metals[name]!.id}`)).updates;
const identityDir = (name: string) => join(metals[name]!.state, 'identity', readlinkSync(join(metals[name]!.state, 'identity', 'current')));
function curl(path: string, args: string[]) {
  const out = join(work, `c-${Math.random().toString(36).slice(2)}`);
  const r = sh('curl', ['-sS', '--cacert', m.caFile, '-o', out, '-w', '%{http_code}', ...args, `${m.httpsUrl}${path}`]);
  return { status: Number(r.stdout), body: existsSync(out) ? readFileSync(out, 'utf8') : '' };
}

describe('T14 S4 S5 S7 issue 9 tests 1 and 4: Phase 2 pull by tips-client from the real master', () => {
  let spaces: Record<string, { id: string }>;
  let glazes: Record<string, { id: string; sha256: string }>;
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'tips-client-phase2-e2e-'));
    const n18 = debianNode18();
    node = n18 ? n18.argv : [process.execPath];
    if (!n18) console.warn("tips-client e2e: Debian Node 18 unavailable (apt-get download failed); running the bundle with this machine's node");
    m = await startClientTestMaster(work);
    env = { TIPS_URL: m.master.url, TIPS_TOKEN: m.admin, TIPS_CONFIG: join(work, 'no-config.json') };
    cli(['key', 'create', '--out', join(work, 'ops.pem'), '--register', 'ops', '--json']);
    cli(['key', 'create', '--out', join(work, 'rogue.pem'), '--register', 'rogue', '--json']);
    await metal('pi-a', '02:c2:00:00:00:0a');
    await metal('pi-b', '02:c2:00:00:00:0b');
    spaces = {};
    for (const s of ['base', 'tools', 'other']) spaces[s] = cli(['space', 'create', '--name', s, '--phase', '2', '--json']);
    for (const s of ['base', 'tools']) cli(['space', 'add', s, 'pi-a', '--iface', 'eth0', '--json']);
    cli(['space', 'add', 'other', 'pi-b', '--iface', 'eth0', '--json']);
    glazes = {
      web: push('base', 'web', '1.0', { seq: 100 }),
      tool: push('tools', 'tool', '2.0', { seq: 200 }),
      secret: push('other', 'secret', '9.0', { seq: 900 }),
    };
  });
  afterAll(async () => {
    await m?.master.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('test 1: a metal in two Phase 2 Spaces receives both Glazes, installs them and acknowledges; the third Space is never delivered', async () => {
    const r = run('pi-a');
    expect(r.status, r.stderr).toBe(0);
    const a = metals['pi-a']!;
    expect(readFileSync(join(a.state, 'apps/web/current/hello.txt'), 'utf8')).toBe('web 1.0');
    expect(readFileSync(join(a.state, 'apps/tool/current/hello.txt'), 'utf8')).toBe('tool 2.0');
    expect(existsSync(join(a.state, 'apps/secret'))).toBe(false);
    // Progress in the logs; no trace of the other Space's Glaze anywhere on pi-a.
    expect(r.stderr).toContain('"event":"download_progress"');
    expect(r.stderr).not.toContain(glazes.secret!.id);
    const u = await updates('pi-a');
    expect(u.installed.map((i) => i.glazeId).sort()).toEqual([glazes.web!.id, glazes.tool!.id].sort());
    expect(u.history.filter((h) => h.result === 'installed').map((h) => h.glazeId).sort()).toEqual([glazes.web!.id, glazes.tool!.id].sort());
    expect(u.profile?.glazes.map((g) => `${g.name}@${g.version}`).sort()).toEqual(['tool@2.0', 'web@1.0']);
    const st = status('pi-a');
    expect(st.installed.map((g: { name: string }) => g.name).sort()).toEqual(['tool', 'web']);
    expect(st.lastError).toBeNull();
    // The operator finds the metal by its profile.
    expect(cli(['metal', 'list', '--glaze', 'web@1.0', '--json']).map((x: { id: string }) => x.id)).toEqual([a.id]);
    expect(cli(['metal', 'list', '--vendor', VENDOR, '--class', CLASS, '--json']).map((x: { id: string }) => x.id)).toContain(a.id);
  });

  it("test 1: a request with another metal's identity is refused; another Space's Glaze cannot be fetched", () => {
    const b = identityDir('pi-b');
    const a = identityDir('pi-a');
    const tokenB = JSON.parse(curl('/api/metal/v1/tokens/issue', ['-X', 'POST', '--cert', join(b, 'cert.pem'), '--key', join(b, 'key.pem')]).body).cwt as string;
    expect(tokenB).toBeTruthy();
    // pi-b's token on pi-a's connection: the token is bound to pi-b's key.
    const stolen = curl('/api/metal/v1/work?phase=2', ['--cert', join(a, 'cert.pem'), '--key', join(a, 'key.pem'), '-H', `Authorization: PoP ${tokenB}`]);
    expect(stolen.status).toBe(403);
    expect(JSON.parse(stolen.body).error.code).toBe('forbidden');
    // pi-b with its own token cannot read pi-a's Glaze.
    const blob = curl(`/api/metal/v1/glazes/${glazes.web!.id}/blob`, ['--cert', join(b, 'cert.pem'), '--key', join(b, 'key.pem'), '-H', `Authorization: PoP ${tokenB}`]);
    expect(blob.status).toBe(404);
    // And without a token at all, mTLS alone is not enough.
    expect(curl('/api/metal/v1/work?phase=2', ['--cert', join(a, 'cert.pem'), '--key', join(a, 'key.pem')]).status).toBe(401);
  });

  it('test 4: a rollback (older sequence), a revoked signer, another vendor and another class are refused and reported; the installed versions stay', async () => {
    for (const s of ['vend', 'klass']) {
      spaces[s] = cli(['space', 'create', '--name', s, '--phase', '2', '--json']);
      cli(['space', 'add', s, 'pi-a', '--iface', 'eth0', '--json']);
    }
    // Glaze names are unique per owner; the component (where it installs) is what the sequence guards.
    const old = push('base', 'web', '0.9', { seq: 50, glazeName: 'web-old', component: 'web' });
    const rogue = push('tools', 'tool', '3.0', { seq: 300, key: 'rogue.pem', glazeName: 'tool-rogue', component: 'tool' });
    cli(['key', 'revoke', 'rogue']);
    const vend = push('vend', 'vtool', '1.0', { seq: 10, vendor: 'evil.example' });
    const klass = push('klass', 'ktool', '1.0', { seq: 10, klass: 'pi5' });
    const r = run('pi-a');
    expect(r.status, r.stderr).toBe(0);
    const a = metals['pi-a']!;
    expect(readlinkSync(join(a.state, 'apps/web/current'))).toBe('1.0');
    expect(readlinkSync(join(a.state, 'apps/tool/current'))).toBe('2.0');
    for (const n of ['vtool', 'ktool']) expect(existsSync(join(a.state, 'apps', n))).toBe(false);
    // Nothing refused was downloaded: verification comes before the first byte.
    for (const g of [old, rogue, vend, klass]) expect(r.stderr).not.toContain(`"event":"download_start","glaze":"${g.id}"`);
    const reasons = Object.fromEntries((await updates('pi-a')).history.filter((h) => h.result === 'failed').map((h) => [h.glazeId, h.reason]));
    expect(reasons).toEqual({
      [old.id]: 'suit_rollback',
      [rogue.id]: 'suit_signature_invalid',
      [vend.id]: 'suit_vendor_mismatch',
      [klass.id]: 'suit_class_mismatch',
    });
    expect(status('pi-a').refused.map((x: { reason: string }) => x.reason).sort()).toEqual(['suit_class_mismatch', 'suit_rollback', 'suit_signature_invalid', 'suit_vendor_mismatch']);
  });

  it('S6 S14 re-enrolls before expiry (simplereenroll over mTLS): a new certificate in force, the old one revoked', () => {
    const before = status('pi-a').certificate.serial;
    const oldDir = identityDir('pi-a');
    writeFileSync(join(work, 'old.pem'), readFileSync(join(oldDir, 'cert.pem')));
    writeFileSync(join(work, 'old.key'), readFileSync(join(oldDir, 'key.pem')));
    const r = run('pi-a', ['--renew-before', '400d']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('"event":"reenrolled"');
    const after = status('pi-a').certificate.serial;
    expect(after).not.toBe(before);
    expect(existsSync(oldDir)).toBe(false);
    const now = identityDir('pi-a');
    expect(sh('openssl', ['verify', '-CAfile', m.caFile, '-untrusted', join(work, 'offline/intermediate.pem'), join(now, 'cert.pem')]).stdout).toContain(': OK');
    const old = curl('/api/metal/v1/whoami', ['--cert', join(work, 'old.pem'), '--key', join(work, 'old.key')]);
    expect(JSON.parse(old.body).error.code).toBe('certificate_revoked');
    expect(JSON.parse(curl('/api/metal/v1/whoami', ['--cert', join(now, 'cert.pem'), '--key', join(now, 'key.pem')]).body).metal).toBe(metals['pi-a']!.id);
  });

  it('an authorization failure stops Phases 2 and 3: exit 3, logged, shown by status', () => {
    cli(['enrollment', 'revoke', 'pi-a', '--json']);
    const r = run('pi-a');
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('"event":"phase2_stopped"');
    const st = status('pi-a');
    expect(st.stopped.code).toBe('certificate_revoked');
    expect(st.lastError.code).toBe('certificate_revoked');
    const text = client(['status', '--config', metals['pi-a']!.config]).stdout;
    expect(text).toContain('STOPPED');
  });
});
