/**
 * Started as an external review's reproduction (its finding 11, reported as 6): kms:GranteePrincipal /
 * kms:RetiringPrincipal were not "the value of the parameter in the request".
 *
 * KMS Developer Guide, "AWS KMS condition keys", kms:GranteePrincipal: "control access to the
 * CreateGrant operation based on the value of the GranteePrincipal parameter in the request"
 * (kms:RetiringPrincipal likewise). API Reference, CreateGrant `GranteePrincipal`: "To specify the
 * grantee principal, use the Amazon Resource Name (ARN) of an AWS principal."
 *
 * What the review found: the local KMS accepted a bare account id as GranteePrincipal, rewrote it
 * to arn:aws:iam::<id>:root and put the REWRITTEN value in the request context, so a Deny written
 * against the parameter as the request gives it (`"kms:GranteePrincipal": "444455556666"`) did not
 * match. Now, as the API Reference asks, only principal ARNs are accepted (a bare account id is
 * InvalidArnException), and the condition keys carry the parameter as given.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { LocalKmsService } from '../../src/local-kms/service.js';
import { ACCOUNT, OTHER, keyPolicy, newKey, outcome, plain, root } from './authz-callers.js';

let kms: LocalKmsService;
beforeEach(() => {
  kms = new LocalKmsService();
});

const GRANTER = `arn:aws:iam::${ACCOUNT}:user/granter`;

describe('CreateGrant with a bare account id as GranteePrincipal', () => {
  it('a Deny on kms:GranteePrincipal naming that account id stops the grant (or the id is refused)', async () => {
    const key = await newKey(kms, {
      Policy: keyPolicy(
        { Sid: 'granter', Effect: 'Allow', Principal: { AWS: GRANTER }, Action: 'kms:CreateGrant', Resource: '*' },
        { Sid: 'never to account B', Effect: 'Deny', Principal: { AWS: '*' }, Action: 'kms:CreateGrant', Resource: '*', Condition: { StringEquals: { 'kms:GranteePrincipal': OTHER } } },
      ),
    });
    const r = await outcome(kms.call('CreateGrant', { KeyId: key.KeyId, GranteePrincipal: OTHER, Operations: ['Decrypt'] }, plain(GRANTER)));
    expect(r).toMatch(/^(AccessDeniedException|InvalidArnException|ValidationException)$/);
  });

  it('the same for kms:RetiringPrincipal', async () => {
    const key = await newKey(kms, {
      Policy: keyPolicy(
        { Sid: 'granter', Effect: 'Allow', Principal: { AWS: GRANTER }, Action: 'kms:CreateGrant', Resource: '*' },
        { Sid: 'account B never retires', Effect: 'Deny', Principal: { AWS: '*' }, Action: 'kms:CreateGrant', Resource: '*', Condition: { StringEquals: { 'kms:RetiringPrincipal': OTHER } } },
      ),
    });
    const r = await outcome(kms.call('CreateGrant', { KeyId: key.KeyId, GranteePrincipal: GRANTER, RetiringPrincipal: OTHER, Operations: ['Decrypt'] }, plain(GRANTER)));
    expect(r).toMatch(/^(AccessDeniedException|InvalidArnException|ValidationException)$/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('principal parameters of the grant operations are principal ARNs (API Reference)', () => {
  it('CreateGrant refuses a bare account id as GranteePrincipal or RetiringPrincipal with InvalidArnException, and creates no grant', async () => {
    const key = await newKey(kms);
    expect(await outcome(kms.call('CreateGrant', { KeyId: key.KeyId, GranteePrincipal: OTHER, Operations: ['Decrypt'] }, root))).toBe('InvalidArnException');
    expect(await outcome(kms.call('CreateGrant', { KeyId: key.KeyId, GranteePrincipal: GRANTER, RetiringPrincipal: OTHER, Operations: ['Decrypt'] }, root))).toBe('InvalidArnException');
    expect((await kms.call('ListGrants', { KeyId: key.KeyId }, root)).Grants).toEqual([]);
  });

  it('the account as its root ARN is accepted, stored as given, and the condition keys carry exactly that value', async () => {
    const otherRoot = `arn:aws:iam::${OTHER}:root`;
    const key = await newKey(kms, {
      Policy: keyPolicy(
        { Sid: 'granter', Effect: 'Allow', Principal: { AWS: GRANTER }, Action: 'kms:CreateGrant', Resource: '*' },
        { Sid: 'never to account B', Effect: 'Deny', Principal: { AWS: '*' }, Action: 'kms:CreateGrant', Resource: '*', Condition: { StringEquals: { 'kms:GranteePrincipal': otherRoot } } },
      ),
    });
    expect(await outcome(kms.call('CreateGrant', { KeyId: key.KeyId, GranteePrincipal: otherRoot, Operations: ['Decrypt'] }, plain(GRANTER)))).toBe('AccessDeniedException');
    await kms.call('CreateGrant', { KeyId: key.KeyId, GranteePrincipal: GRANTER, RetiringPrincipal: otherRoot, Operations: ['Decrypt'] }, plain(GRANTER));
    const [g] = (await kms.call('ListGrants', { KeyId: key.KeyId }, root)).Grants as { GranteePrincipal: string; RetiringPrincipal: string }[];
    expect([g!.GranteePrincipal, g!.RetiringPrincipal]).toEqual([GRANTER, otherRoot]);
  });

  it('ListRetirableGrants refuses a bare account id (InvalidArnException); ListGrants filters by the grantee exactly as given', async () => {
    const key = await newKey(kms);
    await kms.call('CreateGrant', { KeyId: key.KeyId, GranteePrincipal: `arn:aws:iam::${ACCOUNT}:root`, RetiringPrincipal: `arn:aws:iam::${ACCOUNT}:root`, Operations: ['Decrypt'] }, root);
    expect(await outcome(kms.call('ListRetirableGrants', { RetiringPrincipal: ACCOUNT }, root))).toBe('InvalidArnException');
    expect(((await kms.call('ListRetirableGrants', { RetiringPrincipal: `arn:aws:iam::${ACCOUNT}:root` }, root)).Grants as unknown[]).length).toBe(1);
    expect((await kms.call('ListGrants', { KeyId: key.KeyId, GranteePrincipal: ACCOUNT }, root)).Grants).toEqual([]);
    expect(((await kms.call('ListGrants', { KeyId: key.KeyId, GranteePrincipal: `arn:aws:iam::${ACCOUNT}:root` }, root)).Grants as unknown[]).length).toBe(1);
  });
});
