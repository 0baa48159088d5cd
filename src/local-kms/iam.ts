/**
 * IAM identity policies in the local KMS: how a caller's identity policies (principals file
 * `policies`, Caller `identityPolicies`) combine with key policies and grants. Used only for callers
 * whose IAM is modelled; callers without `policies` are authorized as before (key policy, then
 * grants; the account principal means the account root).
 *
 * Key operations (KMS Developer Guide, "Troubleshooting key access", its flowchart; IAM User
 * Guide, "Policy evaluation logic"; Developer Guide, "Default key policy" and "Allowing users in
 * other accounts to use a KMS key"):
 *   1. An applying Deny in the key policy, or in any identity policy, denies. The key policy's
 *      Deny statements that name the caller's account apply to the caller (policy.ts,
 *      evaluateKeyPolicyForIam); identity-policy Denies apply whatever the key policy says ("IAM
 *      policies that deny access to the key are still effective").
 *   2. A key policy Allow naming the caller itself (user, role, session) allows, when the caller is
 *      in the key's account: within one account a resource-based policy naming the principal is
 *      not limited by an implicit deny in its identity policies.
 *   3. A key policy Allow naming the caller, or the caller's account (delegation: "it allows the
 *      account to use IAM policies"), allows together with an identity policy Allow of the action
 *      on the key ARN. A caller of another account always needs both.
 *   4. A grant naming the caller allows.
 *   5. Otherwise denied: "no resource-based policy allows" when the key policy neither names nor
 *      delegates to the caller, "no identity-based policy allows" when it does and IAM is missing.
 * Identity policies read the key-operation request plus aws:ResourceTag/<key> and
 * kms:ResourceAliases (request-context.ts, IAM_ONLY_KEY_RESOURCE_KEYS).
 *
 * Operations AWS authorizes with IAM policies alone (request-context.ts, IAM_ONLY_ACTION_KEYS):
 * an identity policy must allow and none deny.
 */
import type { KmsServiceError } from './errors.js';
import { accessDenied, evaluateIdentityPolicies, evaluateKeyPolicyForIam } from './policy.js';
import type { AuthzRequest, IdentityPolicy } from './policy-types.js';

export interface KeyAuthorization {
  /** The key's policy document. */
  keyPolicy: string;
  /** The request as the key policy sees it (request-context.ts buildAuthzRequest). */
  request: AuthzRequest;
  /** The same request as identity policies see it, with the IAM-only key resource keys. */
  identityRequest: () => AuthzRequest;
  /** The caller's identity policies. */
  identityPolicies: readonly IdentityPolicy[];
  /** Account that owns the key. */
  keyAccount: string;
  /** True when a grant allows the request (not consulted after an explicit deny). */
  viaGrant: () => boolean;
}

/**
 * Step 1 alone: the AccessDeniedException of an applying Deny in the key policy or an identity
 * policy, if any. Also how core.ts probes Deny statements over an unknown aws:TokenIssueTime.
 */
export function keyOperationExplicitDeny(a: Omit<KeyAuthorization, 'viaGrant'>): KmsServiceError | undefined {
  const { caller, action, resourceArn } = a.request;
  if (evaluateKeyPolicyForIam(a.keyPolicy, a.request).explicitDeny) return accessDenied(caller.arn, action, resourceArn, 'resource-based', true);
  if (evaluateIdentityPolicies(a.identityPolicies, a.identityRequest()).explicitDeny) return accessDenied(caller.arn, action, resourceArn, 'identity-based', true);
  return undefined;
}

/** Authorizes a key operation for a caller whose IAM is modelled; throws AccessDeniedException. */
export function authorizeKeyOperation(a: KeyAuthorization): void {
  const { request } = a;
  const { caller, action, resourceArn } = request;
  const key = evaluateKeyPolicyForIam(a.keyPolicy, request);
  if (key.explicitDeny) throw accessDenied(caller.arn, action, resourceArn, 'resource-based', true);
  const identity = evaluateIdentityPolicies(a.identityPolicies, a.identityRequest());
  if (identity.explicitDeny) throw accessDenied(caller.arn, action, resourceArn, 'identity-based', true);
  // Within one account a key policy naming the caller allows on its own; a caller of another
  // account always needs its identity policies too (cross-account.ts).
  if (key.allowed && caller.account === a.keyAccount) return;
  if ((key.allowed || key.accountAllowed) && identity.allowed) return;
  if (a.viaGrant()) return;
  throw accessDenied(caller.arn, action, resourceArn, key.allowed || key.accountAllowed ? 'identity-based' : 'resource-based', false);
}

/**
 * Authorizes an IAM-only request (request-context.ts buildIamOnlyRequest) for a caller whose IAM
 * is modelled: an identity policy must allow it and none deny it. `shownResource` is what the
 * denial names.
 */
export function authorizeIdentityOnly(request: AuthzRequest, identityPolicies: readonly IdentityPolicy[], shownResource: string | undefined): void {
  const decision = evaluateIdentityPolicies(identityPolicies, request);
  if (decision.allowed) return;
  throw accessDenied(request.caller.arn, request.action, shownResource, 'identity-based', decision.explicitDeny);
}
