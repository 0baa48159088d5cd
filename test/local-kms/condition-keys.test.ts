/**
 * Condition keys in the request context of the local KMS, over HTTP with @aws-sdk/client-kms and
 * SigV4-verified callers. Each test names the AWS documentation page whose rule it checks:
 * - IAM User Guide, "AWS global condition context keys" (which global keys every request carries);
 * - IAM User Guide, "Policy variables", table "Principal key values" (aws:userid, aws:username,
 *   aws:PrincipalType per kind of principal);
 * - KMS Developer Guide, "AWS KMS condition keys" (which kms: keys each operation carries);
 * - KMS Developer Guide, "Controlling access to tags" / "Limiting tag permissions" (aws:TagKeys,
 *   aws:RequestTag on TagResource and UntagResource);
 * - KMS API Reference, CreateKey/PutKeyPolicy `BypassPolicyLockoutSafetyCheck` (the lockout check
 *   evaluates a subsequent PutKeyPolicy).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateGrantCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  EncryptCommand,
  KMSClient,
  PutKeyPolicyCommand,
  TagResourceCommand,
  UntagResourceCommand,
} from '@aws-sdk/client-kms';
import { LocalKms, startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { loadPrincipals } from '../../src/local-kms/principals.js';
import { ACCOUNT, advanceClock, errorOf, expectAwsError, tempDir } from './helpers.js';

const ids = {
  root: { key: 'AKIACONDROOT00000001', secret: 'root-secret-cond-1', arn: `arn:aws:iam::${ACCOUNT}:root` },
  alice: { key: 'AKIACONDALICE0000001', secret: 'alice-secret-cond-1', arn: `arn:aws:iam::${ACCOUNT}:user/dev/alice` },
  bob: { key: 'AKIACONDBOB000000001', secret: 'bob-secret-cond-001', arn: `arn:aws:iam::${ACCOUNT}:user/bob` },
  session: { key: 'AKIACONDSESSION00001', secret: 'session-secret-c-01', arn: `arn:aws:sts::${ACCOUNT}:assumed-role/Deployer/build-42` },
} as const;
type Who = keyof typeof ids;

const tmp = tempDir('lkms-cond-');
let server: LocalKmsServer;

function client(who: Who, opts: { url?: string; userAgent?: string } = {}): KMSClient {
  return new KMSClient({
    endpoint: opts.url ?? server.url,
    region: 'us-east-1',
    credentials: { accessKeyId: ids[who].key, secretAccessKey: ids[who].secret },
    maxAttempts: 1,
    ...(opts.userAgent !== undefined ? { customUserAgent: opts.userAgent } : {}),
  });
}

const rootStatement = { Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: ids.root.arn }, Action: 'kms:*', Resource: '*' };
const policyOf = (...statements: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: [rootStatement, ...statements] });
const encryptFor = (who: Who[], condition?: object, effect: 'Allow' | 'Deny' = 'Allow') => ({
  Effect: effect,
  Principal: { AWS: who.map((w) => ids[w].arn) },
  Action: 'kms:Encrypt',
  Resource: '*',
  ...(condition ? { Condition: condition } : {}),
});

async function keyWith(policy: string): Promise<string> {
  const out = await client('root').send(new CreateKeyCommand({ Policy: policy }));
  return out.KeyMetadata!.KeyId!;
}

const encrypt = (who: Who, keyId: string, opts: { userAgent?: string } = {}) =>
  client(who, opts).send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') }));

beforeAll(async () => {
  const principalsFile = join(tmp.dir, 'principals.json');
  writeFileSync(
    principalsFile,
    JSON.stringify(Object.fromEntries(Object.values(ids).map((p) => [p.key, { arn: p.arn, secretAccessKey: p.secret }]))),
  );
  server = await startLocalKmsServer({ port: 0, principalsFile, accountId: ACCOUNT, testClock: true });
});

afterAll(async () => {
  await server.close();
  tmp.cleanup();
});

describe('global condition keys in every request (IAM User Guide, "AWS global condition context keys")', () => {
  it('aws:CurrentTime and aws:EpochTime come from the server clock, so moving the test clock moves them', async () => {
    const now = Math.floor(Date.now() / 1000);
    const inOneHour = new Date((now + 3600) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const keyId = await keyWith(
      policyOf(
        encryptFor(['alice', 'bob']),
        // Alice's access ends in an hour; Bob's access is valid until the epoch time two hours from now.
        encryptFor(['alice'], { DateGreaterThan: { 'aws:CurrentTime': inOneHour } }, 'Deny'),
        encryptFor(['bob'], { NumericGreaterThan: { 'aws:EpochTime': String(now + 7200) } }, 'Deny'),
      ),
    );
    await encrypt('alice', keyId);
    await encrypt('bob', keyId);
    await advanceClock(server.url, 5400, { accessKeyId: ids.root.key, secretAccessKey: ids.root.secret }); // 1.5 h later
    await expectAwsError(encrypt('alice', keyId), 'AccessDeniedException');
    await encrypt('bob', keyId);
    await advanceClock(server.url, 3600, { accessKeyId: ids.root.key, secretAccessKey: ids.root.secret }); // 2.5 h later
    await expectAwsError(encrypt('bob', keyId), 'AccessDeniedException');
  });

  it('aws:SecureTransport is false over plain HTTP: an Allow on it matches, a Deny on true does not', async () => {
    const keyId = await keyWith(
      policyOf(encryptFor(['alice'], { Bool: { 'aws:SecureTransport': 'false' } }), encryptFor(['bob'], { Bool: { 'aws:SecureTransport': 'true' } })),
    );
    await encrypt('alice', keyId);
    await expectAwsError(encrypt('bob', keyId), 'AccessDeniedException');
  });

  it('aws:SourceIp, aws:RequestedRegion, aws:UserAgent and aws:ViaAWSService describe the request as it arrived', async () => {
    const keyId = await keyWith(
      policyOf(
        encryptFor(['alice'], {
          IpAddress: { 'aws:SourceIp': '127.0.0.0/8' },
          StringEquals: { 'aws:RequestedRegion': 'us-east-1' },
          StringLike: { 'aws:UserAgent': '*orders-service/1.0*' },
          Bool: { 'aws:ViaAWSService': 'false', 'aws:PrincipalIsAWSService': 'false' },
        }),
        // The documented "deny outside the network" statement: a request from 127.0.0.1 is inside.
        encryptFor(['alice'], { NotIpAddress: { 'aws:SourceIp': '127.0.0.0/8' } }, 'Deny'),
        // "Deny every Region but us-east-1": the request is for us-east-1, so it does not apply.
        encryptFor(['alice'], { StringNotEquals: { 'aws:RequestedRegion': 'us-east-1' } }, 'Deny'),
      ),
    );
    await encrypt('alice', keyId, { userAgent: 'orders-service/1.0' });
    await expectAwsError(encrypt('alice', keyId, { userAgent: 'other-app/2.0' }), 'AccessDeniedException');
  });

  it('aws:username is the IAM user name (no path), absent for the root user and role sessions (IAM User Guide, "Policy variables", "Principal key values")', async () => {
    const keyId = await keyWith(
      policyOf(
        encryptFor(['alice', 'bob', 'session']),
        encryptFor(['alice', 'bob', 'session'], { StringEquals: { 'aws:username': 'alice' } }, 'Deny'),
        // Present for users only: a Null check on it tells users from sessions.
        { ...encryptFor(['session'], { Null: { 'aws:username': 'false' } }, 'Deny') },
      ),
    );
    await expectAwsError(encrypt('alice', keyId), 'AccessDeniedException');
    await encrypt('bob', keyId);
    await encrypt('session', keyId);
  });

  it('aws:userid has the AWS form: the AIDA... id of a user, role-id:session of a role session, the account id of root', async () => {
    const keyId = await keyWith(
      policyOf(
        encryptFor(['alice'], { StringLike: { 'aws:userid': 'AIDA*' } }),
        encryptFor(['session'], { StringLike: { 'aws:userid': 'AROA*:build-42' } }),
        { ...encryptFor(['root'], { StringEquals: { 'aws:userid': ACCOUNT } }, 'Deny'), Action: 'kms:DescribeKey' },
      ),
    );
    await encrypt('alice', keyId);
    await encrypt('session', keyId);
    await expectAwsError(client('root').send(new DescribeKeyCommand({ KeyId: keyId })), 'AccessDeniedException');
  });

  it('aws:PrincipalType and aws:PrincipalArn: User, AssumedRole (with the role ARN), Account', async () => {
    const keyId = await keyWith(
      policyOf(
        encryptFor(['alice'], { StringEquals: { 'aws:PrincipalType': 'User' } }),
        encryptFor(['session'], { StringEquals: { 'aws:PrincipalType': 'AssumedRole' }, ArnLike: { 'aws:PrincipalArn': `arn:aws:iam::${ACCOUNT}:role/Deployer` } }),
      ),
    );
    await encrypt('alice', keyId);
    await encrypt('session', keyId);
  });
});

describe('operation condition keys (KMS Developer Guide, "AWS KMS condition keys")', () => {
  it('kms:BypassPolicyLockoutSafetyCheck on PutKeyPolicy: the documented Deny stops a bypass, the documented Null Allow admits only requests without the parameter', async () => {
    const keyId = await keyWith(
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { ...rootStatement, Action: 'kms:*' },
          { Effect: 'Deny', Principal: { AWS: ids.root.arn }, Action: ['kms:PutKeyPolicy'], Resource: '*', Condition: { Bool: { 'kms:BypassPolicyLockoutSafetyCheck': 'true' } } },
          { Effect: 'Allow', Principal: { AWS: ids.alice.arn }, Action: 'kms:PutKeyPolicy', Resource: '*', Condition: { Null: { 'kms:BypassPolicyLockoutSafetyCheck': 'true' } } },
        ],
      }),
    );
    // A policy that leaves root without PutKeyPolicy: only a bypass could set it, and the Deny stops it.
    const lockout = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: ids.bob.arn }, Action: 'kms:*', Resource: '*' }] });
    await expectAwsError(
      client('root').send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: lockout, BypassPolicyLockoutSafetyCheck: true })),
      'AccessDeniedException',
    );
    const keep = policyOf({ Effect: 'Allow', Principal: { AWS: ids.alice.arn }, Action: 'kms:PutKeyPolicy', Resource: '*', Condition: { Null: { 'kms:BypassPolicyLockoutSafetyCheck': 'true' } } });
    // Alice may change the policy without the parameter, not with it (even when false).
    await expectAwsError(
      client('alice').send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: keep, BypassPolicyLockoutSafetyCheck: false })),
      'AccessDeniedException',
    );
    // The SDK leaves BypassPolicyLockoutSafetyCheck out when it is not set.
    await client('alice').send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: keep }));
  });

  it('aws:TagKeys and aws:RequestTag/<key> on TagResource, aws:TagKeys on UntagResource (Developer Guide, "Limiting tag permissions")', async () => {
    const keyId = await keyWith(
      policyOf(
        {
          Effect: 'Allow',
          Principal: { AWS: ids.alice.arn },
          Action: ['kms:TagResource', 'kms:UntagResource'],
          Resource: '*',
          Condition: { 'ForAllValues:StringEquals': { 'aws:TagKeys': ['Project', 'Owner'] } },
        },
        { Effect: 'Deny', Principal: { AWS: ids.alice.arn }, Action: 'kms:TagResource', Resource: '*', Condition: { StringEquals: { 'aws:RequestTag/Project': 'Secret' } } },
      ),
    );
    const tag = (tags: Record<string, string>) =>
      client('alice').send(new TagResourceCommand({ KeyId: keyId, Tags: Object.entries(tags).map(([TagKey, TagValue]) => ({ TagKey, TagValue })) }));
    await tag({ Project: 'Alpha', Owner: 'alice' });
    await expectAwsError(tag({ Project: 'Alpha', CostCenter: '42' }), 'AccessDeniedException');
    // The tag key in aws:RequestTag/<key> is not case sensitive (IAM: aws:RequestTag).
    await expectAwsError(tag({ project: 'Secret' }), 'AccessDeniedException');
    await client('alice').send(new UntagResourceCommand({ KeyId: keyId, TagKeys: ['Owner'] }));
    await expectAwsError(client('alice').send(new UntagResourceCommand({ KeyId: keyId, TagKeys: ['Owner', 'CostCenter'] })), 'AccessDeniedException');
  });

  it('ForAllValues with aws:RequestTag is refused as an overly permissive condition, as KMS refuses it for kms:EncryptionContext:<key>', async () => {
    const p = policyOf({
      Effect: 'Allow',
      Principal: { AWS: ids.alice.arn },
      Action: 'kms:TagResource',
      Resource: '*',
      Condition: { 'ForAllValues:StringEquals': { 'aws:RequestTag/Project': 'Alpha' } },
    });
    const e = await expectAwsError(client('root').send(new CreateKeyCommand({ Policy: p })), 'MalformedPolicyDocumentException');
    expect(e.message).toMatch(/^OverlyPermissiveCondition/);
    const keyId = await keyWith(policyOf());
    await expectAwsError(client('root').send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: p })), 'MalformedPolicyDocumentException');
  });

  it('CreateGrant carries kms:EncryptionContext:<key> and kms:EncryptionContextKeys from the grant constraint', async () => {
    const keyId = await keyWith(
      policyOf({
        Effect: 'Allow',
        Principal: { AWS: ids.alice.arn },
        Action: 'kms:CreateGrant',
        Resource: '*',
        Condition: {
          StringEquals: { 'kms:EncryptionContext:tenant': 'alpha' },
          'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['tenant'] },
        },
      }),
    );
    const grant = (constraints?: { EncryptionContextEquals?: Record<string, string>; EncryptionContextSubset?: Record<string, string> }) =>
      client('alice').send(
        new CreateGrantCommand({ KeyId: keyId, GranteePrincipal: ids.bob.arn, Operations: ['Decrypt'], ...(constraints ? { Constraints: constraints } : {}) }),
      );
    await grant({ EncryptionContextSubset: { tenant: 'alpha' } });
    await grant({ EncryptionContextEquals: { tenant: 'alpha' } });
    await expectAwsError(grant({ EncryptionContextSubset: { tenant: 'beta' } }), 'AccessDeniedException');
    await expectAwsError(grant({ EncryptionContextSubset: { tenant: 'alpha', extra: 'x' } }), 'AccessDeniedException');
    await expectAwsError(grant(), 'AccessDeniedException');
  });
});

describe('policy lockout safety check (API Reference, PutKeyPolicy/CreateKey BypassPolicyLockoutSafetyCheck)', () => {
  // A Deny that only a real request context triggers: with the key's own condition keys, root can
  // never call PutKeyPolicy on an AWS_KMS key under this policy.
  const denyOnOrigin = policyOf({
    Effect: 'Deny',
    Principal: { AWS: ids.root.arn },
    Action: 'kms:PutKeyPolicy',
    Resource: '*',
    Condition: { StringEquals: { 'kms:KeyOrigin': 'AWS_KMS' } },
  });

  it('refuses a policy that locks the caller out through the key\'s own condition keys (CreateKey and PutKeyPolicy)', async () => {
    const e = await expectAwsError(client('root').send(new CreateKeyCommand({ Policy: denyOnOrigin })), 'MalformedPolicyDocumentException');
    expect(e.message).toMatch(/will not allow you to update the key policy/);
    const keyId = await keyWith(policyOf());
    await expectAwsError(client('root').send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: denyOnOrigin })), 'MalformedPolicyDocumentException');
    // Bypassing the check is still possible, and then the caller is locked out, as AWS warns.
    await client('root').send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: denyOnOrigin, BypassPolicyLockoutSafetyCheck: true }));
    await expectAwsError(client('root').send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: policyOf() })), 'AccessDeniedException');
  });

  it('accepts a policy whose PutKeyPolicy permission depends on the key\'s own condition keys or the caller\'s global keys', async () => {
    const scoped = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { AWS: ids.alice.arn },
          Action: 'kms:*',
          Resource: '*',
          Condition: { StringEquals: { 'kms:KeySpec': 'SYMMETRIC_DEFAULT', 'kms:KeyUsage': 'ENCRYPT_DECRYPT', 'aws:username': 'alice' }, Bool: { 'kms:MultiRegion': 'false' } },
        },
      ],
    });
    const out = await client('alice').send(new CreateKeyCommand({ Policy: scoped }));
    await client('alice').send(new PutKeyPolicyCommand({ KeyId: out.KeyMetadata!.KeyId!, PolicyName: 'default', Policy: scoped }));
    // The same policy on an RSA key would lock Alice out: refused.
    await expectAwsError(client('alice').send(new CreateKeyCommand({ Policy: scoped, KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' })), 'MalformedPolicyDocumentException');
  });
});

describe('principal attributes from the principals file (IAM User Guide, "AWS global condition context keys": aws:userid, aws:PrincipalTag)', () => {
  it('an entry\'s userId and tags become aws:userid and aws:PrincipalTag/<key>', async () => {
    const dir = tempDir('lkms-cond-tags-');
    const file = join(dir.dir, 'principals.json');
    writeFileSync(
      file,
      JSON.stringify({
        [ids.root.key]: { arn: ids.root.arn, secretAccessKey: ids.root.secret },
        [ids.alice.key]: { arn: ids.alice.arn, secretAccessKey: ids.alice.secret, userId: 'AIDAJ45Q7YFFAREXAMPLE', tags: { team: 'payments', Env: 'dev' } },
        [ids.session.key]: { arn: ids.session.arn, secretAccessKey: ids.session.secret, userId: 'AROAIDPPEZS35WEXAMPLE', tags: { team: 'platform' } },
      }),
    );
    const tagged = await startLocalKmsServer({ port: 0, principalsFile: file, accountId: ACCOUNT });
    try {
      const as = (who: Who) => client(who, { url: tagged.url });
      const policy = policyOf(
        encryptFor(['alice'], { StringEquals: { 'aws:userid': 'AIDAJ45Q7YFFAREXAMPLE', 'aws:PrincipalTag/team': 'payments', 'aws:principaltag/env': 'dev' } }),
        encryptFor(['session'], { StringEquals: { 'aws:userid': 'AROAIDPPEZS35WEXAMPLE:build-42', 'aws:PrincipalTag/team': 'payments' } }),
      );
      const keyId = (await as('root').send(new CreateKeyCommand({ Policy: policy }))).KeyMetadata!.KeyId!;
      await as('alice').send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') }));
      await expectAwsError(as('session').send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') })), 'AccessDeniedException');
    } finally {
      await tagged.close();
      dir.cleanup();
    }
  });
});

describe('in-process requests (LocalKms client origin)', () => {
  it('carry the documented in-process origin, and a client may describe another one (aws:SourceIp, aws:SecureTransport, aws:RequestedRegion)', async () => {
    const local = new LocalKms({ accountId: ACCOUNT });
    try {
      const policy = policyOf(
        encryptFor(['alice'], { Bool: { 'aws:SecureTransport': 'true' }, StringEquals: { 'aws:RequestedRegion': 'us-east-1', 'aws:UserAgent': 'kms-envelope-local-kms/in-process' } }),
        encryptFor(['alice'], { NotIpAddress: { 'aws:SourceIp': '127.0.0.1/32' } }, 'Deny'),
      );
      const { keyId } = await local.createKey({ Policy: policy });
      const alice = local.client({ caller: ids.alice.arn });
      await alice.call('Encrypt', { KeyId: keyId, Plaintext: Buffer.from('x') });
      const remote = local.client({ caller: ids.alice.arn, origin: { sourceIp: '203.0.113.7' } });
      expect(await errorOf(remote.call('Encrypt', { KeyId: keyId, Plaintext: Buffer.from('x') }))).toBe('AccessDeniedException');
      const plain = local.client({ caller: ids.alice.arn, origin: { secureTransport: false } });
      expect(await errorOf(plain.call('Encrypt', { KeyId: keyId, Plaintext: Buffer.from('x') }))).toBe('AccessDeniedException');
      expect(() => local.client({ origin: { sourceIp: 'not-an-ip' } })).toThrow(/origin\.sourceIp/);
    } finally {
      local.close();
    }
  });
});

describe('principals file attributes are checked when the file is loaded', () => {
  const dir = tempDir('lkms-cond-load-');
  afterAll(() => dir.cleanup());
  let n = 0;
  const load = (entry: object) => {
    const file = join(dir.dir, `p${n++}.json`);
    writeFileSync(file, JSON.stringify({ AKIACONDLOADTEST0001: entry }));
    return () => loadPrincipals(file);
  };
  it('refuses a userId of the wrong kind or shape, and tags AWS would refuse, naming the entry', () => {
    const user = `arn:aws:iam::${ACCOUNT}:user/alice`;
    expect(load({ arn: user, userId: 'AROAJ45Q7YFFAREXAMPLE' })).toThrow(/AKIACONDLOADTEST0001.*userId.*AIDA/);
    expect(load({ arn: user, userId: 'AIDAj45' })).toThrow(/userId/);
    expect(load({ arn: ids.root.arn, userId: 'AIDAJ45Q7YFFAREXAMPLE' })).toThrow(/root/);
    expect(load({ arn: ids.root.arn, tags: { team: 'x' } })).toThrow(/root/);
    expect(load({ arn: user, tags: { 'aws:team': 'x' } })).toThrow(/aws:/);
    expect(load({ arn: user, tags: { Team: 'a', team: 'b' } })).toThrow(/case/);
    expect(load({ arn: user, tags: { team: 5 } })).toThrow(/string value/);
    expect(load({ arn: user, tags: ['team'] })).toThrow(/tags/);
    expect(load({ arn: ids.session.arn, userId: 'AROAJ45Q7YFFAREXAMPLE', tags: { team: 'x' } })()).toBeInstanceOf(Map);
  });
});
