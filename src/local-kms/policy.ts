/**
 * Key policies and IAM identity policies of the local KMS: evaluation, and the denials AWS words.
 * The grammar and its checks are policy-parse.ts (re-exported here); the policies KMS writes
 * itself are generated-policies.ts. A pure module: no I/O, no clock, no state.
 *
 * Evaluation order. AWS evaluates a request against every policy that applies to it (IAM User
 * Guide, "Policy evaluation logic"). This module evaluates one policy at a time, key policy or
 * identity policy; how they combine with each other and with grants is iam.ts's and core.ts's
 * (the local KMS has no SCPs, permissions boundaries or session policies). For one policy:
 *   1. The request starts out denied (implicit deny).
 *   2. A statement applies when its Principal/NotPrincipal names the caller (key policies; an
 *      identity policy has no Principal), its Action/NotAction the action, its
 *      Resource/NotResource the resource (policy variables substituted, see
 *      policy-variables.ts) and every condition in its Condition block holds (operators and keys
 *      AND, values of one key OR; "IAM JSON policy elements: Condition operators").
 *   3. If any applying statement has `"Effect": "Deny"`, the request is denied (explicit deny; no
 *      Allow can override it).
 *   4. Otherwise, if any applying statement has `"Effect": "Allow"`, the request is allowed.
 *   5. Otherwise the implicit deny of step 1 stands.
 * Statement order in the document does not matter; Deny statements are tried first only so that
 * evaluation can stop at the first statement that decides.
 *
 * Where AWS is not known exactly, the stricter reading. The guarantee of the local KMS is to
 * evaluate as AWS does and, where it cannot be exact or AWS's behaviour is undocumented, to be
 * stricter: never allow what AWS could deny. These places need it:
 *
 * - Ambiguous keys. Tag keys and encryption context keys are case-sensitive (`Env` and `env` are
 *   two tags), condition key names are not (`aws:RequestTag/env` refers to both). A request, or a
 *   key, may carry both; the single-valued condition key then has several candidate values
 *   (request-context.ts marks it `ambiguous`) and AWS does not document which one it reads
 *   (GrantConstraints: "do not use multiple encryption context pairs that differ only by case").
 *   Dropping one would let a Deny be evaded by adding a second tag. So each candidate is a
 *   possible reading of the request, and a condition is read the stricter way for its
 *   statement's effect: in a Deny it holds when it holds for ANY candidate, in an Allow only
 *   when it holds for EVERY candidate - for positive and negated operators alike, with or
 *   without `...IfExists` (a key with candidates is present in every reading, so `Null` and
 *   `IfExists` are unaffected) and set operators (in one reading the key has one value). A policy
 *   variable whose key has candidates stands for each of them the same way (policy-variables.ts),
 *   and so does a Resource entry holding one. This never allows what any reading denies. It
 *   applies to every key a request names with user-chosen text: aws:RequestTag/*,
 *   aws:ResourceTag/*, kms:EncryptionContext:*, aws:PrincipalTag/* (the principals file already
 *   refuses tag keys that differ only by case).
 * - Multivalued keys without a set operator (kms:EncryptionContextKeys, aws:TagKeys, ...).
 *   "Single-valued vs. multivalued context keys" requires ForAllValues or ForAnyValue with them
 *   and does not say what a condition without one means. Both are readings: an Allow's condition
 *   must hold for every value of the key, a Deny's for any (conditionMatches).
 * - Values an operator cannot read. A request value that is not of the operator's type (`0x5`
 *   for NumericLessThan, `Jan 1 2099` for DateGreaterThan, the caller chooses encryption context
 *   values) or a comparison whose answer depends on an undocumented precision (numbers beyond a
 *   double's, dates beyond the millisecond) is indeterminate: it matches in one reading and not
 *   in another, so an Allow does not apply and a Deny does, negated operators included
 *   (policy-operators.ts). A policy value that is not of the operator's type is refused when
 *   the document is parsed (policy-parse.ts).
 * - NotPrincipal. "AWS JSON policy elements: NotPrincipal": AWS "might validate the account
 *   first, then the role, and then the assumed-role user", so a Deny exempts a caller only if its
 *   NotPrincipal names each of them (the documented examples list the session ARN, the role ARN
 *   and the account); where AWS "might" deny, the local KMS does. See notPrincipalExempts.
 *   NotPrincipal with Allow is "not supported": such a policy is refused (policy-parse.ts).
 * - Documents AWS may read another way: a duplicated JSON member name (`"Effect": "Deny", ...,
 *   "Effect": "Allow"`), or condition operators / keys that differ only by case within one block,
 *   are refused (MalformedPolicyDocumentException) instead of being read one way (policy-parse.ts).
 *
 * Bounded work. Wildcards (`StringLike`, `ArnLike`, `Action`, `Resource`) are matched by
 * wildcard.ts without backtracking, each (pattern, value) pair in linear time. But the pairs
 * multiply: a key policy of 32,768 characters holds thousands of patterns, and AWS documents no
 * size limit for an encryption context, so a value may be as long as the request body. Each
 * evaluation of a policy therefore has a budget of character steps (work-meter.ts,
 * EVALUATION_WORK_BUDGET); the matchers charge what they scan, and an evaluation that would exceed
 * it stops and DENIES the request (AccessDeniedException saying so): fail closed. A request's
 * evaluation costs O(its size + the policy's size) to build its context and parse (cached), plus
 * at most the budget.
 *
 * The account principal. In AWS the account principal in a key policy (`"AWS": "111122223333"`
 * or `arn:aws:iam::111122223333:root`) does not grant anything to the users of that account by
 * itself: it *delegates* to IAM, so they still need an identity policy (Developer Guide, "Default
 * key policy"). For a caller whose IAM is modelled (principals file `policies`) that is what
 * evaluateKeyPolicyForIam reports. For a caller without `policies` there is nothing to delegate
 * to, so the account principal matches the account root user only (evaluateKeyPolicy), and named
 * users and roles need their own statements, as the console's "key administrators" and "key users"
 * statements give them.
 */
import { KmsServiceError } from './errors.js';
import { OPERATORS, tokensOfPieces } from './policy-operators.js';
import {
  ACCOUNT_ID,
  malformed,
  normalizePrincipal,
  parseCached,
  PRINCIPAL_ARN,
  type ParsedCondition,
  type ParsedIdentityPolicy,
  type ParsedPolicy,
  type ParsedPrincipal,
  type ParsedStatement,
  type PolicyValue,
} from './policy-parse.js';
import type { AuthzDecision, AuthzRequest, Caller, ConditionContext, IdentityPolicy } from './policy-types.js';
import { resolveTemplate, type ResolvedPiece } from './policy-variables.js';
import { conditionContext } from './request-context.js';
import { WildcardPattern } from './wildcard.js';
import { WorkBudgetExceeded, WorkMeter } from './work-meter.js';

export { ACCOUNT_ID, inexactNumberMessage, MAX_KEY_POLICY_LENGTH, PRINCIPAL_ARN, parseIdentityPolicy, validateKeyPolicy } from './policy-parse.js';

// ---------------------------------------------------------------------------------------------
// Principals

/**
 * Principal ARNs are compared without their partition: a local KMS serves one partition (derived
 * from its region), and account ids in a policy are written as `arn:aws:iam::<id>:root` whatever
 * the region, so `arn:aws-cn:iam::<id>:root` must still be the same root.
 */
const withoutPartition = (arn: string) => arn.replace(/^arn:[^:]*:/, 'arn::');

const SESSION = /^arn::sts::(\d{12}):assumed-role\/([^/]+)\/.+$/;
const ROLE = /^arn::iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/;

/** True when `arn` (without partition) is a role ARN of `account` whose name, after any path, is `name`. */
function isRole(arn: string, account: string, name: string): boolean {
  const m = ROLE.exec(arn);
  return !!m && m[1] === account && m[2] === name;
}

function principalMatches(p: ParsedPrincipal, caller: Caller): boolean {
  if (p.any) return true;
  const callerArn = withoutPartition(caller.arn);
  const sessionRole = SESSION.exec(callerArn);
  return p.arns.some((principal) => {
    const arn = withoutPartition(principal);
    if (arn === callerArn) return true;
    // A role principal matches every session of that role (IAM: role sessions are the role).
    // The role's name is what follows the last `/` of its ARN (after any path).
    return !!sessionRole && isRole(arn, sessionRole[1]!, sessionRole[2]!);
  });
}

/**
 * The principals AWS may check, one after another, when a Deny statement's NotPrincipal is
 * evaluated for `caller` (IAM User Guide, "AWS JSON policy elements: NotPrincipal": the account,
 * then the user; for an assumed-role user the account, then the role, then the session, which is
 * named by its session name: "you cannot use a wildcard (*) to mean 'all sessions'"):
 * - the account root: the account;
 * - an IAM user, a federated user: itself and its account;
 * - a role session: the session ARN, its role (any path) and its account;
 * - a role entry of the principals file, which stands for a session named after the role
 *   (request-context.ts, aws:userid): that session's ARN, the role and its account.
 */
function principalChain(caller: Caller): ((arn: string) => boolean)[] {
  const arn = withoutPartition(caller.arn);
  const is = (expected: string) => (named: string) => named === expected;
  const root = `arn::iam::${caller.account}:root`;
  const session = SESSION.exec(arn);
  if (session) return [is(arn), (named) => isRole(named, session[1]!, session[2]!), is(root)];
  const role = ROLE.exec(arn);
  if (role) {
    const sessionArn = `arn::sts::${role[1]}:assumed-role/${role[2]}/${role[2]}`;
    return [is(sessionArn), (named) => isRole(named, role[1]!, role[2]!), is(root)];
  }
  return arn === root ? [is(root)] : [is(arn), is(root)];
}

/**
 * Whether a Deny statement's NotPrincipal exempts `caller`: only when it names every principal of
 * the caller's chain (principalChain). Naming fewer, AWS "might deny access" (to the account, the
 * role): the local KMS denies. `"*"` names everyone.
 */
function notPrincipalExempts(p: ParsedPrincipal, caller: Caller): boolean {
  if (p.any) return true;
  const named = p.arns.map(withoutPartition);
  return principalChain(caller).every((isStep) => named.some(isStep));
}

/** True when `p` is an AWS principal a key policy or a grant may name: an account id or a principal ARN. */
export function isPrincipalId(p: string): boolean {
  return ACCOUNT_ID.test(p) || PRINCIPAL_ARN.test(p);
}

/**
 * True when `caller` is the principal `principal` names (an account id or principal ARN), by the
 * same rule key-policy Principal elements follow here: an account means its root user (there is no
 * IAM to delegate to), a role matches its sessions. Grants name grantee and retiring principals
 * the same way, so they use this too.
 */
export function isCallerPrincipal(principal: string, caller: Caller): boolean {
  return principalMatches({ any: false, arns: [normalizePrincipal(principal)] }, caller);
}

// ---------------------------------------------------------------------------------------------
// Statements

/** One evaluation: the request's condition keys and the meter of its work budget. */
interface Evaluation {
  ctx: ConditionContext;
  meter: WorkMeter;
}

/**
 * How a statement reads ambiguous keys ("Where AWS is not known exactly" above): an Allow must
 * hold in `every` reading of the request, a Deny applies when it holds in `any`.
 */
type Reading = 'every' | 'any';

/**
 * The prepared forms a policy value takes in this request: one, one per combination of candidate
 * values of its variables, or none when a variable has no value (it then equals and is like
 * nothing: IAM User Guide, "IAM policy elements: Variables and tags", "Policy variables with no
 * value").
 */
function readingsOf<P>(value: PolicyValue<P>, prepare: (pieces: readonly ResolvedPiece[]) => P, ev: Evaluation): P[] {
  if (value.template === undefined) return [value.fixed];
  return resolveTemplate(value.template, ev.ctx, ev.meter).map((pieces) => {
    ev.meter.charge(pieces.reduce((n, p) => n + p.text.length, 0)); // preparing it (a pattern's tokens)
    return prepare(pieces);
  });
}

/**
 * Whether some policy value matches: with `surely`, a value that matches in every reading of its
 * variables; otherwise one that matches in some reading. The two differ only for values whose
 * variables have candidate values, and for indeterminate comparisons (`matches` answers
 * undefined: a request value the operator cannot read, policy-operators.ts UNREADABLE), which
 * match in some reading and not in another.
 */
function someValueMatches<P>(values: readonly P[][], surely: boolean, matches: (p: P) => boolean | undefined): boolean {
  return values.some((readings) => (surely ? readings.every((p) => matches(p) === true) : readings.some((p) => matches(p) !== false)));
}

function conditionMatches(c: ParsedCondition, ev: Evaluation, reading: Reading): boolean {
  const entry = ev.ctx.get(c.key);
  const absent = entry === undefined || entry.values.length === 0;
  if (c.op === 'Null') {
    // Null: "true" means the key must be absent, "false" that it must be present; several values OR.
    return c.values.some((v) => (v.toLowerCase() === 'true' ? absent : !absent));
  }
  const def = OPERATORS[c.op]!;
  if (absent) {
    if (c.ifExists) return true;
    if (c.set === 'ForAllValues') return true; // vacuously true over an empty set
    if (c.set === 'ForAnyValue') return false;
    // IAM: a missing key does not match, so a negated operator (StringNotEquals, ...) is true.
    return def.negated;
  }
  // A value whose variable has no value in this request drops out: it cannot make a positive
  // operator match and cannot stop a negated one from matching.
  const values: unknown[][] = [];
  for (const v of c.prepared) {
    const readings = readingsOf(v, def.prepare, ev);
    if (readings.length > 0) values.push(readings);
  }
  // A positive operator in an Allow (a negated one in a Deny) needs a value that matches in every
  // reading of the policy values; the other two need one that matches in some reading.
  const surely = def.negated === (reading === 'any');
  const holdsFor = (requestValue: string) => {
    ev.meter.charge(1 + requestValue.length);
    const r = def.request(requestValue);
    const hit = someValueMatches(values, surely, (p) => def.test(r, p, ev.meter));
    return def.negated ? !hit : hit;
  };
  const requestValues = entry.values;
  // An ambiguous single-valued key: its candidates are readings, every one (Allow) or any (Deny).
  // A multivalued key without a set operator: "Single-valued vs. multivalued context keys" says
  // such keys need ForAllValues or ForAnyValue and documents nothing without one, so both are
  // readings, and the condition is read the same stricter way (a single value: every = some).
  if (entry.ambiguous || c.set === undefined) return reading === 'every' ? requestValues.every(holdsFor) : requestValues.some(holdsFor);
  if (c.set === 'ForAllValues') return requestValues.every(holdsFor);
  return requestValues.some(holdsFor);
}

/**
 * Whether a `Resource` (`not` false) or `NotResource` (`not` true) element names the key, read the
 * stricter way for the statement (an entry whose variable has no value names nothing).
 */
function resourceElementApplies(entries: readonly PolicyValue<WildcardPattern>[], not: boolean, arn: string, ev: Evaluation, reading: Reading): boolean {
  const values = entries.map((r) => readingsOf(r, (pieces) => new WildcardPattern(tokensOfPieces(pieces)), ev)).filter((v) => v.length > 0);
  const hit = someValueMatches(values, not === (reading === 'any'), (p) => p.matches(arn, ev.meter));
  return not ? !hit : hit;
}

/** How a statement's `Principal` element is matched against the caller of a request. */
type PrincipalTest = (p: ParsedPrincipal) => boolean;

function statementApplies(st: ParsedStatement, req: AuthzRequest, ev: Evaluation, principalTest: PrincipalTest): boolean {
  if (st.principal && !principalTest(st.principal)) return false;
  // Only Deny statements have a NotPrincipal (policy-parse.ts refuses it with Allow).
  if (st.notPrincipal && notPrincipalExempts(st.notPrincipal, req.caller)) return false;
  if (st.actions && !st.actions.some((a) => a.matches(req.action, ev.meter))) return false;
  if (st.notActions && st.notActions.some((a) => a.matches(req.action, ev.meter))) return false;
  const reading: Reading = st.effect === 'Deny' ? 'any' : 'every';
  if (st.resources && !resourceElementApplies(st.resources, false, req.resourceArn, ev, reading)) return false;
  if (st.notResources && !resourceElementApplies(st.notResources, true, req.resourceArn, ev, reading)) return false;
  return st.conditions.every((c) => conditionMatches(c, ev, reading));
}

// ---------------------------------------------------------------------------------------------
// Policies

function parsedOrUndefined(policy: string): ParsedPolicy | undefined {
  try {
    return parseCached(policy);
  } catch {
    return undefined;
  }
}

/**
 * Runs one evaluation with its own work budget. Running out of it denies the request
 * (AccessDeniedException naming the policy kind and the budget): fail closed.
 */
function evaluating<T>(req: AuthzRequest, by: DeniedBy, run: (ev: Evaluation) => T): T {
  const ev: Evaluation = { ctx: conditionContext(req), meter: new WorkMeter() };
  try {
    return run(ev);
  } catch (e) {
    if (!(e instanceof WorkBudgetExceeded)) throw e;
    throw new KmsServiceError(
      'AccessDeniedException',
      `User: ${req.caller.arn} is not authorized to perform: ${req.action} on resource: ${req.resourceArn} because evaluating the ` +
        `${by} policy needed more than ${e.budget.toLocaleString('en-US')} character steps of condition matching, the local KMS's ` +
        'limit for one request; it denies what it cannot finish evaluating',
    );
  }
}

/**
 * Evaluates one request against a key policy, in the order written at the top of this module. An
 * unparseable policy denies everything (fail closed; stored policies were validated when they were
 * set). An Allow naming the account principal means the account root only, and a Deny naming it
 * applies to the whole account: this is the evaluation for callers whose IAM is not modelled (see
 * evaluateKeyPolicyForIam for the others). Throws AccessDeniedException when the evaluation runs
 * out of its work budget.
 */
export function evaluateKeyPolicy(policy: string, req: AuthzRequest): AuthzDecision {
  const parsed = parsedOrUndefined(policy);
  if (!parsed) return { allowed: false, explicitDeny: false };
  return evaluating(req, 'resource-based', (ev) => {
    const isCaller: PrincipalTest = (p) => principalMatches(p, req.caller);
    // A Deny naming the caller's account applies to every identity in it (IAM User Guide, "AWS
    // account principals"), also here where there is no IAM to delegate an Allow to: erring on the
    // side of the Deny is what keeps this from allowing what AWS denies.
    const account: Caller = { arn: `arn:aws:iam::${req.caller.account}:root`, account: req.caller.account };
    const isCallerOrAccount: PrincipalTest = (p) => isCaller(p) || principalMatches(p, account);
    for (const st of parsed.denies) {
      if (statementApplies(st, req, ev, isCallerOrAccount)) return { allowed: false, explicitDeny: true };
    }
    for (const st of parsed.allows) {
      if (statementApplies(st, req, ev, isCaller)) return { allowed: true, explicitDeny: false };
    }
    return { allowed: false, explicitDeny: false };
  });
}

/** A key policy's answer for a caller whose IAM is modelled. */
export interface KeyPolicyIamDecision extends AuthzDecision {
  /**
   * No statement allows the caller itself, but one allows the caller's account principal: the
   * key policy delegates the request to the caller's IAM policies, which must allow it too.
   */
  accountAllowed: boolean;
}

/**
 * Evaluates a key policy for a caller whose IAM identity policies are modelled (Caller
 * `identityPolicies`). The account principal (`"AWS": "111122223333"` or its root ARN) then
 * stands for the account and every identity in it (IAM User Guide, "AWS account principals":
 * the account ARN "does not limit permissions to only the root user"; KMS Developer Guide,
 * "Default key policy"): a Deny naming the caller's account applies to the caller, an Allow
 * naming it is `accountAllowed` (delegation to IAM), not `allowed`. The account root is itself
 * the account principal, so for it `allowed` is set as before. Throws AccessDeniedException when
 * the evaluation runs out of its work budget.
 */
export function evaluateKeyPolicyForIam(policy: string, req: AuthzRequest): KeyPolicyIamDecision {
  const parsed = parsedOrUndefined(policy);
  if (!parsed) return { allowed: false, explicitDeny: false, accountAllowed: false };
  return evaluating(req, 'resource-based', (ev) => {
    const isCaller: PrincipalTest = (p) => principalMatches(p, req.caller);
    const account: Caller = { arn: `arn:aws:iam::${req.caller.account}:root`, account: req.caller.account };
    const isAccount: PrincipalTest = (p) => principalMatches(p, account);
    for (const st of parsed.denies) {
      if (statementApplies(st, req, ev, (p) => isCaller(p) || isAccount(p))) return { allowed: false, explicitDeny: true, accountAllowed: false };
    }
    let accountAllowed = false;
    for (const st of parsed.allows) {
      if (statementApplies(st, req, ev, isCaller)) return { allowed: true, explicitDeny: false, accountAllowed: false };
      if (!accountAllowed && st.principal && statementApplies(st, req, ev, isAccount)) accountAllowed = true;
    }
    return { allowed: false, explicitDeny: false, accountAllowed };
  });
}

/**
 * Evaluates a request against all the identity policies of its caller, as one set (IAM User Guide,
 * "Policy evaluation logic"): a Deny statement of any of them that applies is an explicit deny; an
 * Allow statement of any is needed otherwise. No policies: implicitly denied. Throws
 * AccessDeniedException when the evaluation runs out of its work budget.
 */
export function evaluateIdentityPolicies(policies: readonly IdentityPolicy[], req: AuthzRequest): AuthzDecision {
  const parsed = policies.map((p) => (p as ParsedIdentityPolicy).parsed);
  return evaluating(req, 'identity-based', (ev) => {
    const none: PrincipalTest = () => false; // identity policies have no Principal element
    for (const doc of parsed) {
      for (const st of doc.denies) if (statementApplies(st, req, ev, none)) return { allowed: false, explicitDeny: true };
    }
    for (const doc of parsed) {
      for (const st of doc.allows) if (statementApplies(st, req, ev, none)) return { allowed: true, explicitDeny: false };
    }
    return { allowed: false, explicitDeny: false };
  });
}

// ---------------------------------------------------------------------------------------------
// Denials and the lockout safety check

/**
 * Policy lockout safety check (KMS `PutKeyPolicy`/`CreateKey` with `BypassPolicyLockoutSafetyCheck`
 * false): the principal making the request must still be allowed to make a subsequent
 * `PutKeyPolicy` request on the key under the new policy. `context` is that subsequent request's
 * condition keys and encryption context (the service passes the key's own keys and the caller's
 * global keys, built by request-context.ts); without it only the principal keys are known.
 *
 * A question about the key policy alone, as the API Reference states it. For a caller whose IAM
 * is modelled, a statement allowing the caller's account counts: it delegates PutKeyPolicy to
 * the account's IAM policies, which is what keeps a key manageable (Developer Guide, "Default key
 * policy", "Reduces the risk of the KMS key becoming unmanageable").
 */
export function callerKeepsPolicyAccess(
  policy: string,
  caller: Caller,
  keyArn: string,
  context: Pick<AuthzRequest, 'conditionKeys' | 'encryptionContext'> = {},
): boolean {
  const req: AuthzRequest = { ...context, caller, action: 'kms:PutKeyPolicy', resourceArn: keyArn };
  if (caller.identityPolicies === undefined) return evaluateKeyPolicy(policy, req).allowed;
  const decision = evaluateKeyPolicyForIam(policy, req);
  return decision.allowed || decision.accountAllowed;
}

/** Which kind of policy a denial is reported against (IAM User Guide, "Troubleshoot access denied error messages"). */
export type DeniedBy = 'resource-based' | 'identity-based';

/**
 * `AccessDeniedException` worded as AWS words it: "User: <arn> is not authorized to perform:
 * <action> on resource: <resource> because no <type> policy allows the <action> action", or
 * "... with an explicit deny in a(n) <type> policy". `resource` undefined leaves out the "on
 * resource" part, as AWS does when it names none.
 */
export function accessDenied(callerArn: string, action: string, resource: string | undefined, by: DeniedBy, explicit: boolean): KmsServiceError {
  const head = `User: ${callerArn} is not authorized to perform: ${action}${resource !== undefined ? ` on resource: ${resource}` : ''}`;
  return new KmsServiceError(
    'AccessDeniedException',
    explicit ? `${head} with an explicit deny in ${by === 'identity-based' ? 'an' : 'a'} ${by} policy` : `${head} because no ${by} policy allows the ${action} action`,
  );
}

/** Evaluates and throws `AccessDeniedException` worded as AWS words a key-policy denial. */
export function authorizeKeyPolicy(policy: string, req: AuthzRequest): void {
  const decision = evaluateKeyPolicy(policy, req);
  if (decision.allowed) return;
  throw accessDenied(req.caller.arn, req.action, req.resourceArn, 'resource-based', decision.explicitDeny);
}

/** AWS KMS's message when a new policy fails the lockout safety check. */
export const POLICY_LOCKOUT_MESSAGE = 'The new key policy will not allow you to update the key policy in the future.';

/**
 * `CreateKey`/`PutKeyPolicy` lockout safety check: unless `bypass` (BypassPolicyLockoutSafetyCheck),
 * throws `MalformedPolicyDocumentException` when the caller could not call `PutKeyPolicy` under
 * the new policy.
 */
export function assertPolicyLockoutSafe(
  policy: string,
  caller: Caller,
  keyArn: string,
  bypass = false,
  context: Pick<AuthzRequest, 'conditionKeys' | 'encryptionContext'> = {},
): void {
  if (bypass) return;
  if (!callerKeepsPolicyAccess(policy, caller, keyArn, context)) throw malformed(POLICY_LOCKOUT_MESSAGE);
}
