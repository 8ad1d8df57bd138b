#!/usr/bin/env node
// `npm start`: runs scripts/demo-fleet.ts (master + gateway + demo fleet) through tsx.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { buildBins, buildWeb } from './build.mjs';

// The demo starts the bins, which run dist/: rebuild it so an edited source is what runs.
await buildBins({ quiet: true });
await buildWeb({ quiet: true });

const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'demo-fleet.ts'), ...process.argv.slice(2)], { stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
