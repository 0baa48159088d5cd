/**
 * IAM identity policies in the local KMS (principals-file entries with `policies`), over HTTP with
 * @aws-sdk/client-kms and SigV4-verified callers. Each test names the AWS documentation page whose
 * rule it follows:
 * - IAM User Guide, "Policy evaluation logic" and "Troubleshoot access denied error messages";
 * - KMS Developer Guide, "Default key policy" ("Allows access to the AWS account and enables IAM
 *   policies"), "Using IAM policies with AWS KMS", "Best practices for IAM policies" ("When to use
 *   Resource *"), "AWS KMS permissions", "AWS KMS condition keys", "Controlling access to tags",
 *   "Using tags to control access to KMS keys", "Controlling access to aliases", "Troubleshooting
 *   key access", "Allowing users in other accounts to use a KMS key";
 * - KMS API Reference: CreateKey ("To use the Tags parameter, kms:TagResource"), ListRetirableGrants.
 *
 * The keys are made first by the account root on a server without principals, then a server with
 * the principals file (whose identity policies name those keys' ARNs) opens the same data directory.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateAliasCommand,
  CreateGrantCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteAliasCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateRandomCommand,
  KMSClient,
  ListAliasesCommand,
  ListKeysCommand,
  ListRetirableGrantsCommand,
  PutKeyPolicyCommand,
  UpdateAliasCommand,
} from '@aws-sdk/client-kms';
import { startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { ACCOUNT, ROOT_ARN, expectAwsError, tempDir } from './helpers.js';

const OTHER = '444455556666';
const REGION_ARN = `arn:aws:kms:us-east-1:${ACCOUNT}`;

type Doc = Record<string, unknown>;
const allow = (Action: string | string[], Resource: string | string[], Condition?: object): Doc => ({
  Effect: 'Allow',
  Action,
  Resource,
  ...(Condition ? { Condition } : {}),
});
const deny = (Action: string | string[], Resource: string | string[], Condition?: object): Doc => ({ ...allow(Action, Resource, Condition), Effect: 'Deny' });
const policy = (...Statement: Doc[]) => ({ Version: '2012-10-17', Statement });

const tmp = tempDir('lkms-iam-');
let server: LocalKmsServer;
const keys: Record<string, string> = {};
const arnOf = (name: string) => `${REGION_ARN}:key/${keys[name]}`;
let grantCiphertext: Uint8Array;

interface Who {
  key: string;
  secret: string;
  arn: string;
  policies?: (keyArns: typeof arnOf) => Doc[];
}
const who = {
  root: { key: 'AKIAIAMROOT000000001', secret: 'iam-root-secret', arn: ROOT_ARN },
  // No `policies`: IAM is not modelled for bob, he behaves exactly as before.
  bob: { key: 'AKIAIAMBOB0000000001', secret: 'iam-bob-secret', arn: `arn:aws:iam::${ACCOUNT}:user/bob` },
  // `policies: []`: IAM is modelled and allows nothing.
  carol: { key: 'AKIAIAMCAROL00000001', secret: 'iam-carol-secret', arn: `arn:aws:iam::${ACCOUNT}:user/carol`, policies: () => [] },
  alice: {
    key: 'AKIAIAMALICE00000001',
    secret: 'iam-alice-secret',
    arn: `arn:aws:iam::${ACCOUNT}:user/alice`,
    policies: (k: typeof arnOf) => [policy(allow(['kms:Encrypt', 'kms:Decrypt'], [k('default'), k('noDelegate')]))],
  },
  creator: {
    key: 'AKIAIAMCREATOR000001',
    secret: 'iam-creator-secret',
    arn: `arn:aws:iam::${ACCOUNT}:user/creator`,
    policies: () => [
      policy(allow('kms:CreateKey', '*'), allow('kms:PutKeyPolicy', `arn:aws:kms:*:${ACCOUNT}:key/*`)),
      // Developer Guide, "AWS KMS condition keys", kms:BypassPolicyLockoutSafetyCheck: the example IAM statement.
      policy(deny(['kms:CreateKey', 'kms:PutKeyPolicy'], '*', { Bool: { 'kms:BypassPolicyLockoutSafetyCheck': true } })),
    ],
  },
  symm: {
    key: 'AKIAIAMSYMM000000001',
    secret: 'iam-symm-secret',
    arn: `arn:aws:iam::${ACCOUNT}:user/symm`,
    policies: () => [policy(allow('kms:CreateKey', '*', { StringEquals: { 'kms:KeySpec': 'SYMMETRIC_DEFAULT' } }))],
  },
  tagger: {
    key: 'AKIAIAMTAGGER0000001',
    secret: 'iam-tagger-secret',
    arn: `arn:aws:iam::${ACCOUNT}:user/tagger`,
    policies: () => [
      policy(
        allow('kms:CreateKey', '*', { StringEquals: { 'aws:RequestTag/Project': 'Alpha' }, 'ForAllValues:StringEquals': { 'aws:TagKeys': ['Project'] } }),
        allow('kms:TagResource', `arn:aws:kms:*:${ACCOUNT}:key/*`),
      ),
    ],
  },
  notag: {
    key: 'AKIAIAMNOTAG00000001',
    secret: 'iam-notag-secret',
    arn: `arn:aws:iam::${ACCOUNT}:user/notag`,
    policies: () => [policy(allow('kms:CreateKey', '*'))],
  },
  denier: {
    key: 'AKIAIAMDENIER0000001',
    secret: 'iam-denier-secret',
    arn: `arn:aws:iam::${ACCOUNT}:user/denier`,
    policies: () => [policy(allow('kms:*', '*'), deny(['kms:Encrypt', 'kms:Decrypt'], '*'))],
  },
  alpha: {
    key: 'AKIAIAMALPHA00000001',
    secret: 'iam-alpha-secret',
    arn: `arn:aws:sts::${ACCOUNT}:assumed-role/Alpha/worker-1`,
    // Developer Guide, "Using tags to control access to KMS keys": IAMPolicyWithResourceTag.
    policies: () => [policy(allow(['kms:GenerateDataKey', 'kms:Decrypt'], `arn:aws:kms:us-east-1:${ACCOUNT}:key/*`, { StringEquals: { 'aws:ResourceTag/Project': 'Alpha' } }))],
  },
  finance: {
    key: 'AKIAIAMFINANCE000001',
    secret: 'iam-finance-secret',
    arn: `arn:aws:iam::${ACCOUNT}:user/finance`,
    // Developer Guide, "AWS KMS condition keys", kms:ResourceAliases: AliasBasedIAMPolicy.
    policies: () => [policy(allow('kms:GenerateDataKey', `arn:aws:kms:*:${ACCOUNT}:key/*`, { 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': 'alias/finance-key' } }))],
  },
  lister: {
    key: 'AKIAIAMLISTER0000001',
    secret: 'iam-lister-secret',
    arn: `arn:aws:iam::${ACCOUNT}:user/lister`,
    policies: () => [policy(allow('kms:ListKeys', `arn:aws:kms:us-east-1:${ACCOUNT}:*`), allow('kms:ListAliases', '*'), allow('kms:GenerateRandom', `${REGION_ARN}:key/*`))],
  },
  aliaser: {
    key: 'AKIAIAMALIASER000001',
    secret: 'iam-aliaser-secret',
    arn: `arn:aws:iam::${ACCOUNT}:user/aliaser`,
    policies: () => [
      policy(
        allow(['kms:CreateAlias', 'kms:UpdateAlias', 'kms:DeleteAlias'], `${REGION_ARN}:alias/test-*`),
        allow(['kms:CreateAlias', 'kms:UpdateAlias', 'kms:DeleteAlias'], `${REGION_ARN}:key/*`),
      ),
    ],
  },
  retiree: {
    key: 'AKIAIAMRETIREE000001',
    secret: 'iam-retiree-secret',
    arn: `arn:aws:iam::${ACCOUNT}:user/retiree`,
    policies: () => [policy(allow('kms:ListRetirableGrants', `arn:aws:iam::${ACCOUNT}:user/retiree`))],
  },
  ext: { key: 'AKIAIAMEXT0000000001', secret: 'iam-ext-secret', arn: `arn:aws:iam::${OTHER}:user/ext`, policies: () => [] },
  ext2: {
    key: 'AKIAIAMEXT0000000002',
    secret: 'iam-ext2-secret',
    arn: `arn:aws:iam::${OTHER}:user/ext2`,
    policies: (k: typeof arnOf) => [policy(allow('kms:Encrypt', k('xacct')))],
  },
  ext3: { key: 'AKIAIAMEXT0000000003', secret: 'iam-ext3-secret', arn: `arn:aws:iam::${OTHER}:user/ext3` },
} satisfies Record<string, Who>;
type Name = keyof typeof who;

const clients = new Map<Name, KMSClient>();
function kms(name: Name): KMSClient {
  let c = clients.get(name);
  if (!c) {
    c = new KMSClient({
      endpoint: server.url,
      region: 'us-east-1',
      credentials: { accessKeyId: who[name].key, secretAccessKey: who[name].secret },
      maxAttempts: 1,
    });
    clients.set(name, c);
  }
  return c;
}

const rootStatement = { Sid: 'Enable IAM policies', Effect: 'Allow', Principal: { AWS: ROOT_ARN }, Action: 'kms:*', Resource: '*' };
const keyPolicy = (...statements: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements });
const denied = (name: Name, action: string, resource: string, why: 'identity' | 'resource', explicit = false) =>
  `User: ${who[name].arn} is not authorized to perform: ${action} on resource: ${resource} ` +
  (explicit ? `with an explicit deny in ${why === 'identity' ? 'an identity-based' : 'a resource-based'} policy` : `because no ${why}-based policy allows the ${action} action`);

async function expectDenied(p: Promise<unknown>, message: string): Promise<void> {
  const e = await expectAwsError(p, 'AccessDeniedException');
  expect(e.message).toBe(message);
}

beforeAll(async () => {
  const dataDir = join(tmp.dir, 'data');
  // 1. The account root makes the keys (no principals file: every caller is the root).
  const setup = await startLocalKmsServer({ port: 0, dataDir });
  const rootClient = new KMSClient({ endpoint: setup.url, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
  const make = async (name: string, input: ConstructorParameters<typeof CreateKeyCommand>[0] = {}) => {
    keys[name] = (await rootClient.send(new CreateKeyCommand(input))).KeyMetadata!.KeyId!;
  };
  await make('default');
  await make('noDelegate', {
    // No statement for the account: IAM policies cannot give access to this key.
    Policy: keyPolicy({ Effect: 'Allow', Principal: { AWS: who.alice.arn }, Action: 'kms:DescribeKey', Resource: '*' }),
    BypassPolicyLockoutSafetyCheck: true,
  });
  await make('direct', {
    Policy: keyPolicy(rootStatement, { Effect: 'Allow', Principal: { AWS: who.denier.arn }, Action: 'kms:Encrypt', Resource: '*' }),
  });
  await make('alpha', { Tags: [{ TagKey: 'Project', TagValue: 'Alpha' }] });
  await make('beta', { Tags: [{ TagKey: 'Project', TagValue: 'Beta' }] });
  await make('finance');
  await make('aliasTarget');
  await make('aliasTarget2');
  await make('xacct', {
    Policy: keyPolicy(rootStatement, {
      Effect: 'Allow',
      Principal: { AWS: [who.ext.arn, who.ext2.arn, who.ext3.arn] },
      Action: 'kms:Encrypt',
      Resource: '*',
    }),
  });
  await rootClient.send(new CreateAliasCommand({ AliasName: 'alias/finance-key', TargetKeyId: keys.finance }));
  await rootClient.send(new CreateAliasCommand({ AliasName: 'alias/test-existing', TargetKeyId: keys.aliasTarget }));
  await rootClient.send(new CreateAliasCommand({ AliasName: 'alias/prod-existing', TargetKeyId: keys.aliasTarget }));
  // A grant to the denier for Decrypt; its ciphertext for the grant test.
  await rootClient.send(new CreateGrantCommand({ KeyId: keys.direct, GranteePrincipal: who.denier.arn, Operations: ['Decrypt'] }));
  await rootClient.send(new CreateGrantCommand({ KeyId: keys.finance, GranteePrincipal: who.lister.arn, RetiringPrincipal: who.retiree.arn, Operations: ['Encrypt'] }));
  grantCiphertext = (await rootClient.send(new EncryptCommand({ KeyId: keys.direct, Plaintext: Buffer.from('granted') }))).CiphertextBlob!;
  await setup.close();

  // 2. The principals file, whose identity policies name the keys' ARNs.
  const principalsFile = join(tmp.dir, 'principals.json');
  const file = Object.fromEntries(
    Object.values(who).map((w: Who) => [w.key, { arn: w.arn, secretAccessKey: w.secret, ...(w.policies ? { policies: w.policies(arnOf) } : {}) }]),
  );
  writeFileSync(principalsFile, JSON.stringify(file, null, 2));
  server = await startLocalKmsServer({ port: 0, dataDir, principalsFile });
});

afterAll(async () => {
  await server?.close();
  tmp.cleanup();
});

const encrypt = (name: Name, key: string) => kms(name).send(new EncryptCommand({ KeyId: keys[key] ?? key, Plaintext: Buffer.from('x') }));

describe('key operations: the key policy delegates to IAM through the account principal', () => {
  it('default key policy: an IAM user whose identity policy allows kms:Encrypt on the key ARN may encrypt, one whose policies do not is refused (Developer Guide, "Default key policy": "Allows access to the AWS account and enables IAM policies")', async () => {
    const out = await encrypt('alice', 'default');
    await kms('alice').send(new DecryptCommand({ CiphertextBlob: out.CiphertextBlob! }));
    // Carol's policies allow nothing; the key policy delegates, so what is missing is an identity-based Allow.
    await expectDenied(encrypt('carol', 'default'), denied('carol', 'kms:Encrypt', arnOf('default'), 'identity'));
    // Alice's policy names other keys only.
    await expectDenied(encrypt('alice', 'beta'), denied('alice', 'kms:Encrypt', arnOf('beta'), 'identity'));
  });

  it('a key policy without the account statement makes IAM policies ineffective (Developer Guide, "Default key policy": "Without this permission, IAM policies that allow access to the key are ineffective")', async () => {
    await expectDenied(encrypt('alice', 'noDelegate'), denied('alice', 'kms:Encrypt', arnOf('noDelegate'), 'resource'));
  });

  it('an explicit Deny in an identity policy overrides a key-policy Allow naming the caller and a grant (IAM User Guide, "Policy evaluation logic"; Developer Guide, "Troubleshooting key access")', async () => {
    await expectDenied(encrypt('denier', 'direct'), denied('denier', 'kms:Encrypt', arnOf('direct'), 'identity', true));
    await expectDenied(
      kms('denier').send(new DecryptCommand({ CiphertextBlob: grantCiphertext })),
      denied('denier', 'kms:Decrypt', arnOf('direct'), 'identity', true),
    );
    // What the Deny does not cover still goes through the delegation.
    await kms('denier').send(new DescribeKeyCommand({ KeyId: keys.direct }));
  });

  it('aws:ResourceTag/<key> is in the request context of identity policies (Developer Guide, "Using tags to control access to KMS keys")', async () => {
    await kms('alpha').send(new GenerateDataKeyCommand({ KeyId: keys.alpha, KeySpec: 'AES_256' }));
    await expectDenied(
      kms('alpha').send(new GenerateDataKeyCommand({ KeyId: keys.beta, KeySpec: 'AES_256' })),
      denied('alpha', 'kms:GenerateDataKey', arnOf('beta'), 'identity'),
    );
  });

  it('kms:ResourceAliases is in the request context of identity policies, however the request names the key (Developer Guide, "AWS KMS condition keys", kms:ResourceAliases)', async () => {
    await kms('finance').send(new GenerateDataKeyCommand({ KeyId: keys.finance, KeySpec: 'AES_256' }));
    await kms('finance').send(new GenerateDataKeyCommand({ KeyId: 'alias/finance-key', KeySpec: 'AES_256' }));
    await expectDenied(
      kms('finance').send(new GenerateDataKeyCommand({ KeyId: keys.alpha, KeySpec: 'AES_256' })),
      denied('finance', 'kms:GenerateDataKey', arnOf('alpha'), 'identity'),
    );
  });

  it('a principal in another account needs the key policy AND its own identity policy; without `policies` its IAM is unknown, so the key policy alone does not allow it (Developer Guide, "Allowing users in other accounts to use a KMS key": "Neither the key policy nor the IAM policy alone is sufficient")', async () => {
    // Across accounts the key is named by its ARN (API Reference, Encrypt `KeyId`); a bare key id
    // is looked up in the caller's own account.
    const arn = arnOf('xacct');
    await expectDenied(encrypt('ext', arn), denied('ext', 'kms:Encrypt', arn, 'identity'));
    await encrypt('ext2', arn);
    await expectAwsError(encrypt('ext2', 'xacct'), 'NotFoundException');
    await expectDenied(encrypt('ext3', arn), denied('ext3', 'kms:Encrypt', arn, 'identity'));
  });

  it('kms:BypassPolicyLockoutSafetyCheck: the documented IAM Deny stops PutKeyPolicy with a bypass; without one the delegated PutKeyPolicy goes through (Developer Guide, "AWS KMS condition keys")', async () => {
    const { KeyMetadata } = await kms('creator').send(new CreateKeyCommand({}));
    const arn = KeyMetadata!.Arn!;
    await expectDenied(
      kms('creator').send(new PutKeyPolicyCommand({ KeyId: arn, PolicyName: 'default', Policy: keyPolicy(rootStatement), BypassPolicyLockoutSafetyCheck: true })),
      denied('creator', 'kms:PutKeyPolicy', arn, 'identity', true),
    );
    await kms('creator').send(new PutKeyPolicyCommand({ KeyId: arn, PolicyName: 'default', Policy: keyPolicy(rootStatement) }));
  });
});

describe('operations AWS authorizes with IAM policies only', () => {
  it('CreateKey: the Developer Guide\'s IAM statement that denies kms:BypassPolicyLockoutSafetyCheck true (Developer Guide, "AWS KMS condition keys")', async () => {
    const policyText = keyPolicy(rootStatement);
    await expectDenied(
      kms('creator').send(new CreateKeyCommand({ Policy: policyText, BypassPolicyLockoutSafetyCheck: true })),
      denied('creator', 'kms:CreateKey', '*', 'identity', true),
    );
    await kms('creator').send(new CreateKeyCommand({ Policy: policyText }));
    await kms('creator').send(new CreateKeyCommand({ Policy: policyText, BypassPolicyLockoutSafetyCheck: false }));
  });

  it('CreateKey allowed only for kms:KeySpec SYMMETRIC_DEFAULT, which also holds when the request leaves KeySpec to its default (Developer Guide, "AWS KMS condition keys", kms:KeySpec)', async () => {
    await kms('symm').send(new CreateKeyCommand({}));
    await kms('symm').send(new CreateKeyCommand({ KeySpec: 'SYMMETRIC_DEFAULT' }));
    const message = denied('symm', 'kms:CreateKey', '*', 'identity');
    await expectDenied(kms('symm').send(new CreateKeyCommand({ KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' })), message);
    // kms:KeySpec and the deprecated CustomerMasterKeySpec parameter name the same property.
    await expectDenied(kms('symm').send(new CreateKeyCommand({ CustomerMasterKeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' })), message);
  });

  it('CreateKey with aws:RequestTag/<key> and aws:TagKeys; Tags also need kms:TagResource in an IAM policy (Developer Guide, "Controlling access to tags"; API Reference, CreateKey)', async () => {
    await kms('tagger').send(new CreateKeyCommand({ Tags: [{ TagKey: 'Project', TagValue: 'Alpha' }] }));
    const message = denied('tagger', 'kms:CreateKey', '*', 'identity');
    await expectDenied(kms('tagger').send(new CreateKeyCommand({ Tags: [{ TagKey: 'Project', TagValue: 'Beta' }] })), message);
    await expectDenied(
      kms('tagger').send(new CreateKeyCommand({ Tags: [{ TagKey: 'Project', TagValue: 'Alpha' }, { TagKey: 'Owner', TagValue: 'me' }] })),
      message,
    );
    // No Tags: no aws:RequestTag/Project in the request, so the StringEquals condition does not hold.
    await expectDenied(kms('tagger').send(new CreateKeyCommand({})), message);
    // kms:CreateKey alone creates keys but cannot tag them.
    await kms('notag').send(new CreateKeyCommand({}));
    await expectDenied(
      kms('notag').send(new CreateKeyCommand({ Tags: [{ TagKey: 'Project', TagValue: 'Alpha' }] })),
      `User: ${who.notag.arn} is not authorized to perform: kms:TagResource because no identity-based policy allows the kms:TagResource action`,
    );
  });

  it('CreateKey by an IAM principal: the lockout safety check counts the account statement, which delegates PutKeyPolicy to IAM (Developer Guide, "Default key policy")', async () => {
    await kms('creator').send(new CreateKeyCommand({ Policy: keyPolicy(rootStatement) }));
    const other = keyPolicy({ Effect: 'Allow', Principal: { AWS: who.bob.arn }, Action: 'kms:*', Resource: '*' });
    await expectAwsError(kms('creator').send(new CreateKeyCommand({ Policy: other })), 'MalformedPolicyDocumentException');
  });

  it('ListKeys, ListAliases and GenerateRandom need an identity-based Allow on "*" or the account (Developer Guide, "Best practices for IAM policies", "When to use Resource *"; "AWS KMS permissions", Resources)', async () => {
    await kms('lister').send(new ListKeysCommand({}));
    await kms('lister').send(new ListAliasesCommand({}));
    // A key ARN pattern is not the "*" resource GenerateRandom is authorized on.
    await expectDenied(kms('lister').send(new GenerateRandomCommand({ NumberOfBytes: 8 })), denied('lister', 'kms:GenerateRandom', '*', 'identity'));
    for (const [op, action] of [
      [new ListKeysCommand({}), 'kms:ListKeys'],
      [new ListAliasesCommand({}), 'kms:ListAliases'],
      [new GenerateRandomCommand({ NumberOfBytes: 8 }), 'kms:GenerateRandom'],
      [new CreateKeyCommand({}), 'kms:CreateKey'],
    ] as const) {
      await expectDenied(kms('carol').send(op as never), denied('carol', action, '*', 'identity'));
    }
  });

  it('alias operations need the action on the alias ARN in an IAM policy and on the key (Developer Guide, "Controlling access to aliases")', async () => {
    await kms('aliaser').send(new CreateAliasCommand({ AliasName: 'alias/test-new', TargetKeyId: keys.aliasTarget }));
    await expectDenied(
      kms('aliaser').send(new CreateAliasCommand({ AliasName: 'alias/prod-new', TargetKeyId: keys.aliasTarget })),
      denied('aliaser', 'kms:CreateAlias', `${REGION_ARN}:alias/prod-new`, 'identity'),
    );
    await kms('aliaser').send(new UpdateAliasCommand({ AliasName: 'alias/test-new', TargetKeyId: keys.aliasTarget2 }));
    await expectDenied(
      kms('aliaser').send(new UpdateAliasCommand({ AliasName: 'alias/prod-existing', TargetKeyId: keys.aliasTarget2 })),
      denied('aliaser', 'kms:UpdateAlias', `${REGION_ARN}:alias/prod-existing`, 'identity'),
    );
    await expectDenied(
      kms('aliaser').send(new DeleteAliasCommand({ AliasName: 'alias/prod-existing' })),
      denied('aliaser', 'kms:DeleteAlias', `${REGION_ARN}:alias/prod-existing`, 'identity'),
    );
    await kms('aliaser').send(new DeleteAliasCommand({ AliasName: 'alias/test-new' }));
    // The key side is still the key policy's: a key that does not delegate refuses the alias.
    await expectDenied(
      kms('aliaser').send(new CreateAliasCommand({ AliasName: 'alias/test-nodelegate', TargetKeyId: keys.noDelegate })),
      denied('aliaser', 'kms:CreateAlias', arnOf('noDelegate'), 'resource'),
    );
  });

  it('ListRetirableGrants is authorized on the retiring principal it names (API Reference, ListRetirableGrants)', async () => {
    const out = await kms('retiree').send(new ListRetirableGrantsCommand({ RetiringPrincipal: who.retiree.arn }));
    expect(out.Grants).toHaveLength(1);
    await expectDenied(
      kms('retiree').send(new ListRetirableGrantsCommand({ RetiringPrincipal: who.carol.arn })),
      denied('retiree', 'kms:ListRetirableGrants', who.carol.arn, 'identity'),
    );
    // Without an identity-based Allow, not even one's own retirable grants.
    await expectDenied(
      kms('carol').send(new ListRetirableGrantsCommand({ RetiringPrincipal: who.carol.arn })),
      denied('carol', 'kms:ListRetirableGrants', who.carol.arn, 'identity'),
    );
  });
});

describe('a principal without `policies`: IAM is not modelled, nothing changes', () => {
  it('the account principal still means the root only, and IAM-only operations stay open', async () => {
    await expectDenied(encrypt('bob', 'default'), denied('bob', 'kms:Encrypt', arnOf('default'), 'resource'));
    await kms('bob').send(new CreateKeyCommand({ KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY', Tags: [{ TagKey: 'a', TagValue: 'b' }], BypassPolicyLockoutSafetyCheck: true, Policy: keyPolicy(rootStatement) }));
    await kms('bob').send(new ListKeysCommand({}));
    await kms('bob').send(new ListAliasesCommand({}));
    await kms('bob').send(new GenerateRandomCommand({ NumberOfBytes: 8 }));
    // The lockout check as before: a root-only policy does not keep bob's access.
    await expectAwsError(kms('bob').send(new CreateKeyCommand({ Policy: keyPolicy(rootStatement) })), 'MalformedPolicyDocumentException');
    await encrypt('root', 'default');
  });
});
