/**
 * examples/aws-cli/console-walkthrough.sh works in a temporary directory and used to leave it
 * behind, with PlaintextKeyMaterial.bin (a KMS key in the clear), ImportToken.bin and policy.json
 * in it. It must remove what it created on every exit, failure included, and never leave the
 * plaintext key material even in a WORK_DIR it was given. Runs with TMPDIR pointed at a directory
 * of this test, so "nothing left" is exact. Needs `aws`, `openssl` and `curl`.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { startLocalKmsServer } from '../../src/local-kms/index.js';

const root = resolve(import.meta.dirname, '../..');
const script = join(root, 'examples/aws-cli/console-walkthrough.sh');
const hasTools = spawnSync('sh', ['-c', 'command -v aws && command -v openssl && command -v curl'], { stdio: 'ignore' }).status === 0;
const dir = mkdtempSync(join(tmpdir(), 'kms-envelope-console-cleanup-'));
const servers: Awaited<ReturnType<typeof startLocalKmsServer>>[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh local KMS. */
async function kmsUrl(name: string): Promise<string> {
  const s = await startLocalKmsServer({ port: 0, dataDir: join(dir, name, 'kms'), principalsFile: join(root, 'examples/aws-cli/principals.json') });
  servers.push(s);
  return s.url;
}

/** Runs the script from an empty cwd with a private TMPDIR; asynchronous, the server runs in this process. */
async function run(name: string, env: Record<string, string>) {
  const cwd = join(dir, name, 'cwd');
  mkdirSync(join(dir, name), { recursive: true });
  const tmp = join(dir, name, 'tmp');
  mkdirSync(cwd, { recursive: true });
  mkdirSync(tmp);
  const r = await promisify(execFile)('bash', [script], {
    cwd,
    env: { ...process.env, TMPDIR: tmp, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', ...env },
    encoding: 'utf8',
    timeout: 120_000,
  }).then(
    (ok) => ({ code: 0, out: ok.stdout + ok.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, out: `${e.stdout}${e.stderr}` }),
  );
  return { ...r, cwd: readdirSync(cwd), tmp: readdirSync(tmp) };
}

it.runIf(hasTools)('removes its temporary directory and the key material, on success and on failure; runs again on the same KMS', async () => {
  const url = await kmsUrl('ok');
  const ok = await run('ok', { KMS_ENDPOINT: url });
  expect(ok.out.trim().endsWith('walkthrough complete'), ok.out).toBe(true);
  expect(ok.cwd).toEqual([]);
  expect(ok.tmp).toEqual([]);

  // Fails at its first KMS request (nothing listens there): the trap still cleans up.
  const failed = await run('failed', { KMS_ENDPOINT: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: '1' });
  expect(failed.code).not.toBe(0);
  expect(failed.cwd).toEqual([]);
  expect(failed.tmp).toEqual([]);

  // A WORK_DIR given by the caller is the caller's: kept, but without the plaintext key material.
  // Against the same KMS as the first run: alias/orders exists (AlreadyExistsException, exit 255,
  // before the script re-pointed an existing alias at the key it creates).
  const work = join(dir, 'given');
  mkdirSync(work);
  const given = await run('given-run', { KMS_ENDPOINT: url, WORK_DIR: work });
  expect(given.code, given.out).toBe(0);
  expect(given.out).toContain('alias/orders exists: re-pointed at the new key');
  expect(readdirSync(work)).toContain('policy.json');
  expect(readdirSync(work)).not.toContain('PlaintextKeyMaterial.bin');
  expect(given.tmp).toEqual([]);
}, 240_000);
