/**
 * Issue 9 test 5 (T16): a metal enrolled over EST (openssl CSR, curl from inside its namespace
 * through the real gateway) runs the tamper watch over its root; `dpkg -i` of a package built here
 * with dpkg-deb, installed with --root/--admindir into that root from inside the metal's namespace →
 * the watch reports to the real master with the metal's mTLS identity and a PoP token → within 10 s
 * the real gateway has the metal Blocked and its traffic stops; a second metal is untouched.
 */
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NsProcess, until } from '@tips/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpFrom, startServices } from '../apps/gateway/src/enforcer/testing.ts';
import { GatewayLab, type Metal, randomMac } from './gateway-topology.ts';
import { ROOT, tips } from './helpers.ts';

const ADDR = { masterIp: '10.96.0.1', gatewayUplinkIp: '10.96.0.2', gatewayLanIp: '10.74.0.1' };
const EXTERNAL_IP = '10.96.0.100';
const TLS_PORT = 8443;
const RUNNER = join(ROOT, 'e2e/tamper-runner.ts');

let work: string;
let lab: GatewayLab;
let runner: NsProcess | undefined;
const savedEnv = { ca: process.env.TIPS_CA_DIR, host: process.env.TIPS_TLS_HOSTNAME };

function must(cmd: string, args: string[], cwd = work) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} → ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

interface LabMetal {
  id: string;
  mac: string;
  m: Metal;
}

async function activeMetal(name: string): Promise<LabMetal> {
  const mac = randomMac();
  const { id } = await lab.declareMetal(name, mac);
  const m = await lab.startMetal([mac]);
  await lab.leased(m);
  await lab.rowInState(mac, 'active');
  await until(`${name} forwarded to the outside`, async () => (await httpFrom(m.ns, EXTERNAL_IP, 80)) ?? undefined, 30_000);
  return { id, mac, m };
}

/** EST simpleenroll from inside the metal's namespace: openssl makes the key and CSR, curl posts it with the enrollment secret. */
async function enroll(metal: LabMetal, name: string): Promise<{ cert: string; key: string }> {
  const s = await lab.api<{ id: string; secret: string }>('POST', '/api/v1/enrollment/secrets', { metal: metal.id });
  must('openssl', [
    'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-subj', `/CN=${metal.id}`, '-addext', `subjectAltName=URI:urn:tips:metal:${metal.id}`,
    '-outform', 'DER', '-out', `${name}.der`,
  ]);
  must('openssl', ['base64', '-in', `${name}.der`, '-out', `${name}.b64`]);
  const r = await metal.m.ns.execOk('curl', [
    '-sS', '--cacert', join(work, 'offline/root.pem'), '-u', `${s.id}:${s.secret}`, '-H', 'Content-Type: application/pkcs10',
    '--data-binary', `@${join(work, `${name}.b64`)}`, '-o', join(work, `${name}.p7.b64`), '-w', '%{http_code}',
    `https://${ADDR.masterIp}:${TLS_PORT}/.well-known/est/simpleenroll`,
  ]);
  expect(r.stdout).toBe('200');
  must('openssl', ['base64', '-d', '-in', `${name}.p7.b64`, '-out', `${name}.p7.der`]);
  must('openssl', ['pkcs7', '-inform', 'DER', '-in', `${name}.p7.der`, '-print_certs', '-out', `${name}.pem`]);
  return { cert: join(work, `${name}.pem`), key: join(work, `${name}.key`) };
}

/** A metal root with a managed application and a dpkg database that knows one package. */
function metalRoot(): string {
  const root = join(work, 'metal-root');
  mkdirSync(join(root, 'opt/app/bin'), { recursive: true });
  writeFileSync(join(root, 'opt/app/bin/server'), '#!/bin/sh\necho server\n', { mode: 0o755 });
  for (const d of ['info', 'updates']) mkdirSync(join(root, 'var/lib/dpkg', d), { recursive: true });
  writeFileSync(join(root, 'var/lib/dpkg/status'), 'Package: base-files\nStatus: install ok installed\nArchitecture: all\nVersion: 12.4\nMaintainer: x <x@example.com>\nDescription: base\n');
  return root;
}

/** A tiny package built with dpkg-deb: one executable, no maintainer scripts. */
function tinyDeb(): string {
  const pkg = join(work, 'tiny');
  mkdirSync(join(pkg, 'DEBIAN'), { recursive: true });
  mkdirSync(join(pkg, 'usr/local/bin'), { recursive: true });
  writeFileSync(join(pkg, 'DEBIAN/control'), 'Package: tiny\nVersion: 1.0\nArchitecture: all\nMaintainer: Mallory <m@example.com>\nDescription: installed outside TIPS\n');
  writeFileSync(join(pkg, 'usr/local/bin/tiny'), '#!/bin/sh\necho tiny\n');
  chmodSync(join(pkg, 'usr/local/bin/tiny'), 0o755);
  must('dpkg-deb', ['--root-owner-group', '--build', pkg, join(work, 'tiny_1.0_all.deb')]);
  return join(work, 'tiny_1.0_all.deb');
}

describe('T16 tamper response end to end (issue 9 test 5): dpkg -i on a metal → Blocked at the gateway within 10 s', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'tips-tamper-e2e-'));
    const init = tips(['ca', 'init', '--out', join(work, 'offline'), '--name', 'Tamper E2E'], {});
    expect(init.status, init.stderr).toBe(0);
    mkdirSync(join(work, 'master-ca'));
    for (const f of ['root.pem', 'intermediate.pem', 'intermediate-key.pem']) copyFileSync(join(work, 'offline', f), join(work, 'master-ca', f));
    // The lab's master takes its CA and the name on its HTTPS certificate from the environment.
    process.env.TIPS_CA_DIR = join(work, 'master-ca');
    process.env.TIPS_TLS_HOSTNAME = ADDR.masterIp;
    lab = await GatewayLab.start('tamp', ADDR);
    await lab.cloud.addAddress('eth0', `${EXTERNAL_IP}/24`);
    await startServices(lab.cloud, [`http:${EXTERNAL_IP}:80`]);
  }, 240_000);

  afterAll(async () => {
    await runner?.stop();
    await lab?.destroy();
    for (const [k, v] of [['TIPS_CA_DIR', savedEnv.ca], ['TIPS_TLS_HOSTNAME', savedEnv.host]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('the metal reports the package, the master blocks every interface, its traffic stops; the other metal keeps working', async () => {
    const pi = await activeMetal('pi-tamper');
    const other = await activeMetal('pi-honest');
    const id = await enroll(pi, 'pi');
    const root = metalRoot();
    writeFileSync(
      join(work, 'runner.json'),
      JSON.stringify({
        stateDir: join(root, 'var/lib/tips-client'),
        root,
        managedPaths: [join(root, 'opt/app')],
        masterUrl: `https://${ADDR.masterIp}:${TLS_PORT}`,
        caFile: join(work, 'offline/root.pem'),
        certFile: id.cert,
        keyFile: id.key,
      }),
    );
    runner = pi.m.ns.spawn(process.execPath, ['--import', 'tsx', RUNNER, join(work, 'runner.json')], { cwd: ROOT, label: 'tamper runner', logFile: join(work, 'runner.log') });
    await runner.waitFor(/^WATCHING$/m, 90_000);
    // Nothing was reported for the state TIPS recorded.
    expect(runner.output).not.toMatch(/REPORTED/);
    const deb = tinyDeb();

    await pi.m.ns.execOk('dpkg', ['--root', root, '--admindir', join(root, 'var/lib/dpkg'), '-i', deb]);
    const installedAt = Date.now();
    expect(readFileSync(join(root, 'var/lib/dpkg/status'), 'utf8')).toMatch(/^Package: tiny$/m);

    // T16: within 10 s of the install the gateway holds the metal Blocked and forwards nothing of it.
    const row = await lab.rowInState(pi.mac, 'blocked', 10_000);
    await until('the tampered metal reaches nothing', async () => ((await httpFrom(pi.m.ns, EXTERNAL_IP, 80, { timeoutSec: 1 })) === null ? true : undefined), Math.max(1_000, 10_000 - (Date.now() - installedAt)));
    expect(row.tipsId).toBe(pi.id);
    // (The 202 itself may never reach the metal: the block can land before the answer leaves the gateway.)

    // The owner sees what changed.
    const events = await lab.api<{ items: { kind: string; detail?: unknown }[] }>('GET', '/api/v1/metals/pi-tamper/events?kind=tamper');
    expect(JSON.stringify(events.items)).toContain('installed outside TIPS: tiny 1.0 (all)');

    // The state that did not change: the honest metal is still Active and still forwarded.
    expect((await lab.row(other.mac))?.state).toBe('active');
    expect(await httpFrom(other.m.ns, EXTERNAL_IP, 80)).toBe(`${EXTERNAL_IP}:80 from ${ADDR.gatewayUplinkIp}`);
  });
});
