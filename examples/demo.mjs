#!/usr/bin/env node
/**
 * `npm run demo`: the main job of kms-envelope, offline, on the embedded local KMS.
 *
 * 1. opens the local KMS in .demo/kms (in process) and creates or reuses `alias/demo`, and looks up
 *    the key ARN it names (decrypting takes key ARNs, as the AWS Encryption SDK requires);
 * 2. writes a sample file, encrypts it to an ESDK message and decrypts it back (temp + rename);
 * 3. encrypts and decrypts a few small messages to show the data-key cache at work;
 * 4. if @aws-crypto/client-node (the AWS Encryption SDK) is installed, serves the same local KMS
 *    over HTTP and lets the ESDK decrypt our file, to show the output is an ordinary ESDK message.
 *
 * Set KMS_ENVELOPE_DEMO_DIR to use another directory than .demo/ at the repository root.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// The AWS SDK (loaded for the ESDK step) warns about its future Node support policy on Node < 22;
// that note is for maintainers and would only clutter the demo's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const here = dirname(fileURLToPath(import.meta.url));
const demoDir = resolve(process.env.KMS_ENVELOPE_DEMO_DIR ?? join(here, '..', '.demo'));
const show = (p) => {
  const r = relative(process.cwd(), p);
  return r === '' ? '.' : r.startsWith('..') ? p : r;
};

let lib;
let localKms;
try {
  // Self-reference through package.json "exports": the same entry points users import.
  lib = await import('kms-envelope');
  localKms = await import('kms-envelope/local-kms');
} catch (err) {
  console.error(`demo: cannot load kms-envelope (${err.message}); run \`npm install\` (it builds dist/) or \`npm run build\``);
  process.exit(1);
}
const { Envelope } = lib;
const { LocalKms, startLocalKmsServer } = localKms;

const SUITES = {
  0x0478: 'AES-256-GCM, HKDF-SHA512, key commitment',
  0x0578: 'AES-256-GCM, HKDF-SHA512, key commitment, ECDSA P-384 signature',
};
const hex4 = (n) => `0x${n.toString(16).padStart(4, '0')}`;
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');
const bytes = (n) => `${n.toLocaleString('en-US')} bytes`;

mkdirSync(demoDir, { recursive: true });
const kmsDir = join(demoDir, 'kms');
const kms = new LocalKms({ dataDir: kmsDir });

// --- 1. the KMS key: reuse alias/demo when it exists ---------------------------------------
let keyArn;
let created = false;
try {
  keyArn = (await kms.service.call('DescribeKey', { KeyId: 'alias/demo' })).KeyMetadata.Arn;
} catch (err) {
  if (err.type !== 'NotFoundException' && err.name !== 'NotFoundException') throw err;
  const key = await kms.createKey({ Description: 'kms-envelope demo key' });
  await kms.createAlias('alias/demo', key.keyId);
  keyArn = key.arn;
  created = true;
}

// Count requests per KMS operation on their way to the local KMS.
const counts = {};
const inner = kms.client();
const counted = (op, fn) => (input) => {
  counts[op] = (counts[op] ?? 0) + 1;
  return fn(input);
};
const client = {
  generateDataKey: counted('GenerateDataKey', (i) => inner.generateDataKey(i)),
  encrypt: counted('Encrypt', (i) => inner.encrypt(i)),
  decrypt: counted('Decrypt', (i) => inner.decrypt(i)),
};

// The key ARN, not the alias: a message names the key ARN that wrapped its data key, and a KMS
// keyring decrypts only EDKs naming a configured key ARN (an alias could be re-pointed later).
const envelope = new Envelope({ kms: { keyId: keyArn, client } });
const context = { app: 'kms-envelope-demo', purpose: 'walkthrough' };

// --- 2. a file round trip -------------------------------------------------------------------
const samplePath = join(demoDir, 'sample.txt');
const encPath = join(demoDir, 'sample.txt.enc');
const outPath = join(demoDir, 'sample.decrypted.txt');
const lines = [];
for (let i = 0; i < 4000; i++) lines.push(`line ${i}: ${randomBytes(24).toString('base64')}`);
const sample = Buffer.from(lines.join('\n') + '\n');
writeFileSync(samplePath, sample);

await envelope.encryptFile(samplePath, encPath, { context });
const encrypted = readFileSync(encPath);
await envelope.decryptFile(encPath, outPath, { context });
const decrypted = readFileSync(outPath);
if (!decrypted.equals(sample)) {
  console.error('demo: decrypted file differs from the sample');
  process.exit(1);
}
const suiteId = encrypted.readUInt16BE(1); // v2 header: version (1 byte), then the suite id

// --- 3. small messages: the data-key cache --------------------------------------------------
const messages = [];
for (const text of ['first message', 'second message', 'third message']) messages.push(await envelope.encrypt(text, { context }));
for (const m of messages) await envelope.decrypt(m, { context });
const stats = envelope.stats();
kms.close(); // releases the data directory for the server below

console.log(`kms-envelope demo: embedded local KMS in ${show(kmsDir)}`);
console.log(`  KMS key     alias/demo -> ${keyArn} (${created ? 'created' : 'reused'})`);
console.log(`  sample      ${show(samplePath)}: ${bytes(sample.length)}, sha256 ${sha256(sample).slice(0, 16)}...`);
console.log(`  encrypted   ${show(encPath)}: ${bytes(encrypted.length)}, message format v${encrypted[0]}, suite ${hex4(suiteId)} (${SUITES[suiteId] ?? 'unknown'}), ${envelope.frameLength}-byte frames`);
console.log(`  decrypted   ${show(outPath)}: ${bytes(decrypted.length)}, identical to the sample`);
console.log(`  messages    3 short messages encrypted and decrypted (${messages.map((m) => m.length).join(', ')} bytes)`);
console.log(
  `  KMS calls   ${Object.entries(counts).map(([op, n]) => `${op} x${n}`).join(', ')} ` +
    `for 4 encryptions and 4 decryptions (envelope.stats(): ${stats.kmsCalls} KMS calls)`,
);
console.log(
  `  cache       ${stats.hits} hits, ${stats.misses} misses (encrypt ${stats.encryptHits}/${stats.encryptMisses}, decrypt ${stats.decryptHits}/${stats.decryptMisses} hits/misses), ${stats.entries} entries`,
);

// --- 4. the AWS Encryption SDK reads our output --------------------------------------------
let esdk;
try {
  esdk = await import('@aws-crypto/client-node');
} catch {
  esdk = undefined;
}
if (esdk !== undefined) {
  const { KMS } = await import('@aws-sdk/client-kms');
  const server = await startLocalKmsServer({ port: 0, dataDir: kmsDir });
  const sdk = new KMS({
    endpoint: server.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDDEMOLOCALKMS', secretAccessKey: 'demo' },
  });
  try {
    const { decrypt } = esdk.buildClient(esdk.CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
    const keyring = new esdk.KmsKeyringNode({ keyIds: [keyArn], clientProvider: () => sdk });
    const { plaintext, messageHeader } = await decrypt(keyring, encrypted);
    const same = Buffer.from(plaintext).equals(sample);
    const ctxOk = Object.entries(context).every(([k, v]) => messageHeader.encryptionContext[k] === v);
    console.log(
      `  ESDK        @aws-crypto/client-node decrypted ${show(encPath)} via the local KMS at ${server.url}: ` +
        `${same && ctxOk ? 'same plaintext and context' : 'MISMATCH'}`,
    );
    if (!same || !ctxOk) process.exitCode = 1;
  } finally {
    sdk.destroy();
    await server.close();
  }
} else {
  console.log('  ESDK        (@aws-crypto/client-node not installed: interop check skipped)');
}
console.log(`Run it again: it reuses alias/demo. Files are in ${show(demoDir)}/.`);
