import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteAliasCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  ListAliasesCommand,
  ListKeysCommand,
  ListResourceTagsCommand,
  ScheduleKeyDeletionCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateAliasCommand,
  UpdateKeyDescriptionCommand,
  type KMSClient,
} from '@aws-sdk/client-kms';
import type { LocalKmsServer } from '../../src/local-kms/index.js';
import { ACCOUNT, DAY, advanceClock, expectAwsError, startServer } from './helpers.js';

let server: LocalKmsServer;
let kms: KMSClient;
beforeAll(async () => {
  ({ server, kms } = await startServer({ testClock: true }));
});
afterAll(async () => {
  kms.destroy();
  await server.close();
});

const newKey = async (input: ConstructorParameters<typeof CreateKeyCommand>[0] = {}) =>
  (await kms.send(new CreateKeyCommand(input))).KeyMetadata!;

describe('key states', () => {
  it('disables and enables a key; a disabled key cannot be used', async () => {
    const key = await newKey();
    const enc = await kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from('x') }));
    await kms.send(new DisableKeyCommand({ KeyId: key.KeyId }));
    const md = (await kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }))).KeyMetadata!;
    expect(md.KeyState).toBe('Disabled');
    expect(md.Enabled).toBe(false);
    const e = await expectAwsError(kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from('x') })), 'DisabledException');
    expect(e.message).toBe(`${key.Arn} is disabled.`);
    await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob })), 'DisabledException');
    await expectAwsError(kms.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, NumberOfBytes: 16 })), 'DisabledException');
    await kms.send(new EnableKeyCommand({ KeyId: key.KeyId }));
    expect((await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }))).Plaintext!.length).toBe(1);
  });

  it('schedules deletion (7-30 days, default 30), cancels to Disabled, deletes when the window passes', async () => {
    const key = await newKey();
    for (const days of [6, 31]) {
      const e = await expectAwsError(kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: days })), 'ValidationException');
      expect(e.message).toMatch(/pendingWindowInDays/);
    }
    const before = Date.now();
    const s = await kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId }));
    expect(s.KeyId).toBe(key.Arn);
    expect(s.KeyState).toBe('PendingDeletion');
    expect(s.PendingWindowInDays).toBe(30);
    expect(s.DeletionDate!.getTime() - before).toBeGreaterThanOrEqual(30 * DAY * 1000 - 5000);
    let md = (await kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }))).KeyMetadata!;
    expect(md.KeyState).toBe('PendingDeletion');
    expect(md.DeletionDate!.getTime()).toBe(s.DeletionDate!.getTime());
    const e = await expectAwsError(kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from('x') })), 'KMSInvalidStateException');
    expect(e.message).toBe(`${key.Arn} is pending deletion.`);
    await expectAwsError(kms.send(new EnableKeyCommand({ KeyId: key.KeyId })), 'KMSInvalidStateException');
    await expectAwsError(kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId })), 'KMSInvalidStateException');
    await kms.send(new CancelKeyDeletionCommand({ KeyId: key.KeyId }));
    md = (await kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }))).KeyMetadata!;
    expect(md.KeyState).toBe('Disabled');
    expect(md.DeletionDate).toBeUndefined();
    await expectAwsError(kms.send(new CancelKeyDeletionCommand({ KeyId: key.KeyId })), 'KMSInvalidStateException');

    await kms.send(new CreateAliasCommand({ AliasName: 'alias/doomed', TargetKeyId: key.KeyId }));
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: 7 }));
    await advanceClock(server.url, 7 * DAY - 120);
    expect((await kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }))).KeyMetadata!.KeyState).toBe('PendingDeletion');
    await advanceClock(server.url, 240);
    await expectAwsError(kms.send(new DescribeKeyCommand({ KeyId: key.KeyId })), 'NotFoundException');
    const keys = (await kms.send(new ListKeysCommand({ Limit: 1000 }))).Keys!;
    expect(keys.map((k) => k.KeyId)).not.toContain(key.KeyId);
    const aliases = (await kms.send(new ListAliasesCommand({}))).Aliases!;
    expect(aliases.map((a) => a.AliasName)).not.toContain('alias/doomed');
  });

  it('updates the description', async () => {
    const key = await newKey({ Description: 'old' });
    await kms.send(new UpdateKeyDescriptionCommand({ KeyId: key.KeyId, Description: 'new' }));
    expect((await kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }))).KeyMetadata!.Description).toBe('new');
    await expectAwsError(kms.send(new UpdateKeyDescriptionCommand({ KeyId: key.KeyId, Description: 'x'.repeat(8193) })), 'ValidationException');
  });

  it('management operations take key ids and ARNs but not aliases', async () => {
    const key = await newKey();
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/mgmt', TargetKeyId: key.Arn }));
    await kms.send(new DisableKeyCommand({ KeyId: key.Arn }));
    await expectAwsError(kms.send(new EnableKeyCommand({ KeyId: 'alias/mgmt' })), 'NotFoundException');
    await kms.send(new EnableKeyCommand({ KeyId: key.KeyId }));
  });

  it('paginates ListKeys with Limit and Marker', async () => {
    for (let i = 0; i < 7; i++) await newKey();
    const all = (await kms.send(new ListKeysCommand({ Limit: 1000 }))).Keys!.map((k) => k.KeyId!);
    expect(all.length).toBeGreaterThanOrEqual(7);
    const seen: string[] = [];
    let marker: string | undefined;
    let pages = 0;
    do {
      const page = await kms.send(new ListKeysCommand({ Limit: 3, ...(marker ? { Marker: marker } : {}) }));
      expect(page.Keys!.length).toBeLessThanOrEqual(3);
      seen.push(...page.Keys!.map((k) => k.KeyId!));
      expect(page.Truncated).toBe(page.NextMarker !== undefined);
      marker = page.NextMarker;
      pages++;
    } while (marker);
    expect(seen).toEqual(all);
    expect(pages).toBe(Math.ceil(all.length / 3));
    await expectAwsError(kms.send(new ListKeysCommand({ Limit: 0 })), 'ValidationException');
    await expectAwsError(kms.send(new ListKeysCommand({ Limit: 1001 })), 'ValidationException');
    await expectAwsError(kms.send(new ListKeysCommand({ Marker: 'bogus' })), 'InvalidMarkerException');
  });

  it('validates CreateKey parameters', async () => {
    await expectAwsError(newKey({ KeySpec: 'ECC_NIST_P256' }), 'ValidationException'); // ENCRYPT_DECRYPT is not valid for ECC
    await expectAwsError(newKey({ KeySpec: 'HMAC_256', KeyUsage: 'ENCRYPT_DECRYPT' }), 'ValidationException');
    await expectAwsError(newKey({ KeySpec: 'SYMMETRIC_DEFAULT', CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT' }), 'ValidationException');
    await expectAwsError(newKey({ KeySpec: 'RSA_1024' as never }), 'ValidationException');
    const e = await expectAwsError(newKey({ Description: 'd'.repeat(8193) }), 'ValidationException');
    expect(e.message).toMatch(/^1 validation error detected: Value '.*' at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192$/);
  });
});

describe('aliases', () => {
  it('enforces the alias/ prefix, the reserved alias/aws/ prefix, the charset and uniqueness', async () => {
    const key = await newKey();
    await expectAwsError(kms.send(new CreateAliasCommand({ AliasName: 'noprefix', TargetKeyId: key.KeyId })), 'InvalidAliasNameException');
    await expectAwsError(kms.send(new CreateAliasCommand({ AliasName: 'alias/aws/mine', TargetKeyId: key.KeyId })), 'InvalidAliasNameException');
    const bad = await expectAwsError(kms.send(new CreateAliasCommand({ AliasName: 'alias/has space', TargetKeyId: key.KeyId })), 'ValidationException');
    expect(bad.message).toMatch(/regular expression pattern/);
    await expectAwsError(kms.send(new CreateAliasCommand({ AliasName: `alias/${'a'.repeat(251)}`, TargetKeyId: key.KeyId })), 'ValidationException');
    await kms.send(new CreateAliasCommand({ AliasName: `alias/${'a'.repeat(250)}`, TargetKeyId: key.KeyId }));
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/app/Prod_1-x:y', TargetKeyId: key.KeyId }));
    const dup = await expectAwsError(kms.send(new CreateAliasCommand({ AliasName: 'alias/app/Prod_1-x:y', TargetKeyId: key.KeyId })), 'AlreadyExistsException');
    expect(dup.message).toBe(`An alias with the name arn:aws:kms:us-east-1:${ACCOUNT}:alias/app/Prod_1-x:y already exists`);
    await expectAwsError(kms.send(new CreateAliasCommand({ AliasName: 'alias/x', TargetKeyId: 'alias/app/Prod_1-x:y' })), 'NotFoundException');
  });

  it('updates, lists (with KeyId filter and pagination) and deletes aliases', async () => {
    const a = await newKey();
    const b = await newKey();
    for (let i = 0; i < 5; i++) await kms.send(new CreateAliasCommand({ AliasName: `alias/list-${i}`, TargetKeyId: a.KeyId }));
    await kms.send(new UpdateAliasCommand({ AliasName: 'alias/list-0', TargetKeyId: b.KeyId }));
    expect((await kms.send(new DescribeKeyCommand({ KeyId: 'alias/list-0' }))).KeyMetadata!.KeyId).toBe(b.KeyId);
    const forA = (await kms.send(new ListAliasesCommand({ KeyId: a.KeyId }))).Aliases!.map((x) => x.AliasName);
    expect(forA).toEqual(['alias/list-1', 'alias/list-2', 'alias/list-3', 'alias/list-4']);
    const p1 = await kms.send(new ListAliasesCommand({ KeyId: a.KeyId, Limit: 3 }));
    expect(p1.Truncated).toBe(true);
    const p2 = await kms.send(new ListAliasesCommand({ KeyId: a.KeyId, Limit: 3, Marker: p1.NextMarker }));
    expect([...p1.Aliases!, ...p2.Aliases!].map((x) => x.AliasName)).toEqual(forA);
    expect(p2.Truncated).toBe(false);
    await kms.send(new DeleteAliasCommand({ AliasName: 'alias/list-1' }));
    await expectAwsError(kms.send(new DeleteAliasCommand({ AliasName: 'alias/list-1' })), 'NotFoundException');
    await expectAwsError(kms.send(new UpdateAliasCommand({ AliasName: 'alias/list-1', TargetKeyId: a.KeyId })), 'NotFoundException');
    // An alias cannot move to a key of another type or usage.
    const signing = await newKey({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    await expectAwsError(kms.send(new UpdateAliasCommand({ AliasName: 'alias/list-2', TargetKeyId: signing.KeyId })), 'ValidationException');
  });
});

describe('tags', () => {
  it('tags, overwrites, untags and lists with pagination', async () => {
    const key = await newKey({ Tags: [{ TagKey: 'team', TagValue: 'a' }] });
    await kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: [{ TagKey: 'team', TagValue: 'b' }, { TagKey: 'env', TagValue: '' }] }));
    let tags = (await kms.send(new ListResourceTagsCommand({ KeyId: key.KeyId }))).Tags!;
    expect(tags).toEqual([{ TagKey: 'env', TagValue: '' }, { TagKey: 'team', TagValue: 'b' }]); // listed in tag-key order
    await kms.send(new UntagResourceCommand({ KeyId: key.KeyId, TagKeys: ['team', 'absent'] }));
    tags = (await kms.send(new ListResourceTagsCommand({ KeyId: key.KeyId }))).Tags!;
    expect(tags).toEqual([{ TagKey: 'env', TagValue: '' }]);
    const many = Array.from({ length: 49 }, (_, i) => ({ TagKey: `k${i}`, TagValue: `v${i}` }));
    await kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: many }));
    const p1 = await kms.send(new ListResourceTagsCommand({ KeyId: key.KeyId, Limit: 20 }));
    expect(p1.Truncated).toBe(true);
    const p2 = await kms.send(new ListResourceTagsCommand({ KeyId: key.KeyId, Limit: 50, Marker: p1.NextMarker }));
    expect(p1.Tags!.length + p2.Tags!.length).toBe(50);
    expect(p2.Truncated).toBe(false);
    // The 51st tag is refused; overwriting an existing one is fine.
    await expectAwsError(kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: [{ TagKey: 'one-too-many', TagValue: '' }] })), 'LimitExceededException');
    await kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: [{ TagKey: 'k0', TagValue: 'changed' }] }));
  });

  it('answers LimitExceededException past 50 tags (CreateKey or TagResource), changing nothing', async () => {
    const fifty = Array.from({ length: 50 }, (_, i) => ({ TagKey: `t${i}`, TagValue: `${i}` }));
    const e = await expectAwsError(newKey({ Tags: [...fifty, { TagKey: 't50', TagValue: '' }] }), 'LimitExceededException');
    expect(e.message).toMatch(/at most 50 tags/);
    expect(e.$metadata?.httpStatusCode).toBe(400);
    // Exactly 50 is allowed; a 51st by TagResource is over the quota.
    const key = await newKey({ Tags: fifty.slice(0, 30) });
    await expectAwsError(kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: fifty.slice(20).concat([{ TagKey: 'x', TagValue: '' }]) })), 'LimitExceededException');
    const listed = async () => (await kms.send(new ListResourceTagsCommand({ KeyId: key.KeyId }))).Tags!.map((t) => t.TagKey);
    expect(await listed()).toHaveLength(30);
    await kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: fifty.slice(20) }));
    expect(await listed()).toHaveLength(50);
    // An invalid tag is still a TagException, even in a request that would also exceed the quota.
    await expectAwsError(kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: [{ TagKey: 'aws:x', TagValue: '' }, { TagKey: 'y', TagValue: '' }] })), 'TagException');
  });

  it('refuses to untag aws: keys (TagException) and removes nothing from that request', async () => {
    const key = await newKey({ Tags: [{ TagKey: 'team', TagValue: 'a' }, { TagKey: 'env', TagValue: 'prod' }] });
    for (const reserved of ['aws:cloudformation:stack-name', 'AWS:x', 'Aws:y']) {
      const e = await expectAwsError(kms.send(new UntagResourceCommand({ KeyId: key.KeyId, TagKeys: ['team', reserved] })), 'TagException');
      expect(e.message).toContain(reserved);
    }
    const tags = (await kms.send(new ListResourceTagsCommand({ KeyId: key.KeyId }))).Tags!.map((t) => t.TagKey).sort();
    expect(tags).toEqual(['env', 'team']);
    // A key that merely contains "aws:" later on is an ordinary key.
    await kms.send(new UntagResourceCommand({ KeyId: key.KeyId, TagKeys: ['team', 'x-aws:y'] }));
    expect((await kms.send(new ListResourceTagsCommand({ KeyId: key.KeyId }))).Tags).toEqual([{ TagKey: 'env', TagValue: 'prod' }]);
  });

  it('rejects aws: tags, duplicate keys in one request and bad lengths', async () => {
    const key = await newKey();
    await expectAwsError(kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: [{ TagKey: 'aws:owner', TagValue: 'x' }] })), 'TagException');
    await expectAwsError(newKey({ Tags: [{ TagKey: 'AWS:x', TagValue: 'y' }] }), 'TagException');
    await expectAwsError(
      kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: [{ TagKey: 'd', TagValue: '1' }, { TagKey: 'd', TagValue: '2' }] })),
      'TagException',
    );
    await expectAwsError(kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: [{ TagKey: '', TagValue: 'x' }] })), 'ValidationException');
    await expectAwsError(kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: [{ TagKey: 'k'.repeat(129), TagValue: 'x' }] })), 'ValidationException');
    await expectAwsError(kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: [{ TagKey: 'k', TagValue: 'v'.repeat(257) }] })), 'ValidationException');
    expect((await kms.send(new ListResourceTagsCommand({ KeyId: key.KeyId }))).Tags).toEqual([]);
  });
});
