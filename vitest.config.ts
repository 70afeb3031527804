import { defineConfig } from 'vitest/config';

/**
 * Swarm tests start several Dispatch processes, their own PostgreSQL or NATS, and race them for
 * minutes; on a 2-core machine two of them side by side starve each other past their deadlines.
 * They run one file at a time, after the rest (`sequence.groupOrder`), in the same `vitest run`, so
 * the whole suite shares one PostgreSQL (test/helpers/global-setup.ts).
 */
const SWARM_TESTS = ['test/integration/replicas.*.test.ts', 'test/integration/chaos.*.test.ts'];

export default defineConfig({
  test: {
    globalSetup: ['test/helpers/global-setup.ts'],
    // Forks keep process-level state (signals, pools) apart.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'core',
          include: ['test/**/*.test.ts'],
          exclude: SWARM_TESTS,
          // Each test file gets its own database, so files run in parallel.
          maxWorkers: process.env.CI ? 3 : 4,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: { name: 'swarm', include: SWARM_TESTS, fileParallelism: false, maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
