#!/usr/bin/env node
// `npm start`: the master on embedded defaults (SQLite and files under ./.data), in the foreground.
// Extra arguments go to tips-master, e.g. `npm start -- --port 9090`.
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const args = process.argv.slice(2);
const hasDataDir = args.some((a) => a === '--data-dir' || a.startsWith('--data-dir='));
const master = spawn(
  process.execPath,
  [join(root, 'apps/master/bin/tips-master.js'), ...(hasDataDir ? [] : ['--data-dir', join(root, '.data', 'master')]), ...args],
  { stdio: 'inherit', env: { TIPS_LOG_LEVEL: 'warn', ...process.env } },
);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => master.kill(sig));
master.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
