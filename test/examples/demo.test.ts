/**
 * `npm run demo` (examples/demo.mjs) runs end to end on the embedded local KMS, twice in a row on
 * the same directory: the first run creates alias/demo, the second reuses it. It imports the built
 * package (dist/), which `npm test` builds first.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(__dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'kms-envelope-demo-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function demo() {
  const r = spawnSync(process.execPath, [join(ROOT, 'examples/demo.mjs')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: dir, KMS_ENVELOPE_DEMO_DIR: dir },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('examples/demo.mjs', () => {
  it('round-trips a file on the embedded local KMS, and reuses alias/demo on the second run', () => {
    const first = demo();
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const arn = /alias\/demo -> (arn:aws:kms:[^ ]+) \(created\)/.exec(first.stdout)?.[1];
    expect(arn, first.stdout).toBeDefined();
    expect(first.stdout).toMatch(/suite 0x0478/);
    expect(first.stdout).toMatch(/identical to the sample/);
    // One data key for all encryptions, one unwrap for all decryptions: the cache at work.
    expect(first.stdout).toMatch(/KMS calls\s+GenerateDataKey x1, Decrypt x1 /);
    expect(first.stdout).toMatch(/ESDK\s+@aws-crypto\/client-node decrypted .* same plaintext and context/);
    expect(readFileSync(join(dir, 'sample.decrypted.txt')).equals(readFileSync(join(dir, 'sample.txt')))).toBe(true);

    const second = demo();
    expect(second.code).toBe(0);
    expect(second.stdout).toContain(`alias/demo -> ${arn} (reused)`);
    expect(existsSync(join(dir, 'kms', 'lock'))).toBe(false); // the data directory was released
  });
});
