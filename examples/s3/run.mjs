#!/usr/bin/env node
/**
 * Encrypt while uploading to S3, decrypt while downloading: a generated stream of unknown length
 * goes through `uploadEncrypted` (multipart, constant memory) and comes back through
 * `downloadDecrypted`, compared by SHA-256.
 *
 * Runs offline: a local S3 server (s3rver, a devDependency) on a free port in a temporary
 * directory, and the embedded local KMS. Point it elsewhere with S3_ENDPOINT (+ S3_BUCKET, AWS
 * credentials from the environment) and KMS_ENDPOINT + KMS_KEY_ID.
 *
 *   node examples/s3/run.mjs [size in MiB, default 24]
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Envelope } from 'kms-envelope';
import { downloadDecrypted, uploadEncrypted } from 'kms-envelope/s3';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const MiB = 1024 * 1024;
const sizeMiB = Number(process.argv[2] ?? 24);
if (!Number.isInteger(sizeMiB) || sizeMiB < 0 || sizeMiB > 4096) {
  console.error('usage: node examples/s3/run.mjs [size in MiB, 0..4096]');
  process.exit(2);
}
const work = mkdtempSync(join(tmpdir(), 'kms-envelope-s3-example-'));
const cleanups = [() => rmSync(work, { recursive: true, force: true })];

try {
  // --- S3: a local server unless S3_ENDPOINT is given -----------------------------------------
  let endpoint = process.env.S3_ENDPOINT;
  const bucket = process.env.S3_BUCKET ?? 'kms-envelope-example';
  let credentials;
  if (endpoint === undefined) {
    const { default: S3rver } = await import('s3rver');
    const s3rver = new S3rver({
      port: 0,
      address: '127.0.0.1',
      directory: join(work, 's3'),
      silent: true,
      configureBuckets: [{ name: bucket, configs: [] }],
    });
    const { port } = await s3rver.run();
    endpoint = `http://127.0.0.1:${port}`;
    credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }; // s3rver's fixed keys
    cleanups.unshift(async () => {
      s3rver.httpServer?.closeAllConnections();
      await s3rver.close();
    });
  }
  const s3 = new S3Client({
    endpoint,
    region: process.env.AWS_REGION ?? 'us-east-1',
    forcePathStyle: true,
    ...(credentials ? { credentials } : {}),
    // Local S3 servers do not implement the newer default checksums.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  cleanups.unshift(() => s3.destroy());

  // --- KMS: embedded local KMS unless KMS_ENDPOINT is given -----------------------------------
  let kmsOptions;
  if (process.env.KMS_ENDPOINT) {
    // KMS_KEY_ID may be an alias: look up the key ARN it names now and use that, because the
    // download decrypts only with key ARNs (a message names the key ARN that wrapped it).
    const { DescribeKeyCommand, KMSClient } = await import('@aws-sdk/client-kms');
    const client = new KMSClient({ endpoint: process.env.KMS_ENDPOINT });
    cleanups.unshift(() => client.destroy());
    const { KeyMetadata } = await client.send(new DescribeKeyCommand({ KeyId: process.env.KMS_KEY_ID ?? 'alias/s3-example' }));
    kmsOptions = { keyId: KeyMetadata.Arn, client };
  } else {
    const { LocalKms } = await import('kms-envelope/local-kms');
    const kms = new LocalKms({ dataDir: join(work, 'kms') });
    const key = await kms.createKey({ Description: 'kms-envelope S3 example' });
    kmsOptions = { keyId: key.arn, client: kms.client() };
    cleanups.push(() => kms.close());
  }
  const envelope = new Envelope({ kms: kmsOptions });

  // --- upload a stream of unknown length -----------------------------------------------------
  const key = `reports/${new Date().toISOString().slice(0, 10)}/data.bin`;
  const context = { bucket, key };
  const hashIn = createHash('sha256');
  let left = sizeMiB * MiB;
  const body = new Readable({
    read() {
      if (left === 0) return void this.push(null);
      const chunk = randomBytes(Math.min(MiB, left));
      left -= chunk.length;
      hashIn.update(chunk);
      this.push(chunk);
    },
  });
  let t = Date.now();
  const up = await uploadEncrypted({ client: s3, bucket, key, body, envelope, context, contentType: 'application/x-example', partSize: 8 * MiB });
  console.log(`uploaded   s3://${bucket}/${key}: ${up.plaintextBytes} plaintext bytes as ${up.bytes} encrypted bytes in ${Date.now() - t} ms (ETag ${up.etag})`);

  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  console.log(`metadata   Content-Type ${head.ContentType}; ${Object.entries(head.Metadata ?? {}).map(([k, v]) => `x-amz-meta-${k}: ${v}`).join('; ')}`);

  // --- download and decrypt as a stream ------------------------------------------------------
  t = Date.now();
  const plain = await downloadDecrypted({ client: s3, bucket, key, envelope, context });
  const hashOut = createHash('sha256');
  let n = 0;
  for await (const chunk of plain) {
    hashOut.update(chunk);
    n += chunk.length;
  }
  const same = hashOut.digest('hex') === hashIn.digest('hex');
  console.log(`downloaded ${n} plaintext bytes in ${Date.now() - t} ms; SHA-256 ${same ? 'matches' : 'DIFFERS'}`);
  console.log(`KMS calls  ${envelope.stats().kmsCalls} (GenerateDataKey for the upload, Decrypt for the download)`);
  if (!same) process.exitCode = 1;
} finally {
  for (const c of cleanups) await c();
}
