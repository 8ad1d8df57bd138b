import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers.ts';

/**
 * D6 the bins run the JavaScript compiled into dist/ (scripts/build.mjs, built by the test run's
 * global setup), not TypeScript through tsx: a Node module hook records every module each bin loads.
 */
let dir: string;
let register: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tips-e2e-bins-'));
  writeFileSync(
    join(dir, 'hooks.mjs'),
    "import { appendFileSync } from 'node:fs';\nexport async function load(url, context, next) {\n  appendFileSync(process.env.TIPS_LOAD_TRACE, url + '\\n');\n  return next(url, context);\n}\n",
  );
  register = join(dir, 'register.mjs');
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function loadedBy(bin: string, env: NodeJS.ProcessEnv = {}): string[] {
  const trace = join(dir, `trace-${Math.random().toString(36).slice(2)}`);
  writeFileSync(trace, '');
  const r = spawnSync(process.execPath, ['--import', register, join(ROOT, bin), '--help'], { env: { ...process.env, ...env, TIPS_LOAD_TRACE: trace }, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/^Usage: tips/);
  return readFileSync(trace, 'utf8').split('\n').filter(Boolean);
}

describe('D6 compiled bins', () => {
  it.each([
    ['apps/cli/bin/tips.js', 'cli'],
    ['apps/master/bin/tips-master.js', 'master'],
    ['apps/gateway/bin/tips-gateway.js', 'gateway'],
  ])('%s runs dist/%s/main.js and loads no TypeScript', (bin, app) => {
    const loaded = loadedBy(bin);
    expect(loaded).toContain(pathToFileURL(join(ROOT, 'dist', app, 'main.js')).href);
    expect(loaded.filter((u) => u.endsWith('.ts') || u.includes('/node_modules/tsx/'))).toEqual([]);
  });

  it('falls back to the TypeScript sources through tsx with TIPS_FROM_SOURCE=1', () => {
    const loaded = loadedBy('apps/cli/bin/tips.js', { TIPS_FROM_SOURCE: '1' });
    expect(loaded).toContain(pathToFileURL(join(ROOT, 'apps/cli/src/main.ts')).href);
    expect(loaded.filter((u) => u.startsWith(pathToFileURL(join(ROOT, 'dist')).href))).toEqual([]);
  });

  it('runs the CLI from dist/ alone: no node_modules, no TypeScript toolchain', () => {
    const copy = join(dir, 'alone');
    cpSync(join(ROOT, 'dist', 'cli'), join(copy, 'cli'), { recursive: true });
    cpSync(join(ROOT, 'dist', 'chunks'), join(copy, 'chunks'), { recursive: true });
    for (const args of [['--help'], ['ca', 'init', '--out', join(dir, 'ca'), '--name', 'Alone']]) {
      const r = spawnSync(process.execPath, [join(copy, 'cli', 'main.js'), ...args], { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH } });
      expect(r.status, r.stderr).toBe(0);
    }
    expect(readFileSync(join(dir, 'ca', 'root.pem'), 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/);
  });
});
