import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // The trace reporter fails the run when a test cited by a compliance table
    // (test/spec/compliance/) is missing, skipped or failing.
    reporters: ['default', './test/spec/trace-reporter.ts'],
  },
});
