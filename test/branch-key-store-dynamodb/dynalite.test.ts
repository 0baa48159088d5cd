/**
 * DynamoDbBranchKeyStorage against dynalite (test/support/dynalite.ts), a DynamoDB-compatible
 * server in memory: createTable (CreateKeyStore), GetItem round trips of every attribute type,
 * malformed items refused, and what happens to the transactional writes there (dynalite has no
 * TransactWriteItems). The conditions of our transactions are checked here one Put at a time as
 * conditional PutItem requests, which dynalite implements with its own expression parser: that
 * verifies their syntax and meaning, not their atomicity (transact.test.ts covers the request
 * and the cancellation against a local TransactWriteItems stub).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateTableCommand,
  DescribeTableCommand,
  PutItemCommand,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbBranchKeyStorage } from '../../src/branch-key-store-dynamodb/index.js';
import { encodeItem } from '../../src/branch-key-store-dynamodb/codec.js';
import { createKeyRequest, versionKeyRequest } from '../../src/branch-key-store-dynamodb/requests.js';
import { BranchKeyStoreError } from '../../src/errors.js';
import { BranchKeyStore } from '../../src/keyrings/hierarchy/index.js';
import { LocalKms } from '../../src/local-kms/index.js';
import type { BranchKeyItem } from '../../src/keyrings/hierarchy/storage.js';
import { startDynalite, type Dynalite } from '../support/dynalite.js';
import { newKeyItems, nextVersionItems } from './items.js';

let ddb: Dynalite;
let client: DynamoDBClient;
let storage: DynamoDbBranchKeyStorage;
const TABLE = 'KeyStoreTable';

beforeAll(async () => {
  ddb = await startDynalite();
  client = ddb.client();
  storage = new DynamoDbBranchKeyStorage({ client, tableName: TABLE });
  await storage.createTable();
});
afterAll(async () => {
  await ddb?.close();
});

async function put(item: Record<string, AttributeValue>): Promise<void> {
  await client.send(new PutItemCommand({ TableName: TABLE, Item: item }));
}

describe('createTable (CreateKeyStore)', () => {
  it('creates the table with the KeySchema branch-key-id (S, HASH) / type (S, RANGE), on-demand, and returns its ARN', async () => {
    const name = `t-${randomUUID()}`;
    const s = new DynamoDbBranchKeyStorage({ client, tableName: name });
    expect(await s.createTable()).toEqual({ tableArn: `arn:aws:dynamodb:us-east-1:000000000000:table/${name}`, created: true });
    const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
    expect(Table!.KeySchema).toEqual([
      { AttributeName: 'branch-key-id', KeyType: 'HASH' },
      { AttributeName: 'type', KeyType: 'RANGE' },
    ]);
    expect(Table!.AttributeDefinitions).toEqual(
      expect.arrayContaining([
        { AttributeName: 'branch-key-id', AttributeType: 'S' },
        { AttributeName: 'type', AttributeType: 'S' },
      ]),
    );
    expect(Table!.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
    // Again: DescribeTable finds it with the right schema, nothing created.
    expect(await s.createTable()).toEqual({ tableArn: `arn:aws:dynamodb:us-east-1:000000000000:table/${name}`, created: false });
  });

  it('a table that exists with another key schema: BranchKeyStoreError TABLE_SCHEMA', async () => {
    const name = `other-${randomUUID()}`;
    await client.send(
      new CreateTableCommand({
        TableName: name,
        KeySchema: [{ AttributeName: 'branch-key-id', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'branch-key-id', AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    const err = await new DynamoDbBranchKeyStorage({ client, tableName: name }).createTable().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BranchKeyStoreError);
    expect(err).toMatchObject({ code: 'ERR_BRANCH_KEY_STORE', reason: 'TABLE_SCHEMA' });
  });

  it('waitSeconds waits for a CREATING table to become ACTIVE', async () => {
    const slow = await startDynalite({ createTableMs: 300 });
    try {
      const c = slow.client();
      const s = new DynamoDbBranchKeyStorage({ client: c, tableName: 'slow-table' });
      expect((await s.createTable({ waitSeconds: 60 })).created).toBe(true);
      expect((await c.send(new DescribeTableCommand({ TableName: 'slow-table' }))).Table!.TableStatus).toBe('ACTIVE');
    } finally {
      await slow.close();
    }
  });

  it('waitSeconds is checked: RangeError naming it', async () => {
    await expect(storage.createTable({ waitSeconds: -1 })).rejects.toThrow(new RangeError('waitSeconds must be an integer 0-900, got -1'));
    await expect(storage.createTable({ waitSeconds: 1.5 })).rejects.toThrow(RangeError);
  });
});

describe('getItem: GetItem round trips', () => {
  it('reads back every item type with every attribute type: S, B (enc), N (hierarchy-version), custom context S', async () => {
    const items = newKeyItems(undefined, { department: 'admin', 'ünïcode key': 'välue', empty: '' });
    for (const item of [items.version, items.active, items.beacon]) await put(encodeItem(item, 'item'));
    const id = items.active['branch-key-id'];
    for (const item of [items.version, items.active, items.beacon]) {
      const got = await storage.getItem(id, item.type);
      expect(got).toEqual({ ...item, enc: new Uint8Array(item.enc) });
      expect(got!.enc).toBeInstanceOf(Uint8Array);
      expect(got!['hierarchy-version']).toBe('1');
    }
  });

  it('no such item: undefined', async () => {
    expect(await storage.getItem(randomUUID(), 'branch:ACTIVE')).toBeUndefined();
    expect(await storage.getItem(randomUUID(), `branch:version:${randomUUID()}`)).toBeUndefined();
  });

  it('sends ConsistentRead: true', async () => {
    const seen: unknown[] = [];
    const c = ddb.client();
    c.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'GetItemCommand') seen.push(args.input);
        return next(args);
      },
      { step: 'initialize', name: 'captureGetItem' },
    );
    await new DynamoDbBranchKeyStorage({ client: c, tableName: TABLE }).getItem('some-id', 'beacon:ACTIVE');
    expect(seen).toEqual([{ TableName: TABLE, Key: { 'branch-key-id': { S: 'some-id' }, type: { S: 'beacon:ACTIVE' } }, ConsistentRead: true }]);
  });

  it('arguments are checked: TypeError naming them', async () => {
    await expect(storage.getItem('', 'branch:ACTIVE')).rejects.toThrow(new TypeError('branchKeyId must be a non-empty string'));
    await expect(storage.getItem('id', 'branch:version:' as never)).rejects.toThrow(/^type must be/);
    await expect(storage.getItem('id', 'ACTIVE' as never)).rejects.toThrow(TypeError);
  });
});

describe('getItem: malformed items are refused with BranchKeyStoreError MALFORMED_ITEM, naming no value', () => {
  const base = () => {
    const { active } = newKeyItems();
    return { active, map: encodeItem(active, 'item') };
  };
  const cases: Array<[string, (m: Record<string, AttributeValue>) => void, RegExp]> = [
    ['enc missing', (m) => delete m.enc, /"enc" is missing/],
    ['enc as S', (m) => (m.enc = { S: 'c2VjcmV0' }), /"enc" is not of DynamoDB type B/],
    ['hierarchy-version as S (not N)', (m) => (m['hierarchy-version'] = { S: '1' }), /"hierarchy-version" is not of DynamoDB type N/],
    ['hierarchy-version not an integer', (m) => (m['hierarchy-version'] = { N: '1.5' }), /"hierarchy-version" is not a non-negative integer/],
    ['kms-arn as a list', (m) => (m['kms-arn'] = { L: [{ S: 'arn' }] }), /"kms-arn" is not of DynamoDB type S/],
    ['create-time missing', (m) => delete m['create-time'], /"create-time" is missing/],
    ['ACTIVE without version', (m) => delete m.version, /"version" is missing/],
    ['an attribute outside the record format', (m) => (m.note = { S: 'secret-ish' }), /"note" is outside the record format/],
    ['custom context as B', (m) => (m['aws-crypto-ec:department'] = { B: new Uint8Array([1]) }), /"aws-crypto-ec:department" is not of DynamoDB type S/],
  ];
  it.each(cases)('%s', async (_, change, message) => {
    const { active, map } = base();
    change(map);
    await put(map);
    const err = await storage.getItem(active['branch-key-id'], 'branch:ACTIVE').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BranchKeyStoreError);
    expect(err).toMatchObject({ code: 'ERR_BRANCH_KEY_STORE', reason: 'MALFORMED_ITEM' });
    expect((err as Error).message).toMatch(message);
    for (const secret of [active['branch-key-id'], 'c2VjcmV0', 'secret-ish', 'admin', active['kms-arn']]) {
      expect((err as Error).message).not.toContain(secret);
    }
  });

  it('version on an item other than branch:ACTIVE ("Record Format": only on ACTIVE)', async () => {
    const { beacon } = newKeyItems();
    await put({ ...encodeItem(beacon, 'item'), version: { S: 'branch:version:x' } });
    await expect(storage.getItem(beacon['branch-key-id'], 'beacon:ACTIVE')).rejects.toMatchObject({ reason: 'MALFORMED_ITEM' });
  });
});

describe('the transactional writes on dynalite', () => {
  it('dynalite has no TransactWriteItems: BranchKeyStoreError TRANSACTIONS_UNSUPPORTED, and nothing is written', async () => {
    const items = newKeyItems();
    const err = await storage.writeNewBranchKey(items).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BranchKeyStoreError);
    expect(err).toMatchObject({ reason: 'TRANSACTIONS_UNSUPPORTED', awsErrorName: 'UnknownOperationException' });
    expect((err as Error).message).toMatch(/does not implement TransactWriteItems/);
    for (const item of [items.version, items.active, items.beacon]) {
      expect(await storage.getItem(item['branch-key-id'], item.type)).toBeUndefined();
    }
    const v = await storage.writeNewBranchKeyVersion(nextVersionItems(items)).catch((e: unknown) => e);
    expect(v).toMatchObject({ name: 'BranchKeyStoreError', reason: 'TRANSACTIONS_UNSUPPORTED' });
  });

  it('through a BranchKeyStore: createKey keeps the storage\'s reason TRANSACTIONS_UNSUPPORTED (not FAILED), after its KMS calls', async () => {
    const kmsDir = mkdtempSync(join(tmpdir(), 'ddb-store-kms-'));
    const kms = new LocalKms({ dataDir: kmsDir });
    try {
      const { arn } = await kms.createKey({});
      const store = new BranchKeyStore({ storage, logicalKeyStoreName: TABLE, kmsConfiguration: { kmsKeyArn: arn }, kmsClient: kms.client() });
      const err = await store.createKey().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BranchKeyStoreError);
      expect(err).toMatchObject({ reason: 'TRANSACTIONS_UNSUPPORTED', awsErrorName: 'UnknownOperationException' });
      expect((err as Error).message).toMatch(/does not implement TransactWriteItems/);
    } finally {
      kms.close();
      rmSync(kmsDir, { recursive: true, force: true });
    }
  });

  it("the specification's bare `attribute_not_exists(branch-key-id)` is a syntax error there; our placeholder form is not", async () => {
    const { beacon } = newKeyItems();
    const bare = client.send(
      new PutItemCommand({ TableName: TABLE, Item: encodeItem(beacon, 'item'), ConditionExpression: 'attribute_not_exists(branch-key-id)' }),
    );
    await expect(bare).rejects.toMatchObject({ name: 'ValidationException', message: expect.stringMatching(/Syntax error/) });
  });

  /** The Puts of a transaction, sent one by one as conditional PutItem requests. */
  async function putsOneByOne(input: ReturnType<typeof createKeyRequest>): Promise<string[]> {
    const out: string[] = [];
    for (const { Put } of input.TransactItems!) {
      try {
        await client.send(new PutItemCommand(Put!));
        out.push('ok');
      } catch (err) {
        out.push((err as Error).name);
      }
    }
    return out;
  }

  it("CreateKey's conditions, one Put at a time: a new key passes, a key whose items exist fails each", async () => {
    const items = newKeyItems();
    expect(await putsOneByOne(createKeyRequest(TABLE, items))).toEqual(['ok', 'ok', 'ok']);
    expect(await storage.getItem(items.active['branch-key-id'], 'branch:ACTIVE')).toEqual({ ...items.active, enc: new Uint8Array(items.active.enc) });
    const again = newKeyItems(items.active['branch-key-id']);
    again.version.type = items.version.type; // same three keys
    again.active.version = items.version.type;
    expect(await putsOneByOne(createKeyRequest(TABLE, again))).toEqual(Array(3).fill('ConditionalCheckFailedException'));
  });

  it("VersionKey's conditions, one Put at a time: enc = :encOld holds for the ACTIVE item read, not for a stale or missing one", async () => {
    const items = newKeyItems();
    await putsOneByOne(createKeyRequest(TABLE, items));
    const next = nextVersionItems(items);
    expect(await putsOneByOne(versionKeyRequest(TABLE, next))).toEqual(['ok', 'ok']);
    const stale = nextVersionItems(items); // still expects the first ACTIVE enc
    expect(await putsOneByOne(versionKeyRequest(TABLE, stale))).toEqual(['ok', 'ConditionalCheckFailedException']);
    const missing = nextVersionItems(newKeyItems()); // no ACTIVE item at all
    expect((await putsOneByOne(versionKeyRequest(TABLE, missing)))[1]).toBe('ConditionalCheckFailedException');
    const active = (await storage.getItem(items.active['branch-key-id'], 'branch:ACTIVE')) as BranchKeyItem;
    expect(active.version).toBe(next.version.type);
  });
});

describe('failures of the service or the network', () => {
  it('a missing table: BranchKeyStoreError REQUEST_FAILED with the AWS error name', async () => {
    const s = new DynamoDbBranchKeyStorage({ client, tableName: 'missing-table' });
    await expect(s.getItem('id', 'branch:ACTIVE')).rejects.toMatchObject({
      name: 'BranchKeyStoreError',
      reason: 'REQUEST_FAILED',
      awsErrorName: 'ResourceNotFoundException',
    });
  });

  it('nothing listening: BranchKeyStoreError REQUEST_FAILED without an AWS error name', async () => {
    const gone = await startDynalite();
    const c = gone.client();
    await gone.close();
    const err = await new DynamoDbBranchKeyStorage({ client: c, tableName: TABLE }).getItem('id', 'branch:ACTIVE').catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'BranchKeyStoreError', reason: 'REQUEST_FAILED', awsErrorName: undefined });
    c.destroy();
  });
});
