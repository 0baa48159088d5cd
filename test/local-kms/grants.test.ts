/**
 * Grants in the in-process local KMS service: authorization through grants and their constraints,
 * who may retire and revoke, grant tokens, Name idempotency, listing and paging, the CreateGrant
 * narrowing rule, quotas, key states, and durability in a data directory.
 */
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { LocalKmsService } from '../../src/local-kms/service.js';
import { LocalKms } from '../../src/local-kms/client.js';
import type { Caller } from '../../src/local-kms/policy-types.js';
import { ACCOUNT, ROOT_ARN, tempDir, errorOf } from './helpers.js';

const who = (arn: string): Caller => ({ arn, account: /::(\d{12}):/.exec(arn)![1]! });
const alice = who(`arn:aws:iam::${ACCOUNT}:user/alice`);
const bob = who(`arn:aws:iam::${ACCOUNT}:user/bob`);
const carol = who(`arn:aws:iam::${ACCOUNT}:user/carol`);
const appSession = who(`arn:aws:sts::${ACCOUNT}:assumed-role/App/session-1`);
const outsider = who('arn:aws:iam::444455556666:root');


let kms: LocalKmsService;
let keyId: string;
const call = (op: string, input: Record<string, unknown>, caller?: Caller) => kms.call(op, input, caller);
const grant = async (input: Record<string, unknown>, caller?: Caller) =>
  (await call('CreateGrant', { KeyId: keyId, ...input }, caller)) as { GrantId: string; GrantToken: string };
const dataKey = (caller: Caller, ctx?: Record<string, string>, extra: Record<string, unknown> = {}) =>
  call('GenerateDataKey', { KeyId: keyId, KeySpec: 'AES_256', ...(ctx ? { EncryptionContext: ctx } : {}), ...extra }, caller);

beforeEach(async () => {
  kms = new LocalKmsService({ maxGrantsPerKey: 6 });
  keyId = ((await call('CreateKey', {})).KeyMetadata as { KeyId: string }).KeyId;
});

describe('authorization through grants', () => {
  it('a grantee with no key-policy permission may use exactly the granted operations', async () => {
    expect(await errorOf(dataKey(alice))).toBe('AccessDeniedException');
    const { GrantId } = await grant({ GranteePrincipal: alice.arn, Operations: ['GenerateDataKey', 'Decrypt'] });
    expect(GrantId).toMatch(/^[0-9a-f]{64}$/);
    const dk = await dataKey(alice, { purpose: 'test' });
    const dec = await call('Decrypt', { CiphertextBlob: dk.CiphertextBlob, EncryptionContext: { purpose: 'test' } }, alice);
    expect(Buffer.from(dec.Plaintext as Uint8Array)).toEqual(Buffer.from(dk.Plaintext as Uint8Array));
    // Not granted: Encrypt, DescribeKey, key management. Another user gets nothing.
    expect(await errorOf(call('Encrypt', { KeyId: keyId, Plaintext: Buffer.from('x') }, alice))).toBe('AccessDeniedException');
    expect(await errorOf(call('DescribeKey', { KeyId: keyId }, alice))).toBe('AccessDeniedException');
    expect(await errorOf(call('DisableKey', { KeyId: keyId }, alice))).toBe('AccessDeniedException');
    expect(await errorOf(dataKey(bob))).toBe('AccessDeniedException');
  });

  it('EncryptionContextSubset: every constrained pair must be in the request; keys match without case, values exactly', async () => {
    await grant({ GranteePrincipal: alice.arn, Operations: ['GenerateDataKey', 'Decrypt', 'DescribeKey'], Constraints: { EncryptionContextSubset: { tenant: 'alpha', stage: 'prod' } } });
    await dataKey(alice, { tenant: 'alpha', stage: 'prod' });
    await dataKey(alice, { stage: 'prod', tenant: 'alpha', extra: 'x' });
    await dataKey(alice, { Tenant: 'alpha', STAGE: 'prod' });
    expect(await errorOf(dataKey(alice, { tenant: 'alpha' }))).toBe('AccessDeniedException');
    expect(await errorOf(dataKey(alice, { tenant: 'Alpha', stage: 'prod' }))).toBe('AccessDeniedException');
    expect(await errorOf(dataKey(alice))).toBe('AccessDeniedException');
    // The constraint does not apply to DescribeKey (API Reference, CreateGrant Constraints).
    await call('DescribeKey', { KeyId: keyId }, alice);
  });

  it('a request context whose keys differ only by case satisfies a constraint only if every spelling does (the stricter reading; GrantConstraints: keys match without case)', async () => {
    await grant({ GranteePrincipal: alice.arn, Operations: ['GenerateDataKey'], Constraints: { EncryptionContextSubset: { tenant: 'alpha' } } });
    await dataKey(alice, { tenant: 'alpha', Tenant: 'alpha' });
    expect(await errorOf(dataKey(alice, { tenant: 'alpha', Tenant: 'beta' }))).toBe('AccessDeniedException');
    expect(await errorOf(dataKey(alice, { Tenant: 'beta', tenant: 'alpha' }))).toBe('AccessDeniedException');
    await grant({ GranteePrincipal: bob.arn, Operations: ['GenerateDataKey'], Constraints: { EncryptionContextEquals: { tenant: 'alpha' } } });
    expect(await errorOf(dataKey(bob, { tenant: 'alpha', TENANT: 'beta' }))).toBe('AccessDeniedException');
  });

  it('EncryptionContextEquals: the request context must be exactly the constrained pairs', async () => {
    await grant({ GranteePrincipal: alice.arn, Operations: ['Encrypt', 'Decrypt'], Constraints: { EncryptionContextEquals: { tenant: 'alpha' } } });
    const enc = await call('Encrypt', { KeyId: keyId, Plaintext: Buffer.from('p'), EncryptionContext: { tenant: 'alpha' } }, alice);
    await call('Decrypt', { CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { tenant: 'alpha' } }, alice);
    expect(await errorOf(call('Encrypt', { KeyId: keyId, Plaintext: Buffer.from('p'), EncryptionContext: { tenant: 'alpha', more: '1' } }, alice))).toBe('AccessDeniedException');
    expect(await errorOf(call('Encrypt', { KeyId: keyId, Plaintext: Buffer.from('p') }, alice))).toBe('AccessDeniedException');
  });

  it('a role grantee covers its sessions; an explicit Deny in the key policy beats a grant', async () => {
    await grant({ GranteePrincipal: `arn:aws:iam::${ACCOUNT}:role/App`, Operations: ['GenerateDataKey'] });
    await dataKey(appSession);
    const policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Principal: { AWS: ROOT_ARN }, Action: 'kms:*', Resource: '*' },
        { Effect: 'Deny', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:role/App` }, Action: 'kms:GenerateDataKey', Resource: '*' },
      ],
    });
    await call('PutKeyPolicy', { KeyId: keyId, Policy: policy });
    expect(await errorOf(dataKey(appSession))).toBe('AccessDeniedException');
  });

  it('grants work on asymmetric and HMAC keys for their own operations', async () => {
    const ecc = ((await call('CreateKey', { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' })).KeyMetadata as { KeyId: string }).KeyId;
    await call('CreateGrant', { KeyId: ecc, GranteePrincipal: alice.arn, Operations: ['Sign', 'GetPublicKey'] });
    await call('Sign', { KeyId: ecc, Message: Buffer.from('m'), SigningAlgorithm: 'ECDSA_SHA_256' }, alice);
    await call('GetPublicKey', { KeyId: ecc }, alice);
    expect(await errorOf(call('Verify', { KeyId: ecc, Message: Buffer.from('m'), Signature: Buffer.alloc(64), SigningAlgorithm: 'ECDSA_SHA_256' }, alice))).toBe('AccessDeniedException');
    const hmac = ((await call('CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' })).KeyMetadata as { KeyId: string }).KeyId;
    await call('CreateGrant', { KeyId: hmac, GranteePrincipal: alice.arn, Operations: ['GenerateMac'] });
    await call('GenerateMac', { KeyId: hmac, Message: Buffer.from('m'), MacAlgorithm: 'HMAC_SHA_256' }, alice);
  });
});

describe('CreateGrant validation', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['Sign on a symmetric encryption key', { GranteePrincipal: alice.arn, Operations: ['Sign'] }, 'ValidationException'],
    ['GetPublicKey on a symmetric key', { GranteePrincipal: alice.arn, Operations: ['Decrypt', 'GetPublicKey'] }, 'ValidationException'],
    ['DeriveSharedSecret (no KEY_AGREEMENT keys)', { GranteePrincipal: alice.arn, Operations: ['DeriveSharedSecret'] }, 'ValidationException'],
    ['CreateGrant alone', { GranteePrincipal: alice.arn, Operations: ['CreateGrant'] }, 'ValidationException'],
    ['no operations', { GranteePrincipal: alice.arn, Operations: [] }, 'ValidationException'],
    ['Operations missing', { GranteePrincipal: alice.arn }, 'ValidationException'],
    ['unknown operation', { GranteePrincipal: alice.arn, Operations: ['ScheduleKeyDeletion'] }, 'ValidationException'],
    ['GranteePrincipal missing', { Operations: ['Decrypt'] }, 'ValidationException'],
    ['GranteePrincipal with a space', { GranteePrincipal: 'not a principal', Operations: ['Decrypt'] }, 'ValidationException'],
    ['GranteePrincipal not an ARN', { GranteePrincipal: 'alice', Operations: ['Decrypt'] }, 'InvalidArnException'],
    ['GranteePrincipal an IAM group', { GranteePrincipal: `arn:aws:iam::${ACCOUNT}:group/Admins`, Operations: ['Decrypt'] }, 'InvalidArnException'],
    ['RetiringPrincipal not an ARN', { GranteePrincipal: alice.arn, RetiringPrincipal: 'bob', Operations: ['Decrypt'] }, 'InvalidArnException'],
    ['Name with a space', { GranteePrincipal: alice.arn, Operations: ['Decrypt'], Name: 'a b' }, 'ValidationException'],
    ['nine constraint pairs', { GranteePrincipal: alice.arn, Operations: ['Decrypt'], Constraints: { EncryptionContextSubset: Object.fromEntries([...Array(9).keys()].map((i) => [`k${i}`, 'v'])) } }, 'ValidationException'],
    ['a constraint value over 384 characters', { GranteePrincipal: alice.arn, Operations: ['Decrypt'], Constraints: { EncryptionContextEquals: { k: 'v'.repeat(385) } } }, 'ValidationException'],
    ['eleven grant tokens', { GranteePrincipal: alice.arn, Operations: ['Decrypt'], GrantTokens: Array(11).fill('x') }, 'ValidationException'],
    ['a malformed grant token', { GranteePrincipal: alice.arn, Operations: ['Decrypt'], GrantTokens: ['not-a-token'] }, 'InvalidGrantTokenException'],
  ];
  for (const [what, input, type] of cases) {
    it(`${what}: ${type}`, async () => {
      expect(await errorOf(grant(input))).toBe(type);
      expect((await call('ListGrants', { KeyId: keyId })).Grants).toEqual([]);
    });
  }

  it('constraints on asymmetric and HMAC keys, unknown keys, and a Constraints member of the wrong type', async () => {
    const rsa = ((await call('CreateKey', { KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' })).KeyMetadata as { KeyId: string }).KeyId;
    expect(await errorOf(call('CreateGrant', { KeyId: rsa, GranteePrincipal: alice.arn, Operations: ['Decrypt'], Constraints: { EncryptionContextSubset: { a: 'b' } } }))).toBe('ValidationException');
    await call('CreateGrant', { KeyId: rsa, GranteePrincipal: alice.arn, Operations: ['Decrypt', 'GetPublicKey'] });
    expect(await errorOf(call('CreateGrant', { KeyId: rsa, GranteePrincipal: alice.arn, Operations: ['GenerateDataKey'] }))).toBe('ValidationException');
    expect(await errorOf(call('CreateGrant', { KeyId: '00000000-0000-0000-0000-000000000000', GranteePrincipal: alice.arn, Operations: ['Decrypt'] }))).toBe('NotFoundException');
    expect(await errorOf(grant({ GranteePrincipal: alice.arn, Operations: ['Decrypt'], Constraints: { EncryptionContextSubset: { a: 1 } } }))).toBe('ValidationException');
  });

  it('needs kms:CreateGrant in the key policy (or a grant), an enabled key, and honours DryRun', async () => {
    expect(await errorOf(grant({ GranteePrincipal: bob.arn, Operations: ['Decrypt'] }, alice))).toBe('AccessDeniedException');
    expect(await errorOf(grant({ GranteePrincipal: bob.arn, Operations: ['Decrypt'], DryRun: true }))).toBe('DryRunOperationException');
    expect((await call('ListGrants', { KeyId: keyId })).Grants).toEqual([]);
    await call('DisableKey', { KeyId: keyId });
    expect(await errorOf(grant({ GranteePrincipal: bob.arn, Operations: ['Decrypt'] }))).toBe('DisabledException');
    await call('EnableKey', { KeyId: keyId });
    await call('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 7 });
    expect(await errorOf(grant({ GranteePrincipal: bob.arn, Operations: ['Decrypt'] }))).toBe('KMSInvalidStateException');
  });
});

describe('retiring and revoking', () => {
  it('the retiring principal retires; the grantee only when the grant includes RetireGrant; others are denied', async () => {
    const g1 = await grant({ GranteePrincipal: alice.arn, RetiringPrincipal: bob.arn, Operations: ['GenerateDataKey'] });
    expect(await errorOf(call('RetireGrant', { KeyId: keyId, GrantId: g1.GrantId }, alice))).toBe('AccessDeniedException');
    expect(await errorOf(call('RetireGrant', { KeyId: keyId, GrantId: g1.GrantId }, carol))).toBe('AccessDeniedException');
    expect(await errorOf(call('RetireGrant', { KeyId: keyId, GrantId: g1.GrantId, DryRun: true }, bob))).toBe('DryRunOperationException');
    await dataKey(alice);
    await call('RetireGrant', { KeyId: keyId, GrantId: g1.GrantId }, bob);
    expect(await errorOf(dataKey(alice))).toBe('AccessDeniedException');

    const g2 = await grant({ GranteePrincipal: alice.arn, Operations: ['GenerateDataKey', 'RetireGrant'] });
    await call('RetireGrant', { GrantToken: g2.GrantToken }, alice);
    expect(await errorOf(dataKey(alice))).toBe('AccessDeniedException');
    // The token of a retired grant names nothing any more.
    expect(await errorOf(call('RetireGrant', { GrantToken: g2.GrantToken }))).toBe('NotFoundException');
  });

  it('the account (root) can retire any grant of its keys; the key policy kms:RetireGrant is not effective', async () => {
    const policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Principal: { AWS: ROOT_ARN }, Action: 'kms:*', Resource: '*' },
        { Effect: 'Allow', Principal: { AWS: carol.arn }, Action: ['kms:RetireGrant', 'kms:RevokeGrant', 'kms:ListGrants'], Resource: '*' },
      ],
    });
    await call('PutKeyPolicy', { KeyId: keyId, Policy: policy });
    const g = await grant({ GranteePrincipal: alice.arn, Operations: ['Decrypt'] });
    expect(await errorOf(call('RetireGrant', { KeyId: keyId, GrantId: g.GrantId }, carol))).toBe('AccessDeniedException');
    await call('RetireGrant', { KeyId: keyId, GrantId: g.GrantId });
    expect((await call('ListGrants', { KeyId: keyId }, carol)).Grants).toEqual([]);
  });

  it('RevokeGrant needs kms:RevokeGrant in the key policy, never a grant', async () => {
    const g = await grant({ GranteePrincipal: alice.arn, RetiringPrincipal: alice.arn, Operations: ['GenerateDataKey', 'RetireGrant'] });
    expect(await errorOf(call('RevokeGrant', { KeyId: keyId, GrantId: g.GrantId }, alice))).toBe('AccessDeniedException');
    expect(await errorOf(call('RevokeGrant', { KeyId: keyId, GrantId: g.GrantId, DryRun: true }))).toBe('DryRunOperationException');
    await dataKey(alice);
    await call('RevokeGrant', { KeyId: keyId, GrantId: g.GrantId });
    expect(await errorOf(dataKey(alice))).toBe('AccessDeniedException');
    expect(await errorOf(call('RevokeGrant', { KeyId: keyId, GrantId: g.GrantId }))).toBe('InvalidGrantIdException');
  });

  it('malformed requests', async () => {
    const g = await grant({ GranteePrincipal: alice.arn, Operations: ['Decrypt'] });
    expect(await errorOf(call('RetireGrant', {}))).toBe('ValidationException');
    expect(await errorOf(call('RetireGrant', { KeyId: keyId }))).toBe('ValidationException');
    expect(await errorOf(call('RetireGrant', { GrantToken: 'AAAA' }))).toBe('InvalidGrantTokenException');
    const edited = Buffer.from(g.GrantToken, 'base64');
    edited[20] ^= 1;
    expect(await errorOf(call('RetireGrant', { GrantToken: edited.toString('base64') }))).toBe('InvalidGrantTokenException');
    expect(await errorOf(call('RetireGrant', { KeyId: keyId, GrantId: 'nope' }))).toBe('InvalidGrantIdException');
    expect(await errorOf(call('RetireGrant', { KeyId: keyId, GrantId: 'a'.repeat(129) }))).toBe('ValidationException');
    expect(await errorOf(call('RevokeGrant', { KeyId: keyId }))).toBe('ValidationException');
    expect(await errorOf(call('RevokeGrant', { KeyId: keyId, GrantId: 'f'.repeat(64) }))).toBe('InvalidGrantIdException');
  });
});

describe('grant tokens', () => {
  it('any request may carry tokens we issued; anything else is InvalidGrantTokenException; tokens are not needed', async () => {
    const g = await grant({ GranteePrincipal: alice.arn, Operations: ['GenerateDataKey'] });
    await dataKey(alice, undefined, { GrantTokens: [g.GrantToken] });
    await dataKey(alice); // strongly consistent: the grant works without its token
    await call('DescribeKey', { KeyId: keyId, GrantTokens: [g.GrantToken] });
    const edited = g.GrantToken.slice(0, -4) + (g.GrantToken.endsWith('AAA=') ? 'BBB=' : 'AAA=');
    expect(await errorOf(dataKey(alice, undefined, { GrantTokens: [edited] }))).toBe('InvalidGrantTokenException');
    expect(await errorOf(dataKey(alice, undefined, { GrantTokens: [g.GrantToken, 'garbage'] }))).toBe('InvalidGrantTokenException');
    expect(await errorOf(dataKey(alice, undefined, { GrantTokens: [''] }))).toBe('ValidationException');
    // A token from another KMS instance (another root key) was not issued here.
    const other = new LocalKmsService();
    const otherKey = ((await other.call('CreateKey', {})).KeyMetadata as { KeyId: string }).KeyId;
    const foreign = (await other.call('CreateGrant', { KeyId: otherKey, GranteePrincipal: alice.arn, Operations: ['Decrypt'] })).GrantToken as string;
    expect(await errorOf(dataKey(alice, undefined, { GrantTokens: [foreign] }))).toBe('InvalidGrantTokenException');
    // After revocation the token still parses but authorizes nothing.
    await call('RevokeGrant', { KeyId: keyId, GrantId: g.GrantId });
    expect(await errorOf(dataKey(alice, undefined, { GrantTokens: [g.GrantToken] }))).toBe('AccessDeniedException');
  });
});

describe('Name idempotency', () => {
  it('same name and parameters return the same grant id with a fresh token; different parameters make a new grant', async () => {
    const input = { GranteePrincipal: alice.arn, Operations: ['Decrypt', 'GenerateDataKey'], Name: 'app-grant', Constraints: { EncryptionContextSubset: { a: 'b' } } };
    const first = await grant(input);
    const again = await grant({ ...input, Operations: ['GenerateDataKey', 'Decrypt'] });
    expect(again.GrantId).toBe(first.GrantId);
    expect(again.GrantToken).not.toBe(first.GrantToken);
    await call('RetireGrant', { GrantToken: again.GrantToken }); // interchangeable tokens
    expect((await call('ListGrants', { KeyId: keyId })).Grants).toEqual([]);
    const a = await grant(input);
    const b = await grant({ ...input, Constraints: { EncryptionContextSubset: { a: 'c' } } });
    const c = await grant({ ...input, Name: undefined });
    const d = await grant({ ...input, Name: undefined });
    expect(new Set([a.GrantId, b.GrantId, c.GrantId, d.GrantId]).size).toBe(4);
  });
});

describe('ListGrants and ListRetirableGrants', () => {
  it('lists with entries as AWS shows them, filters, pages with authenticated markers', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await grant({ GranteePrincipal: i % 2 ? bob.arn : alice.arn, RetiringPrincipal: carol.arn, Operations: ['Decrypt'], ...(i === 0 ? { Name: 'first', Constraints: { EncryptionContextEquals: { k: 'v' } } } : {}) })).GrantId);
    }
    const all = await call('ListGrants', { KeyId: keyId });
    expect(all.Truncated).toBe(false);
    const first = (all.Grants as Record<string, unknown>[])[0]!;
    expect(first).toEqual({
      KeyId: `arn:aws:kms:us-east-1:${ACCOUNT}:key/${keyId}`,
      GrantId: ids[0],
      Name: 'first',
      CreationDate: expect.any(Date),
      GranteePrincipal: alice.arn,
      RetiringPrincipal: carol.arn,
      IssuingAccount: ROOT_ARN,
      Operations: ['Decrypt'],
      Constraints: { EncryptionContextEquals: { k: 'v' } },
    });
    const seen: string[] = [];
    let marker: string | undefined;
    let pages = 0;
    do {
      const page = await call('ListGrants', { KeyId: keyId, Limit: 2, ...(marker ? { Marker: marker } : {}) });
      seen.push(...(page.Grants as { GrantId: string }[]).map((g) => g.GrantId));
      marker = page.NextMarker as string | undefined;
      expect(page.Truncated).toBe(marker !== undefined);
      pages++;
      // A grant retired between pages does not shift the pages that follow.
      if (pages === 1) await call('RetireGrant', { KeyId: keyId, GrantId: ids[0] });
    } while (marker);
    expect(pages).toBe(3);
    expect(seen).toEqual(ids);
    expect(((await call('ListGrants', { KeyId: keyId, GranteePrincipal: bob.arn })).Grants as unknown[]).length).toBe(2);
    expect(((await call('ListGrants', { KeyId: keyId, GrantId: ids[3] })).Grants as { GrantId: string }[]).map((g) => g.GrantId)).toEqual([ids[3]]);
    expect(await errorOf(call('ListGrants', { KeyId: keyId, GrantId: ids[0] }))).toBe('InvalidGrantIdException');
    expect(await errorOf(call('ListGrants', { KeyId: keyId, Marker: 'forged.marker' }))).toBe('InvalidMarkerException');
    const p1 = await call('ListGrants', { KeyId: keyId, Limit: 1 });
    expect(await errorOf(call('ListRetirableGrants', { RetiringPrincipal: carol.arn, Marker: p1.NextMarker }))).toBe('InvalidMarkerException');
    expect(await errorOf(call('ListGrants', { KeyId: keyId, Limit: 101 }))).toBe('ValidationException');
    expect(await errorOf(call('ListGrants', {}))).toBe('ValidationException');
    expect(await errorOf(call('ListGrants', { KeyId: keyId }, alice))).toBe('AccessDeniedException');
  });

  it('ListRetirableGrants spans keys; the retiring principal itself or its account root may ask', async () => {
    const key2 = ((await call('CreateKey', {})).KeyMetadata as { KeyId: string }).KeyId;
    await grant({ GranteePrincipal: alice.arn, RetiringPrincipal: bob.arn, Operations: ['Decrypt'] });
    await call('CreateGrant', { KeyId: key2, GranteePrincipal: alice.arn, RetiringPrincipal: bob.arn, Operations: ['Encrypt'] });
    await grant({ GranteePrincipal: alice.arn, RetiringPrincipal: carol.arn, Operations: ['Decrypt'] });
    const byBob = await call('ListRetirableGrants', { RetiringPrincipal: bob.arn }, bob);
    expect((byBob.Grants as { KeyId: string }[]).map((g) => g.KeyId.slice(-36)).sort()).toEqual([keyId, key2].sort());
    expect(((await call('ListRetirableGrants', { RetiringPrincipal: bob.arn, Limit: 1 })).Truncated)).toBe(true);
    expect(await errorOf(call('ListRetirableGrants', { RetiringPrincipal: bob.arn }, alice))).toBe('AccessDeniedException');
    expect(await errorOf(call('ListRetirableGrants', { RetiringPrincipal: bob.arn }, outsider))).toBe('AccessDeniedException');
    expect(await errorOf(call('ListRetirableGrants', {}))).toBe('ValidationException');
    expect(await errorOf(call('ListRetirableGrants', { RetiringPrincipal: 'bob' }))).toBe('InvalidArnException');
  });
});

describe('CreateGrant permission from a grant', () => {
  it('allows only some of the parent operations with constraints at least as strict', async () => {
    await grant({ GranteePrincipal: alice.arn, Operations: ['Decrypt', 'GenerateDataKey', 'CreateGrant'], Constraints: { EncryptionContextSubset: { dept: 'IT' } } });
    const child = (input: Record<string, unknown>) => grant({ GranteePrincipal: bob.arn, ...input }, alice);
    await child({ Operations: ['Decrypt'], Constraints: { EncryptionContextSubset: { dept: 'IT', team: 'a' } } });
    await child({ Operations: ['Decrypt', 'CreateGrant'], Constraints: { EncryptionContextEquals: { dept: 'IT' } } });
    expect(await errorOf(child({ Operations: ['Encrypt'], Constraints: { EncryptionContextSubset: { dept: 'IT' } } }))).toBe('AccessDeniedException');
    expect(await errorOf(child({ Operations: ['Decrypt'] }))).toBe('AccessDeniedException');
    expect(await errorOf(child({ Operations: ['Decrypt'], Constraints: { EncryptionContextSubset: { team: 'a' } } }))).toBe('AccessDeniedException');
    // Bob's grant (from the Equals child) lets him pass on the same Equals, never a looser Subset.
    await grant({ GranteePrincipal: carol.arn, Operations: ['Decrypt'], Constraints: { EncryptionContextEquals: { dept: 'IT' } } }, bob);
    expect(await errorOf(grant({ GranteePrincipal: carol.arn, Operations: ['Decrypt'], Constraints: { EncryptionContextSubset: { dept: 'IT' } } }, bob))).toBe('AccessDeniedException');
    expect(((await call('ListGrants', { KeyId: keyId })).Grants as unknown[]).length).toBe(4);
  });
});

describe('quota and durability', () => {
  it('the grants-per-key quota is LimitExceededException; a named retry at the quota still answers', async () => {
    for (let i = 0; i < 5; i++) await grant({ GranteePrincipal: alice.arn, Operations: ['Decrypt'] });
    const named = await grant({ GranteePrincipal: alice.arn, Operations: ['Decrypt'], Name: 'n' });
    expect(await errorOf(grant({ GranteePrincipal: bob.arn, Operations: ['Decrypt'] }))).toBe('LimitExceededException');
    expect((await grant({ GranteePrincipal: alice.arn, Operations: ['Decrypt'], Name: 'n' })).GrantId).toBe(named.GrantId);
    await call('RevokeGrant', { KeyId: keyId, GrantId: named.GrantId });
    await grant({ GranteePrincipal: bob.arn, Operations: ['Decrypt'] });
    expect(() => new LocalKmsService({ maxGrantsPerKey: 0 })).toThrow(RangeError);
    // LocalKms passes the quota on.
    const local = new LocalKms({ maxGrantsPerKey: 1 });
    const { keyId: k } = await local.createKey();
    await local.service.call('CreateGrant', { KeyId: k, GranteePrincipal: alice.arn, Operations: ['Decrypt'] });
    expect(await errorOf(local.service.call('CreateGrant', { KeyId: k, GranteePrincipal: bob.arn, Operations: ['Decrypt'] }))).toBe('LimitExceededException');
    local.close();
  });

  const tmp = tempDir('lkms-grants-');
  afterAll(() => tmp.cleanup());

  it('grants survive a restart (tokens too) and are deleted with their key', async () => {
    let now = Date.now();
    const clock = () => now;
    let svc = new LocalKmsService({ dataDir: tmp.dir, clock });
    const key = ((await svc.call('CreateKey', {})).KeyMetadata as { KeyId: string }).KeyId;
    const g = (await svc.call('CreateGrant', { KeyId: key, GranteePrincipal: alice.arn, RetiringPrincipal: bob.arn, Operations: ['GenerateDataKey', 'RetireGrant'], Constraints: { EncryptionContextSubset: { a: 'b' } } })) as { GrantId: string; GrantToken: string };
    const g2 = (await svc.call('CreateGrant', { KeyId: key, GranteePrincipal: bob.arn, RetiringPrincipal: bob.arn, Operations: ['Decrypt'] })) as { GrantId: string };
    svc.close();

    svc = new LocalKmsService({ dataDir: tmp.dir, clock });
    const listed = (await svc.call('ListGrants', { KeyId: key })).Grants as { GrantId: string; Constraints?: unknown }[];
    expect(listed.map((x) => x.GrantId)).toEqual([g.GrantId, g2.GrantId]);
    expect(listed[0]!.Constraints).toEqual({ EncryptionContextSubset: { a: 'b' } });
    await svc.call('GenerateDataKey', { KeyId: key, KeySpec: 'AES_256', EncryptionContext: { a: 'b' }, GrantTokens: [g.GrantToken] }, alice);
    await svc.call('RetireGrant', { GrantToken: g.GrantToken }, alice);
    svc.close();

    svc = new LocalKmsService({ dataDir: tmp.dir, clock });
    expect(((await svc.call('ListGrants', { KeyId: key })).Grants as { GrantId: string }[]).map((x) => x.GrantId)).toEqual([g2.GrantId]);
    await svc.call('ScheduleKeyDeletion', { KeyId: key, PendingWindowInDays: 7 });
    now += 8 * 86_400_000;
    expect((await svc.call('ListRetirableGrants', { RetiringPrincipal: bob.arn })).Grants).toEqual([]);
    svc.close();
    svc = new LocalKmsService({ dataDir: tmp.dir, clock });
    expect((await svc.call('ListRetirableGrants', { RetiringPrincipal: bob.arn })).Grants).toEqual([]);
    svc.close();
  });
});
