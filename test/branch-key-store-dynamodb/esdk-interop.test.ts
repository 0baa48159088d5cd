/**
 * Interop of the DynamoDB branch key storage with the ESDK's BranchKeyStoreNode
 * (@aws-crypto/client-node 5.0.2), KMS being the local KMS over HTTP:
 * - the ESDK creates a branch key (its CreateKey sends a TransactWriteItems, here to the local
 *   TransactWriteItems stub, which keeps the request as sent); those Puts, replayed as PutItem into
 *   dynalite, are the items exactly as the ESDK writes them;
 * - our getItem reads them; what we write back (our encoding, PutItem into a second table) is
 *   attribute for attribute the same, and the ESDK's own DynamoDB storage (GetItem) reads and
 *   decrypts it;
 * - our CreateKey request for those items is the ESDK's request, placeholders resolved;
 * - the ESDK also reads through an adapter over our storage (its custom storage interface).
 */
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { GetItemCommand, PutItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BranchKeyStoreNode } from '@aws-crypto/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbBranchKeyStorage } from '../../src/branch-key-store-dynamodb/index.js';
import { startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import type { BranchKeyItem, BranchKeyItemType } from '../../src/keyrings/hierarchy/storage.js';
import { startDynalite, type Dynalite } from '../support/dynalite.js';
import { startTransactStub, type TransactStub, type WireItem } from '../support/ddb-transact-stub.js';
import { esdkStorageOver } from '../support/esdk-branch-key-storage.js';

const LOGICAL = 'interop-logical-store';
const ESDK_TABLE = 'EsdkWritten';
const OURS_TABLE = 'OursWritten';

let kmsServer: LocalKmsServer;
let kms: KMSClient;
let keyArn: string;
let ddb: Dynalite;
let client: DynamoDBClient;
let esdkStub: TransactStub;
let oursStub: TransactStub;
let fromEsdk: DynamoDbBranchKeyStorage;
let written: DynamoDbBranchKeyStorage;
let branchKeyId: string;
let esdkPuts: Array<{ TableName: string; Item: WireItem; ConditionExpression: string; ExpressionAttributeNames: Record<string, string>; ExpressionAttributeValues?: unknown }>;

const TYPES = (version: string): BranchKeyItemType[] => [version as BranchKeyItemType, 'branch:ACTIVE', 'beacon:ACTIVE'];
const esdkStore = (storage: ConstructorParameters<typeof BranchKeyStoreNode>[0]['storage']) =>
  new BranchKeyStoreNode({ logicalKeyStoreName: LOGICAL, storage, keyManagement: { kmsClient: kms }, kmsConfiguration: { identifier: keyArn } });

/** A wire (DynamoDB JSON) item as an SDK AttributeValue map, B decoded from base64. */
function fromWire(item: WireItem): Record<string, AttributeValue> {
  return Object.fromEntries(
    Object.entries(item).map(([k, v]) => [k, 'B' in v ? { B: new Uint8Array(Buffer.from(v.B!, 'base64')) } : (v as unknown as AttributeValue)]),
  );
}

beforeAll(async () => {
  kmsServer = await startLocalKmsServer({ port: 0 });
  const credentials = { accessKeyId: 'AKIDKEYSTORE', secretAccessKey: 'keystore-secret' };
  kms = new KMSClient({ endpoint: kmsServer.url, region: 'us-east-1', credentials });
  keyArn = (await kms.send(new CreateKeyCommand({ Description: 'branch key store interop' }))).KeyMetadata!.Arn!;
  ddb = await startDynalite();
  client = ddb.client();
  fromEsdk = new DynamoDbBranchKeyStorage({ client, tableName: ESDK_TABLE });
  written = new DynamoDbBranchKeyStorage({ client, tableName: OURS_TABLE });
  await fromEsdk.createTable();
  await written.createTable();
  esdkStub = await startTransactStub({ tableName: ESDK_TABLE });
  oursStub = await startTransactStub({ tableName: ESDK_TABLE });

  // The ESDK's CreateKey, its TransactWriteItems kept by the stub, replayed into dynalite.
  const created = await esdkStore({ ddbTableName: ESDK_TABLE, ddbClient: esdkStub.client() }).createKey({
    branchKeyIdentifier: 'interop-branch-key',
    encryptionContext: { department: 'admin', 'cost center': '7' },
  });
  branchKeyId = created.branchKeyIdentifier;
  const [request] = esdkStub.requests;
  expect(request!.target).toBe('DynamoDB_20120810.TransactWriteItems');
  esdkPuts = (request!.body.TransactItems as Array<{ Put: (typeof esdkPuts)[number] }>).map((t) => t.Put);
  for (const put of esdkPuts) await client.send(new PutItemCommand({ TableName: ESDK_TABLE, Item: fromWire(put.Item) }));
});
afterAll(async () => {
  await esdkStub?.close();
  await oursStub?.close();
  await ddb?.close();
  kms?.destroy();
  await kmsServer?.close();
});

describe('DynamoDB branch key storage <-> ESDK BranchKeyStoreNode', () => {
  it('the replayed items are what the ESDK reads: its DynamoDB storage decrypts them (sanity of the setup)', async () => {
    const esdk = esdkStore({ ddbTableName: ESDK_TABLE, ddbClient: client });
    const active = await esdk.getActiveBranchKey(branchKeyId);
    expect(active.branchKeyIdentifier).toBe(branchKeyId);
    expect(active.encryptionContext).toEqual({ department: 'admin', 'cost center': '7' });
  });

  it('our getItem reads the items the ESDK wrote, attribute for attribute, with its encodings (enc B, hierarchy-version N)', async () => {
    for (const put of esdkPuts) {
      const type = put.Item.type!.S as BranchKeyItemType;
      const item = await fromEsdk.getItem(branchKeyId, type);
      const expected: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(put.Item)) expected[k] = 'B' in v ? new Uint8Array(Buffer.from(v.B!, 'base64')) : (v.S ?? v.N);
      expect(item).toEqual(expected);
      expect(put.Item['hierarchy-version']).toEqual({ N: '1' });
      expect(Object.keys(put.Item.enc!)).toEqual(['B']);
    }
  });

  it('what we write (our encoding, PutItem) is the same DynamoDB item, and the ESDK DynamoDB storage reads and decrypts it', async () => {
    const version = esdkPuts[0]!.Item.type!.S!;
    const items: BranchKeyItem[] = [];
    for (const type of TYPES(version)) items.push((await fromEsdk.getItem(branchKeyId, type))!);
    // Our CreateKey request for these items, sent over HTTP to a stub: its Items go to dynalite.
    await new DynamoDbBranchKeyStorage({ client: oursStub.client(), tableName: ESDK_TABLE }).writeNewBranchKey({
      version: items[0]!,
      active: items[1]!,
      beacon: items[2]!,
    });
    const ourPuts = (oursStub.requests[0]!.body.TransactItems as Array<{ Put: (typeof esdkPuts)[number] }>).map((t) => t.Put);
    for (const put of ourPuts) await client.send(new PutItemCommand({ TableName: OURS_TABLE, Item: fromWire(put.Item) }));

    for (const type of TYPES(version)) {
      const key = { 'branch-key-id': { S: branchKeyId }, type: { S: type } };
      const a = await client.send(new GetItemCommand({ TableName: ESDK_TABLE, Key: key, ConsistentRead: true }));
      const b = await client.send(new GetItemCommand({ TableName: OURS_TABLE, Key: key, ConsistentRead: true }));
      expect(b.Item).toEqual(a.Item);
    }
    const esdkOnOurs = esdkStore({ ddbTableName: OURS_TABLE, ddbClient: client });
    const esdkOnTheirs = esdkStore({ ddbTableName: ESDK_TABLE, ddbClient: client });
    const active = await esdkOnOurs.getActiveBranchKey(branchKeyId);
    const versionKey = await esdkOnOurs.getBranchKeyVersion(branchKeyId, version.slice('branch:version:'.length));
    expect(Buffer.from(active.branchKey())).toEqual(Buffer.from((await esdkOnTheirs.getActiveBranchKey(branchKeyId)).branchKey()));
    expect(Buffer.from(versionKey.branchKey())).toEqual(Buffer.from(active.branchKey()));
  });

  it("our CreateKey request is the ESDK's: same TableName, Items and conditions (placeholders resolved: the specification's text)", async () => {
    const ourPuts = (oursStub.requests[0]!.body.TransactItems as Array<{ Put: (typeof esdkPuts)[number] }>).map((t) => t.Put);
    const resolved = (p: (typeof esdkPuts)[number]) => p.ConditionExpression.replace(/#\w+/g, (n) => p.ExpressionAttributeNames[n]!);
    expect(ourPuts).toHaveLength(esdkPuts.length);
    ourPuts.forEach((ours, i) => {
      const theirs = esdkPuts[i]!;
      expect(ours.TableName).toBe(theirs.TableName);
      expect(ours.Item).toEqual(theirs.Item);
      expect(resolved(ours)).toBe(resolved(theirs));
      expect(resolved(ours)).toBe('attribute_not_exists(branch-key-id)');
      expect(ours.ExpressionAttributeValues).toEqual(theirs.ExpressionAttributeValues);
    });
  });

  it('the ESDK reads through an adapter over our storage (its custom IBranchKeyStorage)', async () => {
    const esdk = esdkStore(esdkStorageOver(fromEsdk, { logicalName: LOGICAL, name: ESDK_TABLE }));
    const viaAdapter = await esdk.getActiveBranchKey(branchKeyId);
    const direct = await esdkStore({ ddbTableName: ESDK_TABLE, ddbClient: client }).getActiveBranchKey(branchKeyId);
    expect(viaAdapter.branchKeyVersion).toEqual(direct.branchKeyVersion);
    expect(Buffer.from(viaAdapter.branchKey())).toEqual(Buffer.from(direct.branchKey()));
  });
});
