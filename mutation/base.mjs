// Shared StrykerJS settings (`npm run mutation`): each security-critical area has its own config
// (mutation/<area>.conf.mjs) that spreads these and names the modules it mutates and the tests that
// kill mutants there. Scores and remaining survivors: docs/TESTING.md.
/**
 * One area's config: `mutate` are the modules, `tests` the unit test globs that kill their mutants
 * (vitest.mutation.config.ts reads them), so a run never starts suites that cannot reach the code.
 * Example: `export default area('cbor', ['packages/suit/src/cbor.ts'], ['packages/suit/test/**\/*.test.ts']);`
 */
export function area(name, mutate, tests) {
  process.env.TIPS_MUTATION_TESTS = tests.join(',');
  return { ...base, mutate, jsonReporter: { fileName: `reports/mutation/${name}.json` } };
}

export const base = {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  vitest: { configFile: 'vitest.mutation.config.ts', related: false },
  coverageAnalysis: 'perTest',
  reporters: ['clear-text', 'progress', 'json'],
  concurrency: 2,
  timeoutMS: 60_000,
  thresholds: { high: 90, low: 85, break: 85 },
  ignoreStatic: true,
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
