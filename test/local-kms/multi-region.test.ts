import { afterEach, describe, expect, it } from 'vitest';
import { constants, createPublicKey, publicEncrypt, randomBytes, verify as nodeVerify } from 'node:crypto';
import { LocalKms, type LocalKmsClient } from '../../src/local-kms/index.js';
import { KmsServiceError } from '../../src/local-kms/errors.js';
import { parseIdentityPolicy } from '../../src/local-kms/policy.js';
import { ACCOUNT, tempDir } from './helpers.js';

/**
 * Multi-Region keys in process (API Reference: CreateKey `MultiRegion`, ReplicateKey,
 * UpdatePrimaryRegion, DescribeKey `MultiRegionConfiguration`, ScheduleKeyDeletion of a primary
 * with replicas; Developer Guide, "Multi-Region keys in AWS KMS": shared and independent properties).
 */

const DAY_MS = 86_400_000;

async function typeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof KmsServiceError) return e.type;
    throw e;
  }
  return 'OK';
}

interface Setup {
  kms: LocalKms;
  east: LocalKmsClient;
  west: LocalKmsClient;
  clock: { now: number };
}

function setup(options: { replicaCreationMs?: number; dataDir?: string } = {}): Setup {
  const clock = { now: Date.UTC(2026, 0, 1) };
  const kms = new LocalKms({ clock: () => clock.now, ...options });
  return { kms, east: kms.client(), west: kms.client({ region: 'eu-west-1' }), clock };
}

type Md = Record<string, any>;
const md = async (c: LocalKmsClient, KeyId: string): Promise<Md> => (await c.call('DescribeKey', { KeyId })).KeyMetadata as Md;

async function primaryAndReplica(s: Setup, input: Record<string, unknown> = {}): Promise<{ keyId: string; eastArn: string; westArn: string }> {
  const created = (await s.east.call('CreateKey', { MultiRegion: true, ...input })).KeyMetadata as Md;
  const replica = await s.east.call('ReplicateKey', { KeyId: created.Arn, ReplicaRegion: 'eu-west-1' });
  return { keyId: created.KeyId, eastArn: created.Arn, westArn: (replica.ReplicaKeyMetadata as Md).Arn };
}

const open: LocalKms[] = [];
afterEach(() => {
  for (const k of open.splice(0)) k.service.close();
});

describe('multi-Region keys: create, replicate, describe', () => {
  it('CreateKey MultiRegion: true makes a primary with id mrk- + 32 hex digits; ReplicateKey makes a replica in the other Region with the same id, its own ARN, policy, description and tags', async () => {
    const s = setup();
    open.push(s.kms);
    const created = (await s.east.call('CreateKey', { MultiRegion: true, Description: 'primary' })).KeyMetadata as Md;
    expect(created.KeyId).toMatch(/^mrk-[0-9a-f]{32}$/);
    expect(created.Arn).toBe(`arn:aws:kms:us-east-1:${ACCOUNT}:key/${created.KeyId}`);
    expect(created.MultiRegion).toBe(true);
    expect(created.MultiRegionConfiguration).toEqual({
      MultiRegionKeyType: 'PRIMARY',
      PrimaryKey: { Arn: created.Arn, Region: 'us-east-1' },
      ReplicaKeys: [],
    });
    const Policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' }],
    });
    const r = await s.east.call('ReplicateKey', { KeyId: created.KeyId, ReplicaRegion: 'eu-west-1', Description: 'replica', Policy, Tags: [{ TagKey: 'team', TagValue: 'dr' }] });
    const replica = r.ReplicaKeyMetadata as Md;
    expect(replica.KeyId).toBe(created.KeyId);
    expect(replica.Arn).toBe(`arn:aws:kms:eu-west-1:${ACCOUNT}:key/${created.KeyId}`);
    expect(replica.Description).toBe('replica');
    expect(replica.KeyState).toBe('Enabled');
    expect(r.ReplicaPolicy).toBe(Policy);
    expect(r.ReplicaTags).toEqual([{ TagKey: 'team', TagValue: 'dr' }]);
    const config = { PrimaryKey: { Arn: created.Arn, Region: 'us-east-1' }, ReplicaKeys: [{ Arn: replica.Arn, Region: 'eu-west-1' }] };
    expect((await md(s.east, created.KeyId)).MultiRegionConfiguration).toEqual({ MultiRegionKeyType: 'PRIMARY', ...config });
    expect((await md(s.west, created.KeyId)).MultiRegionConfiguration).toEqual({ MultiRegionKeyType: 'REPLICA', ...config });
    // Independent properties: the primary keeps its own description, tags and policy.
    expect((await md(s.east, created.KeyId)).Description).toBe('primary');
    expect((await s.east.call('ListResourceTags', { KeyId: created.KeyId })).Tags).toEqual([]);
    expect((await s.east.call('GetKeyPolicy', { KeyId: created.KeyId })).Policy).not.toBe(Policy);
    // Each Region lists its own keys; a key ARN of another Region names nothing here.
    expect(((await s.west.call('ListKeys')).Keys as Md[]).map((k) => k.KeyArn)).toEqual([replica.Arn]);
    expect(await typeOf(s.west.call('DescribeKey', { KeyId: created.Arn }))).toBe('NotFoundException');
    expect(await typeOf(s.east.call('DescribeKey', { KeyId: replica.Arn }))).toBe('NotFoundException');
  });

  it('single-Region keys are unchanged: UUID ids, MultiRegion false, no configuration, and each Region has its own', async () => {
    const s = setup();
    open.push(s.kms);
    const east = (await s.east.call('CreateKey')).KeyMetadata as Md;
    expect(east.KeyId).toMatch(/^[0-9a-f]{8}-/);
    expect(east.MultiRegion).toBe(false);
    expect(east.MultiRegionConfiguration).toBeUndefined();
    const west = (await s.west.call('CreateKey')).KeyMetadata as Md;
    expect(west.Arn).toBe(`arn:aws:kms:eu-west-1:${ACCOUNT}:key/${west.KeyId}`);
    expect(((await s.east.call('ListKeys')).Keys as Md[]).map((k) => k.KeyId)).toEqual([east.KeyId]);
    // A single-Region ciphertext does not decrypt in another Region.
    const ct = (await s.east.call('Encrypt', { KeyId: east.KeyId, Plaintext: Buffer.from('x') })).CiphertextBlob;
    expect(await typeOf(s.west.call('Decrypt', { CiphertextBlob: ct }))).toBe('NotFoundException');
    expect(await typeOf(s.east.call('ReplicateKey', { KeyId: east.KeyId, ReplicaRegion: 'eu-west-1' }))).toBe('UnsupportedOperationException');
  });

  it('ReplicateKey refuses what AWS refuses: a replica as source, a Region that already has a copy, the primary Region, another partition, a malformed Region, an alias', async () => {
    const s = setup();
    open.push(s.kms);
    const { keyId, westArn } = await primaryAndReplica(s);
    await s.east.call('CreateAlias', { AliasName: 'alias/mrk', TargetKeyId: keyId });
    expect(await typeOf(s.west.call('ReplicateKey', { KeyId: westArn, ReplicaRegion: 'ap-southeast-2' }))).toBe('UnsupportedOperationException');
    expect(await typeOf(s.east.call('ReplicateKey', { KeyId: keyId, ReplicaRegion: 'eu-west-1' }))).toBe('AlreadyExistsException');
    expect(await typeOf(s.east.call('ReplicateKey', { KeyId: keyId, ReplicaRegion: 'us-east-1' }))).toBe('AlreadyExistsException');
    expect(await typeOf(s.east.call('ReplicateKey', { KeyId: keyId, ReplicaRegion: 'cn-north-1' }))).toBe('ValidationException');
    expect(await typeOf(s.east.call('ReplicateKey', { KeyId: keyId, ReplicaRegion: 'EU_WEST_1' }))).toBe('ValidationException');
    expect(await typeOf(s.east.call('ReplicateKey', { KeyId: keyId }))).toBe('ValidationException');
    expect(await typeOf(s.east.call('ReplicateKey', { KeyId: 'alias/mrk', ReplicaRegion: 'ap-southeast-2' }))).toBe('NotFoundException');
    // A second Region works.
    const third = (await s.east.call('ReplicateKey', { KeyId: keyId, ReplicaRegion: 'ap-southeast-2' })).ReplicaKeyMetadata as Md;
    expect(third.MultiRegionConfiguration.ReplicaKeys.map((r: Md) => r.Region)).toEqual(['ap-southeast-2', 'eu-west-1']);
  });

  it('an in-process client for a Region of another partition, or not a Region, is a RangeError', () => {
    const s = setup();
    open.push(s.kms);
    expect(() => s.kms.client({ region: 'cn-north-1' })).toThrow(RangeError);
    expect(() => s.kms.client({ region: 'mars' })).toThrow(/region must be an AWS Region name/);
  });
});

describe('multi-Region keys: shared key material', () => {
  it('ciphertext from either copy decrypts with the other, and Decrypt answers with the ARN of the Region it was sent to', async () => {
    const s = setup();
    open.push(s.kms);
    const { keyId, eastArn, westArn } = await primaryAndReplica(s);
    const EncryptionContext = { purpose: 'dr' };
    const fromEast = await s.east.call('Encrypt', { KeyId: keyId, Plaintext: Buffer.from('east'), EncryptionContext });
    const inWest = await s.west.call('Decrypt', { CiphertextBlob: fromEast.CiphertextBlob, EncryptionContext });
    expect(Buffer.from(inWest.Plaintext as Uint8Array).toString()).toBe('east');
    expect(inWest.KeyId).toBe(westArn);
    // With KeyId (the replica's ARN), and with the wrong context.
    expect((await s.west.call('Decrypt', { KeyId: westArn, CiphertextBlob: fromEast.CiphertextBlob, EncryptionContext })).KeyId).toBe(westArn);
    expect(await typeOf(s.west.call('Decrypt', { CiphertextBlob: fromEast.CiphertextBlob, EncryptionContext: { purpose: 'other' } }))).toBe('InvalidCiphertextException');
    const dk = await s.west.call('GenerateDataKey', { KeyId: westArn, KeySpec: 'AES_256' });
    const back = await s.east.call('Decrypt', { CiphertextBlob: dk.CiphertextBlob });
    expect(Buffer.from(back.Plaintext as Uint8Array)).toEqual(Buffer.from(dk.Plaintext as Uint8Array));
    expect(back.KeyId).toBe(eastArn);
  });

  it('asymmetric and HMAC multi-Region keys: a signature made in one Region verifies in the other, the public key is the same, a MAC verifies across', async () => {
    const s = setup();
    open.push(s.kms);
    const sig = await primaryAndReplica(s, { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    const Message = Buffer.from('signed in us-east-1');
    const signed = await s.east.call('Sign', { KeyId: sig.keyId, Message, SigningAlgorithm: 'ECDSA_SHA_256' });
    expect((await s.west.call('Verify', { KeyId: sig.westArn, Message, Signature: signed.Signature, SigningAlgorithm: 'ECDSA_SHA_256' })).SignatureValid).toBe(true);
    const eastPub = (await s.east.call('GetPublicKey', { KeyId: sig.keyId })).PublicKey as Uint8Array;
    const westPub = (await s.west.call('GetPublicKey', { KeyId: sig.keyId })).PublicKey as Uint8Array;
    expect(Buffer.from(westPub)).toEqual(Buffer.from(eastPub));
    expect(nodeVerify('sha256', Message, createPublicKey({ key: Buffer.from(westPub), format: 'der', type: 'spki' }), Buffer.from(signed.Signature as Uint8Array))).toBe(true);
    const mac = await primaryAndReplica(s, { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    const made = await s.west.call('GenerateMac', { KeyId: mac.westArn, Message, MacAlgorithm: 'HMAC_SHA_256' });
    expect((await s.east.call('VerifyMac', { KeyId: mac.keyId, Message, Mac: made.Mac, MacAlgorithm: 'HMAC_SHA_256' })).MacValid).toBe(true);
  });

  it('rotation is the primary\'s: on-demand and automatic rotations reach the replica; rotation operations on a replica are refused; GetKeyRotationStatus of a replica shows the shared status', async () => {
    const s = setup();
    open.push(s.kms);
    const { keyId, westArn } = await primaryAndReplica(s);
    expect(await typeOf(s.west.call('EnableKeyRotation', { KeyId: westArn }))).toBe('UnsupportedOperationException');
    expect(await typeOf(s.west.call('RotateKeyOnDemand', { KeyId: westArn }))).toBe('UnsupportedOperationException');
    await s.east.call('RotateKeyOnDemand', { KeyId: keyId });
    const after = await s.east.call('Encrypt', { KeyId: keyId, Plaintext: Buffer.from('rotated') });
    expect(Buffer.from((await s.west.call('Decrypt', { CiphertextBlob: after.CiphertextBlob })).Plaintext as Uint8Array).toString()).toBe('rotated');
    expect((await md(s.west, keyId)).CurrentKeyMaterialId).toBe((await md(s.east, keyId)).CurrentKeyMaterialId);
    await s.east.call('EnableKeyRotation', { KeyId: keyId, RotationPeriodInDays: 90 });
    const status = await s.west.call('GetKeyRotationStatus', { KeyId: westArn });
    expect(status).toMatchObject({ KeyRotationEnabled: true, RotationPeriodInDays: 90 });
    s.clock.now += 91 * DAY_MS;
    const auto = await s.east.call('Encrypt', { KeyId: keyId, Plaintext: Buffer.from('auto') });
    const rotations = (await s.west.call('ListKeyRotations', { KeyId: westArn })).Rotations as Md[];
    expect(rotations.map((r) => r.RotationType)).toEqual(['ON_DEMAND', 'AUTOMATIC']);
    expect(Buffer.from((await s.west.call('Decrypt', { CiphertextBlob: auto.CiphertextBlob })).Plaintext as Uint8Array).toString()).toBe('auto');
    // The replica never rotates on its own: its material is the primary's, one copy per rotation.
    s.clock.now += 91 * DAY_MS;
    await s.west.call('ListKeys');
    expect((await md(s.west, keyId)).CurrentKeyMaterialId).toBe((await md(s.east, keyId)).CurrentKeyMaterialId);
    expect(((await s.east.call('ListKeyRotations', { KeyId: keyId })).Rotations as Md[]).length).toBe(3);
  });

  it('imported material: the replica is created without material, takes only the primary\'s material, and then decrypts the primary\'s ciphertext', async () => {
    const s = setup();
    open.push(s.kms);
    const { keyId, westArn } = await primaryAndReplica(s, { Origin: 'EXTERNAL' });
    expect((await md(s.west, keyId)).KeyState).toBe('PendingImport');
    const material = randomBytes(32);
    const importInto = async (c: LocalKmsClient, bytes: Buffer) => {
      const p = await c.call('GetParametersForImport', { KeyId: keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' });
      const wrapped = publicEncrypt(
        { key: createPublicKey({ key: Buffer.from(p.PublicKey as Uint8Array), format: 'der', type: 'spki' }), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
        bytes,
      );
      return c.call('ImportKeyMaterial', { KeyId: keyId, ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapped, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' });
    };
    const first = await importInto(s.east, material);
    // Other material is refused in the replica; the same material is accepted, with the same id.
    expect(await typeOf(importInto(s.west, randomBytes(32)))).toBe('IncorrectKeyMaterialException');
    const second = await importInto(s.west, material);
    expect(second.KeyMaterialId).toBe(first.KeyMaterialId);
    const ct = await s.east.call('Encrypt', { KeyId: keyId, Plaintext: Buffer.from('imported') });
    expect(Buffer.from((await s.west.call('Decrypt', { KeyId: westArn, CiphertextBlob: ct.CiphertextBlob })).Plaintext as Uint8Array).toString()).toBe('imported');
  });
});

describe('multi-Region keys: per-Region state, deletion, primary Region', () => {
  it('enabled state, key policy and aliases are each copy\'s own', async () => {
    const s = setup();
    open.push(s.kms);
    const { keyId, westArn } = await primaryAndReplica(s);
    await s.west.call('DisableKey', { KeyId: westArn });
    expect((await md(s.east, keyId)).KeyState).toBe('Enabled');
    expect(await typeOf(s.west.call('Encrypt', { KeyId: westArn, Plaintext: Buffer.from('x') }))).toBe('DisabledException');
    await s.west.call('EnableKey', { KeyId: westArn });
    await s.east.call('CreateAlias', { AliasName: 'alias/app', TargetKeyId: keyId });
    await s.west.call('CreateAlias', { AliasName: 'alias/app', TargetKeyId: keyId });
    const aliasArns = async (c: LocalKmsClient) => ((await c.call('ListAliases')).Aliases as Md[]).filter((a) => a.AliasName === 'alias/app').map((a) => a.AliasArn);
    expect(await aliasArns(s.east)).toEqual([`arn:aws:kms:us-east-1:${ACCOUNT}:alias/app`]);
    expect(await aliasArns(s.west)).toEqual([`arn:aws:kms:eu-west-1:${ACCOUNT}:alias/app`]);
    expect((await s.west.call('Encrypt', { KeyId: 'alias/app', Plaintext: Buffer.from('x') })).KeyId).toBe(westArn);
  });

  it('ScheduleKeyDeletion of a primary with replicas: PendingReplicaDeletion, no DeletionDate, no use; its waiting period starts when the last replica is deleted', async () => {
    const s = setup();
    open.push(s.kms);
    const { keyId, westArn } = await primaryAndReplica(s);
    const scheduled = await s.east.call('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 10 });
    expect(scheduled).toEqual({ KeyId: expect.stringContaining(':us-east-1:'), KeyState: 'PendingReplicaDeletion', PendingWindowInDays: 10 });
    const waiting = await md(s.east, keyId);
    expect(waiting).toMatchObject({ KeyState: 'PendingReplicaDeletion', Enabled: false, PendingDeletionWindowInDays: 10 });
    expect(waiting.DeletionDate).toBeUndefined();
    expect(await typeOf(s.east.call('Encrypt', { KeyId: keyId, Plaintext: Buffer.from('x') }))).toBe('KMSInvalidStateException');
    expect(await typeOf(s.east.call('ReplicateKey', { KeyId: keyId, ReplicaRegion: 'ap-south-1' }))).toBe('KMSInvalidStateException');
    expect(await typeOf(s.east.call('ScheduleKeyDeletion', { KeyId: keyId }))).toBe('KMSInvalidStateException');
    // The replica still works, and is deleted on its own schedule.
    expect((await s.west.call('Encrypt', { KeyId: westArn, Plaintext: Buffer.from('x') })).KeyId).toBe(westArn);
    await s.west.call('ScheduleKeyDeletion', { KeyId: westArn, PendingWindowInDays: 7 });
    // The waiting period starts when the replica was deleted (its deletion date), however late
    // the next request comes.
    const deletedAt = s.clock.now + 7 * DAY_MS;
    s.clock.now += 8 * DAY_MS;
    expect(await typeOf(s.west.call('DescribeKey', { KeyId: westArn }))).toBe('NotFoundException');
    const pending = await md(s.east, keyId);
    expect(pending.KeyState).toBe('PendingDeletion');
    expect(pending.DeletionDate).toEqual(new Date(deletedAt + 10 * DAY_MS));
    expect(pending.MultiRegionConfiguration.ReplicaKeys).toEqual([]);
    s.clock.now += 10 * DAY_MS;
    expect(await typeOf(s.east.call('DescribeKey', { KeyId: keyId }))).toBe('NotFoundException');
  });

  it('CancelKeyDeletion of a primary waiting for its replicas leaves it Disabled; a primary without replicas is scheduled as any key', async () => {
    const s = setup();
    open.push(s.kms);
    const { keyId } = await primaryAndReplica(s);
    await s.east.call('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 7 });
    await s.east.call('CancelKeyDeletion', { KeyId: keyId });
    expect((await md(s.east, keyId)).KeyState).toBe('Disabled');
    const lone = (await s.east.call('CreateKey', { MultiRegion: true })).KeyMetadata as Md;
    expect((await s.east.call('ScheduleKeyDeletion', { KeyId: lone.KeyId, PendingWindowInDays: 7 })).KeyState).toBe('PendingDeletion');
  });

  it('UpdatePrimaryRegion swaps primary and replica in every copy; only the new primary replicates; a Region without a replica is NotFoundException', async () => {
    const s = setup();
    open.push(s.kms);
    const { keyId, eastArn, westArn } = await primaryAndReplica(s);
    expect(await typeOf(s.east.call('UpdatePrimaryRegion', { KeyId: keyId, PrimaryRegion: 'ap-south-1' }))).toBe('NotFoundException');
    expect(await typeOf(s.west.call('UpdatePrimaryRegion', { KeyId: westArn, PrimaryRegion: 'us-east-1' }))).toBe('UnsupportedOperationException');
    expect(await s.east.call('UpdatePrimaryRegion', { KeyId: keyId, PrimaryRegion: 'eu-west-1' })).toEqual({});
    const config = { PrimaryKey: { Arn: westArn, Region: 'eu-west-1' }, ReplicaKeys: [{ Arn: eastArn, Region: 'us-east-1' }] };
    expect((await md(s.west, keyId)).MultiRegionConfiguration).toEqual({ MultiRegionKeyType: 'PRIMARY', ...config });
    expect((await md(s.east, keyId)).MultiRegionConfiguration).toEqual({ MultiRegionKeyType: 'REPLICA', ...config });
    expect(await typeOf(s.east.call('ReplicateKey', { KeyId: keyId, ReplicaRegion: 'ap-south-1' }))).toBe('UnsupportedOperationException');
    expect(await typeOf(s.east.call('RotateKeyOnDemand', { KeyId: keyId }))).toBe('UnsupportedOperationException');
    await s.west.call('ReplicateKey', { KeyId: keyId, ReplicaRegion: 'ap-south-1' });
    await s.west.call('RotateKeyOnDemand', { KeyId: keyId });
    const ct = await s.west.call('Encrypt', { KeyId: keyId, Plaintext: Buffer.from('new primary') });
    expect(Buffer.from((await s.east.call('Decrypt', { CiphertextBlob: ct.CiphertextBlob })).Plaintext as Uint8Array).toString()).toBe('new primary');
  });

  it('a replica is Creating for replicaCreationMs: manageable, not usable (KMSInvalidStateException), Enabled afterwards', async () => {
    const s = setup({ replicaCreationMs: 3000 });
    open.push(s.kms);
    const { keyId, westArn } = await primaryAndReplica(s);
    expect((await md(s.west, keyId)).KeyState).toBe('Creating');
    expect(await typeOf(s.west.call('Encrypt', { KeyId: westArn, Plaintext: Buffer.from('x') }))).toBe('KMSInvalidStateException');
    await s.west.call('TagResource', { KeyId: westArn, Tags: [{ TagKey: 'k', TagValue: 'v' }] });
    s.clock.now += 3000;
    expect((await md(s.west, keyId)).KeyState).toBe('Enabled');
    expect(() => new LocalKms({ replicaCreationMs: -1 })).toThrow(/replicaCreationMs must be an integer number of milliseconds in 0..600000/);
  });
});

describe('multi-Region keys: authorization', () => {
  it('kms:ReplicateKey on the primary with kms:ReplicaRegion; kms:MultiRegion and kms:MultiRegionKeyType from the copy the request addresses', async () => {
    const s = setup();
    open.push(s.kms);
    const admin = `arn:aws:iam::${ACCOUNT}:user/admin`;
    const app = `arn:aws:iam::${ACCOUNT}:role/app`;
    const Policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' },
        { Effect: 'Allow', Principal: { AWS: admin }, Action: 'kms:ReplicateKey', Resource: '*', Condition: { StringEquals: { 'kms:ReplicaRegion': 'eu-west-1' } } },
        { Effect: 'Allow', Principal: { AWS: app }, Action: 'kms:Encrypt', Resource: '*', Condition: { Bool: { 'kms:MultiRegion': 'true' }, StringEquals: { 'kms:MultiRegionKeyType': 'REPLICA' } } },
      ],
    });
    const key = (await s.east.call('CreateKey', { MultiRegion: true, Policy })).KeyMetadata as Md;
    const asAdmin = s.kms.client({ caller: admin });
    expect(await typeOf(asAdmin.call('ReplicateKey', { KeyId: key.KeyId, ReplicaRegion: 'ap-south-1' }))).toBe('AccessDeniedException');
    // The replica's policy must pass the lockout check for the caller (admin may not PutKeyPolicy): bypassed.
    expect(await typeOf(asAdmin.call('ReplicateKey', { KeyId: key.KeyId, ReplicaRegion: 'eu-west-1', Policy }))).toBe('MalformedPolicyDocumentException');
    expect(await typeOf(asAdmin.call('ReplicateKey', { KeyId: key.KeyId, ReplicaRegion: 'eu-west-1', Policy, BypassPolicyLockoutSafetyCheck: true }))).toBe('OK');
    const eastApp = s.kms.client({ caller: app });
    const westApp = s.kms.client({ caller: app, region: 'eu-west-1' });
    expect(await typeOf(eastApp.call('Encrypt', { KeyId: key.KeyId, Plaintext: Buffer.from('x') }))).toBe('AccessDeniedException');
    expect(await typeOf(westApp.call('Encrypt', { KeyId: key.KeyId, Plaintext: Buffer.from('x') }))).toBe('OK');
  });

  it('ReplicateKey needs kms:CreateKey (and kms:TagResource for Tags) in the caller\'s IAM policies in the replica Region', async () => {
    const s = setup();
    open.push(s.kms);
    const arn = `arn:aws:iam::${ACCOUNT}:role/replicator`;
    const as = (...Action: string[]) =>
      s.kms.client({
        caller: { arn, account: ACCOUNT, identityPolicies: [parseIdentityPolicy({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action, Resource: '*', Condition: { Bool: { 'kms:MultiRegion': 'true' } } }] })] },
      });
    const key = (await s.east.call('CreateKey', { MultiRegion: true })).KeyMetadata as Md;
    expect(await typeOf(as('kms:ReplicateKey').call('ReplicateKey', { KeyId: key.KeyId, ReplicaRegion: 'eu-west-1' }))).toBe('AccessDeniedException');
    const Tags = [{ TagKey: 'team', TagValue: 'dr' }];
    expect(await typeOf(as('kms:ReplicateKey', 'kms:CreateKey').call('ReplicateKey', { KeyId: key.KeyId, ReplicaRegion: 'eu-west-1', Tags }))).toBe('AccessDeniedException');
    expect(await typeOf(as('kms:ReplicateKey', 'kms:CreateKey', 'kms:TagResource').call('ReplicateKey', { KeyId: key.KeyId, ReplicaRegion: 'eu-west-1', Tags }))).toBe('OK');
  });

  it('UpdatePrimaryRegion needs kms:UpdatePrimaryRegion in both copies\' key policies', async () => {
    const s = setup();
    open.push(s.kms);
    const ops = `arn:aws:iam::${ACCOUNT}:role/ops`;
    const policy = (allowOps: boolean) =>
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' },
          ...(allowOps ? [{ Effect: 'Allow', Principal: { AWS: ops }, Action: 'kms:UpdatePrimaryRegion', Resource: '*', Condition: { StringEquals: { 'kms:PrimaryRegion': 'eu-west-1' } } }] : []),
        ],
      });
    const key = (await s.east.call('CreateKey', { MultiRegion: true, Policy: policy(true) })).KeyMetadata as Md;
    await s.east.call('ReplicateKey', { KeyId: key.KeyId, ReplicaRegion: 'eu-west-1', Policy: policy(false) });
    const asOps = s.kms.client({ caller: ops });
    expect(await typeOf(asOps.call('UpdatePrimaryRegion', { KeyId: key.KeyId, PrimaryRegion: 'eu-west-1' }))).toBe('AccessDeniedException');
    await s.west.call('PutKeyPolicy', { KeyId: key.KeyId, PolicyName: 'default', Policy: policy(true) });
    expect(await typeOf(asOps.call('UpdatePrimaryRegion', { KeyId: key.KeyId, PrimaryRegion: 'eu-west-1' }))).toBe('OK');
  });
});

describe('multi-Region keys: persistence', () => {
  it('a data directory written before several Regions were served (no home-region file) opens with its keys in the Region their ARNs name', async () => {
    const tmp = tempDir('lkms-old-dir-');
    try {
      const first = new LocalKms({ dataDir: tmp.dir, region: 'us-west-2' });
      const { arn } = await first.createKey({ Description: 'old' });
      const ct = (await first.client().call('Encrypt', { KeyId: arn, Plaintext: Buffer.from('old data') })).CiphertextBlob;
      first.close();
      const { rmSync, existsSync, readdirSync } = await import('node:fs');
      rmSync(`${tmp.dir}/home-region`);
      const again = new LocalKms({ dataDir: tmp.dir }); // default Region us-east-1 now
      try {
        expect(((await again.client({ region: 'us-west-2' }).call('DescribeKey', { KeyId: arn })).KeyMetadata as Md).Description).toBe('old');
        expect(Buffer.from((await again.client({ region: 'us-west-2' }).call('Decrypt', { CiphertextBlob: ct })).Plaintext as Uint8Array).toString()).toBe('old data');
        expect(await typeOf(again.client().call('DescribeKey', { KeyId: arn }))).toBe('NotFoundException');
        expect(existsSync(`${tmp.dir}/home-region`)).toBe(true);
        expect(readdirSync(tmp.dir)).not.toContain('regions'); // nothing written for a Region only named
      } finally {
        again.close();
      }
    } finally {
      tmp.cleanup();
    }
  });

  it('a data directory keeps every Region: after a restart the replica is found in its Region and still decrypts the primary\'s ciphertext', async () => {
    const tmp = tempDir('lkms-mrk-');
    try {
      const first = setup({ dataDir: tmp.dir });
      const { keyId, westArn } = await primaryAndReplica(first);
      const ct = (await first.east.call('Encrypt', { KeyId: keyId, Plaintext: Buffer.from('durable') })).CiphertextBlob;
      first.kms.service.close();
      const again = new LocalKms({ dataDir: tmp.dir });
      open.push(again);
      const west = again.client({ region: 'eu-west-1' });
      expect((await west.call('Decrypt', { CiphertextBlob: ct })).KeyId).toBe(westArn);
      expect(((await again.client().call('DescribeKey', { KeyId: keyId })).KeyMetadata as Md).MultiRegionConfiguration.ReplicaKeys).toEqual([{ Arn: westArn, Region: 'eu-west-1' }]);
      again.service.close();
      open.pop();
      // Another default Region later: the directory's own keys stay in their Region.
      const moved = new LocalKms({ dataDir: tmp.dir, region: 'eu-west-1' });
      open.push(moved);
      expect(((await moved.client().call('DescribeKey', { KeyId: keyId })).KeyMetadata as Md).Arn).toBe(westArn);
      expect(((await moved.client({ region: 'us-east-1' }).call('DescribeKey', { KeyId: keyId })).KeyMetadata as Md).MultiRegionConfiguration.MultiRegionKeyType).toBe('PRIMARY');
    } finally {
      for (const k of open.splice(0)) k.service.close();
      tmp.cleanup();
    }
  });
});

describe('multi-Region keys: grants', () => {
  it('a grant on a replica (and its token) works in the replica\'s Region only; grants are each copy\'s own', async () => {
    const s = setup();
    open.push(s.kms);
    const { keyId, westArn } = await primaryAndReplica(s);
    const grantee = `arn:aws:iam::${ACCOUNT}:role/reader`;
    const Policy = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' }] });
    await s.west.call('PutKeyPolicy', { KeyId: westArn, PolicyName: 'default', Policy });
    const grant = await s.west.call('CreateGrant', { KeyId: westArn, GranteePrincipal: grantee, Operations: ['Decrypt'] });
    expect(((await s.east.call('ListGrants', { KeyId: keyId })).Grants as Md[]).length).toBe(0);
    const ct = (await s.east.call('Encrypt', { KeyId: keyId, Plaintext: Buffer.from('granted') })).CiphertextBlob;
    const reader = s.kms.client({ caller: grantee, region: 'eu-west-1' });
    const out = await reader.call('Decrypt', { CiphertextBlob: ct, GrantTokens: [grant.GrantToken as string] });
    expect(Buffer.from(out.Plaintext as Uint8Array).toString()).toBe('granted');
    expect(await typeOf(s.kms.client({ caller: grantee }).call('Decrypt', { CiphertextBlob: ct }))).toBe('AccessDeniedException');
    await s.west.call('RetireGrant', { GrantToken: grant.GrantToken });
    expect(await typeOf(reader.call('Decrypt', { CiphertextBlob: ct }))).toBe('AccessDeniedException');
  });
});
