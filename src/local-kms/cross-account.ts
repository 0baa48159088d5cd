/**
 * Callers of another AWS account (KMS Developer Guide, "Allowing users in other accounts to use a
 * KMS key"; "AWS KMS permissions", column "Cross-account use"; the "Cross-account use" paragraph of
 * each operation in the API Reference). The local KMS serves one account; a caller whose principal
 * ARN names another account is "foreign" here, and AWS treats it as follows:
 *
 * - Only the permissions below are effective across accounts. A key policy that gives another
 *   account any other permission (kms:* included) gives it nothing: its calls still fail. Every
 *   other key operation answers AccessDeniedException to a foreign caller, whatever the policies say.
 * - A bare key id or alias name is resolved in the caller's own account, so a foreign caller must
 *   name this account's key by key ARN or alias ARN; anything else is NotFoundException (core.ts
 *   resolve). Decrypt and the ReEncrypt source also take a short key id for symmetric ciphertext.
 * - Operations AWS authorizes with IAM policies alone (CreateKey, ListKeys, ListAliases, ...) act
 *   on the caller's own account; see ops/keys.ts and ops/aliases-tags.ts for what the local KMS,
 *   which holds no other account's resources, answers.
 * - The key policy alone never suffices: the caller's own account must allow the request in IAM
 *   too ("Neither the key policy nor the IAM policy alone is sufficient"). Callers with modelled
 *   IAM (`policies`) are evaluated so (iam.ts); for the others the local KMS cannot know that IAM,
 *   and only the foreign account's root user, whom IAM does not restrict in its own account, is
 *   allowed by the key policy alone (core.ts authorize).
 * Grants are unaffected: a grant's grantee needs no policy to use it (Developer Guide, "Grants in
 * AWS KMS"), and every grant operation is effective across accounts.
 */

/** Permissions effective for a caller of another account ("Cross-account use": Yes). */
export const CROSS_ACCOUNT_ACTIONS: ReadonlySet<string> = new Set([
  // Cryptographic operations.
  'kms:Encrypt',
  'kms:Decrypt',
  'kms:ReEncryptFrom',
  'kms:ReEncryptTo',
  'kms:GenerateDataKey',
  'kms:GenerateDataKeyWithoutPlaintext',
  'kms:GenerateDataKeyPair',
  'kms:GenerateDataKeyPairWithoutPlaintext',
  'kms:Sign',
  'kms:Verify',
  'kms:GenerateMac',
  'kms:VerifyMac',
  'kms:DeriveSharedSecret',
  'kms:Encapsulate',
  'kms:Decapsulate',
  // Key information.
  'kms:DescribeKey',
  'kms:GetPublicKey',
  'kms:GetKeyRotationStatus',
  // Grants.
  'kms:CreateGrant',
  'kms:ListGrants',
  'kms:RetireGrant',
  'kms:RevokeGrant',
]);

/** True when `arn` is the root user of its account (`arn:<partition>:iam::<account>:root`). */
export function isAccountRoot(arn: string): boolean {
  return /^arn:[^:]+:iam::\d{12}:root$/.test(arn);
}
