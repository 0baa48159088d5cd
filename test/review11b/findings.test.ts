/**
 * review11b: adversarial review of "key policies ... are evaluated exactly as AWS KMS evaluates
 * them; too permissive is worse than too strict". Each test states what AWS does (IAM User Guide /
 * KMS Developer Guide) and asserts THAT; a failing test is a reproduced finding. Nothing here is
 * fixed: the tests document the findings for whoever fixes them.
 *
 * Everything runs over HTTP with @aws-sdk/client-kms. Callers: the account root and an IAM user
 * `dev` from a principals file (IAM not modelled for dev: no `policies`), so that a key-policy
 * Allow naming dev is what decides.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateKeyCommand, EncryptCommand, ListKeysCommand, type KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { ACCOUNT, ROOT_ARN, sdkClient, tempDir } from '../local-kms/helpers.js';

const DEV = `arn:aws:iam::${ACCOUNT}:user/dev`;
const PRINCIPALS = {
  AKIDROOT0000000000001: { arn: ROOT_ARN, secretAccessKey: 'root-secret' },
  AKIDDEV00000000000001: { arn: DEV, secretAccessKey: 'dev-secret' },
};

/** Outcome of a call: 'allowed' or the AWS error name. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'allowed';
  } catch (e) {
    return (e as Error).name;
  }
}

const rootStatement = { Sid: 'Root', Effect: 'Allow', Principal: { AWS: ROOT_ARN }, Action: 'kms:*', Resource: '*' };
const policyOf = (...statements: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: [rootStatement, ...statements] });
const allowDevEncrypt = (Condition: object) => ({ Sid: 'Dev', Effect: 'Allow', Principal: { AWS: DEV }, Action: 'kms:Encrypt', Resource: '*', Condition });

describe('review11b findings (in-process HTTP server with a principals file)', () => {
  const tmp = tempDir('r11b-');
  let server: LocalKmsServer;
  let root: KMSClient;
  let dev: KMSClient;

  beforeAll(async () => {
    const file = join(tmp.dir, 'principals.json');
    writeFileSync(file, JSON.stringify(PRINCIPALS));
    server = await startLocalKmsServer({ port: 0, principalsFile: file });
    root = sdkClient(server.url, 'AKIDROOT0000000000001', 'root-secret');
    dev = sdkClient(server.url, 'AKIDDEV00000000000001', 'dev-secret');
  });
  afterAll(async () => {
    await server.close();
    tmp.cleanup();
  });

  /** CreateKey as root with `policy`: the key id, or the AWS error name when it is refused. */
  async function keyWith(policy: string): Promise<{ keyId?: string; refused?: string }> {
    try {
      return { keyId: (await root.send(new CreateKeyCommand({ Policy: policy }))).KeyMetadata!.KeyId! };
    } catch (e) {
      return { refused: (e as Error).name };
    }
  }
  const encryptAs = (client: KMSClient, keyId: string, EncryptionContext?: Record<string, string>) =>
    client.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x'), ...(EncryptionContext ? { EncryptionContext } : {}) }));

  // F2. IAM User Guide, "IAM JSON policy elements: Condition operators", IP address condition
  // operators: the value is a CIDR block in standard notation, an address without a prefix is /32.
  // "10.1.2.3/" is neither; AWS cannot read it as "every IPv4 address". Locally Number('') = 0 makes
  // it /0, which matches the request from 127.0.0.1.
  it('F2a: IpAddress "10.1.2.3/" (empty prefix) must not match 127.0.0.1 (local: read as /0, Allow applies)', async () => {
    const { keyId, refused } = await keyWith(policyOf(allowDevEncrypt({ IpAddress: { 'aws:SourceIp': '10.1.2.3/' } })));
    if (refused) return expect(refused).toBe('MalformedPolicyDocumentException'); // refusing the document is also acceptable
    expect(await outcome(encryptAs(dev, keyId!))).toBe('AccessDeniedException');
  });

  it('F2b: Deny NotIpAddress "192.0.2.0/" must not be evaded from 127.0.0.1 (local: /0 matches every IPv4, Deny skipped)', async () => {
    const { keyId, refused } = await keyWith(
      policyOf(
        { Sid: 'Dev', Effect: 'Allow', Principal: { AWS: DEV }, Action: 'kms:Encrypt', Resource: '*' },
        { Sid: 'OnlyFromOffice', Effect: 'Deny', Principal: '*', Action: 'kms:Encrypt', Resource: '*', Condition: { NotIpAddress: { 'aws:SourceIp': '192.0.2.0/' } } },
      ),
    );
    if (refused) return expect(refused).toBe('MalformedPolicyDocumentException');
    expect(await outcome(encryptAs(dev, keyId!))).toBe('AccessDeniedException');
  });

  // F3. Same page, Date condition operators: values are W3C ISO 8601 dates or epoch seconds.
  // Locally Date.parse reads anything V8's legacy parser accepts, request values included: the
  // encryption context is chosen by the caller.
  it('F3a: a request date that is not ISO 8601/epoch ("Jan 1 2099") must not satisfy DateGreaterThan in an Allow', async () => {
    const { keyId } = await keyWith(policyOf(allowDevEncrypt({ DateGreaterThan: { 'kms:EncryptionContext:notAfter': '2030-01-01T00:00:00Z' } })));
    expect(await outcome(encryptAs(dev, keyId!, { notAfter: '2099-01-01T00:00:00Z' }))).toBe('allowed'); // control
    expect(await outcome(encryptAs(dev, keyId!, { notAfter: 'Jan 1 2099' }))).toBe('AccessDeniedException');
  });

  it('F3b: a policy date "foo 1" is not a date (local: V8 reads it as 2001-01-01, the Allow applies)', async () => {
    const { keyId, refused } = await keyWith(policyOf(allowDevEncrypt({ DateGreaterThan: { 'aws:CurrentTime': 'foo 1' } })));
    if (refused) return expect(refused).toBe('MalformedPolicyDocumentException');
    expect(await outcome(encryptAs(dev, keyId!))).toBe('AccessDeniedException');
  });

  // F4. Numeric condition operators compare numbers; a hexadecimal literal or "-Infinity" in a
  // caller-chosen encryption context value is not a decimal number. Locally Number() reads both.
  it('F4: request values "0x5" / "-Infinity" must not satisfy NumericLessThan 10 in an Allow', async () => {
    const { keyId } = await keyWith(policyOf(allowDevEncrypt({ NumericLessThan: { 'kms:EncryptionContext:amount': '10' } })));
    expect(await outcome(encryptAs(dev, keyId!, { amount: '5' }))).toBe('allowed'); // control
    expect(await outcome(encryptAs(dev, keyId!, { amount: '0x5' }))).toBe('AccessDeniedException');
    expect(await outcome(encryptAs(dev, keyId!, { amount: '-Infinity' }))).toBe('AccessDeniedException');
  });

  // F5. IAM User Guide, "Single-valued vs. multivalued context keys": multivalued keys (here
  // kms:EncryptionContextKeys) "require a condition set operator"; what a negated operator WITHOUT
  // one does is not documented. The project's rule for undocumented behaviour is the stricter
  // reading; for an Allow that is "no request value equals" (ForAllValues:StringNotEquals). The
  // local KMS reads it as ForAnyValue:StringNotEquals: one other key makes the Allow apply.
  it('F5: Allow StringNotEquals kms:EncryptionContextKeys "secret" (no set operator) must not allow a context holding "secret"', async () => {
    const { keyId } = await keyWith(policyOf(allowDevEncrypt({ StringNotEquals: { 'kms:EncryptionContextKeys': 'secret' } })));
    expect(await outcome(encryptAs(dev, keyId!, { secret: '1' }))).toBe('AccessDeniedException'); // control: holds
    expect(await outcome(encryptAs(dev, keyId!, { secret: '1', other: '2' }))).toBe('AccessDeniedException');
  });

  // F6 (low). A JSON number as a string-operator value is read through a double: 12345678901234567890
  // becomes "12345678901234567000", so the Allow matches a value the policy does not name (and not
  // the one it does). IAM compares policy values as written (IAM User Guide, "Condition operators",
  // string condition operators compare strings); the stricter answer is to keep the number's text or
  // refuse the document.
  it('F6: StringEquals with the JSON number 12345678901234567890 must not match "12345678901234567000"', async () => {
    const policy = policyOf(allowDevEncrypt({ StringEquals: { 'kms:EncryptionContext:acct': 0 } })).replace('acct":0', 'acct":12345678901234567890');
    expect(policy).toContain('12345678901234567890');
    const { keyId, refused } = await keyWith(policy);
    if (refused) return expect(refused).toBe('MalformedPolicyDocumentException');
    expect(await outcome(encryptAs(dev, keyId!, { acct: '12345678901234567000' }))).toBe('AccessDeniedException');
  });
});

// F1. A key policy (or principals-file identity policy) with IpAddress "127.0.0.1/-0" aborts the
// whole server process: Number('-0') is -0, which passes the prefix checks, and node's
// BlockList.addSubnet asserts (C++ CHECK, not an exception) that the prefix is an Int32. Any
// principal allowed CreateKey or PutKeyPolicy (IAM-only CreateKey is open to callers without
// `policies`) takes the KMS down for every client. Run in a child process: it kills its host.
describe('F1: IpAddress "127.0.0.1/-0" in a key policy', () => {
  it('CreateKey with it is answered (MalformedPolicyDocumentException or a key) and the server stays up', async () => {
    const tmp = tempDir('r11b-crash-');
    let proc: ChildProcess | undefined;
    try {
      const cli = new URL('../../dist/cli/main.js', import.meta.url).pathname;
      proc = spawn(process.execPath, [cli, 'local-kms', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
      const exited = new Promise<number | null>((resolve) => proc!.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`no URL: ${out}`)), 20_000);
        proc!.stdout!.on('data', (d) => {
          out += String(d);
          const m = /(http:\/\/127\.0\.0\.1:\d+)/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
      });
      const kms = sdkClient(url);
      const policy = policyOf({ Sid: 'X', Effect: 'Allow', Principal: { AWS: ROOT_ARN }, Action: 'kms:Encrypt', Resource: '*', Condition: { IpAddress: { 'aws:SourceIp': '127.0.0.1/-0' } } });
      const first = await outcome(kms.send(new CreateKeyCommand({ Policy: policy })));
      expect(['allowed', 'MalformedPolicyDocumentException']).toContain(first); // locally: a socket error, the server died
      const alive = await Promise.race([kms.send(new ListKeysCommand({})).then(() => 'up', () => 'down'), exited.then(() => 'down')]);
      expect(alive).toBe('up');
    } finally {
      if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill();
      tmp.cleanup();
    }
  }, 30_000);
});
