/**
 * bench/install-write: the installer's verified streaming write of a 2 GiB Glaze against
 * `dd bs=4M conv=fsync` of the same bytes to the same target, in one run (issue 8: goal ≥ 0.8× dd).
 *
 *   node --import tsx bench/install-write.ts        # as root; TIPS_BENCH_BYTES (default 2 GiB),
 *                                                  # TIPS_BENCH_WINDOWS="8:4,16:4" (MiB:in flight)
 *
 * Both sides read the same Glaze file (in the page cache: it stands in for the gateway's stream).
 * The installer's side is exactly what it runs on a metal (apps/installer/src/write.ts streamGlaze):
 * the bytes through SHA-256 on the way, the marker wiped + fsync, every byte after the first MiB
 * written in windows, each window read back with O_DIRECT (the kernel writes the window back first;
 * the read bypasses the page cache, so the bytes compared are the device's) and compared with the
 * bytes still in RAM, the digest checked against the signed one, fsync, the first MiB, fsync, read
 * back. dd's side is the copy and one fsync, nothing hashed nor read back (`conv=notrunc` too, so
 * the disk image keeps its size as a block device would). Also measured: the floor the digest sets
 * (the same file read and hashed, nothing written). Targets: a disk image file and a loop device
 * over it (a block device, as on a metal). Order alternates; two rounds; best of each reported.
 * After the timed runs the target is read back once more with `dd iflag=direct | sha256sum`.
 *
 * Two installer modes (TIPS_BENCH_MODES, default both): `stream` — the write pass of a Glaze larger
 * than the RAM spool budget (downloaded again, SHA-256 on the way, as above); `spool` — the write of
 * a Glaze the verify pass kept in RAM (tips.spool, allocated by allocSpool as the installer does):
 * the same write and read-back from the spool, not hashed again (the verify pass did; its cost is
 * the "SHA-256 of the stream alone" line).
 *
 * Before/after in one run: TIPS_BENCH_BEFORE=<git revision> also times that revision's
 * apps/installer/src/write.ts (mode `before`: its write from the RAM spool), alternated with the
 * others, e.g. TIPS_BENCH_BEFORE=7a617c1 TIPS_BENCH_MODES=spool.
 */
import { execFileSync, execSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { diskSize } from '../apps/installer/src/disk.ts';
import { planWrite } from '../apps/installer/src/plan.ts';
import { allocSpool, streamGlaze } from '../apps/installer/src/write.ts';

const TOTAL = Number(process.env.TIPS_BENCH_BYTES ?? 2 * 2 ** 30);
const MiB = 2 ** 20;
const WINDOWS = (process.env.TIPS_BENCH_WINDOWS ?? '8:4,16:4')
  .split(',')
  .map((w) => w.split(':').map(Number) as [number, number]);
type Mode = 'stream' | 'spool' | 'before';
const BEFORE = process.env.TIPS_BENCH_BEFORE;
const MODES = [...(process.env.TIPS_BENCH_MODES ?? 'stream,spool').split(','), ...(BEFORE ? ['before'] : [])] as Mode[];
/** Or the runs one by one, `MiB:in flight:mode`, e.g. TIPS_BENCH_RUNS=16:4:spool,8:4:before (each at its default). */
const RUNS = process.env.TIPS_BENCH_RUNS?.split(',') ?? MODES.flatMap((m) => WINDOWS.map(([w, q]) => `${w}:${q}:${m}`));
let spool: Buffer | undefined;
const work = mkdtempSync(join(tmpdir(), 'tips-bench-install-'));
const glaze = join(work, 'glaze.img');
const image = join(work, 'disk.img');
let loop = '';

/** `streamGlaze` of another revision: its write.ts, importing this tree's unchanged neighbours. */
type OldStreamGlaze = (o: Record<string, unknown>) => Promise<{ bytesWritten: number; readBack: string }>;
let beforeGlaze: OldStreamGlaze | undefined;
async function loadBefore(rev: string): Promise<OldStreamGlaze> {
  const src = resolve(dirname(fileURLToPath(import.meta.url)), '../apps/installer/src');
  const text = execFileSync('git', ['show', `${rev}:apps/installer/src/write.ts`], { cwd: src, encoding: 'utf8' }).replaceAll("from './", `from '${src}/`);
  const file = join(work, 'write-before.ts');
  writeFileSync(file, text);
  return ((await import(pathToFileURL(file).href)) as { streamGlaze: OldStreamGlaze }).streamGlaze;
}

function makeGlaze(): string {
  const fd = openSync(glaze, 'w');
  const h = createHash('sha256');
  const block = randomBytes(4 * MiB);
  for (let off = 0, i = 0; off < TOTAL; off += block.length, i++) {
    block.writeUInt32LE(i, 0); // no two blocks alike
    const n = Math.min(block.length, TOTAL - off);
    writeSync(fd, block, 0, n, off);
    h.update(block.subarray(0, n));
  }
  closeSync(fd);
  return h.digest('hex');
}

/** The Glaze in one Buffer, read in 64 MiB pieces (readFileSync refuses files of 2 GiB and more). */
function readWhole(path: string): Buffer {
  const b = allocSpool(TOTAL);
  const fd = openSync(path, 'r');
  try {
    for (let at = 0; at < TOTAL; ) {
      const n = readSync(fd, b, at, Math.min(64 * MiB, TOTAL - at), at);
      if (n === 0) throw new Error(`${path}: ended at byte ${at} of ${TOTAL}`);
      at += n;
    }
  } finally {
    closeSync(fd);
  }
  return b;
}

async function feedFile(sink: (c: Buffer) => Promise<void>): Promise<void> {
  for await (const c of createReadStream(glaze, { highWaterMark: MiB }) as AsyncIterable<Buffer>) await sink(c);
}

/** The old installer's feed from its RAM spool (installer.ts feedSpool before it): 8 MiB views. */
async function feedSpool(sink: (c: Buffer) => Promise<void>): Promise<void> {
  for (let at = 0; at < spool!.length; at += 8 * MiB) await sink(spool!.subarray(at, Math.min(spool!.length, at + 8 * MiB)));
}

async function timeInstaller(target: string, sha256: string, windowMiB: number, inFlight: number, mode: Mode): Promise<number> {
  const plan = planWrite(diskSize(target), TOTAL);
  const t0 = process.hrtime.bigint();
  const common = { disk: target, plan, sha256, window: windowMiB * MiB, inFlight };
  const r =
    mode === 'before'
      ? await beforeGlaze!({ ...common, feed: feedSpool, digestChecked: true })
      : await streamGlaze({ ...common, ...(mode === 'spool' ? { spool: spool! } : { feed: feedFile }) });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.bytesWritten !== TOTAL || r.readBack !== 'direct') throw new Error(`installer wrote ${r.bytesWritten} of ${TOTAL}, read-back ${r.readBack}`);
  return s;
}

async function timeHashFloor(): Promise<number> {
  const t0 = process.hrtime.bigint();
  const h = createHash('sha256');
  await feedFile(async (c) => void h.update(c));
  h.digest();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function timeDd(target: string): number {
  const t0 = process.hrtime.bigint();
  execFileSync('dd', [`if=${glaze}`, `of=${target}`, 'bs=4M', 'conv=fsync,notrunc', 'status=none']);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function scramble(target: string): void {
  // The next writer starts from other bytes than the Glaze (no run benefits from the previous one).
  execFileSync('dd', ['if=/dev/zero', `of=${target}`, 'bs=4M', `count=${Math.ceil(TOTAL / (4 * MiB))}`, 'conv=fsync,notrunc', 'status=none']);
}

function deviceSha(target: string): string {
  return execSync(`dd if=${target} iflag=direct,count_bytes count=${TOTAL} bs=4M status=none | sha256sum`, { encoding: 'utf8' }).split(' ')[0]!;
}

/**
 * CPU seconds (user + system) of this process and of its waited-for children (dd): what the
 * neighbours' load does not bend, unlike wall-clock time. /proc/self/stat fields 16–17, in ticks.
 */
function cpuSeconds(): number {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6 + (Number(f[13]) + Number(f[14])) / 100;
}

const fmt = (s: number) => `${s.toFixed(2)} s (${(TOTAL / MiB / s).toFixed(0)} MiB/s)`;
const all = (xs: number[]) => `[${xs.map((s) => s.toFixed(2)).join(', ')}]`;
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

function cleanUp(): void {
  if (loop) execFileSync('losetup', ['-d', loop]);
  loop = '';
  rmSync(work, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    cleanUp();
    process.exit(130);
  });
}

try {
  const sha256 = makeGlaze();
  if (RUNS.some((r) => !r.endsWith(':stream'))) spool = readWhole(glaze);
  if (BEFORE) beforeGlaze = await loadBefore(BEFORE);
  execFileSync('truncate', ['-s', String(TOTAL + 64 * MiB), image]);
  loop = execFileSync('losetup', ['-f', '--show', image], { encoding: 'utf8' }).trim();
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpus()[0]?.model;
  console.log(`Glaze ${(TOTAL / MiB).toFixed(0)} MiB, sha256 ${sha256.slice(0, 16)}…; ${cpus().length} × ${cpu}; Node ${process.version}; load ${load()}`);
  const floor: number[] = [];
  for (let i = 0; i < 3; i++) floor.push(await timeHashFloor());
  console.log(`SHA-256 of the stream alone (read + hash, nothing written): best ${fmt(Math.min(...floor))} ${all(floor)}`);
  for (const [name, target] of [
    ['disk image file', image],
    [`loop device ${loop}`, loop],
  ] as const) {
    const dd: number[] = [];
    const inst = new Map<string, number[]>(RUNS.map((r) => [r, []] as [string, number[]]));
    const cpu = new Map<string, number[]>([['dd', []], ...RUNS.map((r) => [r, []] as [string, number[]])]);
    for (let round = 0; round < 2; round++) {
      const order = round % 2 === 0 ? ['dd', ...inst.keys()] : [...inst.keys()].reverse().concat('dd');
      for (const who of order) {
        scramble(target);
        const c0 = cpuSeconds();
        if (who === 'dd') {
          dd.push(timeDd(target));
          cpu.get('dd')!.push(cpuSeconds() - c0);
        } else {
          const [w, q, mode] = who.split(':') as [string, string, Mode];
          inst.get(who)!.push(await timeInstaller(target, sha256, Number(w), Number(q), mode));
          cpu.get(who)!.push(cpuSeconds() - c0);
          const got = deviceSha(target);
          if (got !== sha256) throw new Error(`${name}: the device holds SHA-256 ${got} after the installer, expected ${sha256}`);
        }
      }
    }
    const bd = Math.min(...dd);
    const cpuOf = (k: string) => `CPU ${Math.min(...cpu.get(k)!).toFixed(2)} s ${all(cpu.get(k)!)}`;
    console.log(`${name}: dd bs=4M conv=fsync                          best ${fmt(bd)} ${all(dd)}  ${cpuOf('dd')}`);
    for (const [k, xs] of inst) {
      const bi = Math.min(...xs);
      const [w, q, mode] = k.split(':');
      const what = mode === 'spool' ? 'from the RAM spool' : mode === 'before' ? `from the RAM spool, ${BEFORE}` : 'streamed, hashed';
      console.log(`${name}: installer (${what}), window ${w} MiB × ${q} in flight   best ${fmt(bi)} ${all(xs)}  ratio dd/installer ${(bd / bi).toFixed(2)}× (goal ≥ 0.80×)  ${cpuOf(k)}`);
    }
    console.log(`${name}: load ${load()}`);
  }
} finally {
  cleanUp();
}
