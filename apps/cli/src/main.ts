import { applyExitOverride, createProgram } from './program.ts';

const program = createProgram();
applyExitOverride(program);
await program.parseAsync(process.argv);
