import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeCbor } from '@tips/suit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { type TestMaster, testMaster } from '../../testing.ts';
import type { Gateway } from '../gateways/model.ts';
import { TestGateway } from '../gateways/test-client.ts';
import type { ProvisioningError } from './errors.ts';
import { parseBase, parseReportPayload } from './service.ts';
import { installerKey, ok, PXE_MAC, parseBootingScript, provisionableMetal, signedGlaze } from './test-helpers.ts';

const BASE = 'http://10.77.0.1:8080';
const adapters: [string, () => string | undefined][] = [
  ['SQLite', () => undefined],
  ['PostgreSQL', () => inject('pgUrl')],
];
const code = (p: Promise<unknown>) => p.then(
  () => 'resolved',
  (e: ProvisioningError) => e.code,
);

let tinkerDir: string;
beforeAll(() => {
  tinkerDir = mkdtempSync(join(tmpdir(), 'tips-tinkerbell-test-'));
});
afterAll(() => rmSync(tinkerDir, { recursive: true, force: true }));

describe.each(adapters)('T13 Phase 1 provisioner on %s (service over the real store)', (_name, pgUrl) => {
  let m: TestMaster;
  let gateway: Gateway;
  beforeEach(async () => {
    m = await testMaster({ pgUrl: pgUrl(), tinkerbell: { dir: join(tinkerDir, String(Math.random()).slice(2)), glazeBase: BASE } });
    await provisionableMetal(m, m.alice.token, 'pi-07');
    await signedGlaze(m, m.alice.token, 'os-a', Buffer.from('image a'), ['base-os'], 3);
    await ok(m, m.alice.token, 'PATCH', '/api/v1/spaces/base-os', { glaze: 'os-a' });
    const gw = await TestGateway.enroll(m.app, m.alice.token, 'gw');
    gateway = (await m.services.gateways.get(m.alice.id, gw.id)) as Gateway;
  });
  afterEach(async () => m.close());

  const jobs = async () => m.services.provisioning.list(m.alice.id, {});

  it('makes exactly one job when a metal boots through several requests at once', async () => {
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => m.services.provisioning.bootScript(gateway, PXE_MAC, BASE)));
    expect(results.some((r) => r.status === 'fulfilled')).toBe(true);
    const all = await jobs();
    expect(all).toHaveLength(1);
    expect(all[0]!.state).toBe('booting');
  });

  it('lets exactly one of two racing installers claim a job; the loser gets job_claimed and no secret stays usable for it', async () => {
    const { token } = parseBootingScript((await m.services.provisioning.bootScript(gateway, PXE_MAC, BASE)).script);
    const [a, b] = [installerKey(), installerKey()];
    const outcomes = await Promise.all([a, b].map((k) => code(m.services.provisioning.work(gateway, { mac: PXE_MAC, token, installerKey: k.publicRaw }))));
    expect(outcomes.sort()).toEqual(['job_claimed', 'resolved']);
    const [job] = await jobs();
    expect(job!.state).toBe('installing');
    const secrets = await m.services.enrollment.listSecrets(m.alice.id);
    expect(secrets.filter((s) => s.revokedAt === null)).toHaveLength(1);
    expect(secrets.find((s) => s.revokedAt === null)!.id).toBe(job!.enrollmentSecretId);
  });

  it('emits provisioning.job.changed for every state a job reaches, for the domains that react (Phase 2 waits for installed)', async () => {
    const seen: string[] = [];
    m.services.events.on('provisioning.job.changed', (e) => {
      seen.push(`${e.state}${e.reason ? `:${e.reason}` : ''}`);
    });
    await ok(m, m.alice.token, 'PATCH', '/api/v1/spaces/base-os', { glaze: null });
    await m.services.provisioning.bootScript(gateway, PXE_MAC, BASE);
    await ok(m, m.alice.token, 'PATCH', '/api/v1/spaces/base-os', { glaze: 'os-a' });
    await m.services.provisioning.bootScript(gateway, PXE_MAC, BASE);
    await m.services.provisioning.reprovision(m.alice.id, 'pi-07', true);
    expect(seen).toEqual(['waiting_for_glaze:no_glaze', 'queued', 'booting', 'failed:superseded', 'queued']);
  });

  it('ends the open job of a deleted metal as failed (metal_deleted) and keeps it as history', async () => {
    await m.services.provisioning.bootScript(gateway, PXE_MAC, BASE);
    const del = await m.app.inject({ method: 'DELETE', url: '/api/v1/metals/pi-07', headers: m.auth(m.alice.token) });
    expect(del.statusCode).toBe(204);
    const [job] = await jobs();
    expect(job).toMatchObject({ state: 'failed', reason: 'metal_deleted', tokenHash: null });
  });

  it('ends an open job when the owner changes what it was made for: the default Space, or the PXE interface', async () => {
    await m.services.provisioning.bootScript(gateway, PXE_MAC, BASE);
    await ok(m, m.alice.token, 'POST', '/api/v1/spaces', { name: 'other-os', phase: 1 });
    await ok(m, m.alice.token, 'POST', '/api/v1/spaces/other-os/members', { metal: 'pi-07', interfaces: ['eth0'], default: true });
    const [first] = await jobs();
    expect(first).toMatchObject({ state: 'failed', reason: 'default_space_changed' });
    const second = await m.services.provisioning.reprovision(m.alice.id, 'pi-07');
    expect(second.state).toBe('waiting_for_glaze');
    await ok(m, m.alice.token, 'PATCH', '/api/v1/metals/pi-07', {
      interfaces: [
        { name: 'eth0', mac: '02:70:00:00:00:77', type: 'ethernet', pxe: true },
        { name: 'wlan0', mac: '02:70:00:00:00:02', type: 'wifi' },
      ],
    });
    expect((await m.services.provisioning.get(m.alice.id, second.id)).reason).toBe('interface_changed');
  });

  it('chooses the engine per metal: its own setting, else its default Space’s, else builtin (A5)', async () => {
    const metal = await m.services.metals.get(m.alice.id, 'pi-07');
    expect(await m.services.provisioning.engineOf(metal)).toBe('builtin');
    await ok(m, m.alice.token, 'PATCH', '/api/v1/spaces/base-os', { engine: 'tinkerbell' });
    expect(await m.services.provisioning.engineOf(await m.services.metals.get(m.alice.id, 'pi-07'))).toBe('tinkerbell');
    await ok(m, m.alice.token, 'PATCH', '/api/v1/metals/pi-07', { engine: 'builtin' });
    expect(await m.services.provisioning.engineOf(await m.services.metals.get(m.alice.id, 'pi-07'))).toBe('builtin');
    await ok(m, m.alice.token, 'PATCH', '/api/v1/metals/pi-07', { engine: null });
    expect(await m.services.provisioning.engineOf(await m.services.metals.get(m.alice.id, 'pi-07'))).toBe('tinkerbell');
    const bad = await m.app.inject({ method: 'PATCH', url: '/api/v1/metals/pi-07', headers: m.auth(m.alice.token), payload: { engine: 'foreman' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.field).toBe('engine');
    expect((await m.services.metals.get(m.alice.id, 'pi-07')).engine).toBeNull();
  });

  it('chooses the engine by the default Space’s rules on metal labels (first match), under the metal’s own setting; bad rules change nothing (A5)', async () => {
    const engineOf = async () => m.services.provisioning.engineOf(await m.services.metals.get(m.alice.id, 'pi-07'));
    const set = await ok(m, m.alice.token, 'PATCH', '/api/v1/spaces/base-os', { engineRules: [{ match: 'arch=arm64', engine: 'tinkerbell' }, { match: 'rack=r7', engine: 'builtin' }] });
    expect(set.json().engineRules).toEqual([
      { match: 'arch=arm64', engine: 'tinkerbell' },
      { match: 'rack=r7', engine: 'builtin' },
    ]);
    expect(await engineOf()).toBe('builtin');
    await ok(m, m.alice.token, 'PATCH', '/api/v1/metals/pi-07', { labels: { arch: 'arm64', rack: 'r7' } });
    expect(await engineOf()).toBe('tinkerbell');
    await ok(m, m.alice.token, 'PATCH', '/api/v1/metals/pi-07', { engine: 'builtin' });
    expect(await engineOf()).toBe('builtin');
    await ok(m, m.alice.token, 'PATCH', '/api/v1/metals/pi-07', { engine: null });
    for (const [rules, field] of [
      [[{ match: 'arch', engine: 'tinkerbell' }], 'engineRules[0].match'],
      [[{ match: 'arch=arm64', engine: 'foreman' }], 'engineRules[0].engine'],
      [[{ match: 'arch=arm64', engine: 'builtin' }, { match: 'arch=arm64', engine: 'tinkerbell' }], 'engineRules[1].match'],
      [[{ match: 'arch=arm64', engine: 'builtin', extra: 1 }], 'engineRules[0].extra'],
    ] as const) {
      const bad = await m.app.inject({ method: 'PATCH', url: '/api/v1/spaces/base-os', headers: m.auth(m.alice.token), payload: { engineRules: rules } });
      expect(bad.statusCode, JSON.stringify(rules)).toBe(400);
      expect(bad.json().error.field, JSON.stringify(rules)).toBe(field);
    }
    expect((await m.services.spaces.get(m.alice.id, 'base-os')).engineRules).toHaveLength(2);
    const { job } = await m.services.provisioning.bootScript(gateway, PXE_MAC, BASE);
    expect(job).toMatchObject({ engine: 'tinkerbell', state: 'booting' });
    await ok(m, m.alice.token, 'PATCH', '/api/v1/spaces/base-os', { engineRules: [] });
    expect(await engineOf()).toBe('builtin');
  });

  it('reads a tinkerbell job’s Workflow status back from the output dir: running → installing, success → installed; failed with the action’s message', async () => {
    await ok(m, m.alice.token, 'PATCH', '/api/v1/metals/pi-07', { engine: 'tinkerbell' });
    const { job } = await m.services.provisioning.bootScript(gateway, PXE_MAC, BASE);
    const dir = job!.detail!.replace(/^written to /, '').replace(/\/[^/]+$/, '');
    const status = (st: Record<string, unknown>) => writeFileSync(join(dir, `tips-${job!.id.replace('_', '-')}.status.json`), JSON.stringify({ apiVersion: 'tinkerbell.org/v1alpha1', kind: 'Workflow', status: st }));
    const state = async () => (await m.services.provisioning.get(m.alice.id, job!.id)).state;
    expect(await m.services.provisioning.syncEngineJobs()).toEqual({ moved: 0, errors: [] });
    expect(await state()).toBe('booting');
    status({ state: 'PENDING' });
    expect((await m.services.provisioning.syncEngineJobs()).moved).toBe(0);
    status({ state: 'RUNNING', currentState: { actionName: 'stream-glaze' } });
    expect((await m.services.provisioning.syncEngineJobs()).moved).toBe(1);
    expect(await m.services.provisioning.get(m.alice.id, job!.id)).toMatchObject({ state: 'installing', detail: 'action stream-glaze' });
    status({ state: 'PENDING' });
    await m.services.provisioning.syncEngineJobs();
    expect(await state(), 'never moved back').toBe('installing');
    status({ state: 'SUCCESS' });
    expect((await m.services.provisioning.syncEngineJobs()).moved).toBe(1);
    expect(await state()).toBe('installed');
    expect((await m.services.provisioning.get(m.alice.id, job!.id)).transitions.map((t) => t.state)).toEqual(['queued', 'booting', 'installing', 'installed']);

    const again = await m.services.provisioning.reprovision(m.alice.id, 'pi-07');
    writeFileSync(join(dir, `tips-${again.id.replace('_', '-')}.status.json`), JSON.stringify({ kind: 'Workflow', status: { state: 'STATE_FAILED', tasks: [{ name: 'tips-phase1', actions: [{ id: 'a1', name: 'stream-glaze', state: 'STATE_FAILED', message: 'disk /dev/sda not found' }] }] } }));
    await m.services.provisioning.syncEngineJobs();
    expect(await m.services.provisioning.get(m.alice.id, again.id)).toMatchObject({ state: 'failed', reason: 'workflow_failed', detail: 'action stream-glaze: disk /dev/sda not found' });

    const third = await m.services.provisioning.reprovision(m.alice.id, 'pi-07');
    writeFileSync(join(dir, `tips-${third.id.replace('_', '-')}.status.json`), '{ not json');
    const r = await m.services.provisioning.syncEngineJobs();
    expect(r.errors).toEqual([{ jobId: third.id, message: expect.stringContaining('not JSON') }]);
    expect((await m.services.provisioning.get(m.alice.id, third.id)).state).toBe('booting');
  });

  it('hands a tinkerbell metal to its engine: objects written durably, job booting, the boot script exits, the Glaze is served to its MAC', async () => {
    await ok(m, m.alice.token, 'PATCH', '/api/v1/metals/pi-07', { engine: 'tinkerbell' });
    const { script, job } = await m.services.provisioning.bootScript(gateway, PXE_MAC, BASE);
    expect(script).toBe(['#!ipxe', 'echo TIPS: this metal is provisioned by the tinkerbell engine; booting from disk', 'exit', ''].join('\n'));
    expect(job).toMatchObject({ state: 'booting', engine: 'tinkerbell' });
    const dir = job!.detail!.replace(/^written to /, '').replace(/\/[^/]+$/, '');
    const files = readdirSync(dir);
    expect(files).toEqual([`tips-${job!.id.replace('_', '-')}.json`]);
    const list = JSON.parse(readFileSync(join(dir, files[0]!), 'utf8'));
    expect(list.items.map((o: { kind: string }) => o.kind)).toEqual(['Hardware', 'Template', 'Workflow']);
    expect(JSON.parse(list.items[1].spec.data).tasks[0].actions[0].environment.IMG_URL).toBe(`${BASE}/phase1/jobs/${job!.id}/glaze`);
    const served = await m.services.provisioning.openGlaze(gateway, job!.id, PXE_MAC);
    const chunks: Buffer[] = [];
    for await (const c of served.stream) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('image a');
  });
});

describe('T13 A5 tinkerbell engine through kubectl', () => {
  let m: TestMaster;
  let dir: string;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tips-kubectl-test-'));
  });
  afterEach(async () => {
    await m.close();
    rmSync(dir, { recursive: true, force: true });
  });
  async function start(kubectlBody: string) {
    const kubectl = join(dir, 'kubectl');
    writeFileSync(kubectl, `#!/bin/sh\n${kubectlBody}\n`);
    chmodSync(kubectl, 0o755);
    m = await testMaster({ tinkerbell: { kubectl, glazeBase: BASE } });
    await provisionableMetal(m, m.alice.token, 'pi-07');
    await signedGlaze(m, m.alice.token, 'os-a', Buffer.from('image a'), ['base-os'], 3);
    await ok(m, m.alice.token, 'PATCH', '/api/v1/spaces/base-os', { glaze: 'os-a', engine: 'tinkerbell' });
  }

  it('pipes the List to `kubectl apply -f -` and records what kubectl said', async () => {
    await start(`[ "$1 $2 $3" = "apply -f -" ] || exit 9\ncat > "${dir}/applied.json"\necho "workflow.tinkerbell.org/x created"`);
    const job = await m.services.provisioning.reprovision(m.alice.id, 'pi-07');
    expect(job).toMatchObject({ state: 'booting', detail: expect.stringContaining('workflow.tinkerbell.org/x created') });
    expect(JSON.parse(readFileSync(join(dir, 'applied.json'), 'utf8')).kind).toBe('List');
  });

  it('reads the Workflow back with `kubectl get workflow <name> -n tink-system -o json` into the job state (timeout → failed workflow_timeout)', async () => {
    await start(
      [
        'if [ "$1" = apply ]; then cat >/dev/null; echo applied; exit 0; fi',
        `[ "$1 $2" = "get workflow" ] && [ "$4 $5 $6 $7" = "-n tink-system -o json" ] || exit 9`,
        `cat "${dir}/$3.json" 2>/dev/null || { echo 'Error from server (NotFound): workflows.tinkerbell.org "'$3'" not found' >&2; exit 1; }`,
      ].join('\n'),
    );
    const job = await m.services.provisioning.reprovision(m.alice.id, 'pi-07');
    expect(job.state).toBe('booting');
    expect(await m.services.provisioning.syncEngineJobs()).toEqual({ moved: 0, errors: [] });
    writeFileSync(join(dir, `tips-${job.id.replace('_', '-')}.json`), JSON.stringify({ kind: 'Workflow', status: { state: 'TIMEOUT', conditions: [{ type: 'Failed', status: 'True', reason: 'Timeout', message: 'global timeout 3600 s' }] } }));
    expect((await m.services.provisioning.syncEngineJobs()).moved).toBe(1);
    expect(await m.services.provisioning.get(m.alice.id, job.id)).toMatchObject({ state: 'failed', reason: 'workflow_timeout', detail: 'Timeout: global timeout 3600 s' });
  });

  it('fails the job (engine_failed, with kubectl’s error) when kubectl refuses', async () => {
    await start('cat >/dev/null\necho "error: no cluster" >&2\nexit 1');
    const job = await m.services.provisioning.reprovision(m.alice.id, 'pi-07');
    expect(job).toMatchObject({ state: 'failed', reason: 'engine_failed' });
    expect(job.detail).toContain('error: no cluster');
  });
});

describe('T13 S12 strict input of the Phase 1 gateway API', () => {
  it('takes only a plain http(s) boot base, so nothing can be injected into an iPXE script', () => {
    expect(parseBase('http://10.0.0.1:8080')).toBe('http://10.0.0.1:8080');
    expect(parseBase('http://10.0.0.1:8080/')).toBe('http://10.0.0.1:8080');
    expect(parseBase('http://[fd00::1]:8080/tips')).toBe('http://[fd00::1]:8080/tips');
    for (const bad of ['ftp://x', 'http://x:80\nshell', 'http://x:80 initrd http://evil', 'http://x/$(id)', 'http://x?y', 'http://x/%7Ba%7D', 'http://x#a', '']) {
      expect(() => parseBase(bad), bad).toThrow(/base/);
    }
  });

  const fields = (over: [string, unknown][] = [], drop?: string) =>
    new Map<string, unknown>(
      (
        [
          ['jobId', 'p1j_00000000000000000000000000'],
          ['result', 'failed'],
          ['reason', 'suit_rollback'],
          ['detail', null],
          ['glazeSha256', 'a'.repeat(64)],
          ['bytesWritten', 0],
          ['disk', '/dev/vda'],
          ['at', '2026-11-29T10:00:00Z'],
        ] as [string, unknown][]
      )
        .filter(([k]) => k !== drop)
        .map(([k, v]) => { const o = over.find(([name]) => name === k); return [k, o ? o[1] : v] as [string, unknown]; }),
    );
  const enc = (mp: Map<string, unknown>) => encodeCbor(mp as never);

  it('reads the A4 report map exactly: every field typed, no unknown one, a failed report names its reason', () => {
    expect(parseReportPayload(enc(fields()))).toMatchObject({ result: 'failed', reason: 'suit_rollback', bytesWritten: 0 });
    const refused = [
      enc(new Map([...fields(), ['extra', 1]])),
      enc(fields([['result', 'done']])),
      enc(fields([['reason', null]])),
      enc(fields([['bytesWritten', -1]])),
      enc(fields([['glazeSha256', 'A'.repeat(64)]])),
      enc(fields([['reason', 'Not A Code']])),
      enc(fields([], 'disk')),
      encodeCbor([1, 2] as never),
      new Uint8Array([...enc(fields()), 0]),
    ];
    for (const [i, bytes] of refused.entries()) expect(() => parseReportPayload(bytes), String(i)).toThrow();
  });
});
