/**
 * uploadEncrypted when things go wrong: aborts (at every stage, every body kind), S3 errors on a
 * part or on the final request, and what S3 is left holding afterwards. Every test asserts the
 * requests S3 received, recorded by the proxy in front of s3rver (./s3-proxy.ts).
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HeadObjectCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { Envelope, RawAesKeyring } from '../../src/index.js';
import { downloadDecryptedBuffer, uploadEncrypted } from '../../src/s3/index.js';
import { startLocalS3, type Fault, type LocalS3, type S3Request } from './s3-proxy.js';

const MiB = 1024 * 1024;
const SIZE = 12 * MiB; // three 5 MiB parts once encrypted
const PART = 5 * MiB;

let s3: LocalS3;
let envelope: Envelope;
let dir: string;
let file: string;
let data: Buffer;

beforeAll(async () => {
  s3 = await startLocalS3();
  envelope = new Envelope({ keyring: new RawAesKeyring({ keyNamespace: 'test', keyName: 's3', key: randomBytes(32) }) });
  dir = mkdtempSync(join(tmpdir(), 'kms-envelope-s3-body-'));
  file = join(dir, 'body.bin');
  data = randomBytes(SIZE);
  writeFileSync(file, data);
});

afterAll(async () => {
  await s3?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  s3.log.length = 0;
  s3.hook = undefined;
});

type BodyKind = 'buffer' | 'string' | 'stream' | 'file';
const KINDS: BodyKind[] = ['buffer', 'string', 'stream', 'file'];

function body(kind: BodyKind): Uint8Array | string | Readable {
  switch (kind) {
    case 'buffer':
      return data;
    case 'string':
      return data.toString('latin1'); // 1 or 2 UTF-8 bytes per char: about 18 MiB
    case 'stream':
      return Readable.from((function* () {
        for (let at = 0; at < data.length; at += MiB) yield data.subarray(at, at + MiB);
      })());
    case 'file':
      return createReadStream(file);
  }
}

/** Runs the upload; records a marker in the S3 log when it settles, and what was in flight then. */
async function settle(p: Promise<unknown>): Promise<{ ok: boolean; value: unknown; inFlightAtSettle: number }> {
  const out = await p.then(
    (value) => ({ ok: true, value }),
    (value: unknown) => ({ ok: false, value }),
  );
  const inFlightAtSettle = s3.inFlight();
  s3.log.push({ op: 'marker', name: 'settled' });
  return { ...out, inFlightAtSettle };
}

function indexOf(op: string, name?: string): number {
  return s3.log.findIndex((e) => e.op === op && (name === undefined || ('name' in e && e.name === name)));
}

/** After a rejected call: no multipart upload left on S3 and no object under the key. */
async function expectNothingLeft(key: string): Promise<void> {
  const list = await s3.client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket }));
  expect((list.Uploads ?? []).filter((u) => u.Key === key)).toEqual([]);
  expect(s3.openUploads().filter((u) => u.key === key)).toEqual([]);
  await expect(s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }))).rejects.toMatchObject({
    $metadata: { httpStatusCode: 404 },
  });
}

const failPart = (n: number, fault: Fault) => (r: S3Request) => (r.op === 'UploadPart' && r.partNumber === n ? fault : undefined);
const INTERNAL: Fault = { status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' };
const DENIED: Fault = { status: 403, code: 'AccessDenied', message: 'Access Denied' };
const SLOW_DOWN: Fault = { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' };
const EXPIRED: Fault = { status: 400, code: 'ExpiredToken', message: 'The provided token has expired.' };

describe('uploadEncrypted: abort', () => {
  for (const kind of KINDS) {
    it(`an abort while a part is in flight sends AbortMultipartUpload before rejecting (${kind} body)`, async () => {
      const controller = new AbortController();
      const key = `abort-${kind}.bin`;
      // Abort while S3 is receiving part 2; the part itself still goes through.
      s3.hook = (r) => {
        if (r.op === 'UploadPart' && r.partNumber === 2) controller.abort();
      };
      const r = await settle(
        uploadEncrypted({ client: s3.client, bucket: s3.bucket, key, body: body(kind), envelope, partSize: PART, signal: controller.signal }),
      );
      expect(r.ok).toBe(false);
      expect(r.value).toMatchObject({ name: 'AbortError' });
      // Nothing left running when the call settled, and the multipart upload was aborted before.
      expect(r.inFlightAtSettle).toBe(0);
      expect(s3.ops('CreateMultipartUpload')).toHaveLength(1);
      expect(s3.ops('AbortMultipartUpload').map((e) => e.status)).toEqual([204]);
      expect(indexOf('AbortMultipartUpload')).toBeLessThan(indexOf('marker', 'settled'));
      expect(s3.ops('CompleteMultipartUpload')).toHaveLength(0);
      expect(s3.ops('PutObject')).toHaveLength(0);
      await expectNothingLeft(key);
    });
  }

  it('an already aborted signal rejects without any S3 request and destroys a stream body', async () => {
    const stream = body('stream') as Readable;
    const reason = new Error('caller gave up');
    const r = await settle(
      uploadEncrypted({ client: s3.client, bucket: s3.bucket, key: 'pre-aborted.bin', body: stream, envelope, signal: AbortSignal.abort(reason) }),
    );
    expect(r.value).toMatchObject({ name: 'AbortError', cause: reason });
    expect(stream.destroyed).toBe(true);
    expect(s3.log.filter((e) => e.op !== 'marker')).toEqual([]);
  });

  it('an abort while the final PutObject is in flight settles on what S3 did: the object exists, the call resolves', async () => {
    const controller = new AbortController();
    s3.hook = (r) => {
      if (r.op === 'PutObject') controller.abort();
    };
    const r = await settle(
      uploadEncrypted({ client: s3.client, bucket: s3.bucket, key: 'late-abort-put.txt', body: 'small', envelope, signal: controller.signal }),
    );
    expect(r.value).not.toBeInstanceOf(Error);
    expect(r.ok).toBe(true);
    expect(r.inFlightAtSettle).toBe(0);
    expect(s3.ops('PutObject').map((e) => e.status)).toEqual([200]);
    const got = await downloadDecryptedBuffer({ client: s3.client, bucket: s3.bucket, key: 'late-abort-put.txt', envelope });
    expect(got.plaintext.toString()).toBe('small');
  });

  for (const kind of ['buffer', 'stream'] as const) {
    it(`an abort while CompleteMultipartUpload is in flight resolves: the object was written (${kind} body)`, async () => {
      const controller = new AbortController();
      const key = `late-abort-complete-${kind}.bin`;
      s3.hook = async (r) => {
        if (r.op !== 'CompleteMultipartUpload') return;
        controller.abort();
        await new Promise((resolve) => setImmediate(resolve)); // let the abort run before S3 completes
      };
      const r = await settle(
        uploadEncrypted({ client: s3.client, bucket: s3.bucket, key, body: body(kind), envelope, partSize: PART, signal: controller.signal }),
      );
      expect(r.ok, String(r.value)).toBe(true);
      expect(r.inFlightAtSettle).toBe(0);
      expect(s3.ops('CompleteMultipartUpload').map((e) => e.status)).toEqual([200]);
      expect(s3.ops('AbortMultipartUpload')).toHaveLength(0);
      const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }));
      expect(head.ContentLength).toBe((r.value as { bytes: number }).bytes);
      expect((await downloadDecryptedBuffer({ client: s3.client, bucket: s3.bucket, key, envelope })).plaintext.equals(data)).toBe(true);
      expect(s3.openUploads().filter((u) => u.key === key)).toEqual([]);
    });
  }
});

describe('uploadEncrypted: S3 errors', () => {
  for (const [kind, fault] of [
    ['buffer', INTERNAL],
    ['stream', INTERNAL],
    ['string', DENIED],
    ['file', DENIED],
    ['stream', SLOW_DOWN],
    ['buffer', EXPIRED],
  ] as const) {
    it(`a part failing with ${fault.code} surfaces that error and aborts the multipart upload (${kind} body)`, async () => {
      const key = `fail-${fault.code}-${kind}.bin`;
      s3.hook = failPart(2, fault);
      // One part at a time: part 2 fails while the body is still being read.
      const r = await settle(
        uploadEncrypted({ client: s3.client, bucket: s3.bucket, key, body: body(kind), envelope, partSize: PART, queueSize: 1 }),
      );
      expect(r.ok).toBe(false);
      expect(r.value).toMatchObject({ name: fault.code, $metadata: { httpStatusCode: fault.status } });
      expect(r.inFlightAtSettle).toBe(0);
      expect(s3.ops('UploadPart').filter((e) => e.partNumber === 2).every((e) => e.status === fault.status)).toBe(true);
      expect(s3.ops('AbortMultipartUpload').map((e) => e.status)).toEqual([204]);
      expect(indexOf('AbortMultipartUpload')).toBeLessThan(indexOf('marker', 'settled'));
      expect(s3.ops('CompleteMultipartUpload')).toHaveLength(0);
      await expectNothingLeft(key);
    });
  }

  it('a failed CompleteMultipartUpload surfaces its error and aborts the multipart upload', async () => {
    const key = 'fail-complete.bin';
    s3.hook = (r) => (r.op === 'CompleteMultipartUpload' ? DENIED : undefined);
    const r = await settle(uploadEncrypted({ client: s3.client, bucket: s3.bucket, key, body: data, envelope, partSize: PART }));
    expect(r.value).toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    expect(r.inFlightAtSettle).toBe(0);
    expect(s3.ops('AbortMultipartUpload').map((e) => e.status)).toEqual([204]);
    expect(indexOf('AbortMultipartUpload')).toBeLessThan(indexOf('marker', 'settled'));
    await expectNothingLeft(key);
  });

  it('a failed CreateMultipartUpload surfaces its error and sends nothing else', async () => {
    s3.hook = (r) => (r.op === 'CreateMultipartUpload' ? DENIED : undefined);
    const r = await settle(uploadEncrypted({ client: s3.client, bucket: s3.bucket, key: 'fail-create.bin', body: body('stream'), envelope, partSize: PART }));
    expect(r.value).toMatchObject({ name: 'AccessDenied' });
    expect(r.inFlightAtSettle).toBe(0);
    expect(s3.ops('UploadPart')).toHaveLength(0);
    await expectNothingLeft('fail-create.bin');
  });
});

describe('uploadEncrypted: reserved metadata', () => {
  it('refuses every key starting with kms-envelope (any case) before any request, and accepts others', async () => {
    for (const k of ['kms-envelope', 'kms-envelope-content-type', 'KMS-Envelope-Plaintext-Length', 'kms-envelope-future', 'kms-envelopex']) {
      await expect(
        uploadEncrypted({ client: s3.client, bucket: s3.bucket, key: 'reserved.txt', body: 'x', envelope, metadata: { [k]: 'v' } }),
        k,
      ).rejects.toThrow(new TypeError(`options.metadata key ${JSON.stringify(k)} is reserved by kms-envelope (keys starting with "kms-envelope")`));
    }
    expect(s3.log).toEqual([]);
    await uploadEncrypted({ client: s3.client, bucket: s3.bucket, key: 'reserved.txt', body: 'x', envelope, metadata: { 'my-kms-envelope': 'v' } });
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: 'reserved.txt' }));
    expect(head.Metadata).toMatchObject({ 'my-kms-envelope': 'v', 'kms-envelope': '1' });
  });
});
