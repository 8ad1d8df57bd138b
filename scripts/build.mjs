#!/usr/bin/env node
// `npm run build` (also run by `npm install` through `prepare`, and before every test run by
// scripts/vitest-global-setup.mjs): compiles the bins' TypeScript to JavaScript in dist/, so a
// `tips` run starts without compiling anything (tsx costs ~0.5 s a run) and an app can run where
// no TypeScript toolchain is installed. Each app's entry is bundled with the workspace packages
// (@tips/*, which ship TypeScript sources); every other package stays an import resolved from
// node_modules at run time — native addons (better-sqlite3), packages that read their own files
// (swagger-ui's static assets, pino's transports in worker threads) work exactly as from source.
// Outputs are written beside their final name and renamed into place, so a bin started while a
// build runs (two test runs at once) reads the old file or the new one, never half of one.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

const ROOT = resolve(import.meta.dirname, '..');
export const DIST = join(ROOT, 'dist');
/** app → its entry; dist/<app>/main.js is what apps/<app>/bin/*.js runs. */
export const ENTRIES = { cli: 'apps/cli/src/main.ts', master: 'apps/master/src/main.ts', gateway: 'apps/gateway/src/main.ts' };
/**
 * The metal agent is one self-contained CommonJS file for Debian 12's Node 18 (contract B): every
 * dependency inside, no chunks, no native addon — `node tips-client.cjs` is all a metal runs.
 */
export const CLIENT_ENTRY = 'apps/client/src/main.ts';
export const CLIENT_BUNDLE = join(ROOT, 'apps/client/dist/tips-client.cjs');

/** Builds CLIENT_BUNDLE (beside it, then renamed into place). Refuses any .node addon. */
export async function buildClient() {
  const tmp = `${CLIENT_BUNDLE}.${process.pid}.tmp`;
  mkdirSync(join(ROOT, 'apps/client/dist'), { recursive: true });
  try {
    await build({
      absWorkingDir: ROOT,
      entryPoints: [CLIENT_ENTRY],
      outfile: tmp,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node18',
      logLevel: 'warning',
      legalComments: 'none',
      // A native addon would need a compiler (or a prebuilt binary) on the metal.
      plugins: [
        { name: 'no-native', setup: (b) => b.onLoad({ filter: /\.node$/ }, (a) => ({ errors: [{ text: `native addon ${a.path} cannot ship in tips-client` }] })) },
        // ws (inside mqtt.js) tries these optional native speed-ups in a try/catch: bundle a module
        // that throws, so the bundle requires nothing but Node's own modules.
        {
          name: 'optional-native-absent',
          setup: (b) => {
            b.onResolve({ filter: /^(bufferutil|utf-8-validate)$/ }, (a) => ({ path: a.path, namespace: 'absent' }));
            b.onLoad({ filter: /.*/, namespace: 'absent' }, (a) => ({ contents: `throw new Error('${a.path} is not part of tips-client');`, loader: 'js' }));
          },
        },
      ],
    });
    renameSync(tmp, CLIENT_BUNDLE);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * The installer runs in the in-memory environment on Debian 12's Node 18, from one file with no
 * node_modules beside it: everything bundled, no chunks, `.mjs` (no package.json says "module").
 */
export const INSTALLER = { entry: 'apps/installer/src/main.ts', out: 'installer/tips-installer.mjs' };

/** Bundles the workspace's own code; leaves bare imports of other packages to Node. */
const externalDependencies = {
  name: 'external-dependencies',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('@tips/') || args.kind === 'entry-point') return undefined;
      return { path: args.path, external: true };
    });
  },
};

export async function buildBins({ quiet = false } = {}) {
  const started = Date.now();
  const staging = join(DIST, `.staging-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  try {
    const common = {
      absWorkingDir: ROOT,
      outdir: staging,
      bundle: true,
      // A dynamic import() stays lazy only in its own chunk: the CLI loads @tips/trust's X.509 library
      // only for the commands that need it. Chunk names carry a content hash, so they never collide.
      splitting: true,
      chunkNames: 'chunks/[name]-[hash]',
      platform: 'node',
      format: 'esm',
      target: 'node20.19',
      sourcemap: 'linked',
      logLevel: 'warning',
      // Bundled CommonJS dependencies call require(); an ES module has none of its own.
      banner: { js: "import { createRequire as __tipsCreateRequire } from 'node:module'; const require = __tipsCreateRequire(import.meta.url);" },
    };
    const entries = (apps) => Object.fromEntries(apps.map((app) => [`${app}/main`, ENTRIES[app]]));
    // The CLI (and later the client) bundles every dependency: no module resolution at start, and it
    // runs from dist/ alone. The servers keep their dependencies external (see above).
    await build({ ...common, entryPoints: entries(['cli']) });
    await build({ ...common, entryPoints: entries(['master', 'gateway']), plugins: [externalDependencies] });
    await build({ ...common, splitting: false, chunkNames: undefined, target: 'node18', sourcemap: false, entryPoints: [INSTALLER.entry], outdir: undefined, outfile: join(staging, INSTALLER.out) });
    await buildClient();
    // Chunks first, so a new entry never runs before the chunks it imports are in place.
    mkdirSync(join(DIST, 'chunks'), { recursive: true });
    const fresh = new Set(readdirSync(join(staging, 'chunks')));
    for (const f of fresh) renameSync(join(staging, 'chunks', f), join(DIST, 'chunks', f));
    for (const app of [...Object.keys(ENTRIES), 'installer']) {
      mkdirSync(join(DIST, app), { recursive: true });
      // rename onto an existing file replaces it atomically.
      for (const f of readdirSync(join(staging, app))) renameSync(join(staging, app, f), join(DIST, app, f));
    }
    // Chunks of older builds: kept an hour for processes started from them that may still import one.
    for (const f of readdirSync(join(DIST, 'chunks'))) {
      const p = join(DIST, 'chunks', f);
      if (!fresh.has(f) && Date.now() - statSync(p).mtimeMs > 3_600_000) rmSync(p, { force: true });
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  if (!quiet) process.stdout.write(`built ${Object.keys(ENTRIES).map((a) => `dist/${a}/main.js`).join(', ')}, apps/client/dist/tips-client.cjs, dist/${INSTALLER.out} in ${Date.now() - started} ms\n`);
}

/** The web console (apps/web): Vite bundles it into dist/web, which tips-master serves at `/`. */
export const WEB_DIR = join(DIST, 'web');

/**
 * Builds the console beside dist/web and swaps it into place; a master already running keeps the
 * files it read at start. Vite is loaded only here, so building the bins never loads it.
 */
export async function buildWeb({ quiet = false } = {}) {
  const started = Date.now();
  const { build: vite } = await import('vite');
  const staging = join(DIST, `.web-${process.pid}`);
  const old = join(DIST, `.web-old-${process.pid}`);
  try {
    await vite({ configFile: join(ROOT, 'apps/web/vite.config.ts'), logLevel: 'warn', build: { outDir: staging, emptyOutDir: true } });
    if (existsSync(WEB_DIR)) renameSync(WEB_DIR, old);
    renameSync(staging, WEB_DIR);
  } finally {
    rmSync(staging, { recursive: true, force: true });
    rmSync(old, { recursive: true, force: true });
  }
  if (!quiet) process.stdout.write(`built dist/web (the console) in ${Date.now() - started} ms\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  await buildBins();
  await buildWeb();
}
