/** `tips-client`: the agent on a metal (TIPS-C) — enroll, run, status. */
import { readFileSync } from 'node:fs';
import { Command, type CommanderError, InvalidArgumentError, Option } from 'commander';
import pino, { type Logger } from 'pino';
import { type ClientConfig, DEFAULT_CONFIG, DEFAULT_STATE_DIR, loadConfig } from './config/config.ts';
import { ClientError, EXIT, exitCodeOf } from './errors.ts';
import { Agent } from './agent/agent.ts';
import { runLoop } from './agent/phase3.ts';
import { ServerList, serverOrder } from './agent/servers.ts';
import { enroll } from './identity/enroll.ts';
import { readRetirement } from './identity/retire.ts';
import { loadIdentity } from './identity/store.ts';
import { installHandlers } from './install/registry.ts';
import { AgentState } from './state/agent-state.ts';
import { onboardDevice, waitReachable } from './onboarding/device.ts';
import { existsSync } from 'node:fs';

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


  common(
    program
      .command('onboard')
      .description(
        "zero-touch onboarding at first power-on: find the owner through rendezvous, prove the device key (TO1/TO2), receive the metal's setup sealed to this device, write config.json, ca.pem and enrollment.json, enroll over EST, register the profile; exits 0 when enrolled (also when it already was)",
      )
      .requiredOption('--device-credential <file>', 'the device credential from `tips factory device create` (device.cred)')
      .option('--device-key <file>', 'the device key: device.key (PEM) or device.tpm (a key in the TPM); default: beside the credential')
      .option('--tcti <tcti>', 'the TPM the device key (and tpm2 evidence) lives in, e.g. device:/dev/tpmrm0')
      .option('--rendezvous <url>', "a rendezvous address to use instead of the credential's (repeatable)", collect, [] as string[])
      .option('--onboarding-relay <url>', "the TIPS gateway's onboarding relay, or `none`; default: asked of the boot interface's router at the well-known port 8071, used when it answers")
      .option('--interface <name>', 'an interface to report (repeatable; the first is the one the device boots from); default: every one with a MAC', collect, [] as string[])
      .option('--purpose <label>', 'the purpose label bootstrapping profiles may match on')
      .option('--no-register', 'stop after enrolling (do not register the profile)')
      .option('--json', 'print the outcome as JSON'),
  ).action(
    async (o: CommonOptions & { deviceCredential: string; deviceKey?: string; tcti?: string; rendezvous: string[]; onboardingRelay?: string; interface: string[]; purpose?: string; register: boolean; json?: boolean }) => {
      const log = makeLogger(o.logLevel);
      await guarded(log, 'onboard', async () => {
        const out = await onboardThenEnroll(o, log);
        if (o.register) {
          const config = loadConfig(o.config);
          const agent = new Agent({ config, stateDir: stateDirOf(o, config), log, handlers: installHandlers({}), servers: new ServerList(serverOrder([], config.servers, config.masterUrl), { log }), protocols: ['https'] });
          await agent.recover();
          await agent.cycle();
        }
        process.stdout.write(o.json ? `${JSON.stringify(out)}\n` : `${out.onboarded ? 'onboarded' : 'already onboarded'}: ${out.tipsId} (${out.profile ?? 'profile unknown'}), ${out.status === 'enrolled' ? 'enrolled' : 'already enrolled'}, certificate ${out.serial}\n`);
      });
    },
  );

  common(
    program
      .command('run')
      .description(
        'run the agent: enroll if needed, re-enroll before expiry, register the profile, pull Phase 2 and Phase 3 work (woken by MQTT hints), verify, download, install, report; carry out rollback requests; watch for software installed outside TIPS',
      )
      .option('--interval <duration>', 'time between pulls while the MQTT subscription is up (e.g. 30s, 5m)', parseDuration, 60_000)
      .option('--poll-interval <duration>', 'time between pulls while MQTT push is unavailable or off', parseDuration, 30_000)
      .option('--no-push', 'do not subscribe to Phase 3 hints over MQTT (pull only)')
      .option('--server <url>', 'an update server (master or gateway cache, https://), tried in order before those of config.json; repeatable', collectHttps, [] as string[])
      .option('--managed-path <path>', 'a file or directory TIPS manages, watched for changes made outside TIPS (with config.json managedPaths); repeatable', collect, [] as string[])
      .option('--dpkg-root <dir>', 'the root whose var/lib/dpkg is watched for packages installed outside TIPS', '/')
      .option('--no-tamper', 'do not run the tamper watch')
      .option('--once', 'one cycle (Phase 2, Phase 3, rollbacks), then exit (non-zero when it failed); no MQTT, no tamper watch')
      .option('--renew-before <duration>', 're-enroll when the certificate has less than this left (default: a third of its lifetime)', parseDuration)
      .option('--unit-dir <dir>', 'where the systemd-service handler installs units', '/etc/systemd/system')
      .option('--device-credential <file>', 'onboard first (as `tips-client onboard`) when config.json does not exist yet: first power-on of a device from the factory')
      .option('--device-key <file>', 'with --device-credential: the device key (default: beside the credential)')
      .option('--tcti <tcti>', 'with --device-credential: the TPM the device key lives in')
      .option('--interface <name>', 'with --device-credential: an interface to report (repeatable)', collect, [] as string[])
      .option('--purpose <label>', 'with --device-credential: the purpose label'),
  ).action(
    async (
      o: CommonOptions & { interval: number; pollInterval: number; push: boolean; server: string[]; managedPath: string[]; dpkgRoot: string; tamper: boolean; once?: boolean; renewBefore?: number; unitDir: string; deviceCredential?: string; deviceKey?: string; tcti?: string; interface: string[]; purpose?: string },
    ) => {
      const log = makeLogger(o.logLevel);
      await guarded(log, 'run', async () => {
        if (o.deviceCredential !== undefined) await onboardThenEnroll({ ...o, deviceCredential: o.deviceCredential, rendezvous: [] }, log);
        const config = loadConfig(o.config);
        const stateDir = stateDirOf(o, config);
        const servers = new ServerList(serverOrder(o.server, config.servers, config.masterUrl), { log });
        const agent = new Agent({ config, stateDir, log, handlers: installHandlers({ systemd: { unitDir: o.unitDir } }), renewBeforeMs: o.renewBefore, servers, protocols: o.push && !o.once ? ['https', 'mqtt'] : ['https'] });
        await agent.recover();
        if (o.once) return agent.cycle();
        const stopped = new Promise<void>((resolve) => {
          for (const sig of ['SIGTERM', 'SIGINT'] as const) {
            process.once(sig, () => {
              log.info({ event: 'stopping', signal: sig }, 'stopping');
              resolve();
            });
          }
        });
        await runLoop({
          agent,
          tipsId: config.tipsId,
          stateDir,
          log,
          intervalMs: o.interval,
          pollIntervalMs: o.pollInterval,
          push: o.push,
          tamper: o.tamper ? { managedPaths: [...config.managedPaths, ...o.managedPath], dpkgRoot: o.dpkgRoot } : undefined,
          stopped,
        });
        // S14: a retired metal has wiped its credentials; the agent ends (exit 3, so systemd does not restart it).
        if (agent.retired) process.exitCode = EXIT.auth;
      });
    },
  );

  common(program.command('status').description("show the metal's identity, certificate expiry, the update server and push subscription in use, installed Glazes and the last error").option('--json', 'print as JSON')).action(
    async (o: CommonOptions & { json?: boolean }) => {
      const log = makeLogger(o.logLevel);
      await guarded(log, 'status', async () => {
        const config = loadConfig(o.config);
        const stateDir = stateDirOf(o, config);
        const id = loadIdentity(stateDir);
        const state = new AgentState(stateDir);
        const st = state.status();
        const retired = readRetirement(stateDir);
        const out = {
          tipsId: config.tipsId,
          masterUrl: config.masterUrl,
          state: retired ? 'retired' : id ? 'enrolled' : 'not_enrolled',
          retired: retired ? { at: retired.at, serial: retired.serial } : null,
          enrolled: id !== undefined,
          certificate: id ? { serial: id.serial, notBefore: id.notBefore.toISOString(), notAfter: id.notAfter.toISOString() } : null,
          installed: state.installed(),
          refused: state.refused(),
          lastPullAt: st.lastPullAt,
          lastError: st.lastError,
          stopped: st.stopped,
          server: st.server ?? null,
          push: st.push ?? null,
        };
        if (o.json) {
          process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
          return;
        }
        const lines = [
          `metal:       ${out.tipsId}`,
          `master:      ${out.masterUrl}`,
          `identity:    ${retired ? `retired at ${retired.at} (credentials wiped)` : id ? `certificate ${id.serial}, valid until ${out.certificate!.notAfter}` : 'not enrolled'}`,
          `server:      ${out.server ?? 'none answered yet'}`,
          `push:        ${
            out.push
              ? out.push.state === 'subscribed'
                ? `subscribed to ${out.push.topic} at ${out.push.url} since ${out.push.since}${out.push.lastHintAt ? `, last hint ${out.push.lastHintAt}` : ''}`
                : `connecting to ${out.push.url} since ${out.push.since}${out.push.why ? ` (${out.push.why})` : ''}; polling meanwhile`
              : 'off (polling)'
          }`,
          `last pull:   ${out.lastPullAt ?? 'never'}`,
          `last error:  ${out.lastError ? `${out.lastError.code} at ${out.lastError.at}: ${out.lastError.message}` : 'none'}`,
          ...(out.stopped ? [`STOPPED:     Phases 2 and 3 stopped by ${out.stopped.code} at ${out.stopped.at}`] : []),
          `installed:   ${out.installed.length === 0 ? 'nothing yet' : ''}`,
          ...out.installed.map((g) => `  ${g.name} ${g.version} (${g.id}, sequence ${g.sequence}, ${g.handler})`),
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      });
    },
  );

  const telemetry = program.command('telemetry').description("the metal's telemetry stream (issue 11): the owner and application tokens for this metal read it");
  common(
    telemetry
      .command('send [pairs...]')
      .description('post one sample: key=value pairs (numbers, true/false, else text), or --file with a JSON object of values')
      .option('--file <file>', 'a JSON object { key: number | string | boolean }')
      .option('--json', 'print the outcome as JSON'),
  ).action(async (pairs: string[], o: CommonOptions & { file?: string; json?: boolean }) => {
    const log = makeLogger(o.logLevel);
    await guarded(log, 'telemetry', async () => {
      const values = telemetryValues(pairs, o.file === undefined ? undefined : readFileSync(o.file, 'utf8'));
      const config = loadConfig(o.config);
      const agent = new Agent({ config, stateDir: stateDirOf(o, config), log, handlers: installHandlers({}), protocols: ['https'] });
      const r = await agent.sendTelemetry(values);
      process.stdout.write(o.json ? `${JSON.stringify(r)}\n` : `sent ${Object.keys(values).length} value(s): ${r.id} at ${r.receivedAt}\n`);
    });
  });

  return program;
}

/** `key=value` pairs (or a JSON file) → the values of one telemetry sample; the master checks the bounds again. */
export function telemetryValues(pairs: string[], file?: string): Record<string, number | string | boolean> {
  const out: Record<string, number | string | boolean> = {};
  if (file !== undefined) {
    let v: unknown;
    try {
      v = JSON.parse(file);
    } catch {
      throw new ClientError('usage', '--file: not JSON');
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ClientError('usage', '--file: expected a JSON object of values');
    for (const [k, x] of Object.entries(v)) {
      if (typeof x !== 'number' && typeof x !== 'string' && typeof x !== 'boolean') throw new ClientError('usage', `--file: ${k} must be a number, a string or a boolean`);
      out[k] = x;
    }
  }
  for (const p of pairs) {
    const at = p.indexOf('=');
    if (at < 1) throw new ClientError('usage', `"${p}": expected key=value`);
    const raw = p.slice(at + 1);
    out[p.slice(0, at)] = raw === 'true' ? true : raw === 'false' ? false : raw !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  }
  if (Object.keys(out).length === 0) throw new ClientError('usage', 'nothing to send: give key=value pairs or --file');
  return out;
}

/**
 * Onboards unless config.json exists (then the device was onboarded before: a cut after the setup
 * was written resumes here), then enrolls (idempotent).
 */
async function onboardThenEnroll(
  o: CommonOptions & { deviceCredential: string; deviceKey?: string; tcti?: string; rendezvous: string[]; onboardingRelay?: string; interface: string[]; purpose?: string },
  log: Logger,
): Promise<{ onboarded: boolean; guid: string | null; owner: string | null; relay: string | null; tipsId: string; profile: string | null; status: string; serial: string; notAfter: string }> {
  let onboarded: Awaited<ReturnType<typeof onboardDevice>> | undefined;
  if (!existsSync(o.config)) {
    onboarded = await onboardDevice({
      credentialFile: o.deviceCredential,
      ...(o.deviceKey ? { keyFile: o.deviceKey } : {}),
      ...(o.tcti ? { tcti: o.tcti } : {}),
      rendezvous: o.rendezvous,
      ...(o.onboardingRelay ? { relay: o.onboardingRelay } : {}),
      interfaces: o.interface,
      ...(o.purpose ? { purpose: o.purpose } : {}),
      configFile: o.config,
      stateDir: o.stateDir ?? DEFAULT_STATE_DIR,
      log,
    });
  }
  const config = loadConfig(o.config);
  if (onboarded?.relay) await waitReachable(config.estUrl, 60_000, log);
  const r = await enroll(config, stateDirOf(o, config), log);
  return {
    onboarded: onboarded !== undefined,
    guid: onboarded?.guid ?? null,
    owner: onboarded?.owner ?? null,
    relay: onboarded?.relay ?? null,
    tipsId: config.tipsId,
    profile: onboarded?.setup.profile ?? null,
    status: r.status,
    serial: r.identity.serial,
    notAfter: r.identity.notAfter.toISOString(),
  };
}

/** Repeatable options: each occurrence appends. */
function collect(v: string, list: string[]): string[] {
  return [...list, v];
}

function collectHttps(v: string, list: string[]): string[] {
  let u: URL | undefined;
  try {
    u = new URL(v);
  } catch {
    u = undefined;
  }
  if (u?.protocol !== 'https:') throw new InvalidArgumentError(`"${v}" is not an https:// URL`);
  return [...list, v];
}

/** Durations like 500ms, 30s, 5m, 2h, 3d. */
export function parseDuration(v: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`"${v}" is not a duration (e.g. 500ms, 30s, 5m, 2h, 3d)`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms'];
}

/** Usage errors exit with 2 everywhere in the tree (commander's default is 1). */
export function applyExitOverride(cmd: Command): void {
  cmd.exitOverride((err: CommanderError) => {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(0);
    process.exit(err.exitCode === 0 ? 0 : EXIT.usage);
  });
  for (const sub of cmd.commands) applyExitOverride(sub);
}
