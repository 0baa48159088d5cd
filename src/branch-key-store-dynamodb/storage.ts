/**
 * DynamoDbBranchKeyStorage: the branch key store's items in a DynamoDB table of the ESDK
 * specification's layout (framework/branch-key-store.md), so the table is shared with the AWS
 * Encryption SDK's and the Material Providers Library's key stores.
 *
 * - Writes: one TransactWriteItems per CreateKey / VersionKey, as the specification builds them
 *   (requests.ts). A server without TransactWriteItems gets no non-atomic fallback: two items
 *   written one by one can be seen half written, and two racing VersionKey calls could both win.
 * - Reads: GetItem with ConsistentRead, so an item just written is seen (VersionKey reads the
 *   ACTIVE item it then conditions on); attribute types checked (codec.ts).
 */
import type { DynamoDBClient, TransactWriteItemsCommandInput } from '@aws-sdk/client-dynamodb';
import type { BranchKeyItem, BranchKeyItemType, BranchKeyStorage } from '../keyrings/hierarchy/storage.js';
import { decodeItem } from './codec.js';
import { requestFailure, writeFailure, type WriteOperation } from './failures.js';
import { createKeyRequest, versionKeyRequest } from './requests.js';
import { PARTITION_KEY, SORT_KEY, TABLE_NAME, isItemType } from './schema.js';
import { loadDynamoDb } from './sdk.js';
import { checkWaitSeconds, createKeyStoreTable, type CreateTableOptions, type CreateTableResult } from './table.js';

export interface DynamoDbBranchKeyStorageOptions {
  /**
   * The DynamoDB client (`@aws-sdk/client-dynamodb` DynamoDBClient): its Region, credentials and
   * endpoint are used as they are. Every call is a TransactWriteItems, GetItem, DescribeTable or
   * CreateTable on `tableName`; grant the client's identity those actions on that table only.
   */
  client: DynamoDBClient;
  /**
   * The table (DynamoDB naming rules: 3-255 characters of a-z, A-Z, 0-9, `_`, `.`, `-`). Its
   * KeySchema must be the specification's (`createTable()` makes or checks it). Anyone who can
   * write the table can replace items; the branch key store authenticates every item with KMS,
   * so a replaced item fails to decrypt rather than being used.
   */
  tableName: string;
}

export class DynamoDbBranchKeyStorage implements BranchKeyStorage {
  readonly tableName: string;
  readonly #client: DynamoDBClient;

  constructor(options: DynamoDbBranchKeyStorageOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be { client, tableName }');
    const { client, tableName } = options;
    if (typeof client !== 'object' || client === null || typeof (client as { send?: unknown }).send !== 'function') {
      throw new TypeError('client must be a DynamoDBClient from @aws-sdk/client-dynamodb');
    }
    if (typeof tableName !== 'string') throw new TypeError('tableName must be a string');
    if (!TABLE_NAME.test(tableName)) {
      throw new RangeError(`tableName must be 3-255 characters of a-z, A-Z, 0-9, '_', '.', '-' (DynamoDB table name rules), got ${JSON.stringify(tableName.slice(0, 300))}`);
    }
    this.#client = client;
    this.tableName = tableName;
  }

  /** The table name: GetKeyStoreInfo's key store name (BranchKeyStorage.name). */
  get name(): string {
    return this.tableName;
  }

  /**
   * CreateKeyStore: the table with the specification's KeySchema and on-demand billing, or a
   * check of the one that exists (BranchKeyStoreError 'TABLE_SCHEMA' when its keys differ).
   */
  async createTable(options?: CreateTableOptions): Promise<CreateTableResult> {
    return createKeyStoreTable(this.#client, this.tableName, checkWaitSeconds(options));
  }

  async writeNewBranchKey(items: { version: BranchKeyItem; active: BranchKeyItem; beacon: BranchKeyItem }): Promise<void> {
    await this.#transact(createKeyRequest(this.tableName, items), 'CreateKey');
  }

  async writeNewBranchKeyVersion(items: { version: BranchKeyItem; active: BranchKeyItem; expectedActiveEnc: Uint8Array }): Promise<void> {
    await this.#transact(versionKeyRequest(this.tableName, items), 'VersionKey');
  }

  async getItem(branchKeyId: string, type: BranchKeyItemType): Promise<BranchKeyItem | undefined> {
    if (typeof branchKeyId !== 'string' || branchKeyId.length === 0) throw new TypeError('branchKeyId must be a non-empty string');
    if (!isItemType(type)) throw new TypeError('type must be branch:ACTIVE, beacon:ACTIVE or branch:version:<version>');
    const sdk = await loadDynamoDb();
    let item: Record<string, unknown> | undefined;
    try {
      const out = await this.#client.send(
        new sdk.GetItemCommand({
          TableName: this.tableName,
          Key: { [PARTITION_KEY]: { S: branchKeyId }, [SORT_KEY]: { S: type } },
          ConsistentRead: true,
        }),
      );
      item = out.Item;
    } catch (err) {
      throw requestFailure(err, `DynamoDB GetItem of a ${type} item`);
    }
    return item === undefined ? undefined : decodeItem(item, branchKeyId, type);
  }

  async #transact(input: TransactWriteItemsCommandInput, op: WriteOperation): Promise<void> {
    const sdk = await loadDynamoDb();
    try {
      await this.#client.send(new sdk.TransactWriteItemsCommand(input));
    } catch (err) {
      throw writeFailure(err, op);
    }
  }
}
