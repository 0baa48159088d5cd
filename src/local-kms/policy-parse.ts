/**
 * Key policies and IAM identity policies of the local KMS: the grammar and its checks (the
 * MalformedPolicyDocumentException and ValidationException answers of CreateKey and
 * PutKeyPolicy, and the load errors of identity policies in the principals file), and the parsed
 * form the evaluator (policy.ts) reads. A pure module: no I/O, no clock, no state but a bounded
 * cache of parsed policies.
 *
 * Where AWS's documents leave a reading open, the document is refused rather than read one way
 * (policy.ts states the rule): a member name given twice in one JSON object (json-members.ts),
 * two condition operators or two condition keys of one block that differ only by case (IAM reads
 * those names case-insensitively, so they name one thing twice), and NotPrincipal with
 * "Effect": "Allow", which the IAM User Guide ("AWS JSON policy elements: NotPrincipal") says is
 * not supported.
 */
import { KmsServiceError } from './errors.js';
import { findDuplicateMember, findInexactNumber, type InexactNumber } from './json-members.js';
import { OPERATORS, parseOperatorName, UNREADABLE, type SetOp } from './policy-operators.js';
import type { IdentityPolicy } from './policy-types.js';
import { parseResourceTemplate, parseTemplate, type TemplatePart } from './policy-variables.js';
import { tokensOf, WildcardPattern } from './wildcard.js';

/** Maximum key policy length (AWS KMS `PutKeyPolicy` / `CreateKey`: `Policy` length 1..32768). */
export const MAX_KEY_POLICY_LENGTH = 32_768;

// ---------------------------------------------------------------------------------------------
// Parsed form

export type Effect = 'Allow' | 'Deny';

/**
 * A condition value or `Resource` entry as the policy gives it: prepared once when it holds no
 * variable (`fixed`), otherwise substituted and prepared per request (`template`).
 */
export type PolicyValue<P> = { fixed: P; template?: undefined } | { template: TemplatePart[] };

export interface ParsedCondition {
  /** Base operator as written in its canonical spelling, e.g. `StringEquals`. */
  op: string;
  set: SetOp;
  ifExists: boolean;
  /** Condition key, lower-cased (condition key names are case-insensitive in IAM). */
  key: string;
  /** Condition key as written (for the encryption-context key part and messages). */
  keyAsWritten: string;
  /** The values as written (what `Null` tests). */
  values: string[];
  /** The values prepared for the operator (every operator but `Null`). */
  prepared: PolicyValue<unknown>[];
}

export interface ParsedPrincipal {
  /** Matches every caller (`"*"` or `{"AWS": "*"}`). */
  any: boolean;
  /** Normalized AWS principal ARNs (account ids become `arn:aws:iam::<id>:root`). */
  arns: string[];
}

export interface ParsedStatement {
  sid?: string;
  effect: Effect;
  principal?: ParsedPrincipal;
  notPrincipal?: ParsedPrincipal;
  actions?: WildcardPattern[];
  notActions?: WildcardPattern[];
  resources?: PolicyValue<WildcardPattern>[];
  notResources?: PolicyValue<WildcardPattern>[];
  conditions: ParsedCondition[];
}

export interface ParsedPolicy {
  statements: ParsedStatement[];
  /** The Deny statements and the Allow statements, which evaluation tries in that order. */
  denies: ParsedStatement[];
  allows: ParsedStatement[];
}

// ---------------------------------------------------------------------------------------------
// Parsing and validation

export const malformed = (message: string) => new KmsServiceError('MalformedPolicyDocumentException', message);

export const ACCOUNT_ID = /^\d{12}$/;
/**
 * AWS principal ARNs a key policy accepts: account root, IAM user, IAM role, STS assumed-role
 * session, federated user. IAM groups are not principals (AWS rejects them as invalid principals);
 * wildcards inside an ARN are not allowed either (only the whole value may be `*`).
 */
export const PRINCIPAL_ARN =
  /^arn:aws(?:-[a-z]+)*:(?:iam::\d{12}:(?:root|user\/[\w+=,.@\/-]+|role\/[\w+=,.@\/-]+)|sts::\d{12}:(?:assumed-role\/[\w+=,.@-]+\/[\w+=,.@-]+|federated-user\/[\w+=,.@-]+))$/;

const STATEMENT_FIELDS = new Set([
  'Sid', 'Effect', 'Principal', 'NotPrincipal', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition',
]);
const POLICY_FIELDS = new Set(['Version', 'Id', 'Statement']);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringList(v: unknown, what: string): string[] {
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) throw malformed(`Policy contains a statement with an empty ${what} element.`);
  for (const item of list) {
    if (typeof item !== 'string' || item.length === 0) {
      throw malformed(`Policy contains a statement with an invalid ${what} element.`);
    }
  }
  return list as string[];
}

/** Normalizes an account id to its root ARN; other principal ARNs stay as written. */
export function normalizePrincipal(p: string): string {
  return ACCOUNT_ID.test(p) ? `arn:aws:iam::${p}:root` : p;
}

function parsePrincipal(v: unknown): ParsedPrincipal {
  if (v === '*') return { any: true, arns: [] };
  if (!isPlainObject(v) || Object.keys(v).length === 0) {
    throw malformed('Policy contains a statement with one or more invalid principals.');
  }
  const out: ParsedPrincipal = { any: false, arns: [] };
  for (const [type, value] of Object.entries(v)) {
    const list = Array.isArray(value) ? value : [value];
    if (list.length === 0 || list.some((x) => typeof x !== 'string' || x.length === 0)) {
      throw malformed('Policy contains a statement with one or more invalid principals.');
    }
    for (const p of list as string[]) {
      if (type === 'AWS') {
        if (p === '*') out.any = true;
        else if (ACCOUNT_ID.test(p) || PRINCIPAL_ARN.test(p)) out.arns.push(normalizePrincipal(p));
        else throw malformed('Policy contains a statement with one or more invalid principals.');
      } else if (type === 'Service' || type === 'Federated' || type === 'CanonicalUser') {
        // Valid in a key policy, but no caller of the local KMS is ever one of these principals.
        if (p === '*' && type !== 'Service') {
          throw malformed('Policy contains a statement with one or more invalid principals.');
        }
      } else {
        throw malformed('Policy contains a statement with one or more invalid principals.');
      }
    }
  }
  return out;
}

/** `service:ActionPattern` or `*`; matched case-insensitively (IAM action names are). */
function parseActions(v: unknown): WildcardPattern[] {
  return stringList(v, 'Action').map((a) => {
    if (a !== '*' && !/^[a-zA-Z0-9-]+:[a-zA-Z0-9*?]+$/.test(a)) {
      throw malformed(`Policy contains a statement with one or more invalid actions: '${a}'.`);
    }
    return new WildcardPattern(tokensOf(a, true), true);
  });
}

/**
 * Resources: `*` or ARN patterns (wildcards allowed), matched case-sensitively over the whole ARN;
 * with `variables`, policy variables in the resource part of the ARN.
 */
function parseResources(v: unknown, variables: boolean): PolicyValue<WildcardPattern>[] {
  return stringList(v, 'Resource').map((r) => {
    if (r !== '*' && !r.startsWith('arn:')) {
      throw malformed(`Policy contains a statement with one or more invalid resources: '${r}'.`);
    }
    const template = variables ? parseResourceTemplate(r) : undefined;
    return template ? { template } : { fixed: new WildcardPattern(tokensOf(r, true)) };
  });
}

function parseConditions(v: unknown, variables: boolean): ParsedCondition[] {
  if (v === undefined) return [];
  if (!isPlainObject(v)) throw malformed('Policy contains a statement with an invalid Condition element.');
  const out: ParsedCondition[] = [];
  // Operator names and condition key names are read without regard to case, so two spellings of
  // one name in one block give it twice, like a duplicated JSON member: refused, not read one way.
  const operators = new Map<string, string>();
  for (const [opName, block] of Object.entries(v)) {
    const parsed = parseOperatorName(opName);
    if (!parsed) throw malformed(`Policy contains a statement with an invalid condition operator: '${opName}'.`);
    const canonical = `${parsed.set ?? ''}:${parsed.op}:${parsed.ifExists}`;
    const other = operators.get(canonical);
    if (other !== undefined) {
      throw malformed(`Policy contains a statement with condition operators that differ only by case: '${other}' and '${opName}'.`);
    }
    operators.set(canonical, opName);
    if (!isPlainObject(block) || Object.keys(block).length === 0) {
      throw malformed(`Policy contains a statement with an invalid condition block for '${opName}'.`);
    }
    const keys = new Map<string, string>();
    for (const [key, raw] of Object.entries(block)) {
      // `<service>:<name>`; the name may carry an encryption context key, which can hold any character.
      if (!/^[a-zA-Z0-9-]+:.+$/s.test(key)) {
        throw malformed(`Policy contains a statement with an invalid condition key: '${key}'.`);
      }
      const sameKey = keys.get(key.toLowerCase());
      if (sameKey !== undefined) {
        throw malformed(`Policy contains a statement with condition keys that differ only by case under '${opName}': '${sameKey}' and '${key}'.`);
      }
      keys.set(key.toLowerCase(), key);
      const list = Array.isArray(raw) ? raw : [raw];
      if (list.length === 0) {
        throw malformed(`Policy contains a statement with an empty value list for condition key '${key}'.`);
      }
      const values = list.map((x) => {
        if (typeof x === 'string') return x;
        if (typeof x === 'number' || typeof x === 'boolean') return String(x);
        throw malformed(`Policy contains a statement with an invalid value for condition key '${key}'.`);
      });
      const def = OPERATORS[parsed.op];
      if (!def && values.some((text) => !/^(?:true|false)$/i.test(text))) {
        throw malformed(`Policy contains a statement with an invalid value for condition key '${key}' under '${opName}': it must be true or false.`);
      }
      const prepared = def
        ? values.map((text): PolicyValue<unknown> => {
            const template = variables && def.variables ? parseTemplate(text) : undefined;
            if (template) return { template };
            const fixed = def.prepare([{ text, wildcards: true }]);
            // IAM User Guide, "IAM policy validation check reference", "Error - Invalid condition
            // data type": a value that is not of the operator's type is an error in the policy.
            // Whether KMS refuses such a key policy is not documented; refusing it is never more
            // permissive than any reading of it (and a policy variable in a numeric, date,
            // Boolean or IP value is literal text, "Error - Invalid variable for operator").
            if (fixed === UNREADABLE) {
              throw malformed(`Policy contains a statement with an invalid value for condition key '${key}' under '${opName}': it must be ${def.valueType ?? 'a string'}.`);
            }
            return { fixed };
          })
        : [];
      out.push({ ...parsed, key: key.toLowerCase(), keyAsWritten: key, values, prepared });
    }
  }
  return out;
}

/**
 * What a policy document is: a key policy (a resource-based policy: every statement names its
 * Principal or NotPrincipal) or an IAM identity policy (attached to a principal: no statement may
 * name one; IAM User Guide, "IAM JSON policy elements: Principal").
 */
export type PolicyKind = 'key' | 'identity';

/** `variables`: the policy's Version is 2012-10-17, the first language version with policy variables. */
function parseStatement(raw: unknown, variables: boolean, kind: PolicyKind): ParsedStatement {
  if (!isPlainObject(raw)) throw malformed('Policy contains a statement that is not a JSON object.');
  for (const field of Object.keys(raw)) {
    if (!STATEMENT_FIELDS.has(field)) throw malformed(`Policy contains a statement with an unknown field: '${field}'.`);
  }
  const { Sid, Effect, Principal, NotPrincipal, Action, NotAction, Resource, NotResource, Condition } = raw;
  if (Sid !== undefined && typeof Sid !== 'string') throw malformed('Policy contains a statement with an invalid Sid.');
  if (Effect !== 'Allow' && Effect !== 'Deny') {
    throw malformed(`Policy contains a statement with an invalid Effect: it must be "Allow" or "Deny".`);
  }
  if (kind === 'identity') {
    if (Principal !== undefined || NotPrincipal !== undefined) {
      throw malformed('An identity-based policy cannot name a Principal or NotPrincipal: it applies to the principal it is attached to.');
    }
  } else if ((Principal === undefined) === (NotPrincipal === undefined)) {
    throw malformed('Policy contains a statement without exactly one of Principal and NotPrincipal.');
  } else if (NotPrincipal !== undefined && Effect === 'Allow') {
    // IAM User Guide, "AWS JSON policy elements: NotPrincipal": it "must be used with
    // "Effect":"Deny"", with Allow it "is not supported" (it would allow everyone not named).
    throw malformed('Policy contains a statement with NotPrincipal and "Effect": "Allow"; NotPrincipal is supported only with "Effect": "Deny".');
  }
  if ((Action === undefined) === (NotAction === undefined)) {
    throw malformed('Policy contains a statement without exactly one of Action and NotAction.');
  }
  if ((Resource === undefined) === (NotResource === undefined)) {
    throw malformed('Policy contains a statement without exactly one of Resource and NotResource.');
  }
  const st: ParsedStatement = { effect: Effect, conditions: parseConditions(Condition, variables) };
  if (Sid !== undefined) st.sid = Sid;
  if (Principal !== undefined) st.principal = parsePrincipal(Principal);
  if (NotPrincipal !== undefined) st.notPrincipal = parsePrincipal(NotPrincipal);
  if (Action !== undefined) st.actions = parseActions(Action);
  if (NotAction !== undefined) st.notActions = parseActions(NotAction);
  if (Resource !== undefined) st.resources = parseResources(Resource, variables);
  if (NotResource !== undefined) st.notResources = parseResources(NotResource, variables);
  return st;
}

function parsePolicy(policy: string): ParsedPolicy {
  if (typeof policy !== 'string') {
    throw new KmsServiceError('ValidationException', '1 validation error detected: Value null at \'policy\' failed to satisfy constraint: Member must not be null');
  }
  if (policy.length < 1 || policy.length > MAX_KEY_POLICY_LENGTH) {
    // AWS answers a length violation of the Policy member as a ValidationException, not as a
    // malformed document.
    throw new KmsServiceError(
      'ValidationException',
      `1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must have length ${policy.length < 1 ? 'greater than or equal to 1' : `less than or equal to ${MAX_KEY_POLICY_LENGTH}`}`,
    );
  }
  // KMS API reference, PutKeyPolicy `Policy`: pattern [\u0009\u000A\u000D\u0020-\u00FF]+.
  if (!/^[\u0009\u000A\u000D\u0020-\u00FF]+$/.test(policy)) {
    throw new KmsServiceError(
      'ValidationException',
      "1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+",
    );
  }
  let doc: unknown;
  try {
    doc = JSON.parse(policy);
  } catch {
    throw malformed('The key policy is not valid JSON.');
  }
  const duplicate = findDuplicateMember(policy);
  if (duplicate) {
    throw malformed(`The key policy has a duplicate member name '${duplicate.name}' in ${duplicate.path}: each name may appear once per JSON object.`);
  }
  const inexact = findInexactNumber(policy);
  if (inexact) throw malformed(inexactNumberMessage('The key policy', inexact));
  return parseDocument(doc, 'key');
}

/**
 * JSON numbers are read through a double (`JSON.parse`; Node 20 gives no access to a literal's
 * text), and a condition value is compared as text: `12345678901234567890` would read as
 * "12345678901234567000", `1e2` as "100", `1.0` as "1". IAM compares the value as written ("IAM
 * JSON policy elements: Condition operators"), so a number whose text does not survive the
 * double is refused rather than compared as another value.
 */
export function inexactNumberMessage(what: string, n: InexactNumber): string {
  return `${what} has the number ${n.text} in ${n.path}, which the local KMS would read as ${String(Number(n.text))}: write it as a string ("${n.text}") or as ${String(Number(n.text))}.`;
}

/** The document checks key policies and identity policies share (IAM JSON policy grammar). */
function parseDocument(doc: unknown, kind: PolicyKind): ParsedPolicy {
  const what = kind === 'key' ? 'The key policy' : 'The identity-based policy';
  if (!isPlainObject(doc)) throw malformed(`${what} must be a JSON object.`);
  for (const field of Object.keys(doc)) {
    if (!POLICY_FIELDS.has(field)) throw malformed(`${what} contains an unknown field: '${field}'.`);
  }
  if (doc.Version !== undefined && doc.Version !== '2012-10-17' && doc.Version !== '2008-10-17') {
    throw malformed(`The policy Version must be "2012-10-17" or "2008-10-17".`);
  }
  if (doc.Id !== undefined && typeof doc.Id !== 'string') throw malformed('The policy Id must be a string.');
  if (doc.Statement === undefined) throw malformed(`${what} has no Statement element.`);
  const rawStatements = Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement];
  if (rawStatements.length === 0) throw malformed(`${what} has an empty Statement element.`);
  // IAM User Guide, "IAM policy elements: Variables and tags": without Version 2012-10-17,
  // `${aws:username}` and the like are literal text.
  const variables = doc.Version === '2012-10-17';
  const statements = rawStatements.map((st: unknown) => parseStatement(st, variables, kind));
  const sids = new Set<string>();
  for (const st of statements) {
    if (st.sid === undefined || st.sid === '') continue;
    if (sids.has(st.sid)) throw malformed(`Statement IDs (SID) in a single policy must be unique: '${st.sid}'.`);
    sids.add(st.sid);
  }
  return {
    statements,
    denies: statements.filter((st) => st.effect === 'Deny'),
    allows: statements.filter((st) => st.effect === 'Allow'),
  };
}

const parsedCache = new Map<string, ParsedPolicy>();
/** Parses with a small bounded cache: the same stored policy is evaluated on every request. */
export function parseCached(policy: string): ParsedPolicy {
  let parsed = parsedCache.get(policy);
  if (parsed) {
    parsedCache.delete(policy); // LRU refresh
    parsedCache.set(policy, parsed);
    return parsed;
  }
  parsed = parsePolicy(policy);
  parsedCache.set(policy, parsed);
  if (parsedCache.size > 256) parsedCache.delete(parsedCache.keys().next().value as string);
  return parsed;
}

/**
 * Validates a key policy as `CreateKey`/`PutKeyPolicy` do. Throws `MalformedPolicyDocumentException`
 * (syntax, structure, Effect, principals, actions, condition operators) or `ValidationException`
 * (length 1..32768, allowed characters), with AWS-like messages.
 */
export function validateKeyPolicy(policy: string): void {
  const parsed = parseCached(policy);
  for (const st of parsed.statements) {
    for (const c of st.conditions) {
      // AWS KMS refuses ForAllValues with the single-valued kms:EncryptionContext:<key> condition key
      // (Developer Guide, "kms:EncryptionContext:context-key"): it would match requests without that
      // context pair.
      if (c.set === 'ForAllValues' && c.key.startsWith('kms:encryptioncontext:')) {
        throw malformed(
          'OverlyPermissiveCondition:EncryptionContext: Using the ForAllValues set operator with a single-valued ' +
            'condition key matches requests without the specified encryption context or with an unspecified ' +
            'encryption context. To fix, remove ForAllValues.',
        );
      }
      // The same refusal for the single-valued aws:RequestTag/<key> (Developer Guide, "AWS KMS
      // condition keys", "Using set operators with condition keys").
      if (c.set === 'ForAllValues' && c.key.startsWith('aws:requesttag/')) {
        throw malformed(
          'OverlyPermissiveCondition: Using the ForAllValues set operator with a single-valued condition key ' +
            'matches requests without the specified tag or with an unspecified tag. To fix, remove ForAllValues.',
        );
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Identity policies

export interface ParsedIdentityPolicy extends IdentityPolicy {
  readonly parsed: ParsedPolicy;
}

/**
 * Validates an IAM identity policy document (a JSON value, as a principals file holds it) with the
 * grammar of key policies, except that no statement may name a Principal or NotPrincipal (IAM User
 * Guide, "IAM JSON policy element reference"). Throws `MalformedPolicyDocumentException`.
 */
export function parseIdentityPolicy(doc: unknown): IdentityPolicy {
  const parsed: ParsedIdentityPolicy = { kind: 'identity-policy', parsed: parseDocument(doc, 'identity') };
  return Object.freeze(parsed);
}
