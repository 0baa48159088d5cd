/**
 * A key policy with many-wildcard `StringLike` patterns (IAM User Guide, "IAM JSON policy
 * elements: Condition operators", string condition operators) must not stall the local KMS: while
 * Encrypt requests carrying 100,000-character encryption context values are evaluated against it,
 * a DescribeKey from another client is still answered.
 *
 * The server runs in its own process so that a stalled event loop there cannot stall this test's
 * timers. The bound is deliberately generous (it checks liveness, not speed; `npm run bench`
 * measures speed): the regex-based matcher this replaced needed minutes for a 400-character value.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateKeyCommand, DescribeKeyCommand, EncryptCommand } from '@aws-sdk/client-kms';
import { describe, expect, it } from 'vitest';
import { ROOT_ARN, sdkClient, tempDir } from './helpers.js';

const LIVENESS_BOUND_MS = 30_000;

/** Starts the local KMS CLI in a child process (vite-node runs the TypeScript) and waits for its URL. */
async function childServer(dir: string): Promise<{ proc: ChildProcess; url: string }> {
  const script = join(dir, 'run-server.ts');
  const cli = new URL('../../src/local-kms/cli.ts', import.meta.url).pathname;
  writeFileSync(script, `import { runLocalKmsCommand } from ${JSON.stringify(cli)};\nawait runLocalKmsCommand(['--port', '0', '--data-dir', ${JSON.stringify(join(dir, 'data'))}]);\n`);
  const bin = new URL('../../node_modules/.bin/vite-node', import.meta.url).pathname;
  const proc = spawn(bin, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no URL from the server process: ${out}`)), 30_000);
    proc.stdout!.on('data', (d) => {
      out += d.toString();
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.once('exit', (code) => reject(new Error(`server process exited with ${code}`)));
  });
  return { proc, url };
}

/** Settles with the outcome of `p`, or with 'pending' when it has not settled within `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<{ ok: T } | { error: Error } | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), ms)));
  try {
    return await Promise.race([p.then((ok) => ({ ok }), (error: Error) => ({ error })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('many-wildcard key policy patterns over HTTP', () => {
  it('Encrypt with 100,000-character context values does not stall a concurrent DescribeKey', async () => {
    const tmp = tempDir('lkms-redos-');
    let proc: ChildProcess | undefined;
    try {
      const server = await childServer(tmp.dir);
      proc = server.proc;
      const kms = sdkClient(server.url);
      const patterns = ['*a*a*a*a*a*a*a*a*b', '*a?a?a?a*a*a*a?b*', `a*${'?*'.repeat(40)}b`, `*${'a'.repeat(3000)}b*`];
      const policy = JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Sid: 'Root', Effect: 'Allow', Principal: { AWS: ROOT_ARN }, Action: 'kms:*', Resource: '*' },
          {
            Sid: 'NoBlobEndingInB',
            Effect: 'Deny',
            Principal: '*',
            Action: 'kms:Encrypt',
            Resource: '*',
            Condition: { StringLike: { 'kms:EncryptionContext:blob': patterns } },
          },
        ],
      });
      const keyId = (await kms.send(new CreateKeyCommand({ Policy: policy }))).KeyMetadata!.KeyId!;

      // Several Encrypts from other clients, left running; then DescribeKey.
      const long = 'a'.repeat(100_000);
      const encrypt = (blob: string) =>
        sdkClient(server.url).send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x'), EncryptionContext: { blob } }));
      const encrypts = [encrypt(long), encrypt(`${long}b`), encrypt(long), encrypt(`b${long}`)];
      for (const e of encrypts) e.catch(() => undefined); // settled below, or abandoned with the server
      await new Promise((r) => setTimeout(r, 1000)); // the Encrypt bodies (100 KB each) are at the server by now

      const describe = await within(kms.send(new DescribeKeyCommand({ KeyId: keyId })), LIVENESS_BOUND_MS);
      expect(describe, 'DescribeKey was not answered while the Encrypts were evaluated').not.toBe('pending');
      expect(describe).toHaveProperty('ok.KeyMetadata.KeyId', keyId);

      // And the policy decided each Encrypt as IAM would: only the value ending in "b" is like a pattern.
      const outcomes = await Promise.all(encrypts.map((e) => within(e, LIVENESS_BOUND_MS)));
      expect(outcomes.map((o) => (o === 'pending' ? 'pending' : 'ok' in o ? 'allowed' : o.error.name))).toEqual([
        'allowed',
        'AccessDeniedException',
        'allowed',
        'allowed',
      ]);
    } finally {
      proc?.kill('SIGKILL');
      tmp.cleanup();
    }
  });
});
