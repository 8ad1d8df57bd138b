#!/usr/bin/env node
// Runs the compiled JavaScript in dist/ (`npm run build`; `npm install` and every test run build it),
// which starts without a TypeScript toolchain. Without dist/ (or with TIPS_FROM_SOURCE=1, while
// editing) it runs the TypeScript sources through tsx, as before there was a build.
import { existsSync } from 'node:fs';

const dist = new URL('../../../dist/cli/main.js', import.meta.url);
if (process.env.TIPS_FROM_SOURCE !== '1' && existsSync(dist)) {
  // Source maps are beside it; NODE_OPTIONS=--enable-source-maps maps stack traces to the .ts lines
  // (not on by default: parsing the maps at load would cost more than the rest of `tips --help`).
  await import(dist.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
