import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// Most test files wait on child processes (CLI, aws, curl) and loopback servers rather than the
// CPU, so they run at least two at a time. Vitest's default on a 2-core machine is one fork
// (cores - 1): `npm test` took about 530 s with one and about 400 s with two, with the same results.
const workers = Math.max(2, availableParallelism() - 1);

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The web console's browser tests (headless chromium) run as their own script, `npm run
    // test:browser`, which .ci/run also runs: they keep `npm test` within its time budget.
    // AWS's XKS proxy compliance client (bash + curl, about 30 s a run) likewise runs as `npm run
    // test:xks`, and the HSM memory scan (`npm run test:hsm`: 1,000 operations, a heap snapshot and
    // a scan of the whole server process).
    exclude: [
      '**/node_modules/**',
      ...(process.env.KMS_ENVELOPE_BROWSER_TESTS === '1' ? [] : ['test/browser/**']),
      ...(process.env.KMS_ENVELOPE_XKS_TESTS === '1' ? [] : ['test/xks-proxy/compliance.test.ts']),
      ...(process.env.KMS_ENVELOPE_HSM_MEMORY_TESTS === '1' ? [] : ['test/local-kms/custom-key-stores-memory.test.ts']),
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: workers,
    minWorkers: workers,
    // The AWS SDK prints an 8-line Node version notice once per process on Node < 22; the suite
    // runs in dozens of processes. This is the SDK's own switch (@aws-sdk/core
    // emitWarningIfUnsupportedVersion). Workers get it, and so does every child spawned with their
    // environment; the library never sets it (test/package/sdk-notice.test.ts).
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    // A private TMPDIR per run; a test file that leaves anything in it fails the run.
    globalSetup: ['./test/support/temp-dir-setup.ts'],
    // The trace reporter fails the run when a test cited by a compliance table
    // (test/spec/compliance/) is missing, skipped or failing.
    reporters: ['default', './test/spec/trace-reporter.ts'],
  },
});
