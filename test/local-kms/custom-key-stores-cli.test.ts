/**
 * The README's "Custom key stores" commands as a user runs them: the built CLI
 * (`kms-envelope local-kms --hsm CLUSTER=LIB:TOKEN`, after `npm run build`) and the real AWS CLI
 * against a SoftHSM2 token. Skipped when SoftHSM2, pkcs11js or the AWS CLI is missing.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { USER_PIN, skipReason, softHsm, type SoftHsm } from './softhsm.js';

const root = resolve(import.meta.dirname, '../..');
const hasAws = spawnSync('sh', ['-c', 'command -v aws'], { stdio: 'ignore' }).status === 0;
const reason = skipReason ?? (hasAws ? undefined : 'the AWS CLI is not installed');
let child: ChildProcess | undefined;
let hsm: SoftHsm | undefined;

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  hsm?.cleanup();
});

it.skipIf(reason !== undefined)(`kms-envelope local-kms --hsm with the AWS CLI${reason ? ` (skipped: ${reason})` : ''}`, async () => {
  hsm = softHsm();
  hsm.initToken('kms-token');
  const anchor = join(hsm.dir, 'customerCA.crt');
  writeFileSync(anchor, hsm.certificate('customerCA'));
  child = spawn(process.execPath, [join(root, 'dist/cli/main.js'), 'local-kms', '--port', '0', '--data-dir', join(hsm.dir, 'kms-data'), '--hsm', `cluster-1234567890a=${hsm.module}:kms-token`], {
    env: { ...process.env, SOFTHSM2_CONF: hsm.conf },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = await new Promise<string>((res, rej) => {
    let out = '';
    child!.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) res(m[1]!);
    });
    child!.once('exit', (code) => rej(new Error(`local-kms exited ${code}`)));
  });
  const aws = async (...args: string[]) =>
    (
      await promisify(execFile)('aws', ['--endpoint-url', url, '--region', 'us-east-1', '--output', 'text', 'kms', ...args], {
        env: { ...process.env, AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'x', AWS_PAGER: '' },
        encoding: 'utf8',
        timeout: 60_000,
      })
    ).stdout.trim();
  const storeId = await aws('create-custom-key-store', '--custom-key-store-name', 'hsm', '--cloud-hsm-cluster-id', 'cluster-1234567890a', '--key-store-password', USER_PIN, '--trust-anchor-certificate', `file://${anchor}`, '--query', 'CustomKeyStoreId');
  expect(storeId).toMatch(/^cks-/);
  await aws('connect-custom-key-store', '--custom-key-store-id', storeId);
  expect(await aws('describe-custom-key-stores', '--custom-key-store-id', storeId, '--query', 'CustomKeyStores[0].ConnectionState')).toBe('CONNECTED');
  const keyId = await aws('create-key', '--origin', 'AWS_CLOUDHSM', '--custom-key-store-id', storeId, '--query', 'KeyMetadata.KeyId');
  // fileb:// passes raw bytes with AWS CLI v1 and v2 alike.
  const plainFile = join(hsm.dir, 'plain.txt');
  const blobFile = join(hsm.dir, 'blob.bin');
  writeFileSync(plainFile, 'hello hsm');
  const blob = await aws('encrypt', '--key-id', keyId, '--plaintext', `fileb://${plainFile}`, '--query', 'CiphertextBlob');
  writeFileSync(blobFile, Buffer.from(blob, 'base64'));
  const plain = await aws('decrypt', '--ciphertext-blob', `fileb://${blobFile}`, '--query', 'Plaintext');
  expect(Buffer.from(plain, 'base64').toString()).toBe('hello hsm');
});
