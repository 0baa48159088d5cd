/**
 * Compliance: framework/aws-kms/aws-kms-hierarchical-keyring.md
 * (test/spec/compliance/framework/aws-kms/aws-kms-hierarchical-keyring.md).
 *
 * What test/keyrings/hierarchy/ does not already pin: the EDK checked against an independent
 * construction of the wrap (the ESDK's KDF, node's AES-GCM, the AAD built by hand here), the cache
 * identifiers the keyring asks for (partition id, logical key store name, scope), EDKs tried one at
 * a time with their errors collected, store failures, contexts that cannot be serialized, and the
 * cache age on decrypt. Branch keys come from a real BranchKeyStore over the in-process local KMS.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createRequire } from 'node:module';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BranchKeyStore, DirectoryBranchKeyStorage, HierarchicalKeyring, type BranchKeyMaterials } from '../../src/index.js';
import { LocalKms } from '../../src/local-kms/index.js';
import * as cacheModule from '../../src/keyrings/hierarchy/cache.js';

vi.mock('../../src/keyrings/hierarchy/cache.js', async (importOriginal) => {
  const m = await importOriginal<typeof import('../../src/keyrings/hierarchy/cache.js')>();
  return { ...m, cacheEntryId: vi.fn(m.cacheEntryId) };
});

const require = createRequire(import.meta.url);
const { kdfCounterMode } = require('@aws-crypto/kdf-ctr-mode-node') as {
  kdfCounterMode(o: { digestAlgorithm: string; ikm: Buffer; nonce: Buffer; purpose: Buffer; expectedLength: number }): Buffer;
};

const LABEL = Buffer.from('aws-kms-hierarchy', 'utf8');

/** The serialized encryption context of the message format, written out here: count, then (len, key, len, value) sorted by key bytes. */
function serialized(ctx: Record<string, string>): Buffer {
  const keys = Object.keys(ctx).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  if (keys.length === 0) return Buffer.alloc(0);
  const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
  const parts = [u16(keys.length)];
  for (const k of keys) {
    const kb = Buffer.from(k, 'utf8');
    const vb = Buffer.from(ctx[k]!, 'utf8');
    parts.push(u16(kb.length), kb, u16(vb.length), vb);
  }
  return Buffer.concat(parts);
}

const derive = (branchKey: Uint8Array, salt: Buffer) =>
  kdfCounterMode({ digestAlgorithm: 'sha256', ikm: Buffer.from(branchKey), nonce: salt, purpose: LABEL, expectedLength: 32 });

describe('hierarchical keyring (specification)', () => {
  let dir: string;
  let kms: LocalKms;
  let store: BranchKeyStore;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kms-envelope-spec-hk-'));
    kms = new LocalKms();
    store = new BranchKeyStore({
      storage: new DirectoryBranchKeyStorage({ dir }),
      logicalKeyStoreName: 'spec-logical',
      kmsConfiguration: { kmsKeyArn: (await kms.createKey()).arn },
      kmsClient: kms.client(),
    });
    await store.createKey({ branchKeyId: 'tenant-é', encryptionContext: { t: 'a' } });
    vi.mocked(cacheModule.cacheEntryId).mockClear();
  });
  afterEach(() => {
    kms.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('wrap: salt (16) || IV (12) || version (16) || AES-256-GCM of the data key || tag (16), key from the ESDK KDF, AAD = "aws-kms-hierarchy" || branch key id || version || serialized context; a given data key is wrapped as given', async () => {
    const keyring = new HierarchicalKeyring({ keyStore: store, branchKeyId: 'tenant-é', cache: { maxAgeMs: 60_000 } });
    const active = await store.getActiveBranchKey('tenant-é');
    const version = Buffer.from(active.branchKeyVersion.replace(/-/g, ''), 'hex');
    for (const context of [{ b: '2', a: 'é' }, {}] as Record<string, string>[]) {
      const given = randomBytes(32);
      const copy = Buffer.from(given);
      const out = await keyring.onEncrypt({ suiteId: 0x0478, context, dataKey: given });
      expect(Buffer.from(out.dataKey).equals(copy)).toBe(true);
      expect(out.encryptedDataKeys).toHaveLength(1);
      const edk = out.encryptedDataKeys[0]!;
      expect(Buffer.from(edk.providerInfo).equals(Buffer.from('tenant-é', 'utf8'))).toBe(true);
      const ct = Buffer.from(edk.ciphertext);
      expect(ct).toHaveLength(16 + 12 + 16 + 32 + 16);
      const salt = ct.subarray(0, 16);
      const iv = ct.subarray(16, 28);
      expect(ct.subarray(28, 44).equals(version)).toBe(true);
      const decipher = createDecipheriv('aes-256-gcm', derive(active.branchKey, salt), iv, { authTagLength: 16 });
      decipher.setAAD(Buffer.concat([LABEL, Buffer.from('tenant-é', 'utf8'), version, serialized(context)]));
      decipher.setAuthTag(ct.subarray(76, 92));
      expect(Buffer.concat([decipher.update(ct.subarray(44, 76)), decipher.final()]).equals(copy)).toBe(true);
    }
    // Salt and IV are fresh per data key.
    const a = await keyring.onEncrypt({ suiteId: 0x0478, context: {} });
    const b = await keyring.onEncrypt({ suiteId: 0x0478, context: {} });
    expect(Buffer.from(a.encryptedDataKeys[0]!.ciphertext.subarray(0, 28)).equals(Buffer.from(b.encryptedDataKeys[0]!.ciphertext.subarray(0, 28)))).toBe(false);
  });

  it('unwrap: an EDK built here by the specification (not by the keyring) decrypts to its data key; the suite key length sizes the encrypted key', async () => {
    const keyring = new HierarchicalKeyring({ keyStore: store, branchKeyId: 'tenant-é', cache: { maxAgeMs: 60_000 } });
    const active = await store.getActiveBranchKey('tenant-é');
    const version = Buffer.from(active.branchKeyVersion.replace(/-/g, ''), 'hex');
    for (const [suiteId, len] of [[0x0478, 32], [0x0014, 16]] as const) {
      const context = { k: 'v' };
      const dataKey = randomBytes(len);
      const salt = randomBytes(16);
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', derive(active.branchKey, salt), iv, { authTagLength: 16 });
      cipher.setAAD(Buffer.concat([LABEL, Buffer.from('tenant-é', 'utf8'), version, serialized(context)]));
      const enc = Buffer.concat([cipher.update(dataKey), cipher.final()]);
      const edk = { providerId: 'aws-kms-hierarchy', providerInfo: Buffer.from('tenant-é', 'utf8'), ciphertext: Buffer.concat([salt, iv, version, enc, cipher.getAuthTag()]) };
      const key = await keyring.onDecrypt({ suiteId, context, encryptedDataKeys: [edk] });
      expect(Buffer.from(key!).equals(dataKey)).toBe(true);
    }
  });

  it('cache identifiers: encrypt asks for (partition, logical key store name, branch key id), decrypt adds the version; a given partition id is its UTF-8 bytes, the default 16 bytes of a v4 UUID, fixed for the keyring', async () => {
    const spy = vi.mocked(cacheModule.cacheEntryId);
    const given = new HierarchicalKeyring({ keyStore: store, branchKeyId: 'tenant-é', cache: { maxAgeMs: 60_000 }, partitionId: 'part-ü' });
    const out = await given.onEncrypt({ suiteId: 0x0478, context: {} });
    await given.onEncrypt({ suiteId: 0x0478, context: {} });
    await given.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: out.encryptedDataKeys });
    const version = (await store.getActiveBranchKey('tenant-é')).branchKeyVersion;
    // The keyring may compute an identifier once per key and version (it does): what is asked
    // for, not how often, is the requirement.
    expect(new Set(spy.mock.calls.map((c) => c[3]))).toEqual(new Set([undefined, version]));
    for (const call of spy.mock.calls) {
      expect(Buffer.from(call[0]).equals(Buffer.from('part-ü', 'utf8'))).toBe(true);
      expect(call[1]).toBe('spec-logical');
      expect(call[2]).toBe('tenant-é');
    }
    spy.mockClear();
    const dflt = new HierarchicalKeyring({ keyStore: store, branchKeyId: 'tenant-é', cache: { maxAgeMs: 60_000 } });
    const written = await dflt.onEncrypt({ suiteId: 0x0478, context: {} });
    await dflt.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: written.encryptedDataKeys });
    const [p1, p2] = spy.mock.calls.map((c) => Buffer.from(c[0]));
    expect(p1).toHaveLength(16);
    expect(p1![6]! >> 4).toBe(4);
    expect(p1![8]! >> 6).toBe(2);
    expect(p1!.equals(p2!)).toBe(true);
    expect(() => new HierarchicalKeyring({ keyStore: store, branchKeyId: 'x', cache: { maxAgeMs: 1 }, partitionId: 5 as never })).toThrow(/partitionId/);
  });

  it('onDecrypt: matching EDKs one at a time; provider info that is not UTF-8 or names another key is passed over, a failure is collected and the next tried; when all fail, every collected error is in the one thrown', async () => {
    let loads = 0;
    let inFlight = 0;
    const counted = Object.assign(Object.create(store) as BranchKeyStore, {
      getActiveBranchKey: (id: string) => store.getActiveBranchKey(id),
      getBranchKeyVersion: async (id: string, v: string) => {
        loads++;
        inFlight++;
        expect(inFlight).toBe(1);
        try {
          return await store.getBranchKeyVersion(id, v);
        } finally {
          inFlight--;
        }
      },
    });
    const keyring = new HierarchicalKeyring({ keyStore: counted, branchKeyId: 'tenant-é', cache: { maxAgeMs: 60_000 } });
    const out = await keyring.onEncrypt({ suiteId: 0x0478, context: {} });
    const good = out.encryptedDataKeys[0]!;
    const badUtf8 = { ...good, providerInfo: Buffer.from([0xff, 0xfe]) };
    const otherKey = { ...good, providerInfo: Buffer.from('someone-else') };
    const unknownVersion = { ...good, ciphertext: Buffer.from(good.ciphertext).fill(0xab, 28, 44) };
    const flipped = Buffer.from(good.ciphertext);
    flipped[60]! ^= 1;
    const tampered = { ...good, ciphertext: flipped };
    const key = await keyring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: [badUtf8, otherKey, unknownVersion, tampered, good] });
    expect(Buffer.from(key!).equals(Buffer.from(out.dataKey))).toBe(true);
    expect(await keyring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: [badUtf8, otherKey] })).toBeUndefined();
    const err = await keyring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: [unknownVersion, tampered] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_NO_DECRYPTABLE_KEY' });
    const collected = ((err as Error).cause as AggregateError).errors as Error[];
    expect(collected).toHaveLength(2);
    expect(collected[0]).toMatchObject({ reason: 'NOT_FOUND' });
    expect(loads).toBeGreaterThan(0);
  });

  it('a branch key store that fails fails OnEncrypt and OnDecrypt; a failed load is not cached, the next call asks the store again', async () => {
    let fail = true;
    let calls = 0;
    const flaky = Object.assign(Object.create(store) as BranchKeyStore, {
      getActiveBranchKey: async (id: string): Promise<BranchKeyMaterials> => {
        calls++;
        if (fail) throw new Error('store down');
        return store.getActiveBranchKey(id);
      },
      getBranchKeyVersion: async (id: string, v: string): Promise<BranchKeyMaterials> => {
        calls++;
        if (fail) throw new Error('store down');
        return store.getBranchKeyVersion(id, v);
      },
    });
    const keyring = new HierarchicalKeyring({ keyStore: flaky, branchKeyId: 'tenant-é', cache: { maxAgeMs: 60_000 } });
    await expect(keyring.onEncrypt({ suiteId: 0x0478, context: {} })).rejects.toThrow('store down');
    const edks = (await new HierarchicalKeyring({ keyStore: store, branchKeyId: 'tenant-é', cache: { maxAgeMs: 1000 } }).onEncrypt({ suiteId: 0x0478, context: {} })).encryptedDataKeys;
    await expect(keyring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: edks })).rejects.toMatchObject({ code: 'ERR_NO_DECRYPTABLE_KEY' });
    expect(calls).toBe(2);
    fail = false;
    await keyring.onEncrypt({ suiteId: 0x0478, context: {} });
    expect(await keyring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: edks })).toBeDefined();
    expect(calls).toBe(4);
  });

  it('an encryption context that cannot be serialized fails OnEncrypt (a given data key left as it was) and OnDecrypt', async () => {
    const keyring = new HierarchicalKeyring({ keyStore: store, branchKeyId: 'tenant-é', cache: { maxAgeMs: 60_000 } });
    const huge = { big: 'x'.repeat(70_000) };
    const given = randomBytes(32);
    const copy = Buffer.from(given);
    await expect(keyring.onEncrypt({ suiteId: 0x0478, context: huge, dataKey: given })).rejects.toMatchObject({ code: 'ERR_KEYRING' });
    expect(given.equals(copy)).toBe(true);
    const out = await keyring.onEncrypt({ suiteId: 0x0478, context: {} });
    await expect(keyring.onDecrypt({ suiteId: 0x0478, context: huge, encryptedDataKeys: out.encryptedDataKeys })).rejects.toMatchObject({
      code: 'ERR_NO_DECRYPTABLE_KEY',
    });
  });

  it('cache age on decrypt: a version entry exactly maxAgeMs old is used, one older is expired and loaded again', async () => {
    let now = 5000;
    let loads = 0;
    const counted = Object.assign(Object.create(store) as BranchKeyStore, {
      getActiveBranchKey: (id: string) => store.getActiveBranchKey(id),
      getBranchKeyVersion: async (id: string, v: string) => {
        loads++;
        return store.getBranchKeyVersion(id, v);
      },
    });
    const keyring = new HierarchicalKeyring({ keyStore: counted, branchKeyId: 'tenant-é', cache: { maxAgeMs: 300, clock: () => now } });
    const { encryptedDataKeys } = await keyring.onEncrypt({ suiteId: 0x0478, context: {} });
    await keyring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys });
    now += 300;
    await keyring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys });
    expect(loads).toBe(1);
    now += 1;
    await keyring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys });
    expect(loads).toBe(2);
  });

  it('cache size: without maxEntries the keyring holds at most 1000 branch keys (the 1001st evicts one)', async () => {
    const active = await store.getActiveBranchKey('tenant-é');
    // The store is asked for 1001 branch keys; it hands copies of one real key under each id.
    const many = Object.assign(Object.create(store) as BranchKeyStore, {
      getActiveBranchKey: async (id: string): Promise<BranchKeyMaterials> => ({ ...active, branchKeyId: id, branchKey: Buffer.from(active.branchKey) }),
      getBranchKeyVersion: (id: string, v: string) => store.getBranchKeyVersion(id, v),
    });
    const keyring = new HierarchicalKeyring({ keyStore: many, branchKeyIdSupplier: (c) => c.t!, cache: { maxAgeMs: 60_000 } });
    for (let i = 0; i < 1000; i++) await keyring.onEncrypt({ suiteId: 0x0478, context: { t: `k${i}` } });
    expect(keyring.cacheStats()).toMatchObject({ entries: 1000, evictions: 0 });
    await keyring.onEncrypt({ suiteId: 0x0478, context: { t: 'k1000' } });
    expect(keyring.cacheStats()).toMatchObject({ entries: 1000, evictions: 1 });
  });
});
