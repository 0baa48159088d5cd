/**
 * The AWS CLI (botocore's SigV4 signer, which signs fewer headers than the JS SDK) against the local
 * KMS with verified signatures and key policies. Skipped when no `aws` command is installed.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { keyPolicyFor } from '../../src/local-kms/generated-policies.js';
import { ACCOUNT, tempDir } from './helpers.js';
import { hasAwsCli } from '../support/aws-cli.js';


const admin = { key: 'AKIACLIADMIN00000001', secret: 'cli-admin-secret', arn: `arn:aws:iam::${ACCOUNT}:user/CliAdmin` };
const user = { key: 'AKIACLIUSER000000001', secret: 'cli-user-secret', arn: `arn:aws:iam::${ACCOUNT}:user/CliUser` };

describe.skipIf(!hasAwsCli())('AWS CLI against the local KMS with verified signatures', () => {
  const tmp = tempDir('lkms-awscli-');
  let server: LocalKmsServer;

  beforeAll(async () => {
    const principalsFile = join(tmp.dir, 'principals.json');
    writeFileSync(principalsFile, JSON.stringify({
      [admin.key]: { arn: admin.arn, secretAccessKey: admin.secret },
      [user.key]: { arn: user.arn, secretAccessKey: user.secret },
    }));
    server = await startLocalKmsServer({ port: 0, principalsFile, accountId: ACCOUNT });
  });
  afterAll(async () => {
    await server?.close();
    tmp.cleanup();
  });

  const aws = (who: { key: string; secret: string }, args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile('aws', ['kms', ...args, '--endpoint-url', server.url, '--region', 'us-east-1', '--output', 'json'], {
        timeout: 60_000,
        env: {
          PATH: process.env.PATH,
          HOME: tmp.dir,
          AWS_ACCESS_KEY_ID: who.key,
          AWS_SECRET_ACCESS_KEY: who.secret,
          AWS_CONFIG_FILE: join(tmp.dir, 'none'),
          AWS_SHARED_CREDENTIALS_FILE: join(tmp.dir, 'none'),
          AWS_EC2_METADATA_DISABLED: 'true',
          AWS_MAX_ATTEMPTS: '1',
          AWS_PAGER: '',
        },
      }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    });

  it('signs acceptably, and the policy holds for CLI callers', async () => {
    const policy = keyPolicyFor({ accountId: ACCOUNT, administrators: [admin.arn], users: [user.arn] });
    // The admin creates the key with a policy that keeps him administrator (lockout check passes).
    const created = await aws(admin, ['create-key', '--policy', policy, '--description', 'cli']);
    expect(created.stderr).toBe('');
    const keyId = JSON.parse(created.stdout).KeyMetadata.KeyId as string;
    const enc = await aws(user, ['encrypt', '--key-id', keyId, '--plaintext', Buffer.from('hi').toString('base64'),
      '--encryption-context', 'purpose=cli']);
    expect(enc.stderr).toBe('');
    expect(JSON.parse(enc.stdout).KeyId).toContain(keyId);
    const denied = await aws(admin, ['encrypt', '--key-id', keyId, '--plaintext', Buffer.from('hi').toString('base64')]);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('AccessDeniedException');
    const wrong = await aws({ key: user.key, secret: 'wrong' }, ['describe-key', '--key-id', keyId]);
    expect(wrong.stderr).toContain('InvalidSignatureException');
  }, 120_000);
});
