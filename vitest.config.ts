import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    // Each test file gets its own database, so files run in parallel; forks keep process-level
    // state (signals, pools) apart.
    pool: 'forks',
    maxWorkers: process.env.CI ? 3 : 4,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
