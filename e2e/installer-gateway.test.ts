// The installer through the real gateway and the real master (netns): a declared metal's script
// gives the token, the installer installs the default Space's signed Glaze onto a disk image and the
// master records the job installed; after a reprovision to an older Glaze (lower sequence) the
// installer refuses with suit_rollback, the disk stays byte-identical and the job shows the reason.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayLab, type Metal, randomMac } from './gateway-topology.ts';
import { ROOT } from './helpers.ts';
import { assertHonestClaim, type Glaze, inspectRoot, MiB, makeGlaze, readMarker, sha } from './installer-disk.ts';

const ADDR = { masterIp: '10.98.0.1', gatewayUplinkIp: '10.98.0.2', gatewayLanIp: '10.78.0.1' };
const LAN = ADDR.gatewayLanIp;
const BOOT_PORT = 8080;
const INSTALLER = join(ROOT, 'apps/installer/bin/tips-installer.js');

let lab: GatewayLab;
let work: string;
let metal: Metal;
let metalId: string;
let keyId: string;

async function pushSigned(g: Glaze, name: string, sequenceNumber: number): Promise<string> {
  const res = await fetch(`${lab.masterUrl}/api/v1/glazes?name=${name}&spaces=${lab.phase1Space}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${lab.adminToken}`, 'content-type': 'application/octet-stream' },
    body: new Uint8Array(g.bytes),
  });
  expect(res.status).toBe(201);
  const id = ((await res.json()) as { id: string }).id;
  await lab.api('POST', `/api/v1/glazes/${id}/manifest/sign`, { key: keyId, sequenceNumber, vendorDomain: 'example.com', classInfo: 'base-os', component: 'disk', uri: `tips:glaze:${id}` });
  return id;
}

/** The per-metal iPXE script, fetched from the metal as iPXE would: the token and job on its kernel line. */
async function script(): Promise<{ token: string; jobId: string }> {
  const r = await metal.ns.execOk('curl', ['-s', '-f', '-m', '10', `http://${LAN}:${BOOT_PORT}/boot/script.ipxe`], { timeoutMs: 20_000 });
  const token = /tips\.token=([A-Za-z0-9_-]+)/.exec(r.stdout)?.[1];
  const jobId = /tips\.job=([A-Za-z0-9_-]+)/.exec(r.stdout)?.[1];
  expect(token, r.stdout).toBeDefined();
  return { token: token!, jobId: jobId! };
}

async function install(token: string, disk: string, state: string): Promise<{ code: number | null; output: string }> {
  const p = metal.ns.spawn(process.execPath, [INSTALLER, '--boot-url', `http://${LAN}:${BOOT_PORT}`, '--token', token, '--disk', disk, '--state-dir', state, '--no-reboot'], { label: 'installer' });
  const code = await p.exited;
  return { code, output: p.output };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'tips-e2e-installer-gw-'));
  lab = await GatewayLab.start('instgw', ADDR, ['--boot-http-port', String(BOOT_PORT), '--pending-timeout', '60s'], { bootServices: true });
  keyId = (await lab.api<{ id: string }>('POST', '/api/v1/keys', { name: 'installer-gw-key', serverHeld: true })).id;
  const mac = randomMac();
  try {
    metalId = (await lab.declareMetal('inst-gw', mac)).id;
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${lab.master.output.split('\n').filter((l) => /"level":5/.test(l)).join('\n').slice(-3000)}`);
  }
  metal = await lab.startMetal([mac]);
  await lab.leased(metal);
  await lab.rowInState(mac, 'active');
}, 300_000);

afterAll(async () => {
  await lab?.destroy();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('T13 S12 Phase 1: the installer through the real gateway and master', () => {
  it('installs the signed Glaze of the default Space; the job is installed; a rollback is refused with the disk untouched and the reason in the job', async () => {
    const g5 = makeGlaze(work, 'g5', 24, 4);
    const g3 = makeGlaze(work, 'g3', 24, 4);
    const newer = await pushSigned(g5, 'inst-gw-os-5', 5);
    const older = await pushSigned(g3, 'inst-gw-os-3', 3);
    await lab.api('PATCH', `/api/v1/spaces/${lab.phase1Space}`, { glaze: newer });

    const disk = join(work, 'disk.img');
    execFileSync('truncate', ['-s', String(64 * MiB), disk]);
    const first = await script();
    const r1 = await install(first.token, disk, join(work, 'state-1'));
    expect(r1.code, r1.output).toBe(0);
    const job1 = await lab.api<{ state: string; reason: string | null }>('GET', `/api/v1/provisioning/jobs/${first.jobId}`);
    expect(job1.state).toBe('installed');
    expect(assertHonestClaim(disk, [g5], 'installed')).toMatchObject({ sha256: g5.sha256, sequence: 5, jobId: first.jobId });
    const root = inspectRoot(disk);
    expect(root.config).toMatchObject({ metalId, caFile: '/etc/tips-client/ca.pem' });
    expect(root.enrollment).toMatchObject({ secretId: expect.any(String), secret: expect.any(String) });
    expect(root.ca).toContain('-----BEGIN CERTIFICATE-----');

    // The owner moves the default Space to an older Glaze and re-runs Phase 1: refused as a rollback.
    await lab.api('PATCH', `/api/v1/spaces/${lab.phase1Space}`, { glaze: older });
    await lab.api('POST', `/api/v1/metals/${metalId}/reprovision`, {});
    const second = await script();
    expect(second.jobId).not.toBe(first.jobId);
    const before = sha(readFileSync(disk));
    const r2 = await install(second.token, disk, join(work, 'state-2'));
    expect(r2.code, r2.output).toBe(2);
    expect(sha(readFileSync(disk)), 'the refused install changed the disk').toBe(before);
    expect(readMarker(disk)?.sha256).toBe(g5.sha256);
    const job2 = await lab.api<{ state: string; reason: string | null }>('GET', `/api/v1/provisioning/jobs/${second.jobId}`);
    expect(job2).toMatchObject({ state: 'failed', reason: 'suit_rollback' });
  });
});
