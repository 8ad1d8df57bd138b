#!/usr/bin/env node
// `npm run mutation [area…]`: StrykerJS over the security-critical modules, one config per area
// (mutation/<area>.conf.mjs). Not part of `npm test` (minutes per area on 2 cores); scores and the
// survivors we keep, with the reason, are in docs/TESTING.md.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

const all = readdirSync('mutation').filter((f) => f.endsWith('.conf.mjs')).map((f) => f.slice(0, -'.conf.mjs'.length)).sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((a) => !all.includes(a));
if (unknown.length) {
  console.error(`unknown mutation area ${unknown.join(', ')}; areas: ${all.join(', ')}`);
  process.exit(2);
}
const failed = [];
for (const area of wanted.length ? wanted : all) {
  console.log(`\n== mutation: ${area}`);
  const r = spawnSync('npx', ['stryker', 'run', `mutation/${area}.conf.mjs`], { stdio: 'inherit' });
  if (r.status !== 0) failed.push(area);
}
if (failed.length) {
  console.error(`\nmutation score under the 85 % threshold (or run failed): ${failed.join(', ')}`);
  process.exit(1);
}
