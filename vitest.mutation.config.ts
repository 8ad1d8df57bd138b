import { defineConfig } from 'vitest/config';

// Used by StrykerJS only (`npm run mutation`): the unit tests an area's config names in
// TIPS_MUTATION_TESTS (comma-separated globs), so a mutant run never starts e2e suites it cannot kill.
const include = (process.env.TIPS_MUTATION_TESTS ?? 'apps/*/src/**/*.test.ts,packages/*/src/**/*.test.ts,packages/*/test/**/*.test.ts').split(',');

export default defineConfig({
  test: {
    include,
    globalSetup: ['scripts/vitest-global-setup.mjs'],
    testTimeout: 30_000,
  },
});
