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
export async function startMaster(args: string[], env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = [], bin = TIPS_MASTER): Promise<RunningMaster> {
  const proc = spawn(process.execPath, [...nodeArgs, bin, '--port', '0', '--tls-port', '0', '--log-level', 'warn', ...args], {
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

/**
 * A master built in-process (throw-away SQLite, listening on loopback) and a way to run the real
 * `tips` CLI against it: for CLI tests that need the master's own test fixtures (owners, tokens).
 */
export async function cliAgainstTestMaster() {
  const { testMaster } = await import('../apps/master/src/testing.ts');
  const m = await testMaster();
  await m.app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(m.app.server.address() as { port: number }).port}`;
  const run = (args: string[], token = m.alice.token): Promise<CliResult & { code: number }> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [TIPS, ...args], {
        env: { ...process.env, TIPS_URL: url, TIPS_TOKEN: token, TIPS_CONFIG: join(m.dir, 'no-such-config.json') },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => {
        stdout += d;
      });
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? -1, status: code ?? -1, stdout, stderr }));
    });
  return { m, url, run };
}
