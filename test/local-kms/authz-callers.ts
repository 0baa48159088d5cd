/**
 * Shared helpers of the authorization tests that started as an external review's reproductions
 * (cross-account.test.ts, retire-grant-iam.test.ts, token-issue-time.test.ts,
 * grantee-principal.test.ts): callers with and without IAM identity policies, key policies, and the
 * AWS error a call fails with.
 */
import { LocalKmsService } from '../../src/local-kms/service.js';
import { parseIdentityPolicy } from '../../src/local-kms/policy.js';
import type { Caller } from '../../src/local-kms/policy-types.js';
import { KmsServiceError } from '../../src/local-kms/errors.js';

export const ACCOUNT = '111122223333';
export const OTHER = '444455556666';
export const ROOT_ARN = `arn:aws:iam::${ACCOUNT}:root`;

export const accountOf = (arn: string) => /::(\d{12}):/.exec(arn)![1]!;
/** A caller whose IAM is not modelled (principals-file entry without `policies`). */
export const plain = (arn: string): Caller => ({ arn, account: accountOf(arn) });
/** A caller whose IAM is modelled, with one identity policy made of `statements`. */
export const iam = (arn: string, ...statements: object[]): Caller => ({
  arn,
  account: accountOf(arn),
  identityPolicies: [parseIdentityPolicy({ Version: '2012-10-17', Statement: statements })],
});
export const root = plain(ROOT_ARN);

/** Key policy: the account statement ("Enable IAM User Permissions") plus `statements`. */
export const keyPolicy = (...statements: object[]) =>
  JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: ROOT_ARN }, Action: 'kms:*', Resource: '*' }, ...statements],
  });

/** 'OK' or the AWS error type the call failed with. */
export async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (e) {
    if (e instanceof KmsServiceError) return e.type;
    throw e;
  }
}

export async function newKey(kms: LocalKmsService, input: Record<string, unknown> = {}): Promise<{ KeyId: string; Arn: string }> {
  return (await kms.call('CreateKey', input, root)).KeyMetadata as { KeyId: string; Arn: string };
}
