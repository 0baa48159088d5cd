/**
 * Where AWS is not known exactly, the local KMS reads a policy the stricter way (policy.ts, "Where
 * AWS is not known exactly"). From the review of the policy engine (review11, test/review-kms):
 *
 * - Ambiguous keys. Developer Guide, "Tags in AWS KMS": tag keys and values are case-sensitive
 *   strings, so `Env` and `env` are two tags. IAM User Guide, "AWS global condition context keys",
 *   aws:RequestTag/tag-key and aws:ResourceTag/tag-key: condition key names are not
 *   case-sensitive, `aws:RequestTag/Env` refers to both. Developer Guide,
 *   "kms:EncryptionContext:context-key": "The key name is not case sensitive", and the key is
 *   single-valued; GrantConstraints: "To avoid confusion, do not use multiple encryption context
 *   pairs that differ only by case". Which value AWS reads is undocumented: a Deny condition holds
 *   when it holds for any of the values, an Allow condition only when it holds for every one.
 * - NotPrincipal. IAM User Guide, "AWS JSON policy elements: NotPrincipal": it "must be used with
 *   "Effect":"Deny". Using it with "Effect":"Allow" is not supported."; with Deny "you must also
 *   specify the account ARN of the not-denied principal. Otherwise, the policy might deny access
 *   to the entire account containing the principal", and for an assumed-role user AWS "might
 *   validate the account first, then the role, and then the assumed-role user"; its role example
 *   lists the session ARN, the role ARN and the account, and "you cannot use a wildcard (*) to mean
 *   'all sessions'". Where AWS "might" deny, the local KMS denies.
 * - Duplicate member names. RFC 8259 section 4 leaves them to the implementation; AWS does not
 *   document what KMS does. The local KMS refuses the document (MalformedPolicyDocumentException).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KmsServiceError } from '../../src/local-kms/errors.js';
import { evaluateKeyPolicy, parseIdentityPolicy, validateKeyPolicy } from '../../src/local-kms/policy.js';
import type { Caller } from '../../src/local-kms/policy-types.js';
import { loadPrincipals } from '../../src/local-kms/principals.js';
import { LocalKmsService } from '../../src/local-kms/service.js';

const ACCOUNT = '111122223333';
const OTHER = '444455556666';
const ROOT_ARN = `arn:aws:iam::${ACCOUNT}:root`;
const KEY = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

const accountOf = (arn: string) => /::(\d{12}):/.exec(arn)![1]!;
/** A caller whose IAM is not modelled (principals-file entry without `policies`). */
const plain = (arn: string): Caller => ({ arn, account: accountOf(arn) });
/** A caller whose IAM is modelled, with one identity policy made of `statements`. */
const iam = (arn: string, ...statements: object[]): Caller => ({
  arn,
  account: accountOf(arn),
  identityPolicies: [parseIdentityPolicy({ Version: '2012-10-17', Statement: statements })],
});
const root = plain(ROOT_ARN);

/** Key policy: the account statement ("Enable IAM User Permissions") plus `statements`. */
const keyPolicy = (...statements: object[]) =>
  JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: ROOT_ARN }, Action: 'kms:*', Resource: '*' }, ...statements],
  });

/** 'OK' or the AWS error type the call failed with. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (e) {
    if (e instanceof KmsServiceError) return e.type;
    throw e;
  }
}

/** The error a synchronous call throws (its AWS type and message). */
function thrown(f: () => unknown): KmsServiceError {
  try {
    f();
  } catch (e) {
    if (e instanceof KmsServiceError) return e;
    throw e;
  }
  throw new Error('expected an error');
}

let kms: LocalKmsService;
beforeEach(() => {
  kms = new LocalKmsService();
});

async function newKey(input: Record<string, unknown> = {}): Promise<{ KeyId: string; Arn: string }> {
  return (await kms.call('CreateKey', input, root)).KeyMetadata as { KeyId: string; Arn: string };
}

// -------------------------------------------------------------------------------------------------
// NotPrincipal

describe('NotPrincipal with Deny exempts a caller only when it names the caller, its role and its account', () => {
  const ROLE = `arn:aws:iam::${ACCOUNT}:role/App`;
  const SESSION = `arn:aws:sts::${ACCOUNT}:assumed-role/App/worker-1`;
  const BOB = `arn:aws:iam::${ACCOUNT}:user/bob`;
  const encrypt = (keyId: string, caller: Caller) => outcome(kms.call('Encrypt', { KeyId: keyId, Plaintext: Buffer.from('x') }, caller));
  const withDeny = (allowed: string, notPrincipal: string[]) =>
    newKey({
      Policy: keyPolicy(
        { Sid: 'allowed', Effect: 'Allow', Principal: { AWS: allowed }, Action: 'kms:Encrypt', Resource: '*' },
        { Sid: 'everyone else denied', Effect: 'Deny', NotPrincipal: { AWS: notPrincipal }, Action: 'kms:Encrypt', Resource: '*' },
      ),
    });

  it('naming the role and the account (not the session) still denies a session of the role', async () => {
    const key = await withDeny(ROLE, [ROLE, ROOT_ARN]);
    expect(await encrypt(key.KeyId, plain(SESSION))).toBe('AccessDeniedException');
  });

  it('the documented form (session, role, account) exempts the session; another session of the role is denied', async () => {
    const key = await withDeny(ROLE, [SESSION, ROLE, ROOT_ARN]);
    expect(await encrypt(key.KeyId, plain(SESSION))).toBe('OK');
    expect(await encrypt(key.KeyId, plain(`arn:aws:sts::${ACCOUNT}:assumed-role/App/worker-2`))).toBe('AccessDeniedException');
  });

  it('naming the session and the account without the role denies the session (AWS might deny the role)', async () => {
    const key = await withDeny(ROLE, [SESSION, ROOT_ARN]);
    expect(await encrypt(key.KeyId, plain(SESSION))).toBe('AccessDeniedException');
  });

  it('a role named with a path counts for its sessions (session ARNs carry no path)', async () => {
    const key = await withDeny(ROLE, [SESSION, `arn:aws:iam::${ACCOUNT}:role/team/App`, ACCOUNT]);
    expect(await encrypt(key.KeyId, plain(SESSION))).toBe('OK');
  });

  it('a user named without its account is denied (AWS "might" deny: stricter); with its account it is exempt', async () => {
    const alone = await withDeny(BOB, [BOB]);
    expect(await encrypt(alone.KeyId, plain(BOB))).toBe('AccessDeniedException');
    const withAccount = await withDeny(BOB, [BOB, ACCOUNT]);
    expect(await encrypt(withAccount.KeyId, plain(BOB))).toBe('OK');
    expect(await encrypt(withAccount.KeyId, plain(`arn:aws:iam::${ACCOUNT}:user/carol`))).toBe('AccessDeniedException');
  });

  it('a role entry of the principals file stands for a session named after the role', async () => {
    const key = await withDeny(ROLE, [ROLE, ROOT_ARN]);
    expect(await encrypt(key.KeyId, plain(ROLE))).toBe('AccessDeniedException');
    const named = await withDeny(ROLE, [`arn:aws:sts::${ACCOUNT}:assumed-role/App/App`, ROLE, ROOT_ARN]);
    expect(await encrypt(named.KeyId, plain(ROLE))).toBe('OK');
  });

  it('the account root is exempt when its account is named; a caller of another account needs its own account named', async () => {
    const key = await withDeny(ROOT_ARN, [ROOT_ARN]);
    expect(await encrypt(key.KeyId, root)).toBe('OK');
    const outsider = `arn:aws:iam::${OTHER}:user/dave`;
    const d = evaluateKeyPolicy(
      keyPolicy({ Effect: 'Allow', Principal: { AWS: outsider }, Action: 'kms:Encrypt', Resource: '*' }, { Effect: 'Deny', NotPrincipal: { AWS: [outsider, ROOT_ARN] }, Action: 'kms:Encrypt', Resource: '*' }),
      { caller: plain(outsider), action: 'kms:Encrypt', resourceArn: KEY },
    );
    expect(d).toEqual({ allowed: false, explicitDeny: true });
  });
});

describe('NotPrincipal with Allow', () => {
  it('is not supported: CreateKey and PutKeyPolicy refuse the policy (MalformedPolicyDocumentException)', async () => {
    const policy = keyPolicy({ Sid: 'all but root', Effect: 'Allow', NotPrincipal: { AWS: ROOT_ARN }, Action: 'kms:Decrypt', Resource: '*' });
    expect(await outcome(kms.call('CreateKey', { Policy: policy }, root))).toBe('MalformedPolicyDocumentException');
    const key = await newKey();
    expect(await outcome(kms.call('PutKeyPolicy', { KeyId: key.KeyId, PolicyName: 'default', Policy: policy }, root))).toBe('MalformedPolicyDocumentException');
    expect(thrown(() => validateKeyPolicy(policy)).message).toMatch(/NotPrincipal is supported only with "Effect": "Deny"/);
  });
});

// -------------------------------------------------------------------------------------------------
// Documents AWS may read another way

describe('a key policy with a duplicated member name is refused', () => {
  const BOB = `arn:aws:iam::${ACCOUNT}:user/bob`;

  it('"Effect": "Deny" followed by "Effect": "Allow" (CreateKey)', async () => {
    const policy = `{"Version":"2012-10-17","Statement":[
      {"Sid":"root","Effect":"Allow","Principal":{"AWS":"${ROOT_ARN}"},"Action":"kms:*","Resource":"*"},
      {"Sid":"bob","Effect":"Deny","Principal":{"AWS":"${BOB}"},"Action":"kms:Decrypt","Effect":"Allow","Resource":"*"}]}`;
    expect(await outcome(kms.call('CreateKey', { Policy: policy }, root))).toBe('MalformedPolicyDocumentException');
    expect(thrown(() => validateKeyPolicy(policy)).message).toMatch(/duplicate member name 'Effect' in Statement\[1\]/);
    expect((await kms.call('ListKeys', {}, root)).Keys).toEqual([]);
  });

  it('a Deny with two Condition members (PutKeyPolicy)', async () => {
    const policy = `{"Version":"2012-10-17","Statement":[
      {"Sid":"root","Effect":"Allow","Principal":{"AWS":"${ROOT_ARN}"},"Action":"kms:*","Resource":"*"},
      {"Sid":"bob","Effect":"Allow","Principal":{"AWS":"${BOB}"},"Action":"kms:Encrypt","Resource":"*"},
      {"Sid":"no prod","Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:Encrypt","Resource":"*",
       "Condition":{"StringEquals":{"kms:EncryptionContext:stage":"prod"}},
       "Condition":{"StringEquals":{"kms:EncryptionContext:stage":"never-used"}}}]}`;
    const key = await newKey();
    expect(await outcome(kms.call('PutKeyPolicy', { KeyId: key.KeyId, PolicyName: 'default', Policy: policy }, root))).toBe('MalformedPolicyDocumentException');
    expect(thrown(() => validateKeyPolicy(policy)).message).toMatch(/duplicate member name 'Condition' in Statement\[2\]/);
  });

  it('at any depth, compared decoded ("\\u0065" is "e"), top level included', () => {
    const st = `{"Effect":"Allow","Principal":{"AWS":"${ROOT_ARN}"},"Action":"kms:*","Resource":"*"}`;
    const cases: [string, RegExp][] = [
      [`{"Version":"2012-10-17","Version":"2008-10-17","Statement":[${st}]}`, /'Version' in the top-level object/],
      [`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"${ROOT_ARN}","AWS":"*"},"Action":"kms:*","Resource":"*"}]}`, /'AWS' in Statement\[0\]\.Principal/],
      [`{"Statement":[${st},{"Effect":"Deny","Eff\\u0065ct":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}]}`, /'Effect' in Statement\[1\]/],
      [`{"Statement":[{"Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:a":"x","kms:EncryptionContext:a":"y"}}}, ${st}]}`, /'kms:EncryptionContext:a' in Statement\[0\]\.Condition\.StringEquals/],
    ];
    for (const [policy, message] of cases) {
      const e = thrown(() => validateKeyPolicy(policy));
      expect([e.type, e.message]).toEqual(['MalformedPolicyDocumentException', expect.stringMatching(message)]);
    }
    // Same names in different objects, and names only inside string values, are fine.
    validateKeyPolicy(`{"Statement":[${st},{"Sid":"\\"Effect\\":","Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:Decrypt","Resource":"*"}]}`);
  });

  it('condition operators or condition keys that differ only by case within one block are refused', () => {
    const statement = (Condition: string) =>
      `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"${ROOT_ARN}"},"Action":"kms:*","Resource":"*"},{"Effect":"Deny","Principal":"*","Action":"kms:Encrypt","Resource":"*","Condition":${Condition}}]}`;
    const keys = thrown(() => validateKeyPolicy(statement('{"StringEquals":{"kms:EncryptionContext:stage":"prod","kms:encryptioncontext:STAGE":"never"}}')));
    expect([keys.type, keys.message]).toEqual(['MalformedPolicyDocumentException', expect.stringMatching(/condition keys that differ only by case/)]);
    const ops = thrown(() => validateKeyPolicy(statement('{"StringEquals":{"kms:EncryptionContext:stage":"prod"},"stringequals":{"kms:EncryptionContext:stage":"never"}}')));
    expect([ops.type, ops.message]).toEqual(['MalformedPolicyDocumentException', expect.stringMatching(/condition operators that differ only by case/)]);
    // One key under two different operators is two conditions (AND), as IAM reads it.
    validateKeyPolicy(statement('{"StringEquals":{"kms:EncryptionContext:stage":"prod"},"StringLike":{"kms:EncryptionContext:stage":"p*"}}'));
  });
});

describe('a principals file with a duplicated member name does not load', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'lkms-dup-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('in an identity policy, in an entry, or as a second entry for one access key id', () => {
    const file = join(dir, 'principals.json');
    const entry = (policy: string) => `"AKIAEXAMPLEALICE001":{"arn":"arn:aws:iam::${ACCOUNT}:user/alice","policies":[${policy}]}`;
    const cases: [string, RegExp][] = [
      [`{${entry('{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kms:*","Resource":"*","Effect":"Allow"}]}')}}`, /member "Effect" appears twice in AKIAEXAMPLEALICE001\.policies\[0\]\.Statement\[0\]/],
      [`{"AKIAEXAMPLEALICE001":{"arn":"arn:aws:iam::${ACCOUNT}:user/alice","arn":"arn:aws:iam::${ACCOUNT}:root"}}`, /member "arn" appears twice in AKIAEXAMPLEALICE001/],
      [`{${entry('')},"AKIAEXAMPLEALICE001":{"arn":"arn:aws:iam::${ACCOUNT}:root"}}`, /member "AKIAEXAMPLEALICE001" appears twice in the top-level object/],
    ];
    for (const [text, message] of cases) {
      writeFileSync(file, text);
      expect(() => loadPrincipals(file)).toThrow(message);
    }
    writeFileSync(file, `{${entry('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}')}}`);
    expect([...loadPrincipals(file).keys()]).toEqual(['AKIAEXAMPLEALICE001']);
  });
});
