import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestGateway } from '../apps/master/src/domains/gateways/test-client.ts';
import { installerKey, ok, PXE_MAC, parseBootingScript, provisionableMetal, signedGlaze, signedReport } from '../apps/master/src/domains/provisioning/test-helpers.ts';
import type { TestMaster } from '../apps/master/src/testing.ts';
import { cliAgainstTestMaster, TIPS } from './helpers.ts';

// The real `tips` CLI against an in-process master; the gateway and installer steps are signed
// requests exactly as TIPS-G and the installer make them (CONTRACT A3, A4).
let m: TestMaster;
let url: string;
let tips: Awaited<ReturnType<typeof cliAgainstTestMaster>>['run'];
let gw: TestGateway;
let sha: string;
beforeAll(async () => {
  ({ m, url, run: tips } = await cliAgainstTestMaster());
  await provisionableMetal(m, m.alice.token, 'pi-07');
  sha = (await signedGlaze(m, m.alice.token, 'base-image', Buffer.from('disk image bytes'), ['base-os'], 7)).sha256;
  await ok(m, m.alice.token, 'PATCH', '/api/v1/spaces/base-os', { glaze: 'base-image' });
  gw = await TestGateway.enroll(m.app, m.alice.token, 'gw-lab');
});
afterAll(async () => m.close());

const jobCount = async () => (await ok(m, m.alice.token, 'GET', '/api/v1/provisioning/jobs')).json().items.length as number;

/** Boots the metal through the gateway API and lets an installer claim and report. */
async function bootAndReport(result: 'installed' | 'failed', reason: string | null = null) {
  const path = `/api/gateway/v1/provisioning/boot-script?mac=${encodeURIComponent(PXE_MAC)}&base=${encodeURIComponent('http://10.77.0.1:8080')}`;
  const { jobId, token } = parseBootingScript((await gw.request('GET', path)).body);
  const inst = installerKey();
  expect((await gw.request('POST', '/api/gateway/v1/provisioning/work', { mac: PXE_MAC, token, installerKey: inst.publicRaw })).statusCode).toBe(200);
  const body = signedReport(inst.key, { jobId, result, reason, glazeSha256: sha, bytesWritten: 16 });
  const reportPath = `/api/gateway/v1/provisioning/jobs/${jobId}/report?mac=${encodeURIComponent(PXE_MAC)}`;
  const r = await m.app.inject({ method: 'POST', url: reportPath, headers: gw.headers('POST', reportPath, body, { contentType: 'application/cose' }), payload: body });
  expect(r.statusCode, r.body).toBe(204);
  return jobId;
}

/** `tips …` on a pseudo-terminal (util-linux script), answering `answer` to its question. */
function onTerminal(args: string[], answer: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const cmd = [process.execPath, TIPS, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, TIPS_URL: url, TIPS_TOKEN: m.alice.token, TIPS_CONFIG: join(m.dir, 'none.json') } });
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
      if (output.includes('[y/N]')) child.stdin.end(`${answer}\n`);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
  });
}

describe('T13 tips provisioning / metal reprovision / engine settings', () => {
  it('sets the engine on a Space and a metal (inherit clears it), refusing unknown engines without a request', async () => {
    const space = await tips(['space', 'set', 'base-os', '--engine', 'builtin']);
    expect(space.code, space.stderr).toBe(0);
    expect(space.stdout).toBe('Space base-os: engine builtin\n');
    expect(JSON.parse((await tips(['metal', 'set', 'pi-07', '--engine', 'tinkerbell', '--json'])).stdout).engine).toBe('tinkerbell');
    expect((await tips(['metal', 'set', 'pi-07', '--engine', 'inherit'])).stdout).toBe('metal pi-07: engine inherited from its default Space\n');
    const bad = await tips(['space', 'set', 'base-os', '--engine', 'foreman']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--engine must be one of builtin, tinkerbell');
    expect((await tips(['space', 'show', 'base-os'])).stdout).toContain('engine:  builtin');
  });

  it('lists and shows jobs with their state, reason and signed report; metal show carries the Phase 1 state', async () => {
    const failed = await bootAndReport('failed', 'suit_rollback');
    const list = await tips(['provisioning', 'jobs']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout.split('\n')[0]).toMatch(/^JOB\s+METAL\s+STATE\s+REASON\s+ENGINE\s+GLAZE\s+UPDATED$/);
    expect(list.stdout).toMatch(new RegExp(`${failed}\\s+mtl_[0-9a-z]{26}\\s+failed\\s+suit_rollback\\s+builtin\\s+base-image#7`));
    const show = await tips(['provisioning', 'show', failed]);
    expect(show.stdout).toContain('state:      failed (suit_rollback)');
    expect(show.stdout).toContain('report:     failed (suit_rollback), 16 bytes to /dev/vda, signed by the installer');
    expect(show.stdout).toMatch(/transitions:\n\s+\S+\s+queued\n\s+\S+\s+booting\n\s+\S+\s+installing\n\s+\S+\s+failed \(suit_rollback\)/);
    const metal = await tips(['metal', 'show', 'pi-07']);
    expect(metal.stdout).toContain(`phase 1:    failed (suit_rollback)  job ${failed}  engine builtin  glaze base-image #7`);
    expect((await tips(['provisioning', 'show', 'p1j_00000000000000000000000000'])).code).toBe(4);
    expect((await tips(['provisioning', 'jobs', '--state', 'done'])).code).toBe(2);
  });

  it('reprovision refuses without a terminal and without --yes, asks on a terminal, and with --yes makes a new job (409 while one runs, unless --force)', async () => {
    const before = await jobCount();
    const noTty = await tips(['metal', 'reprovision', 'pi-07']);
    expect(noTty.code).toBe(2);
    expect(noTty.stderr).toBe('error: confirmation_needed: not a terminal: pass --yes to reprovision without asking\n');
    const declined = await onTerminal(['metal', 'reprovision', 'pi-07'], 'n');
    expect(declined.output).toContain('Reprovision metal pi-07?');
    expect(declined.code).toBe(1);
    expect(await jobCount()).toBe(before);

    const accepted = await onTerminal(['metal', 'reprovision', 'pi-07'], 'y');
    expect(accepted.code, accepted.output).toBe(0);
    expect(accepted.output).toMatch(/created Phase 1 job p1j_[0-9a-z]{26} for pi-07: queued, engine builtin/);
    expect(await jobCount()).toBe(before + 1);

    const busy = await tips(['metal', 'reprovision', 'pi-07', '--yes']);
    expect(busy.code).toBe(5);
    expect(busy.stderr).toContain('job_running');
    const forced = await tips(['metal', 'reprovision', 'pi-07', '--yes', '--force', '--json']);
    expect(forced.code, forced.stderr).toBe(0);
    const job = JSON.parse(forced.stdout);
    expect(job).toMatchObject({ state: 'queued', engine: 'builtin', glaze: { name: 'base-image', sequence: 7 } });
    const jsonl = (await tips(['provisioning', 'jobs', '--metal', 'pi-07', '--jsonl'])).stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(jsonl[0].id).toBe(job.id);
    expect(jsonl[1]).toMatchObject({ state: 'failed', reason: 'superseded' });
    const installed = await bootAndReport('installed');
    expect(installed).toBe(job.id);
    expect(JSON.parse((await tips(['provisioning', 'jobs', '--state', 'installed', '--json'])).stdout).map((j: { id: string }) => j.id)).toEqual([job.id]);
  });
});
