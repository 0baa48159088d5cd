/**
 * Condition values read strictly (review11b). IAM User Guide, "IAM JSON policy elements: Condition
 * operators" gives each operator family a value type: IP address operators take CIDR blocks, Date
 * operators W3C ISO 8601 dates or epoch seconds, Numeric operators numbers, Bool true/false.
 * The local KMS parses each itself (policy-operators.ts) instead of with Number()/Date.parse/
 * BlockList, which read far more than that:
 *
 * - a policy value that is not of its operator's type is a MalformedPolicyDocumentException
 *   (IAM User Guide, "IAM policy validation check reference", "Error - Invalid condition data
 *   type"; whether KMS itself refuses it is undocumented, refusing is never more permissive);
 * - a request value that is not of it (the caller chooses encryption context values) makes the
 *   comparison indeterminate, read like an ambiguous key (policy.ts): an Allow does not apply, a
 *   Deny does, negated operators included;
 * - a multivalued key without ForAllValues/ForAnyValue ("Single-valued vs. multivalued context
 *   keys": undocumented) is read both ways: an Allow needs every value, a Deny any;
 * - a JSON number that a double does not keep as written (`1e2`, `1.0`, 20 digits) is refused.
 *
 * HTTP tests run with @aws-sdk/client-kms against a server whose principals file has the account
 * root and an IAM user `dev` without `policies` (IAM not modelled: a key-policy Allow naming dev
 * decides). Engine tests drive policy.ts directly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateKeyCommand, EncryptCommand, ListKeysCommand, type KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { evaluateKeyPolicy, validateKeyPolicy } from '../../src/local-kms/policy.js';
import type { AuthzRequest, Caller } from '../../src/local-kms/policy-types.js';
import { tokenIssueTimeRange } from '../../src/local-kms/request-context.js';
import { ACCOUNT, ROOT_ARN, sdkClient, tempDir } from './helpers.js';

const DEV = `arn:aws:iam::${ACCOUNT}:user/dev`;
const PRINCIPALS = {
  AKIDROOT0000000000001: { arn: ROOT_ARN, secretAccessKey: 'root-secret' },
  AKIDDEV00000000000001: { arn: DEV, secretAccessKey: 'dev-secret' },
};
const KEY = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const dev: Caller = { arn: DEV, account: ACCOUNT };

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
const allowDev = { Sid: 'Dev', Effect: 'Allow', Principal: { AWS: DEV }, Action: 'kms:Encrypt', Resource: '*' };
const denyAll = (Condition: object) => ({ Sid: 'No', Effect: 'Deny', Principal: '*', Action: 'kms:Encrypt', Resource: '*', Condition });

/** The policy engine's answer for dev's kms:Encrypt: 'allowed', 'denied' (explicit) or 'implicit'. */
function decide(policy: string, extra: Partial<AuthzRequest> = {}): string {
  validateKeyPolicy(policy); // every policy decided here is one the local KMS accepts
  const d = evaluateKeyPolicy(policy, { caller: dev, action: 'kms:Encrypt', resourceArn: KEY, ...extra });
  return d.allowed ? 'allowed' : d.explicitDeny ? 'denied' : 'implicit';
}
const withContext = (encryptionContext: Record<string, string>) => ({ encryptionContext });
/** `validateKeyPolicy` refuses `policy` with MalformedPolicyDocumentException; returns the message. */
function refusal(policy: string): string {
  try {
    validateKeyPolicy(policy);
  } catch (e) {
    expect((e as { type?: string }).type).toBe('MalformedPolicyDocumentException');
    return (e as Error).message;
  }
  throw new Error('the policy was accepted');
}

const tmp = tempDir('policy-values-');
let server: LocalKmsServer;
let root: KMSClient;
let devClient: KMSClient;

beforeAll(async () => {
  const file = join(tmp.dir, 'principals.json');
  writeFileSync(file, JSON.stringify(PRINCIPALS));
  server = await startLocalKmsServer({ port: 0, principalsFile: file });
  root = sdkClient(server.url, 'AKIDROOT0000000000001', 'root-secret');
  devClient = sdkClient(server.url, 'AKIDDEV00000000000001', 'dev-secret');
});
afterAll(async () => {
  await server?.close();
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

// F1. A prefix of "-0" passed the old checks (Number('-0') is -0) and node's BlockList.addSubnet
// aborted the whole process on it (a native assertion, not an exception).
describe('F1: IpAddress "127.0.0.1/-0" is refused, never crashes the server (IAM User Guide, "IAM JSON policy elements: Condition operators", IP address condition operators)', () => {
  it('CreateKey over HTTP answers MalformedPolicyDocumentException and the server (a child process) stays up', async () => {
    let proc: ChildProcess | undefined;
    try {
      const cli = new URL('../../dist/cli/main.js', import.meta.url).pathname;
      proc = spawn(process.execPath, [cli, 'local-kms', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
      const exited = new Promise<string>((resolve) => proc!.once('exit', () => resolve('down')));
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
      expect(await outcome(kms.send(new CreateKeyCommand({ Policy: policy })))).toBe('MalformedPolicyDocumentException');
      const alive = await Promise.race([kms.send(new ListKeysCommand({})).then(() => 'up', () => 'down'), exited]);
      expect(alive).toBe('up');
    } finally {
      if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill();
    }
  }, 30_000);

  it('a principals-file identity policy with it stops start-up with an error naming the value', async () => {
    const dir = tempDir('policy-values-start-');
    try {
      const file = join(dir.dir, 'principals.json');
      const policy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*', Condition: { IpAddress: { 'aws:SourceIp': '127.0.0.1/-0' } } }] };
      writeFileSync(file, JSON.stringify({ AKIDDEV00000000000001: { arn: DEV, secretAccessKey: 's', policies: [policy] } }));
      await expect(startLocalKmsServer({ port: 0, principalsFile: file })).rejects.toThrow(/aws:SourceIp.*IpAddress.*CIDR/);
    } finally {
      dir.cleanup();
    }
  });
});

describe('F2: IP address values are standard CIDR notation (IAM User Guide, "IAM JSON policy elements: Condition operators", IP address condition operators)', () => {
  const ip = (value: string, op = 'IpAddress') => policyOf(allowDevEncrypt({ [op]: { 'aws:SourceIp': value } }));

  it('HTTP: "10.1.2.3/" (empty prefix, once read as /0) and "192.0.2.0/" in a Deny NotIpAddress are refused', async () => {
    expect(await keyWith(ip('10.1.2.3/'))).toEqual({ refused: 'MalformedPolicyDocumentException' });
    const deny = policyOf(allowDev, denyAll({ NotIpAddress: { 'aws:SourceIp': '192.0.2.0/' } }));
    expect(await keyWith(deny)).toEqual({ refused: 'MalformedPolicyDocumentException' });
  });

  it('refuses an empty or non-decimal prefix, a prefix too long for the family, extra parts, spaces, leading zeros in an octet', () => {
    for (const bad of ['10.1.2.3/', '10.1.2.3/ ', '10.1.2.3/0x0', '127.0.0.1/32/extra', '127.0.0.1/-0', '127.0.0.1/+8', '10.0.0.0/33', '10.0.0.0/0008',
      '::1/129', ' 10.0.0.0/8', '10.0.0.0/8 ', '10.0.0.010', '256.0.0.0', '10.0.0', 'fe80::1%eth0', '', 'localhost']) {
      expect(refusal(ip(bad)), bad).toMatch(/aws:SourceIp.*CIDR/);
    }
  });

  it('accepts CIDR blocks, and an address without a prefix means /32 (/128)', () => {
    const from = (sourceIp: string) => ({ conditionKeys: { 'aws:SourceIp': sourceIp } });
    expect(decide(ip('10.0.0.0/8'), from('10.200.1.1'))).toBe('allowed');
    expect(decide(ip('10.0.0.0/8'), from('11.0.0.1'))).toBe('implicit');
    expect(decide(ip('10.1.2.3'), from('10.1.2.3'))).toBe('allowed');
    expect(decide(ip('10.1.2.3'), from('10.1.2.4'))).toBe('implicit');
    expect(decide(ip('10.1.2.3/032'), from('10.1.2.3'))).toBe('allowed');
    expect(decide(ip('0.0.0.0/0'), from('192.0.2.1'))).toBe('allowed');
    expect(decide(ip('2001:db8::/32'), from('2001:db8:1::5'))).toBe('allowed');
    expect(decide(ip('::1'), from('::1'))).toBe('allowed');
    expect(decide(ip('::1'), from('::2'))).toBe('implicit');
  });

  it('a request address the engine cannot read is indeterminate: IpAddress/NotIpAddress Allow no, Deny yes', () => {
    const from = { conditionKeys: { 'aws:SourceIp': 'not-an-ip' } };
    expect(decide(ip('0.0.0.0/0'), from)).toBe('implicit');
    expect(decide(ip('10.0.0.0/8', 'NotIpAddress'), from)).toBe('implicit');
    expect(decide(policyOf(allowDev, denyAll({ NotIpAddress: { 'aws:SourceIp': '0.0.0.0/0' } })), from)).toBe('denied');
  });
});

describe('F3: Date values are W3C ISO 8601 or epoch seconds (IAM User Guide, "IAM JSON policy elements: Condition operators", Date condition operators)', () => {
  const after = (value: string, op = 'DateGreaterThan') => policyOf(allowDevEncrypt({ [op]: { 'kms:EncryptionContext:t': value } }));

  it('HTTP: a request date "Jan 1 2099" does not satisfy DateGreaterThan in an Allow; a policy date "foo 1" is refused', async () => {
    const { keyId } = await keyWith(after('2030-01-01T00:00:00Z'));
    expect(await outcome(encryptAs(devClient, keyId!, { t: '2099-01-01T00:00:00Z' }))).toBe('allowed'); // control
    expect(await outcome(encryptAs(devClient, keyId!, { t: 'Jan 1 2099' }))).toBe('AccessDeniedException');
    expect(await keyWith(policyOf(allowDevEncrypt({ DateGreaterThan: { 'aws:CurrentTime': 'foo 1' } })))).toEqual({ refused: 'MalformedPolicyDocumentException' });
  });

  it('reads the profile\'s forms and epoch seconds, zones included', () => {
    const at = (t: string, policyValue: string, op = 'DateEquals') => decide(after(policyValue, op), withContext({ t }));
    expect(at('2030-01-01T00:00:00Z', '2030-01-01')).toBe('allowed'); // a date is midnight UTC
    expect(at('2030-01-01T01:30:00+01:30', '2030-01-01T00:00Z')).toBe('allowed');
    expect(at('2029-12-31T19:00:00.000-05:00', '1893456000')).toBe('allowed'); // epoch seconds
    expect(at('0050-03-01T00:00:00Z', '1950-03-01T00:00:00Z')).toBe('implicit'); // year 50 is not 1950
    expect(at('2024-02-29T12:00:00Z', '2024-02-29T11:59:59.999Z', 'DateGreaterThan')).toBe('allowed');
  });

  it('refuses a policy value outside the profile: legacy forms, a time without a zone, impossible dates', () => {
    for (const bad of ['foo 1', 'Jan 1 2099', '2030-01-01T00:00:00', '2030-01-01 00:00:00Z', '2030-01', '2030-01-01t00:00:00z', '2030-02-30',
      '2031-02-29', '2030-01-01T24:00:00Z', '2030-01-01T00:00:60Z', '2030-01-01T00:00:00+2400', '+002030-01-01', '-1', '1e9', ' 2030-01-01', '']) {
      expect(refusal(after(bad)), bad).toMatch(/ISO 8601/);
    }
  });

  it('a request value outside it is indeterminate: Allow no, Deny yes, negated operators included', () => {
    // All digits are epoch seconds ("2099" is 1970-01-01T00:34:59Z), so only a value of neither form is unreadable.
    expect(decide(after('2030-01-01T00:00:00Z'), withContext({ t: '2099' }))).toBe('implicit');
    for (const t of ['Jan 1 2099', '2099-01-01T00:00:00', '2099-01', '9999999999999', '']) {
      expect(decide(after('2030-01-01T00:00:00Z'), withContext({ t })), t).toBe('implicit');
      expect(decide(after('2030-01-01T00:00:00Z', 'DateNotEquals'), withContext({ t })), t).toBe('implicit');
      const deny = policyOf(allowDev, denyAll({ DateLessThan: { 'kms:EncryptionContext:t': '2030-01-01T00:00:00Z' } }));
      expect(decide(deny, withContext({ t })), t).toBe('denied');
    }
  });

  it('precision past the millisecond is undocumented: equal to the millisecond but not exactly is indeterminate', () => {
    expect(decide(after('2030-01-01T00:00:00.0001Z', 'DateEquals'), withContext({ t: '2030-01-01T00:00:00Z' }))).toBe('implicit');
    expect(decide(after('2030-01-01T00:00:00Z', 'DateNotEquals'), withContext({ t: '2030-01-01T00:00:00.0001Z' }))).toBe('implicit');
    expect(decide(after('2030-01-01T00:00:00.5000Z', 'DateEquals'), withContext({ t: '2030-01-01T00:00:00.5Z' }))).toBe('allowed');
  });
});

describe('F4: Numeric values are decimal numbers (IAM User Guide, "IAM JSON policy elements: Condition operators", Numeric condition operators)', () => {
  const less = (value: string | number, op = 'NumericLessThan') => policyOf(allowDevEncrypt({ [op]: { 'kms:EncryptionContext:amount': value } }));

  it('HTTP: request values "0x5" and "-Infinity" do not satisfy NumericLessThan 10 in an Allow', async () => {
    const { keyId } = await keyWith(less('10'));
    expect(await outcome(encryptAs(devClient, keyId!, { amount: '5' }))).toBe('allowed'); // control
    expect(await outcome(encryptAs(devClient, keyId!, { amount: '0x5' }))).toBe('AccessDeniedException');
    expect(await outcome(encryptAs(devClient, keyId!, { amount: '-Infinity' }))).toBe('AccessDeniedException');
  });

  it('a request value that is not plain decimal is indeterminate: Allow no, Deny yes, negated operators included', () => {
    const deny = policyOf(allowDev, denyAll({ NumericGreaterThan: { 'kms:EncryptionContext:amount': '100' } }));
    for (const amount of ['0x5', '-Infinity', 'Infinity', '1e1', ' 5 ', '5.', '.5', '', 'NaN', '٥']) {
      expect(decide(less('10'), withContext({ amount })), amount).toBe('implicit');
      expect(decide(less('10', 'NumericNotEquals'), withContext({ amount })), amount).toBe('implicit');
      expect(decide(deny, withContext({ amount })), amount).toBe('denied');
    }
    expect(decide(deny, withContext({ amount: '100' }))).toBe('allowed');
  });

  it('reads signs, fractions and leading zeros exactly; a difference a double cannot see is indeterminate', () => {
    expect(decide(less('5', 'NumericEquals'), withContext({ amount: '+005.000' }))).toBe('allowed');
    expect(decide(less('0', 'NumericEquals'), withContext({ amount: '-0' }))).toBe('allowed');
    expect(decide(less('-1.5'), withContext({ amount: '-1.75' }))).toBe('allowed');
    expect(decide(less('-1.5'), withContext({ amount: '-1.25' }))).toBe('implicit');
    // 0.10000000000000001 is 0.1 as a double, not exactly: either reading is plausible.
    expect(decide(less('0.1', 'NumericEquals'), withContext({ amount: '0.10000000000000001' }))).toBe('implicit');
    const deny = policyOf(allowDev, denyAll({ NumericNotEquals: { 'kms:EncryptionContext:amount': '0.1' } }));
    expect(decide(deny, withContext({ amount: '0.10000000000000001' }))).toBe('denied');
    expect(decide(deny, withContext({ amount: '0.1000' }))).toBe('allowed');
  });

  it('refuses a policy value that is not plain decimal', () => {
    for (const bad of ['0x10', '1e1', 'Infinity', '-Infinity', ' 5', '5.', '', 'ten']) expect(refusal(less(bad)), bad).toMatch(/decimal number/);
  });
});

describe('F5: multivalued keys without a set operator (IAM User Guide, "Single-valued vs. multivalued context keys")', () => {
  const keys = (op: string, value: string) => policyOf(allowDevEncrypt({ [op]: { 'kms:EncryptionContextKeys': value } }));

  it('HTTP: Allow StringNotEquals kms:EncryptionContextKeys "secret" does not allow a context holding "secret" among others', async () => {
    const { keyId } = await keyWith(keys('StringNotEquals', 'secret'));
    expect(await outcome(encryptAs(devClient, keyId!, { other: '2' }))).toBe('allowed'); // control
    expect(await outcome(encryptAs(devClient, keyId!, { secret: '1' }))).toBe('AccessDeniedException');
    expect(await outcome(encryptAs(devClient, keyId!, { secret: '1', other: '2' }))).toBe('AccessDeniedException');
  });

  it('an Allow needs every value to satisfy the operator, positive or negated; a Deny applies when any does', () => {
    const both = withContext({ secret: '1', other: '2' });
    expect(decide(keys('StringEquals', 'other'), both)).toBe('implicit');
    expect(decide(keys('StringEquals', 'other'), withContext({ other: '2' }))).toBe('allowed');
    expect(decide(keys('StringLike', '*'), both)).toBe('allowed');
    expect(decide(policyOf(allowDev, denyAll({ StringEquals: { 'kms:EncryptionContextKeys': 'secret' } })), both)).toBe('denied');
    expect(decide(policyOf(allowDev, denyAll({ StringNotEquals: { 'kms:EncryptionContextKeys': 'secret' } })), both)).toBe('denied');
    expect(decide(policyOf(allowDev, denyAll({ StringNotEquals: { 'kms:EncryptionContextKeys': 'secret' } })), withContext({ secret: '1' }))).toBe('allowed');
  });

  it('with a set operator the documented reading stands', () => {
    const both = withContext({ secret: '1', other: '2' });
    expect(decide(keys('ForAnyValue:StringEquals', 'other'), both)).toBe('allowed');
    expect(decide(keys('ForAllValues:StringEquals', 'other'), both)).toBe('implicit');
    expect(decide(keys('ForAnyValue:StringNotEquals', 'secret'), both)).toBe('allowed');
  });
});

// F6. JSON.parse reads numbers as doubles; string operators compare the value's text.
describe('F6: JSON numbers as condition values are kept as written or refused (IAM User Guide, "IAM JSON policy elements: Condition operators", string condition operators)', () => {
  const acct = (literal: string) => policyOf(allowDevEncrypt({ StringEquals: { 'kms:EncryptionContext:acct': 0 } })).replace('acct":0', `acct":${literal}`);

  it('HTTP: StringEquals with 12345678901234567890 is refused (it would match "12345678901234567000")', async () => {
    const policy = acct('12345678901234567890');
    expect(policy).toContain('12345678901234567890');
    expect(await keyWith(policy)).toEqual({ refused: 'MalformedPolicyDocumentException' });
  });

  it('refuses numbers a double does not give back as written, naming where they are', () => {
    expect(refusal(acct('1e2'))).toMatch(/number 1e2 in Statement\[1\]\.Condition\.StringEquals\.kms:EncryptionContext:acct/);
    for (const literal of ['1.0', '1E2', '-0', '0.10', '12345678901234567890', '1e21']) expect(refusal(acct(literal)), literal).toMatch(/write it as a string/);
    expect(refusal(acct('[5, 1.50]'))).toMatch(/number 1\.50 in Statement\[1\]\.Condition\.StringEquals\.kms:EncryptionContext:acct\[1\]/);
  });

  it('a number that is its own text, and a Boolean, compare as written', () => {
    expect(decide(acct('100'), withContext({ acct: '100' }))).toBe('allowed');
    expect(decide(acct('-2.5'), withContext({ acct: '-2.5' }))).toBe('allowed');
    expect(decide(acct('true'), withContext({ acct: 'true' }))).toBe('allowed');
    expect(decide(acct('true'), withContext({ acct: 'True' }))).toBe('implicit');
  });

  it('a principals-file identity policy with such a number stops start-up', async () => {
    const dir = tempDir('policy-values-num-');
    try {
      const file = join(dir.dir, 'principals.json');
      const policy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*', Condition: { StringEquals: { 'kms:EncryptionContext:acct': 0 } } }] };
      writeFileSync(file, JSON.stringify({ AKIDDEV00000000000001: { arn: DEV, secretAccessKey: 's', policies: [policy] } }).replace('acct":0', 'acct":1.0'));
      await expect(startLocalKmsServer({ port: 0, principalsFile: file })).rejects.toThrow(/number 1\.0 in AKIDDEV00000000000001\.policies\[0\]/);
    } finally {
      dir.cleanup();
    }
  });
});

describe('Bool and Null values are true or false (IAM User Guide, "IAM JSON policy elements: Condition operators", Boolean and Null condition operators)', () => {
  it('refuses other values instead of reading them as "matches nothing" (Bool) or "false" (Null)', () => {
    expect(refusal(policyOf(allowDevEncrypt({ Bool: { 'aws:SecureTransport': 'yes' } })))).toMatch(/true or false/);
    expect(refusal(policyOf(allowDevEncrypt({ Null: { 'kms:EncryptionContext:x': 'maybe' } })))).toMatch(/true or false/);
    expect(() => validateKeyPolicy(policyOf(allowDevEncrypt({ Bool: { 'aws:SecureTransport': true }, Null: { 'kms:EncryptionContext:x': 'False' } })))).not.toThrow();
  });

  it('a request value that is not a Boolean is indeterminate', () => {
    const bool = (Effect: string) => ({ Sid: Effect, Effect, Principal: { AWS: DEV }, Action: 'kms:Encrypt', Resource: '*', Condition: { Bool: { 'kms:EncryptionContext:flag': 'true' } } });
    expect(decide(policyOf(bool('Allow')), withContext({ flag: 'true' }))).toBe('allowed');
    expect(decide(policyOf(bool('Allow')), withContext({ flag: 'yes' }))).toBe('implicit');
    expect(decide(policyOf(allowDev, bool('Deny')), withContext({ flag: 'yes' }))).toBe('denied');
    expect(decide(policyOf(allowDev, bool('Deny')), withContext({ flag: 'false' }))).toBe('allowed');
  });
});

describe('aws:TokenIssueTime that is not an ISO 8601 date is unknown (IAM User Guide, "AWS global condition context keys", aws:TokenIssueTime)', () => {
  it('a Caller tokenIssueTime Date.parse reads but the engine does not is evaluated over the range a live session can have', () => {
    const session: Caller = { arn: `arn:aws:sts::${ACCOUNT}:assumed-role/app/s1`, account: ACCOUNT };
    const now = Date.UTC(2030, 0, 1);
    expect(tokenIssueTimeRange({ ...session, tokenIssueTime: '2029-12-31T23:00:00Z' }, now)).toBeUndefined();
    expect(tokenIssueTimeRange({ ...session, tokenIssueTime: 'Dec 31 2029 23:00' }, now)).toEqual(['2029-12-30T12:00:00Z', '2030-01-01T00:00:00Z']);
  });
});
