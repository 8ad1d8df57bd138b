import type { Command } from 'commander';
import { Api } from './api.ts';
import { loadConfig } from './config.ts';
import { CliError, EXIT, reportError } from './errors.ts';

export const api = (): Api => new Api(loadConfig());

/** Wraps an action: any failure becomes one line on stderr and a meaningful exit code. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      process.exitCode = reportError(err);
    }
  };
}

export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** `k=v` pairs from repeated `--label` options. */
export function parseLabels(pairs: string[] | undefined): Record<string, string> | undefined {
  if (!pairs) return undefined;
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    if (i <= 0) throw new CliError('bad_label', `--label "${p}" must look like key=value`, EXIT.usage);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

export function jsonOption(cmd: Command): Command {
  return cmd.option('--json', 'print JSON for scripts');
}
