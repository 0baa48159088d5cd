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
