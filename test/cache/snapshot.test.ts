/**
 * Key caches and startup snapshots (src/cache/snapshot.ts): keys cached while a snapshot is built
 * must not be restored into the processes started from it (one data key would serve
 * `maxMessagesPerKey` messages in every process, and plaintext keys would sit in the snapshot file).
 * A bundled application warms an Envelope's data-key cache and a HierarchicalKeyring's branch key
 * cache while the snapshot is built, then encrypts once more in each restored process.
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

it('a data key and a branch key cached while the snapshot was built are fetched again in each restored process, and neither is in the snapshot file', async () => {
  dir = mkdtempSync(join(tmpdir(), 'kms-envelope-cache-snapshot-'));
  const entry = join(dir, 'entry.ts');
  writeFileSync(
    entry,
    `import { randomBytes } from 'node:crypto';
     import { startupSnapshot } from 'node:v8';
     import { Envelope, HierarchicalKeyring } from ${JSON.stringify(join(root, 'src/index.ts'))};
     // A keyring whose EDK is a random label, so messages show which data key they used.
     let keyringCalls = 0;
     const keyring = {
       onEncrypt: async () => {
         keyringCalls++;
         return { dataKey: randomBytes(32), encryptedDataKeys: [{ providerId: 'test', providerInfo: Buffer.from('k'), ciphertext: randomBytes(16) }] };
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
     const edkOf = async (envelope) => Buffer.from((await envelope.encryptDetailed('m')).header.encryptedDataKeys[0].ciphertext).toString('hex');
     let built = '';
     edkOf(cached).then(async (edk) => {
       built = edk;
       await hierarchical.encrypt('m');
     });
     startupSnapshot.setDeserializeMainFunction(async () => {
       const edk = await edkOf(cached);
       await hierarchical.encrypt('m');
       process.stdout.write(JSON.stringify({ built, edk, keyringCalls, branchKeyLoads }));
     });`,
  );
  const bundle = join(dir, 'entry.cjs');
  await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'cjs', outfile: bundle, logLevel: 'silent' });
  const blob = join(dir, 'snapshot.blob');
  const made = spawnSync(process.execPath, ['--snapshot-blob', blob, '--build-snapshot', bundle], { encoding: 'utf8', timeout: 60_000 });
  expect(made.status, made.stderr).toBe(0);
  // The cached branch key (32 bytes of 0x5c) was zeroed before the heap was saved.
  expect(readFileSync(blob).indexOf(Buffer.alloc(32, 0x5c))).toBe(-1);
  const run = () => {
    const r = spawnSync(process.execPath, ['--snapshot-blob', blob], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as { built: string; edk: string; keyringCalls: number; branchKeyLoads: number };
  };
  const first = run();
  const second = run();
  expect(first.built).toMatch(/^[0-9a-f]{32}$/);
  // One keyring call and one branch key load at build time, one more of each after the restore.
  expect([first.keyringCalls, first.branchKeyLoads]).toEqual([2, 2]);
  expect(first.edk).not.toBe(first.built);
  expect(second.edk).not.toBe(first.edk);
}, 120_000);
