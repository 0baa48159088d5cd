#!/usr/bin/env node
/**
 * An HTTP service that encrypts and decrypts request bodies with one shared Envelope.
 *
 *   POST /encrypt   body: plaintext  -> ESDK message     (header x-tenant: <name>)
 *   POST /decrypt   body: message    -> plaintext        (header x-tenant must match the message)
 *   GET  /stats     cache and KMS counters of the shared Envelope
 *
 * Bodies stream through envelope.encryptStream/decryptStream: constant memory whatever the size.
 * The tenant goes into the encryption context, so a message encrypted for tenant A does not
 * decrypt in a request for tenant B (403 ERR_CONTEXT_MISMATCH) even though one KMS key serves all.
 * With a Content-Length the plaintext length is known up front, so encryption can reuse a cached
 * data key (one GenerateDataKey per tenant per cache period instead of one per request).
 *
 * KMS: KMS_ENDPOINT (e.g. http://127.0.0.1:4599, `kms-envelope local-kms`) with KMS_KEY_ID
 * (default alias/service), or, without KMS_ENDPOINT, an embedded local KMS in SERVICE_DATA_DIR
 * (default .local-kms/service at the repository root) where alias/service is created on first run.
 * KMS_KEY_ID may be an alias: the service looks up the key ARN it names once, at startup, and
 * encrypts and decrypts with that key ARN (a KMS keyring decrypts only EDKs naming a configured key
 * ARN), so re-pointing the alias later changes nothing until a restart.
 * PORT (default 8080; 0 = any free port). Listens on 127.0.0.1 only.
 */
import { createServer } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Envelope } from 'kms-envelope';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const here = dirname(fileURLToPath(import.meta.url));
const keyId = process.env.KMS_KEY_ID ?? 'alias/service';
let closeKms = () => {};

async function kmsOptions() {
  if (process.env.KMS_ENDPOINT) {
    const { KMSClient } = await import('@aws-sdk/client-kms');
    const client = new KMSClient({
      endpoint: process.env.KMS_ENDPOINT,
      region: process.env.AWS_REGION ?? 'us-east-1',
      // The local KMS accepts any access key; real endpoints get the environment's credentials.
      ...(process.env.AWS_ACCESS_KEY_ID ? {} : { credentials: { accessKeyId: 'AKIDLOCALSERVICE', secretAccessKey: 'local' } }),
    });
    closeKms = () => client.destroy();
    const { DescribeKeyCommand } = await import('@aws-sdk/client-kms');
    const { KeyMetadata } = await client.send(new DescribeKeyCommand({ KeyId: keyId }));
    return { keyId: KeyMetadata.Arn, client };
  }
  const { LocalKms } = await import('kms-envelope/local-kms');
  const kms = new LocalKms({ dataDir: resolve(process.env.SERVICE_DATA_DIR ?? join(here, '..', '..', '.local-kms', 'service')) });
  let keyArn;
  try {
    keyArn = (await kms.service.call('DescribeKey', { KeyId: keyId })).KeyMetadata.Arn;
  } catch (err) {
    if (err.type !== 'NotFoundException' || !keyId.startsWith('alias/')) throw err;
    const key = await kms.createKey({ Description: 'kms-envelope service example' });
    await kms.createAlias(keyId, key.keyId);
    keyArn = key.arn;
  }
  closeKms = () => kms.close();
  return { keyId: keyArn, client: kms.client() };
}

const envelope = new Envelope({ kms: await kmsOptions(), cache: { maxEntries: 1000, maxAgeMs: 60_000 } });

/** Error codes to HTTP statuses; the body carries only the code, never content. */
const STATUS = {
  ERR_CONTEXT_MISMATCH: 403,
  ERR_NO_DECRYPTABLE_KEY: 403,
  ERR_DECRYPTION_FAILED: 400,
  ERR_MALFORMED_MESSAGE: 400,
  ERR_STREAM: 400,
  ERR_COMMITMENT_POLICY: 400,
  ERR_COMMITMENT_MISMATCH: 400,
  ERR_LIMIT_EXCEEDED: 413,
  ERR_KMS: 502,
};

function fail(res, status, code) {
  if (res.headersSent) {
    // Plaintext or ciphertext was already streaming: cut the connection so the client sees an
    // aborted response rather than a body that merely looks short.
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: code }));
}

function tenantOf(req) {
  const t = req.headers['x-tenant'];
  return typeof t === 'string' && /^[\w.-]{1,64}$/.test(t) ? t : undefined;
}

async function handle(req, res) {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method === 'GET' && url.pathname === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(envelope.stats()));
    return;
  }
  if (req.method !== 'POST' || (url.pathname !== '/encrypt' && url.pathname !== '/decrypt')) {
    return fail(res, 404, 'NOT_FOUND');
  }
  const tenant = tenantOf(req);
  if (tenant === undefined) return fail(res, 400, 'MISSING_TENANT');
  const context = { tenant };
  let transform;
  if (url.pathname === '/encrypt') {
    const length = req.headers['content-length'];
    transform = envelope.encryptStream({ context, plaintextLength: length !== undefined ? Number(length) : undefined });
  } else {
    transform = envelope.decryptStream({ context });
  }
  // Not pipeline(req, transform, res): on an error pipeline would destroy `res` too, and an early
  // failure (wrong tenant, not a message) deserves a clean status. Headers go out with the first
  // output byte; after that, an error can only cut the connection (see fail()).
  req.on('error', (err) => transform.destroy(err));
  req.pipe(transform);
  try {
    for await (const chunk of transform) {
      if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/octet-stream' });
      if (!res.write(chunk)) await drained(res);
      if (res.destroyed) throw Object.assign(new Error('client went away'), { code: 'CLIENT_GONE' });
    }
    if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end();
  } catch (err) {
    req.unpipe(transform);
    req.resume(); // discard the rest of the body
    const code = typeof err?.code === 'string' && err.code.startsWith('ERR_') ? err.code : 'ERR_INTERNAL';
    fail(res, STATUS[code] ?? 500, code);
  }
}

function drained(res) {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

const server = createServer((req, res) => {
  handle(req, res).catch(() => fail(res, 500, 'ERR_INTERNAL'));
});
server.listen(Number(process.env.PORT ?? 8080), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});

const stop = () => {
  server.close(() => {
    closeKms();
    process.exit(0);
  });
  server.closeAllConnections();
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
