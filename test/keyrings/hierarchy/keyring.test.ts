/**
 * HierarchicalKeyring: options, the EDK it writes (layout checked against the ESDK's own KDF and
 * cache-id helpers as oracles), decrypt filtering and failures, and the branch key cache (TTL,
 * single-flight, bounded size, zeroing on eviction).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  BranchKeyStore,
  DirectoryBranchKeyStorage,
  Envelope,
  HierarchicalKeyring,
  type BranchKeyMaterials,
} from '../../../src/index.js';
import { LocalKms } from '../../../src/local-kms/index.js';
import { cacheEntryId } from '../../../src/keyrings/hierarchy/cache.js';
import { deriveWrappingKey, parseCiphertext } from '../../../src/keyrings/hierarchy/wrapping.js';

const require = createRequire(import.meta.url);
const { kdfCounterMode } = require('@aws-crypto/kdf-ctr-mode-node') as {
  kdfCounterMode(o: { digestAlgorithm: string; ikm: Buffer; nonce: Buffer; purpose: Buffer; expectedLength: number }): Buffer;
};
const esdkHelpers = require('@aws-crypto/kms-keyring-node/build/main/src/kms_hkeyring_node_helpers.js') as {
  getCacheEntryId(logical: Buffer, partition: Buffer, branchKeyId: string, version?: Buffer): string;
};

describe('HierarchicalKeyring', () => {
  let dir: string;
  let kms: LocalKms;
  let store: BranchKeyStore;
  let loads: { active: number; version: number; handed: BranchKeyMaterials[] };
  /** The store, with its loads counted and the materials it hands out kept. */
  let counted: BranchKeyStore;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kms-envelope-hk-'));
    kms = new LocalKms();
    const arn = (await kms.createKey()).arn;
    store = new BranchKeyStore({
      storage: new DirectoryBranchKeyStorage({ dir }),
      logicalKeyStoreName: 'unit',
      kmsConfiguration: { kmsKeyArn: arn },
      kmsClient: kms.client(),
    });
    await store.createKey({ branchKeyId: 'a', encryptionContext: { t: 'a' } });
    await store.createKey({ branchKeyId: 'b', encryptionContext: { t: 'b' } });
    loads = { active: 0, version: 0, handed: [] };
    counted = Object.assign(Object.create(store) as BranchKeyStore, {
      getActiveBranchKey: async (id: string) => {
        loads.active++;
        const m = await store.getActiveBranchKey(id);
        loads.handed.push(m);
        return m;
      },
      getBranchKeyVersion: async (id: string, v: string) => {
        loads.version++;
        const m = await store.getBranchKeyVersion(id, v);
        loads.handed.push(m);
        return m;
      },
    });
  });
  afterEach(() => {
    kms.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('options: exactly one of branchKeyId and branchKeyIdSupplier; cache.maxAgeMs required and bounded; maxEntries bounded', () => {
    const cache = { maxAgeMs: 1000 };
    expect(() => new HierarchicalKeyring({ keyStore: store, cache } as never)).toThrow(/exactly one/);
    expect(() => new HierarchicalKeyring({ keyStore: store, cache, branchKeyId: 'a', branchKeyIdSupplier: () => 'a' })).toThrow(/exactly one/);
    expect(() => new HierarchicalKeyring({ keyStore: store, branchKeyId: 'a' } as never)).toThrow(TypeError);
    expect(() => new HierarchicalKeyring({ keyStore: store, branchKeyId: 'a', cache: {} as never })).toThrow(/maxAgeMs is required/);
    expect(() => new HierarchicalKeyring({ keyStore: store, branchKeyId: 'a', cache: { maxAgeMs: 0 } })).toThrow(RangeError);
    expect(() => new HierarchicalKeyring({ keyStore: store, branchKeyId: 'a', cache: { maxAgeMs: 86_400_001 } })).toThrow(RangeError);
    expect(() => new HierarchicalKeyring({ keyStore: store, branchKeyId: 'a', cache: { maxAgeMs: 1, maxEntries: 0 } })).toThrow(RangeError);
    expect(() => new HierarchicalKeyring({ keyStore: store, branchKeyId: 'a', cache: { maxAgeMs: 1, maxEntries: 100_001 } })).toThrow(RangeError);
    expect(() => new HierarchicalKeyring({ keyStore: store, branchKeyId: 'a', cache: { maxAgeMs: 1, other: 1 } as never })).toThrow(/other/);
    expect(() => new HierarchicalKeyring({ keyStore: {} as never, branchKeyId: 'a', cache })).toThrow(/keyStore/);
    expect(() => new HierarchicalKeyring({ keyStore: store, branchKeyIdSupplier: 5 as never, cache })).toThrow(/branchKeyIdSupplier/);
  });

  it('onEncrypt: a fresh random data key per call, EDK aws-kms-hierarchy / branch key id / salt+IV+version+key+tag, derived as the ESDK derives', async () => {
    const keyring = new HierarchicalKeyring({ keyStore: counted, branchKeyId: 'a', cache: { maxAgeMs: 60_000 } });
    const active = await store.getActiveBranchKey('a');
    const outs = await Promise.all([0, 1].map(() => keyring.onEncrypt({ suiteId: 0x0478, context: { k: 'v' } })));
    expect(Buffer.from(outs[0]!.dataKey).equals(Buffer.from(outs[1]!.dataKey))).toBe(false);
    for (const out of outs) {
      const [edk] = out.encryptedDataKeys;
      expect(edk!.providerId).toBe('aws-kms-hierarchy');
      expect(Buffer.from(edk!.providerInfo).toString('utf8')).toBe('a');
      expect(edk!.ciphertext).toHaveLength(16 + 12 + 16 + 32 + 16);
      expect(Buffer.from(edk!.ciphertext.subarray(28, 44)).toString('hex')).toBe(active.branchKeyVersion.replace(/-/g, ''));
      const salt = Buffer.from(edk!.ciphertext.subarray(0, 16));
      const theirs = kdfCounterMode({
        digestAlgorithm: 'sha256',
        ikm: Buffer.from(active.branchKey),
        nonce: salt,
        purpose: Buffer.from('aws-kms-hierarchy'),
        expectedLength: 32,
      });
      expect(deriveWrappingKey(active.branchKey, salt).equals(theirs)).toBe(true);
    }
    expect(loads.active).toBe(1);
  });

  it('cache entry ids follow Appendix A (the ESDK computes the same bytes)', () => {
    const partition = randomBytes(16);
    const mine = (v?: string) => Buffer.from(cacheEntryId(partition, 'logical', 'bk', v), 'hex').toString();
    expect(mine()).toBe(esdkHelpers.getCacheEntryId(Buffer.from('logical'), partition, 'bk'));
    const v = '0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0';
    expect(mine(v)).toBe(esdkHelpers.getCacheEntryId(Buffer.from('logical'), partition, 'bk', Buffer.from(v)));
    expect(mine(v)).not.toBe(mine());
  });

  it('onDecrypt: filters by provider id and branch key id, fails uniformly on a changed context or ciphertext', async () => {
    const keyring = new HierarchicalKeyring({ keyStore: counted, branchKeyId: 'a', cache: { maxAgeMs: 60_000 } });
    const out = await keyring.onEncrypt({ suiteId: 0x0478, context: { k: 'v' } });
    const edk = out.encryptedDataKeys[0]!;
    const key = await keyring.onDecrypt({ suiteId: 0x0478, context: { k: 'v' }, encryptedDataKeys: [edk] });
    expect(Buffer.from(key!).equals(Buffer.from(out.dataKey))).toBe(true);
    const other = new HierarchicalKeyring({ keyStore: store, branchKeyId: 'b', cache: { maxAgeMs: 60_000 } });
    expect(await other.onDecrypt({ suiteId: 0x0478, context: { k: 'v' }, encryptedDataKeys: [edk] })).toBeUndefined();
    expect(await keyring.onDecrypt({ suiteId: 0x0478, context: { k: 'v' }, encryptedDataKeys: [{ ...edk, providerId: 'aws-kms' }] })).toBeUndefined();
    const flipped = Buffer.from(edk.ciphertext);
    flipped[50]! ^= 1;
    const fails = [
      keyring.onDecrypt({ suiteId: 0x0478, context: { k: 'w' }, encryptedDataKeys: [edk] }),
      keyring.onDecrypt({ suiteId: 0x0478, context: { k: 'v' }, encryptedDataKeys: [{ ...edk, ciphertext: flipped }] }),
      keyring.onDecrypt({ suiteId: 0x0478, context: { k: 'v' }, encryptedDataKeys: [{ ...edk, ciphertext: edk.ciphertext.subarray(1) }] }),
    ];
    for (const f of fails) await expect(f).rejects.toMatchObject({ code: 'ERR_NO_DECRYPTABLE_KEY' });
    // A version that does not exist: the store's NOT_FOUND is collected, not thrown raw.
    const unknown = Buffer.from(edk.ciphertext);
    unknown.fill(0xab, 28, 44);
    await expect(keyring.onDecrypt({ suiteId: 0x0478, context: { k: 'v' }, encryptedDataKeys: [{ ...edk, ciphertext: unknown }] })).rejects.toMatchObject({
      code: 'ERR_NO_DECRYPTABLE_KEY',
    });
    expect(parseCiphertext(edk.ciphertext, 32)!.version).toBe((await store.getActiveBranchKey('a')).branchKeyVersion);
  });

  it('supplier: the branch key per message from its context, on encrypt and on decrypt', async () => {
    const keyring = new HierarchicalKeyring({ keyStore: counted, branchKeyIdSupplier: { getBranchKeyId: (c) => c.tenant! }, cache: { maxAgeMs: 60_000 } });
    const envelope = new Envelope({ keyring, cache: false });
    const ma = await envelope.encrypt('for a', { context: { tenant: 'a' } });
    const mb = await envelope.encrypt('for b', { context: { tenant: 'b' } });
    expect((await envelope.decrypt(ma)).plaintext.toString()).toBe('for a');
    expect((await envelope.decrypt(mb)).plaintext.toString()).toBe('for b');
    expect(loads.active).toBe(2);
    const failing = new HierarchicalKeyring({ keyStore: store, branchKeyIdSupplier: () => '', cache: { maxAgeMs: 1 } });
    await expect(failing.onEncrypt({ suiteId: 0x0478, context: {} })).rejects.toMatchObject({ code: 'ERR_KEYRING' });
  });

  it('cache: an entry older than maxAgeMs is loaded again (KMS asked again); concurrent misses share one load', async () => {
    let now = 1000;
    const keyring = new HierarchicalKeyring({ keyStore: counted, branchKeyId: 'a', cache: { maxAgeMs: 500, clock: () => now } });
    await Promise.all(Array.from({ length: 50 }, () => keyring.onEncrypt({ suiteId: 0x0478, context: {} })));
    expect(loads.active).toBe(1);
    now += 500;
    await keyring.onEncrypt({ suiteId: 0x0478, context: {} });
    expect(loads.active).toBe(1);
    now += 1;
    await keyring.onEncrypt({ suiteId: 0x0478, context: {} });
    expect(loads.active).toBe(2);
    expect(keyring.cacheStats()).toMatchObject({ misses: 2, hits: 50, entries: 1 });
  });

  it('cache: bounded by maxEntries; an evicted or cleared branch key is zeroed', async () => {
    const keyring = new HierarchicalKeyring({ keyStore: counted, branchKeyIdSupplier: (c) => c.t!, cache: { maxAgeMs: 60_000, maxEntries: 1 } });
    await keyring.onEncrypt({ suiteId: 0x0478, context: { t: 'a' } });
    const first = loads.handed[0]!.branchKey;
    await keyring.onEncrypt({ suiteId: 0x0478, context: { t: 'b' } });
    expect(keyring.cacheStats().entries).toBe(1);
    await new Promise((r) => setImmediate(r));
    expect(first.every((b) => b === 0)).toBe(true);
    const second = loads.handed[1]!.branchKey;
    expect(second.some((b) => b !== 0)).toBe(true);
    keyring.clearCache();
    await new Promise((r) => setImmediate(r));
    expect(second.every((b) => b === 0)).toBe(true);
    // Still works after eviction: the next message loads again.
    await keyring.onEncrypt({ suiteId: 0x0478, context: { t: 'a' } });
    expect(loads.active).toBe(3);
  });
});
