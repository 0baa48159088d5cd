/**
 * Test runs left /tmp/kms-envelope-review-* behind (test/review/files.test.ts made a directory and
 * never removed it). The harness (test/support/temp-dir-setup.ts, vitest globalSetup) gives every
 * run a private TMPDIR, fails the run when a test file leaves anything in it, and removes it. This
 * runs the file that leaked, in a child vitest with TMPDIR pointed at a directory of this test:
 * the run passes, and nothing is left.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'kms-envelope-temp-dirs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('this run has a private temporary directory', () => {
  expect(process.env.KMS_ENVELOPE_TEST_TMPDIR).toBeDefined();
  expect(tmpdir()).toBe(process.env.KMS_ENVELOPE_TEST_TMPDIR);
});

it('test/review/files.test.ts leaves no temporary directory behind', () => {
  const r = spawnSync(process.execPath, [join(root, 'node_modules/vitest/vitest.mjs'), 'run', 'test/review/files.test.ts'], {
    cwd: root,
    env: { ...process.env, TMPDIR: dir, KMS_ENVELOPE_TEST_TMPDIR: '', NODE_OPTIONS: '', FORCE_COLOR: '0' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  expect(r.status, r.stdout + r.stderr).toBe(0);
  expect(readdirSync(dir)).toEqual([]);
}, 150_000);
