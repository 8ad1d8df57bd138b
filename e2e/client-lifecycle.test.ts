// Issue 9 "Identity and life cycle" (S5 S6 S14 T14) with the real parts: tips-master started with
// short-lived metal certificates, the `tips` CLI for the operator, the tips-client bundle (Debian's
// Node 18 where available) on the metal side; openssl and curl as the peers we did not write.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientTestMaster, CLIENT_BUNDLE, runClient, startClientTestMaster, tipsOk, writeClientFiles } from './client-master.ts';
import { debianNode18 } from './client-node18.ts';

const BUNDLE = CLIENT_BUNDLE;
let work: string;
let m: ClientTestMaster;
let node: string[];
let env: NodeJS.ProcessEnv;
const running: ChildProcess[] = [];
let pi: { id: string; config: string; state: string; etc: string };

const client = (args: string[]) => runClient(node, args);
const cli = (args: string[]) => tipsOk(env, args);
function sh(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { cwd: work, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
const run = (extra: string[] = []) => client(['run', '--once', '--config', pi.config, ...extra]);
const status = () => JSON.parse(client(['status', '--json', '--config', pi.config]).stdout);
const current = () => join(pi.state, 'identity', readlinkSync(join(pi.state, 'identity', 'current')));
/** Copies the identity in force aside (what a thief or a stale backup would hold). */
function keep(name: string) {
  const dir = current();
  writeFileSync(join(work, `${name}.pem`), readFileSync(join(dir, 'cert.pem')));
  writeFileSync(join(work, `${name}.key`), readFileSync(join(dir, 'key.pem')));
}
function whoami(name: string) {
  const out = join(work, `who-${Math.random().toString(36).slice(2)}`);
  const r = sh('curl', ['-sS', '--cacert', m.caFile, '--cert', join(work, `${name}.pem`), '--key', join(work, `${name}.key`), '-o', out, '-w', '%{http_code}', `${m.httpsUrl}/api/metal/v1/whoami`]);
  return { status: Number(r.stdout), body: JSON.parse(readFileSync(out, 'utf8')) };
}
const chainOk = (cert: string) => sh('openssl', ['verify', '-CAfile', m.caFile, '-untrusted', join(work, 'offline/intermediate.pem'), cert]).stdout;

/** `run --once` killed with SIGKILL `delayMs` after it logs `event`; resolves with what it logged. */
async function killedRun(extra: string[], event: string, delayMs: number): Promise<string> {
  const child = spawn(node[0]!, [...node.slice(1), BUNDLE, 'run', '--once', '--config', pi.config, ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  running.push(child);
  let log = '';
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  await new Promise<void>((resolve) => {
    child.stderr!.on('data', (c) => {
      log += c;
      if (log.includes(`"event":"${event}"`)) setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, delayMs);
    });
    child.on('exit', () => resolve());
  });
  await exited;
  return log;
}

describe('S5 S6 S14 T14 identity and life cycle: renewal, signed orders, retirement (tips-client against the real master)', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'tips-client-lifecycle-e2e-'));
    const n18 = debianNode18();
    node = n18 ? n18.argv : [process.execPath];
    if (!n18) console.warn("tips-client e2e: Debian Node 18 unavailable (apt-get download failed); running the bundle with this machine's node");
    // The shortest certificate lifetime the master allows: one day.
    m = await startClientTestMaster(work, ['--metal-cert-days', '1']);
    env = { TIPS_URL: m.master.url, TIPS_TOKEN: m.admin, TIPS_CONFIG: join(work, 'no-config.json') };
    cli(['key', 'create', '--out', join(work, 'ops.pem'), '--register', 'ops', '--json']);
    const created = cli(['metal', 'create', '--name', 'pi-life', '--iface', 'eth0=02:c3:00:00:00:01,ethernet,pxe', '--json']);
    const secret = cli(['enrollment', 'secret', 'create', '--metal', 'pi-life', '--json']);
    const state = join(work, 'state');
    const etc = join(work, 'etc');
    pi = { id: created.id, config: writeClientFiles(etc, m, { id: created.id }, { id: secret.id, secret: secret.secret }, state), state, etc };
    const e = client(['enroll', '--config', pi.config]);
    expect(e.status, e.stderr).toBe(0);
    const first = run();
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toContain('"event":"trust_list_updated","how":"first_use"');
  }, 240_000);
  afterAll(async () => {
    for (const p of running) if (p.exitCode === null) p.kill('SIGKILL');
    await m?.master.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('re-enrolls before expiry: a one-day certificate inside the renewal threshold is renewed with a new key; openssl verifies the chain; the old one is refused', () => {
    const before = status().certificate;
    expect(Date.parse(before.notAfter) - Date.parse(before.notBefore)).toBeLessThanOrEqual(86_400_000 + 120_000);
    keep('old');
    const oldDir = current();
    // Not due yet with the default threshold (a third of the life left): nothing changes.
    const calm = run();
    expect(calm.status, calm.stderr).toBe(0);
    expect(calm.stderr).not.toContain('reenroll_request');
    expect(status().certificate.serial).toBe(before.serial);
    // Due when less than a day is left: at once, for a one-day certificate.
    const r = run(['--renew-before', '1d']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('"event":"reenrolled"');
    const after = status().certificate;
    expect(after.serial).not.toBe(before.serial);
    expect(existsSync(oldDir)).toBe(false);
    const dir = current();
    expect(statSync(join(dir, 'key.pem')).mode & 0o777).toBe(0o600);
    expect(chainOk(join(dir, 'cert.pem'))).toContain(': OK');
    expect(sh('openssl', ['x509', '-in', join(dir, 'cert.pem'), '-noout', '-pubkey']).stdout).toBe(sh('openssl', ['pkey', '-in', join(dir, 'key.pem'), '-pubout']).stdout);
    expect(sh('openssl', ['x509', '-in', join(dir, 'cert.pem'), '-noout', '-pubkey']).stdout).not.toBe(sh('openssl', ['pkey', '-in', join(work, 'old.key'), '-pubout']).stdout);
    const old = whoami('old');
    expect([old.status, old.body.error.code]).toEqual([401, 'certificate_revoked']);
    keep('new');
    expect(whoami('new').body.metal).toBe(pi.id);
  });

  it('kill -9 at any point of a renewal leaves a usable identity: the next run works with the master', async () => {
    // Killed as the EST request leaves, while it is answered, and around the write of the new pair.
    for (const delayMs of [0, 40, 150]) {
      const before = status().certificate.serial;
      const log = await killedRun(['--renew-before', '1d'], 'reenroll_request', delayMs);
      // Whatever the cut left, the next start recovers a pair the master accepts.
      const next = run();
      expect(next.status, `killed ${delayMs} ms after the request (before: ${before})\n${log}\n${next.stderr}`).toBe(0);
      expect(status().enrolled).toBe(true);
      keep('survivor');
      expect(whoami('survivor').body.metal).toBe(pi.id);
    }
  }, 240_000);

  it('a forged re-enrollment order (signed by a key the master holds but the metal never trusted) is refused: same identity, secret unspent', () => {
    // The key reaches the master's list, not the metal's: a wider list is not adopted unsigned (S5).
    cli(['key', 'create', '--out', join(work, 'rogue.pem'), '--register', 'rogue', '--json']);
    const serial = status().certificate.serial;
    const order = cli(['metal', 'reenroll', 'pi-life', '--sign-key', join(work, 'rogue.pem'), '--est-url', `${m.httpsUrl}/.well-known/est`, '--json']);
    const r = run();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('"event":"trust_list_unsigned"');
    expect(r.stderr).toMatch(/"event":"directive_refused","id":"[^"]+","kind":"reenroll","reason":"suit_(signature_invalid|untrusted_key)"/);
    expect(r.stderr).not.toContain('reenroll_order_request');
    expect(status().certificate.serial).toBe(serial);
    const secrets = cli(['enrollment', 'secret', 'list', '--json']);
    expect(secrets.find((s: { id: string; uses: number }) => s.id === order.secretId)?.uses).toBe(0);
    // Refused once, not retried on every pull.
    expect(run().stderr).not.toContain('directive_refused');
  });

  it('a re-enrollment order signed by a trusted operator is obeyed: new key by simpleenroll with the order\'s secret, the old certificate refused', () => {
    const serial = status().certificate.serial;
    cli(['metal', 'reenroll', 'pi-life', '--sign-key', join(work, 'ops.pem'), '--est-url', `${m.httpsUrl}/.well-known/est`, '--json']);
    const r = run();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('"event":"reenroll_order_request"');
    expect(r.stderr).toContain('"by":"order"');
    const now = status().certificate.serial;
    expect(now).not.toBe(serial);
    expect(chainOk(join(current(), 'cert.pem'))).toContain(': OK');
    expect(whoami('new').body.error.code).toBe('certificate_revoked');
    // Obeyed once: the next pull sees the same order and does nothing.
    const again = run();
    expect(again.stderr).not.toContain('reenroll_order_request');
    expect(status().certificate.serial).toBe(now);
  });

  it('kill -9 at any point of an order-driven re-enrollment leaves a usable identity, and the order is settled once', async () => {
    // Killed as the order's EST request leaves, and once it is answered (around the write of the new pair).
    for (const delayMs of [0, 150]) {
      const before = status().certificate.serial;
      const order = cli(['metal', 'reenroll', 'pi-life', '--sign-key', join(work, 'ops.pem'), '--est-url', `${m.httpsUrl}/.well-known/est`, '--json']);
      const log = await killedRun([], 'reenroll_order_request', delayMs);
      const next = run();
      expect(next.status, `killed ${delayMs} ms after the order's request (before: ${before})\n${log}\n${next.stderr}`).toBe(0);
      expect(status().enrolled).toBe(true);
      keep('order-survivor');
      expect(whoami('order-survivor').body.metal).toBe(pi.id);
      // Either the cut run or the next one took the order's secret (once at most), and it is not asked again.
      const secret = cli(['enrollment', 'secret', 'list', '--json']).find((x: { id: string; uses: number }) => x.id === order.secretId);
      expect(secret?.uses).toBeLessThanOrEqual(1);
      const settled = run();
      expect(settled.status, settled.stderr).toBe(0);
      expect(settled.stderr).not.toContain('reenroll_order_request');
    }
  }, 240_000);

  it('a trust list signed by a trusted operator is adopted (the rogue key becomes trusted only this way)', () => {
    const before = readFileSync(join(pi.state, 'trust-list.cbor'));
    cli(['trust-list', 'push', '--sign-key', join(work, 'ops.pem'), '--json']);
    const r = run();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('"event":"trust_list_updated","how":"signed"');
    expect(readFileSync(join(pi.state, 'trust-list.cbor')).equals(before)).toBe(false);
  });

  it('retirement: the running agent learns it (403 metal_retired), wipes key, certificate and secret, stops; status says retired; the old identity and a new secret are refused', async () => {
    keep('last');
    writeFileSync(join(pi.etc, 'enrollment.json'), JSON.stringify({ secretId: `ens_${'0'.repeat(26)}`, secret: `est_${'z'.repeat(43)}` }), { mode: 0o600 });
    const agent = spawn(node[0]!, [...node.slice(1), BUNDLE, 'run', '--config', pi.config, '--interval', '1s'], { stdio: ['ignore', 'ignore', 'pipe'] });
    running.push(agent);
    let log = '';
    agent.stderr!.on('data', (c) => {
      log += c;
    });
    const deadline = Date.now() + 60_000;
    while (!log.includes('"event":"work"') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(log).toContain('"event":"work"');
    const retired = cli(['metal', 'retire', 'pi-life', '--json']);
    // At least the one in use; an order whose EST answer a kill -9 cut (above) left a certificate whose
    // key the metal never stored: still active until a newer one is proven or it expires — revoked here too.
    expect(retired).toMatchObject({ metal: pi.id });
    expect(retired.certificatesRevoked).toBeGreaterThanOrEqual(1);
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => resolve(-1), 60_000);
      agent.on('exit', (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
    expect(code, log).toBe(3);
    expect(log).toContain('"event":"metal_retired"');
    // Every credential is gone from the disk.
    expect(readdirSync(join(pi.state, 'identity'))).toEqual([]);
    expect(existsSync(join(pi.etc, 'enrollment.json'))).toBe(false);
    const st = status();
    expect(st).toMatchObject({ state: 'retired', enrolled: false, certificate: null, stopped: { code: 'metal_retired' } });
    expect(client(['status', '--config', pi.config]).stdout).toContain('retired at');
    // The master refuses the old identity, distinctly.
    const old = whoami('last');
    expect([old.status, old.body.error.code]).toEqual([403, 'metal_retired']);
    // Neither a fresh secret nor a restarted agent bring it back.
    const secret = cli(['enrollment', 'secret', 'create', '--metal', 'pi-life', '--json']);
    writeFileSync(join(pi.etc, 'enrollment.json'), JSON.stringify({ secretId: secret.id, secret: secret.secret }), { mode: 0o600 });
    const again = client(['enroll', '--config', pi.config]);
    expect(again.status).toBe(3);
    expect(again.stderr).toContain('metal_retired');
    expect(existsSync(join(pi.state, 'identity', 'current'))).toBe(false);
    const restarted = run();
    expect(restarted.status).toBe(3);
    expect(restarted.stderr).toContain('retired');
  }, 180_000);
});
