#!/usr/bin/env node
// Runs the single-file bundle apps/client/dist/tips-client.cjs (`npm run build`; every test run
// builds it) — the same file the Debian package ships, which needs nothing but Node 18. Without it
// (or with TIPS_FROM_SOURCE=1, while editing) it runs the TypeScript sources through tsx.
import { existsSync } from 'node:fs';

const dist = new URL('../dist/tips-client.cjs', import.meta.url);
if (process.env.TIPS_FROM_SOURCE !== '1' && existsSync(dist)) {
  await import(dist.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
