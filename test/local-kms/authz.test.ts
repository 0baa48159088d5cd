import { beforeAll, describe, expect, it } from 'vitest';
import { LocalKmsService, KmsServiceError, type Caller } from '../../src/local-kms/index.js';
import { ACCOUNT } from './helpers.js';

/**
 * Every operation that acts on a key asks the key policy, with the IAM action AWS uses for it.
 * A principal the policy does not name is denied each one; a principal allowed exactly that
 * action gets past authorization.
 */
const nobody: Caller = { arn: `arn:aws:iam::${ACCOUNT}:user/nobody`, account: ACCOUNT };
const root: Caller = { arn: `arn:aws:iam::${ACCOUNT}:root`, account: ACCOUNT };

async function denied(p: Promise<unknown>): Promise<KmsServiceError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof KmsServiceError && e.type === 'AccessDeniedException') return e;
    throw e;
  }
  throw new Error('expected AccessDeniedException');
}

describe('authorization of every key operation', () => {
  const svc = new LocalKmsService();
  let sym: string;
  let symArn: string;
  let other: string;
  let blob: Uint8Array;
  let signing: string;
  let hmac: string;
  let external: string;

  beforeAll(async () => {
    const mk = async (input: Record<string, unknown> = {}) =>
      ((await svc.call('CreateKey', input, root)).KeyMetadata as { KeyId: string; Arn: string });
    const k = await mk();
    sym = k.KeyId;
    symArn = k.Arn;
    other = (await mk()).KeyId;
    signing = (await mk({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' })).KeyId;
    hmac = (await mk({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' })).KeyId;
    external = (await mk({ Origin: 'EXTERNAL' })).KeyId;
    await svc.call('CreateAlias', { AliasName: 'alias/authz', TargetKeyId: sym }, root);
    blob = (await svc.call('Encrypt', { KeyId: sym, Plaintext: Buffer.from('x') }, root)).CiphertextBlob as Uint8Array;
  });

  const table = (): [string, string, () => Record<string, unknown>][] => [
    ['DescribeKey', 'kms:DescribeKey', () => ({ KeyId: 'alias/authz' })],
    ['UpdateKeyDescription', 'kms:UpdateKeyDescription', () => ({ KeyId: sym, Description: 'd' })],
    ['EnableKey', 'kms:EnableKey', () => ({ KeyId: sym })],
    ['DisableKey', 'kms:DisableKey', () => ({ KeyId: sym })],
    ['ScheduleKeyDeletion', 'kms:ScheduleKeyDeletion', () => ({ KeyId: sym })],
    ['CancelKeyDeletion', 'kms:CancelKeyDeletion', () => ({ KeyId: sym })],
    ['CreateAlias', 'kms:CreateAlias', () => ({ AliasName: 'alias/new', TargetKeyId: sym })],
    ['UpdateAlias', 'kms:UpdateAlias', () => ({ AliasName: 'alias/authz', TargetKeyId: other })],
    ['DeleteAlias', 'kms:DeleteAlias', () => ({ AliasName: 'alias/authz' })],
    ['TagResource', 'kms:TagResource', () => ({ KeyId: sym, Tags: [{ TagKey: 'a', TagValue: 'b' }] })],
    ['UntagResource', 'kms:UntagResource', () => ({ KeyId: sym, TagKeys: ['a'] })],
    ['ListResourceTags', 'kms:ListResourceTags', () => ({ KeyId: sym })],
    ['GetKeyPolicy', 'kms:GetKeyPolicy', () => ({ KeyId: sym, PolicyName: 'default' })],
    ['PutKeyPolicy', 'kms:PutKeyPolicy', () => ({ KeyId: sym, Policy: '{}' })],
    ['ListKeyPolicies', 'kms:ListKeyPolicies', () => ({ KeyId: sym })],
    ['EnableKeyRotation', 'kms:EnableKeyRotation', () => ({ KeyId: sym })],
    ['DisableKeyRotation', 'kms:DisableKeyRotation', () => ({ KeyId: sym })],
    ['GetKeyRotationStatus', 'kms:GetKeyRotationStatus', () => ({ KeyId: sym })],
    ['RotateKeyOnDemand', 'kms:RotateKeyOnDemand', () => ({ KeyId: sym })],
    ['ListKeyRotations', 'kms:ListKeyRotations', () => ({ KeyId: sym })],
    ['GetParametersForImport', 'kms:GetParametersForImport', () => ({ KeyId: external, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' })],
    ['ImportKeyMaterial', 'kms:ImportKeyMaterial', () => ({ KeyId: external, ImportToken: Buffer.alloc(8), EncryptedKeyMaterial: Buffer.alloc(8) })],
    ['DeleteImportedKeyMaterial', 'kms:DeleteImportedKeyMaterial', () => ({ KeyId: external })],
    ['Encrypt', 'kms:Encrypt', () => ({ KeyId: sym, Plaintext: Buffer.from('x') })],
    ['Decrypt', 'kms:Decrypt', () => ({ CiphertextBlob: blob })],
    ['ReEncrypt', 'kms:ReEncryptFrom', () => ({ CiphertextBlob: blob, DestinationKeyId: other })],
    ['GenerateDataKey', 'kms:GenerateDataKey', () => ({ KeyId: sym, NumberOfBytes: 32 })],
    ['GenerateDataKeyWithoutPlaintext', 'kms:GenerateDataKeyWithoutPlaintext', () => ({ KeyId: sym, NumberOfBytes: 32 })],
    ['GenerateDataKeyPair', 'kms:GenerateDataKeyPair', () => ({ KeyId: sym, KeyPairSpec: 'ECC_NIST_P256' })],
    ['GenerateDataKeyPairWithoutPlaintext', 'kms:GenerateDataKeyPairWithoutPlaintext', () => ({ KeyId: sym, KeyPairSpec: 'ECC_NIST_P256' })],
    ['Sign', 'kms:Sign', () => ({ KeyId: signing, Message: Buffer.from('m'), SigningAlgorithm: 'ECDSA_SHA_256' })],
    ['Verify', 'kms:Verify', () => ({ KeyId: signing, Message: Buffer.from('m'), Signature: Buffer.from('s'), SigningAlgorithm: 'ECDSA_SHA_256' })],
    ['GetPublicKey', 'kms:GetPublicKey', () => ({ KeyId: signing })],
    ['GenerateMac', 'kms:GenerateMac', () => ({ KeyId: hmac, Message: Buffer.from('m'), MacAlgorithm: 'HMAC_SHA_256' })],
    ['VerifyMac', 'kms:VerifyMac', () => ({ KeyId: hmac, Message: Buffer.from('m'), Mac: Buffer.from('m'), MacAlgorithm: 'HMAC_SHA_256' })],
  ];

  it('denies a principal the key policy does not name, naming principal, action and key', async () => {
    for (const [op, action, input] of table()) {
      const e = await denied(svc.call(op, input(), nobody));
      expect(e.message, op).toMatch(new RegExp(`^User: ${nobody.arn} is not authorized to perform: ${action} on resource: arn:aws:kms:us-east-1:${ACCOUNT}:key/`));
      expect(e.message, op).toMatch(/because no resource-based policy allows/);
    }
    const e = await denied(svc.call('Encrypt', { KeyId: sym, Plaintext: Buffer.from('x') }, nobody));
    expect(e.message).toContain(symArn);
    // Not key-policy actions: any known caller may call them.
    await svc.call('ListKeys', {}, nobody);
    await svc.call('ListAliases', {}, nobody);
    await svc.call('GenerateRandom', { NumberOfBytes: 8 }, nobody);
    await svc.call('CreateKey', {}, nobody);
  });

  it('lets each operation past authorization when the policy allows exactly its action', async () => {
    for (const [op, action, input] of table()) {
      if (op === 'PutKeyPolicy') continue;
      const policy = JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Principal: { AWS: root.arn }, Action: 'kms:*', Resource: '*' },
          { Effect: 'Allow', Principal: { AWS: nobody.arn }, Action: [action, 'kms:ReEncryptTo'], Resource: '*' },
        ],
      });
      // Apply the policy to the key(s) the operation touches.
      for (const id of [sym, other, signing, hmac, external]) await svc.call('PutKeyPolicy', { KeyId: id, Policy: policy }, root);
      try {
        await svc.call(op, input(), nobody);
      } catch (e) {
        expect((e as KmsServiceError).type, op).not.toBe('AccessDeniedException');
      }
      // Restore whatever state the call changed.
      const md = (await svc.call('DescribeKey', { KeyId: sym }, root)).KeyMetadata as { KeyState: string };
      if (md.KeyState === 'PendingDeletion') await svc.call('CancelKeyDeletion', { KeyId: sym }, root);
      if (md.KeyState !== 'Enabled') await svc.call('EnableKey', { KeyId: sym }, root);
      const aliases = (await svc.call('ListAliases', { KeyId: sym }, root)).Aliases as unknown[];
      if (aliases.length === 0) {
        await svc.call('DeleteAlias', { AliasName: 'alias/authz' }, root).catch(() => undefined);
        await svc.call('CreateAlias', { AliasName: 'alias/authz', TargetKeyId: sym }, root);
      }
    }
  });

  it('ReEncrypt needs kms:ReEncryptFrom on the source and kms:ReEncryptTo on the destination', async () => {
    const policyFor = (actions: string[]) =>
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Principal: { AWS: root.arn }, Action: 'kms:*', Resource: '*' },
          { Effect: 'Allow', Principal: { AWS: nobody.arn }, Action: actions, Resource: '*' },
        ],
      });
    await svc.call('PutKeyPolicy', { KeyId: sym, Policy: policyFor(['kms:ReEncryptFrom']) }, root);
    await svc.call('PutKeyPolicy', { KeyId: other, Policy: policyFor(['kms:Encrypt']) }, root);
    const e = await denied(svc.call('ReEncrypt', { CiphertextBlob: blob, DestinationKeyId: other }, nobody));
    expect(e.message).toContain('kms:ReEncryptTo');
    await svc.call('PutKeyPolicy', { KeyId: other, Policy: policyFor(['kms:ReEncrypt*']) }, root);
    const out = await svc.call('ReEncrypt', { CiphertextBlob: blob, DestinationKeyId: other }, nobody);
    expect(out.KeyId).toMatch(new RegExp(`${other}$`));
  });

  it('validates policies on CreateKey and PutKeyPolicy and applies the lockout safety check', async () => {
    const bad = await svc.call('CreateKey', { Policy: 'not json' }, root).catch((e: KmsServiceError) => e);
    expect((bad as KmsServiceError).type).toBe('MalformedPolicyDocumentException');
    const onlyOther = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { AWS: nobody.arn }, Action: 'kms:*', Resource: '*' }],
    });
    const locked = await svc.call('CreateKey', { Policy: onlyOther }, root).catch((e: KmsServiceError) => e);
    expect((locked as KmsServiceError).type).toBe('MalformedPolicyDocumentException');
    const made = await svc.call('CreateKey', { Policy: onlyOther, BypassPolicyLockoutSafetyCheck: true }, root);
    const id = (made.KeyMetadata as { KeyId: string }).KeyId;
    await denied(svc.call('DescribeKey', { KeyId: id }, root));
    expect((await svc.call('GetKeyPolicy', { KeyId: id }, nobody)).Policy).toBe(onlyOther);
    expect((await svc.call('ListKeyPolicies', { KeyId: id }, nobody)).PolicyNames).toEqual(['default']);
    const wrongName = await svc.call('GetKeyPolicy', { KeyId: id, PolicyName: 'other' }, nobody).catch((e: KmsServiceError) => e);
    expect((wrongName as KmsServiceError).type).toBe('NotFoundException');
    // The default policy gives the account root kms:*.
    const def = await svc.call('CreateKey', {}, root);
    const policy = JSON.parse((await svc.call('GetKeyPolicy', { KeyId: (def.KeyMetadata as { KeyId: string }).KeyId }, root)).Policy as string);
    expect(policy.Statement).toEqual([expect.objectContaining({ Effect: 'Allow', Principal: { AWS: root.arn }, Action: 'kms:*' })]);
  });
});
