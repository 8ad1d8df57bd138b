import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..');
export const TIPS = join(ROOT, 'apps/cli/bin/tips.js');
export const TIPS_MASTER = join(ROOT, 'apps/master/bin/tips-master.js');

export interface RunningMaster {
  url: string;
  adminToken?: string;
  proc: ChildProcess;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts a real `tips-master` process and waits for its "listening" line. */
export async function startMaster(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunningMaster> {
  const proc = spawn(process.execPath, [TIPS_MASTER, '--port', '0', '--tls-port', '0', '--log-level', 'warn', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  proc.stderr!.on('data', (d) => {
    out += d;
  });
  const deadline = Date.now() + 30_000;
  while (!/^TIPS master ready$/m.test(out)) {
    if (proc.exitCode !== null) throw new Error(`tips-master exited ${proc.exitCode}: ${out}`);
    if (Date.now() > deadline) throw new Error(`tips-master did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = /listening on (\S+)/.exec(out)![1]!;
  const adminToken = /^\s+(tips_[A-Za-z0-9_-]+)$/m.exec(out)?.[1];
  return {
    url,
    adminToken,
    proc,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill(signal);
      await once(proc, 'exit');
    },
  };
}

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a `tips …` command line (split on spaces, as a user would type it). */
export function tips(commandLine: string | string[], env: NodeJS.ProcessEnv): CliResult {
  const args = Array.isArray(commandLine) ? commandLine : commandLine.split(/\s+/).filter(Boolean);
  const r = spawnSync(process.execPath, [TIPS, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
