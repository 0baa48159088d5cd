/**
 * AWS's XKS proxy test client (test/third-party/aws-kms-xksproxy-test-client) is vendored
 * unmodified: every file, its bytes (SHA-256 recorded when it was copied, in
 * test/third-party/aws-kms-xksproxy-test-client.sha256) and the executable bits of its scripts.
 * A changed, added or removed file fails here: the compliance run must be AWS's tests, not ours.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../third-party');
const dir = join(root, 'aws-kms-xksproxy-test-client');

function files(d: string): string[] {
  return readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(d, e.name)) : [relative(dir, join(d, e.name))]));
}

it('the vendored XKS test client is byte-for-byte the recorded copy, LICENSE, NOTICE and PROVENANCE included', () => {
  const manifest = new Map(
    readFileSync(join(root, 'aws-kms-xksproxy-test-client.sha256'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => {
        const [hash, name] = line.split(/\s+/) as [string, string];
        return [name, hash] as const;
      }),
  );
  expect([...manifest.keys()]).toEqual(expect.arrayContaining(['LICENSE', 'NOTICE', 'PROVENANCE.md', 'test-xks-proxy']));
  expect(files(dir).sort()).toEqual([...manifest.keys()].sort());
  for (const [name, hash] of manifest) {
    expect(createHash('sha256').update(readFileSync(join(dir, name))).digest('hex'), name).toBe(hash);
  }
  for (const script of ['test-xks-proxy', 'test_encrypt_decrypt', 'test_get_health_status', 'test_get_key_metadata', 'test_encrypt_only_key', 'test_decrypt_only_key', 'test_impotent_key']) {
    expect(statSync(join(dir, script)).mode & 0o111, `${script} is executable`).not.toBe(0);
  }
});
