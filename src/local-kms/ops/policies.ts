import type { Requester } from '../request-context.js';
import { assertPolicyLockoutSafe, validateKeyPolicy } from '../policy.js';
import { Checks } from '../validate.js';
import { invalidMarker } from '../paging.js';
import type { KmsCore } from '../core.js';
import { checkKeyId, checkMarker, err, num, str, type KmsResponse, type Req } from './util.js';

/** Key policies (API Reference: GetKeyPolicy, PutKeyPolicy, ListKeyPolicies). */

function checkPolicyName(c: Checks, name: unknown): void {
  c.length('policyName', str(name), 1, 128);
  c.pattern('policyName', str(name), /^[\w]+$/, '[\\w]+');
}

function requireDefaultPolicyName(name: unknown): void {
  if (name !== undefined && name !== 'default') throw err('NotFoundException', 'No such policy exists');
}

export async function getKeyPolicy(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkKeyId(c, req.KeyId);
  checkPolicyName(c, req.PolicyName);
  c.done();
  const { key } = kms.resolve(String(req.KeyId), { alias: false }, who);
  kms.authorize(who, 'kms:GetKeyPolicy', key);
  requireDefaultPolicyName(req.PolicyName);
  return { Policy: key.policy, PolicyName: 'default' };
}

export async function putKeyPolicy(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkKeyId(c, req.KeyId);
  checkPolicyName(c, req.PolicyName);
  c.required('policy', req.Policy);
  c.length('policy', str(req.Policy), 1, 32_768);
  c.done();
  const { key } = kms.resolve(String(req.KeyId), { alias: false }, who);
  // kms:BypassPolicyLockoutSafetyCheck is in the request context only when the request has the
  // parameter (Developer Guide, "AWS KMS condition keys": the documented Null-condition statement
  // allows only requests without it).
  const bypass = req.BypassPolicyLockoutSafetyCheck;
  kms.authorize(who, 'kms:PutKeyPolicy', key, { keys: typeof bypass === 'boolean' ? { 'kms:BypassPolicyLockoutSafetyCheck': bypass } : {} });
  requireDefaultPolicyName(req.PolicyName);
  const policy = String(req.Policy);
  validateKeyPolicy(policy);
  // Lockout safety check: the new policy must allow this caller a subsequent PutKeyPolicy request
  // (one that does not bypass the check), evaluated with the key's keys and the caller's global keys.
  // An unknown aws:TokenIssueTime: the caller must keep access at both ends of its range (core.ts).
  const subsequent = kms.authzRequest(who, 'kms:PutKeyPolicy', key);
  kms.overIssueTimes(who, (at, denyOnly) => {
    if (!denyOnly) assertPolicyLockoutSafe(policy, who.caller, key.arn, bypass === true, at(subsequent));
  });
  kms.commit(key, { policy });
  return {};
}

export async function listKeyPolicies(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkKeyId(c, req.KeyId);
  c.range('limit', num(req.Limit), 1, 1000);
  checkMarker(c, req.Marker);
  c.done();
  const { key } = kms.resolve(String(req.KeyId), { alias: false }, who);
  kms.authorize(who, 'kms:ListKeyPolicies', key);
  // A key has one policy ("default"), so this list never has a second page and never issues a
  // marker: any Marker is one we did not issue. (The API Reference does not list
  // InvalidMarkerException for ListKeyPolicies; it is the error every other list gives.)
  if (req.Marker !== undefined) throw invalidMarker();
  return { PolicyNames: ['default'], Truncated: false };
}
