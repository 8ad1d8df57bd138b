import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from '@tips/testbed';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RunningMaster, startMaster } from './helpers.ts';

/**
 * T12 D4: the Glaze repository keeps nothing an interrupted upload leaves behind — a real
 * `tips-master` killed with SIGKILL between the blob's rename and its row's commit, and a real
 * socket that stalls mid-body.
 */
let dir: string;
const admin = `tips_${randomBytes(32).toString('base64url')}`;
const masters: RunningMaster[] = [];
const sockets: Socket[] = [];

const glazesDir = () => join(dir, 'master', 'glazes');
const ls = (sub: 'blobs' | 'tmp') => readdirSync(join(glazesDir(), sub)).sort();
const logLines = (m: RunningMaster) =>
  m
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string; [k: string]: unknown });

async function start(env: NodeJS.ProcessEnv = {}, args: string[] = []): Promise<RunningMaster> {
  const m = await startMaster(['--data-dir', join(dir, 'master'), '--log-level', 'info', ...args], { TIPS_BOOTSTRAP_ADMIN_TOKEN: admin, ...env });
  masters.push(m);
  return m;
}

function upload(m: RunningMaster, name: string, body: Buffer, signal?: AbortSignal): Promise<Response> {
  return fetch(`${m.url}/api/v1/glazes?name=${name}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/octet-stream' },
    body: new Uint8Array(body),
    signal,
  });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tips-e2e-glaze-durability-'));
});
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const m of masters.splice(0)) await m.stop('SIGKILL');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('T12 D4 a kill -9 between the blob and its row leaves no orphan after a restart', () => {
  it('removes the unreferenced blob on start, logs and counts it, and spares referenced, young blobs and live partial writes', async () => {
    const kept = randomBytes(256 * 1024);
    const lost = randomBytes(1024 * 1024);
    let m = await start();
    const ok = await upload(m, 'kept', kept);
    expect(ok.status).toBe(201);
    const keptId: string = (await ok.json()).id;
    await m.stop();

    // TIPS_TEST_CRASH_AT stops the master just after the rename (test-only; see test-crash-point.ts).
    m = await start({ TIPS_TEST_CRASH_AT: 'glaze-after-rename' });
    const hung = new AbortController();
    const pending = upload(m, 'lost', lost, hung.signal).catch(() => undefined);
    const point = await until('the crash point', async () => /TIPS_TEST_CRASH_POINT glaze-after-rename (glz_\w+)/.exec(m.output()) ?? undefined, 30_000, 50);
    const lostId = point[1]!;
    // At the crash point the blob is whole and in place, and no row names it.
    expect(statSync(join(glazesDir(), 'blobs', lostId)).size).toBe(lost.length);
    const listed = await (await fetch(`${m.url}/api/v1/glazes`, { headers: { authorization: `Bearer ${admin}` } })).json();
    expect(listed.items.map((g: { name: string }) => g.name)).toEqual(['kept']);
    m.proc.kill('SIGKILL');
    await once(m.proc, 'exit');
    expect(m.proc.signalCode).toBe('SIGKILL');
    hung.abort();
    await pending;
    expect(ls('blobs')).toEqual([keptId, lostId].sort());

    // The restart comes an hour later: past the grace period that protects a replica's in-flight upload.
    const hourAgo = new Date(Date.now() - 3_600_000);
    for (const id of [keptId, lostId]) utimesSync(join(glazesDir(), 'blobs', id), hourAgo, hourAgo);
    // What another replica sharing this directory is doing right now: a blob just placed whose row
    // is about to commit, and an upload in progress. And a dead upload's partial write.
    const youngId = 'glz_0000000000000000000000young';
    writeFileSync(join(glazesDir(), 'blobs', youngId), randomBytes(1000));
    writeFileSync(join(glazesDir(), 'tmp', 'glz_live.0a0b0c'), randomBytes(2000));
    writeFileSync(join(glazesDir(), 'tmp', 'glz_dead.0d0e0f'), randomBytes(3000));
    utimesSync(join(glazesDir(), 'tmp', 'glz_dead.0d0e0f'), hourAgo, hourAgo);

    m = await start();
    expect(ls('blobs')).toEqual([keptId, youngId].sort());
    expect(ls('tmp')).toEqual(['glz_live.0a0b0c']);
    const logged = logLines(m).find((l) => l.reconciled === 'blob');
    expect(logged?.removed).toEqual([{ key: lostId, bytes: lost.length, modifiedAt: hourAgo.toISOString() }]);
    expect(logged?.msg).toContain(lostId);
    expect(logLines(m).find((l) => l.reconciled === 'partial')?.removed).toEqual([expect.objectContaining({ key: 'glz_dead.0d0e0f', bytes: 3000 })]);
    const metrics = await (await fetch(`${m.url}/metrics`)).text();
    expect(metrics).toContain(`tips_master_glaze_reconciled_bytes_total{kind="blob"} ${lost.length}`);
    expect(metrics).toContain('tips_master_glaze_reconciled_bytes_total{kind="partial"} 3000');
    const content = await fetch(`${m.url}/api/v1/glazes/kept/content`, { headers: { authorization: `Bearer ${admin}` } });
    expect(Buffer.from(await content.arrayBuffer()).equals(kept)).toBe(true);
    // The name of the lost upload is free again: nothing half-exists.
    expect((await upload(m, 'lost', lost)).status).toBe(201);
  });
});

describe('T12 D4 a stalled or vanished upload is abandoned and leaves nothing behind', () => {
  const announce = (size: number) =>
    `POST /api/v1/glazes?name=stalled HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${admin}\r\n` + `Content-Type: application/octet-stream\r\nContent-Length: ${size}\r\n\r\n`;

  beforeAll(() => {
    for (const f of ls('tmp')) rmSync(join(glazesDir(), 'tmp', f));
  });

  it('closes an idle upload after --upload-idle-timeout, removes its partial write, and logs it at info', async () => {
    const m = await start({}, ['--upload-idle-timeout', '2']);
    const { hostname, port } = new URL(m.url);
    const s = connect(Number(port), hostname);
    sockets.push(s);
    let answer = '';
    s.on('data', (d) => {
      answer += d;
    });
    const closed = once(s, 'close');
    const stalledAt = Date.now();
    s.write(announce(1024 * 1024));
    s.write(randomBytes(64 * 1024));
    // The partial write exists while the client is silent…
    await until('the partial write', async () => ls('tmp').length === 1 && statSync(join(glazesDir(), 'tmp', ls('tmp')[0]!)).size === 64 * 1024, 10_000, 50);
    // …and the master closes the connection once the client has been silent for the timeout.
    await closed;
    expect(Date.now() - stalledAt).toBeGreaterThanOrEqual(2000);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(ls('tmp')).toEqual([]);
    expect(existsSync(join(glazesDir(), 'blobs'))).toBe(true);
    // The log line is written as the request ends; the master's stdout reaches us a moment later.
    await expect.poll(() => logLines(m), { timeout: 5_000 }).toContainEqual(expect.objectContaining({ level: 30, code: 'upload_idle_timeout' }));
    expect(logLines(m).filter((l) => l.level >= 50)).toEqual([]);
    const listed = await (await fetch(`${m.url}/api/v1/glazes`, { headers: { authorization: `Bearer ${admin}` } })).json();
    expect(listed.items.map((g: { name: string }) => g.name)).not.toContain('stalled');
  });

  it('logs a client that disconnects mid-upload at info, not as an unhandled error, and removes its partial write', async () => {
    const m = await start();
    const { hostname, port } = new URL(m.url);
    const s = connect(Number(port), hostname);
    sockets.push(s);
    s.write(announce(1024 * 1024));
    s.write(randomBytes(64 * 1024));
    await until('the partial write', async () => ls('tmp').length === 1, 10_000, 50);
    s.destroy();
    await until('the partial write removed', async () => ls('tmp').length === 0, 10_000, 50);
    await until('the abort logged', async () => logLines(m).some((l) => l.code === 'upload_aborted'), 10_000, 50);
    expect(logLines(m).filter((l) => l.level >= 50)).toEqual([]);
    expect(logLines(m)).toContainEqual(expect.objectContaining({ level: 30, code: 'upload_aborted' }));
  });
});
