/**
 * Review findings (issue 10) through the decrypt entries outside the library: the
 * `kms-envelope decrypt` CLI (file and pipe) against the local KMS server, and the S3 download
 * helpers against a local S3 server.
 *
 * - Hole 1: a message rewritten under an unsigned suite by someone who could unwrap a signed
 *   message's data key must be refused before any KMS request (framework/default-cmm.md, "Decrypt
 *   Materials"); see forgery.test.ts for the library entries and the v1 suites.
 * - Hole 4: `--unsigned-only` (signature policy ALLOW_ENCRYPT_FORBID_DECRYPT) refuses signed
 *   messages right after the header, before any KMS request (client-apis/decrypt.md, "Behavior");
 *   see signature-policy.test.ts for the library.
 *
 * KMS requests are counted by a plain HTTP relay between the CLI and the local KMS server.
 * `npm test` builds dist/ first (the CLI runs as users run it).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateKeyCommand, DecryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
// @ts-expect-error s3rver ships no type declarations; the slice used here is typed below.
import S3rverImpl from 's3rver';
import { Envelope, RawAesKeyring, type Keyring } from '../../src/index.js';
import { downloadDecrypted, downloadDecryptedBuffer } from '../../src/s3/index.js';
import { startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { parseHeader, type MessageHeader } from '../../src/format/header.js';
import { SUITES } from '../../src/format/suites.js';
import { PUBLIC_KEY_CONTEXT_KEY } from '../../src/format/context.js';
import { writeMessage } from '../format/reference-writer.js';

const ROOT = resolve(__dirname, '../..');
const MAIN = join(ROOT, 'dist/cli/main.js');
const CREDENTIALS = { accessKeyId: 'AKIDFORGERYTEST00', secretAccessKey: 'forgery-test-secret' };
const PLAINTEXT = Buffer.from('pay 1,000,000 to mallory');
const FORGED_PLAINTEXT = Buffer.from('pay 9,000,000 to mallory');
const BUCKET = 'kms-envelope-forgery';

interface S3rver {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: import('node:http').Server;
}
const S3rver = S3rverImpl as new (options: Record<string, unknown>) => S3rver;

let dir: string;
let kms: LocalKmsServer;
let relay: Server;
let relayUrl: string;
/** KMS operations that went through the relay, e.g. `TrentService.Decrypt`. */
const kmsRequests: string[] = [];
let sdk: KMSClient;
let arn: string;

const header = (m: Buffer): MessageHeader => parseHeader(m, { maxEncryptedDataKeys: 10 })!;

/** Rewrites `original` under the unsigned suite 0x0478 with its EDKs and context, using `dataKey`. */
function forge(original: Buffer, dataKey: Uint8Array): Buffer {
  const h = header(original);
  return writeMessage({
    suite: SUITES.get(0x0478)!,
    dataKey: Buffer.from(dataKey),
    context: { ...h.context },
    edks: [...h.encryptedDataKeys],
    plaintext: FORGED_PLAINTEXT,
    frameLength: 4096,
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kms-envelope-forgery-'));
  kms = await startLocalKmsServer({ port: 0, dataDir: join(dir, 'kms') });
  // A relay that counts the KMS operations it forwards (headers as sent: the SigV4 signature covers Host).
  relay = createServer((req, res) => {
    kmsRequests.push(String(req.headers['x-amz-target']));
    const up = request({ host: '127.0.0.1', port: kms.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 500, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
  sdk = new KMSClient({ endpoint: kms.url, region: 'us-east-1', credentials: CREDENTIALS });
  arn = (await sdk.send(new CreateKeyCommand({ Description: 'forgery test' }))).KeyMetadata!.Arn!;
});

afterAll(async () => {
  sdk?.destroy();
  relay?.closeAllConnections();
  await new Promise((r) => relay?.close(r));
  await kms?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[], input?: Buffer): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { PATH: process.env.PATH ?? '', HOME: dir }, cwd: dir });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? Buffer.alloc(0));
  });
}

describe('decrypt entries outside the library: the CLI and the S3 helpers', () => {
  it('default-cmm.md Decrypt Materials: kms-envelope decrypt refuses an unsigned message carrying a signed message\'s public key (exit 6, ERR_MALFORMED_MESSAGE) without any KMS request, from a file and from a pipe', async () => {
    expect(existsSync(MAIN), 'dist/ is missing: run `npm run build` (npm test does)').toBe(true);
    const envelope = new Envelope({ kms: { keyId: arn, client: sdk }, suite: 0x0578, cache: false });
    const original = await envelope.encrypt(PLAINTEXT, { context: { purpose: 'payments' } });
    // The attacker is a legitimate reader: KMS unwraps the data key for them.
    const h = header(original);
    const { Plaintext } = await sdk.send(
      new DecryptCommand({ CiphertextBlob: h.encryptedDataKeys[0]!.ciphertext, EncryptionContext: { ...h.context }, KeyId: arn }),
    );
    const forged = forge(original, Plaintext!);
    expect(header(forged).context[PUBLIC_KEY_CONTEXT_KEY]).toBeDefined();

    // The genuine message decrypts through the relay (so the relay does see the CLI's KMS calls).
    kmsRequests.length = 0;
    const ok = await cli(['decrypt', '--endpoint', relayUrl], original);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout.equals(PLAINTEXT)).toBe(true);
    expect(kmsRequests).toContain('TrentService.Decrypt');

    kmsRequests.length = 0;
    const piped = await cli(['decrypt', '--endpoint', relayUrl, '-i', '-', '-o', '-'], forged);
    expect(piped.code).toBe(6);
    expect(piped.stderr).toMatch(/^kms-envelope: ERR_MALFORMED_MESSAGE: .*aws-crypto-public-key/);
    expect(piped.stdout.length).toBe(0);
    writeFileSync(join(dir, 'forged.enc'), forged);
    const file = await cli(['decrypt', '--endpoint', relayUrl, '-i', join(dir, 'forged.enc'), '-o', join(dir, 'forged.out')]);
    expect(file.code).toBe(6);
    expect(file.stderr).toMatch(/^kms-envelope: ERR_MALFORMED_MESSAGE: /);
    expect(readdirSync(dir).filter((f) => f.includes('forged.out'))).toEqual([]);
    expect(kmsRequests).toEqual([]);
  });

  describe('S3 helpers', () => {
    let s3server: S3rver;
    let client: S3Client;
    beforeAll(async () => {
      s3server = new S3rver({
        port: 0,
        address: '127.0.0.1',
        directory: join(dir, 's3'),
        silent: true,
        configureBuckets: [{ name: BUCKET, configs: [] }],
      });
      const addr = await s3server.run();
      client = new S3Client({
        endpoint: `http://127.0.0.1:${addr.port}`,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
    });
    afterAll(async () => {
      client?.destroy();
      s3server?.httpServer?.closeAllConnections();
      await s3server?.close().catch(() => undefined);
    });

    it('default-cmm.md Decrypt Materials: downloadDecrypted and downloadDecryptedBuffer refuse a forged unsigned object carrying a signed message\'s public key with ERR_MALFORMED_MESSAGE before any keyring call', async () => {
      const inner = new RawAesKeyring({ keyNamespace: 'forgery', keyName: 's3', key: randomBytes(32) });
      let decryptCalls = 0;
      const ring: Keyring = {
        onEncrypt: (i) => inner.onEncrypt(i),
        onDecrypt: (i) => (decryptCalls++, inner.onDecrypt(i)),
      };
      const writer = new Envelope({ keyring: inner, suite: 0x0578 });
      const original = await writer.encrypt(PLAINTEXT, { context: { purpose: 'payments' } });
      const h = header(original);
      const dataKey = await inner.onDecrypt({ suiteId: h.suite.id, context: h.context, encryptedDataKeys: h.encryptedDataKeys });
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'forged', Body: forge(original, dataKey!) }));

      const envelope = new Envelope({ keyring: ring });
      const stream = await downloadDecrypted({ client, bucket: BUCKET, key: 'forged', envelope });
      const chunks: Buffer[] = [];
      const error = await (async () => {
        for await (const c of stream as Readable) chunks.push(c as Buffer);
      })().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ERR_MALFORMED_MESSAGE' });
      expect(chunks).toEqual([]);
      await expect(downloadDecryptedBuffer({ client, bucket: BUCKET, key: 'forged', envelope })).rejects.toMatchObject({
        code: 'ERR_MALFORMED_MESSAGE',
      });
      expect(decryptCalls).toBe(0);
    });

    it('decrypt.md Behavior, signaturePolicy ALLOW_ENCRYPT_FORBID_DECRYPT: downloadDecrypted and downloadDecryptedBuffer refuse a signed object with ERR_SIGNATURE_POLICY before any keyring call; a bad value is a RangeError before GetObject', async () => {
      const inner = new RawAesKeyring({ keyNamespace: 'sigpolicy', keyName: 's3', key: randomBytes(32) });
      let decryptCalls = 0;
      const ring: Keyring = { onEncrypt: (i) => inner.onEncrypt(i), onDecrypt: (i) => (decryptCalls++, inner.onDecrypt(i)) };
      const envelope = new Envelope({ keyring: ring, suite: 0x0578 });
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'signed', Body: await envelope.encrypt(PLAINTEXT) }));
      const signaturePolicy = 'ALLOW_ENCRYPT_FORBID_DECRYPT' as const;
      const stream = await downloadDecrypted({ client, bucket: BUCKET, key: 'signed', envelope, signaturePolicy });
      const error = await (async () => {
        for await (const _ of stream as Readable) throw new Error('no plaintext expected');
      })().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ERR_SIGNATURE_POLICY' });
      await expect(downloadDecryptedBuffer({ client, bucket: BUCKET, key: 'signed', envelope, signaturePolicy })).rejects.toMatchObject({
        code: 'ERR_SIGNATURE_POLICY',
      });
      expect(decryptCalls).toBe(0);
      const bad = { client, bucket: BUCKET, key: 'signed', envelope, signaturePolicy: 'FORBID' as never };
      await expect(downloadDecrypted(bad)).rejects.toThrow(RangeError);
      await expect(downloadDecryptedBuffer(bad)).rejects.toThrow(RangeError);
      // The default reads it.
      expect((await downloadDecryptedBuffer({ client, bucket: BUCKET, key: 'signed', envelope })).plaintext.equals(PLAINTEXT)).toBe(true);
    });
  });
});

describe('decrypt entries outside the library: the CLI signature policy', () => {
  it('decrypt.md Behavior: kms-envelope decrypt --unsigned-only refuses a signed message with exit 12 (ERR_SIGNATURE_POLICY) without any KMS request, from a pipe and a file, and decrypts an unsigned one', async () => {
    expect(existsSync(MAIN), 'dist/ is missing: run `npm run build` (npm test does)').toBe(true);
    const signed = await new Envelope({ kms: { keyId: arn, client: sdk }, suite: 0x0578 }).encrypt(PLAINTEXT);
    const unsigned = await new Envelope({ kms: { keyId: arn, client: sdk } }).encrypt(PLAINTEXT);
    kmsRequests.length = 0;
    const piped = await cli(['decrypt', '--endpoint', relayUrl, '--unsigned-only'], signed);
    expect(piped.code).toBe(12);
    expect(piped.stderr).toMatch(/^kms-envelope: ERR_SIGNATURE_POLICY: /);
    expect(piped.stdout.length).toBe(0);
    writeFileSync(join(dir, 'signed.enc'), signed);
    const file = await cli(['decrypt', '--endpoint', relayUrl, '--unsigned-only', '-i', join(dir, 'signed.enc'), '-o', join(dir, 'signed.out')]);
    expect(file.code).toBe(12);
    expect(readdirSync(dir).filter((f) => f.includes('signed.out'))).toEqual([]);
    expect(kmsRequests).toEqual([]);

    const ok = await cli(['decrypt', '--endpoint', relayUrl, '--unsigned-only'], unsigned);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout.equals(PLAINTEXT)).toBe(true);
    // Without the flag the signed message decrypts.
    const signedOk = await cli(['decrypt', '--endpoint', relayUrl], signed);
    expect(signedOk.code).toBe(0);
    expect(signedOk.stdout.equals(PLAINTEXT)).toBe(true);
  });
});
