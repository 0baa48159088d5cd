/**
 * CreateKeyStore (framework/branch-key-store.md): DescribeTable first; a table that exists must
 * have the specification's KeySchema (partition `branch-key-id` S, sort `type` S); a table that
 * does not (ResourceNotFoundException) is created with that KeySchema, on-demand billing.
 */
import type { DynamoDBClient, TableDescription } from '@aws-sdk/client-dynamodb';
import { BranchKeyStoreError } from '../errors.js';
import { requestFailure } from './failures.js';
import { PARTITION_KEY, SORT_KEY } from './schema.js';
import { loadDynamoDb } from './sdk.js';

export interface CreateTableOptions {
  /**
   * Seconds to wait for a table created now to become ACTIVE (DescribeTable polled, 1-5 s
   * apart). Default 0: return once CreateTable answers; writes fail with ResourceNotFoundException
   * until the table is ACTIVE. Limits: integer 0-900.
   */
  waitSeconds?: number;
}

export interface CreateTableResult {
  /** The table's ARN ("CreateKeyStore": the operation returns it). */
  tableArn: string;
  /** False when the table existed already (with the right KeySchema). */
  created: boolean;
}

/** Whether `table` has exactly the KeySchema of the specification, with S keys. */
function hasKeySchema(table: TableDescription): boolean {
  const keys = table.KeySchema ?? [];
  const defs = new Map((table.AttributeDefinitions ?? []).map((d) => [d.AttributeName, d.AttributeType]));
  const hash = keys.filter((k) => k.KeyType === 'HASH');
  const range = keys.filter((k) => k.KeyType === 'RANGE');
  return (
    keys.length === 2 &&
    hash.length === 1 &&
    range.length === 1 &&
    hash[0]!.AttributeName === PARTITION_KEY &&
    range[0]!.AttributeName === SORT_KEY &&
    defs.get(PARTITION_KEY) === 'S' &&
    defs.get(SORT_KEY) === 'S'
  );
}

export function checkWaitSeconds(options: CreateTableOptions | undefined): number {
  if (options !== undefined && (typeof options !== 'object' || options === null)) throw new TypeError('options must be an object');
  const wait = options?.waitSeconds ?? 0;
  if (!Number.isInteger(wait) || wait < 0 || wait > 900) throw new RangeError(`waitSeconds must be an integer 0-900, got ${String(wait)}`);
  return wait;
}

export async function createKeyStoreTable(client: DynamoDBClient, tableName: string, waitSeconds: number): Promise<CreateTableResult> {
  const sdk = await loadDynamoDb();
  let existing: TableDescription | undefined;
  try {
    existing = (await client.send(new sdk.DescribeTableCommand({ TableName: tableName }))).Table;
  } catch (err) {
    if ((err as { name?: unknown })?.name !== 'ResourceNotFoundException') throw requestFailure(err, 'CreateKeyStore: DynamoDB DescribeTable');
  }
  if (existing) {
    if (!hasKeySchema(existing)) {
      throw new BranchKeyStoreError(
        'TABLE_SCHEMA',
        `CreateKeyStore: table ${tableName} exists without the key schema of a branch key store (partition key branch-key-id S, sort key type S)`,
      );
    }
    return { tableArn: existing.TableArn ?? '', created: false };
  }
  let created: TableDescription | undefined;
  try {
    created = (
      await client.send(
        new sdk.CreateTableCommand({
          TableName: tableName,
          KeySchema: [
            { AttributeName: PARTITION_KEY, KeyType: 'HASH' },
            { AttributeName: SORT_KEY, KeyType: 'RANGE' },
          ],
          AttributeDefinitions: [
            { AttributeName: PARTITION_KEY, AttributeType: 'S' },
            { AttributeName: SORT_KEY, AttributeType: 'S' },
          ],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      )
    ).TableDescription;
  } catch (err) {
    throw requestFailure(err, 'CreateKeyStore: DynamoDB CreateTable');
  }
  if (waitSeconds > 0) {
    try {
      await sdk.waitUntilTableExists({ client, maxWaitTime: waitSeconds, minDelay: 1, maxDelay: 5 }, { TableName: tableName });
    } catch (err) {
      throw requestFailure(err, `CreateKeyStore: waiting ${waitSeconds} s for table ${tableName} to become ACTIVE`);
    }
  }
  return { tableArn: created?.TableArn ?? '', created: true };
}
