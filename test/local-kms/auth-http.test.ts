/**
 * Authentication of the local KMS over HTTP once a principals file is given: no anonymous or
 * unknown caller by default, SigV4 credential scope and signed headers checked as AWS checks them,
 * and no request input reaching Object.prototype through a lookup table. Clients: @aws-sdk/client-kms,
 * the AWS CLI (botocore's signer), plain unsigned requests (what curl sends) and hand-signed ones.
 *
 * The principals are the README walkthrough's (examples/aws-cli/principals.json).
 */
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  CreateKeyCommand,
  DescribeKeyCommand,
  EncryptCommand,
  KMSClient,
  ListKeysCommand,
  type KMSClientConfig,
} from '@aws-sdk/client-kms';
import { startLocalKmsServer, type LocalKmsServer, type LocalKmsServerOptions } from '../../src/local-kms/index.js';
import { LocalKmsUsageError, parseLocalKmsArgs, runLocalKmsCommand } from '../../src/local-kms/cli.js';
import { expectAwsError, tempDir } from './helpers.js';
import { handSign, postRaw, postUnsigned } from './signing.js';
import { hasAwsCli } from '../support/aws-cli.js';

const principalsFile = resolve(import.meta.dirname, '../../examples/aws-cli/principals.json');
const ROOT = { key: 'AKIAEXAMPLEROOT0001', secret: 'root-secret' };
const APP = { key: 'AKIAEXAMPLEORDERS01', secret: 'orders-secret' };
const UNKNOWN = { key: 'AKIAEXAMPLEUNKNOWN01', secret: 'whatever' };

const tmp = tempDir('lkms-auth-');
const servers: LocalKmsServer[] = [];
async function start(opts: LocalKmsServerOptions = {}): Promise<LocalKmsServer> {
  const s = await startLocalKmsServer({ port: 0, principalsFile, ...opts });
  servers.push(s);
  return s;
}
afterAll(async () => {
  for (const s of servers) await s.close();
  tmp.cleanup();
});

function client(url: string, who: { key: string; secret: string }, extra: Partial<KMSClientConfig> = {}): KMSClient {
  return new KMSClient({
    endpoint: url,
    region: 'us-east-1',
    credentials: { accessKeyId: who.key, secretAccessKey: who.secret },
    maxAttempts: 1,
    ...extra,
  });
}

const awsCli = hasAwsCli();

/** The AWS CLI against `url`, with exactly these credentials (or none: `--no-sign-request`). */
const aws = (url: string, who: { key: string; secret: string } | 'unsigned', args: string[], region = 'us-east-1') =>
  new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
    execFile(
      'aws',
      ['kms', ...args, '--endpoint-url', url, '--region', region, '--output', 'json', ...(who === 'unsigned' ? ['--no-sign-request'] : [])],
      {
        timeout: 60_000,
        env: {
          PATH: process.env.PATH,
          HOME: tmp.dir,
          ...(who === 'unsigned' ? {} : { AWS_ACCESS_KEY_ID: who.key, AWS_SECRET_ACCESS_KEY: who.secret }),
          AWS_CONFIG_FILE: join(tmp.dir, 'none'),
          AWS_SHARED_CREDENTIALS_FILE: join(tmp.dir, 'none'),
          AWS_EC2_METADATA_DISABLED: 'true',
          AWS_MAX_ATTEMPTS: '1',
          AWS_PAGER: '',
        },
      },
      (err, stdout, stderr) => done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });

// AWS KMS API Reference, "Common Errors" (MissingAuthenticationToken: the request must contain a
// valid access key id; an unknown key is UnrecognizedClientException, "The security token included
// in the request is invalid." on the JSON protocol); IAM User Guide, "Elements of an AWS API
// request signature" (every request carries the authentication information).
describe('a principals file admits no anonymous or unknown caller by default', () => {
  let server: LocalKmsServer;
  let keyId: string;
  let ciphertext: Uint8Array;
  beforeAll(async () => {
    server = await start();
    keyId = (await client(server.url, ROOT).send(new CreateKeyCommand({ Description: 'auth' }))).KeyMetadata!.KeyId!;
    ciphertext = (await client(server.url, ROOT).send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('secret') }))).CiphertextBlob!;
  });

  it('an unsigned request (what curl sends) is MissingAuthenticationTokenException: no decrypt, no deletion', async () => {
    const decrypt = await postUnsigned(server.url, 'Decrypt', JSON.stringify({ CiphertextBlob: Buffer.from(ciphertext).toString('base64') }));
    expect(decrypt).toEqual({ status: 400, json: { __type: 'MissingAuthenticationTokenException', message: 'Request is missing Authentication Token' } });
    const schedule = await postUnsigned(server.url, 'ScheduleKeyDeletion', JSON.stringify({ KeyId: keyId, PendingWindowInDays: 7 }));
    expect(schedule.json.__type).toBe('MissingAuthenticationTokenException');
    const state = (await client(server.url, ROOT).send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState;
    expect(state).toBe('Enabled');
  });

  it('an access key that is not in the file is UnrecognizedClientException (SDK)', async () => {
    const e = await expectAwsError(client(server.url, UNKNOWN).send(new DescribeKeyCommand({ KeyId: keyId })), 'UnrecognizedClientException');
    expect(e.message).toBe('The security token included in the request is invalid.');
    expect(e.$metadata?.httpStatusCode).toBe(400);
    await expectAwsError(client(server.url, UNKNOWN).send(new CreateKeyCommand({})), 'UnrecognizedClientException');
  });

  it.runIf(awsCli)('the AWS CLI: unknown key UnrecognizedClientException, --no-sign-request MissingAuthenticationTokenException', async () => {
    const unknown = await aws(server.url, UNKNOWN, ['list-keys']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('UnrecognizedClientException');
    const unsigned = await aws(server.url, 'unsigned', ['schedule-key-deletion', '--key-id', keyId]);
    expect(unsigned.code).not.toBe(0);
    expect(unsigned.stderr).toContain('MissingAuthenticationTokenException');
    const ok = await aws(server.url, APP, ['list-keys']);
    expect(ok.stderr).toBe('');
  }, 120_000);

  it('allowUnknownKeysAsRoot (opt-in): an unknown key is the account root, an unsigned request is still refused', async () => {
    const open = await start({ allowUnknownKeysAsRoot: true });
    const created = await client(open.url, UNKNOWN).send(new CreateKeyCommand({}));
    expect(created.KeyMetadata?.KeyId).toBeTruthy();
    const unsigned = await postUnsigned(open.url, 'ListKeys', '{}');
    expect(unsigned.json.__type).toBe('MissingAuthenticationTokenException');
    // Still a well-formed signature for a Region the server serves (its partition's).
    await expectAwsError(client(open.url, UNKNOWN, { region: 'cn-north-1' }).send(new ListKeysCommand({})), 'InvalidSignatureException');
  });

  it('options: strictPrincipals: true is the default (kept), strictPrincipals: false and contradictions are refused', async () => {
    const strict = await start({ strictPrincipals: true });
    await expectAwsError(client(strict.url, UNKNOWN).send(new ListKeysCommand({})), 'UnrecognizedClientException');
    await expect(startLocalKmsServer({ port: 0, principalsFile, strictPrincipals: false })).rejects.toThrow(/strictPrincipals.*allowUnknownKeysAsRoot/);
    await expect(startLocalKmsServer({ port: 0, principalsFile, strictPrincipals: true, allowUnknownKeysAsRoot: true })).rejects.toThrow(RangeError);
    await expect(startLocalKmsServer({ port: 0, allowUnknownKeysAsRoot: true })).rejects.toThrow(/allowUnknownKeysAsRoot.*principalsFile/);
    await expect(startLocalKmsServer({ port: 0, principalsFile, allowUnknownKeysAsRoot: 'yes' as never })).rejects.toThrow(TypeError);
  });

  it('CLI: --allow-unknown-keys-as-root sets the option, --strict-principals is still accepted', () => {
    expect(parseLocalKmsArgs(['--principals', 'p.json', '--allow-unknown-keys-as-root'])).toMatchObject({ principalsFile: 'p.json', allowUnknownKeysAsRoot: true });
    expect(parseLocalKmsArgs(['--principals', 'p.json', '--strict-principals'])).toMatchObject({ strictPrincipals: true });
  });

  it('without a principals file every caller is still the account root, signed or not (the offline default)', async () => {
    const offline = await startLocalKmsServer({ port: 0 });
    servers.push(offline);
    expect((await postUnsigned(offline.url, 'CreateKey', '{}')).status).toBe(200);
    await client(offline.url, UNKNOWN).send(new ListKeysCommand({}));
  });
});

// An entry with an ARN and no secret cannot have its signature verified: everything else a
// signature carries is still checked (IAM User Guide, "Elements of an AWS API request signature":
// algorithm, credential scope, signed headers, date), so it is never anonymous.
describe('principals without a secret', () => {
  const NOSECRET = { key: 'AKIAEXAMPLENOSECRET1', secret: 'any-secret-at-all' };
  let server: LocalKmsServer;
  beforeAll(async () => {
    const file = join(tmp.dir, 'principals-nosecret.json');
    writeFileSync(file, JSON.stringify({
      [ROOT.key]: { arn: 'arn:aws:iam::111122223333:root', secretAccessKey: ROOT.secret },
      [NOSECRET.key]: { arn: 'arn:aws:iam::111122223333:user/NoSecret' },
    }));
    server = await start({ principalsFile: file });
  });

  it('a well-formed signature with any secret acts as the entry (the id is the credential)', async () => {
    const policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::111122223333:root' }, Action: 'kms:*', Resource: '*' },
        { Effect: 'Deny', Principal: { AWS: 'arn:aws:iam::111122223333:user/NoSecret' }, Action: 'kms:DescribeKey', Resource: '*' },
      ],
    });
    const { KeyMetadata } = await client(server.url, ROOT).send(new CreateKeyCommand({ Policy: policy }));
    const e = await expectAwsError(client(server.url, NOSECRET).send(new DescribeKeyCommand({ KeyId: KeyMetadata!.KeyId })), 'AccessDeniedException');
    expect(e.message).toContain('arn:aws:iam::111122223333:user/NoSecret');
    await client(server.url, ROOT).send(new DescribeKeyCommand({ KeyId: KeyMetadata!.KeyId }));
  });

  it('kms-envelope local-kms names the secret-less entries at start (never a secret)', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const o = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => (out.push(String(c)), true));
    const e = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => (err.push(String(c)), true));
    try {
      const done = runLocalKmsCommand(['--port', '0', '--principals', join(tmp.dir, 'principals-nosecret.json'), '--allow-unknown-keys-as-root']);
      for (let i = 0; i < 200 && !out.join('').includes('listening on'); i++) await new Promise((r) => setTimeout(r, 10));
      process.emit('SIGTERM');
      expect(await done).toBe(0);
    } finally {
      o.mockRestore();
      e.mockRestore();
    }
    const text = err.join('');
    expect(text).toContain(`1 principal(s) without "secretAccessKey" (${NOSECRET.key})`);
    expect(text).toContain('--allow-unknown-keys-as-root: any access key not in the principals file acts as the account root');
    expect(text).not.toContain(ROOT.secret);
  });

  it('a garbled Authorization, a foreign Region, a stale date or an unsigned target naming it is refused', async () => {
    const garbled = await postRaw(server.url, {
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': 'TrentService.ListKeys',
      authorization: `AWS4-HMAC-SHA256 Credential=${NOSECRET.key}/20240101/us-east-1/kms/aws4_request`,
    }, '{}');
    expect(garbled.json.__type).toBe('IncompleteSignatureException');
    const base = { url: server.url, target: 'ListKeys', body: '{}', accessKeyId: NOSECRET.key, secretAccessKey: NOSECRET.secret };
    const foreign = await postRaw(server.url, await handSign({ ...base, region: 'us-gov-west-1' }), '{}');
    expect(foreign.json).toMatchObject({ __type: 'InvalidSignatureException', message: expect.stringMatching(/^Credential should be scoped to a valid region/) });
    const stale = await postRaw(server.url, await handSign({ ...base, signingDate: new Date(Date.now() - 20 * 60_000) }), '{}');
    expect(stale.json).toMatchObject({ __type: 'InvalidSignatureException', message: expect.stringMatching(/^Signature expired/) });
    const target = await postRaw(server.url, await handSign({ ...base, unsigned: ['x-amz-target'] }), '{}');
    expect(target.json.__type).toBe('InvalidSignatureException');
    expect((await postRaw(server.url, await handSign(base), '{}')).status).toBe(200);
  });
});

// IAM User Guide, "Create a signed AWS API request" (credential scope date/Region/service/
// aws4_request; the signed headers must include host and every x-amz-* header sent, x-amz-date
// among them) and "Elements of an AWS API request signature".
describe('SigV4: credential scope Region and signed headers', () => {
  let server: LocalKmsServer;
  beforeAll(async () => {
    server = await start();
  });
  const base = () => ({ url: server.url, target: 'ListKeys', body: '{}', accessKeyId: APP.key, secretAccessKey: APP.secret });

  it('a credential scope naming a Region of another partition (or no Region) is InvalidSignatureException (SDK and hand-signed); every Region of the partition is served', async () => {
    const e = await expectAwsError(client(server.url, APP, { region: 'cn-north-1' }).send(new ListKeysCommand({})), 'InvalidSignatureException');
    expect(e.message).toBe("Credential should be scoped to a valid region, not 'cn-north-1'.");
    const hand = await postRaw(server.url, await handSign({ ...base(), region: 'not-a-region' }), '{}');
    expect(hand).toMatchObject({ status: 400, json: { __type: 'InvalidSignatureException' } });
    expect((await postRaw(server.url, await handSign(base()), '{}')).status).toBe(200);
    expect((await postRaw(server.url, await handSign({ ...base(), region: 'us-west-2' }), '{}')).status).toBe(200);
    await client(server.url, APP, { region: 'eu-west-1' }).send(new ListKeysCommand({}));
  });

  it('a server started with a default Region of another partition serves that partition only', async () => {
    const china = await start({ region: 'cn-north-1' });
    await client(china.url, APP, { region: 'cn-northwest-1' }).send(new ListKeysCommand({}));
    await expectAwsError(client(china.url, APP).send(new ListKeysCommand({})), 'InvalidSignatureException');
  });

  it.runIf(awsCli)('the AWS CLI with --region of another partition is InvalidSignatureException', async () => {
    const r = await aws(server.url, APP, ['list-keys'], 'cn-north-1');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/InvalidSignatureException.*Credential should be scoped to a valid region/);
  }, 60_000);

  it('a request that leaves x-amz-target unsigned is refused, and so is its replay with another target', async () => {
    const { KeyMetadata } = await client(server.url, ROOT).send(new CreateKeyCommand({}));
    const body = JSON.stringify({ KeyId: KeyMetadata!.KeyId, PendingWindowInDays: 7 });
    const headers = await handSign({ ...base(), accessKeyId: ROOT.key, secretAccessKey: ROOT.secret, target: 'DescribeKey', body, unsigned: ['x-amz-target'] });
    expect(headers.authorization).toMatch(/SignedHeaders=content-type;host;x-amz-date,/);
    const asSigned = await postRaw(server.url, headers, body);
    expect(asSigned.json).toEqual({ __type: 'InvalidSignatureException', message: "'x-amz-target' must be a 'SignedHeader' in the AWS Authorization." });
    const swapped = await postRaw(server.url, { ...headers, 'x-amz-target': 'TrentService.ScheduleKeyDeletion' }, body);
    expect(swapped.json.__type).toBe('InvalidSignatureException');
    expect((await client(server.url, ROOT).send(new DescribeKeyCommand({ KeyId: KeyMetadata!.KeyId }))).KeyMetadata!.KeyState).toBe('Enabled');
  });

  it('a request the SDK signed, replayed with another X-Amz-Target, fails the signature', async () => {
    const kms = client(server.url, ROOT);
    let captured: { headers: Record<string, string>; body: string } | undefined;
    kms.middlewareStack.add(
      (next) => async (args) => {
        const req = args.request as { headers: Record<string, string>; body: string };
        captured = { headers: { ...req.headers }, body: String(req.body) };
        return next(args);
      },
      { step: 'deserialize', name: 'captureSignedRequest' },
    );
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({}));
    await kms.send(new DescribeKeyCommand({ KeyId: KeyMetadata!.KeyId }));
    expect(captured!.headers.authorization).toMatch(/SignedHeaders=[^,]*x-amz-target/);
    const headers = Object.fromEntries(Object.entries(captured!.headers).map(([k, v]) => [k.toLowerCase(), v]));
    delete headers['content-length'];
    expect((await postRaw(server.url, headers, captured!.body)).status).toBe(200);
    const swapped = await postRaw(server.url, { ...headers, 'x-amz-target': 'TrentService.DisableKey' }, captured!.body);
    expect(swapped.json).toMatchObject({ __type: 'InvalidSignatureException', message: expect.stringMatching(/^The request signature we calculated does not match/) });
    expect((await kms.send(new DescribeKeyCommand({ KeyId: KeyMetadata!.KeyId }))).KeyMetadata!.KeyState).toBe('Enabled');
  });

  it('host and x-amz-date left out of SignedHeaders are refused even with an otherwise valid signature', async () => {
    const noHost = await postRaw(server.url, await handSign({ ...base(), unsigned: ['host'] }), '{}');
    expect(noHost.json).toEqual({ __type: 'InvalidSignatureException', message: "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization." });
    const noDate = await postRaw(server.url, await handSign({ ...base(), unsigned: ['x-amz-date'] }), '{}');
    expect(noDate.json).toEqual({ __type: 'InvalidSignatureException', message: "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization." });
  });

  it('any other x-amz-* header sent must be signed too', async () => {
    const token = await postRaw(server.url, await handSign({ ...base(), headers: { 'x-amz-security-token': 'tok' }, unsigned: ['x-amz-security-token'] }), '{}');
    expect(token.json).toEqual({ __type: 'InvalidSignatureException', message: "'x-amz-security-token' must be a 'SignedHeader' in the AWS Authorization." });
    // Headers outside x-amz-* may stay unsigned (proxies add them).
    expect((await postRaw(server.url, await handSign({ ...base(), headers: { 'x-forwarded-for': '10.0.0.1' }, unsigned: ['x-forwarded-for'] }), '{}')).status).toBe(200);
  });
});

// Own-property lookups: names sent by a client (SignedHeaders entries, X-Amz-Target, JSON members,
// CLI arguments) must never resolve to Object.prototype members.
describe('no request input reaches Object.prototype', () => {
  let server: LocalKmsServer;
  beforeAll(async () => {
    server = await start();
  });

  it('SignedHeaders naming constructor or __proto__ is a signature error, not an internal error', async () => {
    for (const name of ['constructor', '__proto__', 'hasownproperty']) {
      const headers = await handSign({ url: server.url, target: 'ListKeys', body: '{}', accessKeyId: APP.key, secretAccessKey: APP.secret });
      headers.authorization = headers.authorization!.replace('SignedHeaders=', `SignedHeaders=${name};`);
      const r = await postRaw(server.url, headers, '{}');
      expect(r, name).toMatchObject({ status: 400, json: { __type: 'InvalidSignatureException' } });
    }
  });

  it('X-Amz-Target naming an Object.prototype member is UnknownOperationException whatever the body', async () => {
    const offline = await startLocalKmsServer({ port: 0 });
    servers.push(offline);
    for (const [target, body] of [['constructor', '{"length":5}'], ['__proto__', '{"toString":5}'], ['constructor', '{"name":{}}'], ['hasOwnProperty', '{"length":[]}']]) {
      const r = await postUnsigned(offline.url, target!, body!);
      expect(r.json.__type, `${target} ${body}`).toBe('UnknownOperationException');
    }
  });

  it('CLI arguments naming Object.prototype members are unknown options', () => {
    for (const argv of [['constructor'], ['__proto__'], ['toString', 'x'], ['hasOwnProperty']]) {
      expect(() => parseLocalKmsArgs(argv), argv.join(' ')).toThrow(LocalKmsUsageError);
      expect(() => parseLocalKmsArgs(argv)).toThrow(/unknown option/);
    }
  });
});
