import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeCsr } from '../../tls/testing.ts';
import { type TestMaster, testMaster } from '../../testing.ts';
import { TestGateway } from '../gateways/test-client.ts';
import { installerKey, ok, PXE_MAC, parseBootingScript, provisionableMetal, signedGlaze, signedReport, WIFI_MAC } from './test-helpers.ts';

let m: TestMaster;
let base: string;
let gw: TestGateway;
let bobGw: TestGateway;
const BOOT_BASE = 'http://10.77.0.1:8080';
const IMAGE_A = Buffer.from('A'.repeat(3000));
const IMAGE_B = Buffer.from('B'.repeat(5000));

/** A signed gateway request over real HTTP, exactly as TIPS-G's uplink makes it. */
async function gwCall(g: TestGateway, method: 'GET' | 'POST', path: string, body?: unknown, extra: Record<string, string> = {}) {
  const raw = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
  const contentType = Buffer.isBuffer(body) ? 'application/cose' : undefined;
  const headers = { ...g.headers(method, path, raw, { contentType }), ...extra };
  return fetch(base + path, { method, headers, body: raw && new Uint8Array(raw) });
}
const bootScript = (mac: string, g = gw) => gwCall(g, 'GET', `/api/gateway/v1/provisioning/boot-script?mac=${encodeURIComponent(mac)}&base=${encodeURIComponent(BOOT_BASE)}`);
const work = (body: Record<string, unknown>, g = gw) => gwCall(g, 'POST', '/api/gateway/v1/provisioning/work', body);
const glaze = (jobId: string, mac: string, headers: Record<string, string> = {}, g = gw) =>
  gwCall(g, 'GET', `/api/gateway/v1/provisioning/jobs/${jobId}/glaze?mac=${encodeURIComponent(mac)}`, undefined, headers);
const report = (jobId: string, mac: string, cose: Buffer, g = gw) => gwCall(g, 'POST', `/api/gateway/v1/provisioning/jobs/${jobId}/report?mac=${encodeURIComponent(mac)}`, cose);
const job = async (id: string) => (await ok(m, m.alice.token, 'GET', `/api/v1/provisioning/jobs/${id}`)).json();
const securityEvents = () => m.logs.filter((l) => l.includes('"event":"security"')).map((l) => JSON.parse(l).code as string);
const errorCode = async (r: Response) => ((await r.json()) as { error: { code: string } }).error.code;

let glazeA: { id: string; sha256: string };
beforeEach(async () => {
  m = await testMaster({ logs: true });
  await provisionableMetal(m, m.alice.token, 'pi-07');
  glazeA = await signedGlaze(m, m.alice.token, 'os-a', IMAGE_A, ['base-os'], 5);
  await ok(m, m.alice.token, 'PATCH', '/api/v1/spaces/base-os', { glaze: 'os-a' });
  gw = await TestGateway.enroll(m.app, m.alice.token, 'gw-lab');
  bobGw = await TestGateway.enroll(m.app, m.bob.token, 'gw-bob');
  await m.app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(m.app.server.address() as AddressInfo).port}`;
});
afterEach(async () => m.close());

describe('T13 Phase 1 boot script (CONTRACT A3 boot-script)', () => {
  it('answers the booting script with a per-job token, moving the new job queued → booting with the Glaze pinned', async () => {
    const r = await bootScript(PXE_MAC);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
    const script = await r.text();
    const { jobId, token } = parseBootingScript(script);
    expect(script).toBe(
      [
        '#!ipxe',
        `kernel ${BOOT_BASE}/boot/installer/vmlinuz console=tty0 console=ttyS0,115200 tips.boot=${BOOT_BASE} tips.job=${jobId} tips.token=${token}`,
        `initrd ${BOOT_BASE}/boot/installer/initrd.img`,
        'boot',
        '',
      ].join('\n'),
    );
    const j = await job(jobId);
    expect(j.state).toBe('booting');
    expect(j.transitions.map((t: { state: string }) => t.state)).toEqual(['queued', 'booting']);
    expect(j.glaze).toEqual({ id: glazeA.id, name: 'os-a', size: IMAGE_A.length, sha256: glazeA.sha256, sequence: 5 });
    // The token is stored only as its hash: nothing the API shows or the log says contains it.
    expect(JSON.stringify(await (await ok(m, m.alice.token, 'GET', `/api/v1/provisioning/jobs/${jobId}`)).json())).not.toContain(token);
    expect(m.logs.join('')).not.toContain(token);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('tips_master_phase1_jobs_total{state="booting"} 1');
    expect(metrics).toContain('tips_master_phase1_transitions_total{from="queued",to="booting",engine="builtin"} 1');
  });

  it('refuses a MAC no metal of the gateway owner boots from: unknown, non-PXE, or the owner is someone else (404, no job)', async () => {
    expect([await errorCode(await bootScript('02:70:00:00:00:99')), await errorCode(await bootScript(WIFI_MAC)), await errorCode(await bootScript(PXE_MAC, bobGw))]).toEqual([
      'unknown_metal',
      'unknown_metal',
      'unknown_metal',
    ]);
    expect((await ok(m, m.alice.token, 'GET', '/api/v1/provisioning/jobs')).json().items).toEqual([]);
  });

  it('refuses a metal without a default Space (409 no_default_space) and a base that could inject into the script (400)', async () => {
    await ok(m, m.alice.token, 'POST', '/api/v1/metals', { name: 'loose', interfaces: [{ name: 'eth0', mac: '02:70:00:00:00:10', type: 'ethernet', pxe: true }] });
    expect(await errorCode(await bootScript('02:70:00:00:00:10'))).toBe('no_default_space');
    const r = await gwCall(gw, 'GET', `/api/gateway/v1/provisioning/boot-script?mac=${PXE_MAC}&base=${encodeURIComponent('http://10.0.0.1:8080\nshell')}`);
    expect(r.status).toBe(400);
    expect((await ok(m, m.alice.token, 'GET', '/api/v1/provisioning/jobs')).json().items).toEqual([]);
  });

  it('T16 refuses a metal its owner blocked (403 metal_blocked, a security event) and serves it again once unblocked', async () => {
    const { token } = parseBootingScript(await (await bootScript(PXE_MAC)).text());
    await ok(m, m.alice.token, 'POST', '/api/v1/metals/pi-07/block', { reason: 'tamper' });
    const refused = await bootScript(PXE_MAC);
    expect(refused.status).toBe(403);
    expect(await errorCode(refused)).toBe('metal_blocked');
    expect((await work({ mac: PXE_MAC, token, installerKey: installerKey().publicRaw })).status).toBe(403);
    expect((await ok(m, m.alice.token, 'GET', '/api/v1/metals/pi-07')).json().phase1.state).toBe('booting');
    expect(securityEvents()).toEqual(['metal_blocked', 'metal_blocked']);
    await ok(m, m.alice.token, 'POST', '/api/v1/metals/pi-07/unblock');
    expect((await bootScript(PXE_MAC)).status).toBe(200);
  });

  it('a metal whose default Space has no Glaze waits (waiting_for_glaze, reason no_glaze) and boots once the Space gets one', async () => {
    await ok(m, m.alice.token, 'PATCH', '/api/v1/spaces/base-os', { glaze: null });
    const r = await bootScript(PXE_MAC);
    expect(await r.text()).toBe(['#!ipxe', 'echo TIPS: the default Space has no Glaze yet; waiting', 'sleep 30', `chain ${BOOT_BASE}/boot/script.ipxe`, ''].join('\n'));
    const [waiting] = (await ok(m, m.alice.token, 'GET', '/api/v1/provisioning/jobs?state=waiting_for_glaze')).json().items;
    expect(waiting).toMatchObject({ state: 'waiting_for_glaze', reason: 'no_glaze', glaze: null });
    await ok(m, m.alice.token, 'PATCH', '/api/v1/spaces/base-os', { glaze: 'os-a' });
    const { jobId } = parseBootingScript(await (await bootScript(PXE_MAC)).text());
    expect(jobId).toBe(waiting.id);
    expect((await job(jobId)).transitions.map((t: { state: string }) => t.state)).toEqual(['waiting_for_glaze', 'queued', 'booting']);
  });
});

describe('T13 Phase 1 work, Glaze and report (CONTRACT A3, A4)', () => {
  it('walks a metal to installed: work binds the key and returns a one-use enrollment secret, the pinned Glaze survives a Space change, the signed report ends the job', async () => {
    const { jobId, token } = parseBootingScript(await (await bootScript(PXE_MAC)).text());
    const inst = installerKey();
    const w = await work({ mac: PXE_MAC, token, installerKey: inst.publicRaw });
    expect(w.status).toBe(200);
    const body = await w.json();
    const metalId = (await ok(m, m.alice.token, 'GET', '/api/v1/metals/pi-07')).json().id;
    expect(body).toMatchObject({
      jobId,
      metal: { id: metalId, name: 'pi-07', tipsId: metalId },
      glaze: { id: glazeA.id, name: 'os-a', version: '5', size: IMAGE_A.length, sha256: glazeA.sha256 },
      minSequence: 0,
      vendorId: null,
      classId: null,
      glazePath: `/phase1/jobs/${jobId}/glaze`,
      reportPath: `/phase1/jobs/${jobId}/report`,
    });
    const manifest = (await ok(m, m.alice.token, 'GET', `/api/v1/glazes/${glazeA.id}/manifest`)).rawPayload;
    expect(Buffer.from(body.manifest, 'base64').equals(manifest)).toBe(true);
    expect(body.trustedKeys.map((k: { name: string }) => k.name)).toEqual(['op-key']);
    expect(body.enrollment.caPem).toContain('-----BEGIN CERTIFICATE-----');
    expect((await job(jobId)).state).toBe('installing');

    // The secret enrolls exactly this metal, once (enrollment domain, EST simpleenroll).
    const csr = await makeCsr({ uris: [`urn:tips:metal:${metalId}`] });
    const issued = await m.services.enrollment.enroll({ id: body.enrollment.secretId, secret: body.enrollment.secret }, csr.der);
    expect(issued.record.subject).toEqual({ kind: 'metal', id: metalId });
    await expect(m.services.enrollment.enroll({ id: body.enrollment.secretId, secret: body.enrollment.secret }, csr.der)).rejects.toThrow();

    // The owner points the Space at another Glaze meanwhile: the running job keeps its pinned image.
    await signedGlaze(m, m.alice.token, 'os-b', IMAGE_B, ['base-os'], 6);
    await ok(m, m.alice.token, 'PATCH', '/api/v1/spaces/base-os', { glaze: 'os-b' });
    const whole = await glaze(jobId, PXE_MAC);
    expect(whole.status).toBe(200);
    expect(Buffer.from(await whole.arrayBuffer()).equals(IMAGE_A)).toBe(true);
    expect(whole.headers.get('etag')).toBe(`"sha256:${glazeA.sha256}"`);
    const part = await glaze(jobId, PXE_MAC, { range: 'bytes=1000-1999' });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 1000-1999/${IMAGE_A.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(IMAGE_A.subarray(1000, 2000))).toBe(true);
    expect((await glaze(jobId, PXE_MAC, { range: 'bytes=5000-' })).status).toBe(416);

    const r = await report(jobId, PXE_MAC, signedReport(inst.key, { jobId, result: 'installed', glazeSha256: glazeA.sha256, bytesWritten: IMAGE_A.length }));
    expect(r.status).toBe(204);
    const done = await job(jobId);
    expect(done.state).toBe('installed');
    expect(done.transitions.map((t: { state: string }) => t.state)).toEqual(['queued', 'booting', 'installing', 'installed']);
    expect(done.report.payload).toMatchObject({ jobId, result: 'installed', bytesWritten: IMAGE_A.length, disk: '/dev/vda' });
    expect(createHash('sha256').update(Buffer.from(done.report.cose, 'base64')).digest('hex')).toBe(
      createHash('sha256').update(signedReport(inst.key, { jobId, result: 'installed', glazeSha256: glazeA.sha256, bytesWritten: IMAGE_A.length })).digest('hex'),
    );
    // Installed: the metal boots from its disk, and its Glaze is no longer served.
    expect(await (await bootScript(PXE_MAC)).text()).toBe(['#!ipxe', 'echo TIPS: installed (ok); booting from disk', 'exit', ''].join('\n'));
    expect(await errorCode(await glaze(jobId, PXE_MAC))).toBe('job_not_installing');
    expect((await ok(m, m.alice.token, 'GET', '/api/v1/metals/pi-07')).json().phase1).toMatchObject({ id: jobId, state: 'installed' });
  });

  it('refuses a wrong or voided token, another MAC and another installer key; none of them changes the job', async () => {
    const first = parseBootingScript(await (await bootScript(PXE_MAC)).text());
    const { jobId, token } = parseBootingScript(await (await bootScript(PXE_MAC)).text());
    expect(jobId).toBe(first.jobId);
    const inst = installerKey();
    const before = await job(jobId);
    const refusals = [
      await work({ mac: PXE_MAC, token: first.token, installerKey: inst.publicRaw }), // voided by the second script
      await work({ mac: PXE_MAC, token: token.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')), installerKey: inst.publicRaw }),
      await work({ mac: WIFI_MAC, token, installerKey: inst.publicRaw }),
      await work({ mac: PXE_MAC, token, installerKey: inst.publicRaw }, bobGw),
    ];
    expect(refusals.map((r) => r.status)).toEqual([401, 401, 401, 401]);
    expect(await job(jobId)).toEqual(before);
    expect((await ok(m, m.alice.token, 'GET', '/api/v1/enrollment/secrets')).json().items).toEqual([]);

    expect((await work({ mac: PXE_MAC, token, installerKey: inst.publicRaw })).status).toBe(200);
    const claimed = await job(jobId);
    const other = installerKey();
    const r = await work({ mac: PXE_MAC, token, installerKey: other.publicRaw });
    expect(r.status).toBe(409);
    expect(await errorCode(r)).toBe('job_claimed');
    expect(await job(jobId)).toEqual(claimed);
    // The installer that claimed it may claim again (restarted after a kill, same boot, same key):
    // a fresh one-use secret, the previous one revoked.
    const again = await work({ mac: PXE_MAC, token, installerKey: inst.publicRaw });
    expect(again.status).toBe(200);
    const secrets = (await ok(m, m.alice.token, 'GET', '/api/v1/enrollment/secrets')).json().items as { id: string; revokedAt: string | null }[];
    expect(secrets.filter((x) => x.revokedAt === null).map((x) => x.id)).toEqual([(await again.json()).enrollment.secretId]);
    expect(secrets).toHaveLength(2);
    // Bytes and reports only for the job's MAC and only from the owner's gateways.
    expect((await glaze(jobId, WIFI_MAC)).status).toBe(403);
    expect((await glaze(jobId, PXE_MAC, {}, bobGw)).status).toBe(404);
    expect(securityEvents()).toEqual(['phase1_token_invalid', 'phase1_token_invalid', 'phase1_token_invalid', 'phase1_token_invalid', 'job_claimed', 'wrong_mac']);
    expect(m.logs.join('')).not.toContain(token);
  });

  it('refuses a report not signed by the job installer key (401 report_invalid) and a malformed one (422); the job stays installing', async () => {
    const { jobId, token } = parseBootingScript(await (await bootScript(PXE_MAC)).text());
    const inst = installerKey();
    expect((await work({ mac: PXE_MAC, token, installerKey: inst.publicRaw })).status).toBe(200);
    const forged = await report(jobId, PXE_MAC, signedReport(installerKey().key, { jobId, result: 'installed', glazeSha256: glazeA.sha256 }));
    expect(forged.status).toBe(401);
    expect(await errorCode(forged)).toBe('report_invalid');
    const garbage = await report(jobId, PXE_MAC, Buffer.from('not cose'));
    expect(garbage.status).toBe(401);
    const extraField = await report(jobId, PXE_MAC, signedReport(inst.key, { jobId, result: 'installed', glazeSha256: glazeA.sha256 }, [['surprise', 1]]));
    expect(extraField.status).toBe(422);
    const otherJob = await report(jobId, PXE_MAC, signedReport(inst.key, { jobId: 'p1j_00000000000000000000000000', result: 'installed', glazeSha256: glazeA.sha256 }));
    expect(otherJob.status).toBe(422);
    const j = await job(jobId);
    expect(j.state).toBe('installing');
    expect(j.report).toBeNull();
  });

  it('ends the job failed (glaze_mismatch) when a validly signed report says it installed another digest than the pinned one', async () => {
    const { jobId, token } = parseBootingScript(await (await bootScript(PXE_MAC)).text());
    const inst = installerKey();
    await work({ mac: PXE_MAC, token, installerKey: inst.publicRaw });
    expect((await report(jobId, PXE_MAC, signedReport(inst.key, { jobId, result: 'installed', glazeSha256: 'f'.repeat(64) }))).status).toBe(204);
    expect(await job(jobId)).toMatchObject({ state: 'failed', reason: 'glaze_mismatch' });
  });

  it('records a refusal the installer reports (failed, with its reason), and reprovision makes a new job with minSequence from the last install', async () => {
    const { jobId, token } = parseBootingScript(await (await bootScript(PXE_MAC)).text());
    const inst = installerKey();
    await work({ mac: PXE_MAC, token, installerKey: inst.publicRaw });
    const r = await report(jobId, PXE_MAC, signedReport(inst.key, { jobId, result: 'failed', reason: 'suit_digest_mismatch', detail: 'payload digest differs', glazeSha256: glazeA.sha256 }));
    expect(r.status).toBe(204);
    expect(await job(jobId)).toMatchObject({ state: 'failed', reason: 'suit_digest_mismatch', detail: 'payload digest differs' });
    expect(await (await bootScript(PXE_MAC)).text()).toContain('echo TIPS: failed (suit_digest_mismatch); booting from disk');
    expect((await ok(m, m.alice.token, 'GET', '/api/v1/provisioning/jobs?state=failed')).json().items.map((j: { id: string }) => j.id)).toEqual([jobId]);

    const again = (await ok(m, m.alice.token, 'POST', '/api/v1/metals/pi-07/reprovision', {})).json();
    expect(again).toMatchObject({ state: 'queued', engine: 'builtin' });
    const busy = await m.app.inject({ method: 'POST', url: '/api/v1/metals/pi-07/reprovision', headers: m.auth(m.alice.token), payload: {} });
    expect(busy.statusCode).toBe(409);
    expect(busy.json().error.code).toBe('job_running');
    const second = parseBootingScript(await (await bootScript(PXE_MAC)).text());
    expect(second.jobId).toBe(again.id);
    const inst2 = installerKey();
    await work({ mac: PXE_MAC, token: second.token, installerKey: inst2.publicRaw });
    await report(second.jobId, PXE_MAC, signedReport(inst2.key, { jobId: second.jobId, result: 'installed', glazeSha256: glazeA.sha256 }));

    const forced = (await ok(m, m.alice.token, 'POST', '/api/v1/metals/pi-07/reprovision', { force: true })).json();
    const third = parseBootingScript(await (await bootScript(PXE_MAC)).text());
    expect(third.jobId).toBe(forced.id);
    expect((await (await work({ mac: PXE_MAC, token: third.token, installerKey: installerKey().publicRaw })).json()).minSequence).toBe(5);
    const replaced = (await ok(m, m.alice.token, 'POST', '/api/v1/metals/pi-07/reprovision', { force: true })).json();
    expect(await job(forced.id)).toMatchObject({ state: 'failed', reason: 'superseded' });
    const history = (await ok(m, m.alice.token, 'GET', '/api/v1/provisioning/jobs?metal=pi-07')).json().items.map((j: { id: string }) => j.id);
    expect(history).toEqual([replaced.id, forced.id, again.id, jobId]);
  });
});

describe('T13 A5 engines by label and the tinkerbell status, through the API', () => {
  let tm: TestMaster;
  let dir: string;
  // The file's afterEach closes `m`, which this test points at its own master.
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a rule arch=arm64 → tinkerbell gives the arm64 metal the tinkerbell engine (its script exits); its Workflow status moves the job to installed, shown by GET /provisioning/jobs/:job', async () => {
    await m.close(); // this test runs its own master, with a tinkerbell directory
    dir = mkdtempSync(join(tmpdir(), 'tips-tinkerbell-api-'));
    tm = await testMaster({ tinkerbell: { dir, glazeBase: BOOT_BASE } });
    m = tm;
    await provisionableMetal(tm, tm.alice.token, 'pi-07');
    await signedGlaze(tm, tm.alice.token, 'os-a', IMAGE_A, ['base-os'], 5);
    await ok(tm, tm.alice.token, 'PATCH', '/api/v1/spaces/base-os', { glaze: 'os-a', engineRules: [{ match: 'arch=arm64', engine: 'tinkerbell' }] });
    await ok(tm, tm.alice.token, 'PATCH', '/api/v1/metals/pi-07', { labels: { arch: 'arm64' } });
    expect((await ok(tm, tm.alice.token, 'GET', '/api/v1/spaces/base-os')).json().engineRules).toEqual([{ match: 'arch=arm64', engine: 'tinkerbell' }]);
    gw = await TestGateway.enroll(tm.app, tm.alice.token, 'gw-arm');
    await tm.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(tm.app.server.address() as AddressInfo).port}`;

    const r = await bootScript(PXE_MAC);
    expect(r.status).toBe(200);
    expect(await r.text()).toContain('provisioned by the tinkerbell engine');
    const [j] = (await ok(tm, tm.alice.token, 'GET', '/api/v1/provisioning/jobs?metal=pi-07')).json().items as { id: string; engine: string; state: string }[];
    expect(j).toMatchObject({ engine: 'tinkerbell', state: 'booting' });
    expect(readdirSync(dir)).toContain(`tips-${j!.id.replace('_', '-')}.json`);

    writeFileSync(join(dir, `tips-${j!.id.replace('_', '-')}.status.json`), JSON.stringify({ kind: 'Workflow', status: { state: 'SUCCESS' } }));
    expect((await tm.services.provisioning.syncEngineJobs()).moved).toBe(1);
    const after = (await ok(tm, tm.alice.token, 'GET', `/api/v1/provisioning/jobs/${j!.id}`)).json();
    expect(after).toMatchObject({ state: 'installed', engine: 'tinkerbell' });
    expect(after.transitions.map((t: { state: string }) => t.state)).toEqual(['queued', 'booting', 'installed']);
  });

  /** A master with a tinkerbell directory and this engine-sync interval, and pi-07's job booting on it. */
  async function tinkerbellJob(engineSyncMs: number) {
    await m.close();
    dir = mkdtempSync(join(tmpdir(), 'tips-tinkerbell-sync-'));
    tm = await testMaster({ tinkerbell: { dir, glazeBase: BOOT_BASE }, engineSyncMs });
    m = tm;
    await provisionableMetal(tm, tm.alice.token, 'pi-07');
    await signedGlaze(tm, tm.alice.token, 'os-a', IMAGE_A, ['base-os'], 5);
    await ok(tm, tm.alice.token, 'PATCH', '/api/v1/spaces/base-os', { glaze: 'os-a', engine: 'tinkerbell' });
    gw = await TestGateway.enroll(tm.app, tm.alice.token, 'gw-sync');
    await tm.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(tm.app.server.address() as AddressInfo).port}`;
    expect((await bootScript(PXE_MAC)).status).toBe(200);
    const state = async () => ((await ok(tm, tm.alice.token, 'GET', '/api/v1/provisioning/jobs?metal=pi-07')).json().items as { id: string; state: string }[])[0]!;
    const job = await state();
    expect(job.state).toBe('booting');
    const status = (s: string) => writeFileSync(join(dir, `tips-${job.id.replace('_', '-')}.status.json`), JSON.stringify({ kind: 'Workflow', status: { state: s } }));
    /** The job's state once it is `want`, or after ~10 s whatever it is. */
    const until = async (want: string) => {
      for (let i = 0; i < 200 && (await state()).state !== want; i++) await new Promise((r) => setTimeout(r, 50));
      return (await state()).state;
    };
    return { status, until, state };
  }

  it('the engine sync runs by itself every engineSyncMs (--engine-sync-interval): RUNNING then SUCCESS move the job, no call from the test', async () => {
    const { status, until } = await tinkerbellJob(100);
    status('RUNNING');
    expect(await until('installing')).toBe('installing');
    status('SUCCESS');
    expect(await until('installed')).toBe('installed');
  });

  it('engineSyncMs 0 (--engine-sync-interval 0) never reads the status back: the job stays booting', async () => {
    const { status, state } = await tinkerbellJob(0);
    status('SUCCESS');
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await state()).state).toBe('booting');
    // What the timer would have done, done by hand: the status was readable all along.
    expect((await tm.services.provisioning.syncEngineJobs()).moved).toBe(1);
  });
});
