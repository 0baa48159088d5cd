/** DynamoDbBranchKeyStorage options, validated at construction. */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { DynamoDbBranchKeyStorage } from '../../src/branch-key-store-dynamodb/index.js';

const client = new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });

describe('DynamoDbBranchKeyStorage options', () => {
  it('accepts a DynamoDBClient and a table name of 3-255 characters of [a-zA-Z0-9_.-]', () => {
    for (const tableName of ['abc', 'Key_Store.table-1', 'x'.repeat(255)]) {
      expect(new DynamoDbBranchKeyStorage({ client, tableName }).tableName).toBe(tableName);
    }
  });

  it('refuses a missing or wrong client: TypeError naming client', () => {
    for (const bad of [undefined, null, {}, { send: 'no' }, 'client']) {
      expect(() => new DynamoDbBranchKeyStorage({ client: bad as never, tableName: 'abc' })).toThrow(
        new TypeError('client must be a DynamoDBClient from @aws-sdk/client-dynamodb'),
      );
    }
    expect(() => new DynamoDbBranchKeyStorage(undefined as never)).toThrow(TypeError);
  });

  it('refuses a table name that is not a string (TypeError) or breaks the DynamoDB rules (RangeError), naming tableName', () => {
    expect(() => new DynamoDbBranchKeyStorage({ client, tableName: 7 as never })).toThrow(new TypeError('tableName must be a string'));
    for (const bad of ['', 'ab', 'x'.repeat(256), 'has space', 'slash/name', 'ünï', 'colon:name']) {
      expect(() => new DynamoDbBranchKeyStorage({ client, tableName: bad })).toThrow(RangeError);
      expect(() => new DynamoDbBranchKeyStorage({ client, tableName: bad })).toThrow(/^tableName must be 3-255 characters/);
    }
  });
});
