/**
 * bench/s3-download: a Glaze downloaded through the master's pre-signed redirect vs read from the
 * S3 server directly (issue 13 goal: ≥ 0.9×), same client, same object, same run.
 *
 *   node --import tsx bench/s3-download.ts     # TIPS_BENCH_MIB (default 64), TIPS_BENCH_ROUNDS (5)
 *
 * s3rver (npm, as in the tests) holds the bucket; a real tips-master runs with
 * `--blob-store s3://… --s3-presign 120`; the real CLI pushes the Glaze. Each round, alternating:
 *   - via master: `curl -L` GET /api/v1/glazes/<id>/content with the owner token — the master answers
 *     302 to a pre-signed URL it made, curl follows it (dropping the Authorization header);
 *   - direct: `curl` GET of a pre-signed URL made by Debian's awscli (`aws s3 presign`), an
 *     independent signer, for the same object.
 * Every download is checked by SHA-256. The ratio uses the median round of each.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startS3Server } from '@tips/testbed';
import { startMaster, TIPS } from '../e2e/helpers.ts';

const MIB = Number(process.env.TIPS_BENCH_MIB ?? 64);
const ROUNDS = Number(process.env.TIPS_BENCH_ROUNDS ?? 5);
const BUCKET = 'bench';

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => {
      stdout += d;
    });
    p.stderr.on('data', (d) => {
      stderr += d;
    });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** One curl download to a file; seconds and the SHA-256 of what arrived. */
async function curl(args: string[], out: string): Promise<{ s: number; sha: string }> {
  const t0 = performance.now();
  const r = await run('curl', ['-sS', '--fail', '-o', out, ...args]);
  const s = (performance.now() - t0) / 1000;
  if (r.code !== 0) throw new Error(`curl ${args.join(' ')} → ${r.code}: ${r.stderr}`);
  const { createReadStream } = await import('node:fs');
  const h = createHash('sha256');
  for await (const chunk of createReadStream(out)) h.update(chunk as Buffer);
  return { s, sha: h.digest('hex') };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tips-bench-s3-'));
  const s3 = await startS3Server({ buckets: [BUCKET] });
  const admin = `tips_${randomBytes(32).toString('base64url')}`;
  const s3Env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' };
  const master = await startMaster(
    ['--data-dir', join(dir, 'master'), '--blob-store', `s3://${BUCKET}/glazes`, '--s3-endpoint', s3.endpoint, '--s3-region', s3.region, '--s3-presign', '120', '--mqtt-port', 'off'],
    { ...s3Env, TIPS_BOOTSTRAP_ADMIN_TOKEN: admin },
  );
  try {
    const image = randomBytes(MIB * 2 ** 20);
    const want = createHash('sha256').update(image).digest('hex');
    writeFileSync(join(dir, 'image.bin'), image);
    const pushed = await run(process.execPath, [TIPS, 'glaze', 'push', join(dir, 'image.bin'), '--name', 'bench', '--no-progress', '--json'], {
      TIPS_URL: master.url,
      TIPS_TOKEN: admin,
      TIPS_CONFIG: join(dir, 'no-config.json'),
    });
    if (pushed.code !== 0) throw new Error(`glaze push: ${pushed.stderr}`);
    const glaze = JSON.parse(pushed.stdout) as { id: string };
    const presigned = await run('/usr/bin/aws', ['s3', 'presign', `s3://${BUCKET}/glazes/${glaze.id}`, '--expires-in', '3600', '--endpoint-url', s3.endpoint], {
      ...s3Env,
      HOME: dir,
      AWS_DEFAULT_REGION: s3.region,
      AWS_PAGER: '',
    });
    if (presigned.code !== 0) throw new Error(`aws s3 presign: ${presigned.stderr}`);
    const direct = presigned.stdout.trim();
    const viaMaster = `${master.url}/api/v1/glazes/${glaze.id}/content`;

    console.log(`s3-download: ${MIB} MiB Glaze, ${ROUNDS} rounds, node ${process.version}, ${cpus()[0]?.model} × ${cpus().length}, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    const times = { master: [] as number[], direct: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      const m = await curl(['-L', '-H', `Authorization: Bearer ${admin}`, viaMaster], join(dir, 'm.bin'));
      const d = await curl([direct], join(dir, 'd.bin'));
      if (m.sha !== want || d.sha !== want) throw new Error(`round ${round}: a download did not match the Glaze (master ${m.sha === want}, direct ${d.sha === want})`);
      times.master.push(m.s);
      times.direct.push(d.s);
      console.log(`  round ${round + 1}: via master ${(MIB / m.s).toFixed(0)} MiB/s (${(m.s * 1000).toFixed(0)} ms), direct ${(MIB / d.s).toFixed(0)} MiB/s (${(d.s * 1000).toFixed(0)} ms)`);
    }
    const mm = median(times.master);
    const md = median(times.direct);
    console.log(`median: via master (302 → pre-signed) ${(MIB / mm).toFixed(0)} MiB/s, direct (awscli pre-signed) ${(MIB / md).toFixed(0)} MiB/s`);
    console.log(`ratio via-master / direct: ${(md / mm).toFixed(2)}× (goal ≥ 0.9×)`);
  } finally {
    await master.stop();
    await s3.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
