/**
 * RetireGrant and IAM (started as an external review's reproduction, finding 5a: the local KMS
 * decided RetireGrant by the grant alone, so an identity-policy Deny of kms:RetireGrant was ignored).
 *
 * KMS Developer Guide, "Retiring and revoking grants": the grant determines who can retire it (its
 * retiring principal; its grantee when the grant includes RetireGrant; the account it was created
 * in); "Principals specified in the grant can retire a grant without the kms:RetireGrant
 * permission"; the permission "is not effective in a key policy"; "To deny permission to retire a
 * grant, you can use a Deny action with the kms:RetireGrant permission"; the key's account can
 * delegate kms:RetireGrant to its IAM identities, and so can the retiring principal's account
 * when the retiring principal is another account.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { LocalKmsService } from '../../src/local-kms/service.js';
import type { Caller } from '../../src/local-kms/policy-types.js';
import { ACCOUNT, OTHER, iam, keyPolicy, newKey, outcome, plain, root } from './authz-callers.js';

let kms: LocalKmsService;
beforeEach(() => {
  kms = new LocalKmsService();
});

describe('Deny kms:RetireGrant in an identity policy', () => {
  it('stops the retiring principal from retiring the grant', async () => {
    const BOB = `arn:aws:iam::${ACCOUNT}:user/bob`;
    const bob = iam(BOB, { Effect: 'Allow', Action: 'kms:*', Resource: '*' }, { Effect: 'Deny', Action: 'kms:RetireGrant', Resource: '*' });
    const key = await newKey(kms);
    const grant = (await kms.call('CreateGrant', { KeyId: key.KeyId, GranteePrincipal: BOB, RetiringPrincipal: BOB, Operations: ['Encrypt'] }, root)) as { GrantId: string };
    expect(await outcome(kms.call('RetireGrant', { KeyId: key.KeyId, GrantId: grant.GrantId }, bob))).toBe('AccessDeniedException');
  });
});

// ---------------------------------------------------------------------------------------------

const withPolicies = (arn: string, ...statements: object[]): Caller =>
  statements.length > 0 ? iam(arn, ...statements) : { ...plain(arn), identityPolicies: [] };
const allowRetire = { Effect: 'Allow', Action: 'kms:RetireGrant', Resource: '*' };
const denyRetire = { Effect: 'Deny', Action: 'kms:RetireGrant', Resource: '*' };

async function grantOn(keyId: string, input: Record<string, unknown>): Promise<string> {
  return ((await kms.call('CreateGrant', { KeyId: keyId, Operations: ['Encrypt'], ...input }, root)) as { GrantId: string }).GrantId;
}
const retire = (key: { KeyId: string; Arn: string }, grantId: string, who: Caller, extra: Record<string, unknown> = {}) =>
  outcome(kms.call('RetireGrant', { KeyId: key.Arn, GrantId: grantId, ...extra }, who));

describe('RetireGrant with identity policies', () => {
  it('principals the grant names need no permission (policies: [] retires), and the Deny also stops a grantee holding RetireGrant and a DryRun', async () => {
    const arn = `arn:aws:iam::${ACCOUNT}:role/Worker`;
    const key = await newKey(kms);
    const g1 = await grantOn(key.KeyId, { GranteePrincipal: arn, Operations: ['Encrypt', 'RetireGrant'] });
    expect(await retire(key, g1, withPolicies(arn, denyRetire), { DryRun: true })).toBe('AccessDeniedException');
    expect(await retire(key, g1, withPolicies(arn, denyRetire))).toBe('AccessDeniedException');
    expect(await retire(key, g1, withPolicies(arn), { DryRun: true })).toBe('DryRunOperationException');
    expect(await retire(key, g1, withPolicies(arn))).toBe('OK');
  });

  it('a Deny scoped to other keys, or with a condition that does not hold, does not stop it (the Deny is evaluated, not assumed)', async () => {
    const arn = `arn:aws:iam::${ACCOUNT}:user/bob`;
    const key = await newKey(kms);
    const g = await grantOn(key.KeyId, { GranteePrincipal: arn, RetiringPrincipal: arn });
    const elsewhere = { Effect: 'Deny', Action: 'kms:RetireGrant', Resource: `arn:aws:kms:us-east-1:${ACCOUNT}:key/00000000-0000-0000-0000-000000000000` };
    const onlyOverHttp = { Effect: 'Deny', Action: 'kms:RetireGrant', Resource: '*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } };
    expect(await retire(key, g, withPolicies(arn, elsewhere, onlyOverHttp))).toBe('OK');
  });

  it('the key\'s account delegates kms:RetireGrant to its IAM identities: an Allow lets one retire any grant of its keys, without it AccessDenied', async () => {
    const key = await newKey(kms);
    const g = await grantOn(key.KeyId, { GranteePrincipal: `arn:aws:iam::${ACCOUNT}:role/App` });
    const cleaner = `arn:aws:iam::${ACCOUNT}:user/cleaner`;
    expect(await retire(key, g, withPolicies(cleaner))).toBe('AccessDeniedException');
    expect(await retire(key, g, plain(cleaner))).toBe('AccessDeniedException');
    expect(await retire(key, g, withPolicies(cleaner, allowRetire))).toBe('OK');
  });

  it('a retiring principal that is another account: that account\'s identities with kms:RetireGrant may retire, a third account\'s may not', async () => {
    const key = await newKey(kms);
    const g = await grantOn(key.KeyId, { GranteePrincipal: `arn:aws:iam::${OTHER}:role/App`, RetiringPrincipal: `arn:aws:iam::${OTHER}:root` });
    expect(await retire(key, g, withPolicies('arn:aws:iam::777788889999:user/admin', allowRetire))).toBe('AccessDeniedException');
    expect(await retire(key, g, withPolicies(`arn:aws:iam::${OTHER}:user/admin`))).toBe('AccessDeniedException');
    expect(await retire(key, g, withPolicies(`arn:aws:iam::${OTHER}:user/admin`, allowRetire))).toBe('OK');
  });

  it('an Allow of kms:RetireGrant in the key policy gives nothing; a Deny of it in the key policy is applied (the documentation does not say; stricter)', async () => {
    const carol = `arn:aws:iam::${ACCOUNT}:user/carol`;
    const key = await newKey(kms, {
      Policy: keyPolicy(
        { Effect: 'Allow', Principal: { AWS: carol }, Action: 'kms:RetireGrant', Resource: '*' },
        { Effect: 'Deny', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:role/Frozen` }, Action: 'kms:RetireGrant', Resource: '*' },
      ),
    });
    const g = await grantOn(key.KeyId, { GranteePrincipal: `arn:aws:iam::${ACCOUNT}:role/Frozen`, RetiringPrincipal: `arn:aws:iam::${ACCOUNT}:role/Frozen` });
    expect(await retire(key, g, plain(carol))).toBe('AccessDeniedException');
    expect(await retire(key, g, plain(`arn:aws:iam::${ACCOUNT}:role/Frozen`))).toBe('AccessDeniedException');
    expect(await retire(key, g, root)).toBe('OK');
  });

  it('by grant token, across accounts: the retiring principal of another account retires a grant on this account\'s key', async () => {
    const key = await newKey(kms);
    const { GrantToken } = (await kms.call('CreateGrant', { KeyId: key.KeyId, GranteePrincipal: `arn:aws:iam::${OTHER}:role/App`, RetiringPrincipal: `arn:aws:iam::${OTHER}:role/App`, Operations: ['Encrypt'] }, root)) as { GrantToken: string };
    // The key named by its bare id is looked up in the other account (NotFound); the token alone names it.
    expect(await outcome(kms.call('RetireGrant', { GrantToken, KeyId: key.KeyId }, plain(`arn:aws:iam::${OTHER}:role/App`)))).toBe('NotFoundException');
    expect(await outcome(kms.call('RetireGrant', { GrantToken }, plain(`arn:aws:iam::${OTHER}:role/App`)))).toBe('OK');
  });
});
