import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { accountOfPrincipalArn, loadPrincipals, resolveCaller } from '../../src/local-kms/principals.js';
import { KmsServiceError } from '../../src/local-kms/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'kms-principals-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = (content: unknown) => {
  const f = join(dir, `p${n++}.json`);
  writeFileSync(f, typeof content === 'string' ? content : JSON.stringify(content));
  return f;
};

describe('loadPrincipals', () => {
  it('reads access key ids, ARNs and optional secrets', () => {
    const f = file({
      AKIAADMIN00000000001: { arn: 'arn:aws:iam::111122223333:user/admin', secretAccessKey: 's3cr3t' },
      AKIAAPP0000000000002: { arn: 'arn:aws:sts::111122223333:assumed-role/App/session' },
      AKIAOTHER00000000003: { arn: 'arn:aws:iam::444455556666:root' },
    });
    const m = loadPrincipals(f);
    expect(m.size).toBe(3);
    expect(m.get('AKIAADMIN00000000001')).toEqual({ arn: 'arn:aws:iam::111122223333:user/admin', secretAccessKey: 's3cr3t' });
    expect(m.get('AKIAAPP0000000000002')).toEqual({ arn: 'arn:aws:sts::111122223333:assumed-role/App/session' });
  });

  it('names the file and the problem, never the secret', () => {
    const cases: [unknown, RegExp][] = [
      ['{not json', /not valid JSON/],
      [[], /expected a JSON object/],
      [{ short: { arn: 'arn:aws:iam::111122223333:root' } }, /entry "short": access key id/],
      [{ AKIAADMIN00000000001: 'arn' }, /expected an object/],
      [{ AKIAADMIN00000000001: { arn: 'alice' } }, /"arn" must be an IAM principal ARN/],
      [{ AKIAADMIN00000000001: { arn: 'arn:aws:iam::111122223333:group/Admins' } }, /"arn" must be an IAM principal ARN/],
      [{ AKIAADMIN00000000001: { arn: 'arn:aws:iam::111122223333:root', secretAccessKey: 42 } }, /"secretAccessKey" must be a non-empty string/],
      [{ AKIAADMIN00000000001: { arn: 'arn:aws:iam::111122223333:root', secret: 'topsecretvalue' } }, /unknown field\(s\) "secret"/],
    ];
    for (const [content, re] of cases) {
      const f = file(content);
      let message = '';
      try {
        loadPrincipals(f);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message, JSON.stringify(content)).toMatch(re);
      expect(message).toContain(f);
      expect(message).not.toContain('topsecretvalue');
    }
    expect(() => loadPrincipals(join(dir, 'missing.json'))).toThrow(/missing\.json: cannot read it \(ENOENT\)/);
  });
});

describe('resolveCaller', () => {
  const principals = new Map([
    ['AKIAADMIN00000000001', { arn: 'arn:aws:iam::111122223333:user/admin' }],
    ['AKIAOTHER00000000003', { arn: 'arn:aws:iam::444455556666:user/eve' }],
  ]);
  const opts = { accountId: '111122223333' };
  const root = { arn: 'arn:aws:iam::111122223333:root', account: '111122223333' };
  const failsWith = (fn: () => unknown, type: string, message: string) => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(KmsServiceError);
      expect((err as KmsServiceError).type).toBe(type);
      expect((err as KmsServiceError).message).toBe(message);
      return;
    }
    expect.unreachable(`expected ${type}`);
  };

  it('known keys become their principal and account', () => {
    expect(resolveCaller('AKIAADMIN00000000001', principals, opts)).toEqual({
      arn: 'arn:aws:iam::111122223333:user/admin', account: '111122223333', accessKeyId: 'AKIAADMIN00000000001',
    });
    expect(resolveCaller('AKIAOTHER00000000003', principals, opts).account).toBe('444455556666');
  });

  it('without a principals file every caller is the account root', () => {
    expect(resolveCaller('AKIAUNKNOWN000000000', undefined, opts)).toEqual({ ...root, accessKeyId: 'AKIAUNKNOWN000000000' });
    expect(resolveCaller(undefined, undefined, opts)).toEqual(root);
  });

  // AWS KMS API Reference, "Common Errors": no access key is MissingAuthenticationToken, an
  // unknown one UnrecognizedClientException ("The security token included in the request is invalid.").
  it('with a principals file an unknown key is UnrecognizedClientException and none MissingAuthenticationTokenException', () => {
    failsWith(() => resolveCaller('AKIAUNKNOWN000000000', principals, opts), 'UnrecognizedClientException', 'The security token included in the request is invalid.');
    failsWith(() => resolveCaller(undefined, principals, opts), 'MissingAuthenticationTokenException', 'Request is missing Authentication Token');
    // An empty file is still a principals file: nobody is admitted.
    failsWith(() => resolveCaller('AKIAADMIN00000000001', new Map(), opts), 'UnrecognizedClientException', 'The security token included in the request is invalid.');
  });

  it('allowUnknownKeysAsRoot admits unknown keys as the account root, never a request without a key', () => {
    const open = { ...opts, allowUnknownKeysAsRoot: true };
    expect(resolveCaller('AKIAUNKNOWN000000000', principals, open)).toEqual({ ...root, accessKeyId: 'AKIAUNKNOWN000000000' });
    expect(resolveCaller('AKIAADMIN00000000001', principals, open).arn).toBe('arn:aws:iam::111122223333:user/admin');
    failsWith(() => resolveCaller(undefined, principals, open), 'MissingAuthenticationTokenException', 'Request is missing Authentication Token');
  });

  it('an access key id named like an Object.prototype member is just unknown', () => {
    for (const key of ['constructor', '__proto__', 'toString']) {
      failsWith(() => resolveCaller(key, principals, opts), 'UnrecognizedClientException', 'The security token included in the request is invalid.');
    }
  });

  it('accountOfPrincipalArn', () => {
    expect(accountOfPrincipalArn('arn:aws:sts::123456789012:assumed-role/R/s')).toBe('123456789012');
    expect(accountOfPrincipalArn('arn:aws-cn:iam::123456789012:role/a/b/R')).toBe('123456789012');
    expect(accountOfPrincipalArn('arn:aws:kms:us-east-1:123456789012:key/x')).toBeUndefined();
  });
});

// IAM User Guide, "IAM JSON policy element reference" (an identity policy has no Principal element)
// and "Policy evaluation logic" (the account root is not restricted by IAM policies).
describe('principals-file "policies": IAM identity policies', () => {
  const alice = 'arn:aws:iam::111122223333:user/alice';
  const allowEncrypt = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:Encrypt', Resource: '*' }] };

  it('are parsed into the caller; [] models IAM with nothing allowed; no field leaves IAM unmodelled', () => {
    const f = file({
      AKIAALICE00000000001: { arn: alice, policies: [allowEncrypt, { Statement: { Effect: 'Deny', NotAction: 's3:*', NotResource: 'arn:aws:s3:::b/*' } }] },
      AKIACAROL00000000001: { arn: 'arn:aws:iam::111122223333:user/carol', policies: [] },
      AKIABOB0000000000001: { arn: 'arn:aws:iam::111122223333:user/bob' },
    });
    const m = loadPrincipals(f);
    const opts = { accountId: '111122223333' };
    expect(resolveCaller('AKIAALICE00000000001', m, opts).identityPolicies).toHaveLength(2);
    expect(resolveCaller('AKIACAROL00000000001', m, opts).identityPolicies).toEqual([]);
    const bob = resolveCaller('AKIABOB0000000000001', m, opts);
    expect(bob.identityPolicies).toBeUndefined();
    expect('identityPolicies' in bob).toBe(false);
  });

  it('are validated as IAM validates them; every problem names the file, the entry and the policy', () => {
    const st = { Effect: 'Allow', Action: 'kms:Encrypt', Resource: '*' };
    const cases: [unknown, RegExp][] = [
      [{ Version: '2012-10-17', Statement: [{ ...st, Principal: { AWS: alice } }] }, /An identity-based policy cannot name a Principal or NotPrincipal/],
      [{ Version: '2012-10-17', Statement: [{ ...st, NotPrincipal: { AWS: alice } }] }, /An identity-based policy cannot name a Principal/],
      [{ Version: '2012-10-18', Statement: [st] }, /The policy Version must be/],
      [{ Version: '2012-10-17' }, /The identity-based policy has no Statement element/],
      [{ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:Encrypt' }] }, /without exactly one of Resource and NotResource/],
      [{ Version: '2012-10-17', Statement: [{ ...st, Effect: 'allow' }] }, /invalid Effect/],
      [{ Version: '2012-10-17', Statement: [{ ...st, Action: 'kms Encrypt' }] }, /invalid actions/],
      [{ Version: '2012-10-17', Statement: [{ ...st, Resource: 'key/1' }] }, /invalid resources/],
      [{ Version: '2012-10-17', Statement: [{ ...st, Condition: { StringEqualz: { 'kms:KeySpec': 'RSA_2048' } } }] }, /invalid condition operator/],
      ['{"Version":"2012-10-17"}', /The identity-based policy must be a JSON object/],
    ];
    for (const [doc, re] of cases) {
      const f = file({ AKIAALICE00000000001: { arn: alice, policies: [allowEncrypt, doc] } });
      let message = '';
      try {
        loadPrincipals(f);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message, JSON.stringify(doc)).toMatch(re);
      // The first policy is valid: the message names the second.
      expect(message).toContain(`principals file ${f}: entry "AKIAALICE00000000001": "policies"[1]: `);
    }
  });

  it('must be an array of documents IAM would accept in size, and cannot be given to the account root', () => {
    // IAM User Guide, "IAM and AWS STS quotas": 10,240 characters (whitespace not counted) is the largest document.
    const big = { Version: '2012-10-17', Statement: [{ Sid: 'x'.repeat(10_200), Effect: 'Allow', Action: 'kms:Encrypt', Resource: '*' }] };
    expect(() => loadPrincipals(file({ AKIAALICE00000000001: { arn: alice, policies: [big] } }))).toThrow(/"policies"\[0\] has 10\d{3} characters without whitespace; IAM accepts at most 10240/);
    big.Statement[0]!.Sid = 'x'.repeat(10_100);
    expect(loadPrincipals(file({ AKIAALICE00000000001: { arn: alice, policies: [big] } })).get('AKIAALICE00000000001')!.policies).toHaveLength(1);
    expect(() => loadPrincipals(file({ AKIAALICE00000000001: { arn: alice, policies: allowEncrypt } }))).toThrow(/"policies" must be an array of IAM identity policy documents/);
    expect(() => loadPrincipals(file({ AKIAROOT000000000001: { arn: 'arn:aws:iam::111122223333:root', policies: [] } }))).toThrow(
      /"policies" cannot be set for the root user/,
    );
  });
});
