/**
 * The local KMS HTTP server against hostile and broken clients, over raw node:http / node:net
 * (no SDK, so every header and byte is ours): malformed JSON and UTF-8, wrong content types and
 * targets, wrong member types for every member of every operation, missing members, oversized and
 * lying bodies, wrong methods and paths, protocol garbage, and slow, silent, half-closed and idle
 * connections. Errors must be AWS-shaped (`{"__type", "message"}`, HTTP 400, 404 for no route,
 * 413 for bodies over the limit) or, where Node's HTTP parser rejects the bytes before any
 * handler runs, its status with the connection closed. After every case the server still answers
 * a valid request (afterEach).
 *
 * Signature checks (wrong signature, stale date, replay) are in sigv4.test.ts and
 * policy-e2e.test.ts; the basic protocol errors in server.test.ts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { SUPPORTED_OPERATIONS, startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { SHAPES, type MemberKind } from '../../src/local-kms/shapes.js';
import { tempDir } from './helpers.js';

const JSON_TYPE = 'application/x-amz-json-1.1';
const MAX_BODY = 64 * 1024;
// Short deadlines so the slow-client cases finish in seconds; the defaults are 10 s / 30 s / 60 s.
const HEADERS_TIMEOUT = 1_000;
const REQUEST_TIMEOUT = 2_000;
const IDLE_TIMEOUT = 3_000;
// The server checks deadlines once a second; this much on top covers a loaded CI machine.
const SLACK = 1_000 + 3_000;

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: Record<string, unknown> | undefined;
}

let server: LocalKmsServer;
let keyId: string;
const agent = new Agent({ keepAlive: true, maxSockets: 4 });
const tmp = tempDir('lkms-hostile-');

/** One HTTP request with exactly the headers given (node:http adds Host and Content-Length only). */
function raw(opts: { method?: string; path?: string; headers?: Record<string, string | string[]>; body?: string | Buffer; fresh?: boolean }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        method: opts.method ?? 'POST',
        path: opts.path ?? '/',
        // An explicit length: node:http sends no framing for a GET/DELETE/OPTIONS body otherwise.
        headers: { ...(opts.body !== undefined ? { 'Content-Length': String(Buffer.byteLength(opts.body)) } : {}), ...opts.headers },
        agent: opts.fresh ? false : agent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: Record<string, unknown> | undefined;
          try {
            json = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode!, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A KMS JSON 1.1 call with correct headers and the given raw body. */
const kmsCall = (operation: string, body: string | Buffer, headers: Record<string, string> = {}) =>
  raw({ headers: { 'Content-Type': JSON_TYPE, 'X-Amz-Target': `TrentService.${operation}`, ...headers }, body });

/** Asserts an AWS JSON 1.1 error answer and returns its message. */
function expectAwsError(a: Answer, type: string, status = 400): string {
  expect({ status: a.status, type: a.json?.__type }, a.text).toEqual({ status, type });
  expect(typeof a.json!.message).toBe('string');
  expect(a.headers['content-type']).toBe(JSON_TYPE);
  expect(a.headers['x-amzn-requestid']).toMatch(/^[0-9a-f-]{36}$/);
  return a.json!.message as string;
}

/** Opens a raw TCP connection to the server and records everything it sends back. */
async function openSocket(): Promise<{ sock: Socket; data: () => string; closed: Promise<void>; isClosed: () => boolean }> {
  const sock = connect(server.port, '127.0.0.1');
  let data = '';
  let isClosed = false;
  sock.on('data', (d: Buffer) => (data += d.toString('latin1')));
  sock.on('error', () => undefined); // resets from the server are expected; 'close' follows
  const closed = new Promise<void>((r) => sock.once('close', () => ((isClosed = true), r())));
  await new Promise<void>((r, j) => {
    sock.once('connect', () => r());
    sock.once('error', j);
  });
  return { sock, data: () => data, closed, isClosed: () => isClosed };
}

/** Resolves true when `closed` settles within `ms`, false otherwise. */
const settlesWithin = (closed: Promise<void>, ms: number) =>
  Promise.race([closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

/** Writes `total` bytes (a body or body chunks from `frame`) until the server closes; returns how many bytes went out. */
function pumpUntilClosed(sock: Socket, closed: Promise<void>, total: number, frame: (chunk: Buffer) => Buffer = (c) => c): Promise<number> {
  const chunk = frame(Buffer.alloc(64 * 1024, 0x20));
  let written = 0;
  let done = false;
  void closed.then(() => (done = true));
  return new Promise((resolve) => {
    const pump = () => {
      while (!done && written < total) {
        written += chunk.length;
        if (!sock.write(chunk)) {
          sock.once('drain', pump);
          return;
        }
      }
    };
    void closed.then(() => resolve(written));
    pump();
  });
}

beforeAll(async () => {
  server = await startLocalKmsServer({
    port: 0,
    dataDir: tmp.dir,
    maxBodyBytes: MAX_BODY,
    headersTimeoutMs: HEADERS_TIMEOUT,
    requestTimeoutMs: REQUEST_TIMEOUT,
    idleTimeoutMs: IDLE_TIMEOUT,
  });
  const created = await kmsCall('CreateKey', '{"Description":"hostile"}');
  keyId = (created.json!.KeyMetadata as { KeyId: string }).KeyId;
  expect((await kmsCall('CreateAlias', JSON.stringify({ AliasName: 'alias/hostile', TargetKeyId: keyId }))).status).toBe(200);
});

afterEach(async () => {
  // Whatever the case did, a fresh connection still gets a correct answer.
  const a = await raw({ fresh: true, headers: { 'Content-Type': JSON_TYPE, 'X-Amz-Target': 'TrentService.DescribeKey' }, body: '{"KeyId":"alias/hostile"}' });
  expect(a.status, a.text).toBe(200);
  expect((a.json!.KeyMetadata as { KeyId: string }).KeyId).toBe(keyId);
});

afterAll(async () => {
  agent.destroy();
  await server?.close();
  tmp.cleanup();
});

describe('targets and content types', () => {
  it('answers a missing, empty or unknown X-Amz-Target with UnknownOperationException', async () => {
    expectAwsError(await raw({ headers: { 'Content-Type': JSON_TYPE }, body: '{}' }), 'UnknownOperationException');
    for (const target of [
      '',
      'TrentService.',
      'TrentService',
      'trentservice.ListKeys',
      'KMS.ListKeys',
      'TrentService.List Keys',
      'TrentService.ListKeys.Extra',
      `TrentService.${'A'.repeat(8000)}`,
      'TrentService.ListKeys, TrentService.CreateKey',
    ]) {
      expectAwsError(await raw({ headers: { 'Content-Type': JSON_TYPE, 'X-Amz-Target': target }, body: '{}' }), 'UnknownOperationException');
    }
    // Two X-Amz-Target headers are joined by Node into one value that names no operation.
    const twice = await raw({ headers: { 'Content-Type': JSON_TYPE, 'X-Amz-Target': ['TrentService.ListKeys', 'TrentService.CreateKey'] }, body: '{}' });
    expectAwsError(twice, 'UnknownOperationException');
  });

  it('never dispatches to Object.prototype members (TrentService.valueOf once returned the service and its root-derived keys)', async () => {
    for (const name of ['valueOf', 'toString', 'constructor', '__proto__', 'hasOwnProperty', 'isPrototypeOf', 'toLocaleString', '__defineGetter__', '__lookupGetter__', 'propertyIsEnumerable']) {
      const a = await kmsCall(name, '{}');
      expectAwsError(a, 'UnknownOperationException');
      expect(a.text).not.toMatch(/seal|fingerprint|"store"|"root"/);
    }
  });

  it('refuses content types other than application/x-amz-json-1.1', async () => {
    for (const type of ['text/plain', 'application/json', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/x-amz-json-1.0', 'application/x-amz-cbor-1.1', '']) {
      expectAwsError(await kmsCall('ListKeys', '{}', { 'Content-Type': type }), 'UnknownOperationException');
    }
    // Media type parameters and case do not matter.
    expect((await kmsCall('ListKeys', '{}', { 'Content-Type': `${JSON_TYPE}; charset=utf-8` })).status).toBe(200);
    expect((await kmsCall('ListKeys', '{}', { 'Content-Type': 'Application/X-Amz-Json-1.1' })).status).toBe(200);
  });
});

describe('bodies', () => {
  it('answers bodies that are not JSON, not UTF-8 or not an object with SerializationException', async () => {
    const notJson = ['{', '}', '{"Limit": 5', '{}x', "{'Limit': 5}", 'undefined', 'NaN', '{"Limit": NaN}', '{"Limit": 0x10}', '\ufeff{}', '{"a":1,}'];
    for (const body of notJson) expectAwsError(await kmsCall('ListKeys', body), 'SerializationException');
    // Invalid UTF-8 (lone continuation byte, overlong encoding) inside a string member.
    for (const bad of [[0x80], [0xc0, 0xaf], [0xff, 0xfe], [0xed, 0xa0, 0x80]]) {
      const body = Buffer.concat([Buffer.from('{"Description":"a'), Buffer.from(bad), Buffer.from('b"}')]);
      expectAwsError(await kmsCall('CreateKey', body), 'SerializationException');
    }
    for (const body of ['[]', '[{}]', '"ListKeys"', '1', 'true', 'null']) {
      expectAwsError(await kmsCall('ListKeys', body), 'SerializationException');
    }
    // An empty body is an empty request, as for AWS.
    expect((await kmsCall('ListKeys', '')).status).toBe(200);
    // Deep nesting: ignored in an unknown member, a type error in a known one; no stack overflow either way.
    const deep = '['.repeat(30_000) + ']'.repeat(30_000);
    expect((await kmsCall('ListKeys', `{"Unknown":${deep}}`)).status).toBe(200);
    expectAwsError(await kmsCall('TagResource', `{"KeyId":"${keyId}","Tags":${deep}}`), 'SerializationException');
    // Numbers JSON can express but an int cannot hold.
    for (const n of ['1e400', '-1e400', '2147483648', '1e3000', '1.0000000000000002']) {
      expectAwsError(await kmsCall('ListKeys', `{"Limit":${n}}`), 'SerializationException');
    }
  });

  /** Values of the wrong JSON type for each member kind of the JSON 1.1 shapes. */
  const WRONG: Record<MemberKind, unknown[]> = {
    string: [5, true, ['s'], { s: 's' }],
    integer: ['5', 1.5, true, [5]],
    boolean: ['true', 0, [true]],
    blob: [5, ['eA=='], { b: 'eA==' }, 'not base64!', 'eA', 'e===', '____'],
    timestamp: ['2030-01-01T00:00:00Z', true, [1]],
    stringMap: ['a=b', ['a', 'b'], 5, { a: 1 }, { a: { b: 'c' } }],
    stringList: ['a', { a: 'b' }, [1], [['a']]],
    tags: [{ TagKey: 'a', TagValue: 'b' }, 'a', [1], [['a']], [{ TagKey: 1, TagValue: 'b' }], [{ TagKey: 'a', TagValue: false }]],
  };

  it('answers a member of the wrong type, in every member of every operation, with SerializationException', async () => {
    let cases = 0;
    for (const [operation, shape] of Object.entries(SHAPES)) {
      for (const [member, kind] of Object.entries(shape)) {
        for (const value of WRONG[kind]) {
          const a = await kmsCall(operation, JSON.stringify({ [member]: value }));
          expect({ operation, member, value, status: a.status, type: a.json?.__type }).toEqual({ operation, member, value, status: 400, type: 'SerializationException' });
          cases++;
        }
      }
    }
    // Every operation the server dispatches has a shape, so none was left out above.
    expect(Object.keys(SHAPES).sort()).toEqual([...SUPPORTED_OPERATIONS].sort());
    expect(cases).toBeGreaterThan(500);
  });

  it('answers missing or out-of-range members with ValidationException, and bad blobs with the AWS error', async () => {
    const required: [string, unknown, string[]][] = [
      ['Encrypt', {}, ['keyId', 'plaintext']],
      ['Decrypt', {}, ['ciphertextBlob']],
      ['GenerateDataKey', {}, ['keyId']],
      ['CreateAlias', {}, ['aliasName', 'targetKeyId']],
      ['GetParametersForImport', {}, ['keyId', 'wrappingAlgorithm', 'wrappingKeySpec']],
      ['ImportKeyMaterial', {}, ['keyId', 'importToken', 'encryptedKeyMaterial']],
      ['DescribeKey', {}, ['keyId']],
      ['TagResource', { KeyId: 'alias/hostile' }, ['tags']],
    ];
    for (const [op, body, members] of required) {
      const message = expectAwsError(await kmsCall(op, JSON.stringify(body)), 'ValidationException');
      expect(message).toMatch(new RegExp(`^${members.length} validation errors? detected: `));
      for (const m of members) expect(message).toContain(`Value null at '${m}' failed to satisfy constraint: Member must not be null`);
    }
    const invalid: [string, unknown][] = [
      ['Encrypt', { KeyId: 'alias/hostile', Plaintext: '' }],
      ['Encrypt', { KeyId: 'alias/hostile', Plaintext: Buffer.alloc(4097).toString('base64') }],
      ['Encrypt', { KeyId: 'k'.repeat(2049), Plaintext: 'eA==' }],
      ['GenerateRandom', { NumberOfBytes: 0 }],
      ['GenerateRandom', { NumberOfBytes: 1025 }],
      ['GenerateRandom', { NumberOfBytes: -1 }],
      ['GenerateDataKey', { KeyId: 'alias/hostile', NumberOfBytes: 2 ** 31 - 1 }],
      ['ListKeys', { Limit: 0 }],
      ['ListKeys', { Limit: 1001 }],
      ['Decrypt', { CiphertextBlob: Buffer.alloc(6145).toString('base64') }],
      ['CreateKey', { KeySpec: 'SYMMETRIC_DEFAULT\u0000' }],
    ];
    for (const [op, body] of invalid) expectAwsError(await kmsCall(op, JSON.stringify(body)), 'ValidationException');
    // Well-typed garbage where a ciphertext, token or wrapped material belongs.
    expectAwsError(await kmsCall('Decrypt', JSON.stringify({ CiphertextBlob: Buffer.alloc(200, 7).toString('base64') })), 'InvalidCiphertextException');
    const external = (await kmsCall('CreateKey', '{"Origin":"EXTERNAL"}')).json!.KeyMetadata as { KeyId: string };
    expectAwsError(
      await kmsCall('ImportKeyMaterial', JSON.stringify({ KeyId: external.KeyId, ImportToken: Buffer.alloc(137, 1).toString('base64'), EncryptedKeyMaterial: 'eA==', ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' })),
      'InvalidImportTokenException',
    );
  });

  it('does not let JSON member names reach Object.prototype', async () => {
    const a = await kmsCall('CreateKey', '{"__proto__":{"Description":"polluted","Origin":"EXTERNAL"},"constructor":1,"toString":2,"hasOwnProperty":3}');
    expect(a.status, a.text).toBe(200);
    const md = a.json!.KeyMetadata as { Description: string; Origin: string };
    expect(md).toMatchObject({ Description: '', Origin: 'AWS_KMS' });
    expect(({} as Record<string, unknown>).Description).toBeUndefined();
  });

  // KNOWN BUG, reported, not fixed here: src/local-kms/shapes.ts (not this helper's file) builds
  // string maps with `m[k] = v` on a plain object, so a context key "__proto__" is swallowed by the
  // prototype setter and the ciphertext is bound to the context without it. Remove `.fails` when
  // decodeMember uses a null-prototype object or Object.defineProperty.
  it('binds an EncryptionContext key named "__proto__" like any other key', async () => {
    const enc = await kmsCall('Encrypt', `{"KeyId":"alias/hostile","Plaintext":"aGk=","EncryptionContext":{"__proto__":"tenant-a"}}`);
    expect(enc.status).toBe(200);
    const blob = enc.json!.CiphertextBlob as string;
    expectAwsError(await kmsCall('Decrypt', `{"CiphertextBlob":"${blob}"}`), 'InvalidCiphertextException');
    expectAwsError(await kmsCall('Decrypt', `{"CiphertextBlob":"${blob}","EncryptionContext":{"__proto__":"tenant-b"}}`), 'InvalidCiphertextException');
  });
});

describe('oversized and lying bodies', () => {
  it('accepts a body of exactly the limit and refuses one byte more with 413', async () => {
    const exact = (n: number) => {
      const head = '{"Pad":"';
      return `${head}${'x'.repeat(n - head.length - 2)}"}`;
    };
    expect(Buffer.byteLength(exact(MAX_BODY))).toBe(MAX_BODY);
    expect((await kmsCall('ListKeys', exact(MAX_BODY))).status).toBe(200);
    const over = await raw({ fresh: true, headers: { 'Content-Type': JSON_TYPE, 'X-Amz-Target': 'TrentService.ListKeys' }, body: exact(MAX_BODY + 1) });
    expectAwsError(over, 'RequestEntityTooLargeException', 413);
    expect(over.headers.connection).toBe('close');
  });

  it('answers a declared 1 GiB body with 413 and drops the connection instead of reading it', async () => {
    const c = await openSocket();
    c.sock.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: ${JSON_TYPE}\r\nX-Amz-Target: TrentService.CreateKey\r\nContent-Length: ${2 ** 30}\r\n\r\n`);
    const written = await pumpUntilClosed(c.sock, c.closed, 2 ** 30);
    expect(c.data()).toMatch(/^HTTP\/1\.1 413 /);
    expect(c.data()).toContain('"__type":"RequestEntityTooLargeException"');
    // The server hung up long before the client could send what it announced.
    expect(written).toBeLessThan(64 * 2 ** 20);
  });

  it('cuts off a chunked body without a length once it passes the limit', async () => {
    const c = await openSocket();
    c.sock.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: ${JSON_TYPE}\r\nX-Amz-Target: TrentService.CreateKey\r\nTransfer-Encoding: chunked\r\n\r\n`);
    const written = await pumpUntilClosed(c.sock, c.closed, 2 ** 30, (chunk) => Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]));
    expect(c.data()).toMatch(/^HTTP\/1\.1 413 /);
    expect(c.data()).toContain('"__type":"RequestEntityTooLargeException"');
    expect(written).toBeLessThan(64 * 2 ** 20);
  });

  it('answers 413 to an oversized request that asks Expect: 100-continue', async () => {
    const c = await openSocket();
    c.sock.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: ${JSON_TYPE}\r\nX-Amz-Target: TrentService.CreateKey\r\nExpect: 100-continue\r\nContent-Length: ${10 * MAX_BODY}\r\n\r\n`);
    expect(await settlesWithin(c.closed, REQUEST_TIMEOUT + SLACK)).toBe(true);
    expect(c.data()).toMatch(/HTTP\/1\.1 413 /);
  });

  it('closes a connection whose Content-Length is shorter than the body (the rest is a broken second request)', async () => {
    const c = await openSocket();
    const body = '{"Limit": 5, "Marker": "x"}';
    c.sock.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: ${JSON_TYPE}\r\nX-Amz-Target: TrentService.ListKeys\r\nContent-Length: 10\r\n\r\n${body}`);
    expect(await settlesWithin(c.closed, REQUEST_TIMEOUT + SLACK)).toBe(true);
    // The leftover bytes are not HTTP: Node's parser answers 400 and closes (possibly before the
    // answer to the 10-byte request, which is then lost with the connection). Nothing succeeded.
    expect(c.data()).toMatch(/^HTTP\/1\.1 400 /);
    expect(c.data()).not.toMatch(/HTTP\/1\.1 200 /);
  });
});

describe('methods, paths and HTTP garbage', () => {
  it('answers other methods and paths with 404 UnknownOperationException', async () => {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      expectAwsError(await raw({ method, headers: { 'Content-Type': JSON_TYPE, 'X-Amz-Target': 'TrentService.ListKeys' }, body: method === 'GET' ? undefined : '{}' }), 'UnknownOperationException', 404);
    }
    const head = await raw({ method: 'HEAD', headers: { 'X-Amz-Target': 'TrentService.ListKeys' } });
    expect(head.status).toBe(404);
    expect(head.text).toBe('');
    for (const path of ['/foo', '//', '/%2e%2e/', '/TrentService.ListKeys', '/_local/clock', '/_local/../']) {
      const a = await raw({ path, headers: { 'Content-Type': JSON_TYPE, 'X-Amz-Target': 'TrentService.ListKeys' }, body: '{}' });
      expectAwsError(a, 'UnknownOperationException', 404);
    }
    // A query string does not change the route.
    expect((await raw({ path: '/?Action=CreateKey', headers: { 'Content-Type': JSON_TYPE, 'X-Amz-Target': 'TrentService.ListKeys' }, body: '{}' })).status).toBe(200);
  });

  it('closes connections that send bytes Node cannot parse as HTTP', async () => {
    const garbage: [string, RegExp][] = [
      ['GARBAGE\r\n\r\n', /^HTTP\/1\.1 400 /],
      ['\x00\x01\x02\x03\r\n\r\n', /^HTTP\/1\.1 400 /],
      ['\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03', /^(HTTP\/1\.1 400 |$)/], // a TLS ClientHello
      ['POST / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n', /^HTTP\/1\.1 400 /],
      ['POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n', /^HTTP\/1\.1 400 /],
      ['POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}', /^HTTP\/1\.1 400 /],
      ['POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', /^HTTP\/1\.1 400 /],
      ['POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /^HTTP\/1\.1 400 /],
      [`POST / HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(20 * 1024)}\r\n\r\n`, /^HTTP\/1\.1 431 /],
      ['POST / HTTP/9.9\r\nHost: x\r\n\r\n', /^HTTP\/1\.1 (400|505) /],
    ];
    for (const [bytes, expected] of garbage) {
      const c = await openSocket();
      c.sock.write(Buffer.from(bytes, 'latin1'));
      expect(await settlesWithin(c.closed, HEADERS_TIMEOUT + SLACK), JSON.stringify(bytes.slice(0, 40))).toBe(true);
      expect(c.data(), JSON.stringify(bytes.slice(0, 40))).toMatch(expected);
      expect((await kmsCall('GenerateRandom', '{"NumberOfBytes":16}')).status).toBe(200);
    }
  });

  it('answers pipelined requests in order on one connection', async () => {
    const c = await openSocket();
    const req = (target: string, body: string) =>
      `POST / HTTP/1.1\r\nHost: x\r\nContent-Type: ${JSON_TYPE}\r\nX-Amz-Target: TrentService.${target}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    c.sock.end(req('DescribeKey', '{"KeyId":"alias/hostile"}') + req('DescribeKey', '{"KeyId":"alias/none"}') + req('GenerateRandom', '{"NumberOfBytes":7}'));
    await c.closed;
    const statuses = [...c.data().matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
    expect(statuses).toEqual(['200', '400', '200']);
    expect(c.data().indexOf(keyId)).toBeLessThan(c.data().indexOf('NotFoundException'));
  });

  it('throttles a client that pipelines requests and never reads the answers (no unbounded buffering)', async () => {
    const c = await openSocket();
    c.sock.pause(); // never read: answers pile up unless the server stops reading requests
    const body = '{"NumberOfBytes":1024}';
    const one = `POST / HTTP/1.1\r\nHost: x\r\nContent-Type: ${JSON_TYPE}\r\nX-Amz-Target: TrentService.GenerateRandom\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const batch = Buffer.from(one.repeat(1000));
    const total = 200 * batch.length; // 200,000 requests, about 40 MB; their answers would be ~300 MB
    let written = 0;
    let lastProgress = Date.now();
    await new Promise<void>((resolve) => {
      const pump = () => {
        while (written < total) {
          written += batch.length;
          lastProgress = Date.now();
          if (!c.sock.write(batch)) {
            c.sock.once('drain', pump);
            return;
          }
        }
        resolve();
      };
      pump();
      // Stalled: the server stopped reading for a second.
      const timer = setInterval(() => {
        if (Date.now() - lastProgress > 1_000) {
          clearInterval(timer);
          resolve();
        }
      }, 100);
    });
    expect(written).toBeLessThan(total / 2);
    c.sock.destroy();
  });
});

// Concurrent: each case mostly waits for a server deadline.
describe.concurrent('slow, silent, half-closed and idle clients', () => {
  it('closes a slowloris client trickling header bytes once the headers deadline passes', async () => {
    const c = await openSocket();
    const head = `POST / HTTP/1.1\r\nHost: x\r\nContent-Type: ${JSON_TYPE}\r\nX-Amz-Target: TrentService.ListKeys\r\nX-Pad: ${'p'.repeat(1000)}`;
    let i = 0;
    const timer = setInterval(() => {
      if (!c.isClosed()) c.sock.write(head[i++ % head.length]!);
    }, 100);
    try {
      expect(await settlesWithin(c.closed, HEADERS_TIMEOUT + SLACK)).toBe(true);
    } finally {
      clearInterval(timer);
    }
    expect(c.data()).toMatch(/^HTTP\/1\.1 408 /);
    expect(i).toBeGreaterThan(3); // it really was trickling when the server gave up
  });

  it('closes a client trickling its body one byte per 100 ms once the request deadline passes', async () => {
    const c = await openSocket();
    c.sock.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: ${JSON_TYPE}\r\nX-Amz-Target: TrentService.ListKeys\r\nContent-Length: 1000\r\n\r\n{"Pad":"`);
    let sent = 0;
    const timer = setInterval(() => {
      if (!c.isClosed()) c.sock.write('x', () => sent++);
    }, 100);
    try {
      expect(await settlesWithin(c.closed, REQUEST_TIMEOUT + SLACK)).toBe(true);
    } finally {
      clearInterval(timer);
    }
    expect(c.data()).toMatch(/^(HTTP\/1\.1 408 |$)/);
    expect(sent).toBeLessThan(1000 - 8);
  });

  it('closes connections that never send a byte, and half-closed ones with an unfinished request', async () => {
    const silent = await openSocket();
    const halfHeaders = await openSocket();
    halfHeaders.sock.end('POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Tar');
    const halfBody = await openSocket();
    halfBody.sock.end(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: ${JSON_TYPE}\r\nX-Amz-Target: TrentService.ListKeys\r\nContent-Length: 50\r\n\r\n{"Li`);
    expect(await settlesWithin(silent.closed, HEADERS_TIMEOUT + SLACK)).toBe(true);
    expect(silent.data()).toMatch(/^(HTTP\/1\.1 408 |$)/);
    expect(await settlesWithin(halfHeaders.closed, REQUEST_TIMEOUT + SLACK)).toBe(true);
    expect(await settlesWithin(halfBody.closed, REQUEST_TIMEOUT + SLACK)).toBe(true);
    // Neither unfinished request was executed as if it were complete.
    expect(halfBody.data()).not.toMatch(/HTTP\/1\.1 200 /);
    expect(halfHeaders.data()).not.toMatch(/HTTP\/1\.1 200 /);
  });

  // 400: client and server ends share this process, and 2 x 400 descriptors stay under a 1024 ulimit.
  it('keeps serving while 400 idle and stalled sockets are open, and closes them all by their deadlines', async () => {
    const sockets = await Promise.all(Array.from({ length: 400 }, () => openSocket()));
    sockets.forEach((c, i) => {
      // Silent; headers never finished; body never finished; a finished request, then idle keep-alive.
      if (i % 4 === 1) c.sock.write('POST / HTTP/1.1\r\nHost: x\r\n');
      if (i % 4 === 2) c.sock.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: ${JSON_TYPE}\r\nX-Amz-Target: TrentService.ListKeys\r\nContent-Length: 100\r\n\r\n{`);
      if (i % 4 === 3) c.sock.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: ${JSON_TYPE}\r\nX-Amz-Target: TrentService.ListKeys\r\nContent-Length: 2\r\n\r\n{}`);
    });
    // Valid requests on fresh connections are answered while the server holds all of them.
    for (let i = 0; i < 20; i++) {
      const a = await raw({ fresh: true, headers: { 'Content-Type': JSON_TYPE, 'X-Amz-Target': 'TrentService.GenerateRandom' }, body: `{"NumberOfBytes":${i + 1}}` });
      expect(a.status).toBe(200);
      expect(Buffer.from(a.json!.Plaintext as string, 'base64')).toHaveLength(i + 1);
    }
    // Idle keep-alive sockets go after keepAliveTimeout (5 s), the others by their own deadlines.
    const closed = await Promise.all(sockets.map((c, i) => settlesWithin(c.closed, (i % 4 === 3 ? 5_000 : REQUEST_TIMEOUT) + SLACK)));
    expect(closed.filter((x) => !x)).toHaveLength(0);
    const answered = sockets.filter((_, i) => i % 4 === 3).map((c) => c.data());
    expect(answered.every((d) => /^HTTP\/1\.1 200 /.test(d))).toBe(true);
    expect(sockets.filter((_, i) => i % 4 !== 3).some((c) => /HTTP\/1\.1 200 /.test(c.data()))).toBe(false);
  }, 20_000);

});
