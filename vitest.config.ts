import { defineConfig } from 'vitest/config';

// Two projects: unit tests need nothing running; integration tests get real Kafka, schema registry
// and Redis from test/support/global-setup.ts and run one file at a time (they share those services).
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 180_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/integration/**'],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          // One file at a time in one process (vitest 3 has no per-project fileParallelism).
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});
