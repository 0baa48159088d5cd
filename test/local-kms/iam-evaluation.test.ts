/**
 * IAM identity policies in the in-process local KMS service: the finer points of how they combine
 * with key policies and grants, and which condition keys they see. Each test names the AWS
 * documentation page it follows (iam-policies.test.ts covers the main rules over HTTP).
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { LocalKmsService } from '../../src/local-kms/service.js';
import { parseIdentityPolicy } from '../../src/local-kms/policy.js';
import type { Caller } from '../../src/local-kms/policy-types.js';
import { KmsServiceError } from '../../src/local-kms/errors.js';
import { ACCOUNT, ROOT_ARN, errorOf } from './helpers.js';

type Doc = Record<string, unknown>;
const st = (Effect: 'Allow' | 'Deny', Action: string | string[], Resource: string | string[] = '*', Condition?: object): Doc => ({
  Effect,
  Action,
  Resource,
  ...(Condition ? { Condition } : {}),
});
/** A caller whose IAM is modelled, with one identity policy made of `statements`. */
const iam = (arn: string, ...statements: Doc[]): Caller => ({
  arn,
  account: /::(\d{12}):/.exec(arn)![1]!,
  identityPolicies: statements.length > 0 ? [parseIdentityPolicy({ Version: '2012-10-17', Statement: statements })] : [],
});
const plain = (arn: string): Caller => ({ arn, account: /::(\d{12}):/.exec(arn)![1]! });
const USER = `arn:aws:iam::${ACCOUNT}:user/dev`;
const rootStatement = { Effect: 'Allow', Principal: { AWS: ROOT_ARN }, Action: 'kms:*', Resource: '*' };
const keyPolicy = (...statements: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: [rootStatement, ...statements] });

let kms: LocalKmsService;
const call = (op: string, input: Record<string, unknown>, caller?: Caller) => kms.call(op, input, caller);
const newKey = async (input: Record<string, unknown> = {}) => ((await call('CreateKey', input)).KeyMetadata as { KeyId: string; Arn: string });
const encrypt = (keyId: string, caller: Caller) => call('Encrypt', { KeyId: keyId, Plaintext: Buffer.from('x') }, caller);
async function messageOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof KmsServiceError) return `${e.type}: ${e.message}`;
    throw e;
  }
  throw new Error('expected the call to fail');
}

beforeEach(() => {
  kms = new LocalKmsService();
});

describe('which condition keys identity policies see', () => {
  it('kms:CallerAccount is in key-operation requests only, not in CreateKey\'s (Developer Guide, "AWS KMS condition keys", kms:CallerAccount: "KMS key resource operations, custom key store operations")', async () => {
    const key = await newKey();
    const dev = iam(
      USER,
      st('Allow', 'kms:CreateKey', '*', { Null: { 'kms:CallerAccount': 'true' } }),
      st('Allow', 'kms:Encrypt', '*', { StringEquals: { 'kms:CallerAccount': ACCOUNT } }),
    );
    await call('CreateKey', {}, dev);
    await encrypt(key.KeyId, dev);
    const strict = iam(USER, st('Allow', 'kms:CreateKey', '*', { StringEquals: { 'kms:CallerAccount': ACCOUNT } }));
    expect(await errorOf(call('CreateKey', {}, strict))).toBe('AccessDeniedException');
  });

  it('kms:ResourceAliases is absent for a key without aliases: ForAllValues holds, ForAnyValue does not (Developer Guide, "AWS KMS condition keys", kms:ResourceAliases)', async () => {
    const key = await newKey();
    const all = iam(USER, st('Allow', 'kms:Encrypt', '*', { 'ForAllValues:StringLike': { 'kms:ResourceAliases': 'alias/*Test*' } }));
    const any = iam(USER, st('Allow', 'kms:Encrypt', '*', { 'ForAnyValue:StringLike': { 'kms:ResourceAliases': 'alias/*Test*' } }));
    await encrypt(key.KeyId, all);
    expect(await errorOf(encrypt(key.KeyId, any))).toBe('AccessDeniedException');
    await call('CreateAlias', { AliasName: 'alias/prod', TargetKeyId: key.KeyId });
    expect(await errorOf(encrypt(key.KeyId, all))).toBe('AccessDeniedException');
    await call('CreateAlias', { AliasName: 'alias/myTest', TargetKeyId: key.KeyId });
    await encrypt(key.KeyId, any);
  });

  it('aws:ResourceTag and kms:ResourceAliases never reach a key policy, even for a caller whose IAM is modelled ("Using tags to control access to KMS keys": supported only in IAM policies)', async () => {
    const key = await newKey({
      Tags: [{ TagKey: 'Project', TagValue: 'Alpha' }],
      Policy: keyPolicy({
        Effect: 'Allow',
        Principal: { AWS: USER },
        Action: 'kms:Encrypt',
        Resource: '*',
        Condition: { StringEquals: { 'aws:ResourceTag/Project': 'Alpha' } },
      }),
    });
    expect(await messageOf(encrypt(key.KeyId, iam(USER)))).toMatch(/because no identity-based policy allows the kms:Encrypt action$/);
    expect(await errorOf(encrypt(key.KeyId, plain(USER)))).toBe('AccessDeniedException');
  });

  it('policy variables work in identity policies: an alias named after the user (IAM User Guide, "IAM policy elements: Variables and tags")', async () => {
    const key = await newKey();
    const dev = iam(USER, st('Allow', ['kms:CreateAlias', 'kms:DeleteAlias'], [`arn:aws:kms:us-east-1:${ACCOUNT}:alias/\${aws:username}-*`, `arn:aws:kms:us-east-1:${ACCOUNT}:key/*`]));
    await call('CreateAlias', { AliasName: 'alias/dev-app', TargetKeyId: key.KeyId }, dev);
    expect(await messageOf(call('CreateAlias', { AliasName: 'alias/ops-app', TargetKeyId: key.KeyId }, dev))).toBe(
      `AccessDeniedException: User: ${USER} is not authorized to perform: kms:CreateAlias on resource: arn:aws:kms:us-east-1:${ACCOUNT}:alias/ops-app because no identity-based policy allows the kms:CreateAlias action`,
    );
  });
});

describe('how identity policies combine with the key policy and grants', () => {
  it('a key policy naming a role allows its sessions without an identity policy, within the account (IAM User Guide, "Policy evaluation logic": resource-based policies and implicit denies)', async () => {
    const key = await newKey({ Policy: keyPolicy({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:role/App` }, Action: 'kms:Encrypt', Resource: '*' }) });
    await encrypt(key.KeyId, iam(`arn:aws:sts::${ACCOUNT}:assumed-role/App/s1`));
  });

  it('a key-policy Deny naming the account applies to every identity of the account, modelled or not (IAM User Guide, "AWS account principals")', async () => {
    const key = await newKey({
      Policy: keyPolicy(
        { Effect: 'Allow', Principal: { AWS: USER }, Action: 'kms:Encrypt', Resource: '*' },
        { Effect: 'Deny', Principal: { AWS: ACCOUNT }, Action: 'kms:Encrypt', Resource: '*', Condition: { Bool: { 'aws:SecureTransport': 'true' } } },
      ),
    });
    expect(await messageOf(encrypt(key.KeyId, iam(USER, st('Allow', 'kms:*'))))).toMatch(/with an explicit deny in a resource-based policy$/);
    expect(await messageOf(encrypt(key.KeyId, plain(USER)))).toMatch(/with an explicit deny in a resource-based policy$/);
  });

  it('an identity-policy Deny also stops CreateGrant through a parent grant; an identity Allow lets a delegated caller create grants (Developer Guide, "Troubleshooting key access")', async () => {
    const key = await newKey();
    const grantee = `arn:aws:iam::${ACCOUNT}:user/grantee`;
    await call('CreateGrant', { KeyId: key.KeyId, GranteePrincipal: USER, Operations: ['CreateGrant', 'Encrypt'] });
    const denied = iam(USER, st('Deny', 'kms:CreateGrant'));
    expect(await messageOf(call('CreateGrant', { KeyId: key.KeyId, GranteePrincipal: grantee, Operations: ['Encrypt'] }, denied))).toMatch(
      /with an explicit deny in an identity-based policy$/,
    );
    // The parent grant alone (no identity Allow) still lets it pass on what it holds.
    await call('CreateGrant', { KeyId: key.KeyId, GranteePrincipal: grantee, Operations: ['Encrypt'] }, iam(USER));
    await call('CreateGrant', { KeyId: key.KeyId, GranteePrincipal: grantee, Operations: ['Decrypt'] }, iam(USER, st('Allow', 'kms:CreateGrant')));
  });

  it('ReEncrypt needs kms:ReEncryptFrom on the source key and kms:ReEncryptTo on the destination (Developer Guide, "AWS KMS permissions")', async () => {
    const a = await newKey();
    const b = await newKey();
    const blob = (await call('Encrypt', { KeyId: a.KeyId, Plaintext: Buffer.from('x') })).CiphertextBlob;
    const from = iam(USER, st('Allow', 'kms:ReEncryptFrom', a.Arn));
    expect(await messageOf(call('ReEncrypt', { CiphertextBlob: blob, DestinationKeyId: b.KeyId }, from))).toMatch(
      new RegExp(`kms:ReEncryptTo on resource: ${b.Arn} because no identity-based policy allows`),
    );
    await call('ReEncrypt', { CiphertextBlob: blob, DestinationKeyId: b.KeyId }, iam(USER, st('Allow', 'kms:ReEncrypt*', [a.Arn, b.Arn])));
  });

  it('ListRetirableGrants names a principal of the caller\'s account or is refused, whatever IAM allows (API Reference, ListRetirableGrants)', async () => {
    const dev = iam(USER, st('Allow', 'kms:ListRetirableGrants'));
    await call('ListRetirableGrants', { RetiringPrincipal: `arn:aws:iam::${ACCOUNT}:role/Other` }, dev);
    expect(await errorOf(call('ListRetirableGrants', { RetiringPrincipal: 'arn:aws:iam::444455556666:role/Other' }, dev))).toBe('AccessDeniedException');
  });

  it('an IAM-only operation denied by an explicit Deny says so; CreateKey with Tags names no resource for kms:TagResource (IAM User Guide, "Troubleshoot access denied error messages")', async () => {
    const dev = iam(USER, st('Allow', ['kms:CreateKey', 'kms:TagResource']), st('Deny', 'kms:TagResource', '*', { 'ForAnyValue:StringEquals': { 'aws:TagKeys': 'Owner' } }));
    await call('CreateKey', { Tags: [{ TagKey: 'Project', TagValue: 'A' }] }, dev);
    expect(await messageOf(call('CreateKey', { Tags: [{ TagKey: 'Owner', TagValue: 'me' }] }, dev))).toBe(
      `AccessDeniedException: User: ${USER} is not authorized to perform: kms:TagResource with an explicit deny in an identity-based policy`,
    );
  });
});

describe('callers whose IAM is not modelled (no `policies`)', () => {
  it('a key policy Deny naming the account applies to every identity in it, not only to the root (IAM User Guide, "AWS account principals": the account ARN does not limit a statement to the root user)', async () => {
    const dev = plain(USER);
    const key = await newKey({
      Policy: keyPolicy(
        { Effect: 'Allow', Principal: { AWS: USER }, Action: 'kms:*', Resource: '*' },
        { Effect: 'Deny', Principal: { AWS: ACCOUNT }, Action: 'kms:Encrypt', Resource: '*' },
      ),
    });
    expect(await messageOf(encrypt(key.KeyId, dev))).toMatch(/^AccessDeniedException: .*with an explicit deny in a resource-based policy$/);
    // The same Deny with the root ARN form, and an Allow naming the account still means the root only here.
    const key2 = await newKey({
      Policy: keyPolicy(
        { Effect: 'Allow', Principal: { AWS: USER }, Action: 'kms:*', Resource: '*' },
        { Effect: 'Deny', Principal: { AWS: ROOT_ARN }, Action: 'kms:Encrypt', Resource: '*' },
      ),
    });
    expect(await errorOf(encrypt(key2.KeyId, dev))).toBe('AccessDeniedException');
    const key3 = await newKey();
    expect(await errorOf(encrypt(key3.KeyId, dev))).toBe('AccessDeniedException');
    // Another account's Deny does not touch this caller.
    const key4 = await newKey({
      Policy: keyPolicy(
        { Effect: 'Allow', Principal: { AWS: USER }, Action: 'kms:*', Resource: '*' },
        { Effect: 'Deny', Principal: { AWS: '999988887777' }, Action: 'kms:Encrypt', Resource: '*' },
      ),
    });
    await encrypt(key4.KeyId, dev);
  });
});
