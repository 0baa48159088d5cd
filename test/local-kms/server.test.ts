import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { connect } from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateKeyCommand, DescribeKeyCommand } from '@aws-sdk/client-kms';
import { startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { parseLocalKmsArgs, runLocalKmsCommand } from '../../src/local-kms/cli.js';
import { sdkClient, tempDir } from './helpers.js';

const execFileAsync = promisify(execFile);

async function post(url: string, target: string | undefined, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-amz-json-1.1', ...(target ? { 'X-Amz-Target': target } : {}), ...headers },
    body,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

describe('JSON 1.1 protocol', () => {
  let server: LocalKmsServer;
  beforeAll(async () => {
    server = await startLocalKmsServer({ port: 0, maxBodyBytes: 64 * 1024 });
  });
  afterAll(async () => {
    await server.close();
  });

  it('answers with JSON 1.1 headers and AWS error bodies', async () => {
    const ok = await post(server.url, 'TrentService.CreateKey', '{}');
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('application/x-amz-json-1.1');
    expect(ok.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/);
    const md = ok.json.KeyMetadata as Record<string, unknown>;
    expect(typeof md.CreationDate).toBe('number'); // epoch seconds
    expect(Math.abs((md.CreationDate as number) - Date.now() / 1000)).toBeLessThan(60);

    const nf = await post(server.url, 'TrentService.DescribeKey', JSON.stringify({ KeyId: 'alias/none' }));
    expect(nf.status).toBe(400);
    expect(nf.json.__type).toBe('NotFoundException');
    expect(typeof nf.json.message).toBe('string');
    expect(nf.headers.get('x-amzn-requestid')).toBeTruthy();
  });

  it('maps malformed requests to AWS error names', async () => {
    expect((await post(server.url, undefined, '{}')).json.__type).toBe('UnknownOperationException');
    expect((await post(server.url, 'TrentService.NoSuchOp', '{}')).json.__type).toBe('UnknownOperationException');
    expect((await post(server.url, 'Other.CreateKey', '{}')).json.__type).toBe('UnknownOperationException');
    // A modelled operation asked for what is not modelled (a VPC endpoint service connection).
    expect((await post(server.url, 'TrentService.CreateCustomKeyStore', '{"CustomKeyStoreName": "x", "CustomKeyStoreType": "EXTERNAL_KEY_STORE", "XksProxyUriEndpoint": "https://xks.example.com", "XksProxyUriPath": "/kms/xks/v1", "XksProxyConnectivity": "VPC_ENDPOINT_SERVICE", "XksProxyVpcEndpointServiceName": "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdefg", "XksProxyAuthenticationCredential": {"AccessKeyId": "ABCDEFGHIJKLMNOPQRST", "RawSecretAccessKey": "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"}}')).json.__type).toBe('XksProxyVpcEndpointServiceNotFoundException');
    expect((await post(server.url, 'TrentService.CreateKey', '{"Description": ')).json.__type).toBe('SerializationException');
    expect((await post(server.url, 'TrentService.CreateKey', '[1]')).json.__type).toBe('SerializationException');
    expect((await post(server.url, 'TrentService.CreateKey', '{"Description": 5}')).json.__type).toBe('SerializationException');
    expect((await post(server.url, 'TrentService.ListKeys', '{"Limit": "5"}')).json.__type).toBe('SerializationException');
    expect((await post(server.url, 'TrentService.ListKeys', '{"Limit": 1.5}')).json.__type).toBe('SerializationException');
    expect((await post(server.url, 'TrentService.Encrypt', '{"KeyId": "alias/x", "Plaintext": "***"}')).json.__type).toBe('SerializationException');
    expect((await post(server.url, 'TrentService.Encrypt', '{"KeyId": "alias/x", "Plaintext": "eA==", "EncryptionContext": {"a": 1}}')).json.__type).toBe('SerializationException');
    const missing = await post(server.url, 'TrentService.Encrypt', '{"Plaintext": "eA=="}');
    expect(missing.json.__type).toBe('ValidationException');
    expect(missing.json.message).toBe("1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null");
    const two = await post(server.url, 'TrentService.Encrypt', '{}');
    expect(two.json.message).toMatch(/^2 validation errors detected: /);
    // Unknown members are ignored, as AWS does.
    expect((await post(server.url, 'TrentService.ListKeys', '{"FutureMember": true}')).status).toBe(200);
    const get = await fetch(server.url);
    expect(get.status).toBe(404);
    expect((await fetch(`${server.url}/_local/clock`)).status).toBe(404);
  });

  it('refuses bodies over the limit with 413 and keeps serving', async () => {
    const big = JSON.stringify({ Description: 'x'.repeat(70 * 1024) });
    const res = await post(server.url, 'TrentService.CreateKey', big);
    expect(res.status).toBe(413);
    expect(res.json.__type).toBe('RequestEntityTooLargeException');
    expect((await post(server.url, 'TrentService.ListKeys', '{}')).status).toBe(200);
  });

  it('is not wedged by a slow client or a half-closed connection', async () => {
    const slow = connect(server.port, '127.0.0.1');
    await new Promise<void>((r) => slow.once('connect', () => r()));
    slow.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"partial":');
    const half = connect(server.port, '127.0.0.1');
    await new Promise<void>((r) => half.once('connect', () => r()));
    const answer = new Promise<string>((resolve) => {
      let data = '';
      half.on('data', (d) => (data += d.toString()));
      half.on('end', () => resolve(data));
      half.on('close', () => resolve(data));
    });
    half.end('POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: TrentService.ListKeys\r\nContent-Length: 2\r\n\r\n{}');
    expect(await answer).toMatch(/^HTTP\/1\.1 200/);
    // Meanwhile other clients are served.
    const kms = sdkClient(server.url);
    await kms.send(new CreateKeyCommand({}));
    kms.destroy();
    slow.destroy();
  });

  it('runs the AWS CLI against it (skipped only when aws is not installed)', async (ctx) => {
    const which = await execFileAsync('which', ['aws']).catch(() => undefined);
    if (!which) ctx.skip();
    const tmp = tempDir('lkms-awscli-');
    try {
      const env = {
        ...process.env,
        AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
        AWS_SECRET_ACCESS_KEY: 'x',
        AWS_DEFAULT_REGION: 'us-east-1',
        AWS_CONFIG_FILE: join(tmp.dir, 'none'),
        AWS_SHARED_CREDENTIALS_FILE: join(tmp.dir, 'none'),
        AWS_PAGER: '',
      };
      const aws = async (...args: string[]) =>
        JSON.parse((await execFileAsync('aws', ['--endpoint-url', server.url, '--output', 'json', 'kms', ...args], { env })).stdout);
      const created = await aws('create-key', '--description', 'from the AWS CLI', '--tags', 'TagKey=team,TagValue=cli');
      expect(created.KeyMetadata.Description).toBe('from the AWS CLI');
      const keyId = created.KeyMetadata.KeyId as string;
      await execFileAsync('aws', ['--endpoint-url', server.url, 'kms', 'create-alias', '--alias-name', 'alias/cli', '--target-key-id', keyId], { env });
      writeFileSync(join(tmp.dir, 'plain.txt'), 'hello from the cli');
      const enc = await aws('encrypt', '--key-id', 'alias/cli', '--plaintext', `fileb://${join(tmp.dir, 'plain.txt')}`, '--encryption-context', 'purpose=test');
      writeFileSync(join(tmp.dir, 'blob.bin'), Buffer.from(enc.CiphertextBlob, 'base64'));
      const dec = await aws('decrypt', '--ciphertext-blob', `fileb://${join(tmp.dir, 'blob.bin')}`, '--encryption-context', 'purpose=test');
      expect(Buffer.from(dec.Plaintext, 'base64').toString()).toBe(readFileSync(join(tmp.dir, 'plain.txt'), 'utf8'));
      expect(dec.KeyId).toBe(created.KeyMetadata.Arn);
      const err = await execFileAsync('aws', ['--endpoint-url', server.url, 'kms', 'describe-key', '--key-id', 'alias/missing'], { env }).catch((e: { stderr: string }) => e);
      expect((err as { stderr: string }).stderr).toMatch(/NotFoundException/);
    } finally {
      tmp.cleanup();
    }
  }, 60_000);
});

describe('kms-envelope local-kms command', () => {
  it('parses options', () => {
    expect(parseLocalKmsArgs(['--port', '0', '--data-dir', '/d', '--test-clock', '--strict-principals', '--region=eu-west-1'])).toEqual({
      port: 0,
      dataDir: '/d',
      testClock: true,
      strictPrincipals: true,
      region: 'eu-west-1',
    });
    expect(parseLocalKmsArgs([])).toEqual({ port: 4599 });
    expect(parseLocalKmsArgs(['--help'])).toBe('help');
    expect(() => parseLocalKmsArgs(['--port', 'x'])).toThrow(/--port/);
    expect(() => parseLocalKmsArgs(['--port', '70000'])).toThrow(/--port/);
    expect(() => parseLocalKmsArgs(['--bogus'])).toThrow(/unknown option/);
    expect(() => parseLocalKmsArgs(['--data-dir'])).toThrow(/needs a value/);
  });

  it('prints the URL once listening, serves, and stops on SIGTERM', async () => {
    const tmp = tempDir('lkms-cli-');
    const lines: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      const done = runLocalKmsCommand(['--port', '0', '--data-dir', tmp.dir, '--test-clock']);
      let url: string | undefined;
      for (let i = 0; i < 200 && !url; i++) {
        url = lines.join('').match(/^listening on (http:\/\/127\.0\.0\.1:\d+)$/m)?.[1];
        if (!url) await new Promise((r) => setTimeout(r, 10));
      }
      spy.mockRestore();
      expect(url).toBeDefined();
      const kms = sdkClient(url!);
      const key = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
      expect((await kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }))).KeyMetadata!.KeyId).toBe(key.KeyId);
      kms.destroy();
      expect((await fetch(`${url}/_local/clock`)).status).toBe(200);
      process.emit('SIGTERM');
      expect(await done).toBe(0);
      await expect(fetch(url!)).rejects.toThrow();
    } finally {
      spy.mockRestore();
      tmp.cleanup();
    }
  });
});
