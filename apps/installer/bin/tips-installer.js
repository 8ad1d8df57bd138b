#!/usr/bin/env node
// Runs the bundle in dist/ (`npm run build`), the same single file the initramfs carries; without
// it (or with TIPS_FROM_SOURCE=1) the TypeScript sources through tsx.
import { existsSync } from 'node:fs';

const dist = new URL('../../../dist/installer/tips-installer.mjs', import.meta.url);
if (process.env.TIPS_FROM_SOURCE !== '1' && existsSync(dist)) {
  await import(dist.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
