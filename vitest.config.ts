import { defineConfig } from 'vitest/config';

// Two projects: pure unit tests beside the sources run in parallel; real-process tests under
// test/ start nodes, bind ports and fsync, so they run one file at a time (see test/README.md).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['packages/*/src/**/*.test.ts'],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
