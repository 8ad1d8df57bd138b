import { Command } from 'commander';

/** The `tips` command tree. Each command family registers itself here. */
export function createProgram(): Command {
  const program = new Command('tips')
    .description('TIPS operator command line: metals, Spaces, Glazes, SUIT manifests')
    .showHelpAfterError()
    .configureHelp({ sortSubcommands: true });
  return program;
}
