/**
 * `kms: { keyId: ARN }` with no Region anywhere in the environment: the default client calls KMS
 * in the Region the ARN names (a KMS key is regional; the ESDK's KMS keyring makes its client from
 * the ARN's Region too). Before, such an Envelope failed with the SDK's "Region is missing".
 * Run in a child process whose environment has no AWS_REGION, no profile and no config files.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const dist = fileURLToPath(new URL('../../dist/', import.meta.url));
const home = mkdtempSync(join(tmpdir(), 'kms-envelope-region-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

const script = (keyRef: string) => `
import { KMSClient, CreateKeyCommand } from '@aws-sdk/client-kms';
const { Envelope } = await import(${JSON.stringify(join(dist, 'index.js'))});
const { startLocalKmsServer } = await import(${JSON.stringify(join(dist, 'local-kms/index.js'))});
const server = await startLocalKmsServer({ region: 'eu-west-3' });
try {
  const admin = new KMSClient({ region: 'eu-west-3', endpoint: server.url });
  const { KeyMetadata } = await admin.send(new CreateKeyCommand({}));
  const keyId = ${keyRef};
  const envelope = new Envelope({ kms: { keyId, endpoint: server.url } });
  try {
    const message = await envelope.encrypt('hello', { context: { a: 'b' } });
    const { plaintext } = await envelope.decrypt(message);
    console.log(JSON.stringify({ ok: plaintext.toString() }));
  } catch (err) {
    console.log(JSON.stringify({ error: String(err.message ?? err) }));
  }
} finally {
  await server.close();
}
`;

function run(keyRef: string): { ok?: string; error?: string } {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '',
    HOME: home,
    AWS_ACCESS_KEY_ID: 'AKIDREGIONTEST',
    AWS_SECRET_ACCESS_KEY: 'region-test',
    AWS_CONFIG_FILE: join(home, 'none'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'none'),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script(keyRef)], {
    cwd: fileURLToPath(new URL('../../', import.meta.url)),
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

describe('the default KMS client takes its Region from the key ARN', () => {
  it('a key ARN works with no Region in the environment', () => {
    expect(existsSync(join(dist, 'index.js')), 'run npm run build first').toBe(true);
    expect(run('KeyMetadata.Arn')).toEqual({ ok: 'hello' });
  });

  it('a bare key id still needs a Region from the environment (the SDK says so)', () => {
    const r = run('KeyMetadata.KeyId');
    expect(r.ok).toBeUndefined();
    expect(r.error).toMatch(/Region is missing/);
  });
});
