import type { Command } from 'commander';
import type { Progress } from './api.ts';
import { CliError, EXIT } from './errors.ts';

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

/**
 * A progress bar on stderr when it is a terminal (or forced); silent otherwise. cli-progress (and
 * the string-width/emoji tables under it) loads only when a bar is shown, not at every `tips` start.
 */
export async function progressBar(label: string, enabled: boolean): Promise<Progress | undefined> {
  if (!enabled) return undefined;
  const { default: cliProgress } = await import('cli-progress');
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

/** How a list command prints: an aligned table, one JSON array, or one JSON object per line. */
export type ListMode = 'table' | 'json' | 'jsonl';

/** `--jsonl` and `--limit` for a list command (which already has `--json`). */
export function pageOptions(cmd: Command): Command {
  return cmd.option('--jsonl', 'print one JSON object per line, as pages arrive').option('--limit <n>', 'print at most this many (default: all, page after page)');
}

/** The list mode and item cap the options ask for; a bad `--limit` or `--json` with `--jsonl` is a usage error. */
export function listOptions(opts: { json?: boolean; jsonl?: boolean; limit?: string }): { mode: ListMode; max: number } {
  if (opts.json && opts.jsonl) throw new CliError('bad_options', 'give --json or --jsonl, not both', EXIT.usage);
  let max = Number.POSITIVE_INFINITY;
  if (opts.limit !== undefined) {
    if (!/^[1-9][0-9]{0,8}$/.test(opts.limit)) throw new CliError('bad_limit', `--limit "${opts.limit}" must be a positive integer`, EXIT.usage);
    max = Number(opts.limit);
  }
  return { mode: opts.jsonl ? 'jsonl' : opts.json ? 'json' : 'table', max };
}

const write = (s: string): Promise<void> =>
  new Promise((resolve, reject) => {
    process.stdout.write(s, (err) => (err ? reject(err) : resolve()));
  });

/**
 * Prints a list as its pages arrive. A table keeps the column widths it has seen (growing when a
 * later page has a longer cell); `--json` is one valid document (an array, as `print` would write
 * it) however many pages; `--jsonl` is one compact object per line.
 */
export async function printPages<T>(pages: AsyncIterable<T[]>, mode: ListMode, headers: string[], row: (item: T) => string[]): Promise<void> {
  let count = 0;
  let widths = headers.map((h) => h.length);
  let headed = false;
  for await (const page of pages) {
    for (const item of page) {
      if (mode === 'jsonl') await write(`${JSON.stringify(item)}\n`);
      else if (mode === 'json') await write(`${count === 0 ? '[\n' : ',\n'}${JSON.stringify(item, null, 2).replace(/^/gm, '  ')}`);
      count++;
    }
    if (mode !== 'table' || page.length === 0) continue;
    const rows = page.map(row);
    widths = widths.map((w, i) => Math.max(w, ...rows.map((r) => (r[i] ?? '').length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
    await write(`${[...(headed ? [] : [line(headers)]), ...rows.map(line)].join('\n')}\n`);
    headed = true;
  }
  if (mode === 'json') await write(count === 0 ? '[]\n' : '\n]\n');
  if (mode === 'table' && count === 0) await write('(none)\n');
}
