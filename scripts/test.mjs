#!/usr/bin/env node
// `npm test`: make sure the real protocol peers exist (installing Debian packages when missing),
// start a throw-away PostgreSQL when none is given, then typecheck, lint and run every test.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ensureDebianPackages } from './debian.mjs';
import { startThrowawayPostgres } from './postgres.mjs';

function run(cmd, args, opts = {}) {
  console.log(`\n$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.status !== 0) {
    console.error(`\n${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
    return false;
  }
  return true;
}

ensureDebianPackages();
// @tips/dtls's native socket is built by `npm install`; if the C toolchain only arrived just now, build it here.
if (!existsSync('packages/dtls/native/build/Release/tips_dtls.node')) run('npm', ['run', 'install', '--workspace', '@tips/dtls']);

let pg;
if (!process.env.TIPS_TEST_PG_URL) {
  pg = startThrowawayPostgres();
  process.env.TIPS_TEST_PG_URL = pg.url;
}

const extra = process.argv.slice(2);
let ok = true;
try {
  if (extra.length === 0) {
    ok = run('npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']) && ok;
    ok = run('npx', ['biome', 'lint', '.']) && ok;
  }
  const vitest = existsSync('node_modules/.bin/vitest') ? 'node_modules/.bin/vitest' : 'vitest';
  ok = run(vitest, ['run', ...extra]) && ok;
} finally {
  pg?.stop();
}
process.exit(ok ? 0 : 1);
