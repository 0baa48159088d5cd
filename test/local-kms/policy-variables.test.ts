/**
 * Policy variables in key policies, as the IAM User Guide page "IAM policy elements: Variables and
 * tags" describes them (sections "Where you can use policy variables", "Policy variables with no
 * value", "Special characters", "Specifying default values"), with the AWS KMS Developer Guide's
 * own example from "kms:EncryptionContext:context-key" (a context pair that must name the caller:
 * `"kms:EncryptionContext:user": "${aws:username}"`).
 *
 * The engine is driven directly: the request's condition-key map (`conditionKeys`, lower-case or
 * not) carries `aws:username`, `aws:userid`, `aws:PrincipalTag/...` as the service fills them.
 */
import { describe, expect, it } from 'vitest';
import { evaluateKeyPolicy, validateKeyPolicy } from '../../src/local-kms/policy.js';
import type { AuthzRequest, Caller } from '../../src/local-kms/policy-types.js';

const ACCOUNT = '111122223333';
const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const KEY = `arn:aws:kms:us-east-1:${ACCOUNT}:key/${KEY_ID}`;
const alice: Caller = { arn: `arn:aws:iam::${ACCOUNT}:user/alice`, account: ACCOUNT };
const bob: Caller = { arn: `arn:aws:iam::${ACCOUNT}:user/bob`, account: ACCOUNT };
// A role session: aws:username is absent for it (IAM global condition keys: IAM users only), so a
// ${aws:username} variable has no value in its requests. (For IAM users the request context builder
// derives aws:username from the ARN, whatever conditionKeys say.)
const session: Caller = { arn: `arn:aws:sts::${ACCOUNT}:assumed-role/app/s1`, account: ACCOUNT };
const ALICE_KEYS = { 'aws:username': 'alice', 'aws:userid': 'AIDAALICE0000000000001' };
const BOB_KEYS = { 'aws:username': 'bob', 'aws:userid': 'AIDABOB00000000000001' };

type Doc = { Version?: string; Statement: object[] };
const v2012 = (...Statement: object[]): Doc => ({ Version: '2012-10-17', Statement });
const allowAll = (extra: object) => ({ Effect: 'Allow', Principal: { AWS: '*' }, Action: 'kms:*', Resource: '*', ...extra });
const denyAll = (extra: object) => ({ Effect: 'Deny', Principal: { AWS: '*' }, Action: 'kms:*', Resource: '*', ...extra });
const cond = (op: string, key: string, value: unknown) => ({ Condition: { [op]: { [key]: value } } });

function decide(doc: Doc, caller: Caller, extra: Partial<AuthzRequest> = {}) {
  const text = JSON.stringify(doc);
  validateKeyPolicy(text); // every policy here is one KMS accepts
  return evaluateKeyPolicy(text, { caller, action: 'kms:Decrypt', resourceArn: KEY, ...extra });
}
const allowed = (doc: Doc, caller: Caller, extra: Partial<AuthzRequest> = {}) => decide(doc, caller, extra).allowed;
const ctx = (encryptionContext: Record<string, string>, conditionKeys: AuthzRequest['conditionKeys'] = ALICE_KEYS) => ({
  encryptionContext,
  conditionKeys,
});

describe('Developer Guide example: kms:EncryptionContext:user must be ${aws:username}', () => {
  const doc = v2012(allowAll(cond('StringEquals', 'kms:EncryptionContext:user', '${aws:username}')));

  it('admits the user the context names and nobody else', () => {
    expect(allowed(doc, alice, ctx({ user: 'alice' }))).toBe(true);
    expect(allowed(doc, bob, ctx({ user: 'bob' }, BOB_KEYS))).toBe(true);
    expect(allowed(doc, bob, ctx({ user: 'alice' }, BOB_KEYS))).toBe(false);
    expect(allowed(doc, alice, ctx({ user: 'bob' }))).toBe(false);
  });
  it('a context holding the literal text "${aws:username}" is not let through', () => {
    expect(allowed(doc, alice, ctx({ user: '${aws:username}' }))).toBe(false);
  });
  it('condition key names in a variable are case-insensitive; the substituted value is compared as the operator says', () => {
    const upper = v2012(allowAll(cond('StringEquals', 'kms:EncryptionContext:user', '${AWS:UserName}')));
    expect(allowed(upper, alice, ctx({ user: 'alice' }))).toBe(true);
    expect(allowed(upper, alice, ctx({ user: 'ALICE' }))).toBe(false);
    expect(allowed(upper, alice, ctx({ user: 'alice' }, { 'AWS:USERNAME': 'alice' }))).toBe(true);
    const ignoreCase = v2012(allowAll(cond('StringEqualsIgnoreCase', 'kms:EncryptionContext:user', '${aws:username}')));
    expect(allowed(ignoreCase, alice, ctx({ user: 'ALICE' }))).toBe(true);
  });
});

describe('Version: variables exist only in "2012-10-17" policies', () => {
  for (const version of [undefined, '2008-10-17']) {
    it(`Version ${version ?? '(none)'}: "\${aws:username}" is literal text`, () => {
      const doc: Doc = { Statement: [allowAll(cond('StringEquals', 'kms:EncryptionContext:user', '${aws:username}'))] };
      if (version) doc.Version = version;
      expect(allowed(doc, alice, ctx({ user: '${aws:username}' }))).toBe(true);
      expect(allowed(doc, alice, ctx({ user: 'alice' }))).toBe(false);
      // ${*} is not an escape there either: the text keeps its `*`, a wildcard for StringLike
      const like: Doc = { Statement: [allowAll(cond('StringLike', 'kms:EncryptionContext:p', 'a${*}'))] };
      if (version) like.Version = version;
      expect(allowed(like, alice, ctx({ p: 'a${xyz}' }))).toBe(true);
      expect(allowed(like, alice, ctx({ p: 'a*' }))).toBe(false);
    });
  }
});

describe('where variables are substituted: string and ARN operators, Resource', () => {
  it('StringLike: the variable is part of the pattern, the policy text around it keeps its wildcards', () => {
    const doc = v2012(allowAll(cond('StringLike', 'kms:EncryptionContext:path', 'home/${aws:username}/*')));
    expect(allowed(doc, alice, ctx({ path: 'home/alice/notes.txt' }))).toBe(true);
    expect(allowed(doc, alice, ctx({ path: 'home/bob/notes.txt' }))).toBe(false);
    expect(allowed(doc, alice, ctx({ path: 'home/${aws:username}/x' }))).toBe(false);
  });
  it('StringNotEquals / StringNotLike substitute too', () => {
    const doc = v2012(allowAll({}), denyAll(cond('StringNotEquals', 'kms:EncryptionContext:owner', '${aws:username}')));
    expect(allowed(doc, alice, ctx({ owner: 'alice' }))).toBe(true);
    expect(decide(doc, alice, ctx({ owner: 'bob' }))).toEqual({ allowed: false, explicitDeny: true });
    const notLike = v2012(allowAll({}), denyAll(cond('StringNotLike', 'kms:EncryptionContext:path', '${aws:username}/*')));
    expect(allowed(notLike, alice, ctx({ path: 'alice/a' }))).toBe(true);
    expect(allowed(notLike, alice, ctx({ path: 'bob/a' }))).toBe(false);
  });
  it('several variables in one value, and variables from the caller (aws:PrincipalAccount) and tags', () => {
    const doc = v2012(allowAll(cond('StringEquals', 'kms:EncryptionContext:who', '${aws:PrincipalAccount}/${aws:username}/${aws:PrincipalTag/team}')));
    const keys = { ...ALICE_KEYS, 'aws:principaltag/team': 'payments' };
    expect(allowed(doc, alice, ctx({ who: `${ACCOUNT}/alice/payments` }, keys))).toBe(true);
    expect(allowed(doc, alice, ctx({ who: `${ACCOUNT}/alice/billing` }, keys))).toBe(false);
    const byId = v2012(allowAll(cond('StringEquals', 'kms:EncryptionContext:uid', '${aws:userid}')));
    expect(allowed(byId, alice, ctx({ uid: 'AIDAALICE0000000000001' }))).toBe(true);
    expect(allowed(byId, alice, ctx({ uid: 'AIDABOB00000000000001' }))).toBe(false);
  });
  it('ArnEquals / ArnLike substitute, and still match ARN part by part', () => {
    const doc = v2012(allowAll(cond('ArnLike', 'aws:PrincipalArn', `arn:aws:iam::\${aws:PrincipalAccount}:user/\${aws:username}`)));
    expect(allowed(doc, alice, ctx({}))).toBe(true);
    expect(allowed(doc, alice, ctx({}, BOB_KEYS))).toBe(false);
    const notArn = v2012(allowAll({}), denyAll(cond('ArnNotEquals', 'aws:PrincipalArn', `arn:aws:iam::${ACCOUNT}:user/\${aws:username}`)));
    expect(allowed(notArn, alice, ctx({}))).toBe(true);
    expect(allowed(notArn, alice, ctx({}, BOB_KEYS))).toBe(false);
  });
  it('Numeric, Date, Bool and IpAddress operators do not substitute: the literal text is not a value of their type, and the document is refused', () => {
    // IAM User Guide, "IAM policy validation check reference": "Error - Invalid variable for
    // operator" and "Error - Invalid condition data type". (The variables page lists Boolean among
    // the operators without variables; the condition operators page says otherwise; the
    // variables page is the one followed.)
    const with_ = (op: string, key: string) => JSON.stringify(v2012(allowAll(cond(op, key, `\${${key}}`))));
    for (const [op, key] of [['NumericEquals', 'kms:RotationPeriodInDays'], ['DateEquals', 'aws:CurrentTime'], ['IpAddress', 'aws:SourceIp'], ['Bool', 'aws:SecureTransport']]) {
      expect(() => validateKeyPolicy(with_(op!, key!)), op).toThrow(expect.objectContaining({ name: 'MalformedPolicyDocumentException' }));
    }
  });
  it('Resource: a variable in the resource part of the ARN is substituted', () => {
    const doc = v2012(allowAll({ Resource: `arn:aws:kms:us-east-1:${ACCOUNT}:key/\${aws:PrincipalTag/key-id}` }));
    expect(allowed(doc, alice, ctx({}, { 'aws:principaltag/key-id': KEY_ID }))).toBe(true);
    expect(allowed(doc, alice, ctx({}, { 'aws:principaltag/key-id': 'another' }))).toBe(false);
    expect(allowed(doc, alice, ctx({}, {}))).toBe(false); // no tag: the resource matches nothing
    const prefix = v2012(allowAll({ Resource: `arn:aws:kms:*:${ACCOUNT}:key/\${aws:PrincipalTag/prefix}*` }));
    expect(allowed(prefix, alice, ctx({}, { 'aws:principaltag/prefix': '1234abcd' }))).toBe(true);
    expect(allowed(prefix, alice, ctx({}, { 'aws:principaltag/prefix': '9999' }))).toBe(false);
  });
  it('Resource: a variable before the fifth colon is not substituted', () => {
    const doc = v2012(allowAll({ Resource: `arn:aws:kms:\${aws:RequestedRegion}:${ACCOUNT}:key/*` }));
    expect(allowed(doc, alice, ctx({}, { 'aws:RequestedRegion': 'us-east-1' }))).toBe(false);
  });
  it('NotResource: an unresolved variable matches no resource, so the statement applies', () => {
    const doc = v2012(allowAll({}), denyAll({ Resource: undefined, NotResource: `arn:aws:kms:us-east-1:${ACCOUNT}:key/\${aws:PrincipalTag/key-id}` }));
    expect(allowed(doc, alice, ctx({}, { 'aws:principaltag/key-id': KEY_ID }))).toBe(true);
    expect(decide(doc, alice, ctx({}, {}))).toEqual({ allowed: false, explicitDeny: true });
  });
});

describe('variables with no value', () => {
  it('a string or ARN operator does not match a missing variable; its negation does', () => {
    const eq = v2012(allowAll(cond('StringEquals', 'kms:EncryptionContext:user', '${aws:username}')));
    expect(allowed(eq, session, ctx({ user: '' }, {}))).toBe(false);
    expect(allowed(eq, session, ctx({ user: '${aws:username}' }, {}))).toBe(false);
    const like = v2012(allowAll(cond('StringLike', 'kms:EncryptionContext:user', '*${aws:username}*')));
    expect(allowed(like, session, ctx({ user: 'anything' }, {}))).toBe(false);
    const notEq = v2012(allowAll({}), denyAll(cond('StringNotEquals', 'kms:EncryptionContext:user', '${aws:username}')));
    expect(decide(notEq, session, ctx({ user: 'alice' }, {}))).toEqual({ allowed: false, explicitDeny: true });
    const arn = v2012(allowAll(cond('ArnLike', 'aws:PrincipalArn', `arn:aws:iam::${ACCOUNT}:user/\${aws:username}`)));
    expect(allowed(arn, session, ctx({}, {}))).toBe(false);
  });
  it('other values of the same condition still count (values are OR)', () => {
    const doc = v2012(allowAll(cond('StringEquals', 'kms:EncryptionContext:user', ['${aws:username}', 'shared'])));
    expect(allowed(doc, session, ctx({ user: 'shared' }, {}))).toBe(true);
    expect(allowed(doc, session, ctx({ user: 'alice' }, {}))).toBe(false);
  });
  it('IfExists is about the condition key, not the variable', () => {
    const doc = v2012(allowAll(cond('StringEqualsIfExists', 'kms:EncryptionContext:user', '${aws:username}')));
    expect(allowed(doc, session, ctx({}, {}))).toBe(true); // no context pair: IfExists passes
    expect(allowed(doc, session, ctx({ user: 'alice' }, {}))).toBe(false); // pair present, variable missing
  });
  it('a multivalued key cannot be a variable, even with one value', () => {
    const doc = v2012(allowAll(cond('StringEquals', 'kms:EncryptionContext:k', '${kms:EncryptionContextKeys}')));
    expect(allowed(doc, alice, ctx({ k: 'k' }))).toBe(false);
  });
  it("the default-value form ${key, 'default'} supplies a value when the key is missing", () => {
    const doc = v2012(allowAll(cond('StringEquals', 'kms:EncryptionContext:user', "${aws:username, 'anonymous'}")));
    expect(allowed(doc, session, ctx({ user: 'anonymous' }, {}))).toBe(true);
    expect(allowed(doc, session, ctx({ user: 'ANONYMOUS' }, {}))).toBe(false); // the default is case-sensitive
    expect(allowed(doc, alice, ctx({ user: 'alice' }))).toBe(true);
    expect(allowed(doc, alice, ctx({ user: 'anonymous' }))).toBe(false); // the key is present: the default is unused
    const res = v2012(allowAll({ Resource: `arn:aws:kms:us-east-1:${ACCOUNT}:key/\${aws:PrincipalTag/key-id, '${KEY_ID}'}` }));
    expect(allowed(res, alice, ctx({}, {}))).toBe(true);
    expect(allowed(res, alice, ctx({}, { 'aws:principaltag/key-id': 'other' }))).toBe(false);
  });
});

describe('special characters ${*} ${?} ${$} and wildcards in substituted values', () => {
  it('${*} and ${?} are a literal * and ? in StringLike', () => {
    const star = v2012(allowAll(cond('StringLike', 'kms:EncryptionContext:p', 'a${*}b*')));
    expect(allowed(star, alice, ctx({ p: 'a*b' }))).toBe(true);
    expect(allowed(star, alice, ctx({ p: 'a*bcd' }))).toBe(true);
    expect(allowed(star, alice, ctx({ p: 'axb' }))).toBe(false);
    expect(allowed(star, alice, ctx({ p: 'ab' }))).toBe(false);
    const q = v2012(allowAll(cond('StringLike', 'kms:EncryptionContext:p', 'why${?}')));
    expect(allowed(q, alice, ctx({ p: 'why?' }))).toBe(true);
    expect(allowed(q, alice, ctx({ p: 'whyx' }))).toBe(false);
  });
  it('${$} is a literal $, so "${$}{aws:username}" is the text ${aws:username}', () => {
    const doc = v2012(allowAll(cond('StringEquals', 'kms:EncryptionContext:p', '${$}{aws:username}')));
    expect(allowed(doc, alice, ctx({ p: '${aws:username}' }))).toBe(true);
    expect(allowed(doc, alice, ctx({ p: 'alice' }))).toBe(false);
    const eq = v2012(allowAll(cond('StringEquals', 'kms:EncryptionContext:p', 'cost ${$}5 ${*}')));
    expect(allowed(eq, alice, ctx({ p: 'cost $5 *' }))).toBe(true);
  });
  it('wildcard characters that come from a substituted value are literal', () => {
    const doc = v2012(allowAll(cond('StringLike', 'kms:EncryptionContext:user', '${aws:username}')));
    const starUser = { 'aws:username': '*' };
    expect(allowed(doc, alice, ctx({ user: 'somebody-else' }, starUser))).toBe(false);
    expect(allowed(doc, alice, ctx({ user: '*' }, starUser))).toBe(true);
    const qUser = { 'aws:username': 'a?c' };
    expect(allowed(doc, alice, ctx({ user: 'abc' }, qUser))).toBe(false);
    expect(allowed(doc, alice, ctx({ user: 'a?c' }, qUser))).toBe(true);
    const arn = v2012(allowAll(cond('ArnLike', 'aws:PrincipalArn', `arn:aws:iam::${ACCOUNT}:user/\${aws:username}`)));
    expect(allowed(arn, alice, ctx({}, starUser))).toBe(false);
    const res = v2012(allowAll({ Resource: `arn:aws:kms:us-east-1:${ACCOUNT}:key/\${aws:PrincipalTag/key-id}` }));
    expect(allowed(res, alice, ctx({}, { 'aws:principaltag/key-id': '*' }))).toBe(false);
  });
  it('only ${*} ${?} ${$} are escapes: ${constructor} or ${__proto__} is a key without value', () => {
    for (const name of ['constructor', '__proto__', 'toString']) {
      const doc = v2012(allowAll(cond('StringLike', 'kms:EncryptionContext:p', `x\${${name}}*`)));
      expect(allowed(doc, alice, ctx({ p: 'x' }))).toBe(false);
      expect(allowed(doc, alice, ctx({ p: 'xanything' }))).toBe(false);
      expect(allowed(doc, alice, ctx({ p: 'x' }, { [name]: 'y' }))).toBe(false);
      expect(allowed(doc, alice, ctx({ p: 'xy!' }, { [name]: 'y' }))).toBe(true);
    }
  });
  it('a "${" without its "}" is literal text, and KMS-side validation accepts it', () => {
    const doc = v2012(allowAll(cond('StringEquals', 'kms:EncryptionContext:p', 'x${aws:username')));
    expect(allowed(doc, alice, ctx({ p: 'x${aws:username' }))).toBe(true);
    expect(allowed(doc, alice, ctx({ p: 'xalice' }))).toBe(false);
  });
});
