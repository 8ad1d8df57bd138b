import { createProgram } from './program.ts';

try {
  await createProgram().parseAsync(process.argv);
} catch (err) {
  const e = err as { code?: string; message?: string };
  console.error(`tips-gateway: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}`);
  process.exit(1);
}
