/**
 * S3 helpers against a local S3 server (s3rver on 127.0.0.1, port 0, temp directory).
 * The envelope uses a raw AES keyring: these tests are about S3 plumbing and stream integrity,
 * KMS is covered elsewhere.
 */
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Readable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
// @ts-expect-error s3rver ships no type declarations; the slice used here is typed below.
import S3rverImpl from 's3rver';
import { Envelope, RawAesKeyring } from '../../src/index.js';
import { downloadDecrypted, downloadDecryptedBuffer, uploadEncrypted } from '../../src/s3/index.js';

const MiB = 1024 * 1024;
const BUCKET = 'kms-envelope-test';

interface S3rver {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: import('node:http').Server;
}
const S3rver = S3rverImpl as new (options: Record<string, unknown>) => S3rver;

let server: S3rver;
let dir: string;
let client: S3Client;
let envelope: Envelope;
const commands: string[] = [];
const count = (name: string) => commands.filter((c) => c === name).length;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kms-envelope-s3-'));
  server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    directory: dir,
    silent: true,
    configureBuckets: [{ name: BUCKET, configs: [] }],
  });
  const addr = await server.run();
  client = new S3Client({
    endpoint: `http://127.0.0.1:${addr.port}`,
    region: 'us-east-1',
    forcePathStyle: true,
    // s3rver's default credentials; it verifies SigV4 signatures.
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  // Record every command the client sends, to see multipart uploads happen (and get aborted).
  client.middlewareStack.add(
    (next, context) => (args) => {
      commands.push(context.commandName as string);
      return next(args);
    },
    { step: 'initialize', name: 'recordCommands' },
  );
  envelope = new Envelope({
    keyring: new RawAesKeyring({ keyNamespace: 'test', keyName: 's3', key: randomBytes(32) }),
  });
});

afterAll(async () => {
  client?.destroy();
  server?.httpServer?.closeAllConnections();
  await server?.close().catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** `total` bytes of random data in 1 MiB chunks, as a stream of unknown length; `hash` sees the same bytes. */
function randomStream(total: number, hash: ReturnType<typeof createHash>): Readable {
  let left = total;
  return new Readable({
    read() {
      if (left === 0) return void this.push(null);
      const n = Math.min(MiB, left);
      left -= n;
      const chunk = randomBytes(n);
      hash.update(chunk);
      this.push(chunk);
    },
  });
}

async function sha256Of(stream: Readable): Promise<{ hex: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream) {
    h.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { hex: h.digest('hex'), bytes };
}

async function rawObject(key: string): Promise<Buffer> {
  const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

async function putRaw(key: string, body: Buffer, metadata?: Record<string, string>): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, Metadata: metadata }));
}

/** Reads a stream to the end; resolves with what was emitted, or rejects with the stream's error. */
async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('uploadEncrypted / downloadDecrypted', () => {
  it('round-trips a 50 MiB stream of unknown length through a multipart upload', async () => {
    const hashIn = createHash('sha256');
    const size = 50 * MiB;
    commands.length = 0;
    const result = await uploadEncrypted({
      client,
      bucket: BUCKET,
      key: 'big/object.bin',
      body: randomStream(size, hashIn),
      envelope,
      context: { purpose: 's3-test' },
      contentType: 'application/x-test',
      partSize: 5 * MiB,
    });
    expect(result.plaintextBytes).toBe(size);
    // 65,536-byte frames: 800 frames x 28 bytes of IV/tag/sequence, plus header and end frame.
    expect(result.bytes).toBeGreaterThan(size);
    expect(result.bytes).toBeLessThan(size + 64 * 1024);
    expect(typeof result.etag).toBe('string');
    // A multipart upload of 5 MiB parts: 11 parts for 50 MiB of plaintext plus framing.
    expect(count('CreateMultipartUploadCommand')).toBe(1);
    expect(count('UploadPartCommand')).toBe(Math.ceil(result.bytes / (5 * MiB)));
    expect(count('CompleteMultipartUploadCommand')).toBe(1);
    expect(count('PutObjectCommand')).toBe(0);

    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'big/object.bin' }));
    expect(head.ContentLength).toBe(result.bytes);
    expect(head.ContentType).toBe('application/octet-stream');
    expect(head.Metadata?.['kms-envelope']).toBe('1');
    expect(head.Metadata?.['kms-envelope-content-type']).toBe('application/x-test');
    // Unknown length at upload time: not recorded.
    expect(head.Metadata?.['kms-envelope-plaintext-length']).toBeUndefined();

    const plain = await downloadDecrypted({
      client,
      bucket: BUCKET,
      key: 'big/object.bin',
      envelope,
      context: { purpose: 's3-test' },
    });
    expect(plain.object.marked).toBe(true);
    expect(plain.object.contentType).toBe('application/x-test');
    expect(plain.object.encryptedLength).toBe(result.bytes);
    const out = await sha256Of(plain);
    expect(out.bytes).toBe(size);
    expect(out.hex).toBe(hashIn.digest('hex'));
  }, 120_000);

  it('round-trips a small string with its content type and length in metadata', async () => {
    const text = 'hello, S3 — ünïcödé';
    const result = await uploadEncrypted({
      client,
      bucket: BUCKET,
      key: 'small.txt',
      body: text,
      envelope,
      context: { tenant: 'a' },
      contentType: 'text/plain; charset=utf-8',
      metadata: { owner: 'tests' },
    });
    expect(result.plaintextBytes).toBe(Buffer.byteLength(text));
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'small.txt' }));
    expect(head.ContentType).toBe('application/octet-stream');
    expect(head.ContentLength).toBe(result.bytes);
    expect(head.Metadata).toMatchObject({
      'kms-envelope': '1',
      'kms-envelope-content-type': 'text/plain; charset=utf-8',
      'kms-envelope-plaintext-length': String(Buffer.byteLength(text)),
      owner: 'tests',
    });

    // The stored bytes are an ordinary message: the buffer API decrypts them too.
    const stored = await rawObject('small.txt');
    expect(stored.subarray(0, 3)).toEqual(Buffer.from([0x02, 0x04, 0x78]));
    expect((await envelope.decrypt(stored)).plaintext.toString('utf8')).toBe(text);

    const buf = await downloadDecryptedBuffer({ client, bucket: BUCKET, key: 'small.txt', envelope, context: { tenant: 'a' } });
    expect(buf.plaintext.toString('utf8')).toBe(text);
    expect(buf.context).toEqual({ tenant: 'a' });
    expect(buf.object.plaintextLength).toBe(Buffer.byteLength(text));

    const stream = await downloadDecrypted({ client, bucket: BUCKET, key: 'small.txt', envelope });
    expect((await drain(stream)).toString('utf8')).toBe(text);
  });

  it('uploads a Readable of known length and an empty body', async () => {
    const data = randomBytes(300_000);
    await uploadEncrypted({
      client,
      bucket: BUCKET,
      key: 'known.bin',
      body: Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]),
      plaintextLength: data.length,
      envelope,
    });
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'known.bin' }));
    expect(head.Metadata?.['kms-envelope-plaintext-length']).toBe('300000');
    expect(await drain(await downloadDecrypted({ client, bucket: BUCKET, key: 'known.bin', envelope }))).toEqual(data);

    await uploadEncrypted({ client, bucket: BUCKET, key: 'empty.bin', body: Buffer.alloc(0), envelope });
    expect((await drain(await downloadDecrypted({ client, bucket: BUCKET, key: 'empty.bin', envelope }))).length).toBe(0);
  });

  it('errors (never a short plaintext) when the stored object is tampered with, cut or extended', async () => {
    const data = randomBytes(400_000); // several 64 KiB frames
    await uploadEncrypted({ client, bucket: BUCKET, key: 'victim.bin', body: data, envelope, context: { k: 'v' } });
    const good = await rawObject('victim.bin');

    const flipped = Buffer.from(good);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
    await putRaw('tampered.bin', flipped, { 'kms-envelope': '1' });
    const s1 = await downloadDecrypted({ client, bucket: BUCKET, key: 'tampered.bin', envelope });
    await expect(drain(s1)).rejects.toMatchObject({ code: 'ERR_DECRYPTION_FAILED' });

    for (const cut of [good.length - 1, good.length - 40, Math.floor(good.length / 3), 10]) {
      await putRaw('cut.bin', good.subarray(0, cut), { 'kms-envelope': '1' });
      const s = await downloadDecrypted({ client, bucket: BUCKET, key: 'cut.bin', envelope });
      const err = await drain(s).then(
        (buf) => new Error(`a message cut at ${cut} of ${good.length} bytes gave ${buf.length} bytes of plaintext`),
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: expect.stringMatching(/^ERR_(MALFORMED_MESSAGE|STREAM)$/) });
    }

    await putRaw('extended.bin', Buffer.concat([good, Buffer.from([0])]), { 'kms-envelope': '1' });
    const s3 = await downloadDecrypted({ client, bucket: BUCKET, key: 'extended.bin', envelope });
    await expect(drain(s3)).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_/) });

    // A wrong required context fails before any plaintext.
    const s4 = await downloadDecrypted({ client, bucket: BUCKET, key: 'victim.bin', envelope, context: { k: 'other' } });
    await expect(drain(s4)).rejects.toMatchObject({ code: 'ERR_CONTEXT_MISMATCH' });
    await expect(
      downloadDecryptedBuffer({ client, bucket: BUCKET, key: 'tampered.bin', envelope }),
    ).rejects.toMatchObject({ code: 'ERR_DECRYPTION_FAILED' });
  });

  it('checks the metadata marker only when asked to', async () => {
    const message = await envelope.encrypt('unlabelled');
    await putRaw('unlabelled.bin', message);
    const s = await downloadDecrypted({ client, bucket: BUCKET, key: 'unlabelled.bin', envelope });
    expect(s.object.marked).toBe(false);
    expect((await drain(s)).toString()).toBe('unlabelled');
    await expect(
      downloadDecrypted({ client, bucket: BUCKET, key: 'unlabelled.bin', envelope, requireMarker: true }),
    ).rejects.toMatchObject({ code: 'ERR_MALFORMED_MESSAGE' });
  });

  it('aborts the upload and leaves no object when the body fails midway', async () => {
    let sent = 0;
    commands.length = 0;
    const failing = new Readable({
      read() {
        if (sent >= 12 * MiB) return void this.destroy(new Error('source went away'));
        sent += MiB;
        this.push(randomBytes(MiB));
      },
    });
    await expect(
      uploadEncrypted({ client, bucket: BUCKET, key: 'never.bin', body: failing, envelope, partSize: 5 * MiB }),
    ).rejects.toThrow('source went away');
    expect(count('CreateMultipartUploadCommand')).toBe(1);
    expect(count('AbortMultipartUploadCommand')).toBe(1);
    expect(count('CompleteMultipartUploadCommand')).toBe(0);
    await expect(client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'never.bin' }))).rejects.toMatchObject({
      name: 'NotFound',
    });
  });

  it('stops on an AbortSignal and leaves no object', async () => {
    const controller = new AbortController();
    commands.length = 0;
    let sent = 0;
    // Endless body; once a first part has gone out (so a multipart upload exists), abort.
    const endless = new Readable({
      read() {
        if (sent >= 6 * MiB && count('UploadPartCommand') > 0 && !controller.signal.aborted) controller.abort();
        sent += MiB;
        this.push(randomBytes(MiB));
      },
    });
    await expect(
      uploadEncrypted({ client, bucket: BUCKET, key: 'aborted.bin', body: endless, envelope, partSize: 5 * MiB, signal: controller.signal }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect(endless.destroyed).toBe(true);
    // The multipart upload was aborted on S3 before the call returned.
    expect(count('CreateMultipartUploadCommand')).toBe(1);
    expect(count('AbortMultipartUploadCommand')).toBe(1);
    await expect(client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'aborted.bin' }))).rejects.toMatchObject({
      name: 'NotFound',
    });
  });

  it('validates options with errors naming the option', async () => {
    const base = { client, bucket: BUCKET, key: 'x', body: 'x', envelope };
    await expect(uploadEncrypted({ ...base, partSize: 1024 })).rejects.toThrow(/options\.partSize .*5 MiB/);
    await expect(uploadEncrypted({ ...base, bucket: '' })).rejects.toThrow(/options\.bucket/);
    await expect(uploadEncrypted({ ...base, body: 42 as never })).rejects.toThrow(/options\.body/);
    await expect(uploadEncrypted({ ...base, metadata: { 'kms-envelope': '2' } })).rejects.toThrow(/reserved/);
    const { body: _body, ...downloadBase } = base; // `body` is an upload option: downloadDecrypted refuses it by name
    await expect(downloadDecrypted({ ...downloadBase, client: {} as never })).rejects.toThrow(/options\.client/);
    await expect(downloadDecrypted({ ...base, client: {} as never } as never)).rejects.toThrow(/unknown option "body"/);
  });
});

describe('kms-envelope/s3 module', () => {
  it('loads without the optional peers and names them when they are needed', () => {
    const dist = join(__dirname, '../../dist');
    if (!existsSync(join(dist, 's3/index.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
    // A resolve hook that makes both peers unresolvable, as in an install without them.
    const hook = `data:text/javascript,${encodeURIComponent(
      `export async function resolve(s, c, next) {
         if (s.startsWith('@aws-sdk/client-s3') || s.startsWith('@aws-sdk/lib-storage')) {
           throw Object.assign(new Error('Cannot find package ' + s), { code: 'ERR_MODULE_NOT_FOUND' });
         }
         return next(s, c);
       }`,
    )}`;
    const script = `
      import { register } from 'node:module';
      register(${JSON.stringify(hook)});
      const s3 = await import(${JSON.stringify(pathToFileURL(join(dist, 's3/index.js')).href)});
      const { Envelope, RawAesKeyring } = await import(${JSON.stringify(pathToFileURL(join(dist, 'index.js')).href)});
      const envelope = new Envelope({ keyring: new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', key: Buffer.alloc(32, 1) }) });
      const client = { send: async () => ({}) };
      const up = await s3.uploadEncrypted({ client, bucket: 'b', key: 'k', body: 'x', envelope }).then(() => 'resolved', (e) => e.message);
      const down = await s3.downloadDecrypted({ client, bucket: 'b', key: 'k', envelope }).then(() => 'resolved', (e) => e.message);
      console.log(JSON.stringify({ exports: Object.keys(s3).sort(), up, down }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { exports: string[]; up: string; down: string };
    expect(out.exports).toEqual(expect.arrayContaining(['uploadEncrypted', 'downloadDecrypted', 'downloadDecryptedBuffer']));
    expect(out.up).toMatch(/needs the optional peer dependency @aws-sdk\/lib-storage: npm install @aws-sdk\/client-s3 @aws-sdk\/lib-storage/);
    expect(out.down).toMatch(/needs the optional peer dependency @aws-sdk\/client-s3/);
  });

  it('does not import the optional peers statically', () => {
    const srcDir = join(__dirname, '../../src/s3');
    for (const f of readdirSync(srcDir).filter((n) => n.endsWith('.ts'))) {
      const text = readFileSync(join(srcDir, f), 'utf8');
      // Only `import type` (erased at compile time) and dynamic import() may name them.
      const staticImports = text.match(/^import\s+(?!type\b)[^;]*from\s+'@aws-sdk\/[^']+'/gm) ?? [];
      expect(staticImports, f).toEqual([]);
    }
  });
});
