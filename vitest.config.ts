import { defineConfig } from 'vitest/config';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
  }
}

// Two projects: unit tests live beside the code; e2e tests start real processes and peers.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          globalSetup: ['scripts/vitest-global-setup.mjs'],
          include: ['apps/*/src/**/*.test.ts', 'packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
          testTimeout: 30_000,
          // Hooks start databases and servers; on a loaded 2-core machine 10 s (the default) is too short.
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'e2e',
          globalSetup: ['scripts/vitest-global-setup.mjs'],
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
