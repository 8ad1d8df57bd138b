import { registerTrustListCommands } from './commands/lifecycle.ts';
import { NAME_RULE } from '@tips/core';
import { Command, type CommanderError, Help } from 'commander';
import { registerBuildPhase1Command } from './commands/build-phase1.ts';
import { registerConsoleCommands } from './commands/console.ts';
import { registerDiscoveryCommands } from './commands/discovery.ts';
import { registerFactoryCommands } from './commands/factory.ts';
import { registerGlazeCommands } from './commands/glaze.ts';
import { registerIdentityCommands } from './commands/identity.ts';
import { registerLoginCommands } from './commands/login.ts';
import { registerLwm2mCommands } from './commands/lwm2m.ts';
import { registerMetalCommands } from './commands/metal.ts';
import { registerProvisioningCommands } from './commands/provisioning.ts';
import { registerSpaceCommands } from './commands/space.ts';
import { registerTelemetryCommands } from './commands/telemetry.ts';
import { registerVoucherCommands } from './commands/voucher.ts';
import { registerBootstrapCommands } from './commands/bootstrap.ts';
import { EXIT } from './errors.ts';
import { loadSuit } from './suit-lib.ts';

/** The `tips` command tree. Each command family registers itself here. */
export function createProgram(): Command {
  const program = new Command('tips')
    .description('TIPS operator command line: metals, Spaces, Glazes, SUIT manifests')
    .showHelpAfterError()
    // Subcommands sorted by name, by code unit: commander's sortSubcommands uses localeCompare,
    // whose first call loads ICU collation (~10 ms of every `--help`; bench/cli-startup.ts).
    .configureHelp({ visibleCommands: (cmd) => Help.prototype.visibleCommands.call(new Help(), cmd).sort((a, b) => (a.name() < b.name() ? -1 : a.name() > b.name() ? 1 : 0)) })
    .addHelpText('after', '\nExit codes: 0 ok, 1 failure, 2 usage, 3 login/authentication, 4 not found, 5 conflict, 6 input refused, 7 master unreachable, 8 verification failed.')
    .addHelpText('after', `Names (of metals, Spaces, Glazes, gateways, keys, tokens, owners): ${NAME_RULE}. A <ref> is an ID or a name.`)
    // Libraries an action may need load before it runs; help and usage errors never load them.
    .hook('preAction', async () => {
      await loadSuit();
    });
  registerLoginCommands(program);
  registerMetalCommands(program);
  registerSpaceCommands(program);
  registerBuildPhase1Command(registerGlazeCommands(program));
  registerIdentityCommands(program);
  registerDiscoveryCommands(program);
  registerProvisioningCommands(program);
  registerFactoryCommands(program);
  registerVoucherCommands(program);
  registerBootstrapCommands(program);
  registerTrustListCommands(program);
  registerTelemetryCommands(program);
  registerConsoleCommands(program);
  registerLwm2mCommands(program);
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
