/**
 * Wildcard matching in key policies: `StringLike`/`StringNotLike` (case-sensitive, `*` any run,
 * `?` one character) and `ArnLike`/`ArnEquals` (the six colon-separated parts matched one by one)
 * as the IAM User Guide page "IAM JSON policy elements: Condition operators" (sections "String
 * condition operators", "Amazon Resource Name (ARN) condition operators") describes them; `Action`
 * (case-insensitive) and `Resource` wildcards as "IAM JSON policy elements: Action" and
 * "IAM JSON policy elements: Resource" do.
 *
 * The matcher must not backtrack: a request's evaluation is bounded by the sizes of the policy
 * (at most 32,768 characters) and of the request, whatever the patterns. The pathological inputs
 * below held the old regex-based matcher for longer than anyone would wait.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluateKeyPolicy, validateKeyPolicy } from '../../src/local-kms/policy.js';
import type { AuthzRequest, Caller } from '../../src/local-kms/policy-types.js';
import { compileWildcard } from '../../src/local-kms/wildcard.js';

const ACCOUNT = '111122223333';
const KEY = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const alice: Caller = { arn: `arn:aws:iam::${ACCOUNT}:user/alice`, account: ACCOUNT };

/** Reference: the textbook dynamic program over (pattern prefix, value prefix); obviously right, O(n*m). */
function reference(pattern: string, value: string, ignoreCase = false): boolean {
  const p = ignoreCase ? pattern.toLowerCase() : pattern;
  const v = ignoreCase ? value.toLowerCase() : value;
  let prev = new Array<boolean>(v.length + 1).fill(false);
  prev[0] = true;
  for (let i = 1; i <= p.length; i++) {
    const cur = new Array<boolean>(v.length + 1).fill(false);
    const c = p[i - 1];
    if (c === '*') {
      cur[0] = prev[0]!;
      for (let j = 1; j <= v.length; j++) cur[j] = prev[j]! || cur[j - 1]!;
    } else {
      for (let j = 1; j <= v.length; j++) cur[j] = prev[j - 1]! && (c === '?' || c === v[j - 1]);
    }
    prev = cur;
  }
  return prev[v.length]!;
}

/** Reference ARN match: six parts (the sixth keeps its colons), each a wildcard match. */
function referenceArn(pattern: string, value: string): boolean {
  const split = (s: string) => {
    const parts = s.split(':');
    return parts.length < 6 ? undefined : [...parts.slice(0, 5), parts.slice(5).join(':')];
  };
  const p = split(pattern);
  const v = split(value);
  return !!p && !!v && p.every((part, i) => reference(part, v[i]!));
}

/** A key policy document; characters outside Latin-1 are written as JSON escapes, as KMS requires. */
const doc = (...Statement: object[]) =>
  JSON.stringify({ Version: '2012-10-17', Statement }).replace(/[^\u0009\u000a\u000d\u0020-\u00ff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
const allowIf = (op: string, key: string, value: unknown) =>
  doc({ Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*', Condition: { [op]: { [key]: value } } });
const decide = (policy: string, extra: Partial<AuthzRequest> = {}) =>
  evaluateKeyPolicy(policy, { caller: alice, action: 'kms:Encrypt', resourceArn: KEY, ...extra }).allowed;
const withContext = (policy: string, encryptionContext: Record<string, string>) => decide(policy, { encryptionContext });

describe('the linear-time matcher agrees with the reference', () => {
  const patternArb = fc.string({ unit: fc.constantFrom('a', 'b', 'A', '*', '?', ':', 'é', '\u{1F600}'), maxLength: 14 });
  const valueArb = fc.string({ unit: fc.constantFrom('a', 'b', 'A', '*', '?', ':', 'é', '\u{1F600}'), maxLength: 24 });

  it('compileWildcard(pattern).matches(value), case-sensitive and case-insensitive', () => {
    fc.assert(
      fc.property(patternArb, valueArb, fc.boolean(), (pattern, value, ignoreCase) => {
        expect(compileWildcard(pattern, { ignoreCase }).matches(value)).toBe(reference(pattern, value, ignoreCase));
      }),
      { numRuns: 5000 },
    );
  });
  it('values built from the pattern (so that matches are common) agree too', () => {
    const fill = fc.string({ unit: fc.constantFrom('a', 'b', 'ab', 'ba'), maxLength: 4 });
    fc.assert(
      fc.property(patternArb, fc.array(fill, { minLength: 20, maxLength: 20 }), fc.nat(3), (pattern, fills, mutate) => {
        let k = 0;
        let value = [...pattern].map((c) => (c === '*' ? fills[k++ % 20]! : c === '?' ? 'b' : c)).join('');
        if (mutate === 0 && value.length > 0) value = value.slice(1);
        expect(compileWildcard(pattern).matches(value)).toBe(reference(pattern, value));
      }),
      { numRuns: 3000 },
    );
  });
  it('long segments, with and without ?, on both sides of a 32-character machine word', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom('a', 'b', '?'), minLength: 25, maxLength: 80 }),
        fc.string({ unit: fc.constantFrom('a', 'b'), maxLength: 200 }),
        fc.boolean(),
        (segment, value, anchored) => {
          const pattern = anchored ? `${segment}*` : `*${segment}*`;
          expect(compileWildcard(pattern).matches(value)).toBe(reference(pattern, value));
          const shifted = `${value}${segment.replaceAll('?', 'a')}${value}`;
          expect(compileWildcard(`*${segment}*`).matches(shifted)).toBe(true);
        },
      ),
      { numRuns: 1500 },
    );
  });
  it('StringLike in a key policy, against the reference', () => {
    fc.assert(
      fc.property(patternArb, valueArb, (pattern, value) => {
        const policy = allowIf('StringLike', 'kms:EncryptionContext:v', pattern);
        expect(withContext(policy, { v: value })).toBe(reference(pattern, value));
        const negated = allowIf('StringNotLike', 'kms:EncryptionContext:v', pattern);
        expect(withContext(negated, { v: value })).toBe(!reference(pattern, value));
      }),
      { numRuns: 1500 },
    );
  });
  it('ArnLike in a key policy, against the part-by-part reference', () => {
    const part = fc.string({ unit: fc.constantFrom('a', 'b', '*', '?', '/'), maxLength: 5 });
    const arnish = fc.array(part, { minLength: 5, maxLength: 8 }).map((parts) => parts.join(':'));
    fc.assert(
      fc.property(arnish, arnish, (pattern, value) => {
        const policy = allowIf('ArnLike', 'aws:SourceArn', pattern);
        const v = value.replaceAll('*', 'x').replaceAll('?', 'y');
        expect(decide(policy, { conditionKeys: { 'aws:SourceArn': v } })).toBe(referenceArn(pattern, v));
      }),
      { numRuns: 1500 },
    );
  });
});

describe('case and segment rules stay as IAM has them', () => {
  it('StringLike is case-sensitive; a wildcard matches any character, also newlines', () => {
    const p = allowIf('StringLike', 'kms:EncryptionContext:v', 'Ab*?');
    expect(withContext(p, { v: 'Abcd' })).toBe(true);
    expect(withContext(p, { v: 'abcd' })).toBe(false);
    expect(withContext(p, { v: 'Ab\n\n' })).toBe(true);
    expect(withContext(p, { v: 'Ab' })).toBe(false);
  });
  it('ArnLike matches colon-delimited parts one by one (the operators page example)', () => {
    const value = `arn:aws:someservice:us-east-2:999999999999:store/abc:${ACCOUNT}:finance/document.txt`;
    const pattern = `arn:aws:someservice:*:${ACCOUNT}:finance/*`;
    expect(decide(allowIf('StringLike', 'aws:SourceArn', pattern), { conditionKeys: { 'aws:SourceArn': value } })).toBe(true);
    expect(decide(allowIf('ArnLike', 'aws:SourceArn', pattern), { conditionKeys: { 'aws:SourceArn': value } })).toBe(false);
    expect(decide(allowIf('ArnEquals', 'aws:SourceArn', 'arn:aws:s3:::bucket/*'), { conditionKeys: { 'aws:SourceArn': 'arn:aws:s3:::bucket/a:b' } })).toBe(true);
    expect(decide(allowIf('ArnLike', 'aws:SourceArn', 'arn:aws:s3:::bucket/*'), { conditionKeys: { 'aws:SourceArn': 'arn:aws:S3:::bucket/a' } })).toBe(false);
    expect(decide(allowIf('ArnLike', 'aws:SourceArn', 'arn:aws:s3:::*'), { conditionKeys: { 'aws:SourceArn': 'not-an-arn' } })).toBe(false);
  });
  it('Action wildcards are case-insensitive; Resource wildcards are case-sensitive', () => {
    const action = doc({ Effect: 'Allow', Principal: '*', Action: 'KMS:re?ncrypt*', Resource: '*' });
    expect(decide(action, { action: 'kms:ReEncryptFrom' })).toBe(true);
    expect(decide(action, { action: 'kms:Encrypt' })).toBe(false);
    const resource = doc({ Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: `arn:aws:kms:*:${ACCOUNT}:key/1234ABCD*` });
    expect(decide(resource)).toBe(false);
    const lower = doc({ Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: `arn:aws:kms:*:${ACCOUNT}:key/1234abcd*` });
    expect(decide(lower)).toBe(true);
  });
});

describe('pathological patterns are evaluated without backtracking', () => {
  const N = 100_000;
  const as = 'a'.repeat(N);

  it('many-wildcard StringLike patterns against a 100,000-character context value', () => {
    const patterns = ['*a*a*a*a*a*a*a*a*b', '*a?a?a?a*a*a*a?b*', `a*${'?*'.repeat(40)}b`, `*${'a'.repeat(3000)}b*`, `*${'a?'.repeat(600)}b`];
    for (const pattern of patterns) {
      const policy = allowIf('StringLike', 'kms:EncryptionContext:v', pattern);
      validateKeyPolicy(policy);
      expect(withContext(policy, { v: as }), pattern.slice(0, 40)).toBe(false);
      expect(withContext(policy, { v: `${as}b` }), pattern.slice(0, 40)).toBe(true);
    }
    // All of them in one policy, once more through ForAnyValue over the context keys.
    const all = doc({
      Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*',
      Condition: { 'ForAnyValue:StringLike': { 'kms:EncryptionContextKeys': patterns } },
    });
    expect(decide(all, { encryptionContext: { [as]: 'x', [`${as}c`]: 'y' } })).toBe(false);
    expect(decide(all, { encryptionContext: { [as]: 'x', [`${as}b`]: 'y' } })).toBe(true);
  });
  it('ArnLike parts and Resource patterns with many wildcards', () => {
    const arnPattern = `arn:aws:kms:*:*:key/${'*a'.repeat(30)}*b`;
    const longArn = `arn:aws:kms:us-east-1:${ACCOUNT}:key/${as}`;
    expect(decide(allowIf('ArnLike', 'aws:SourceArn', arnPattern), { conditionKeys: { 'aws:SourceArn': longArn } })).toBe(false);
    expect(decide(allowIf('ArnLike', 'aws:SourceArn', arnPattern), { conditionKeys: { 'aws:SourceArn': `${longArn}b` } })).toBe(true);
    const resource = doc({ Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: `arn:aws:kms:*:*:key/${'*1'.repeat(400)}*` });
    validateKeyPolicy(resource);
    expect(decide(resource)).toBe(false);
    // 40 single characters to place among the 71 after "arn:", then a "z" the key ARN does not end with.
    const manyStars = doc({ Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: `arn:${'*?'.repeat(40)}*z` });
    expect(decide(manyStars)).toBe(false);
    const fits = doc({ Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: `arn:${'*?'.repeat(40)}*b` });
    expect(decide(fits)).toBe(true);
  });
  it('a policy at the 32 KiB limit made of wildcard patterns, against a long value', () => {
    const patterns: string[] = [];
    let size = 0;
    for (let i = 0; size < 30_000; i++) {
      const p = `*${'?'.repeat(i % 7)}a*${String.fromCharCode(98 + (i % 20))}*a*`;
      patterns.push(p);
      size += p.length + 3;
    }
    const policy = allowIf('StringLike', 'kms:EncryptionContext:v', patterns);
    validateKeyPolicy(policy);
    expect(withContext(policy, { v: as })).toBe(false);
    expect(withContext(policy, { v: `${as}ba` })).toBe(true);
  });
});
