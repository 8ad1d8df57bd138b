/** `tips-client`: the agent on a metal (TIPS-C) — enroll, run, status. */
import { Command, type CommanderError, Option } from 'commander';
import pino, { type Logger } from 'pino';
import { type ClientConfig, DEFAULT_CONFIG, DEFAULT_STATE_DIR, loadConfig } from './config/config.ts';
import { ClientError, EXIT, exitCodeOf } from './errors.ts';
import { enroll } from './identity/enroll.ts';

export interface CommonOptions {
  config: string;
  stateDir?: string;
  logLevel: string;
}

/** Logs go to stderr (the journal under systemd); stdout carries only command output. */
export function makeLogger(level: string): Logger {
  return pino({ level, base: { app: 'tips-client' }, redact: { paths: ['secret', '*.secret', 'authorization', '*.authorization'], censor: '[redacted]' } }, pino.destination({ fd: 2, sync: true }));
}

/** --state-dir, else config.json's stateDir, else /var/lib/tips-client. */
export function stateDirOf(o: CommonOptions, config?: ClientConfig): string {
  return o.stateDir ?? config?.stateDir ?? DEFAULT_STATE_DIR;
}

function common(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'the client configuration the installer wrote', DEFAULT_CONFIG)
    .option('--state-dir <dir>', `state directory (default: config.json's stateDir, else ${DEFAULT_STATE_DIR})`)
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'));
}

async function guarded(log: Logger, what: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    const code = e instanceof ClientError ? e.code : 'internal';
    log.error({ event: `${what}_failed`, code, remoteCode: (e as ClientError).remoteCode, err: e instanceof ClientError ? undefined : e }, (e as Error).message);
    process.stderr.write(`tips-client ${what}: ${(e as Error).message}\n`);
    process.exitCode = exitCodeOf(e);
  }
}

export function createProgram(): Command {
  const program = new Command('tips-client')
    .description('TIPS client (TIPS-C): the agent on a metal — enrollment, Phase 2 updates, reports')
    .showHelpAfterError()
    .addHelpText('after', '\nExit codes: 0 ok, 1 failure, 2 usage, 3 authentication refused, 7 master unreachable.');

  common(
    program
      .command('enroll')
      .description('enroll with the master over EST (the enrollment secret of enrollment.json); exits 0 when enrolled, also when already enrolled')
      .option('--json', 'print the outcome as JSON'),
  ).action(async (o: CommonOptions & { json?: boolean }) => {
    const log = makeLogger(o.logLevel);
    await guarded(log, 'enroll', async () => {
      const config = loadConfig(o.config);
      const r = await enroll(config, stateDirOf(o, config), log);
      const out = { status: r.status, tipsId: config.tipsId, serial: r.identity.serial, notAfter: r.identity.notAfter.toISOString() };
      process.stdout.write(o.json ? `${JSON.stringify(out)}\n` : `${r.status === 'enrolled' ? 'enrolled' : 'already enrolled'}: ${config.tipsId}, certificate ${out.serial} valid until ${out.notAfter}\n`);
    });
  });

  return program;
}

/** Usage errors exit with 2 everywhere in the tree (commander's default is 1). */
export function applyExitOverride(cmd: Command): void {
  cmd.exitOverride((err: CommanderError) => {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(0);
    process.exit(err.exitCode === 0 ? 0 : EXIT.usage);
  });
  for (const sub of cmd.commands) applyExitOverride(sub);
}
