import { describe, expect, it } from 'vitest';
import {
  assertPolicyLockoutSafe,
  authorizeKeyPolicy,
  callerKeepsPolicyAccess,
  POLICY_LOCKOUT_MESSAGE,
  evaluateKeyPolicy,
  validateKeyPolicy,
} from '../../src/local-kms/policy.js';
import { consoleKeyKind, defaultKeyPolicy, KEY_ADMINISTRATOR_ACTIONS, keyPolicyFor } from '../../src/local-kms/generated-policies.js';
import { KmsServiceError } from '../../src/local-kms/errors.js';
import type { AuthzRequest, Caller } from '../../src/local-kms/policy-types.js';

const ACCOUNT = '111122223333';
const OTHER = '444455556666';
const KEY = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const OTHER_KEY = `arn:aws:kms:us-east-1:${ACCOUNT}:key/0987dcba-09fe-87dc-65ba-ab0987654321`;

const caller = (arn: string): Caller => ({ arn, account: /::(\d{12}):/.exec(arn)![1]! });
const root = caller(`arn:aws:iam::${ACCOUNT}:root`);
const admin = caller(`arn:aws:iam::${ACCOUNT}:user/KMSAdmin`);
const app = caller(`arn:aws:iam::${ACCOUNT}:role/App`);
const appSession = caller(`arn:aws:sts::${ACCOUNT}:assumed-role/App/session-1`);
const outsiderRoot = caller(`arn:aws:iam::${OTHER}:root`);
const outsiderUser = caller(`arn:aws:iam::${OTHER}:user/KMSAdmin`);

const policy = (...statements: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements });
const allow = (extra: object) => ({ Effect: 'Allow', Principal: { AWS: admin.arn }, Action: 'kms:*', Resource: '*', ...extra });
const deny = (extra: object) => ({ Effect: 'Deny', Principal: { AWS: admin.arn }, Action: 'kms:*', Resource: '*', ...extra });

function can(p: string, c: Caller, action: string, extra: Partial<AuthzRequest> = {}): boolean {
  return evaluateKeyPolicy(p, { caller: c, action, resourceArn: KEY, ...extra }).allowed;
}

function malformed(fn: () => void, type = 'MalformedPolicyDocumentException'): KmsServiceError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KmsServiceError);
    expect((err as KmsServiceError).type).toBe(type);
    expect((err as KmsServiceError).status).toBe(400);
    return err as KmsServiceError;
  }
  throw new Error('expected the policy to be rejected');
}

describe('console key policy (administrators and users)', () => {
  const p = keyPolicyFor({ accountId: ACCOUNT, administrators: [admin.arn], users: [app.arn, `arn:aws:iam::${OTHER}:root`] });

  it('has the console statements, Sids and action lists', () => {
    const doc = JSON.parse(p);
    expect(doc.Version).toBe('2012-10-17');
    expect(doc.Statement.map((s: { Sid: string }) => s.Sid)).toEqual([
      'Enable IAM User Permissions',
      'Allow access for Key Administrators',
      'Allow use of the key',
      'Allow attachment of persistent resources',
    ]);
    expect(doc.Statement[0]).toMatchObject({ Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*' });
    expect(doc.Statement[1].Principal.AWS).toBe(admin.arn); // a single principal is written as a string
    expect(doc.Statement[1].Action).toEqual([...KEY_ADMINISTRATOR_ACTIONS]);
    expect(doc.Statement[1].Action).toContain('kms:ScheduleKeyDeletion');
    expect(doc.Statement[2].Principal.AWS).toEqual([app.arn, `arn:aws:iam::${OTHER}:root`]);
    expect(doc.Statement[2].Action).toEqual([
      'kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:DescribeKey',
    ]);
    expect(doc.Statement[3].Condition).toEqual({ Bool: { 'kms:GrantIsForAWSResource': 'true' } });
    expect(() => validateKeyPolicy(p)).not.toThrow();
  });

  it('administrator manages but cannot use the key', () => {
    for (const a of ['kms:ScheduleKeyDeletion', 'kms:CancelKeyDeletion', 'kms:DisableKey', 'kms:EnableKeyRotation',
      'kms:PutKeyPolicy', 'kms:GetKeyPolicy', 'kms:TagResource', 'kms:DescribeKey', 'kms:CreateAlias', 'kms:RotateKeyOnDemand']) {
      expect(can(p, admin, a), a).toBe(true);
    }
    for (const a of ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:ReEncryptFrom', 'kms:Sign', 'kms:ImportKeyMaterial']) {
      expect(can(p, admin, a), a).toBe(false);
    }
  });

  it('key user uses but cannot manage the key; role sessions act as the role', () => {
    for (const c of [app, appSession]) {
      for (const a of ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey', 'kms:GenerateDataKeyWithoutPlaintext',
        'kms:GenerateDataKeyPair', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:DescribeKey']) {
        expect(can(p, c, a), a).toBe(true);
      }
      for (const a of ['kms:ScheduleKeyDeletion', 'kms:PutKeyPolicy', 'kms:DisableKey', 'kms:GetKeyPolicy', 'kms:Sign']) {
        expect(can(p, c, a), a).toBe(false);
      }
    }
  });

  it('grants only for AWS resources', () => {
    expect(can(p, app, 'kms:CreateGrant', { conditionKeys: { 'kms:GrantIsForAWSResource': true } })).toBe(true);
    expect(can(p, app, 'kms:CreateGrant', { conditionKeys: { 'kms:GrantIsForAWSResource': false } })).toBe(false);
    expect(can(p, app, 'kms:CreateGrant')).toBe(false);
  });

  it('account root keeps kms:*; outsiders get nothing unless named', () => {
    expect(can(p, root, 'kms:Decrypt')).toBe(true);
    expect(can(p, root, 'kms:ScheduleKeyDeletion')).toBe(true);
    for (const a of ['kms:Decrypt', 'kms:ScheduleKeyDeletion', 'kms:DescribeKey', 'kms:PutKeyPolicy']) {
      expect(can(p, outsiderUser, a), a).toBe(false);
    }
    // The other account's root was named as a key user.
    expect(can(p, outsiderRoot, 'kms:Decrypt')).toBe(true);
    expect(can(p, outsiderRoot, 'kms:ScheduleKeyDeletion')).toBe(false);
  });

  it('flavours for other key types, EXTERNAL origin and the delete option', () => {
    const kind = (spec: string, usage: string) => consoleKeyKind(spec, usage);
    expect(kind('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT')).toBe('SYMMETRIC_DEFAULT');
    expect(kind('RSA_2048', 'ENCRYPT_DECRYPT')).toBe('ASYMMETRIC_ENCRYPT');
    expect(kind('ECC_NIST_P256', 'SIGN_VERIFY')).toBe('SIGN_VERIFY');
    expect(kind('HMAC_256', 'GENERATE_VERIFY_MAC')).toBe('HMAC');
    const sign = JSON.parse(keyPolicyFor({ accountId: ACCOUNT, administrators: [], users: [app.arn], keyKind: 'SIGN_VERIFY' }));
    expect(sign.Statement.map((s: { Sid: string }) => s.Sid)).not.toContain('Allow access for Key Administrators');
    expect(sign.Statement[1].Action).toEqual(['kms:DescribeKey', 'kms:GetPublicKey', 'kms:Sign', 'kms:Verify']);
    const ext = keyPolicyFor({ accountId: ACCOUNT, administrators: [admin.arn], users: [], externalOrigin: true, administratorsCanDelete: false });
    expect(can(ext, admin, 'kms:ImportKeyMaterial')).toBe(true);
    expect(can(ext, admin, 'kms:ScheduleKeyDeletion')).toBe(false);
    expect(() => keyPolicyFor({ accountId: ACCOUNT, administrators: ['alice'], users: [] })).toThrow(TypeError);
    expect(() => keyPolicyFor({ accountId: '12', administrators: [], users: [] })).toThrow(RangeError);
  });
});

describe('default key policy', () => {
  const p = defaultKeyPolicy(ACCOUNT);
  it('gives the account root kms:* and nobody else anything', () => {
    const doc = JSON.parse(p);
    expect(doc.Statement).toHaveLength(1);
    expect(doc.Statement[0]).toMatchObject({ Sid: 'Enable IAM User Permissions', Effect: 'Allow', Action: 'kms:*', Resource: '*' });
    expect(can(p, root, 'kms:Decrypt')).toBe(true);
    expect(can(p, root, 'kms:PutKeyPolicy')).toBe(true);
    // No IAM here: the account principal is the root user only, not every user of the account.
    expect(can(p, admin, 'kms:DescribeKey')).toBe(false);
    expect(can(p, appSession, 'kms:Decrypt')).toBe(false);
    expect(can(p, outsiderRoot, 'kms:DescribeKey')).toBe(false);
    expect(() => defaultKeyPolicy('abc')).toThrow(RangeError);
  });
  it('principals match across partitions (one local partition, policies written with arn:aws)', () => {
    const cnRoot = caller(`arn:aws-cn:iam::${ACCOUNT}:root`);
    expect(can(p, cnRoot, 'kms:Decrypt')).toBe(true);
    expect(can(p, caller(`arn:aws-cn:iam::${ACCOUNT}:user/x`), 'kms:Decrypt')).toBe(false);
  });
  it('account principal as a bare account id means the root too', () => {
    const q = policy({ Effect: 'Allow', Principal: { AWS: ACCOUNT }, Action: 'kms:*', Resource: '*' });
    expect(can(q, root, 'kms:Decrypt')).toBe(true);
    expect(can(q, admin, 'kms:Decrypt')).toBe(false);
  });
});

describe('principals, actions, resources', () => {
  it('"*" principal matches anyone, also other accounts', () => {
    for (const pr of ['*', { AWS: '*' }]) {
      const p = policy({ Effect: 'Allow', Principal: pr, Action: 'kms:DescribeKey', Resource: '*' });
      expect(can(p, outsiderUser, 'kms:DescribeKey')).toBe(true);
      expect(can(p, outsiderUser, 'kms:Decrypt')).toBe(false);
    }
  });
  it('role principal matches its sessions, not other roles; user ARNs match exactly', () => {
    const p = policy({ Effect: 'Allow', Principal: { AWS: [`arn:aws:iam::${ACCOUNT}:role/App`] }, Action: 'kms:Decrypt', Resource: '*' });
    expect(can(p, appSession, 'kms:Decrypt')).toBe(true);
    expect(can(p, caller(`arn:aws:sts::${ACCOUNT}:assumed-role/Apps/s`), 'kms:Decrypt')).toBe(false);
    expect(can(p, caller(`arn:aws:sts::${OTHER}:assumed-role/App/s`), 'kms:Decrypt')).toBe(false);
    expect(can(p, caller(`arn:aws:iam::${ACCOUNT}:user/App`), 'kms:Decrypt')).toBe(false);
    expect(can(p, root, 'kms:Decrypt')).toBe(false);
  });
  it('action wildcards * and ? are case-insensitive', () => {
    const p = policy(allow({ Action: ['kms:Get*', 'KMS:?ncrypt', 'kms:reencrypt*'] }));
    expect(can(p, admin, 'kms:GetKeyPolicy')).toBe(true);
    expect(can(p, admin, 'kms:GetPublicKey')).toBe(true);
    expect(can(p, admin, 'kms:Encrypt')).toBe(true);
    expect(can(p, admin, 'kms:ReEncryptFrom')).toBe(true);
    expect(can(p, admin, 'KMS:GETKEYPOLICY')).toBe(true);
    expect(can(p, admin, 'kms:Decrypt')).toBe(false); // ? is exactly one character
    expect(can(p, admin, 'kms:PutKeyPolicy')).toBe(false);
    expect(can(policy(allow({ Action: '*' })), admin, 'kms:Decrypt')).toBe(true);
    expect(can(policy(allow({ Action: 'kms:Decrypt' })), admin, 'kms:DecryptX')).toBe(false); // anchored
  });
  it('NotAction and NotPrincipal', () => {
    const p = policy(allow({ Action: undefined, NotAction: ['kms:Decrypt', 'kms:Schedule*'] }));
    expect(can(p, admin, 'kms:Encrypt')).toBe(true);
    expect(can(p, admin, 'kms:Decrypt')).toBe(false);
    expect(can(p, admin, 'kms:ScheduleKeyDeletion')).toBe(false);
    const q = policy(
      { Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*' },
      { Effect: 'Deny', NotPrincipal: { AWS: [root.arn, admin.arn] }, Action: 'kms:ScheduleKeyDeletion', Resource: '*' },
    );
    expect(can(q, admin, 'kms:ScheduleKeyDeletion')).toBe(true);
    expect(can(q, root, 'kms:ScheduleKeyDeletion')).toBe(true);
    const d = evaluateKeyPolicy(q, { caller: app, action: 'kms:ScheduleKeyDeletion', resourceArn: KEY });
    expect(d).toEqual({ allowed: false, explicitDeny: true });
    expect(can(q, app, 'kms:Decrypt')).toBe(true);
  });
  it('Resource "*", the key ARN, wildcards, NotResource', () => {
    expect(can(policy(allow({ Resource: KEY })), admin, 'kms:Decrypt')).toBe(true);
    expect(evaluateKeyPolicy(policy(allow({ Resource: KEY })), { caller: admin, action: 'kms:Decrypt', resourceArn: OTHER_KEY }).allowed).toBe(false);
    expect(can(policy(allow({ Resource: `arn:aws:kms:*:${ACCOUNT}:key/*` })), admin, 'kms:Decrypt')).toBe(true);
    expect(can(policy(allow({ Resource: `arn:aws:kms:*:${OTHER}:key/*` })), admin, 'kms:Decrypt')).toBe(false);
    expect(can(policy(allow({ Resource: undefined, NotResource: OTHER_KEY })), admin, 'kms:Decrypt')).toBe(true);
    expect(can(policy(allow({ Resource: undefined, NotResource: KEY })), admin, 'kms:Decrypt')).toBe(false);
  });
  it('explicit Deny wins over any Allow; nothing matching is an implicit deny', () => {
    const p = policy(allow({}), deny({ Action: 'kms:Decrypt' }));
    expect(evaluateKeyPolicy(p, { caller: admin, action: 'kms:Decrypt', resourceArn: KEY })).toEqual({ allowed: false, explicitDeny: true });
    expect(evaluateKeyPolicy(p, { caller: admin, action: 'kms:Encrypt', resourceArn: KEY })).toEqual({ allowed: true, explicitDeny: false });
    expect(evaluateKeyPolicy(p, { caller: app, action: 'kms:Encrypt', resourceArn: KEY })).toEqual({ allowed: false, explicitDeny: false });
    // order does not matter
    const q = policy(deny({ Action: 'kms:Decrypt' }), allow({}));
    expect(can(q, admin, 'kms:Decrypt')).toBe(false);
  });
  it('an unparseable policy denies everything (fail closed)', () => {
    expect(evaluateKeyPolicy('{not json', { caller: root, action: 'kms:Decrypt', resourceArn: KEY })).toEqual({ allowed: false, explicitDeny: false });
  });
});

describe('conditions', () => {
  const tenant = (value: string | string[], op = 'StringEquals', key = 'kms:EncryptionContext:tenant') =>
    policy(allow({ Condition: { [op]: { [key]: value } } }));
  const ec = (encryptionContext: Record<string, string>) => ({ encryptionContext });

  it('kms:EncryptionContext:<key>: one tenant admitted, another denied, missing context denied', () => {
    const p = tenant('alpha');
    expect(can(p, admin, 'kms:Decrypt', ec({ tenant: 'alpha', extra: 'x' }))).toBe(true);
    expect(can(p, admin, 'kms:Decrypt', ec({ tenant: 'beta' }))).toBe(false);
    expect(can(p, admin, 'kms:Decrypt', ec({}))).toBe(false);
    expect(can(p, admin, 'kms:Decrypt')).toBe(false);
  });
  it('the context key part is case-insensitive, the value is compared by the operator', () => {
    expect(can(tenant('alpha', 'StringEquals', 'KMS:ENCRYPTIONCONTEXT:Tenant'), admin, 'kms:Decrypt', ec({ tenant: 'alpha' }))).toBe(true);
    expect(can(tenant('alpha'), admin, 'kms:Decrypt', ec({ TENANT: 'alpha' }))).toBe(true);
    expect(can(tenant('alpha'), admin, 'kms:Decrypt', ec({ tenant: 'Alpha' }))).toBe(false);
    expect(can(tenant('alpha', 'StringEqualsIgnoreCase'), admin, 'kms:Decrypt', ec({ tenant: 'ALPHA' }))).toBe(true);
    expect(can(tenant('alpha', 'StringNotEqualsIgnoreCase'), admin, 'kms:Decrypt', ec({ tenant: 'ALPHA' }))).toBe(false);
  });
  it('context keys with colons and spaces', () => {
    expect(can(tenant('x', 'StringEquals', 'kms:EncryptionContext:aws:logs:arn'), admin, 'kms:Decrypt', ec({ 'aws:logs:arn': 'x' }))).toBe(true);
    expect(can(tenant('x', 'StringEquals', 'kms:EncryptionContext:my key'), admin, 'kms:Decrypt', ec({ 'My Key': 'x' }))).toBe(true);
    expect(can(tenant('x', 'StringEquals', 'kms:EncryptionContext:my key'), admin, 'kms:Decrypt', ec({ 'my  key': 'x' }))).toBe(false);
  });
  it('several values are OR, several keys and operators are AND', () => {
    expect(can(tenant(['alpha', 'beta']), admin, 'kms:Decrypt', ec({ tenant: 'beta' }))).toBe(true);
    const p = policy(allow({ Condition: {
      StringEquals: { 'kms:EncryptionContext:tenant': 'alpha', 'kms:EncryptionContext:stage': 'prod' },
      StringLike: { 'kms:EncryptionContext:path': 'reports/*' },
    } }));
    expect(can(p, admin, 'kms:Decrypt', ec({ tenant: 'alpha', stage: 'prod', path: 'reports/2024/q1' }))).toBe(true);
    expect(can(p, admin, 'kms:Decrypt', ec({ tenant: 'alpha', stage: 'dev', path: 'reports/2024/q1' }))).toBe(false);
    expect(can(p, admin, 'kms:Decrypt', ec({ tenant: 'alpha', stage: 'prod', path: 'invoices/1' }))).toBe(false);
  });
  it('StringLike / StringNotLike wildcards are case-sensitive', () => {
    expect(can(tenant('al?ha*', 'StringLike'), admin, 'kms:Decrypt', ec({ tenant: 'alpha-1' }))).toBe(true);
    expect(can(tenant('al?ha*', 'StringLike'), admin, 'kms:Decrypt', ec({ tenant: 'ALPHA-1' }))).toBe(false);
    expect(can(tenant('test-*', 'StringNotLike'), admin, 'kms:Decrypt', ec({ tenant: 'prod-1' }))).toBe(true);
    expect(can(tenant('test-*', 'StringNotLike'), admin, 'kms:Decrypt', ec({ tenant: 'test-1' }))).toBe(false);
  });
  it('negated operators are true when the key is missing; IfExists makes a missing key pass', () => {
    // Deny unless tenant=alpha: a request without the pair is denied only through StringNotEquals.
    const p = policy(allow({}), deny({ Action: 'kms:Decrypt', Condition: { StringNotEquals: { 'kms:EncryptionContext:tenant': 'alpha' } } }));
    expect(can(p, admin, 'kms:Decrypt', ec({ tenant: 'alpha' }))).toBe(true);
    expect(can(p, admin, 'kms:Decrypt', ec({ tenant: 'beta' }))).toBe(false);
    expect(can(p, admin, 'kms:Decrypt')).toBe(false);
    const q = policy(allow({ Condition: { StringEqualsIfExists: { 'kms:EncryptionAlgorithm': 'SYMMETRIC_DEFAULT' } } }));
    expect(can(q, admin, 'kms:Decrypt')).toBe(true);
    expect(can(q, admin, 'kms:Decrypt', { encryptionAlgorithm: 'SYMMETRIC_DEFAULT' })).toBe(true);
    expect(can(q, admin, 'kms:Decrypt', { encryptionAlgorithm: 'RSAES_OAEP_SHA_256' })).toBe(false);
    const r = policy(allow({ Condition: { StringEquals: { 'kms:EncryptionAlgorithm': 'SYMMETRIC_DEFAULT' } } }));
    expect(can(r, admin, 'kms:Decrypt')).toBe(false);
  });
  it('Null tests presence', () => {
    const mustHave = policy(allow({ Condition: { Null: { 'kms:EncryptionContextKeys': 'false' } } }));
    expect(can(mustHave, admin, 'kms:Encrypt', ec({ a: '1' }))).toBe(true);
    expect(can(mustHave, admin, 'kms:Encrypt', ec({}))).toBe(false);
    expect(can(mustHave, admin, 'kms:Encrypt')).toBe(false);
    const mustNot = policy(allow({ Condition: { Null: { 'kms:BypassPolicyLockoutSafetyCheck': true } } }));
    expect(can(mustNot, admin, 'kms:PutKeyPolicy')).toBe(true);
    expect(can(mustNot, admin, 'kms:PutKeyPolicy', { conditionKeys: { 'kms:BypassPolicyLockoutSafetyCheck': true } })).toBe(false);
  });
  it('Bool compares true/false case-insensitively, from booleans or strings', () => {
    const p = policy(allow({ Condition: { Bool: { 'kms:GrantIsForAWSResource': true } } }));
    expect(can(p, admin, 'kms:CreateGrant', { conditionKeys: { 'kms:GrantIsForAWSResource': true } })).toBe(true);
    expect(can(p, admin, 'kms:CreateGrant', { conditionKeys: { 'kms:GrantIsForAWSResource': 'TRUE' } })).toBe(true);
    expect(can(p, admin, 'kms:CreateGrant', { conditionKeys: { 'kms:GrantIsForAWSResource': false } })).toBe(false);
    expect(can(p, admin, 'kms:CreateGrant')).toBe(false);
  });
  it('ForAnyValue / ForAllValues over kms:EncryptionContextKeys', () => {
    const any = policy(allow({ Condition: { 'ForAnyValue:StringEquals': { 'kms:EncryptionContextKeys': ['tenant', 'project'] } } }));
    expect(can(any, admin, 'kms:Encrypt', ec({ tenant: 'a', other: 'b' }))).toBe(true);
    expect(can(any, admin, 'kms:Encrypt', ec({ other: 'b' }))).toBe(false);
    expect(can(any, admin, 'kms:Encrypt')).toBe(false); // missing key: ForAnyValue is false
    const all = policy(allow({ Condition: { 'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['tenant', 'project'] } } }));
    expect(can(all, admin, 'kms:Encrypt', ec({ tenant: 'a' }))).toBe(true);
    expect(can(all, admin, 'kms:Encrypt', ec({ tenant: 'a', project: 'p' }))).toBe(true);
    expect(can(all, admin, 'kms:Encrypt', ec({ tenant: 'a', other: 'b' }))).toBe(false);
    expect(can(all, admin, 'kms:Encrypt')).toBe(true); // missing key: ForAllValues is vacuously true
    expect(can(all, admin, 'kms:Encrypt', ec({ Tenant: 'a' }))).toBe(false); // keys themselves are case-sensitive values
    const notAny = policy(allow({ Condition: { 'ForAnyValue:StringNotLike': { 'kms:EncryptionContextKeys': 'aws:*' } } }));
    expect(can(notAny, admin, 'kms:Encrypt', ec({ 'aws:x': '1', tenant: 'a' }))).toBe(true);
    expect(can(notAny, admin, 'kms:Encrypt', ec({ 'aws:x': '1' }))).toBe(false);
    // ForAnyValue with the single-valued kms:EncryptionContext:<key> behaves like the plain operator
    const anyTenant = tenant(['alpha'], 'ForAnyValue:StringEquals');
    expect(can(anyTenant, admin, 'kms:Decrypt', ec({ tenant: 'alpha' }))).toBe(true);
    expect(can(anyTenant, admin, 'kms:Decrypt', ec({ tenant: 'beta' }))).toBe(false);
  });
  it('kms:CallerAccount, aws:PrincipalArn (role session -> role), condition key names case-insensitive', () => {
    const p = policy({ Effect: 'Allow', Principal: { AWS: '*' }, Action: 'kms:Decrypt', Resource: '*',
      Condition: { StringEquals: { 'KMS:CALLERACCOUNT': ACCOUNT } } });
    expect(can(p, app, 'kms:Decrypt')).toBe(true);
    expect(can(p, outsiderUser, 'kms:Decrypt')).toBe(false);
    const q = policy({ Effect: 'Allow', Principal: '*', Action: 'kms:Decrypt', Resource: '*',
      Condition: { ArnLike: { 'aws:PrincipalArn': `arn:aws:iam::${ACCOUNT}:role/A*` } } });
    expect(can(q, appSession, 'kms:Decrypt')).toBe(true);
    expect(can(q, admin, 'kms:Decrypt')).toBe(false);
    const r = policy({ Effect: 'Allow', Principal: '*', Action: 'kms:Decrypt', Resource: '*',
      Condition: { ArnNotEquals: { 'aws:PrincipalArn': admin.arn } } });
    expect(can(r, admin, 'kms:Decrypt')).toBe(false);
    expect(can(r, app, 'kms:Decrypt')).toBe(true);
  });
  it('kms:EncryptionAlgorithm, kms:ViaService and other keys through conditionKeys', () => {
    const p = policy(allow({ Condition: { StringEquals: { 'kms:ViaService': 's3.us-east-1.amazonaws.com' } } }));
    expect(can(p, admin, 'kms:Decrypt', { conditionKeys: { 'kms:ViaService': 's3.us-east-1.amazonaws.com' } })).toBe(true);
    expect(can(p, admin, 'kms:Decrypt', { conditionKeys: { 'KMS:VIASERVICE': 's3.us-east-1.amazonaws.com' } })).toBe(true);
    expect(can(p, admin, 'kms:Decrypt')).toBe(false);
    const alg = policy(allow({}), deny({ Condition: { StringNotEquals: { 'kms:EncryptionAlgorithm': 'SYMMETRIC_DEFAULT' } } }));
    expect(can(alg, admin, 'kms:Encrypt', { encryptionAlgorithm: 'SYMMETRIC_DEFAULT' })).toBe(true);
    expect(can(alg, admin, 'kms:Encrypt', { encryptionAlgorithm: 'RSAES_OAEP_SHA_1' })).toBe(false);
  });
  it('numeric, date and IP operators', () => {
    const num = policy(allow({ Condition: { NumericLessThanEquals: { 'kms:ScheduleKeyDeletionPendingWindowInDays': 7 } } }));
    expect(can(num, admin, 'kms:ScheduleKeyDeletion', { conditionKeys: { 'kms:ScheduleKeyDeletionPendingWindowInDays': '7' } })).toBe(true);
    expect(can(num, admin, 'kms:ScheduleKeyDeletion', { conditionKeys: { 'kms:ScheduleKeyDeletionPendingWindowInDays': '30' } })).toBe(false);
    expect(can(num, admin, 'kms:ScheduleKeyDeletion', { conditionKeys: { 'kms:ScheduleKeyDeletionPendingWindowInDays': 'x' } })).toBe(false);
    const date = policy(allow({ Condition: { DateLessThan: { 'aws:CurrentTime': '2030-01-01T00:00:00Z' } } }));
    expect(can(date, admin, 'kms:Decrypt', { conditionKeys: { 'aws:CurrentTime': '2029-12-31T23:59:59Z' } })).toBe(true);
    expect(can(date, admin, 'kms:Decrypt', { conditionKeys: { 'aws:CurrentTime': '2030-01-01T00:00:01Z' } })).toBe(false);
    const ip = policy(allow({ Condition: { IpAddress: { 'aws:SourceIp': ['10.0.0.0/8', '::1/128'] } } }));
    expect(can(ip, admin, 'kms:Decrypt', { conditionKeys: { 'aws:SourceIp': '10.1.2.3' } })).toBe(true);
    expect(can(ip, admin, 'kms:Decrypt', { conditionKeys: { 'aws:SourceIp': '::1' } })).toBe(true);
    expect(can(ip, admin, 'kms:Decrypt', { conditionKeys: { 'aws:SourceIp': '192.168.1.1' } })).toBe(false);
  });
});

describe('validateKeyPolicy', () => {
  const ok = (p: string) => expect(() => validateKeyPolicy(p)).not.toThrow();
  const st = { Effect: 'Allow', Principal: { AWS: root.arn }, Action: 'kms:*', Resource: '*' };

  it('accepts the usual shapes', () => {
    ok(JSON.stringify({ Statement: st })); // a single statement object, no Version
    ok(JSON.stringify({ Version: '2008-10-17', Id: 'x', Statement: [st] }));
    ok(policy({ ...st, Principal: { AWS: [ACCOUNT, admin.arn, appSession.arn, `arn:aws:iam::${ACCOUNT}:role/path/to/Role`] } }));
    ok(policy({ ...st, Principal: { Service: 'logs.amazonaws.com' } }));
    ok(policy({ ...st, Condition: { 'ForAnyValue:StringLikeIfExists': { 'kms:EncryptionContextKeys': ['a*'] }, Null: { 'aws:SourceIp': 'true' } } }));
    ok(defaultKeyPolicy(ACCOUNT));
  });
  it('rejects malformed documents with MalformedPolicyDocumentException', () => {
    malformed(() => validateKeyPolicy('{"Statement": ['));
    malformed(() => validateKeyPolicy('[]'));
    malformed(() => validateKeyPolicy('{}'));
    malformed(() => validateKeyPolicy(JSON.stringify({ Statement: [] })));
    malformed(() => validateKeyPolicy(JSON.stringify({ Version: '2020-01-01', Statement: [st] })));
    malformed(() => validateKeyPolicy(JSON.stringify({ Statement: [st], Extra: 1 })));
    malformed(() => validateKeyPolicy(policy({ ...st, Effect: 'allow' })));
    malformed(() => validateKeyPolicy(policy({ ...st, Effect: 'Permit' })));
    malformed(() => validateKeyPolicy(policy({ ...st, Principal: undefined })));
    malformed(() => validateKeyPolicy(policy({ ...st, NotPrincipal: { AWS: root.arn } })));
    malformed(() => validateKeyPolicy(policy({ ...st, Action: undefined })));
    malformed(() => validateKeyPolicy(policy({ ...st, Resource: undefined })));
    malformed(() => validateKeyPolicy(policy({ ...st, Action: 'Decrypt' })));
    malformed(() => validateKeyPolicy(policy({ ...st, Action: [] })));
    malformed(() => validateKeyPolicy(policy({ ...st, Resource: 'key/abc' })));
    malformed(() => validateKeyPolicy(policy({ ...st, Actions: 'kms:*' })));
    malformed(() => validateKeyPolicy(policy(st, { ...st, Sid: 'a' }, { ...st, Sid: 'a' })));
  });
  it('rejects invalid principals', () => {
    for (const pr of [{ AWS: 'alice' }, { AWS: `arn:aws:iam::${ACCOUNT}:user/*` }, { AWS: `arn:aws:iam::${ACCOUNT}:group/Admins` },
      { AWS: '12345' }, { AWS: [] }, { Alien: 'x' }, 'root', {}]) {
      const err = malformed(() => validateKeyPolicy(policy({ ...st, Principal: pr })));
      expect(err.message).toBe('Policy contains a statement with one or more invalid principals.');
    }
  });
  it('rejects unknown condition operators and bad condition values', () => {
    const err = malformed(() => validateKeyPolicy(policy({ ...st, Condition: { StringEqualz: { 'kms:CallerAccount': ACCOUNT } } })));
    expect(err.message).toContain('StringEqualz');
    malformed(() => validateKeyPolicy(policy({ ...st, Condition: { 'ForSomeValues:StringEquals': { 'kms:CallerAccount': ACCOUNT } } })));
    malformed(() => validateKeyPolicy(policy({ ...st, Condition: { NullIfExists: { 'kms:CallerAccount': 'true' } } })));
    malformed(() => validateKeyPolicy(policy({ ...st, Condition: { StringEquals: { 'kms:CallerAccount': { a: 1 } } } })));
    malformed(() => validateKeyPolicy(policy({ ...st, Condition: { StringEquals: { CallerAccount: ACCOUNT } } })));
    malformed(() => validateKeyPolicy(policy({ ...st, Condition: 'x' })));
  });
  it('rejects ForAllValues with kms:EncryptionContext:<key> as AWS KMS does (OverlyPermissiveCondition)', () => {
    const err = malformed(() => validateKeyPolicy(policy({ ...st, Condition: { 'ForAllValues:StringEquals': { 'kms:EncryptionContext:tenant': 'a' } } })));
    expect(err.message).toMatch(/^OverlyPermissiveCondition/);
  });
  it('length 1..32768 and the allowed characters are ValidationException constraints', () => {
    const big = policy({ ...st, Sid: 'x'.repeat(32_768) });
    const e1 = malformed(() => validateKeyPolicy(big), 'ValidationException');
    expect(e1.message).toContain('32768');
    malformed(() => validateKeyPolicy(''), 'ValidationException');
    malformed(() => validateKeyPolicy(policy({ ...st, Sid: 'caf\u00e9 \u2603' })), 'ValidationException');
    ok(policy({ ...st, Sid: 'caf\u00e9' })); // Latin-1 is allowed
    // exactly at the limit is fine
    const base = policy({ ...st, Sid: '' });
    ok(policy({ ...st, Sid: 'y'.repeat(32_768 - base.length) }));
  });
});

describe('callerKeepsPolicyAccess (policy lockout safety check)', () => {
  it('root keeps access under the default policy; a user does not (no IAM to delegate to)', () => {
    expect(callerKeepsPolicyAccess(defaultKeyPolicy(ACCOUNT), root, KEY)).toBe(true);
    expect(callerKeepsPolicyAccess(defaultKeyPolicy(ACCOUNT), admin, KEY)).toBe(false);
  });
  it('console policy: administrators keep access, users do not', () => {
    const p = keyPolicyFor({ accountId: ACCOUNT, administrators: [admin.arn], users: [app.arn] });
    expect(callerKeepsPolicyAccess(p, admin, KEY)).toBe(true);
    expect(callerKeepsPolicyAccess(p, app, KEY)).toBe(false);
  });
  it('a Deny on PutKeyPolicy, or a policy for another key, locks the caller out', () => {
    expect(callerKeepsPolicyAccess(policy(allow({}), deny({ Action: 'kms:PutKeyPolicy' })), admin, KEY)).toBe(false);
    expect(callerKeepsPolicyAccess(policy(allow({ Resource: OTHER_KEY })), admin, KEY)).toBe(false);
    expect(callerKeepsPolicyAccess(policy(allow({ Action: 'kms:Put*' })), admin, KEY)).toBe(true);
    expect(callerKeepsPolicyAccess('not json', admin, KEY)).toBe(false);
  });
});

describe('authorizeKeyPolicy and assertPolicyLockoutSafe', () => {
  const p = keyPolicyFor({ accountId: ACCOUNT, administrators: [admin.arn], users: [app.arn] });
  it('throws AccessDeniedException worded like AWS', () => {
    expect(() => authorizeKeyPolicy(p, { caller: app, action: 'kms:Decrypt', resourceArn: KEY })).not.toThrow();
    const e = malformed(() => authorizeKeyPolicy(p, { caller: admin, action: 'kms:Decrypt', resourceArn: KEY }), 'AccessDeniedException');
    expect(e.message).toBe(`User: ${admin.arn} is not authorized to perform: kms:Decrypt on resource: ${KEY} because no resource-based policy allows the kms:Decrypt action`);
    const d = policy(allow({}), deny({ Action: 'kms:Decrypt' }));
    const e2 = malformed(() => authorizeKeyPolicy(d, { caller: admin, action: 'kms:Decrypt', resourceArn: KEY }), 'AccessDeniedException');
    expect(e2.message).toMatch(/with an explicit deny in a resource-based policy$/);
  });
  it('lockout check throws MalformedPolicyDocumentException unless bypassed', () => {
    expect(() => assertPolicyLockoutSafe(p, admin, KEY)).not.toThrow();
    const e = malformed(() => assertPolicyLockoutSafe(p, app, KEY));
    expect(e.message).toBe(POLICY_LOCKOUT_MESSAGE);
    expect(() => assertPolicyLockoutSafe(p, app, KEY, true)).not.toThrow();
  });
});
