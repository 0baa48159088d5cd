/** The caller of a local KMS request, resolved from its SigV4 access key id (or the account root). */
export interface Caller {
  /** Principal ARN, e.g. `arn:aws:iam::111122223333:root`, `arn:aws:iam::111122223333:user/alice`. */
  arn: string;
  /** 12-digit account id of the principal (`kms:CallerAccount`). */
  account: string;
  /** Access key id the request was signed with, when there was one. */
  accessKeyId?: string;
  /**
   * IAM unique id of the user or role (`AIDA...`, `AROA...`; principals file `userId`), the base of
   * `aws:userid`. Absent: a stable id derived from the ARN (request-context.ts).
   */
  userId?: string;
  /** Tags of the principal (principals file `tags`), the `aws:PrincipalTag/<key>` condition keys. */
  tags?: Readonly<Record<string, string>>;
  /**
   * When the caller's temporary credentials were issued (principals file `tokenIssueTime`, ISO
   * 8601), the `aws:TokenIssueTime` condition key of role sessions, role entries and federated
   * users. Absent (or not a date) for such a caller: unknown, and evaluated strictly over every
   * time a live session can have been issued (request-context.ts tokenIssueTimeRange).
   */
  tokenIssueTime?: string;
  /**
   * The principal's IAM identity policies (principals file `policies`), parsed by policy.ts
   * `parseIdentityPolicy`. Absent: IAM is not modelled for this caller (a key policy's account
   * principal then means the account root only, and operations AWS authorizes with IAM policies
   * alone are not checked). Present, even empty: IAM is evaluated as AWS evaluates it (iam.ts).
   * The account root never has any: IAM does not restrict it.
   */
  identityPolicies?: readonly IdentityPolicy[];
}

/** A validated IAM identity policy, opaque outside policy.ts (which parses and evaluates it). */
export interface IdentityPolicy {
  readonly kind: 'identity-policy';
}

/** A condition key's value in a request: one string, a list (multi-valued keys), a Boolean, or absent. */
export type ConditionValue = string | string[] | boolean | undefined;

/** One condition key's values in a request (request-context.ts conditionContext). */
export interface ConditionEntry {
  /**
   * A single-valued key: its one value, or its candidate values when `ambiguous`. A multivalued
   * key (kms:EncryptionContextKeys, aws:TagKeys, ...): its set of values.
   */
  readonly values: readonly string[];
  /**
   * True for a single-valued key the request gives several different values under names that
   * differ only by case (tag keys and encryption context keys are case-sensitive, condition key
   * names are not: `aws:RequestTag/env` names both `Env` and `env`). Which one AWS reads is not
   * documented; the policy engine reads such a key the stricter way (policy.ts, "Ambiguous keys").
   */
  readonly ambiguous: boolean;
}

/**
 * Condition-key values of one request, keyed by lower-cased condition key; a key that is absent is
 * missing from the request (request-context.ts builds it, the policy engine reads it).
 */
export type ConditionContext = ReadonlyMap<string, ConditionEntry>;

/** One authorization question asked of a key policy (AWS IAM policy evaluation, key policy only). */
export interface AuthzRequest {
  caller: Caller;
  /** Action as IAM names it, e.g. `kms:Decrypt`. */
  action: string;
  /** ARN of the key the request acts on. */
  resourceArn: string;
  /** Encryption context of the request, for `kms:EncryptionContext:<key>` and `kms:EncryptionContextKeys`. */
  encryptionContext?: Record<string, string>;
  /** `kms:EncryptionAlgorithm`, e.g. `SYMMETRIC_DEFAULT`. */
  encryptionAlgorithm?: string;
  /** Any further condition keys (lower-case matching is done by the evaluator), e.g. `kms:KeySpec`. */
  conditionKeys?: Record<string, ConditionValue>;
  /**
   * Keys the caller has but this request does not carry: kms:CallerAccount outside KMS key resource
   * operations (request-context.ts, IAM_ONLY_ACTION_KEYS).
   */
  withoutKeys?: readonly string[];
}

export interface AuthzDecision {
  allowed: boolean;
  /** True when an explicit Deny statement matched (explicit deny wins over any Allow). */
  explicitDeny: boolean;
}
