/**
 * bench/install-write: the installer's verified write of a 2 GiB Glaze against `dd bs=4M conv=fsync`
 * of the same bytes to the same target, in one run (issue 8: goal ≥ 0.8× dd).
 *
 *   node --import tsx bench/install-write.ts        # 2 GiB (TIPS_BENCH_BYTES to change), as root
 *
 * The Glaze is already downloaded and verified (the installer's state dir), so both sides copy the
 * same file. The installer's side is exactly what it runs on a metal (apps/installer/src/disk.ts
 * writeGlaze): wipe the marker + fsync, every byte after the first MiB, fsync, the first MiB, fsync,
 * then read the image back and compare it with the Glaze whose SHA-256 was verified (the default),
 * or — measured too — hash the read-back again with SHA-256. dd's side is the copy and one fsync, nothing
 * read back (`conv=notrunc` too, so the disk image keeps its size as a block device would). Targets:
 * a disk image file, and a loop device over it (a block device, as on a metal). The order alternates
 * and each pair runs twice; the best of each is reported.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { diskSize, writeGlaze } from '../apps/installer/src/disk.ts';
import { planWrite } from '../apps/installer/src/plan.ts';

const TOTAL = Number(process.env.TIPS_BENCH_BYTES ?? 2 * 2 ** 30);
const MiB = 2 ** 20;
const work = mkdtempSync(join(tmpdir(), 'tips-bench-install-'));
const glaze = join(work, 'glaze.img');
const image = join(work, 'disk.img');
let loop = '';

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

async function timeInstaller(target: string, sha256: string, readBack: 'compare' | 'sha256'): Promise<number> {
  const plan = planWrite(diskSize(target), TOTAL);
  const t0 = process.hrtime.bigint();
  const written = await writeGlaze({ disk: target, source: glaze, plan, sha256, readBack });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (written !== TOTAL) throw new Error(`installer wrote ${written} of ${TOTAL}`);
  return s;
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

const fmt = (s: number) => `${s.toFixed(2)} s (${(TOTAL / MiB / s).toFixed(0)} MiB/s)`;

try {
  const sha256 = makeGlaze();
  execFileSync('truncate', ['-s', String(TOTAL + 64 * MiB), image]);
  loop = execFileSync('losetup', ['-f', '--show', image], { encoding: 'utf8' }).trim();
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpus()[0]?.model;
  console.log(`Glaze ${(TOTAL / MiB).toFixed(0)} MiB, sha256 ${sha256.slice(0, 16)}…; ${cpus().length} × ${cpu}; Node ${process.version}; load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  for (const [name, target] of [
    ['disk image file', image],
    [`loop device ${loop}`, loop],
  ] as const) {
    const inst: number[] = [];
    const instSha: number[] = [];
    const dd: number[] = [];
    for (let round = 0; round < 2; round++) {
      const order = round % 2 === 0 ? ['dd', 'installer', 'installer-sha'] : ['installer-sha', 'installer', 'dd'];
      for (const who of order) {
        scramble(target);
        if (who === 'dd') dd.push(timeDd(target));
        else if (who === 'installer') inst.push(await timeInstaller(target, sha256, 'compare'));
        else instSha.push(await timeInstaller(target, sha256, 'sha256'));
      }
    }
    const bi = Math.min(...inst);
    const bs = Math.min(...instSha);
    const bd = Math.min(...dd);
    const all = (xs: number[]) => `[${xs.map((s) => s.toFixed(2)).join(', ')}]`;
    console.log(`${name}: installer (write, fsync, read-back compared)   best ${fmt(bi)} ${all(inst)}`);
    console.log(`${name}: installer, read-back re-hashed (SHA-256)     best ${fmt(bs)} ${all(instSha)}`);
    console.log(`${name}: dd bs=4M conv=fsync                          best ${fmt(bd)} ${all(dd)}`);
    console.log(`${name}: ratio (dd time / installer time) = ${(bd / bi).toFixed(2)}× (goal ≥ 0.80×); with the SHA-256 re-hash ${(bd / bs).toFixed(2)}×`);
  }
} finally {
  if (loop) execFileSync('losetup', ['-d', loop]);
  rmSync(work, { recursive: true, force: true });
}
