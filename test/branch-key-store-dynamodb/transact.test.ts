/**
 * The transactional write path (CreateKey, VersionKey) of DynamoDbBranchKeyStorage, over real
 * HTTP with a real DynamoDBClient, against test/support/ddb-transact-stub.ts: a local server that
 * implements TransactWriteItems (Put items, condition expressions, TransactionCanceledException
 * with CancellationReasons) after the DynamoDB API Reference. Verified here: the request as it
 * travels (TableName, ConditionExpression, ExpressionAttributeNames/Values, items and their
 * DynamoDB types) and the mapping of cancellations to BranchKeyWriteConflictError. Not verified
 * here: DynamoDB itself, or dynalite (which has no TransactWriteItems: dynalite.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbBranchKeyStorage } from '../../src/branch-key-store-dynamodb/index.js';
import { BranchKeyStoreError } from '../../src/errors.js';
import { BranchKeyWriteConflictError } from '../../src/keyrings/hierarchy/storage.js';
import { startTransactStub, type TransactStub } from '../support/ddb-transact-stub.js';
import { newKeyItems, nextVersionItems } from './items.js';

const TABLE = 'branch-key-store.test';
let stub: TransactStub;
let storage: DynamoDbBranchKeyStorage;

beforeAll(async () => {
  stub = await startTransactStub({ tableName: TABLE });
  storage = new DynamoDbBranchKeyStorage({ client: stub.client(), tableName: TABLE });
});
afterAll(async () => {
  await stub?.close();
});

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
/** A ConditionExpression with its #names replaced by the names: the specification's text. */
const resolved = (put: { ConditionExpression: string; ExpressionAttributeNames: Record<string, string> }) =>
  put.ConditionExpression.replace(/#[A-Za-z0-9_]+/g, (n) => put.ExpressionAttributeNames[n]!);

function lastTransaction() {
  const r = stub.requests.at(-1)!;
  expect(r.target).toBe('DynamoDB_20120810.TransactWriteItems');
  return (r.body.TransactItems as Array<{ Put: Record<string, unknown> }>).map((t) => {
    expect(Object.keys(t)).toEqual(['Put']);
    return t.Put as {
      TableName: string;
      Item: Record<string, Record<string, string>>;
      ConditionExpression: string;
      ExpressionAttributeNames: Record<string, string>;
      ExpressionAttributeValues?: Record<string, Record<string, string>>;
    };
  });
}

describe('CreateKey: TransactWriteItems as "Writing Branch Key and Beacon Key to Keystore"', () => {
  it('sends the version, ACTIVE and beacon Puts, each on attribute_not_exists(branch-key-id), with the record format types', async () => {
    const items = newKeyItems(undefined, { department: 'admin', 'cost-center': '7' });
    await storage.writeNewBranchKey(items);
    const puts = lastTransaction();
    expect(puts).toHaveLength(3);
    for (const [put, item] of [
      [puts[0]!, items.version],
      [puts[1]!, items.active],
      [puts[2]!, items.beacon],
    ] as const) {
      expect(put.TableName).toBe(TABLE);
      expect(put.ConditionExpression).toBe('attribute_not_exists(#bkid)');
      expect(put.ExpressionAttributeNames).toEqual({ '#bkid': 'branch-key-id' });
      expect(resolved(put)).toBe('attribute_not_exists(branch-key-id)'); // the specification's text
      expect(put.ExpressionAttributeValues).toBeUndefined();
      const expected: Record<string, Record<string, string>> = {
        'branch-key-id': { S: item['branch-key-id'] },
        type: { S: item.type },
        enc: { B: b64(item.enc) },
        'kms-arn': { S: item['kms-arn'] },
        'create-time': { S: item['create-time'] },
        'hierarchy-version': { N: '1' },
        'aws-crypto-ec:department': { S: 'admin' },
        'aws-crypto-ec:cost-center': { S: '7' },
      };
      if (item.version !== undefined) expected.version = { S: item.version };
      expect(put.Item).toEqual(expected);
    }
    expect(puts.map((p) => p.Item.type!.S)).toEqual([items.version.type, 'branch:ACTIVE', 'beacon:ACTIVE']);
  });

  it('a second CreateKey of the same branch key id: BranchKeyWriteConflictError BRANCH_KEY_EXISTS, nothing written', async () => {
    const first = newKeyItems();
    await storage.writeNewBranchKey(first);
    const before = structuredClone([...stub.items]);
    const again = newKeyItems(first.active['branch-key-id']); // new version and enc, same id
    const err = await storage.writeNewBranchKey(again).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BranchKeyWriteConflictError);
    expect(err).toMatchObject({ conflict: 'BRANCH_KEY_EXISTS' });
    expect([...stub.items]).toEqual(before);
    // The message names no item content.
    expect((err as Error).message).not.toContain(first.active['branch-key-id']);
    expect((err as Error).message).not.toContain(b64(again.active.enc));
  });
});

describe('VersionKey: TransactWriteItems as "VersionKey"', () => {
  it('sends the new version Put (attribute_not_exists) and the ACTIVE Put on attribute_exists(branch-key-id) AND enc = :encOld', async () => {
    const created = newKeyItems();
    await storage.writeNewBranchKey(created);
    const next = nextVersionItems(created);
    await storage.writeNewBranchKeyVersion(next);
    const [versionPut, activePut, ...rest] = lastTransaction();
    expect(rest).toEqual([]);
    expect(versionPut!.TableName).toBe(TABLE);
    expect(resolved(versionPut!)).toBe('attribute_not_exists(branch-key-id)');
    expect(versionPut!.Item.type).toEqual({ S: next.version.type });
    expect(activePut!.TableName).toBe(TABLE);
    expect(activePut!.ConditionExpression).toBe('attribute_exists(#bkid) AND enc = :encOld');
    expect(resolved(activePut!)).toBe('attribute_exists(branch-key-id) AND enc = :encOld'); // the specification's text
    expect(activePut!.ExpressionAttributeValues).toEqual({ ':encOld': { B: b64(created.active.enc) } });
    expect(activePut!.Item.type).toEqual({ S: 'branch:ACTIVE' });
    expect(activePut!.Item.version).toEqual({ S: next.version.type });
    expect(activePut!.Item.enc).toEqual({ B: b64(next.active.enc) });
  });

  it('a stale expectedActiveEnc: ACTIVE_CHANGED, and neither the version item nor the ACTIVE item is written', async () => {
    const created = newKeyItems();
    await storage.writeNewBranchKey(created);
    const winner = nextVersionItems(created);
    const loser = nextVersionItems(created); // read the same ACTIVE item, races the winner
    await storage.writeNewBranchKeyVersion(winner);
    const before = structuredClone([...stub.items]);
    const err = await storage.writeNewBranchKeyVersion(loser).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BranchKeyWriteConflictError);
    expect(err).toMatchObject({ conflict: 'ACTIVE_CHANGED' });
    expect([...stub.items]).toEqual(before);
    const id = created.active['branch-key-id'];
    expect(stub.items.has(`${id}\u0000${loser.version.type}`)).toBe(false);
    expect(stub.items.get(`${id}\u0000branch:ACTIVE`)!.enc).toEqual({ B: b64(winner.active.enc) });
  });

  it('two VersionKey calls from one read, sent together: exactly one wins', async () => {
    const created = newKeyItems();
    await storage.writeNewBranchKey(created);
    const results = await Promise.allSettled([storage.writeNewBranchKeyVersion(nextVersionItems(created)), storage.writeNewBranchKeyVersion(nextVersionItems(created))]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const [rejected] = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    expect(rejected!.reason).toMatchObject({ conflict: 'ACTIVE_CHANGED' });
  });

  it('VersionKey of a branch key with no ACTIVE item: ACTIVE_CHANGED (attribute_exists fails)', async () => {
    const orphan = nextVersionItems(newKeyItems());
    const err = await storage.writeNewBranchKeyVersion(orphan).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'BranchKeyWriteConflictError', conflict: 'ACTIVE_CHANGED' });
    expect(stub.items.has(`${orphan.active['branch-key-id']}\u0000${orphan.version.type}`)).toBe(false);
  });

  it('a version item that exists already, ACTIVE unchanged: BRANCH_KEY_EXISTS', async () => {
    const created = newKeyItems();
    await storage.writeNewBranchKey(created);
    const next = nextVersionItems(created);
    next.version.type = created.version.type; // the version written by CreateKey
    next.active.version = created.version.type;
    const err = await storage.writeNewBranchKeyVersion(next).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'BranchKeyWriteConflictError', conflict: 'BRANCH_KEY_EXISTS' });
  });
});

describe('cancellations that are not conditions, and other answers', () => {
  it('TransactionConflict: BranchKeyStoreError REQUEST_FAILED naming the reasons, not a conflict of ours', async () => {
    stub.cancelNext = ['TransactionConflict', 'None', 'None'];
    const err = await storage.writeNewBranchKey(newKeyItems()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BranchKeyStoreError);
    expect(err).toMatchObject({
      code: 'ERR_BRANCH_KEY_STORE',
      reason: 'REQUEST_FAILED',
      awsErrorName: 'TransactionCanceledException',
      message: expect.stringContaining('TransactionConflict, None, None'),
    });
  });

  it('another table: ResourceNotFoundException as BranchKeyStoreError REQUEST_FAILED', async () => {
    const other = new DynamoDbBranchKeyStorage({ client: stub.client(), tableName: 'no-such-table' });
    const err = await other.writeNewBranchKey(newKeyItems()).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'BranchKeyStoreError', reason: 'REQUEST_FAILED', awsErrorName: 'ResourceNotFoundException' });
  });

  it('items the store built inconsistently are refused before any request (TypeError naming the argument)', async () => {
    const sent = stub.requests.length;
    const items = newKeyItems();
    await expect(storage.writeNewBranchKey({ ...items, active: { ...items.active, version: 'branch:version:other' } })).rejects.toThrow(
      new TypeError('items.active.version must equal items.version.type'),
    );
    await expect(storage.writeNewBranchKey({ ...items, beacon: { ...items.beacon, 'branch-key-id': 'other' } })).rejects.toThrow(TypeError);
    await expect(storage.writeNewBranchKey({ ...items, version: { ...items.version, enc: new Uint8Array(0) } })).rejects.toThrow(/items\.version\["enc"\]/);
    await expect(
      storage.writeNewBranchKey({ ...items, beacon: { ...items.beacon, extra: 'x' } as never }),
    ).rejects.toThrow(/items\.beacon has an attribute outside the record format: "extra"/);
    await expect(storage.writeNewBranchKeyVersion({ ...nextVersionItems(items), expectedActiveEnc: 'x' as never })).rejects.toThrow(
      /expectedActiveEnc/,
    );
    expect(stub.requests.length).toBe(sent);
  });
});
