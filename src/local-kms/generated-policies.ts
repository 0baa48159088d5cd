/**
 * The key policies AWS KMS writes itself: the default policy of `CreateKey` without a policy, and
 * the policy the console's key wizard writes from its key administrators and key users (KMS
 * Developer Guide, "Default key policy"). Pure text builders; evaluation is policy.ts.
 */
import { ACCOUNT_ID, PRINCIPAL_ARN } from './policy.js';

const rootArn = (accountId: string) => `arn:aws:iam::${accountId}:root`;

function checkAccount(accountId: string): void {
  if (!ACCOUNT_ID.test(accountId)) throw new RangeError(`accountId must be 12 decimal digits, got '${accountId}'`);
}

/** Statement "Enable IAM User Permissions": the account root gets `kms:*` (Developer Guide, "Default key policy"). */
function enableIamStatement(accountId: string) {
  return {
    Sid: 'Enable IAM User Permissions',
    Effect: 'Allow',
    Principal: { AWS: rootArn(accountId) },
    Action: 'kms:*',
    Resource: '*',
  };
}

/**
 * The policy `CreateKey` applies when no policy is given: one statement giving the account `kms:*`
 * (Developer Guide, "Default key policy when you create a KMS key programmatically").
 */
export function defaultKeyPolicy(accountId: string): string {
  checkAccount(accountId);
  return JSON.stringify({ Version: '2012-10-17', Id: 'key-default-1', Statement: [enableIamStatement(accountId)] }, null, 2);
}

/** Actions of the console's key administrators statement (Developer Guide, "Default key policy"). */
export const KEY_ADMINISTRATOR_ACTIONS: readonly string[] = [
  'kms:Create*',
  'kms:Describe*',
  'kms:Enable*',
  'kms:List*',
  'kms:Put*',
  'kms:Update*',
  'kms:Revoke*',
  'kms:Disable*',
  'kms:Get*',
  'kms:Delete*',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:ScheduleKeyDeletion',
  'kms:CancelKeyDeletion',
  'kms:RotateKeyOnDemand',
];

export type ConsoleKeyKind = 'SYMMETRIC_DEFAULT' | 'ASYMMETRIC_ENCRYPT' | 'SIGN_VERIFY' | 'HMAC' | 'KEY_AGREEMENT';

/** Actions of the console's key users statement, by key type (Developer Guide, "Default key policy"). */
export const KEY_USER_ACTIONS: Readonly<Record<ConsoleKeyKind, readonly string[]>> = {
  SYMMETRIC_DEFAULT: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:DescribeKey'],
  ASYMMETRIC_ENCRYPT: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:DescribeKey', 'kms:GetPublicKey'],
  SIGN_VERIFY: ['kms:DescribeKey', 'kms:GetPublicKey', 'kms:Sign', 'kms:Verify'],
  HMAC: ['kms:DescribeKey', 'kms:GenerateMac', 'kms:VerifyMac'],
  // By analogy with SIGN_VERIFY: the key's own operation plus DescribeKey and GetPublicKey (the
  // operations a KEY_AGREEMENT key supports; the Developer Guide page does not list this kind).
  KEY_AGREEMENT: ['kms:DescribeKey', 'kms:GetPublicKey', 'kms:DeriveSharedSecret'],
};

/** Grant actions of "Allow attachment of persistent resources" (only for grants made by AWS services). */
export const PERSISTENT_RESOURCE_ACTIONS: readonly string[] = ['kms:CreateGrant', 'kms:ListGrants', 'kms:RevokeGrant'];

export interface ConsolePolicyOptions {
  accountId: string;
  /** Key administrators: IAM user/role ARNs (or account ids/ARNs) that manage the key but cannot use it. */
  administrators: string[];
  /** Key users: IAM user/role ARNs or account ids/root ARNs (other accounts allowed) that use the key. */
  users: string[];
  /** Which key users statement to write; default `SYMMETRIC_DEFAULT`. */
  keyKind?: ConsoleKeyKind;
  /** Adds `kms:ImportKeyMaterial` for administrators, as the console does for keys with origin EXTERNAL. */
  externalOrigin?: boolean;
  /** Console option "Allow key administrators to delete this key" (default true). */
  administratorsCanDelete?: boolean;
}

function principalValue(list: string[]): string | string[] {
  return list.length === 1 ? list[0]! : list;
}

/** Maps a `CreateKey` KeySpec/KeyUsage pair to the console's key-users statement flavour. */
export function consoleKeyKind(keySpec = 'SYMMETRIC_DEFAULT', keyUsage = 'ENCRYPT_DECRYPT'): ConsoleKeyKind {
  if (keySpec.startsWith('HMAC_') || keyUsage === 'GENERATE_VERIFY_MAC') return 'HMAC';
  if (keyUsage === 'SIGN_VERIFY') return 'SIGN_VERIFY';
  if (keyUsage === 'KEY_AGREEMENT') return 'KEY_AGREEMENT';
  if (keySpec === 'SYMMETRIC_DEFAULT') return 'SYMMETRIC_DEFAULT';
  return 'ASYMMETRIC_ENCRYPT';
}

/**
 * The key policy the AWS KMS console writes after "Define key administrative permissions" and
 * "Define key usage permissions": the account statement, then (when non-empty) the administrators
 * statement, the key users statement and the persistent-resources (grants) statement.
 */
export function keyPolicyFor(opts: ConsolePolicyOptions): string {
  checkAccount(opts.accountId);
  for (const p of [...opts.administrators, ...opts.users]) {
    if (!(ACCOUNT_ID.test(p) || PRINCIPAL_ARN.test(p))) {
      throw new TypeError(`keyPolicyFor: '${p}' is not an account id or an IAM user/role ARN`);
    }
  }
  const statements: object[] = [enableIamStatement(opts.accountId)];
  if (opts.administrators.length > 0) {
    let actions = [...KEY_ADMINISTRATOR_ACTIONS];
    if (opts.administratorsCanDelete === false) {
      actions = actions.filter((a) => a !== 'kms:ScheduleKeyDeletion' && a !== 'kms:CancelKeyDeletion');
    }
    if (opts.externalOrigin) actions.push('kms:ImportKeyMaterial');
    statements.push({
      Sid: 'Allow access for Key Administrators',
      Effect: 'Allow',
      Principal: { AWS: principalValue(opts.administrators) },
      Action: actions,
      Resource: '*',
    });
  }
  if (opts.users.length > 0) {
    statements.push({
      Sid: 'Allow use of the key',
      Effect: 'Allow',
      Principal: { AWS: principalValue(opts.users) },
      Action: [...KEY_USER_ACTIONS[opts.keyKind ?? 'SYMMETRIC_DEFAULT']],
      Resource: '*',
    });
    statements.push({
      Sid: 'Allow attachment of persistent resources',
      Effect: 'Allow',
      Principal: { AWS: principalValue(opts.users) },
      Action: [...PERSISTENT_RESOURCE_ACTIONS],
      Resource: '*',
      Condition: { Bool: { 'kms:GrantIsForAWSResource': 'true' } },
    });
  }
  return JSON.stringify({ Id: 'key-consolepolicy-3', Version: '2012-10-17', Statement: statements }, null, 2);
}
