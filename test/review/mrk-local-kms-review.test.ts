/**
 * Adversarial review of the local KMS's several-Regions / multi-Region-key guarantee (README
 * "Several Regions"). Each `finding:` test states the AWS-documented behaviour it expects and FAILS
 * against the code reviewed (branch mrk-review, base fb5c20f); `held:` tests probe something
 * important and pass. Expectations come from the AWS documentation, not from the implementation:
 * - API Reference (the SDK's JSDoc): ReplicateKey, UpdatePrimaryRegion, RotateKeyOnDemand,
 *   KeyMetadata.PendingDeletionWindowInDays;
 * - Developer Guide: "Multi-Region keys in AWS KMS", "Change the primary key in a set of
 *   multi-Region keys", "Deleting multi-Region keys", "Allowing users in other accounts to use a
 *   KMS key";
 * - the AWS SDK's partition data (`aws` partition regionRegex
 *   ^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { constants, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KMSClient, ListKeysCommand } from '@aws-sdk/client-kms';

/**
 * Crash injection: `failRename(to)` returning true makes that one atomic rename throw, which
 * leaves the data directory exactly as a SIGKILL between two renames would (every earlier rename
 * durable, none later). The process is then abandoned and the directory reopened.
 */
const hook: { failRename?: (to: string) => boolean } = {};
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  return {
    ...real,
    renameSync: (from: string, to: string) => {
      if (hook.failRename?.(String(to))) throw Object.assign(new Error('simulated crash between two writes'), { code: 'EIO' });
      return real.renameSync(from, to);
    },
  };
});
const { LocalKms, startLocalKmsServer } = await import('../../src/local-kms/index.js');
const { KmsServiceError } = await import('../../src/local-kms/errors.js');
const { parseIdentityPolicy } = await import('../../src/local-kms/policy.js');
type Kms = InstanceType<typeof LocalKms>;
type Client = ReturnType<Kms['client']>;

const ACCOUNT = '111122223333';
const OTHER = '444455556666';
const DAY = 86_400_000;
type Md = Record<string, any>;

const open: Kms[] = [];
const dirs: string[] = [];
afterEach(() => {
  hook.failRename = undefined;
  for (const k of open.splice(0)) k.service.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'mrk-review-'));
  dirs.push(d);
  return d;
}
function kmsAt(options: ConstructorParameters<typeof LocalKms>[0] = {}): { kms: Kms; east: Client; west: Client; clock: { now: number } } {
  const clock = { now: Date.UTC(2026, 0, 1) };
  const kms = new LocalKms({ clock: () => clock.now, ...options });
  open.push(kms);
  return { kms, east: kms.client(), west: kms.client({ region: 'eu-west-1' }), clock };
}
async function outcome(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
    return 'OK';
  } catch (e) {
    if (e instanceof KmsServiceError) return e.type;
    return `${(e as Error).name}`;
  }
}
const md = async (c: Client, KeyId: string): Promise<Md> => (await c.call('DescribeKey', { KeyId })).KeyMetadata as Md;
async function mrk(east: Client, input: Record<string, unknown> = {}, replicaInput: Record<string, unknown> = {}): Promise<Md> {
  const k = (await east.call('CreateKey', { MultiRegion: true, ...input })).KeyMetadata as Md;
  await east.call('ReplicateKey', { KeyId: k.KeyId, ReplicaRegion: 'eu-west-1', ...replicaInput });
  return k;
}
async function importInto(c: Client, KeyId: string, material: Buffer, extra: Record<string, unknown> = { ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }) {
  const p = await c.call('GetParametersForImport', { KeyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' });
  const wrapped = publicEncrypt(
    { key: createPublicKey({ key: Buffer.from(p.PublicKey as Uint8Array), format: 'der', type: 'spki' }), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
    material,
  );
  return c.call('ImportKeyMaterial', { KeyId, ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapped, ...extra });
}
const iamUser = (name: string, ...Statement: object[]) => ({
  arn: `arn:aws:iam::${ACCOUNT}:user/${name}`,
  account: ACCOUNT,
  identityPolicies: [parseIdentityPolicy({ Version: '2012-10-17', Statement })],
});

// ---------------------------------------------------------------------------------------------
// FINDINGS (fail against the reviewed code), most severe first
// ---------------------------------------------------------------------------------------------

describe('findings: crash safety across Regions', () => {
  /**
   * API Reference, UpdatePrimaryRegion: the operation converts the replica to the primary and the
   * former primary to a replica; "Every set of related multi-Region keys must have a primary key"
   * (Developer Guide, "Change the primary key in a set of multi-Region keys") - exactly one.
   * README: data directories are crash-safe (a change is all there or not there after a crash).
   * Reviewed code: each copy's file is rewritten separately, with no journal; a crash after the
   * first rename leaves BOTH copies claiming to be the primary after a restart (each can then
   * replicate and rotate on its own, splitting the key material).
   */
  it('finding: a crash in the middle of UpdatePrimaryRegion must not leave two primaries (or none) after a restart', async () => {
    const dataDir = tempDir();
    const first = kmsAt({ dataDir });
    const k = await mrk(first.east);
    let renames = 0;
    hook.failRename = (to) => to.endsWith(`${k.KeyId}.json`) && ++renames === 2;
    await outcome(first.east.call('UpdatePrimaryRegion', { KeyId: k.KeyId, PrimaryRegion: 'eu-west-1' }));
    hook.failRename = undefined;
    expect(renames).toBe(2); // the crash happened between the two copies' writes
    first.kms.service.close();
    const again = kmsAt({ dataDir });
    const types = [(await md(again.east, k.KeyId)).MultiRegionConfiguration.MultiRegionKeyType, (await md(again.west, k.KeyId)).MultiRegionConfiguration.MultiRegionKeyType];
    expect(types.filter((t) => t === 'PRIMARY')).toHaveLength(1);
    const primaryRegions = new Set([(await md(again.east, k.KeyId)).MultiRegionConfiguration.PrimaryKey.Region, (await md(again.west, k.KeyId)).MultiRegionConfiguration.PrimaryKey.Region]);
    expect(primaryRegions.size).toBe(1);
  });

  /**
   * API Reference, ReplicateKey: related multi-Region keys "have the same key ID and key material";
   * "KMS automatically synchronizes these shared properties". RotateKeyOnDemand: rotation of a set
   * of related multi-Region keys is invoked on the primary and covers the set.
   * Reviewed code: a crash between writing the primary's and the replica's file leaves the primary
   * with the new key material and the replica without it; after the restart the primary encrypts
   * under material the replica never gets, and the replica cannot decrypt it - forever.
   */
  it('finding: a crash in the middle of RotateKeyOnDemand must not split the key material: after a restart the replica decrypts what the primary encrypts', async () => {
    const dataDir = tempDir();
    const first = kmsAt({ dataDir });
    const k = await mrk(first.east);
    let renames = 0;
    hook.failRename = (to) => to.endsWith(`${k.KeyId}.json`) && ++renames === 2;
    await outcome(first.east.call('RotateKeyOnDemand', { KeyId: k.KeyId }));
    hook.failRename = undefined;
    expect(renames).toBe(2);
    first.kms.service.close();
    const again = kmsAt({ dataDir });
    const ct = (await again.east.call('Encrypt', { KeyId: k.KeyId, Plaintext: Buffer.from('after restart') })).CiphertextBlob;
    expect(await outcome(again.west.call('Decrypt', { CiphertextBlob: ct }))).toBe('OK');
    const rotations = async (c: Client) => ((await c.call('ListKeyRotations', { KeyId: k.KeyId })).Rotations as Md[]).map((r) => r.KeyMaterialId);
    expect(await rotations(again.west)).toEqual(await rotations(again.east));
  });
});

describe('findings: Regions', () => {
  /**
   * AWS serves every Region of the partition, independently: a request to eu-west-1 does not fail
   * because of requests that named other (here: made-up) Regions. Reviewed code: every name of the
   * form xx-yyyy-N opens a "Region" and counts toward a 64-Region cap; 63 unauthenticated ListKeys
   * with made-up Regions make every real Region never used before answer LimitExceededException
   * (including ReplicateKey into it) until the server restarts.
   */
  it('finding: requests naming made-up Regions must not use up the Regions: eu-west-1 still answers after 63 of them (HTTP, SDK clients)', async () => {
    const server = await startLocalKmsServer({ port: 0 });
    try {
      const client = (region: string) => new KMSClient({ endpoint: server.url, region, credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
      const letters = (i: number) => String.fromCharCode(97 + (i % 26)) + String.fromCharCode(97 + Math.floor(i / 26));
      for (let i = 0; i < 63; i++) await outcome(client(`zz-fake${letters(i)}-1`).send(new ListKeysCommand({})));
      expect(await outcome(client('eu-west-1').send(new ListKeysCommand({})))).toBe('OK');
    } finally {
      await server.close();
    }
  });

  /**
   * README: "a client for a Region of another partition, or not a Region, is a RangeError"; the
   * server serves "every Region of its partition". The AWS SDK's partition data defines the Regions
   * of `aws` as ^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$, so zz-fake-1 is a Region of no partition.
   * ReplicateKey (API Reference): the ReplicaRegion must be a Region of the same partition where
   * KMS is available. Reviewed code: zz-fake-1 is accepted in process, over HTTP, and as a
   * ReplicaRegion (a replica is created in it).
   */
  it('finding: a name that is no Region of the aws partition (zz-fake-1) is refused: in-process client, SigV4 scope, ReplicaRegion', async () => {
    const { kms, east } = kmsAt();
    expect(await outcome(() => kms.client({ region: 'zz-fake-1' }).call('ListKeys', {}))).not.toBe('OK');
    const k = (await east.call('CreateKey', { MultiRegion: true })).KeyMetadata as Md;
    expect(await outcome(east.call('ReplicateKey', { KeyId: k.KeyId, ReplicaRegion: 'zz-fake-1' }))).not.toBe('OK');
    const server = await startLocalKmsServer({ port: 0 });
    try {
      const client = new KMSClient({ endpoint: server.url, region: 'zz-fake-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
      expect(await outcome(client.send(new ListKeysCommand({})))).not.toBe('OK');
    } finally {
      await server.close();
    }
  });
});

describe('findings: key states', () => {
  /**
   * KeyMetadata.PendingDeletionWindowInDays (API Reference): the primary's waiting period "begins
   * when the last of its replica keys is deleted"; when that happens the primary "changes from
   * PendingReplicaDeletion to PendingDeletion and the deletion date appears". Reviewed code: the
   * waiting period starts when the local KMS next looks at the primary, not when the replica's
   * deletion date passed: a primary (7-day window) whose replica was deleted on day 7 shows, when
   * first looked at on day 10, a DeletionDate of day 17 instead of day 14 (and so outlives it).
   */
  it('finding: the primary\'s waiting period starts at the replica\'s deletion date, not when the local KMS notices it', async () => {
    const { kms, east, clock } = kmsAt();
    const start = clock.now;
    const k = (await east.call('CreateKey', { MultiRegion: true })).KeyMetadata as Md;
    await east.call('ReplicateKey', { KeyId: k.KeyId, ReplicaRegion: 'eu-central-1' });
    await kms.client({ region: 'eu-central-1' }).call('ScheduleKeyDeletion', { KeyId: k.KeyId, PendingWindowInDays: 7 });
    await east.call('ScheduleKeyDeletion', { KeyId: k.KeyId, PendingWindowInDays: 7 });
    clock.now = start + 10 * DAY; // the replica is gone (day 7); the primary is due on day 14
    const m = await md(east, k.KeyId);
    expect(m.KeyState).toBe('PendingDeletion');
    expect(new Date(m.DeletionDate).getTime()).toBe(start + 14 * DAY);
    clock.now = start + 20 * DAY;
    expect(await outcome(east.call('DescribeKey', { KeyId: k.KeyId }))).toBe('NotFoundException');
  });

  /**
   * Developer Guide, "Change the primary key in a set of multi-Region keys": both the primary and
   * the replica must be Enabled when UpdatePrimaryRegion starts. Reviewed code: Disabled is refused
   * (DisabledException), but a primary in PendingImport (its imported material deleted) is made a
   * replica without complaint.
   */
  it('finding: UpdatePrimaryRegion refuses a primary in PendingImport (both copies must be Enabled)', async () => {
    const { east, west } = kmsAt();
    const k = await mrk(east, { Origin: 'EXTERNAL' });
    const material = randomBytes(32);
    await importInto(east, k.KeyId, material);
    await importInto(west, k.KeyId, material);
    await east.call('DeleteImportedKeyMaterial', { KeyId: k.KeyId });
    expect((await md(east, k.KeyId)).KeyState).toBe('PendingImport');
    expect(await outcome(east.call('UpdatePrimaryRegion', { KeyId: k.KeyId, PrimaryRegion: 'eu-west-1' }))).toBe('KMSInvalidStateException');
  });
});

// ---------------------------------------------------------------------------------------------
// HELD (pass): probes of the guarantee that the reviewed code withstood
// ---------------------------------------------------------------------------------------------

describe('held: cross-Region confusion', () => {
  it('held: a key ARN, alias ARN, alias name or grant of one Region does not reach another Region\'s copy', async () => {
    const { kms, east, west } = kmsAt();
    const k = await mrk(east);
    const westArn = `arn:aws:kms:eu-west-1:${ACCOUNT}:key/${k.KeyId}`;
    for (const op of [
      east.call('DescribeKey', { KeyId: westArn }),
      east.call('Encrypt', { KeyId: westArn, Plaintext: Buffer.from('x') }),
      west.call('ReplicateKey', { KeyId: k.Arn, ReplicaRegion: 'ap-south-1' }),
    ]) expect(await outcome(op)).toBe('NotFoundException');
    const single = (await east.call('CreateKey', {})).KeyMetadata as Md;
    await east.call('CreateAlias', { AliasName: 'alias/east-only', TargetKeyId: single.KeyId });
    const ct = (await east.call('Encrypt', { KeyId: single.KeyId, Plaintext: Buffer.from('x') })).CiphertextBlob;
    expect(await outcome(west.call('Decrypt', { CiphertextBlob: ct }))).toBe('NotFoundException');
    expect(await outcome(west.call('ReEncrypt', { CiphertextBlob: ct, DestinationKeyId: k.KeyId }))).toBe('NotFoundException');
    expect(await outcome(west.call('DescribeKey', { KeyId: 'alias/east-only' }))).toBe('NotFoundException');
    expect(await outcome(west.call('DescribeKey', { KeyId: `arn:aws:kms:us-east-1:${ACCOUNT}:alias/east-only` }))).toBe('NotFoundException');
    // A grant on the primary (same key id as the replica) and its token do nothing in eu-west-1.
    const grantee = `arn:aws:iam::${ACCOUNT}:role/reader`;
    const g = await east.call('CreateGrant', { KeyId: k.KeyId, GranteePrincipal: grantee, RetiringPrincipal: grantee, Operations: ['Decrypt', 'Encrypt', 'CreateGrant'] });
    const mct = (await east.call('Encrypt', { KeyId: k.KeyId, Plaintext: Buffer.from('x') })).CiphertextBlob;
    const reader = kms.client({ caller: grantee, region: 'eu-west-1' });
    expect(await outcome(reader.call('Decrypt', { CiphertextBlob: mct, GrantTokens: [g.GrantToken] }))).toBe('AccessDeniedException');
    expect(await outcome(reader.call('CreateGrant', { KeyId: k.KeyId, GranteePrincipal: grantee, Operations: ['Decrypt'], GrantTokens: [g.GrantToken] }))).toBe('AccessDeniedException');
    expect(await outcome(reader.call('RetireGrant', { GrantToken: g.GrantToken }))).not.toBe('OK');
    expect(await outcome(west.call('RevokeGrant', { KeyId: k.KeyId, GrantId: g.GrantId }))).not.toBe('OK');
    expect(((await east.call('ListGrants', { KeyId: k.KeyId })).Grants as Md[]).map((x) => x.GrantId)).toEqual([g.GrantId]);
  });

  it('held: IAM Resource ARNs and aws:RequestedRegion are per Region; kms:ReplicaRegion and the replica Region\'s kms:CreateKey are enforced', async () => {
    const { kms, east } = kmsAt();
    const k = await mrk(east);
    const eastOnly = iamUser('u', { Effect: 'Allow', Action: ['kms:Encrypt', 'kms:CreateAlias'], Resource: [`arn:aws:kms:us-east-1:${ACCOUNT}:key/*`, `arn:aws:kms:us-east-1:${ACCOUNT}:alias/*`] });
    expect(await outcome(kms.client({ caller: eastOnly }).call('Encrypt', { KeyId: k.KeyId, Plaintext: Buffer.from('x') }))).toBe('OK');
    expect(await outcome(kms.client({ caller: eastOnly, region: 'eu-west-1' }).call('Encrypt', { KeyId: k.KeyId, Plaintext: Buffer.from('x') }))).toBe('AccessDeniedException');
    expect(await outcome(kms.client({ caller: eastOnly, region: 'eu-west-1' }).call('CreateAlias', { AliasName: 'alias/u', TargetKeyId: k.KeyId }))).toBe('AccessDeniedException');
    const requested = iamUser('u2', { Effect: 'Allow', Action: 'kms:*', Resource: '*', Condition: { StringEquals: { 'aws:RequestedRegion': 'us-east-1' } } });
    expect(await outcome(kms.client({ caller: requested, region: 'eu-west-1' }).call('Encrypt', { KeyId: k.KeyId, Plaintext: Buffer.from('x') }))).toBe('AccessDeniedException');
    const noTokyo = iamUser('u3', { Effect: 'Allow', Action: 'kms:*', Resource: '*' }, { Effect: 'Deny', Action: 'kms:ReplicateKey', Resource: '*', Condition: { StringEquals: { 'kms:ReplicaRegion': 'ap-northeast-1' } } });
    expect(await outcome(kms.client({ caller: noTokyo }).call('ReplicateKey', { KeyId: k.KeyId, ReplicaRegion: 'ap-northeast-1' }))).toBe('AccessDeniedException');
    expect(await outcome(kms.client({ caller: noTokyo }).call('ReplicateKey', { KeyId: k.KeyId, ReplicaRegion: 'ap-south-1' }))).toBe('OK');
  });

  it('held: another account with kms:* in both key policies cannot ReplicateKey or UpdatePrimaryRegion (Cross-account use: No)', async () => {
    const { kms, east } = kmsAt();
    const shared = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' },
        { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${OTHER}:root` }, Action: 'kms:*', Resource: '*' },
      ],
    });
    const k = await mrk(east, { Policy: shared }, { Policy: shared });
    const admin = { arn: `arn:aws:iam::${OTHER}:user/admin`, account: OTHER, identityPolicies: [parseIdentityPolicy({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*' }] })] };
    for (const caller of [`arn:aws:iam::${OTHER}:root`, admin]) {
      const other = kms.client({ caller });
      expect(await outcome(other.call('ReplicateKey', { KeyId: k.Arn, ReplicaRegion: 'ap-south-1' }))).not.toBe('OK');
      expect(await outcome(other.call('UpdatePrimaryRegion', { KeyId: k.Arn, PrimaryRegion: 'eu-west-1' }))).not.toBe('OK');
    }
    expect((await md(east, k.KeyId)).MultiRegionConfiguration.ReplicaKeys.map((r: Md) => r.Region)).toEqual(['eu-west-1']);
  });
});

describe('held: shared material and per-copy state', () => {
  it('held: imported material expires and is deleted per copy, and only the original material is ever accepted again, in every copy', async () => {
    const { kms, east, west, clock } = kmsAt();
    const k = await mrk(east, { Origin: 'EXTERNAL' });
    const material = randomBytes(32);
    await importInto(east, k.KeyId, material);
    await importInto(west, k.KeyId, material, { ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: new Date(clock.now + 2 * DAY) });
    clock.now += 3 * DAY;
    expect([(await md(east, k.KeyId)).KeyState, (await md(west, k.KeyId)).KeyState]).toEqual(['Enabled', 'PendingImport']);
    await east.call('DeleteImportedKeyMaterial', { KeyId: k.KeyId });
    expect(await outcome(importInto(east, k.KeyId, randomBytes(32)))).toBe('IncorrectKeyMaterialException');
    await east.call('ReplicateKey', { KeyId: k.KeyId, ReplicaRegion: 'ap-south-1' });
    const ap = kms.client({ region: 'ap-south-1' });
    expect(await outcome(importInto(ap, k.KeyId, randomBytes(32)))).toBe('IncorrectKeyMaterialException');
    expect(await outcome(importInto(ap, k.KeyId, material))).toBe('OK');
  });

  it('held: after UpdatePrimaryRegion rotation belongs to the new primary and reaches the old one, also while it is disabled', async () => {
    const { east, west } = kmsAt();
    const k = await mrk(east);
    await east.call('EnableKeyRotation', { KeyId: k.KeyId, RotationPeriodInDays: 90 });
    await east.call('UpdatePrimaryRegion', { KeyId: k.KeyId, PrimaryRegion: 'eu-west-1' });
    expect(await outcome(east.call('RotateKeyOnDemand', { KeyId: k.KeyId }))).toBe('UnsupportedOperationException');
    await east.call('DisableKey', { KeyId: k.KeyId });
    await west.call('RotateKeyOnDemand', { KeyId: k.KeyId });
    const ct = (await west.call('Encrypt', { KeyId: k.KeyId, Plaintext: Buffer.from('new material') })).CiphertextBlob;
    await east.call('EnableKey', { KeyId: k.KeyId });
    expect(await outcome(east.call('Decrypt', { CiphertextBlob: ct }))).toBe('OK');
    expect((await east.call('GetKeyRotationStatus', { KeyId: k.KeyId })).RotationPeriodInDays).toBe(90);
  });

  it('held: a Region whose replica is PendingDeletion gets no second replica; a primary in PendingReplicaDeletion cannot be replicated, moved or enabled', async () => {
    const { east, west } = kmsAt();
    const k = await mrk(east);
    await west.call('ScheduleKeyDeletion', { KeyId: k.KeyId, PendingWindowInDays: 7 });
    expect(await outcome(east.call('ReplicateKey', { KeyId: k.KeyId, ReplicaRegion: 'eu-west-1' }))).toBe('AlreadyExistsException');
    expect(await outcome(east.call('UpdatePrimaryRegion', { KeyId: k.KeyId, PrimaryRegion: 'eu-west-1' }))).toBe('KMSInvalidStateException');
    await east.call('ScheduleKeyDeletion', { KeyId: k.KeyId, PendingWindowInDays: 30 });
    expect((await md(east, k.KeyId)).KeyState).toBe('PendingReplicaDeletion');
    for (const [op, input] of [
      ['ReplicateKey', { KeyId: k.KeyId, ReplicaRegion: 'ap-south-1' }],
      ['EnableKey', { KeyId: k.KeyId }],
      ['Encrypt', { KeyId: k.KeyId, Plaintext: Buffer.from('x') }],
    ] as const) expect(await outcome(east.call(op, input))).toBe('KMSInvalidStateException');
  });
});
