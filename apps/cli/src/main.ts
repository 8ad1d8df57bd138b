import { registerSuitCommands } from './commands/suit.ts';
import { applyExitOverride, createProgram } from './program.ts';

const program = createProgram();
registerSuitCommands(program);
applyExitOverride(program);
await program.parseAsync(process.argv);
