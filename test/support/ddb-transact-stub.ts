/**
 * A small local HTTP server that speaks the DynamoDB JSON 1.0 protocol for TransactWriteItems
 * only, with Put items, for the one thing dynalite cannot test: the transactional write path of
 * the branch key storage (test/support/dynalite.ts has no TransactWriteItems).
 *
 * What it does, following the DynamoDB API Reference (TransactWriteItems): every Put's
 * ConditionExpression is evaluated against the items as they were before the request; if any
 * fails, nothing is written and the answer is HTTP 400 TransactionCanceledException with one
 * CancellationReason per item in request order (`ConditionalCheckFailed` or `None`). Otherwise all
 * Puts are applied together (one request at a time: Node runs the handler to completion).
 * Conditions: only `attribute_exists(p)`, `attribute_not_exists(p)`, `p = :v`, joined by AND,
 * with `#` names resolved through ExpressionAttributeNames; a bare name with a dash is a
 * ValidationException, as in DynamoDB. Anything else (Update, Delete, ConditionCheck, another
 * operation) is refused. It is a test double of DynamoDB's semantics, not DynamoDB.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { TEST_CREDENTIALS } from './dynalite.js';

/** An attribute value as it travels in DynamoDB JSON: { S: string } | { N: string } | { B: base64 }. */
export type WireValue = Record<string, string>;
export type WireItem = Record<string, WireValue>;

export interface TransactStub {
  endpoint: string;
  /** Every request received: the X-Amz-Target and the parsed JSON body, as sent on the wire. */
  requests: Array<{ target: string; body: Record<string, unknown> }>;
  /** The stored items, by `${branch-key-id}\u0000${type}`. */
  items: Map<string, WireItem>;
  /** The next TransactWriteItems is cancelled with these reason codes (e.g. TransactionConflict), whatever its conditions. */
  cancelNext: string[] | undefined;
  client(): DynamoDBClient;
  close(): Promise<void>;
}

const TYPE_PREFIX = 'com.amazonaws.dynamodb.v20120810#';

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'content-length': Buffer.byteLength(text), 'x-amzn-requestid': 'stub' });
  res.end(text);
}

function fail(res: ServerResponse, type: string, message: string, extra: Record<string, unknown> = {}): void {
  send(res, 400, { __type: `${TYPE_PREFIX}${type}`, message, ...extra });
}

class Invalid extends Error {}

function itemKey(item: WireItem): string {
  const id = item['branch-key-id']?.S;
  const type = item.type?.S;
  if (typeof id !== 'string' || typeof type !== 'string') throw new Invalid('item has no branch-key-id S / type S key');
  return `${id}\u0000${type}`;
}

function sameValue(a: WireValue | undefined, b: WireValue | undefined): boolean {
  if (!a || !b) return false;
  const [ka] = Object.keys(a);
  const [kb] = Object.keys(b);
  return ka === kb && a[ka!] === b[kb!];
}

function evaluate(
  expression: string,
  names: Record<string, string>,
  values: Record<string, WireValue>,
  current: WireItem | undefined,
): boolean {
  const name = (token: string): string => {
    if (token.startsWith('#')) {
      const n = names[token];
      if (n === undefined) throw new Invalid(`unresolved attribute name ${token}`);
      return n;
    }
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(token)) throw new Invalid(`Invalid ConditionExpression: Syntax error near ${token}`);
    return token;
  };
  return expression.split(/\s+AND\s+/i).every((clause) => {
    const fn = /^\s*(attribute_exists|attribute_not_exists)\(\s*(\S+?)\s*\)\s*$/.exec(clause);
    if (fn) {
      const present = current !== undefined && name(fn[2]!) in current;
      return fn[1] === 'attribute_exists' ? present : !present;
    }
    const eq = /^\s*(\S+)\s*=\s*(:[A-Za-z0-9_]+)\s*$/.exec(clause);
    if (eq) {
      const v = values[eq[2]!];
      if (v === undefined) throw new Invalid(`unresolved attribute value ${eq[2]}`);
      return sameValue(current?.[name(eq[1]!)], v);
    }
    throw new Invalid(`Invalid ConditionExpression: unsupported by the stub: ${clause}`);
  });
}

export async function startTransactStub(options: { tableName: string }): Promise<TransactStub> {
  const clients: DynamoDBClient[] = [];
  const stub: TransactStub = {
    endpoint: '',
    requests: [],
    items: new Map(),
    cancelNext: undefined,
    client() {
      const c = new DynamoDBClient({ endpoint: stub.endpoint, region: 'us-east-1', credentials: TEST_CREDENTIALS, maxAttempts: 1 });
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients) c.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  function transact(body: Record<string, unknown>, res: ServerResponse): void {
    const list = body.TransactItems;
    if (!Array.isArray(list) || list.length === 0 || list.length > 100) throw new Invalid('TransactItems must hold 1-100 items');
    const puts = list.map((entry: Record<string, unknown>) => {
      const keys = Object.keys(entry);
      if (keys.length !== 1 || keys[0] !== 'Put') throw new Invalid('the stub supports Put items only');
      const put = entry.Put as {
        TableName?: string;
        Item?: WireItem;
        ConditionExpression?: string;
        ExpressionAttributeNames?: Record<string, string>;
        ExpressionAttributeValues?: Record<string, WireValue>;
      };
      if (put.TableName !== options.tableName) return { missingTable: true as const, put, key: '' };
      return { missingTable: false as const, put, key: itemKey(put.Item ?? {}) };
    });
    if (puts.some((p) => p.missingTable)) return fail(res, 'ResourceNotFoundException', 'Requested resource not found');
    if (new Set(puts.map((p) => p.key)).size !== puts.length) {
      throw new Invalid('Transaction request cannot include multiple operations on one item');
    }
    const forced = stub.cancelNext;
    stub.cancelNext = undefined;
    const codes =
      forced ??
      puts.map(({ put, key }) =>
        put.ConditionExpression === undefined ||
        evaluate(put.ConditionExpression, put.ExpressionAttributeNames ?? {}, put.ExpressionAttributeValues ?? {}, stub.items.get(key))
          ? 'None'
          : 'ConditionalCheckFailed',
      );
    if (codes.some((c) => c !== 'None')) {
      return fail(res, 'TransactionCanceledException', `Transaction cancelled, please refer cancellation reasons for specific reasons [${codes.join(', ')}]`, {
        CancellationReasons: codes.map((Code) => (Code === 'None' ? { Code } : { Code, Message: Code === 'ConditionalCheckFailed' ? 'The conditional request failed' : Code })),
      });
    }
    for (const { put, key } of puts) stub.items.set(key, structuredClone(put.Item!));
    send(res, 200, {});
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch {
        return fail(res, 'SerializationException', 'body is not JSON');
      }
      stub.requests.push({ target, body });
      if (target !== 'DynamoDB_20120810.TransactWriteItems') return fail(res, 'UnknownOperationException', 'the stub implements TransactWriteItems only');
      try {
        transact(body, res);
      } catch (err) {
        if (err instanceof Invalid) return fail(res, 'ValidationException', err.message);
        send(res, 500, { __type: `${TYPE_PREFIX}InternalServerError`, message: 'stub failure' });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  stub.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return stub;
}
