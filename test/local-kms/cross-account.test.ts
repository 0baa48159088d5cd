/**
 * Principals of ANOTHER account (started as an external review's reproduction, its finding 1: too
 * permissive).
 *
 * AWS KMS Developer Guide, "Allowing users in other accounts to use a KMS key":
 *   "Cross-account permission is effective only for the following operations: Cryptographic
 *    operations, CreateGrant, DescribeKey, GetKeyRotationStatus, GetPublicKey, ListGrants,
 *    RetireGrant, RevokeGrant. If you give a user in a different account permission for other
 *    operations, those permissions have no effect. For example, if you give a principal in a
 *    different account [...] kms:ScheduleKeyDeletion permission on a KMS key in a key policy, the
 *    user's attempts to call those operations on your resources still fail."
 *   and "Cross-account access requires permission in the key policy of the KMS key and in an IAM
 *    policy in the external user's account [...] Neither the key policy nor the IAM policy alone
 *    is sufficient".
 * AWS KMS Developer Guide, "AWS KMS permissions", column "Cross-account use" (e.g. kms:TagResource:
 *   "their attempts to tag the KMS key in your account will fail").
 * API Reference, Encrypt `KeyId`: "To specify a KMS key in a different AWS account, you must use
 *   the key ARN or alias ARN." (a bare key id or alias name is resolved in the caller's account).
 *
 * What the review found: the local KMS had no notion of cross-account-effective operations (a
 * key policy giving another account `kms:*`, the usual way to share a key, let that account's root,
 * or any of its IAM-modelled users with an IAM Allow, schedule the key's deletion, disable it,
 * rewrite its policy, ...), resolved bare key ids and alias names of this account for callers of
 * another account, answered their IAM-only operations (ListKeys, CreateKey, ListAliases) on this
 * account, and let a key policy alone allow a user of another account whose IAM is not modelled.
 * The rules now are in src/local-kms/cross-account.ts.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { LocalKmsService } from '../../src/local-kms/service.js';
import { ACCOUNT, OTHER, iam, keyPolicy, newKey, outcome, plain, root } from './authz-callers.js';

let kms: LocalKmsService;
beforeEach(() => {
  kms = new LocalKmsService();
});

/** The usual key policy for sharing a key with another account: that account gets kms:*. */
const sharedWithOtherAccount = () =>
  keyPolicy({ Sid: 'Share with account B', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${OTHER}:root` }, Action: 'kms:*', Resource: '*' });

const otherRoot = plain(`arn:aws:iam::${OTHER}:root`);
const otherAdmin = iam(`arn:aws:iam::${OTHER}:user/admin`, { Effect: 'Allow', Action: 'kms:*', Resource: '*' });

/** Operations the Developer Guide says are NOT effective across accounts, with a request for each. */
function nonCrossAccountCalls(arn: string): [string, Record<string, unknown>][] {
  return [
    ['ScheduleKeyDeletion', { KeyId: arn, PendingWindowInDays: 7 }],
    ['DisableKey', { KeyId: arn }],
    ['PutKeyPolicy', { KeyId: arn, Policy: keyPolicy({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${OTHER}:root` }, Action: 'kms:*', Resource: '*' }), BypassPolicyLockoutSafetyCheck: true }],
    ['GetKeyPolicy', { KeyId: arn }],
    ['UpdateKeyDescription', { KeyId: arn, Description: 'owned' }],
    ['TagResource', { KeyId: arn, Tags: [{ TagKey: 'owner', TagValue: 'account-b' }] }],
    ['ListResourceTags', { KeyId: arn }],
    ['DisableKeyRotation', { KeyId: arn }],
    ['EnableKeyRotation', { KeyId: arn }],
  ];
}

describe('operations that are not cross-account (Developer Guide, "Allowing users in other accounts to use a KMS key")', () => {
  for (const [who, caller] of [
    ['the root user of another account', otherRoot],
    ['an IAM user of another account whose IAM policy allows kms:*', otherAdmin],
  ] as const) {
    it(`${who} cannot manage a key shared with its account (each call must fail)`, async () => {
      const succeeded: string[] = [];
      for (const [op, input] of nonCrossAccountCalls('')) {
        // A fresh key per operation, so one operation's effect (deletion, disabling) cannot hide another's.
        const key = await newKey(kms, { Policy: sharedWithOtherAccount() });
        if ((await outcome(kms.call(op, { ...input, KeyId: key.Arn }, caller))) === 'OK') succeeded.push(op);
      }
      expect(succeeded).toEqual([]);
    });
  }

  it('scheduling deletion of a key shared with another account leaves the key Enabled', async () => {
    const key = await newKey(kms, { Policy: sharedWithOtherAccount() });
    await outcome(kms.call('ScheduleKeyDeletion', { KeyId: key.Arn, PendingWindowInDays: 7 }, otherRoot));
    const md = (await kms.call('DescribeKey', { KeyId: key.Arn }, root)).KeyMetadata as { KeyState: string };
    expect(md.KeyState).toBe('Enabled');
  });
});

describe('key identifiers across accounts (API Reference, Encrypt `KeyId`)', () => {
  it('a caller of another account naming the key by key id gets NotFoundException (the id is resolved in its own account)', async () => {
    const key = await newKey(kms, { Policy: sharedWithOtherAccount() });
    expect(await outcome(kms.call('Encrypt', { KeyId: key.KeyId, Plaintext: Buffer.from('x') }, otherRoot))).toBe('NotFoundException');
  });

  it('a caller of another account naming the key by alias name gets NotFoundException (aliases are resolved in its own account)', async () => {
    const key = await newKey(kms, { Policy: sharedWithOtherAccount() });
    await kms.call('CreateAlias', { AliasName: 'alias/shared', TargetKeyId: key.KeyId }, root);
    expect(await outcome(kms.call('Encrypt', { KeyId: 'alias/shared', Plaintext: Buffer.from('x') }, otherRoot))).toBe('NotFoundException');
  });

  it('the key ARN works across accounts (control: this is the documented way)', async () => {
    const key = await newKey(kms, { Policy: sharedWithOtherAccount() });
    expect(await outcome(kms.call('Encrypt', { KeyId: key.Arn, Plaintext: Buffer.from('x') }, otherRoot))).toBe('OK');
  });
});

describe('account-level operations of a caller of another account act on its own account', () => {
  it('ListKeys by another account does not list this account\'s keys', async () => {
    const key = await newKey(kms);
    const listed = ((await kms.call('ListKeys', {}, otherRoot)).Keys as { KeyArn: string }[]).map((k) => k.KeyArn);
    expect(listed).not.toContain(key.Arn);
  });

  it('ListAliases by another account does not list this account\'s aliases', async () => {
    const key = await newKey(kms);
    await kms.call('CreateAlias', { AliasName: 'alias/private-name', TargetKeyId: key.KeyId }, root);
    const listed = ((await kms.call('ListAliases', {}, otherRoot)).Aliases as { AliasName: string }[]).map((a) => a.AliasName);
    expect(listed).not.toContain('alias/private-name');
  });

  it('CreateKey by another account does not create a key in this account', async () => {
    const created = (await kms.call('CreateKey', {}, otherRoot).catch(() => undefined)) as { KeyMetadata?: { AWSAccountId: string } } | undefined;
    expect(created?.KeyMetadata?.AWSAccountId).not.toBe('111122223333');
  });
});

describe('cross-account callers whose IAM is not modelled (no `policies`)', () => {
  it('a key policy naming an IAM user of another account does not alone let it decrypt: its own account\'s IAM must allow too (stricter when IAM is unknown)', async () => {
    const mallory = plain(`arn:aws:iam::${OTHER}:user/mallory`);
    const key = await newKey(kms, {
      Policy: keyPolicy({ Effect: 'Allow', Principal: { AWS: mallory.arn }, Action: ['kms:Encrypt', 'kms:Decrypt'], Resource: '*' }),
    });
    expect(await outcome(kms.call('Encrypt', { KeyId: key.Arn, Plaintext: Buffer.from('x') }, mallory))).toBe('AccessDeniedException');
  });
});

// ---------------------------------------------------------------------------------------------
// Beyond the reproductions: every operation, the cross-account operations that do work, and the
// account-level operations of a caller of another account.

/** An IAM user of the other account with these identity-policy statements (none: `policies: []`). */
const otherUser = (...statements: object[]) =>
  statements.length > 0 ? iam(`arn:aws:iam::${OTHER}:user/app`, ...statements) : { ...plain(`arn:aws:iam::${OTHER}:user/app`), identityPolicies: [] };

/**
 * Every operation of the local KMS, called by the root user of another account on a key shared
 * with that account (kms:*), and what AWS answers ("Cross-account use" of each operation in the
 * API Reference; Developer Guide, "AWS KMS permissions"). The key is named by ARN throughout.
 */
function everyOperation(key: { Arn: string }, grantId: string, ciphertext: Uint8Array): Record<string, [Record<string, unknown>, string]> {
  const arn = key.Arn;
  return {
    // Not effective across accounts: denied whatever the key policy says.
    CancelKeyDeletion: [{ KeyId: arn }, 'AccessDeniedException'],
    EnableKey: [{ KeyId: arn }, 'AccessDeniedException'],
    DisableKey: [{ KeyId: arn }, 'AccessDeniedException'],
    ScheduleKeyDeletion: [{ KeyId: arn, PendingWindowInDays: 7 }, 'AccessDeniedException'],
    UpdateKeyDescription: [{ KeyId: arn, Description: 'x' }, 'AccessDeniedException'],
    CreateAlias: [{ AliasName: 'alias/theirs', TargetKeyId: arn }, 'AccessDeniedException'],
    TagResource: [{ KeyId: arn, Tags: [{ TagKey: 'a', TagValue: 'b' }] }, 'AccessDeniedException'],
    UntagResource: [{ KeyId: arn, TagKeys: ['a'] }, 'AccessDeniedException'],
    ListResourceTags: [{ KeyId: arn }, 'AccessDeniedException'],
    GetKeyPolicy: [{ KeyId: arn }, 'AccessDeniedException'],
    PutKeyPolicy: [{ KeyId: arn, Policy: sharedWithOtherAccount(), BypassPolicyLockoutSafetyCheck: true }, 'AccessDeniedException'],
    ListKeyPolicies: [{ KeyId: arn }, 'AccessDeniedException'],
    GetParametersForImport: [{ KeyId: arn, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' }, 'AccessDeniedException'],
    ImportKeyMaterial: [{ KeyId: arn, ImportToken: Buffer.from('t'), EncryptedKeyMaterial: Buffer.from('m'), ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }, 'AccessDeniedException'],
    DeleteImportedKeyMaterial: [{ KeyId: arn }, 'AccessDeniedException'],
    EnableKeyRotation: [{ KeyId: arn }, 'AccessDeniedException'],
    DisableKeyRotation: [{ KeyId: arn }, 'AccessDeniedException'],
    RotateKeyOnDemand: [{ KeyId: arn }, 'AccessDeniedException'],
    ListKeyRotations: [{ KeyId: arn }, 'AccessDeniedException'],
    // Multi-Region operations: "Cross-account use: No" (API Reference).
    ReplicateKey: [{ KeyId: arn, ReplicaRegion: 'eu-west-1' }, 'AccessDeniedException'],
    UpdatePrimaryRegion: [{ KeyId: arn, PrimaryRegion: 'eu-west-1' }, 'AccessDeniedException'],
    GetKeyLastUsage: [{ KeyId: arn }, 'AccessDeniedException'],
    // Alias names are resolved in the caller's account: no alias of this account is found.
    UpdateAlias: [{ AliasName: 'alias/shared', TargetKeyId: arn }, 'NotFoundException'],
    DeleteAlias: [{ AliasName: 'alias/shared' }, 'NotFoundException'],
    // IAM-only operations act on the caller's own account (nothing of it is here; CreateKey is refused).
    CreateKey: [{}, 'UnsupportedOperationException'],
    ListKeys: [{}, 'OK'],
    ListAliases: [{}, 'OK'],
    GenerateRandom: [{ NumberOfBytes: 16 }, 'OK'],
    ListRetirableGrants: [{ RetiringPrincipal: `arn:aws:iam::${OTHER}:root` }, 'OK'],
    // Custom key stores: "Cross-account use: No"; a store id names one of the caller's account.
    CreateCustomKeyStore: [{ CustomKeyStoreName: 'theirs', CloudHsmClusterId: 'cluster-1234567890a', KeyStorePassword: 'password-1', TrustAnchorCertificate: 'x' }, 'UnsupportedOperationException'],
    DescribeCustomKeyStores: [{}, 'OK'],
    ConnectCustomKeyStore: [{ CustomKeyStoreId: 'cks-1234567890abcdef0' }, 'CustomKeyStoreNotFoundException'],
    DisconnectCustomKeyStore: [{ CustomKeyStoreId: 'cks-1234567890abcdef0' }, 'CustomKeyStoreNotFoundException'],
    UpdateCustomKeyStore: [{ CustomKeyStoreId: 'cks-1234567890abcdef0', NewCustomKeyStoreName: 'n' }, 'CustomKeyStoreNotFoundException'],
    DeleteCustomKeyStore: [{ CustomKeyStoreId: 'cks-1234567890abcdef0' }, 'CustomKeyStoreNotFoundException'],
    // Effective across accounts.
    DescribeKey: [{ KeyId: arn }, 'OK'],
    GetKeyRotationStatus: [{ KeyId: arn }, 'OK'],
    Encrypt: [{ KeyId: arn, Plaintext: Buffer.from('x') }, 'OK'],
    Decrypt: [{ KeyId: arn, CiphertextBlob: ciphertext }, 'OK'],
    ReEncrypt: [{ SourceKeyId: arn, CiphertextBlob: ciphertext, DestinationKeyId: arn }, 'OK'],
    GenerateDataKey: [{ KeyId: arn, KeySpec: 'AES_256' }, 'OK'],
    GenerateDataKeyWithoutPlaintext: [{ KeyId: arn, KeySpec: 'AES_256' }, 'OK'],
    GenerateDataKeyPair: [{ KeyId: arn, KeyPairSpec: 'ECC_NIST_P256' }, 'OK'],
    GenerateDataKeyPairWithoutPlaintext: [{ KeyId: arn, KeyPairSpec: 'ECC_NIST_P256' }, 'OK'],
    CreateGrant: [{ KeyId: arn, GranteePrincipal: `arn:aws:iam::${OTHER}:role/App`, Operations: ['Decrypt'] }, 'OK'],
    ListGrants: [{ KeyId: arn }, 'OK'],
    RevokeGrant: [{ KeyId: arn, GrantId: grantId }, 'OK'],
    // Decided by the grant: this account's grant does not name the other account.
    RetireGrant: [{ KeyId: arn, GrantId: grantId }, 'AccessDeniedException'],
    // Operations of other key types, tried on this symmetric key: they get past authorization
    // (the key-usage check comes after it, so the answer is InvalidKeyUsageException, not AccessDenied).
    Sign: [{ KeyId: arn, Message: Buffer.from('m'), SigningAlgorithm: 'ECDSA_SHA_256' }, 'InvalidKeyUsageException'],
    Verify: [{ KeyId: arn, Message: Buffer.from('m'), Signature: Buffer.from('s'), SigningAlgorithm: 'ECDSA_SHA_256' }, 'InvalidKeyUsageException'],
    GetPublicKey: [{ KeyId: arn }, 'UnsupportedOperationException'],
    GenerateMac: [{ KeyId: arn, Message: Buffer.from('m'), MacAlgorithm: 'HMAC_SHA_256' }, 'InvalidKeyUsageException'],
    VerifyMac: [{ KeyId: arn, Message: Buffer.from('m'), Mac: Buffer.alloc(32), MacAlgorithm: 'HMAC_SHA_256' }, 'InvalidKeyUsageException'],
    DeriveSharedSecret: [{ KeyId: arn, KeyAgreementAlgorithm: 'ECDH', PublicKey: Buffer.from('k') }, 'InvalidKeyUsageException'],
    Encapsulate: [{ KeyId: arn, EncapsulationAlgorithm: 'ML_KEM' }, 'InvalidKeyUsageException'],
    Decapsulate: [{ KeyId: arn, EncapsulationAlgorithm: 'ML_KEM', SharedSecretCiphertextBlob: Buffer.alloc(768) }, 'InvalidKeyUsageException'],
  };
}

describe('every operation, for the root user of another account on a key shared with it', () => {
  it('answers as AWS answers a caller of another account (each operation classified; the table covers every operation)', async () => {
    const { SUPPORTED_OPERATIONS } = await import('../../src/local-kms/service.js');
    const results: Record<string, string> = {};
    const expected: Record<string, string> = {};
    for (const op of SUPPORTED_OPERATIONS) {
      const key = await newKey(kms, { Policy: sharedWithOtherAccount() });
      await kms.call('CreateAlias', { AliasName: 'alias/shared', TargetKeyId: key.KeyId }, root);
      const { GrantId } = (await kms.call('CreateGrant', { KeyId: key.KeyId, GranteePrincipal: `arn:aws:iam::${ACCOUNT}:role/Local`, Operations: ['Decrypt'] }, root)) as { GrantId: string };
      const { CiphertextBlob } = await kms.call('Encrypt', { KeyId: key.KeyId, Plaintext: Buffer.from('x') }, root);
      const table = everyOperation(key, GrantId, CiphertextBlob as Uint8Array);
      expect(Object.hasOwn(table, op), `${op} is classified`).toBe(true);
      const [input, outcomeExpected] = table[op]!;
      expected[op] = outcomeExpected;
      results[op] = await outcome(kms.call(op, input, otherRoot));
      kms.aliases.clear();
    }
    expect(results).toEqual(expected);
  });

  it('Decrypt and ReEncrypt (cryptographic operations) work across accounts, the source named by the ciphertext or a short key id (API Reference, Decrypt)', async () => {
    const key = await newKey(kms, { Policy: sharedWithOtherAccount() });
    const { CiphertextBlob } = await kms.call('Encrypt', { KeyId: key.Arn, Plaintext: Buffer.from('secret') }, otherRoot);
    for (const input of [{}, { KeyId: key.Arn }, { KeyId: key.KeyId }]) {
      const out = await kms.call('Decrypt', { CiphertextBlob, ...input }, otherRoot);
      expect(Buffer.from(out.Plaintext as Uint8Array).toString()).toBe('secret');
    }
    await kms.call('CreateAlias', { AliasName: 'alias/shared', TargetKeyId: key.KeyId }, root);
    // An alias name is the caller's own account's alias, even where a short key id would do.
    expect(await outcome(kms.call('Decrypt', { CiphertextBlob, KeyId: 'alias/shared' }, otherRoot))).toBe('NotFoundException');
    const aliasArn = `arn:aws:kms:us-east-1:${ACCOUNT}:alias/shared`;
    expect(await outcome(kms.call('Decrypt', { CiphertextBlob, KeyId: aliasArn }, otherRoot))).toBe('OK');
    expect(await outcome(kms.call('ReEncrypt', { CiphertextBlob, DestinationKeyId: aliasArn }, otherRoot))).toBe('OK');
    expect(await outcome(kms.call('ReEncrypt', { CiphertextBlob, DestinationKeyId: key.KeyId }, otherRoot))).toBe('NotFoundException');
  });

  it('names what it looked up in the caller\'s account when a bare key id or alias name is not found', async () => {
    const key = await newKey(kms, { Policy: sharedWithOtherAccount() });
    await kms.call('CreateAlias', { AliasName: 'alias/shared', TargetKeyId: key.KeyId }, root);
    await expect(kms.call('DescribeKey', { KeyId: key.KeyId }, otherRoot)).rejects.toThrow(`Key 'arn:aws:kms:us-east-1:${OTHER}:key/${key.KeyId}' does not exist`);
    await expect(kms.call('DescribeKey', { KeyId: 'alias/shared' }, otherRoot)).rejects.toThrow(`Alias arn:aws:kms:us-east-1:${OTHER}:alias/shared is not found.`);
    // The same names work for this account's own callers.
    expect(await outcome(kms.call('DescribeKey', { KeyId: 'alias/shared' }, root))).toBe('OK');
  });

  it('grant operations work across accounts; the grant the other account creates lets its grantee use the key', async () => {
    const key = await newKey(kms, { Policy: sharedWithOtherAccount() });
    const grantee = plain(`arn:aws:iam::${OTHER}:role/Worker`);
    const { GrantId } = (await kms.call('CreateGrant', { KeyId: key.Arn, GranteePrincipal: grantee.arn, Operations: ['GenerateDataKey'] }, otherRoot)) as { GrantId: string };
    // A grantee needs no policy (Developer Guide, "Grants in AWS KMS"), also across accounts.
    expect(await outcome(kms.call('GenerateDataKey', { KeyId: key.Arn, KeySpec: 'AES_256' }, grantee))).toBe('OK');
    expect(((await kms.call('ListGrants', { KeyId: key.Arn }, otherRoot)).Grants as unknown[]).length).toBe(1);
    await kms.call('RevokeGrant', { KeyId: key.Arn, GrantId }, otherRoot);
    expect(await outcome(kms.call('GenerateDataKey', { KeyId: key.Arn, KeySpec: 'AES_256' }, grantee))).toBe('AccessDeniedException');
  });
});

describe('callers of another account whose IAM is modelled (`policies`)', () => {
  it('need both: the key policy naming their account and their own Allow; the Allow alone, on a key not shared, is AccessDenied', async () => {
    const shared = await newKey(kms, { Policy: sharedWithOtherAccount() });
    const notShared = await newKey(kms);
    const user = otherUser({ Effect: 'Allow', Action: 'kms:Encrypt', Resource: '*' });
    expect(await outcome(kms.call('Encrypt', { KeyId: shared.Arn, Plaintext: Buffer.from('x') }, user))).toBe('OK');
    expect(await outcome(kms.call('Encrypt', { KeyId: notShared.Arn, Plaintext: Buffer.from('x') }, user))).toBe('AccessDeniedException');
    expect(await outcome(kms.call('Encrypt', { KeyId: shared.Arn, Plaintext: Buffer.from('x') }, otherUser()))).toBe('AccessDeniedException');
  });

  it('IAM-only operations are authorized on their own account\'s resources: ListKeys allowed on arn:aws:kms:<region>:<their account>:*, not on this account\'s', async () => {
    const own = otherUser({ Effect: 'Allow', Action: 'kms:ListKeys', Resource: `arn:aws:kms:us-east-1:${OTHER}:*` });
    const ours = otherUser({ Effect: 'Allow', Action: 'kms:ListKeys', Resource: `arn:aws:kms:us-east-1:${ACCOUNT}:*` });
    await newKey(kms);
    expect((await kms.call('ListKeys', {}, own)).Keys).toEqual([]);
    expect(await outcome(kms.call('ListKeys', {}, ours))).toBe('AccessDeniedException');
  });

  it('CreateKey: their IAM decides first (AccessDenied without an Allow); allowed, it is refused rather than made in this account', async () => {
    expect(await outcome(kms.call('CreateKey', {}, otherUser()))).toBe('AccessDeniedException');
    const creator = otherUser({ Effect: 'Allow', Action: 'kms:CreateKey', Resource: '*' });
    await expect(kms.call('CreateKey', {}, creator)).rejects.toThrow(/serves account 111122223333 only/);
    expect((await kms.call('ListKeys', {}, root)).Keys).toEqual([]);
  });

  it('ListAliases with a KeyId of this account lists nothing; paging markers of this account\'s lists are not theirs', async () => {
    const key = await newKey(kms);
    for (const n of ['a', 'b']) await kms.call('CreateAlias', { AliasName: `alias/${n}`, TargetKeyId: key.KeyId }, root);
    expect((await kms.call('ListAliases', { KeyId: key.Arn }, otherRoot)).Aliases).toEqual([]);
    const first = await kms.call('ListAliases', { Limit: 1 }, root);
    expect(first.Truncated).toBe(true);
    expect(await outcome(kms.call('ListAliases', { Marker: first.NextMarker }, otherRoot))).toBe('InvalidMarkerException');
  });
});

describe('cross-account callers whose IAM is not modelled: only the other account\'s root is allowed by the key policy alone', () => {
  it('its root is allowed, its users and roles are denied (their IAM cannot be seen), a grant still works for them', async () => {
    const role = plain(`arn:aws:iam::${OTHER}:role/App`);
    const key = await newKey(kms, {
      Policy: keyPolicy({ Effect: 'Allow', Principal: { AWS: [`arn:aws:iam::${OTHER}:root`, role.arn] }, Action: 'kms:Encrypt', Resource: '*' }),
    });
    const enc = (who: typeof role) => outcome(kms.call('Encrypt', { KeyId: key.Arn, Plaintext: Buffer.from('x') }, who));
    expect(await enc(otherRoot)).toBe('OK');
    expect(await enc(role)).toBe('AccessDeniedException');
    await kms.call('CreateGrant', { KeyId: key.KeyId, GranteePrincipal: role.arn, Operations: ['Encrypt'] }, root);
    expect(await enc(role)).toBe('OK');
  });

  it('the denial says what is missing: an identity-based policy (the key policy did allow)', async () => {
    const role = plain(`arn:aws:iam::${OTHER}:role/App`);
    const key = await newKey(kms, { Policy: keyPolicy({ Effect: 'Allow', Principal: { AWS: role.arn }, Action: 'kms:Encrypt', Resource: '*' }) });
    await expect(kms.call('Encrypt', { KeyId: key.Arn, Plaintext: Buffer.from('x') }, role)).rejects.toThrow(
      `User: ${role.arn} is not authorized to perform: kms:Encrypt on resource: ${key.Arn} because no identity-based policy allows the kms:Encrypt action`,
    );
  });
});
