import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The web console's browser tests (headless chromium) run as their own script, `npm run
    // test:browser`, which .ci/run also runs: they keep `npm test` within its time budget.
    // AWS's XKS proxy compliance client (bash + curl, about 30 s a run) likewise runs as `npm run
    // test:xks`.
    exclude: [
      '**/node_modules/**',
      ...(process.env.KMS_ENVELOPE_BROWSER_TESTS === '1' ? [] : ['test/browser/**']),
      ...(process.env.KMS_ENVELOPE_XKS_TESTS === '1' ? [] : ['test/xks-proxy/compliance.test.ts']),
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
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
