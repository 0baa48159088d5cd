/**
 * examples/lambda-decrypt/handler.mjs: one Envelope at module scope, so warm invocations reuse
 * unwrapped data keys. 100 invocations on blobs that share 3 data keys must cost exactly 3 KMS
 * Decrypt requests, counted on the local KMS server (the other side of the wire), not by the library.
 *
 * The handler imports 'kms-envelope' (this package, through its exports map: dist/), like a
 * deployed function would; `npm test` builds dist/ first.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { Envelope } from '../../src/index.js';

const CREDENTIALS = { accessKeyId: 'AKIDLAMBDATEST00', secretAccessKey: 'lambda-test-secret' };

let dir: string;
let server: LocalKmsServer;
let sdk: KMSClient;
let keyArn: string;
const calls = new Map<string, number>();
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kms-envelope-lambda-'));
  server = await startLocalKmsServer({ port: 0, dataDir: join(dir, 'kms') });
  // Count operations where the server executes them: every HTTP request ends in service.call().
  const service = server.service;
  const call = service.call.bind(service);
  service.call = (op: string, ...rest: Parameters<typeof call> extends [string, ...infer R] ? R : never) => {
    calls.set(op, (calls.get(op) ?? 0) + 1);
    return call(op, ...rest);
  };
  sdk = new KMSClient({ endpoint: server.url, region: 'us-east-1', credentials: CREDENTIALS });
  keyArn = (await sdk.send(new CreateKeyCommand({ Description: 'lambda test' }))).KeyMetadata!.Arn!;

  // The function's configuration, as Lambda would set it.
  for (const k of ['KMS_ENDPOINT', 'KMS_KEY_IDS', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) saved[k] = process.env[k];
  process.env.KMS_ENDPOINT = server.url;
  process.env.KMS_KEY_IDS = keyArn;
  process.env.AWS_REGION = 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID = CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = CREDENTIALS.secretAccessKey;
});

afterAll(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  sdk?.destroy();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('examples/lambda-decrypt', () => {
  it('decrypts 100 blobs sharing 3 data keys with 3 KMS Decrypt calls', async () => {
    // Three writers, each with its own cached data key: 3 GenerateDataKey in all.
    const writers = [0, 1, 2].map(() => new Envelope({ kms: { keyId: keyArn, client: sdk } }));
    const blobs: { blob: string; plain: Buffer; context: Record<string, string> }[] = [];
    for (let i = 0; i < 100; i++) {
      const plain = randomBytes(1 + (i % 7) * 100);
      const context = { app: 'lambda-test' };
      const message = await writers[i % 3]!.encrypt(plain, { context });
      blobs.push({ blob: message.toString('base64'), plain, context });
    }
    expect(calls.get('GenerateDataKey')).toBe(3);
    expect(calls.get('Decrypt') ?? 0).toBe(0);

    const { handler, stats } = await import('../../examples/lambda-decrypt/handler.mjs');
    for (const { blob, plain, context } of blobs) {
      const out = await handler({ blobs: [blob], context });
      expect(out.results).toHaveLength(1);
      const r = out.results[0]!;
      if (!r.ok) throw new Error(`decrypt failed: ${r.error}`);
      expect(Buffer.from(r.plaintext, 'base64').equals(plain)).toBe(true);
    }
    expect(calls.get('Decrypt')).toBe(3);
    const s = stats();
    expect(s.kmsCalls).toBe(3);
    expect(s.decryptHits).toBe(97);

    // A bad blob fails alone, with its code and no bytes.
    const bad = await handler({ blobs: [blobs[0]!.blob, Buffer.from('nope').toString('base64')], context: { app: 'lambda-test' } });
    expect(bad.results.map((r) => r.ok)).toEqual([true, false]);
    expect(bad.results[1]).toEqual({ ok: false, error: 'ERR_MALFORMED_MESSAGE' });
    const wrongContext = await handler({ blob: blobs[1]!.blob, context: { app: 'other' } });
    expect(wrongContext.results[0]).toEqual({ ok: false, error: 'ERR_CONTEXT_MISMATCH' });
    expect(calls.get('Decrypt')).toBe(3);
  });
});
