#!/usr/bin/env node
/**
 * `node examples/hierarchy/tenants.mjs`: the hierarchical keyring for a multi-tenant service,
 * offline, on the embedded local KMS.
 *
 * 1. opens the local KMS in .demo/hierarchy/kms and creates or reuses `alias/branch-keys`, the KMS
 *    key that wraps the branch keys;
 * 2. opens a branch key store in .demo/hierarchy/branch-keys and creates one branch key per tenant
 *    (once: a second run reuses them);
 * 3. encrypts 1,000 messages for three tenants, each under a fresh data key, and counts the KMS
 *    requests: one Decrypt per tenant, however many messages;
 * 4. decrypts them all, and shows that a keyring holding another tenant's branch key opens none;
 * 5. rotates one tenant's branch key: new messages use the new version, old ones still decrypt.
 *
 * Set KMS_ENVELOPE_EXAMPLE_DIR to use another directory than .demo/hierarchy/ at the repository root.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const baseDir = resolve(process.env.KMS_ENVELOPE_EXAMPLE_DIR ?? join(here, '..', '..', '.demo', 'hierarchy'));
const show = (p) => {
  const r = relative(process.cwd(), p);
  return r === '' ? '.' : r.startsWith('..') ? p : r;
};

let lib;
let localKms;
try {
  // The same entry points an application imports (package.json "exports").
  lib = await import('kms-envelope');
  localKms = await import('kms-envelope/local-kms');
} catch (err) {
  console.error(`example: cannot load kms-envelope (${err.message}); run \`npm install\` (it builds dist/) or \`npm run build\``);
  process.exit(1);
}
const { BranchKeyStore, BranchKeyStoreError, DirectoryBranchKeyStorage, Envelope, HierarchicalKeyring, NoDecryptableKeyError } = lib;
const { LocalKms } = localKms;

const TENANTS = ['tenant-a', 'tenant-b', 'tenant-c'];
const MESSAGES = 1000;
const n = (x) => x.toLocaleString('en-US');

mkdirSync(baseDir, { recursive: true });
const kms = new LocalKms({ dataDir: join(baseDir, 'kms') });

// --- 1. the KMS key that wraps branch keys: reuse alias/branch-keys when it exists --------------
let kmsKeyArn;
try {
  kmsKeyArn = (await kms.service.call('DescribeKey', { KeyId: 'alias/branch-keys' })).KeyMetadata.Arn;
} catch (err) {
  if (err.name !== 'NotFoundException' && err.type !== 'NotFoundException') throw err;
  const key = await kms.createKey({ Description: 'wraps the branch keys of examples/hierarchy' });
  await kms.createAlias('alias/branch-keys', key.keyId);
  kmsKeyArn = key.arn;
}

// Every KMS request of the key store, counted by operation on its way to the local KMS.
const counts = {};
const inner = kms.client();
const counted = (op) => (input) => {
  counts[op] = (counts[op] ?? 0) + 1;
  return inner[op](input);
};
const kmsClient = Object.fromEntries(['generateDataKey', 'encrypt', 'decrypt', 'generateDataKeyWithoutPlaintext', 'reEncrypt'].map((op) => [op, counted(op)]));

// --- 2. the branch key store and one branch key per tenant --------------------------------------
const keyStore = new BranchKeyStore({
  storage: new DirectoryBranchKeyStorage({ dir: join(baseDir, 'branch-keys') }),
  logicalKeyStoreName: 'example-keys', // bound into every branch key (KMS encryption context)
  kmsConfiguration: { kmsKeyArn },
  kmsClient,
});
const created = [];
for (const tenant of TENANTS) {
  try {
    await keyStore.getActiveBranchKey(tenant);
  } catch (err) {
    if (!(err instanceof BranchKeyStoreError) || err.reason !== 'NOT_FOUND') throw err;
    await keyStore.createKey({ branchKeyId: tenant, encryptionContext: { tenant } });
    created.push(tenant);
  }
}
console.log(`kms-envelope hierarchical keyring example: local KMS and branch key store in ${show(baseDir)}`);
console.log(`  KMS key      alias/branch-keys -> ${kmsKeyArn}`);
console.log(`  branch keys  ${TENANTS.join(', ')} (${created.length === 0 ? 'reused' : `created ${created.join(', ')}`})`);

// --- 3. 1,000 messages for three tenants: one KMS Decrypt per tenant ----------------------------
for (const k of Object.keys(counts)) delete counts[k];
const keyring = new HierarchicalKeyring({
  keyStore,
  branchKeyIdSupplier: (context) => context.tenant, // the tenant's branch key, from the message's context
  cache: { maxAgeMs: 300_000 },
});
const envelope = new Envelope({ keyring }); // no data-key cache: every message gets its own data key
const sent = [];
for (let i = 0; i < MESSAGES; i++) {
  const tenant = TENANTS[i % TENANTS.length];
  const { message, header } = await envelope.encryptDetailed(`order ${i} of ${tenant}`, { context: { tenant } });
  sent.push({ tenant, i, message, wrapped: Buffer.from(header.encryptedDataKeys[0].ciphertext).toString('base64') });
}
const distinct = new Set(sent.map((s) => s.wrapped)).size;
console.log(
  `  encrypt      ${n(MESSAGES)} messages for ${TENANTS.length} tenants: ${n(distinct)} distinct data keys, ` +
    `KMS Decrypt x${counts.decrypt ?? 0} (one per tenant's branch key)`,
);

// --- 4. decrypt them all; another tenant's branch key opens none --------------------------------
let opened = 0;
for (const s of sent) {
  const { plaintext, context } = await envelope.decrypt(s.message, { context: { tenant: s.tenant } });
  if (plaintext.toString() !== `order ${s.i} of ${s.tenant}` || context.tenant !== s.tenant) throw new Error('round trip mismatch');
  opened++;
}
const onlyB = new Envelope({ keyring: new HierarchicalKeyring({ keyStore, branchKeyId: 'tenant-b', cache: { maxAgeMs: 300_000 } }) });
let refused = 0;
for (const s of sent.filter((x) => x.tenant === 'tenant-a').slice(0, 10)) {
  try {
    await onlyB.decrypt(s.message);
  } catch (err) {
    if (!(err instanceof NoDecryptableKeyError)) throw err;
    refused++;
  }
}
console.log(`  decrypt      ${n(opened)} of ${n(MESSAGES)}; a keyring with tenant-b's branch key refused ${refused} of 10 tenant-a messages (${NoDecryptableKeyError.name})`);

// --- 5. rotate tenant-a: new messages use the new version, old ones still decrypt ---------------
const before = (await keyStore.getActiveBranchKey('tenant-a')).branchKeyVersion;
await keyStore.versionKey('tenant-a');
const after = (await keyStore.getActiveBranchKey('tenant-a')).branchKeyVersion;
keyring.clearCache(); // otherwise the cached old version keeps wrapping until maxAgeMs passes
const fresh = await envelope.encrypt('after the rotation', { context: { tenant: 'tenant-a' } });
const old = sent.find((s) => s.tenant === 'tenant-a');
const oldAgain = await envelope.decrypt(old.message);
const freshAgain = await envelope.decrypt(fresh);
if (oldAgain.plaintext.toString() !== `order ${old.i} of tenant-a` || freshAgain.plaintext.toString() !== 'after the rotation') {
  throw new Error('rotation round trip mismatch');
}
console.log(`  rotate       tenant-a ${before.slice(0, 8)}... -> ${after.slice(0, 8)}...: a new message and one from before the rotation both decrypt`);
kms.close();
