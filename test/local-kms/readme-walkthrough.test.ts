/**
 * Runs examples/aws-cli/console-walkthrough.sh — the commands the README's "Local KMS" section shows —
 * with the real AWS CLI against a local KMS server on a free port, so the documented walkthrough
 * (console-style key creation, key policy roles, no anonymous callers, OpenSSL import) cannot silently rot.
 * Needs `aws` and `openssl` on PATH; the test is skipped only when `aws` is missing.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startLocalKmsServer } from '../../src/local-kms/index.js';

const root = resolve(import.meta.dirname, '../..');
const hasAws = spawnSync('sh', ['-c', 'command -v aws'], { stdio: 'ignore' }).status === 0;
let server: Awaited<ReturnType<typeof startLocalKmsServer>> | undefined;
const dir = mkdtempSync(join(tmpdir(), 'kms-walkthrough-'));

beforeAll(async () => {
  if (!hasAws) return;
  server = await startLocalKmsServer({
    port: 0,
    dataDir: join(dir, 'kms'),
    principalsFile: join(root, 'examples/aws-cli/principals.json'),
  });
});
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

it.runIf(hasAws)('the README walkthrough runs end to end with the AWS CLI', async () => {
  const work = join(dir, 'work');
  mkdirSync(work);
  // Asynchronous on purpose: the server runs in this process and must keep answering.
  const { stdout: out } = await promisify(execFile)('bash', [join(root, 'examples/aws-cli/console-walkthrough.sh')], {
    env: {
      ...process.env,
      KMS_ENDPOINT: server!.url,
      WORK_DIR: work,
      // No KMS_ENVELOPE_BIN: the script finds this checkout's CLI itself, as for a user.
      KMS_ENVELOPE_BIN: undefined,
    },
    encoding: 'utf8',
    timeout: 120_000,
  });
  expect(out).toContain('"Sid": "Allow access for Key Administrators"');
  expect(out.match(/AccessDeniedException/g)?.length).toBe(2);
  expect(out).toContain('PendingDeletion');
  // The default once principals are configured: no anonymous caller, no unknown access key, and
  // the key the unsigned request tried to delete is still enabled.
  expect(out).toMatch(/refused\nMissingAuthenticationTokenException\nUnrecognizedClientException\nEnabled\n/);
  expect(out).toMatch(/Enabled\narn:aws:kms:us-east-1:111122223333:key\//);
  expect(out.trim().endsWith('walkthrough complete')).toBe(true);
}, 180_000); // completion bound: the script runs the AWS CLI a few dozen times (slow under load)
