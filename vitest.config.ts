import { defineConfig } from 'vitest/config';

// Two projects: unit tests live beside the code; e2e tests start real processes and peers.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['apps/*/src/**/*.test.ts', 'packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['e2e/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // e2e suites build network namespaces and start servers: run files one at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
