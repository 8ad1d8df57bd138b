import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type S3TestServer, startS3Server, until } from '@tips/testbed';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RunningMaster, startMaster, TIPS } from './helpers.ts';

/**
 * T2 / T12: a real `tips-master` keeps its Glazes in an S3-compatible store (s3rver, started here):
 * pushed with the real CLI, read back through the API and through a pre-signed redirect (curl -L),
 * listed by Debian's awscli; an upload killed mid-way leaves no object and, after the restart, no
 * pending multipart upload.
 */
const BUCKET = 'tips-e2e';
const PREFIX = 'glazes';
const admin = `tips_${randomBytes(32).toString('base64url')}`;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
let s3: S3TestServer;
let dir: string;
const masters: RunningMaster[] = [];
const sockets: Socket[] = [];

const s3Env = () => ({ AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, TIPS_BOOTSTRAP_ADMIN_TOKEN: admin, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' });

async function start(extra: string[] = []): Promise<RunningMaster> {
  const m = await startMaster(
    ['--data-dir', join(dir, 'master'), '--log-level', 'info', '--blob-store', `s3://${BUCKET}/${PREFIX}`, '--s3-endpoint', s3.endpoint, '--s3-region', s3.region, '--mqtt-port', 'off', ...extra],
    s3Env(),
  );
  masters.push(m);
  return m;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env } });
    const out: Buffer[] = [];
    let stderr = '';
    p.stdout.on('data', (d) => out.push(d));
    p.stderr.on('data', (d) => {
      stderr += d;
    });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr }));
  });
}

const cli = (m: RunningMaster, args: string[]) => run(process.execPath, [TIPS, ...args], { TIPS_URL: m.url, TIPS_TOKEN: admin, TIPS_CONFIG: join(dir, 'no-cli-config.json') });

async function aws(args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)('/usr/bin/aws', [...args, '--endpoint-url', s3.endpoint], {
    env: { PATH: process.env.PATH, HOME: dir, ...s3Env(), AWS_DEFAULT_REGION: s3.region, AWS_PAGER: '' },
    encoding: 'utf8',
  });
  return stdout;
}

/** `aws s3 ls` of the Glaze prefix: [key, size] of every object. */
async function awsLs(): Promise<[string, number][]> {
  const out = (await aws(['s3', 'ls', `s3://${BUCKET}/${PREFIX}/`])).trim();
  if (out === '') return [];
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .map((c) => [c[3]!, Number(c[2])] as [string, number])
    .sort();
}

const logLines = (m: RunningMaster) =>
  m
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string; [k: string]: unknown });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tips-e2e-glaze-s3-'));
  s3 = await startS3Server({ buckets: [BUCKET] });
});
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const m of masters.splice(0)) await m.stop('SIGKILL');
});
afterAll(async () => {
  await s3?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('T2 T12 tips-master --blob-store s3: push, download, pre-signed redirect', () => {
  it('pushes a Glaze with the CLI into the bucket, streams it back through the API, and redirects to a pre-signed URL with --s3-presign', async () => {
    const image = randomBytes(9 * 2 ** 20 + 333);
    writeFileSync(join(dir, 'image.bin'), image);
    let m = await start();
    expect(m.output()).toContain(`Glazes in s3://${BUCKET}/${PREFIX}/ at ${s3.endpoint}`);
    const pushed = await cli(m, ['glaze', 'push', join(dir, 'image.bin'), '--name', 'web', '--media-type', 'application/x-tar', '--no-progress', '--json']);
    expect(pushed.stderr).toBe('');
    expect(pushed.code).toBe(0);
    const glaze = JSON.parse(pushed.stdout.toString()) as { id: string; sha256: string; size: number };
    expect(glaze).toMatchObject({ sha256: sha(image), size: image.length });
    // awscli sees exactly the one committed object, under the prefix, with the Glaze's ID as its name.
    expect(await awsLs()).toEqual([[glaze.id, image.length]]);
    expect(JSON.parse((await aws(['s3api', 'list-multipart-uploads', '--bucket', BUCKET, '--output', 'json'])) || '{}').Uploads ?? []).toEqual([]);
    await aws(['s3', 'cp', `s3://${BUCKET}/${PREFIX}/${glaze.id}`, join(dir, 'from-aws.bin')]);
    expect(sha(readFileSync(join(dir, 'from-aws.bin')))).toBe(sha(image));

    // Without presigning the master streams the bytes (whole and a range).
    const auth = { authorization: `Bearer ${admin}` };
    const whole = await fetch(`${m.url}/api/v1/glazes/web/content`, { headers: auth, redirect: 'manual' });
    expect(whole.status).toBe(200);
    expect(sha(new Uint8Array(await whole.arrayBuffer()))).toBe(sha(image));
    const part = await fetch(`${m.url}/api/v1/glazes/web/content`, { headers: { ...auth, range: 'bytes=8388600-8388700' }, redirect: 'manual' });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).equals(image.subarray(8_388_600, 8_388_701))).toBe(true);
    await m.stop();

    m = await start(['--s3-presign', '120']);
    const redirect = await fetch(`${m.url}/api/v1/glazes/web/content`, { headers: auth, redirect: 'manual' });
    expect(redirect.status).toBe(302);
    const location = new URL(redirect.headers.get('location')!);
    expect(`${location.origin}${location.pathname}`).toBe(`${s3.endpoint}/${BUCKET}/${PREFIX}/${glaze.id}`);
    expect(location.searchParams.get('X-Amz-Expires')).toBe('120');
    expect(location.searchParams.get('response-content-type')).toBe('application/x-tar');
    // The redirect is counted; no Glaze byte went through this master.
    const metrics = await (await fetch(`${m.url}/metrics`)).text();
    expect(metrics).toMatch(/tips_master_blob_operations_total\{store="s3",op="presign",result="ok"\} [1-9]/);
    expect(metrics).not.toMatch(/tips_master_blob_bytes_total\{store="s3",direction="out"\}/);
    // An unauthenticated caller is still refused by the master: the redirect is not a way around the API token.
    expect((await fetch(`${m.url}/api/v1/glazes/web/content`, { redirect: 'manual' })).status).toBe(401);

    // curl follows the redirect (dropping the Authorization header for the other origin) and gets the bytes from S3.
    const curl = await run('curl', ['-sS', '-L', '-H', `Authorization: Bearer ${admin}`, '-D', join(dir, 'headers.txt'), `${m.url}/api/v1/glazes/web/content`]);
    expect(curl.stderr).toBe('');
    expect(curl.code).toBe(0);
    expect(sha(curl.stdout)).toBe(sha(image));
    expect(readFileSync(join(dir, 'headers.txt'), 'utf8')).toMatch(/^HTTP\/1\.1 302[\s\S]*\r\nHTTP\/1\.1 200[\s\S]*content-type: application\/x-tar/i);
    const ranged = await run('curl', ['-sS', '-L', '-r', '100-199', '-H', `Authorization: Bearer ${admin}`, `${m.url}/api/v1/glazes/web/content`]);
    expect(ranged.stdout.equals(image.subarray(100, 200))).toBe(true);
    // The CLI follows it too.
    const pulled = await cli(m, ['glaze', 'pull', 'web', '-o', join(dir, 'pulled.bin'), '--no-progress']);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(sha(readFileSync(join(dir, 'pulled.bin')))).toBe(sha(image));
  });
});

describe('T2 T12 D4 an S3 upload killed mid-way leaves no object and, after the restart, no pending multipart upload', () => {
  const announce = (name: string, size: number) =>
    `POST /api/v1/glazes?name=${name} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${admin}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${size}\r\n\r\n`;

  /** Sends the head and the first `sent` bytes of a `size`-byte upload, then goes quiet. */
  function startUpload(m: RunningMaster, name: string, size: number, sent: number): Socket {
    const { hostname, port } = new URL(m.url);
    const s = connect(Number(port), hostname);
    s.on('error', () => undefined);
    sockets.push(s);
    s.write(announce(name, size));
    s.write(randomBytes(sent));
    return s;
  }

  it('a client that vanishes: the master aborts its multipart upload at once', async () => {
    const m = await start();
    const before = await awsLs();
    const s = startUpload(m, 'vanishing', 40 * 2 ** 20, 18 * 2 ** 20);
    await until('the multipart upload under way', async () => (await s3.pendingUploads(BUCKET)).length === 1, 60_000, 100);
    s.destroy();
    await until('the multipart upload aborted', async () => (await s3.pendingUploads(BUCKET)).length === 0, 60_000, 100);
    expect(await awsLs()).toEqual(before);
    await until('the abort logged', async () => logLines(m).some((l) => l.code === 'upload_aborted'), 20_000, 100);
    expect(logLines(m).filter((l) => l.level >= 50)).toEqual([]);
  });

  it('kill -9 mid-upload: no object; the pending upload is aborted by the reconciliation of the next start', async () => {
    let m = await start();
    const before = await awsLs();
    startUpload(m, 'killed', 40 * 2 ** 20, 18 * 2 ** 20);
    await until('the multipart upload under way', async () => (await s3.pendingUploads(BUCKET)).length === 1, 60_000, 100);
    m.proc.kill('SIGKILL');
    await once(m.proc, 'exit');
    const [pending] = await s3.pendingUploads(BUCKET);
    expect(pending!.key).toMatch(new RegExp(`^${PREFIX}/glz_\\w+$`));
    const listed = JSON.parse(await aws(['s3api', 'list-multipart-uploads', '--bucket', BUCKET, '--output', 'json'])) as { Uploads: { Key: string; UploadId: string }[] };
    expect(listed.Uploads.map((u) => [u.Key, u.UploadId])).toEqual([[pending!.key, pending!.uploadId]]);
    // No object, whole or partial, became visible.
    expect(await awsLs()).toEqual(before);

    // A restart within the grace period spares it (it could be another replica's live upload)…
    m = await start();
    expect(await s3.pendingUploads(BUCKET)).toHaveLength(1);
    await m.stop();
    // …and the restart an hour later aborts it. s3rver dates an upload by its `key` file's mtime.
    const hourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(join(s3.dir, BUCKET, '._S3rver_uploads', pending!.uploadId, 'key'), hourAgo, hourAgo);
    m = await start();
    expect(await s3.pendingUploads(BUCKET)).toEqual([]);
    expect(await aws(['s3api', 'list-multipart-uploads', '--bucket', BUCKET, '--output', 'json'])).toBe('');
    const logged = logLines(m).find((l) => l.reconciled === 'partial');
    expect(logged?.removed).toEqual([expect.objectContaining({ key: `${pending!.key.slice(PREFIX.length + 1)}.${pending!.uploadId}`, modifiedAt: hourAgo.toISOString() })]);
    expect(await awsLs()).toEqual(before);
    // The name is free: nothing half-exists.
    const retry = await fetch(`${m.url}/api/v1/glazes?name=killed`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/octet-stream' },
      body: new Uint8Array(randomBytes(1000)),
    });
    expect(retry.status).toBe(201);
  });
});
