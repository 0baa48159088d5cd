/**
 * Key caches and startup snapshots (src/cache/snapshot.ts): keys cached while a snapshot is built
 * must not be restored into the processes started from it (one data key would serve
 * `maxMessagesPerKey` messages in every process, and plaintext keys would sit in the snapshot file).
 * A bundled application warms an Envelope's data-key cache and a HierarchicalKeyring's branch key
 * cache while the snapshot is built, encrypts again after the library's serialize callback (in a
 * later serialize callback and in a `beforeExit` handler, which Node runs once more after the
 * serialize callbacks), then encrypts in a deserialize callback registered before the library's
 * and once more in each restored process.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
let dir = '';
afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

it('no data key or branch key used while the snapshot was built is in the snapshot file or served from a cache after the restore', async () => {
  dir = mkdtempSync(join(tmpdir(), 'kms-envelope-cache-snapshot-'));
  const entry = join(dir, 'entry.ts');
  writeFileSync(
    entry,
    `import { randomBytes } from 'node:crypto';
     import { startupSnapshot } from 'node:v8';
     import { Envelope, HierarchicalKeyring } from ${JSON.stringify(join(root, 'src/index.ts'))};
     // Registered before the library's deserialize callback, so it runs first.
     startupSnapshot.addDeserializeCallback(() => {
       globalThis.early = edkOf(cached);
     });
     // A keyring whose data keys are markers the test looks for in the blob (0x61, 0x62, ... per
     // call) and whose EDK is a random label, so messages show which data key they used.
     let keyringCalls = 0;
     const keyring = {
       onEncrypt: async () => {
         keyringCalls++;
         return { dataKey: Buffer.alloc(32, 0x60 + keyringCalls), encryptedDataKeys: [{ providerId: 'test', providerInfo: Buffer.from('k'), ciphertext: randomBytes(16) }] };
       },
       onDecrypt: async () => undefined,
     };
     const cached = new Envelope({ keyring, cache: { maxEntries: 10, maxAgeMs: 600_000, maxMessagesPerKey: 1000 } });
     // A branch key store in memory; the branch key is a marker the test looks for in the blob.
     let branchKeyLoads = 0;
     const keyStore = {
       logicalKeyStoreName: 'snapshot-test',
       getActiveBranchKey: async (id) => {
         branchKeyLoads++;
         return { branchKeyId: id, branchKeyVersion: '11111111-2222-4333-8444-555555555555', branchKey: Buffer.alloc(32, 0x5c), encryptionContext: {} };
       },
       getBranchKeyVersion: async () => { throw new Error('not used'); },
     };
     const hierarchical = new Envelope({ keyring: new HierarchicalKeyring({ keyStore, branchKeyId: 'tenant', cache: { maxAgeMs: 600_000 } }) });
     function edkOf(envelope) {
       return envelope.encryptDetailed('m').then((r) => Buffer.from(r.header.encryptedDataKeys[0].ciphertext).toString('hex'));
     }
     let built = '';
     edkOf(cached).then(async (edk) => {
       built = edk;
       await hierarchical.encrypt('m');
     });
     startupSnapshot.addSerializeCallback(() => {
       edkOf(cached).then(() => hierarchical.encrypt('m'));
     });
     let beforeExits = 0;
     process.on('beforeExit', () => {
       if (++beforeExits <= 2) edkOf(cached).then(() => hierarchical.encrypt('m'));
     });
     startupSnapshot.setDeserializeMainFunction(async () => {
       const atRestore = { keyringCalls, branchKeyLoads };
       const early = await globalThis.early;
       const edk = await edkOf(cached);
       await hierarchical.encrypt('m');
       process.stdout.write(JSON.stringify({ built, early, edk, atRestore, keyringCalls, branchKeyLoads }));
     });`,
  );
  const bundle = join(dir, 'entry.cjs');
  await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'cjs', outfile: bundle, logLevel: 'silent' });
  const blob = join(dir, 'snapshot.blob');
  const made = spawnSync(process.execPath, ['--snapshot-blob', blob, '--build-snapshot', bundle], { encoding: 'utf8', timeout: 60_000 });
  expect(made.status, made.stderr).toBe(0);
  // The branch key (32 bytes of 0x5c) and every data key (0x61...) were zeroed before the heap was saved.
  const saved = readFileSync(blob);
  expect(saved.indexOf(Buffer.alloc(32, 0x5c))).toBe(-1);
  for (let marker = 0x61; marker <= 0x68; marker++) expect(saved.indexOf(Buffer.alloc(32, marker)), `data key 0x${marker.toString(16)}`).toBe(-1);
  const run = () => {
    const r = spawnSync(process.execPath, ['--snapshot-blob', blob], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as {
      built: string;
      early: string;
      edk: string;
      atRestore: { keyringCalls: number; branchKeyLoads: number };
      keyringCalls: number;
      branchKeyLoads: number;
    };
  };
  const first = run();
  const second = run();
  expect(first.built).toMatch(/^[0-9a-f]{32}$/);
  // Build time: the first encrypt, the later serialize callback and two beforeExit runs; those after
  // the library's serialize callback each call the keyring, since nothing was cached then (branch
  // key loads running at the same time share one).
  expect(first.atRestore.keyringCalls).toBe(4);
  expect(first.atRestore.branchKeyLoads).toBeGreaterThanOrEqual(2);
  // After the restore the early deserialize callback found no cached key: it called the keyring
  // (the main function's encrypt may join that call), and the branch key was loaded again.
  expect(first.keyringCalls - first.atRestore.keyringCalls).toBeGreaterThanOrEqual(1);
  expect(first.branchKeyLoads - first.atRestore.branchKeyLoads).toBe(1);
  expect(first.early).not.toBe(first.built);
  expect(first.edk).not.toBe(first.built);
  expect(second.early).not.toBe(first.early);
  expect(second.edk).not.toBe(first.edk);
}, 120_000);
