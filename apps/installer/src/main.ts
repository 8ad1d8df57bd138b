/**
 * tips-installer: the program of TIPS's in-memory install environment (Phase 1). Reads its job
 * from the kernel command line (tips.boot, tips.job, tips.token, tips.disk) or flags, installs,
 * reports, reboots. Exit codes: 0 installed, 1 bad command line, 2 refused (reported),
 * 3 failed without a report (the gateway refused the work or never answered).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import pino from 'pino';
import { parseOptions } from './cmdline.ts';
import { InstallerError } from './errors.ts';
import { EXIT, runInstaller } from './installer.ts';

export const VERSION = '0.1.0';

const HELP = `Usage: tips-installer [--boot-url URL] [--token T] [--job ID] [--disk PATH] [--state-dir DIR]
                      [--cmdline TEXT] [--log-level LEVEL] [--no-reboot]
Installs the Phase 1 Glaze of this metal's job: options come from tips.boot=, tips.token=,
tips.job=, tips.disk= on the kernel command line (/proc/cmdline); flags override them.
Exit: 0 installed (then reboots unless --no-reboot), 1 bad options, 2 refused (reported), 3 not reported.
`;

function reboot(log: pino.Logger): void {
  log.info({ phase: 'reboot' }, 'rebooting');
  spawnSync('sync', [], { stdio: 'ignore' });
  const r = spawnSync('reboot', ['-f'], { stdio: 'ignore' });
  if (r.status !== 0) {
    try {
      writeFileSync('/proc/sysrq-trigger', 'b');
    } catch (e) {
      log.error({ err: (e as Error).message }, 'could not reboot');
    }
  }
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(HELP);
    return EXIT.installed;
  }
  let cmdline = '';
  try {
    cmdline = readFileSync('/proc/cmdline', 'utf8');
  } catch {
    // not Linux, or no /proc: flags must say everything
  }
  const log = pino({ base: { app: 'tips-installer' }, level: 'info' });
  let opts: ReturnType<typeof parseOptions>;
  try {
    opts = parseOptions(argv, cmdline);
  } catch (e) {
    log.fatal({ reason: (e as InstallerError).code ?? 'bad_cmdline', detail: (e as Error).message }, 'tips-installer cannot start');
    process.stderr.write(`tips-installer: ${(e as Error).message}\n`);
    return EXIT.usage;
  }
  log.level = opts.logLevel;
  log.info({ version: VERSION, node: process.version, pid: process.pid, boot: opts.bootUrl, jobId: opts.jobId, disk: opts.disk }, 'tips-installer starting');
  try {
    const code = await runInstaller(opts, { log });
    if (code === EXIT.installed && opts.reboot) reboot(log);
    return code;
  } catch (e) {
    const code = e instanceof InstallerError ? e.code : 'internal';
    log.fatal({ reason: code, detail: (e as Error).message }, `tips-installer stopped: ${code}`);
    return EXIT.unreported;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`tips-installer: ${(e as Error).stack ?? e}\n`);
    process.exitCode = EXIT.unreported;
  },
);
