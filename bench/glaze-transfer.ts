/**
 * bench/glaze-transfer: a 4 GiB Glaze streamed into a real master process and back out.
 *
 *   node --import tsx bench/glaze-transfer.ts            # 4 GiB (TIPS_BENCH_BYTES to change)
 *
 * Prints upload throughput and the master's peak RSS (VmHWM, the limit is 300 MiB), the
 * same bytes written by a raw node:fs + SHA-256 loop (the floor any upload path pays), and the
 * download throughput of the master against nginx serving the same blob file, in the same run.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { startMaster } from '../e2e/helpers.ts';

const TOTAL = Number(process.env.TIPS_BENCH_BYTES ?? 4 * 2 ** 30);
const CHUNK = 1 << 20;
const TOKEN = `tips_${randomBytes(32).toString('base64url')}`;

/** Pseudo-random bytes generated on the fly: nothing of this size is ever stored by the generator. */
function* chunks(): Generator<Buffer> {
  const base = randomBytes(CHUNK);
  for (let sent = 0, i = 0; sent < TOTAL; i++) {
    const n = Math.min(CHUNK, TOTAL - sent);
    // A fresh buffer per chunk: streams hold on to what they are given.
    const c = Buffer.allocUnsafe(n);
    base.copy(c, 0, 0, n);
    c.writeUInt32LE(i, 0);
    yield c;
    sent += n;
  }
}

function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

const mibps = (bytes: number, ms: number) => bytes / 2 ** 20 / (ms / 1000);

async function rawLoop(dir: string): Promise<number> {
  const t0 = performance.now();
  const hash = createHash('sha256');
  const fh = await open(join(dir, 'raw.bin'), 'w');
  for (const c of chunks()) {
    hash.update(c);
    await fh.write(c);
  }
  await fh.sync();
  await fh.close();
  hash.digest();
  const ms = performance.now() - t0;
  rmSync(join(dir, 'raw.bin'));
  return ms;
}

async function upload(url: string): Promise<{ ms: number; body: { id: string; sha256: string; size: number } }> {
  const hash = createHash('sha256');
  const t0 = performance.now();
  const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
    const req = request(`${url}/api/v1/glazes?name=bench`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream', 'content-length': TOTAL },
    });
    req.on('response', resolve);
    req.on('error', reject);
    pipeline(
      Readable.from(
        (function* () {
          for (const c of chunks()) {
            hash.update(c);
            yield c;
          }
        })(),
      ),
      req,
    ).catch(reject);
  });
  let text = '';
  for await (const d of res) text += d;
  const ms = performance.now() - t0;
  const body = JSON.parse(text);
  if (res.statusCode !== 201) throw new Error(`upload failed: ${text}`);
  if (body.sha256 !== hash.digest('hex')) throw new Error('digest mismatch');
  return { ms, body };
}

async function download(url: string, headers: Record<string, string> = {}): Promise<number> {
  const t0 = performance.now();
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    request(url, { headers }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`GET ${url}: ${res.statusCode}`));
      res.on('data', (d: Buffer) => {
        got += d.length;
      });
      res.on('end', resolve);
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
  if (got !== TOTAL) throw new Error(`downloaded ${got} of ${TOTAL}`);
  return performance.now() - t0;
}

function startNginx(dir: string, root: string): { port: number; proc: ChildProcess } {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off; worker_processes 1; user root; pid ${dir}/nginx.pid; error_log ${dir}/nginx.err;
events { worker_connections 64; }
http { access_log off; sendfile on; client_body_temp_path ${dir}/nct; proxy_temp_path ${dir}/npt;
  fastcgi_temp_path ${dir}/nft; uwsgi_temp_path ${dir}/nut; scgi_temp_path ${dir}/nst;
  server { listen 127.0.0.1:${port}; root ${root}; location / { } } }\n`,
  );
  const proc = spawn('nginx', ['-c', conf], { stdio: 'ignore' });
  return { port, proc };
}

const dir = mkdtempSync(join(tmpdir(), 'tips-bench-glaze-'));
const master = await startMaster(['--data-dir', join(dir, 'master'), '--log-level', 'warn'], { TIPS_BOOTSTRAP_ADMIN_TOKEN: TOKEN });
try {
  const pid = master.proc.pid!;
  const idleRss = peakRssMiB(pid);
  const up = await upload(master.url);
  const rssAfterUpload = peakRssMiB(pid);
  const raw = await rawLoop(dir);
  const downMaster = await download(`${master.url}/api/v1/glazes/${up.body.id}/content`, { authorization: `Bearer ${TOKEN}` });
  let nginxLine = 'nginx: not installed (apt-get install nginx-light) — no peer ratio';
  if (spawnSync('sh', ['-c', 'command -v nginx']).status === 0) {
    const ng = startNginx(dir, join(dir, 'master', 'glazes', 'blobs'));
    await new Promise((r) => setTimeout(r, 500));
    try {
      const downNginx = await download(`http://127.0.0.1:${ng.port}/${up.body.id}`);
      nginxLine = `download nginx (same file):   ${mibps(TOTAL, downNginx).toFixed(0)} MiB/s   → master/nginx = ${(downNginx / downMaster).toFixed(2)}`;
    } finally {
      ng.proc.kill();
    }
  }
  const peak = peakRssMiB(pid);
  console.log(`glaze-transfer: ${(TOTAL / 2 ** 30).toFixed(2)} GiB, node ${process.version}, ${(await import('node:os')).cpus().length} cores`);
  console.log(`upload to master:             ${mibps(TOTAL, up.ms).toFixed(0)} MiB/s (${(up.ms / 1000).toFixed(1)} s)`);
  console.log(`raw fs write + SHA-256 loop:  ${mibps(TOTAL, raw).toFixed(0)} MiB/s   → master/raw = ${(raw / up.ms).toFixed(2)}`);
  console.log(`download from master:         ${mibps(TOTAL, downMaster).toFixed(0)} MiB/s`);
  console.log(nginxLine);
  console.log(`master peak RSS: idle ${idleRss.toFixed(0)} MiB, after upload ${rssAfterUpload.toFixed(0)} MiB, after download ${peak.toFixed(0)} MiB (limit 300 MiB)`);
  if (peak >= 300) {
    console.log('FAIL: master peak RSS reached 300 MiB');
    process.exitCode = 1;
  }
} finally {
  await master.stop();
  rmSync(dir, { recursive: true, force: true });
}
