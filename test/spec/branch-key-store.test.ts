/**
 * Compliance: framework/branch-key-store.md (test/spec/compliance/framework/branch-key-store.md).
 *
 * What test/keyrings/hierarchy/store.test.ts and test/branch-key-store-dynamodb/ do not already
 * pin: grant tokens on every KMS request, the default KMS client's Region per configuration (a
 * real @aws-sdk/client-kms client against the local KMS server over HTTP, which answers for the
 * Region a request addresses), multi-Region key ARNs on read and on VersionKey, and the record
 * format checked before KMS is asked. KMS requests are recorded where the store hands them to its
 * client (the in-process local KMS underneath).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BranchKeyStore, DirectoryBranchKeyStorage, type BranchKeyItem, type KmsClient } from '../../src/index.js';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDbBranchKeyStorage } from '../../src/branch-key-store-dynamodb/index.js';
import { startDynalite } from '../support/dynalite.js';
import { LocalKms, startLocalKmsServer, type LocalKmsClient, type LocalKmsServer } from '../../src/local-kms/index.js';

interface Call {
  op: string;
  input: Record<string, unknown>;
}

function recording(client: LocalKmsClient, calls: Call[]): KmsClient {
  const rec =
    (op: string, f: (i: never) => Promise<unknown>) =>
    (input: Record<string, unknown>) => {
      calls.push({ op, input });
      return f(input as never);
    };
  return {
    generateDataKey: rec('GenerateDataKey', client.generateDataKey) as KmsClient['generateDataKey'],
    encrypt: rec('Encrypt', client.encrypt) as KmsClient['encrypt'],
    decrypt: rec('Decrypt', client.decrypt) as KmsClient['decrypt'],
    generateDataKeyWithoutPlaintext: rec('GenerateDataKeyWithoutPlaintext', client.generateDataKeyWithoutPlaintext!) as KmsClient['generateDataKeyWithoutPlaintext'],
    reEncrypt: rec('ReEncrypt', client.reEncrypt!) as KmsClient['reEncrypt'],
  };
}

type Storage = ConstructorParameters<typeof BranchKeyStore>[0]['storage'];

/** A storage that answers every read with `item` and refuses writes. */
const fixed = (item: BranchKeyItem | Record<string, unknown>): Storage => ({
  writeNewBranchKey: () => Promise.reject(new Error('read only')),
  writeNewBranchKeyVersion: () => Promise.reject(new Error('read only')),
  getItem: async () => item as BranchKeyItem,
});

describe('branch key store (specification)', () => {
  let dir: string;
  let kms: LocalKms;
  let client: LocalKmsClient;
  let arn: string;
  let calls: Call[];
  let storage: DirectoryBranchKeyStorage;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kms-envelope-spec-bks-'));
    kms = new LocalKms();
    client = kms.client();
    arn = (await kms.createKey()).arn;
    calls = [];
    storage = new DirectoryBranchKeyStorage({ dir });
  });
  afterEach(() => {
    kms.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every KMS request (GenerateDataKeyWithoutPlaintext, ReEncrypt, Decrypt, in every operation) names the configured key ARN and carries the grant tokens', async () => {
    const account = arn.split(':')[4]!;
    const token = (
      await client.call('CreateGrant', {
        KeyId: arn,
        GranteePrincipal: `arn:aws:iam::${account}:role/SpecGrantee`,
        Operations: ['GenerateDataKeyWithoutPlaintext', 'ReEncryptFrom', 'ReEncryptTo', 'Decrypt'],
      })
    ).GrantToken as string;
    const store = new BranchKeyStore({
      storage,
      logicalKeyStoreName: 'l',
      kmsConfiguration: { kmsKeyArn: arn },
      kmsClient: recording(client, calls),
      grantTokens: [token],
    });
    const { branchKeyId, branchKeyVersion } = await store.createKey();
    await store.versionKey(branchKeyId);
    await store.getActiveBranchKey(branchKeyId);
    await store.getBranchKeyVersion(branchKeyId, branchKeyVersion);
    await store.getBeaconKey(branchKeyId);
    expect(new Set(calls.map((c) => c.op))).toEqual(new Set(['GenerateDataKeyWithoutPlaintext', 'ReEncrypt', 'Decrypt']));
    expect(calls).toHaveLength(3 + 3 + 3);
    for (const c of calls) {
      expect(c.input.grantTokens).toEqual([token]);
      const ids = ['keyId', 'sourceKeyId', 'destinationKeyId'].filter((k) => k in c.input).map((k) => c.input[k]);
      expect(ids.length).toBeGreaterThan(0);
      for (const id of ids) expect(id).toBe(arn);
    }
    expect(store.getKeyStoreInfo().grantTokens).toEqual([token]);
  });

  it('the record format is checked before KMS is asked: a missing field, a tablename attribute, a version on a non-ACTIVE item or an ACTIVE item without one fail every read with MALFORMED_ITEM', async () => {
    const writer = new BranchKeyStore({ storage, logicalKeyStoreName: 'l', kmsConfiguration: { kmsKeyArn: arn }, kmsClient: client });
    const { branchKeyId, branchKeyVersion } = await writer.createKey();
    const reads: [string, (s: BranchKeyStore) => Promise<unknown>][] = [
      ['branch:ACTIVE', (s) => s.getActiveBranchKey(branchKeyId)],
      [`branch:version:${branchKeyVersion}`, (s) => s.getBranchKeyVersion(branchKeyId, branchKeyVersion)],
      ['beacon:ACTIVE', (s) => s.getBeaconKey(branchKeyId)],
    ];
    for (const [type, read] of reads) {
      const item = (await storage.getItem(branchKeyId, type as BranchKeyItem['type']))!;
      const bad: Record<string, unknown>[] = [];
      for (const f of ['branch-key-id', 'type', 'enc', 'kms-arn', 'create-time', 'hierarchy-version']) {
        const copy: Record<string, unknown> = { ...item };
        delete copy[f];
        bad.push(copy, { ...item, [f]: '' });
      }
      bad.push({ ...item, tablename: 'l' });
      if (type === 'branch:ACTIVE') {
        const { version: _v, ...noVersion } = item;
        bad.push(noVersion, { ...item, version: 'v1' });
      } else {
        bad.push({ ...item, version: `branch:version:${branchKeyVersion}` });
      }
      for (const b of bad) {
        calls.length = 0;
        const s = new BranchKeyStore({ storage: fixed(b), logicalKeyStoreName: 'l', kmsConfiguration: { kmsKeyArn: arn }, kmsClient: recording(client, calls) });
        await expect(read(s), `${type} ${JSON.stringify(Object.keys(b))}`).rejects.toMatchObject({ reason: 'MALFORMED_ITEM' });
        expect(calls).toEqual([]);
      }
      // The item as written reads.
      const s = new BranchKeyStore({ storage: fixed(item), logicalKeyStoreName: 'l', kmsConfiguration: { kmsKeyArn: arn }, kmsClient: client });
      await read(s);
    }
  });

  it('GetBeaconKey authenticates the beacon item: a changed attribute or another logical name fails in KMS Decrypt', async () => {
    const writer = new BranchKeyStore({ storage, logicalKeyStoreName: 'l', kmsConfiguration: { kmsKeyArn: arn }, kmsClient: client });
    const { branchKeyId } = await writer.createKey({ branchKeyId: 'bk', encryptionContext: { a: 'b' } });
    const beacon = (await storage.getItem(branchKeyId, 'beacon:ACTIVE'))!;
    const reader = (s: Storage, name = 'l') => new BranchKeyStore({ storage: s, logicalKeyStoreName: name, kmsConfiguration: { kmsKeyArn: arn }, kmsClient: client });
    await expect(reader(fixed({ ...beacon, 'aws-crypto-ec:a': 'c' })).getBeaconKey(branchKeyId)).rejects.toMatchObject({ code: 'ERR_KMS' });
    await expect(reader(fixed({ ...beacon, 'aws-crypto-ec:extra': 'x' })).getBeaconKey(branchKeyId)).rejects.toMatchObject({ code: 'ERR_KMS' });
    await expect(reader(storage, 'other').getBeaconKey(branchKeyId)).rejects.toMatchObject({ code: 'ERR_KMS' });
    expect((await reader(storage).getBeaconKey(branchKeyId)).encryptionContext).toEqual({ a: 'b' });
  });

  it('kms-arn on read: discovery refuses an alias ARN before KMS; MRDiscovery sends the stored multi-Region ARN moved to its Region; kmsMrkKeyArn accepts the key of another Region and sends the configured ARN', async () => {
    const primary = (await kms.createKey({ MultiRegion: true })).arn;
    const replica = ((await client.call('ReplicateKey', { KeyId: primary, ReplicaRegion: 'eu-west-1' })).ReplicaKeyMetadata as { Arn: string }).Arn;
    expect(replica).toBe(primary.replace(':us-east-1:', ':eu-west-1:'));
    const writer = new BranchKeyStore({ storage, logicalKeyStoreName: 'l', kmsConfiguration: { kmsKeyArn: primary }, kmsClient: client });
    const { branchKeyId } = await writer.createKey();
    const active = (await storage.getItem(branchKeyId, 'branch:ACTIVE'))!;
    expect(active['kms-arn']).toBe(primary);

    const aliasArn = primary.replace(/:key\/.*$/, ':alias/some-alias');
    for (const kmsConfiguration of ['discovery', { mrDiscoveryRegion: 'eu-west-1' }] as const) {
      calls.length = 0;
      const s = new BranchKeyStore({ storage: fixed({ ...active, 'kms-arn': aliasArn }), logicalKeyStoreName: 'l', kmsConfiguration, kmsClient: recording(client, calls) });
      await expect(s.getActiveBranchKey(branchKeyId)).rejects.toMatchObject({ reason: 'KMS_ARN_MISMATCH' });
      expect(calls).toEqual([]);
    }
    calls.length = 0;
    const west = kms.client({ region: 'eu-west-1' });
    const mrd = new BranchKeyStore({ storage, logicalKeyStoreName: 'l', kmsConfiguration: { mrDiscoveryRegion: 'eu-west-1' }, kmsClient: recording(west, calls) });
    await mrd.getActiveBranchKey(branchKeyId);
    expect(calls.map((c) => c.input.keyId)).toEqual([replica]);

    calls.length = 0;
    const mrk = new BranchKeyStore({ storage, logicalKeyStoreName: 'l', kmsConfiguration: { kmsMrkKeyArn: replica }, kmsClient: recording(west, calls) });
    await mrk.getActiveBranchKey(branchKeyId);
    expect(calls.map((c) => c.input.keyId)).toEqual([replica]);
    // kmsKeyArn wants the exact ARN.
    const exact = new BranchKeyStore({ storage, logicalKeyStoreName: 'l', kmsConfiguration: { kmsKeyArn: replica }, kmsClient: west });
    await expect(exact.getActiveBranchKey(branchKeyId)).rejects.toMatchObject({ reason: 'KMS_ARN_MISMATCH' });
  });

  it('VersionKey with kmsMrkKeyArn naming the replica of the stored key: requests go to the configured ARN, every item keeps the stored kms-arn', async () => {
    const primary = (await kms.createKey({ MultiRegion: true })).arn;
    const replica = ((await client.call('ReplicateKey', { KeyId: primary, ReplicaRegion: 'eu-west-1' })).ReplicaKeyMetadata as { Arn: string }).Arn;
    const writer = new BranchKeyStore({ storage, logicalKeyStoreName: 'l', kmsConfiguration: { kmsKeyArn: primary }, kmsClient: client });
    const { branchKeyId } = await writer.createKey();
    const rotator = new BranchKeyStore({ storage, logicalKeyStoreName: 'l', kmsConfiguration: { kmsMrkKeyArn: replica }, kmsClient: recording(kms.client({ region: 'eu-west-1' }), calls) });
    const { branchKeyVersion } = await rotator.versionKey(branchKeyId);
    expect(calls.map((c) => c.op)).toEqual(['ReEncrypt', 'GenerateDataKeyWithoutPlaintext', 'ReEncrypt']);
    for (const c of calls) {
      for (const k of ['keyId', 'sourceKeyId', 'destinationKeyId']) if (k in c.input) expect(c.input[k]).toBe(replica);
    }
    expect((await storage.getItem(branchKeyId, 'branch:ACTIVE'))!['kms-arn']).toBe(primary);
    expect((await storage.getItem(branchKeyId, `branch:version:${branchKeyVersion}`))!['kms-arn']).toBe(primary);
    // The primary's store reads the new version.
    expect((await writer.getActiveBranchKey(branchKeyId)).branchKeyVersion).toBe(branchKeyVersion);
    // A kms-arn that is not compatible with the configuration (another key): refused before any write.
    const other = new BranchKeyStore({ storage, logicalKeyStoreName: 'l', kmsConfiguration: { kmsKeyArn: arn }, kmsClient: client });
    await expect(other.versionKey(branchKeyId)).rejects.toMatchObject({ reason: 'KMS_ARN_MISMATCH' });
    expect((await writer.getActiveBranchKey(branchKeyId)).branchKeyVersion).toBe(branchKeyVersion);
  });

  describe('without kmsClient: an @aws-sdk/client-kms client (local KMS server over HTTP, environment Region us-east-1)', () => {
    let server: LocalKmsServer;
    let replica: string;
    beforeAll(async () => {
      server = await startLocalKmsServer({ port: 0 });
      const primary = ((await server.service.call('CreateKey', { MultiRegion: true })).KeyMetadata as { Arn: string }).Arn;
      replica = ((await server.service.call('ReplicateKey', { KeyId: primary, ReplicaRegion: 'eu-west-1' })).ReplicaKeyMetadata as { Arn: string }).Arn;
    });
    afterAll(async () => {
      await server.close();
    });
    beforeEach(() => {
      vi.stubEnv('AWS_REGION', 'us-east-1');
      vi.stubEnv('AWS_ENDPOINT_URL_KMS', server.url);
      vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDSPECBKSTEST00001');
      vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'spec-bks-secret');
      vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
    });
    afterEach(() => {
      vi.unstubAllEnvs();
    });

    it('kmsKeyArn / kmsMrkKeyArn: the Region of the ARN; MRDiscovery: its Region; discovery: the environment', async () => {
      for (const kmsConfiguration of [{ kmsKeyArn: replica }, { kmsMrkKeyArn: replica }]) {
        const store = new BranchKeyStore({ storage, logicalKeyStoreName: 'l', kmsConfiguration });
        const { branchKeyId } = await store.createKey();
        await store.getActiveBranchKey(branchKeyId);
        expect(store.kmsCalls).toBe(4);
      }
      const { branchKeyId } = await new BranchKeyStore({ storage, logicalKeyStoreName: 'l', kmsConfiguration: { kmsKeyArn: replica } }).createKey();
      const mrd = new BranchKeyStore({ storage, logicalKeyStoreName: 'l', kmsConfiguration: { mrDiscoveryRegion: 'eu-west-1' } });
      expect((await mrd.getActiveBranchKey(branchKeyId)).branchKey).toHaveLength(32);
      // Discovery uses the environment's Region: us-east-1 cannot use the eu-west-1 key; eu-west-1 can.
      await expect(new BranchKeyStore({ storage, logicalKeyStoreName: 'l', kmsConfiguration: 'discovery' }).getActiveBranchKey(branchKeyId)).rejects.toThrow();
      vi.stubEnv('AWS_REGION', 'eu-west-1');
      expect((await new BranchKeyStore({ storage, logicalKeyStoreName: 'l', kmsConfiguration: 'discovery' }).getActiveBranchKey(branchKeyId)).branchKey).toHaveLength(32);
    });
  });

  it('CreateKeyStore (DynamoDB, dynalite): DescribeTable first, CreateTable only when the table is not found; a CreateTable the server refuses fails the operation; an existing table with a secondary index is accepted', async () => {
    const ddb = await startDynalite();
    try {
      const c = ddb.client();
      const sent: string[] = [];
      let breakCreate = false;
      c.middlewareStack.add(
        (next, context) => async (args) => {
          sent.push(context.commandName!);
          // The server's own refusal: a table name it does not accept (DynamoDB naming rules).
          if (breakCreate && context.commandName === 'CreateTableCommand') (args.input as { TableName: string }).TableName = 'x';
          return next(args);
        },
        { step: 'initialize' },
      );
      const s = new DynamoDbBranchKeyStorage({ client: c, tableName: 'spec-keystore' });
      expect((await s.createTable()).created).toBe(true);
      expect(sent).toEqual(['DescribeTableCommand', 'CreateTableCommand']);
      sent.length = 0;
      expect((await s.createTable()).created).toBe(false);
      expect(sent).toEqual(['DescribeTableCommand']);
      breakCreate = true;
      sent.length = 0;
      const err = await new DynamoDbBranchKeyStorage({ client: c, tableName: 'spec-other' }).createTable().catch((e: unknown) => e);
      expect(sent).toEqual(['DescribeTableCommand', 'CreateTableCommand']);
      expect(err).toMatchObject({ code: 'ERR_BRANCH_KEY_STORE' });
      breakCreate = false;
      await c.send(
        new CreateTableCommand({
          TableName: 'spec-with-gsi',
          KeySchema: [
            { AttributeName: 'branch-key-id', KeyType: 'HASH' },
            { AttributeName: 'type', KeyType: 'RANGE' },
          ],
          AttributeDefinitions: [
            { AttributeName: 'branch-key-id', AttributeType: 'S' },
            { AttributeName: 'type', AttributeType: 'S' },
            { AttributeName: 'create-time', AttributeType: 'S' },
          ],
          GlobalSecondaryIndexes: [
            { IndexName: 'by-time', KeySchema: [{ AttributeName: 'create-time', KeyType: 'HASH' }], Projection: { ProjectionType: 'KEYS_ONLY' } },
          ],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
      expect((await new DynamoDbBranchKeyStorage({ client: c, tableName: 'spec-with-gsi' }).createTable()).created).toBe(false);
    } finally {
      await ddb.close();
    }
  });

  it('GetKeyStoreInfo names the storage: the directory, or the DynamoDB table name (regression: it was undefined for DynamoDB)', async () => {
    const ddb = await startDynalite();
    try {
      const table = new DynamoDbBranchKeyStorage({ client: ddb.client(), tableName: 'spec-info-table' });
      const onTable = new BranchKeyStore({ storage: table, logicalKeyStoreName: 'l', kmsConfiguration: { kmsKeyArn: arn }, kmsClient: client, keyStoreId: 'id-1' });
      expect(onTable.getKeyStoreInfo()).toEqual({
        keyStoreId: 'id-1',
        keyStoreName: 'spec-info-table',
        logicalKeyStoreName: 'l',
        grantTokens: [],
        kmsConfiguration: { kmsKeyArn: arn },
      });
      const onDir = new BranchKeyStore({ storage, logicalKeyStoreName: 'l', kmsConfiguration: 'discovery', kmsClient: client });
      expect(onDir.getKeyStoreInfo()).toMatchObject({ keyStoreName: dir, kmsConfiguration: 'discovery' });
    } finally {
      await ddb.close();
    }
  });
});
