/**
 * vitest globalSetup: a private temporary directory per test run. Workers inherit TMPDIR (forks
 * take this process's environment), so every os.tmpdir() and `mktemp -d` of the tests and their
 * children lands here. At the end, anything a test file left behind fails the run, named, and the
 * directory is removed, so /tmp never collects kms-envelope-* directories.
 *
 * Mode 01777 like /tmp: test/package/readonly-umask.test.ts runs a child as an unprivileged user
 * inside it.
 */
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'kms-envelope-run-'));
  chmodSync(dir, 0o1777);
  const saved = { TMPDIR: process.env.TMPDIR, KMS_ENVELOPE_TEST_TMPDIR: process.env.KMS_ENVELOPE_TEST_TMPDIR };
  process.env.TMPDIR = dir;
  process.env.KMS_ENVELOPE_TEST_TMPDIR = dir;
  return () => {
    const left = readdirSync(dir);
    rmSync(dir, { recursive: true, force: true });
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    if (left.length > 0) {
      throw new Error(`tests left these in the temporary directory (each test must remove what it creates): ${left.join(', ')}`);
    }
  };
}
