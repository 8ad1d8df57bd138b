/**
 * bench/coap-blockwise (issue 12): block-wise download (Block2, 1024-byte blocks) of a 1 MiB payload over
 * DTLS-PSK by Debian's `coap-client-openssl`, from the TIPS master (`GET /glazes/{id}/blob` on its CoAP port,
 * @tips/coap over @tips/dtls, the metal's PSK) against libcoap's own `coap-server-openssl` serving the same
 * bytes (PUT into a dynamic resource first), same client, same key, alternating rounds in one run.
 * Goal: TIPS ≥ 0.8 × libcoap.
 *
 *   npm run build && node --import tsx bench/coap-blockwise.ts     # TIPS_BENCH_ROUNDS (default 7)
 *   TIPS_BENCH_PROFILE=/tmp/prof …                                 # also a CPU profile of the master there
 *
 * The master and the stack use @tips/dtls's native socket (packages/dtls/native: continuation blocks answered in
 * C) when it is built; the stack is also run on node:dgram (TIPS_DTLS_NATIVE=0, every block in JS) beside it.
 *
 * Reports the median wall-clock time of a whole `coap-client-openssl` run (process start, DTLS handshake,
 * 1024 request/response round trips, digest checked after each run) and the server CPU time per download
 * (user + system from /proc, so the figure holds on a loaded machine).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const TIPS = join(ROOT, 'apps/cli/bin/tips.js');
const ROUNDS = Number(process.env.TIPS_BENCH_ROUNDS ?? 7);
const SIZE = 1 << 20;
const work = mkdtempSync(join(tmpdir(), 'tips-bench-coap-'));
const children: ChildProcess[] = [];

function cleanup() {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanup);

function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): { proc: ChildProcess; out: () => string } {
  const proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], cwd });
  children.push(proc);
  let out = '';
  proc.stdout?.on('data', (d) => (out += d));
  proc.stderr?.on('data', (d) => (out += d));
  return { proc, out: () => out };
}

async function until(what: string, f: () => boolean, ms = 60_000) {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** CPU seconds (user + system) a process has used so far. */
function cpuOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** libcoap 4.3.1 takes -k as the key's raw bytes (no hex form): pass them through bash's printf. */
const rawKeyArg = (key: Buffer) => `"$(printf '${[...key].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('')}')"`;

function coapClient(args: string, key: Buffer): void {
  const r = spawnSync('bash', ['-c', `exec coap-client-openssl -k ${rawKeyArg(key)} ${args}`], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`coap-client-openssl ${args} → ${r.status}: ${r.stderr}`);
}

const ADMIN = `tips_${randomBytes(24).toString('base64url')}`;
function cli(env: NodeJS.ProcessEnv, args: string[]) {
  const r = spawnSync(process.execPath, [TIPS, ...args, '--json'], { env: { ...process.env, ...env }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tips ${args.join(' ')} → ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const payload = randomBytes(SIZE);
const digest = createHash('sha256').update(payload).digest('hex');
writeFileSync(join(work, 'payload.bin'), payload);

/** A TIPS master (`root`'s build) with its CoAP port, a metal with a PSK, a 1 MiB Glaze on the metal's Space. */
async function tipsMaster(root: string, name: string, profileDir?: string) {
  const profile = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const master = start(process.execPath, [...profile, join(root, 'apps/master/bin/tips-master.js'), '--port', '0', '--tls-port', 'off', '--mqtt-port', 'off', '--coap-port', '0', '--data-dir', join(work, `data-${name}`), '--log-level', 'warn'], {
    TIPS_BOOTSTRAP_ADMIN_TOKEN: ADMIN,
  });
  await until(`the master (${name})`, () => /^TIPS master ready$/m.test(master.out()));
  const env = { TIPS_TOKEN: ADMIN, TIPS_CONFIG: join(work, 'no-config.json'), TIPS_URL: /listening on (\S+)/.exec(master.out())?.[1] } as NodeJS.ProcessEnv;
  const coapPort = Number(/CoAP listening on coaps:\/\/[^\s]*:(\d+)/.exec(master.out())?.[1]);
  if (!coapPort) throw new Error(`no CoAP port in the master's output:\n${master.out()}`);
  cli(env, ['metal', 'create', '--name', 'sensor-1', '--iface', 'eth0=02:be:00:00:00:01,ethernet']);
  cli(env, ['space', 'create', '--name', 'sensors', '--phase', '2']);
  cli(env, ['space', 'add', 'sensors', 'sensor-1', '--iface', 'eth0']);
  const glaze = cli(env, ['glaze', 'push', join(work, 'payload.bin'), '--name', 'fw', '--version', '1', '--space', 'sensors', '--no-progress']);
  cli(env, ['space', 'set', 'sensors', '--glaze', glaze.id]);
  let psk = cli(env, ['metal', 'psk', 'issue', 'sensor-1']);
  // A key with a zero byte cannot be passed on coap-client's command line (a C string): issue another.
  while (Buffer.from(psk.key, 'hex').includes(0)) psk = cli(env, ['metal', 'psk', 'issue', 'sensor-1']);
  return { proc: master.proc, url: `coaps://127.0.0.1:${coapPort}/glazes/${glaze.id}/blob`, identity: psk.identity as string, key: Buffer.from(psk.key, 'hex'), hexKey: psk.key as string };
}

const master = await tipsMaster(ROOT, 'tips', process.env.TIPS_BENCH_PROFILE);
// Before/after in one run: TIPS_BENCH_BASE=<a checkout of the base commit with `npm run build` done>.
const base = process.env.TIPS_BENCH_BASE ? await tipsMaster(process.env.TIPS_BENCH_BASE, 'base') : undefined;
const psk = { identity: master.identity, key: master.hexKey };
const key = master.key;

// libcoap's own server with the same key, serving the same bytes from a dynamic resource.
const lcPort = 20000 + Math.floor(Math.random() * 20000);
const libcoap = start('bash', ['-c', `exec coap-server-openssl -A 127.0.0.1 -p ${lcPort} -k ${rawKeyArg(key)} -d 4 -v 0`]);
await new Promise((r) => setTimeout(r, 500));
coapClient(`-m put -b 1024 -f ${join(work, 'payload.bin')} -u ${psk.identity} coaps://127.0.0.1:${lcPort + 1}/blob`, key);

// The DTLS + CoAP stack alone (no database, blob store or per-request authentication): where the time goes.
async function stackServer(root: string, env: NodeJS.ProcessEnv = {}) {
  const stack = start(process.execPath, ['--import', 'tsx', join(root, 'bench/coap-stack-server.ts'), '0', join(work, 'payload.bin'), psk.identity, psk.key], env, root);
  await until('the stack server', () => /listening \d+/.test(stack.out()));
  return { proc: stack.proc, port: Number(/listening (\d+)/.exec(stack.out())?.[1]) };
}
const stack = await stackServer(ROOT);
// The same stack on node:dgram with every block answered in JS (TIPS_DTLS_NATIVE=0): the native fast path's share.
const stackJs = await stackServer(ROOT, { TIPS_DTLS_NATIVE: '0' });
// With TIPS_BENCH_BASE, the base's stack too (its own packages, resolved from its checkout), alternated with ours.
const stackBase = process.env.TIPS_BENCH_BASE ? await stackServer(process.env.TIPS_BENCH_BASE) : undefined;

type Side = { url: string; pid: number; identity: string; key: Buffer; ms: number[]; cpu: number[] };
const sides: Record<string, Side> = {
  ...(base ? { base: { url: base.url, pid: base.proc.pid as number, identity: base.identity, key: base.key, ms: [], cpu: [] } } : {}),
  tips: { url: master.url, pid: master.proc.pid as number, identity: master.identity, key, ms: [] as number[], cpu: [] as number[] },
  libcoap: { url: `coaps://127.0.0.1:${lcPort + 1}/blob`, pid: libcoap.proc.pid as number, identity: psk.identity, key, ms: [] as number[], cpu: [] as number[] },
  stack: { url: `coaps://127.0.0.1:${stack.port}/blob`, pid: stack.proc.pid as number, identity: psk.identity, key, ms: [] as number[], cpu: [] as number[] },
  stackJs: { url: `coaps://127.0.0.1:${stackJs.port}/blob`, pid: stackJs.proc.pid as number, identity: psk.identity, key, ms: [] as number[], cpu: [] as number[] },
  ...(stackBase ? { stackBase: { url: `coaps://127.0.0.1:${stackBase.port}/blob`, pid: stackBase.proc.pid as number, identity: psk.identity, key, ms: [], cpu: [] } } : {}),
};
const out = join(work, 'out.bin');
for (let round = -1; round < ROUNDS; round++) {
  for (const [name, side] of Object.entries(sides)) {
    rmSync(out, { force: true });
    const cpu0 = cpuOf(side.pid);
    const t = performance.now();
    coapClient(`-b 1024 -o ${out} -u ${side.identity} ${side.url}`, side.key);
    const ms = performance.now() - t;
    const cpu = cpuOf(side.pid) - cpu0;
    const got = createHash('sha256').update(readFileSync(out)).digest('hex');
    if (got !== digest) throw new Error(`${name}: digest ${got}, expected ${digest}`);
    if (round >= 0) {
      side.ms.push(ms);
      side.cpu.push(cpu);
    }
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const t = median(sides.tips!.ms);
const l = median(sides.libcoap!.ms);
const tc = median(sides.tips!.cpu);
const lc = median(sides.libcoap!.cpu);
const BLOCKS = SIZE / 1024;
console.log(`CPU: ${cpus()[0]?.model} × ${cpus().length}, Node ${process.version}, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
console.log(`1 MiB block-wise (1024-byte blocks) over DTLS-PSK (TLS_PSK_WITH_AES_128_CCM_8) by coap-client-openssl, ${ROUNDS} rounds each, medians:`);
console.log(`  libcoap coap-server-openssl: ${l.toFixed(0)} ms (${((SIZE / 1024 / l) * 1000).toFixed(0)} KiB/s), server CPU ${(lc * 1000).toFixed(0)} ms`);
console.log(`  TIPS master:                 ${t.toFixed(0)} ms (${((SIZE / 1024 / t) * 1000).toFixed(0)} KiB/s), server CPU ${(tc * 1000).toFixed(0)} ms`);
console.log(`  ratio (TIPS throughput / libcoap): ${(l / t).toFixed(2)}  (goal ≥ 0.8)`);
console.log(`  server CPU per block: libcoap ${((lc / BLOCKS) * 1e6).toFixed(0)} µs, TIPS ${((tc / BLOCKS) * 1e6).toFixed(0)} µs`);
if (sides.base) {
  const b = median(sides.base.ms);
  const bc = median(sides.base.cpu);
  console.log(`  base (TIPS_BENCH_BASE, alternated with the above): ${b.toFixed(0)} ms, server CPU ${(bc * 1000).toFixed(0)} ms (${((bc / BLOCKS) * 1e6).toFixed(0)} µs a block), ratio ${(l / b).toFixed(2)}`);
}
const s = median(sides.stack!.ms);
console.log(`  @tips/dtls + @tips/coap alone (memory, no auth): ${s.toFixed(0)} ms, server CPU ${(median(sides.stack!.cpu) * 1000).toFixed(0)} ms (${((median(sides.stack!.cpu) / BLOCKS) * 1e6).toFixed(0)} µs a block), ratio ${(l / s).toFixed(2)}`);
const sj = median(sides.stackJs!.ms);
console.log(`  the same stack on node:dgram, every block in JS (TIPS_DTLS_NATIVE=0): ${sj.toFixed(0)} ms, server CPU ${(median(sides.stackJs!.cpu) * 1000).toFixed(0)} ms, ratio ${(l / sj).toFixed(2)}`);
if (sides.stackBase) {
  const sb = median(sides.stackBase.ms);
  const sbc = median(sides.stackBase.cpu);
  console.log(`  base stack alone (TIPS_BENCH_BASE, alternated): ${sb.toFixed(0)} ms, server CPU ${(sbc * 1000).toFixed(0)} ms (${((sbc / BLOCKS) * 1e6).toFixed(0)} µs a block), ratio ${(l / sb).toFixed(2)}`);
}
for (const c of children) c.kill('SIGTERM');
await new Promise((r) => master.proc.once('exit', r));
