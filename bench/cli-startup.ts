/**
 * bench/cli-startup: wall-clock of `tips --help` (the compiled dist/ build, as installed) against
 * `node -e 0` (Node's own start, the floor) on the same machine in the same run, alternating the two
 * so both see the same load. Goal (issue 10): `tips --help` in < 150 ms.
 *
 *   npm run build && node --import tsx bench/cli-startup.ts   # TIPS_BENCH_RUNS (default 30) of each
 *
 * Also prints `tips metal --help` (a subcommand's help). Reports wall-clock median and p90 and the
 * mean CPU time (user + system) of a run; the ratio and the difference over the floor are what the
 * CLI itself costs, whatever the machine's load.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const TIPS = join(ROOT, 'apps/cli/bin/tips.js');
const RUNS = Number(process.env.TIPS_BENCH_RUNS ?? 30);
const GOAL_MS = 150;

if (!existsSync(join(ROOT, 'dist/cli/main.js'))) throw new Error('no dist/cli/main.js: run `npm run build` first');

const cases: [string, string[]][] = [
  ['node -e 0', ['-e', '0']],
  ['tips --help', [TIPS, '--help']],
  ['tips metal --help', [TIPS, 'metal', '--help']],
];

/** CPU seconds (user + system) of this process's waited-for children, from /proc (clock ticks of 10 ms). */
function childrenCpu(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

function once(args: string[]): { ms: number; cpu: number } {
  const cpu0 = childrenCpu();
  const t = performance.now();
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TIPS_FROM_SOURCE: '' } });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { ms, cpu: childrenCpu() - cpu0 };
}

const times = new Map<string, number[]>(cases.map(([name]) => [name, []]));
const cpu = new Map<string, number>(cases.map(([name]) => [name, 0]));
for (const [, args] of cases) once(args); // warm the file cache
for (let i = 0; i < RUNS; i++) {
  for (const [name, args] of cases) {
    const r = once(args);
    times.get(name)!.push(r.ms);
    cpu.set(name, cpu.get(name)! + r.cpu);
  }
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const floor = pct(times.get('node -e 0')!, 50);
const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const lines = [`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}; ${RUNS} runs each, alternating; load average at the end: ${load}`];
for (const [name] of cases) {
  const xs = times.get(name)!;
  const p50 = pct(xs, 50);
  const extra = name === 'node -e 0' ? '' : `  (${(p50 / floor).toFixed(2)}× node -e 0, +${(p50 - floor).toFixed(0)} ms)`;
  const cpuMs = (cpu.get(name)! / RUNS) * 1000;
  lines.push(`  ${name.padEnd(18)} p50 ${p50.toFixed(0).padStart(4)} ms  p90 ${pct(xs, 90).toFixed(0).padStart(4)} ms  CPU ${cpuMs.toFixed(0).padStart(3)} ms a run${extra}`);
}
const help = pct(times.get('tips --help')!, 50);
lines.push(`  goal tips --help < ${GOAL_MS} ms: ${help < GOAL_MS ? 'met' : 'NOT met'} (p50)`);
process.stdout.write(`${lines.join('\n')}\n`);
