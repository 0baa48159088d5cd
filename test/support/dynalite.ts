/**
 * dynalite (a DynamoDB-compatible server on LevelDB, npm `dynalite`) started in memory on
 * 127.0.0.1 and a free port, for tests that need DynamoDB. It implements the table operations,
 * GetItem, PutItem, Query, Scan and conditional writes; it does NOT implement TransactWriteItems
 * (it answers UnknownOperationException, HTTP 400): see test/support/ddb-transact-stub.ts.
 *
 * const ddb = await startDynalite(); const client = ddb.client(); ... await ddb.close();
 * close() destroys the clients it made and stops the server.
 */
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';

const require = createRequire(import.meta.url);
const dynalite = require('dynalite') as (options: { createTableMs?: number; deleteTableMs?: number; updateTableMs?: number }) => Server;

export const TEST_CREDENTIALS = { accessKeyId: 'AKIDDYNALITE', secretAccessKey: 'dynalite-secret' };

export interface Dynalite {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** A DynamoDBClient for this server (Region us-east-1, fixed test credentials, one attempt). */
  client(config?: Partial<DynamoDBClientConfig>): DynamoDBClient;
  close(): Promise<void>;
}

/** `createTableMs`: how long a new table stays CREATING (dynalite's default is 500; here 0). */
export async function startDynalite(options: { createTableMs?: number } = {}): Promise<Dynalite> {
  const server = dynalite({ createTableMs: options.createTableMs ?? 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clients: DynamoDBClient[] = [];
  return {
    endpoint,
    client(config = {}) {
      // One attempt: a test sees the server's answer, not a retry of it.
      const c = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: TEST_CREDENTIALS, maxAttempts: 1, ...config });
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients) c.destroy();
      server.closeAllConnections?.();
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}
