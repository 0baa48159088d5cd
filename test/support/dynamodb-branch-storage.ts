/**
 * Test-only DynamoDB plumbing for the hierarchical keyring interop tests, against dynalite (an
 * in-memory DynamoDB on 127.0.0.1):
 * - DynamoTestBranchKeyStorage: a BranchKeyStorage over GetItem / PutItem with the specification's
 *   condition expressions, item for item as the ESDK's DynamoDB storage writes them (`enc` B,
 *   `hierarchy-version` N, everything else S). dynalite has no TransactWriteItems, so the writes
 *   are conditional puts in sequence, not one transaction: fine for tests, not for production (the
 *   real DynamoDB storage is src/branch-key-store-dynamodb/, written separately).
 * - TransactingDynamoDBClient: a DynamoDBClient whose TransactWriteItems (what the ESDK's
 *   BranchKeyStoreNode sends for CreateKey/VersionKey) becomes the same conditional puts, so the
 *   ESDK's own write requests land in dynalite unchanged.
 * - startDynalite: the server on port 0 with the key store table (branch-key-id HASH, type RANGE).
 */
import { createRequire } from 'node:module';
import type * as DdbModule from '@aws-sdk/client-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import {
  BranchKeyWriteConflictError,
  type BranchKeyItem,
  type BranchKeyItemType,
  type BranchKeyStorage,
} from '../../src/keyrings/hierarchy/storage.js';
import { TEST_CREDENTIALS, startDynalite as startDynaliteServer } from './dynalite.js';

// The CommonJS build, the one the ESDK's branch key store checks with instanceof.
const require = createRequire(import.meta.url);
const ddb = require('@aws-sdk/client-dynamodb') as typeof DdbModule;
export const { DynamoDBClient, GetItemCommand, PutItemCommand, CreateTableCommand, TransactWriteItemsCommand } = ddb;

export { TEST_CREDENTIALS };

/** dynalite (test/support/dynalite.ts) with a branch key table `table`, created through the CommonJS client. */
export async function startDynalite(table: string): Promise<{ endpoint: string; close(): Promise<void> }> {
  const server = await startDynaliteServer();
  const endpoint = server.endpoint;
  const client = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: TEST_CREDENTIALS });
  await client.send(
    new CreateTableCommand({
      TableName: table,
      KeySchema: [
        { AttributeName: 'branch-key-id', KeyType: 'HASH' },
        { AttributeName: 'type', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'branch-key-id', AttributeType: 'S' },
        { AttributeName: 'type', AttributeType: 'S' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  client.destroy();
  return { endpoint, close: () => server.close() };
}

function toAttributes(item: BranchKeyItem): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const [k, v] of Object.entries(item)) {
    if (k === 'enc') out[k] = { B: v as Uint8Array };
    else if (k === 'hierarchy-version') out[k] = { N: v as string };
    else out[k] = { S: v as string };
  }
  return out;
}

function fromAttributes(attrs: Record<string, AttributeValue>): BranchKeyItem {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(attrs)) {
    if (v.B !== undefined) out[k] = new Uint8Array(v.B);
    else if (v.N !== undefined) out[k] = v.N;
    else if (v.S !== undefined) out[k] = v.S;
    else throw new Error(`unexpected attribute type for ${k}`);
  }
  return out as unknown as BranchKeyItem;
}

const isConditionFailure = (err: unknown): boolean =>
  (err as { name?: string }).name === 'ConditionalCheckFailedException';

export class DynamoTestBranchKeyStorage implements BranchKeyStorage {
  readonly name: string;
  constructor(
    private readonly client: InstanceType<typeof DynamoDBClient>,
    private readonly table: string,
  ) {
    this.name = table;
  }

  async writeNewBranchKey(items: { version: BranchKeyItem; active: BranchKeyItem; beacon: BranchKeyItem }): Promise<void> {
    for (const item of [items.version, items.active, items.beacon]) {
      try {
        await this.client.send(
          new PutItemCommand({
            TableName: this.table,
            Item: toAttributes(item),
            ConditionExpression: 'attribute_not_exists(#bkid)',
            ExpressionAttributeNames: { '#bkid': 'branch-key-id' },
          }),
        );
      } catch (err) {
        if (isConditionFailure(err)) throw new BranchKeyWriteConflictError('BRANCH_KEY_EXISTS', 'branch key exists');
        throw err;
      }
    }
  }

  async writeNewBranchKeyVersion(items: { version: BranchKeyItem; active: BranchKeyItem; expectedActiveEnc: Uint8Array }): Promise<void> {
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: toAttributes(items.version),
          ConditionExpression: 'attribute_not_exists(#bkid)',
          ExpressionAttributeNames: { '#bkid': 'branch-key-id' },
        }),
      );
    } catch (err) {
      if (isConditionFailure(err)) throw new BranchKeyWriteConflictError('BRANCH_KEY_EXISTS', 'version exists');
      throw err;
    }
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: toAttributes(items.active),
          ConditionExpression: 'attribute_exists(#bkid) AND #enc = :encOld',
          ExpressionAttributeNames: { '#bkid': 'branch-key-id', '#enc': 'enc' },
          ExpressionAttributeValues: { ':encOld': { B: items.expectedActiveEnc } },
        }),
      );
    } catch (err) {
      if (isConditionFailure(err)) throw new BranchKeyWriteConflictError('ACTIVE_CHANGED', 'ACTIVE changed');
      throw err;
    }
  }

  async getItem(branchKeyId: string, type: BranchKeyItemType): Promise<BranchKeyItem | undefined> {
    const out = await this.client.send(
      new GetItemCommand({
        TableName: this.table,
        Key: { 'branch-key-id': { S: branchKeyId }, type: { S: type } },
        ConsistentRead: true,
      }),
    );
    return out.Item === undefined ? undefined : fromAttributes(out.Item);
  }
}

/** A DynamoDBClient that turns TransactWriteItems into its conditional puts, one by one (dynalite has no transactions). */
export class TransactingDynamoDBClient extends DynamoDBClient {
  override send(command: unknown, ...rest: unknown[]): Promise<never> {
    if (command instanceof TransactWriteItemsCommand) return this.#transact(command) as Promise<never>;
    return (super.send as (...a: unknown[]) => Promise<never>)(command, ...rest);
  }

  async #transact(command: InstanceType<typeof TransactWriteItemsCommand>): Promise<object> {
    for (const t of command.input.TransactItems ?? []) {
      if (t.Put === undefined) throw new Error('only Put is supported in this test client');
      await super.send(new PutItemCommand(t.Put));
    }
    return {};
  }
}
