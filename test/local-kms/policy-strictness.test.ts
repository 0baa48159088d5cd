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
import { evaluateKeyPolicy, validateKeyPolicy } from '../../src/local-kms/policy.js';
import type { Caller } from '../../src/local-kms/policy-types.js';
import { loadPrincipals } from '../../src/local-kms/principals.js';
import { LocalKmsService } from '../../src/local-kms/service.js';
import { ACCOUNT, iam, keyPolicy, OTHER, outcome, plain, root, ROOT_ARN } from './authz-callers.js';

const KEY = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

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
// Ambiguous keys: names that differ only by case

describe('aws:RequestTag with tag keys that differ only by case (TagResource, key policy)', () => {
  const TAGGER = `arn:aws:iam::${ACCOUNT}:user/tagger`;
  const policy = keyPolicy(
    { Sid: 'tagger may tag', Effect: 'Allow', Principal: { AWS: TAGGER }, Action: 'kms:TagResource', Resource: '*' },
    { Sid: 'nobody sets Env=prod', Effect: 'Deny', Principal: { AWS: '*' }, Action: 'kms:TagResource', Resource: '*', Condition: { StringEquals: { 'aws:RequestTag/Env': 'prod' } } },
  );
  const tag = (keyId: string, tags: { TagKey: string; TagValue: string }[]) => outcome(kms.call('TagResource', { KeyId: keyId, Tags: tags }, plain(TAGGER)));

  it('control: Env=prod alone is denied, env=dev alone allowed', async () => {
    const key = await newKey({ Policy: policy });
    expect(await tag(key.KeyId, [{ TagKey: 'Env', TagValue: 'prod' }])).toBe('AccessDeniedException');
    expect(await tag(key.KeyId, [{ TagKey: 'env', TagValue: 'dev' }])).toBe('OK');
  });

  it('env=dev then Env=prod is denied', async () => {
    const key = await newKey({ Policy: policy });
    expect(await tag(key.KeyId, [{ TagKey: 'env', TagValue: 'dev' }, { TagKey: 'Env', TagValue: 'prod' }])).toBe('AccessDeniedException');
  });

  it('Env=prod then env=dev is denied too, and the key is not tagged Env=prod', async () => {
    const key = await newKey({ Policy: policy });
    const result = await tag(key.KeyId, [{ TagKey: 'Env', TagValue: 'prod' }, { TagKey: 'env', TagValue: 'dev' }]);
    const now = (await kms.call('ListResourceTags', { KeyId: key.KeyId }, root)).Tags as { TagKey: string; TagValue: string }[];
    expect({ result, hasEnvProd: now.some((t) => t.TagKey === 'Env' && t.TagValue === 'prod') }).toEqual({ result: 'AccessDeniedException', hasEnvProd: false });
  });

  it('an Allow on aws:RequestTag/env needs every candidate value to satisfy it', async () => {
    const key = await newKey({
      Policy: keyPolicy({ Sid: 'dev tags only', Effect: 'Allow', Principal: { AWS: TAGGER }, Action: 'kms:TagResource', Resource: '*', Condition: { StringEquals: { 'aws:RequestTag/env': 'dev' } } }),
    });
    expect(await tag(key.KeyId, [{ TagKey: 'env', TagValue: 'dev' }])).toBe('OK');
    expect(await tag(key.KeyId, [{ TagKey: 'env', TagValue: 'dev' }, { TagKey: 'ENV', TagValue: 'prod' }])).toBe('AccessDeniedException');
    expect(await tag(key.KeyId, [{ TagKey: 'ENV', TagValue: 'prod' }, { TagKey: 'env', TagValue: 'dev' }])).toBe('AccessDeniedException');
    // Equal values under both spellings are one value: nothing is ambiguous.
    expect(await tag(key.KeyId, [{ TagKey: 'env', TagValue: 'dev' }, { TagKey: 'Env', TagValue: 'dev' }])).toBe('OK');
  });
});

describe('aws:RequestTag in an identity policy (CreateKey with Tags)', () => {
  const carol = iam(
    `arn:aws:iam::${ACCOUNT}:user/carol`,
    { Effect: 'Allow', Action: ['kms:CreateKey', 'kms:TagResource'], Resource: '*' },
    { Effect: 'Deny', Action: ['kms:CreateKey', 'kms:TagResource'], Resource: '*', Condition: { StringEquals: { 'aws:RequestTag/Env': 'prod' } } },
  );

  it('control: CreateKey with Env=prod is denied', async () => {
    expect(await outcome(kms.call('CreateKey', { Tags: [{ TagKey: 'Env', TagValue: 'prod' }] }, carol))).toBe('AccessDeniedException');
  });

  it('CreateKey with Env=prod and env=x is denied too, and creates no key', async () => {
    const tags = [{ TagKey: 'Env', TagValue: 'prod' }, { TagKey: 'env', TagValue: 'x' }];
    expect(await outcome(kms.call('CreateKey', { Tags: tags }, carol))).toBe('AccessDeniedException');
    expect((await kms.call('ListKeys', {}, root)).Keys).toEqual([]);
  });
});

describe("aws:ResourceTag in an identity policy (the key's own tags)", () => {
  const alice = iam(
    `arn:aws:iam::${ACCOUNT}:user/alice`,
    { Effect: 'Allow', Action: 'kms:Encrypt', Resource: '*' },
    { Effect: 'Deny', Action: 'kms:*', Resource: '*', Condition: { StringEquals: { 'aws:ResourceTag/Project': 'Secret' } } },
  );
  const encrypt = (keyId: string) => outcome(kms.call('Encrypt', { KeyId: keyId, Plaintext: Buffer.from('x') }, alice));

  it('control: a key tagged Project=Secret is denied, one tagged Project=x allowed', async () => {
    expect(await encrypt((await newKey({ Tags: [{ TagKey: 'Project', TagValue: 'Secret' }] })).KeyId)).toBe('AccessDeniedException');
    expect(await encrypt((await newKey({ Tags: [{ TagKey: 'Project', TagValue: 'x' }] })).KeyId)).toBe('OK');
  });

  it('a key tagged Project=Secret and project=x is denied, in either order', async () => {
    const one = await newKey({ Tags: [{ TagKey: 'Project', TagValue: 'Secret' }, { TagKey: 'project', TagValue: 'x' }] });
    const two = await newKey({ Tags: [{ TagKey: 'project', TagValue: 'x' }, { TagKey: 'Project', TagValue: 'Secret' }] });
    expect([await encrypt(one.KeyId), await encrypt(two.KeyId)]).toEqual(['AccessDeniedException', 'AccessDeniedException']);
  });
});

describe('kms:EncryptionContext:<key> with context keys that differ only by case', () => {
  const BOB = `arn:aws:iam::${ACCOUNT}:user/bob`;
  const encrypt = (keyId: string, EncryptionContext: Record<string, string>) =>
    outcome(kms.call('Encrypt', { KeyId: keyId, Plaintext: Buffer.from('x'), EncryptionContext }, plain(BOB)));
  const bobMay = (Condition: object) => keyPolicy({ Sid: 'bob', Effect: 'Allow', Principal: { AWS: BOB }, Action: 'kms:Encrypt', Resource: '*', Condition });

  it('Allow StringEquals tenant=A: {tenant: A} allowed, {tenant: B} denied, {tenant: B, Tenant: A} and {tenant: A, Tenant: B} denied', async () => {
    const key = await newKey({ Policy: bobMay({ StringEquals: { 'kms:EncryptionContext:tenant': 'A' } }) });
    expect(await encrypt(key.KeyId, { tenant: 'A' })).toBe('OK');
    expect(await encrypt(key.KeyId, { tenant: 'B' })).toBe('AccessDeniedException');
    expect(await encrypt(key.KeyId, { tenant: 'B', Tenant: 'A' })).toBe('AccessDeniedException');
    expect(await encrypt(key.KeyId, { tenant: 'A', Tenant: 'B' })).toBe('AccessDeniedException');
    expect(await encrypt(key.KeyId, { tenant: 'A', TENANT: 'A' })).toBe('OK');
  });

  it('Allow with a negated operator (StringNotEquals tenant=B) also needs every candidate', async () => {
    const key = await newKey({ Policy: bobMay({ StringNotEquals: { 'kms:EncryptionContext:tenant': 'B' } }) });
    expect(await encrypt(key.KeyId, { tenant: 'A' })).toBe('OK');
    expect(await encrypt(key.KeyId, { tenant: 'A', Tenant: 'B' })).toBe('AccessDeniedException');
  });

  it('Allow with ...IfExists and with ForAnyValue reads the candidates the same way', async () => {
    const ifExists = await newKey({ Policy: bobMay({ StringEqualsIfExists: { 'kms:EncryptionContext:tenant': 'A' } }) });
    expect(await encrypt(ifExists.KeyId, {})).toBe('OK');
    expect(await encrypt(ifExists.KeyId, { tenant: 'A', Tenant: 'B' })).toBe('AccessDeniedException');
    const anyValue = await newKey({ Policy: bobMay({ 'ForAnyValue:StringLike': { 'kms:EncryptionContext:tenant': ['A*'] } }) });
    expect(await encrypt(anyValue.KeyId, { tenant: 'Ax' })).toBe('OK');
    expect(await encrypt(anyValue.KeyId, { tenant: 'Ax', Tenant: 'B' })).toBe('AccessDeniedException');
  });

  it('a Deny holds when any candidate satisfies it: positive, negated and ...IfExists operators', async () => {
    const denyIf = (Condition: object) =>
      keyPolicy(
        { Sid: 'bob', Effect: 'Allow', Principal: { AWS: BOB }, Action: 'kms:Encrypt', Resource: '*' },
        { Sid: 'deny', Effect: 'Deny', Principal: '*', Action: 'kms:Encrypt', Resource: '*', Condition },
      );
    const positive = await newKey({ Policy: denyIf({ StringEquals: { 'kms:EncryptionContext:stage': 'prod' } }) });
    expect(await encrypt(positive.KeyId, { stage: 'dev' })).toBe('OK');
    expect(await encrypt(positive.KeyId, { stage: 'dev', STAGE: 'prod' })).toBe('AccessDeniedException');
    // "Deny unless tenant is A": {tenant: A, Tenant: B} may be read as tenant B. (IfExists: a
    // request without the key satisfies the condition, so it is denied as well.)
    const negated = await newKey({ Policy: denyIf({ StringNotEqualsIfExists: { 'kms:EncryptionContext:tenant': 'A' } }) });
    expect(await encrypt(negated.KeyId, { tenant: 'A' })).toBe('OK');
    expect(await encrypt(negated.KeyId, {})).toBe('AccessDeniedException');
    expect(await encrypt(negated.KeyId, { tenant: 'A', Tenant: 'B' })).toBe('AccessDeniedException');
    expect(await encrypt(negated.KeyId, { tenant: 'A', Tenant: 'A' })).toBe('OK');
  });

  it('Null is about presence, which case variants do not change', async () => {
    const key = await newKey({ Policy: bobMay({ Null: { 'kms:EncryptionContext:tenant': 'false' } }) });
    expect(await encrypt(key.KeyId, { tenant: 'A', Tenant: 'B' })).toBe('OK');
    expect(await encrypt(key.KeyId, { other: 'A' })).toBe('AccessDeniedException');
  });
});

describe('a policy variable whose key has candidate values stands for each of them', () => {
  const alice = plain(`arn:aws:iam::${ACCOUNT}:user/alice`);
  const decide = (policy: string, encryptionContext: Record<string, string>) =>
    evaluateKeyPolicy(policy, { caller: alice, action: 'kms:Encrypt', resourceArn: KEY, encryptionContext }).allowed;
  const statement = (Effect: string, Condition: object) => ({ Effect, Principal: { AWS: alice.arn }, Action: 'kms:Encrypt', Resource: '*', Condition });

  it('Deny "a equals ${b}" applies when b has a candidate equal to a', () => {
    const policy = keyPolicy(statement('Allow', {}), statement('Deny', { StringEquals: { 'kms:EncryptionContext:a': '${kms:EncryptionContext:b}' } }));
    expect(decide(policy, { a: 'x', b: 'y' })).toBe(true);
    expect(decide(policy, { a: 'x', b: 'x' })).toBe(false);
    expect(decide(policy, { a: 'x', b: 'y', B: 'x' })).toBe(false);
  });

  it('Allow "a differs from ${b}" needs a to differ from every candidate of b', () => {
    const policy = keyPolicy(statement('Allow', { StringNotEquals: { 'kms:EncryptionContext:a': '${kms:EncryptionContext:b}' } }));
    expect(decide(policy, { a: 'x', b: 'y' })).toBe(true);
    expect(decide(policy, { a: 'x', b: 'y', B: 'x' })).toBe(false);
  });

  it('Allow "a equals ${b}" needs a to equal every candidate of b', () => {
    const policy = keyPolicy(statement('Allow', { StringEquals: { 'kms:EncryptionContext:a': '${kms:EncryptionContext:b}' } }));
    expect(decide(policy, { a: 'x', b: 'x' })).toBe(true);
    expect(decide(policy, { a: 'x', b: 'x', B: 'y' })).toBe(false);
  });

  it('a Resource entry with such a variable: a Deny names the key when any candidate does, an Allow only when every one does', () => {
    const resource = 'arn:aws:kms:us-east-1:111122223333:key/${kms:EncryptionContext:target}';
    const id = KEY.slice(KEY.lastIndexOf('/') + 1);
    const deny = keyPolicy(statement('Allow', {}), { Effect: 'Deny', Principal: '*', Action: 'kms:Encrypt', Resource: resource });
    expect(decide(deny, { target: 'other' })).toBe(true);
    expect(decide(deny, { target: 'other', TARGET: id })).toBe(false);
    const allow = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: alice.arn }, Action: 'kms:Encrypt', Resource: resource }] });
    expect(decide(allow, { target: id })).toBe(true);
    expect(decide(allow, { target: id, Target: 'other' })).toBe(false);
  });
});

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
