import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';

// Unit tests need nothing running; integration tests get real Kafka, schema registry and Redis
// from test/support/global-setup.ts and run one file at a time (they share those services).
//
// The faults project (test/faults/, `npm run test:faults`) stops and restarts Redis, Kafka and the
// registry of its own stack instance (test/faults/support/global-setup.ts). It is left out of a
// plain `vitest run`: run beside the other projects it would compete for the same few cores
// (timeouts there, lost heartbeats here) and its global setup would run in the same process as
// the integration one. It is included when asked for by name (--project faults) or with
// FAIRFLAG_TEST_FAULTS=1.
const faultsRequested =
  process.env['FAIRFLAG_TEST_FAULTS'] === '1' ||
  process.argv.some(
    (a, i, all) => a === '--project=faults' || (a === '--project' && all[i + 1] === 'faults'),
  );

const faults: TestProjectInlineConfiguration = {
  extends: true,
  test: {
    name: 'faults',
    include: ['test/faults/**/*.test.ts'],
    globalSetup: ['test/faults/support/global-setup.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    poolOptions: { forks: { singleFork: true } },
  },
};

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
          exclude: ['test/integration/**', 'test/faults/**'],
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
      ...(faultsRequested ? [faults] : []),
    ],
  },
});
