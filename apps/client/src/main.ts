import { applyExitOverride, createProgram } from './program.ts';

const program = createProgram();
applyExitOverride(program);
program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`tips-client: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
