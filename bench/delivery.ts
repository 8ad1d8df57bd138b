/**
 * bench/delivery: Phase 2 delivery from the master (issue 9 goal: ≥ 0.9× nginx serving the same
 * file, 64 concurrent downloads).
 *
 *   node --import tsx bench/delivery.ts     # TIPS_BENCH_MIB (default 32), TIPS_BENCH_CONCURRENCY (64), TIPS_BENCH_ROUNDS (3)
 *
 * A real tips-master (SQLite, its HTTPS listener), one metal enrolled by the real tips-client bundle,
 * a signed Glaze of incompressible bytes in the metal's Phase 2 Space. A generator in a child
 * process opens `CONCURRENCY` TLS connections at once, each with the metal's certificate (mTLS) and
 * its PoP token, and GETs the whole payload from `/api/metal/v1/glazes/<id>/blob` — the route a
 * metal downloads through. Peer in the same run: Debian's nginx (one worker, like the one master
 * process; TLS with the master's own server certificate and key, client certificate required against
 * the same CA) serving the same blob file from the master's data directory. Rounds alternate
 * master/nginx; the ratio uses the best round of each. Every download's byte count is checked.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

const MIB = Number(process.env.TIPS_BENCH_MIB ?? 32);
const CONCURRENCY = Number(process.env.TIPS_BENCH_CONCURRENCY ?? 64);
const ROUNDS = Number(process.env.TIPS_BENCH_ROUNDS ?? 3);

interface Plan {
  url: string;
  size: number;
  n: number;
  ca: string;
  cert: string;
  key: string;
  headers: Record<string, string>;
}

/** The generator: n concurrent downloads, each its own TLS connection; prints { ms }. */
async function generate(plan: Plan): Promise<void> {
  const t0 = performance.now();
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = request(plan.url, { ca: plan.ca, cert: plan.cert, key: plan.key, agent: false, servername: 'localhost', headers: plan.headers }, (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`GET ${plan.url} → ${res.statusCode}`));
          res.resume();
          return;
        }
        let got = 0;
        res.on('data', (d: Buffer) => {
          got += d.length;
        });
        res.on('end', () => (got === plan.size ? resolve() : reject(new Error(`got ${got} of ${plan.size} bytes`))));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  await Promise.all(Array.from({ length: plan.n }, one));
  process.stdout.write(`${JSON.stringify({ ms: performance.now() - t0 })}\n`);
}

if (process.env.TIPS_BENCH_PLAN) {
  await generate(JSON.parse(readFileSync(process.env.TIPS_BENCH_PLAN, 'utf8')) as Plan);
  process.exit(0);
}

const { startClientTestMaster, writeClientFiles } = await import('../e2e/client-master.ts');
const { ROOT, tips } = await import('../e2e/helpers.ts');

function runGenerator(planFile: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/delivery.ts')], { env: { ...process.env, TIPS_BENCH_PLAN: planFile }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('exit', (code) => (code === 0 ? resolve((JSON.parse(out.trim().split('\n').pop()!) as { ms: number }).ms) : reject(new Error(`generator exited ${code}: ${out}`))));
  });
}

/** user + system CPU seconds of a process and its children that are still running (nginx: its worker). */
function cpuSeconds(pid: number): number {
  const one = (p: number) => {
    try {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      return 0;
    }
  };
  let kids: number[] = [];
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // no children file
  }
  return one(pid) + kids.reduce((n, k) => n + one(k), 0);
}

function startNginx(dir: string, root: string, tls: { chain: string; key: string; clientCa: string }): { port: number; proc: ChildProcess } {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off; worker_processes 1; user root; pid ${dir}/nginx.pid; error_log ${dir}/nginx.err;
events { worker_connections 1024; }
http { access_log off; sendfile on; client_body_temp_path ${dir}/nct; proxy_temp_path ${dir}/npt;
  fastcgi_temp_path ${dir}/nft; uwsgi_temp_path ${dir}/nut; scgi_temp_path ${dir}/nst;
  server { listen 127.0.0.1:${port} ssl; ssl_certificate ${tls.chain}; ssl_certificate_key ${tls.key};
    ssl_client_certificate ${tls.clientCa}; ssl_verify_client on; ssl_verify_depth 3;
    root ${root}; location / { } } }\n`,
  );
  const proc = spawn('nginx', ['-c', conf], { stdio: 'ignore' });
  return { port, proc };
}

function httpsJson(url: string, tls: { ca: string; cert: string; key: string }, method = 'GET'): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, ca: tls.ca, cert: tls.cert, key: tls.key, agent: false, servername: 'localhost' }, (res) => {
      let t = '';
      res.on('data', (d) => {
        t += d;
      });
      res.on('end', () => (res.statusCode! < 300 ? resolve(JSON.parse(t)) : reject(new Error(`${url} → ${res.statusCode} ${t}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

if (spawnSync('sh', ['-c', 'command -v nginx']).status !== 0) {
  console.error('nginx is not installed (apt-get install nginx-light; scripts/debian.mjs lists it)');
  process.exit(1);
}
const work = mkdtempSync(join(tmpdir(), 'tips-bench-delivery-'));
const m = await startClientTestMaster(work, ['--log-level', 'warn']);
let nginx: ChildProcess | undefined;
try {
  const env = { TIPS_URL: m.master.url, TIPS_TOKEN: m.admin, TIPS_CONFIG: join(work, 'no-config.json') };
  const cli = (args: string[]) => {
    const r = tips(args, env);
    if (r.status !== 0) throw new Error(`tips ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  cli(['key', 'create', '--out', join(work, 'ops.pem'), '--register', 'ops', '--json']);
  const metal = cli(['metal', 'create', '--name', 'bench-1', '--iface', 'eth0=02:de:00:00:00:01,ethernet,pxe', '--json']);
  cli(['space', 'create', '--name', 'fleet', '--phase', '2', '--json']);
  cli(['space', 'add', 'fleet', 'bench-1', '--iface', 'eth0', '--json']);
  const payload = join(work, 'payload.bin');
  writeFileSync(payload, randomBytes(MIB * 1024 * 1024));
  const g = cli([
    'glaze', 'push', payload, '--name', 'bulk', '--version', '1.0', '--handler', 'archive', '--space', 'fleet',
    '--sign-key', join(work, 'ops.pem'), '--vendor-domain', 'acme.example', '--class', 'pi4', '--component', 'bulk', '--seq', '1', '--no-progress', '--json',
  ]) as { id: string; size: number };
  cli(['space', 'update', 'fleet', '--glaze', g.id, '--json']);
  const secret = cli(['enrollment', 'secret', 'create', '--metal', 'bench-1', '--json']);
  const state = join(work, 'state');
  const config = writeClientFiles(join(work, 'etc'), m, { id: metal.id }, { id: secret.id, secret: secret.secret }, state);
  const enrolled = spawnSync(process.execPath, [join(ROOT, 'apps/client/dist/tips-client.cjs'), 'enroll', '--config', config], { encoding: 'utf8' });
  if (enrolled.status !== 0) throw new Error(`tips-client enroll: ${enrolled.stderr}`);
  const id = join(state, 'identity', readlinkSync(join(state, 'identity', 'current')));
  const tls = { ca: readFileSync(m.caFile, 'utf8'), cert: readFileSync(join(id, 'cert.pem'), 'utf8'), key: readFileSync(join(id, 'key.pem'), 'utf8') };

  const caDir = join(work, 'master-ca');
  const serverPem = readFileSync(join(caDir, 'server.pem'), 'utf8');
  const chain = join(work, 'nginx-chain.pem');
  const interPem = readFileSync(join(caDir, 'intermediate.pem'), 'utf8');
  writeFileSync(chain, serverPem.includes(interPem.trim()) ? serverPem : `${serverPem.trim()}\n${interPem}`);
  const clientCa = join(work, 'nginx-client-ca.pem');
  writeFileSync(clientCa, `${readFileSync(m.caFile, 'utf8').trim()}\n${interPem}`);
  mkdirSync(join(work, 'nginx'));
  const ng = startNginx(join(work, 'nginx'), join(work, 'data', 'glazes', 'blobs'), { chain, key: join(caDir, 'server-key.pem'), clientCa });
  nginx = ng.proc;
  await new Promise((r) => setTimeout(r, 700));

  const plans = {
    master: { url: `${m.httpsUrl}/api/metal/v1/glazes/${g.id}/blob`, headers: { authorization: '' } as Record<string, string> },
    nginx: { url: `https://localhost:${ng.port}/${g.id}`, headers: {} as Record<string, string> },
  };
  const times: Record<'master' | 'nginx', number[]> = { master: [], nginx: [] };
  const cpu: Record<'master' | 'nginx', number[]> = { master: [], nginx: [] };
  const pids = { master: m.master.proc.pid!, nginx: ng.proc.pid! };
  for (let round = 0; round < ROUNDS; round++) {
    for (const who of ['master', 'nginx'] as const) {
      const file = join(work, `plan-${who}.json`);
      // A fresh token each master round: a round can outlast the re-authentication period (120 s) on a loaded machine.
      if (who === 'master') plans.master.headers.authorization = `PoP ${(await httpsJson(`${m.httpsUrl}/api/metal/v1/tokens/issue`, tls, 'POST')).cwt as string}`;
      writeFileSync(file, JSON.stringify({ ...plans[who], size: g.size, n: CONCURRENCY, ...tls } satisfies Plan));
      const c0 = cpuSeconds(pids[who]);
      const ms = await runGenerator(file);
      const c = cpuSeconds(pids[who]) - c0;
      times[who].push(ms);
      cpu[who].push(c);
      console.log(`${who.padEnd(6)} round ${round + 1}: ${(ms / 1000).toFixed(2)} s, ${((CONCURRENCY * g.size) / 2 ** 20 / (ms / 1000)).toFixed(0)} MiB/s, server CPU ${c.toFixed(2)} s (${(((CONCURRENCY * g.size) / 2 ** 20) / Math.max(c, 0.01)).toFixed(0)} MiB per CPU-second)`);
    }
  }
  const best = (xs: number[]) => Math.min(...xs);
  const ratio = best(times.nginx) / best(times.master);
  const total = (CONCURRENCY * g.size) / 2 ** 20;
  console.log(`delivery: ${CONCURRENCY} concurrent downloads of a ${MIB} MiB Glaze (${total.toFixed(0)} MiB a round) over TLS with client certificates; node ${process.version}; ${cpus().length} × ${cpus()[0]?.model}; load average ${loadavg()[0]!.toFixed(1)}`);
  console.log(`master /api/metal/v1/glazes/:id/blob (best of ${ROUNDS}): ${(best(times.master) / 1000).toFixed(2)} s = ${(total / (best(times.master) / 1000)).toFixed(0)} MiB/s   [${times.master.map((t) => (t / 1000).toFixed(2)).join(', ')}]`);
  console.log(`nginx, same file, same TLS     (best of ${ROUNDS}): ${(best(times.nginx) / 1000).toFixed(2)} s = ${(total / (best(times.nginx) / 1000)).toFixed(0)} MiB/s   [${times.nginx.map((t) => (t / 1000).toFixed(2)).join(', ')}]`);
  console.log(`master/nginx throughput = ${ratio.toFixed(3)} (goal ≥ 0.9: ${ratio >= 0.9 ? 'met' : 'NOT met'})`);
  const perCpu = (who: 'master' | 'nginx') => total / best(cpu[who]);
  console.log(`server CPU per round (best): master ${best(cpu.master).toFixed(2)} s, nginx ${best(cpu.nginx).toFixed(2)} s → MiB per CPU-second master ${perCpu('master').toFixed(0)}, nginx ${perCpu('nginx').toFixed(0)}, ratio ${(perCpu('master') / perCpu('nginx')).toFixed(2)}`);
} finally {
  nginx?.kill();
  await m.master.stop();
  rmSync(work, { recursive: true, force: true });
}
