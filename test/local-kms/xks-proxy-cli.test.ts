/**
 * The README's external key store commands as a user runs them: the built CLI
 * (`kms-envelope local-kms`, after `npm run build`) and the real AWS CLI, against the project's
 * XKS proxy over a SoftHSM2 token. Skipped when the proxy's prerequisites or the AWS CLI are missing.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { proxySkipReason, startProxyUnderTest, type ProxyUnderTest } from './xks-harness.js';

const root = resolve(import.meta.dirname, '../..');
const hasAws = spawnSync('sh', ['-c', 'command -v aws'], { stdio: 'ignore' }).status === 0;
const reason = proxySkipReason ?? (hasAws ? undefined : 'the AWS CLI is not installed');
let child: ChildProcess | undefined;
let proxy: ProxyUnderTest | undefined;
// Made only when the test runs: vitest runs no hooks for a file whose tests all skip, so a
// directory made for a skipped test would be left behind.
const dir = reason === undefined ? mkdtempSync(join(tmpdir(), 'xks-cli-')) : '';

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  await proxy?.close();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

it.skipIf(reason !== undefined)(`kms-envelope local-kms with an external key store, driven by the AWS CLI${reason ? ` (skipped: ${reason})` : ''}`, async () => {
  const xksKeyId = 'cli-key';
  proxy = await startProxyUnderTest([xksKeyId]);
  child = spawn(process.execPath, [join(root, 'dist/cli/main.js'), 'local-kms', '--port', '0', '--data-dir', join(dir, 'kms-data'), '--xks-timeout-ms', '5000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const url = await new Promise<string>((res, rej) => {
    let out = '';
    child!.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) res(m[1]!);
    });
    child!.once('exit', (code) => rej(new Error(`local-kms exited ${code}`)));
  });
  // AWS CLI v1 fetches parameter values that look like http(s) URLs (cli_follow_urlparam) and
  // would send the proxy's address as a GET; turned off here as the README says.
  const config = join(dir, 'aws-config');
  writeFileSync(config, '[default]\ncli_follow_urlparam = false\n');
  const run = (...args: string[]) =>
    promisify(execFile)('aws', ['--endpoint-url', url, '--region', 'us-east-1', '--output', 'text', 'kms', ...args], {
      env: { ...process.env, AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'x', AWS_PAGER: '', AWS_CONFIG_FILE: config },
      encoding: 'utf8',
      timeout: 60_000,
    });
  const aws = async (...args: string[]) => (await run(...args)).stdout.trim();
  const storeId = await aws(
    'create-custom-key-store',
    '--custom-key-store-name', 'xks',
    '--custom-key-store-type', 'EXTERNAL_KEY_STORE',
    '--xks-proxy-connectivity', 'PUBLIC_ENDPOINT',
    '--xks-proxy-uri-endpoint', proxy.url,
    '--xks-proxy-uri-path', proxy.path,
    '--xks-proxy-authentication-credential', `AccessKeyId=${proxy.accessKeyId},RawSecretAccessKey=${proxy.secret}`,
    '--query', 'CustomKeyStoreId',
  );
  expect(storeId).toMatch(/^cks-/);
  await aws('connect-custom-key-store', '--custom-key-store-id', storeId);
  expect(await aws('describe-custom-key-stores', '--custom-key-store-id', storeId, '--query', 'CustomKeyStores[0].[ConnectionState,XksProxyConfiguration.UriPath]')).toBe(`CONNECTED\t${proxy.path}`);
  const [keyId, shownXksKeyId] = (await aws('create-key', '--origin', 'EXTERNAL_KEY_STORE', '--custom-key-store-id', storeId, '--xks-key-id', xksKeyId, '--query', 'KeyMetadata.[KeyId,XksKeyConfiguration.Id]')).split('\t');
  expect(shownXksKeyId).toBe(xksKeyId);
  // fileb:// passes raw bytes with AWS CLI v1 and v2 alike.
  const plainFile = join(dir, 'plain.txt');
  const blobFile = join(dir, 'blob.bin');
  writeFileSync(plainFile, 'hello xks');
  const blob = await aws('encrypt', '--key-id', keyId, '--plaintext', `fileb://${plainFile}`, '--query', 'CiphertextBlob');
  writeFileSync(blobFile, Buffer.from(blob, 'base64'));
  expect(Buffer.from(await aws('decrypt', '--ciphertext-blob', `fileb://${blobFile}`, '--query', 'Plaintext'), 'base64').toString()).toBe('hello xks');
  await aws('disconnect-custom-key-store', '--custom-key-store-id', storeId);
  expect(await aws('describe-key', '--key-id', keyId, '--query', 'KeyMetadata.KeyState')).toBe('Unavailable');
  await expect(run('decrypt', '--ciphertext-blob', `fileb://${blobFile}`)).rejects.toThrow(/KMSInvalidStateException/);
  await aws('connect-custom-key-store', '--custom-key-store-id', storeId);
  expect(Buffer.from(await aws('decrypt', '--ciphertext-blob', `fileb://${blobFile}`, '--query', 'Plaintext'), 'base64').toString()).toBe('hello xks');
  await aws('schedule-key-deletion', '--key-id', keyId, '--pending-window-in-days', '7');
  await aws('disconnect-custom-key-store', '--custom-key-store-id', storeId);
  await expect(run('delete-custom-key-store', '--custom-key-store-id', storeId)).rejects.toThrow(/CustomKeyStoreHasCMKsException/);
  // Fourteen AWS CLI processes (a few seconds each on a loaded machine): more than the default bound.
}, 180_000);
