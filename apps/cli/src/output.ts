import cliProgress from 'cli-progress';
import type { Progress } from './api.ts';

/** Prints `value` as JSON (for scripts) or as aligned `key: value` lines (for people). */
export function print(value: unknown, json: boolean, human?: (v: never) => string): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    return;
  }
  process.stdout.write(`${human ? human(value as never) : JSON.stringify(value, null, 2)}\n`);
}

/** A plain text table: header row, then rows, columns padded to fit. */
export function table(headers: string[], rows: string[][]): string {
  if (rows.length === 0) return '(none)';
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

/** A progress bar on stderr when it is a terminal (or forced); silent otherwise. */
export function progressBar(label: string, enabled: boolean): Progress | undefined {
  if (!enabled) return undefined;
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {done}/{size} | {speed}`,
      stream: process.stderr,
      noTTYOutput: !process.stderr.isTTY,
      notTTYSchedule: 1000,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let t0 = 0;
  let total = 0;
  return {
    start(size) {
      t0 = Date.now();
      total = size;
      bar.start(size, 0, { done: bytes(0), size: bytes(size), speed: '' });
    },
    update(done) {
      const secs = (Date.now() - t0) / 1000;
      bar.update(Math.min(done, total), { done: bytes(done), speed: secs > 0 ? `${bytes(done / secs)}/s` : '' });
    },
    stop() {
      bar.stop();
    },
  };
}
