/**
 * Issue 9 test 5 (T16): a metal enrolled over EST (openssl CSR, curl from inside its namespace
 * through the real gateway) runs the tamper watch over its root; `dpkg -i` of a package built here
 * with dpkg-deb, installed with --root/--admindir into that root from inside the metal's namespace →
 * the watch reports to the real master with the metal's mTLS identity and a PoP token → within 10 s
 * the real gateway has the metal Blocked and its traffic stops; a second metal is untouched.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NsProcess, until } from '@tips/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpFrom, startServices } from '../apps/gateway/src/enforcer/testing.ts';
import { GatewayLab, type Metal, randomMac } from './gateway-topology.ts';
import { ROOT } from './helpers.ts';

const ADDR = { masterIp: '10.96.0.1', gatewayUplinkIp: '10.96.0.2', gatewayLanIp: '10.74.0.1' };
const EXTERNAL_IP = '10.96.0.100';
const TLS_PORT = 8443;
const RUNNER = join(ROOT, 'e2e/tamper-runner.ts');
const BUNDLE = join(ROOT, 'apps/client/dist/tips-client.cjs');

let work: string;
let lab: GatewayLab;
const runners: NsProcess[] = [];
const savedTlsHostname = process.env.TIPS_TLS_HOSTNAME;

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
function metalRoot(name: string): string {
  const root = join(work, `${name}-root`);
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

/** The watch over the metal's root, run inside its namespace with its identity; resolves once it watches. */
async function watchMetal(metal: LabMetal, name: string): Promise<{ root: string; runner: NsProcess }> {
  const id = await enroll(metal, name);
  const root = metalRoot(name);
  const config = join(work, `${name}-runner.json`);
  writeFileSync(
    config,
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
  const runner = metal.m.ns.spawn(process.execPath, ['--import', 'tsx', RUNNER, config], { cwd: ROOT, label: `tamper runner ${name}`, logFile: join(work, `${name}-runner.log`) });
  runners.push(runner);
  await runner.waitFor(/^WATCHING$/m, 90_000);
  // Nothing was reported for the state TIPS recorded.
  expect(runner.output).not.toMatch(/REPORTED/);
  return { root, runner };
}

/** T16's promise: within 10 s of `since` the gateway holds the metal Blocked and forwards nothing of it. */
async function blockedWithin10s(metal: LabMetal, since: number): Promise<void> {
  const row = await lab.rowInState(metal.mac, 'blocked', 10_000);
  expect(row.tipsId).toBe(metal.id);
  await until('the tampered metal reaches nothing', async () => ((await httpFrom(metal.m.ns, EXTERNAL_IP, 80, { timeoutSec: 1 })) === null ? true : undefined), Math.max(1_000, 10_000 - (Date.now() - since)));
  // (The 202 itself may never reach the metal: the block can land before the answer leaves the gateway.)
}

describe('T16 tamper response end to end (issue 9 test 5): dpkg -i on a metal → Blocked at the gateway within 10 s', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'tips-tamper-e2e-'));
    // The lab's master makes its CA on first start; the name on its HTTPS certificate comes from the environment.
    process.env.TIPS_TLS_HOSTNAME = ADDR.masterIp;
    lab = await GatewayLab.start('tamp', ADDR);
    // The metal trusts the root the owner fetched with their login.
    mkdirSync(join(work, 'offline'));
    writeFileSync(join(work, 'offline/root.pem'), (await lab.api<{ rootPem: string }>('GET', '/api/v1/enrollment/ca')).rootPem);
    await lab.cloud.addAddress('eth0', `${EXTERNAL_IP}/24`);
    await startServices(lab.cloud, [`http:${EXTERNAL_IP}:80`]);
  }, 240_000);

  afterAll(async () => {
    for (const r of runners) await r.stop();
    await lab?.destroy();
    if (savedTlsHostname === undefined) delete process.env.TIPS_TLS_HOSTNAME;
    else process.env.TIPS_TLS_HOSTNAME = savedTlsHostname;
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('the metal reports the package, the master blocks every interface, its traffic stops; the other metal keeps working', async () => {
    const pi = await activeMetal('pi-tamper');
    const other = await activeMetal('pi-honest');
    const { root } = await watchMetal(pi, 'pi');
    const deb = tinyDeb();

    await pi.m.ns.execOk('dpkg', ['--root', root, '--admindir', join(root, 'var/lib/dpkg'), '-i', deb]);
    const installedAt = Date.now();
    expect(readFileSync(join(root, 'var/lib/dpkg/status'), 'utf8')).toMatch(/^Package: tiny$/m);
    await blockedWithin10s(pi, installedAt);

    // The owner sees what changed.
    const events = await lab.api<{ items: { kind: string; detail?: unknown }[] }>('GET', '/api/v1/metals/pi-tamper/events?kind=tamper');
    expect(JSON.stringify(events.items)).toContain('installed outside TIPS: tiny 1.0 (all)');

    // The state that did not change: the honest metal is still Active and still forwarded.
    expect((await lab.row(other.mac))?.state).toBe('active');
    expect(await httpFrom(other.m.ns, EXTERNAL_IP, 80)).toBe(`${EXTERNAL_IP}:80 from ${ADDR.gatewayUplinkIp}`);
  });

  it('the real agent: `tips-client run` (enrolled over EST from the metal) watches by itself; dpkg -i → Blocked within 10 s', async () => {
    const pi = await activeMetal('pi-agent');
    const root = metalRoot('agent');
    const etc = join(work, 'agent-etc');
    mkdirSync(etc, { recursive: true });
    const s = await lab.api<{ id: string; secret: string }>('POST', '/api/v1/enrollment/secrets', { metal: pi.id });
    writeFileSync(join(etc, 'enrollment.json'), JSON.stringify({ secretId: s.id, secret: s.secret }), { mode: 0o600 });
    const state = join(root, 'var/lib/tips-client');
    writeFileSync(
      join(etc, 'config.json'),
      JSON.stringify({
        masterUrl: `https://${ADDR.masterIp}:${TLS_PORT}`,
        estUrl: `https://${ADDR.masterIp}:${TLS_PORT}/.well-known/est`,
        caFile: join(work, 'offline/root.pem'),
        tipsId: pi.id,
        metalId: pi.id,
        enrollmentFile: join(etc, 'enrollment.json'),
        stateDir: state,
        vendorId: null,
        classId: null,
        managedPaths: [join(root, 'opt/app')],
      }),
    );
    await pi.m.ns.execOk(process.execPath, [BUNDLE, 'enroll', '--config', join(etc, 'config.json')], { timeoutMs: 120_000 });
    const agent = pi.m.ns.spawn(process.execPath, [BUNDLE, 'run', '--config', join(etc, 'config.json'), '--dpkg-root', root, '--no-push', '--poll-interval', '1h'], {
      label: 'tips-client run',
      logFile: join(work, 'agent-run.log'),
    });
    runners.push(agent);
    await agent.waitFor(/"event":"tamper_watch_started"/, 90_000);
    // The first cycle (it may fail: this owner has no operator key, so no trust list) — the watch runs regardless.
    await agent.waitFor(/"event":"(work|cycle_failed)"/, 90_000);
    expect(agent.output).not.toMatch(/"event":"tamper_reported"/);

    await pi.m.ns.execOk('dpkg', ['--root', root, '--admindir', join(root, 'var/lib/dpkg'), '-i', tinyDeb()]);
    await blockedWithin10s(pi, Date.now());
    const events = await lab.api<{ items: { kind: string; detail?: unknown }[] }>('GET', '/api/v1/metals/pi-agent/events?kind=tamper');
    expect(JSON.stringify(events.items)).toContain('installed outside TIPS: tiny 1.0 (all)');
  });

  it('a write into a managed path on the metal: Blocked within 10 s, the owner sees the modified file', async () => {
    const pi = await activeMetal('pi-file');
    const { root } = await watchMetal(pi, 'file');
    const server = join(root, 'opt/app/bin/server');
    await pi.m.ns.execOk('sh', ['-c', `echo 'nc -l -p 4444 -e /bin/sh' >> '${server}'`]);
    await blockedWithin10s(pi, Date.now());
    const events = await lab.api<{ items: { kind: string; detail?: unknown }[] }>('GET', '/api/v1/metals/pi-file/events?kind=tamper');
    expect(events.items[0]?.detail).toEqual({ changes: [{ path: server, kind: 'modified', detail: expect.stringMatching(/^content changed/) }] });
  });
});
