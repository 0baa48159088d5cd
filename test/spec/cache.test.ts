/**
 * Compliance: framework/caching-cmm.md (test/spec/compliance/framework/caching-cmm.md).
 *
 * Our data-key cache is not a caching CMM: it is built into each Envelope, over the Envelope's own
 * keyring, with no user-supplied materials cache. These tests check, through the public Envelope
 * API, the behaviour of the caching CMM that it does reproduce: TTL, message and byte limits with
 * usage counted per entry, entries kept apart by Envelope, direction, suite, context and encrypted
 * data keys, and cache-first lookups that fall back to the keyring.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  AlgorithmSuiteIdentifier,
  buildClient,
  CommitmentPolicy,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
} from '@aws-crypto/client-node';
import { Envelope, RawAesKeyring, type EncryptedDataKey, type Keyring } from '../../src/index.js';
import { resolveCacheOptions } from '../../src/cache/index.js';
import { parseHeader } from '../../src/format/header.js';

const LIMITS = { maxEncryptedDataKeys: 10, maxHeaderBytes: 1 << 20 };

/** A raw AES keyring that counts calls and records the inputs of onEncrypt. */
function counting(inner: Keyring = new RawAesKeyring({ keyNamespace: 'spec', keyName: 'cache', key: randomBytes(32) })) {
  const k = {
    encrypts: 0,
    decrypts: 0,
    contexts: [] as Record<string, string>[],
    async onEncrypt(input: Parameters<Keyring['onEncrypt']>[0]) {
      k.encrypts++;
      k.contexts.push({ ...input.context });
      return inner.onEncrypt(input);
    },
    async onDecrypt(input: Parameters<Keyring['onDecrypt']>[0]) {
      k.decrypts++;
      return inner.onDecrypt(input);
    },
  };
  return k;
}

/** A keyring that always wraps to the same EDK list and unwraps it to the same data key, whatever the context. */
function fixed(dataKey: Buffer, edks: EncryptedDataKey[]): Keyring {
  return {
    onEncrypt: async () => ({ dataKey: Buffer.from(dataKey), encryptedDataKeys: edks }),
    onDecrypt: async () => Buffer.from(dataKey),
  };
}

const edksOf = (message: Buffer) => parseHeader(message, LIMITS)!.encryptedDataKeys.map((e) => Buffer.from(e.ciphertext).toString('hex')).join();

function clock(start = 1_000) {
  const c = { now: start, read: () => c.now };
  return c;
}

describe('caching (caching-cmm.md): initialization and limits', () => {
  it('always has a TTL: with no limits given, a cached data key is used for less than 300,000 ms on the encrypt and the decrypt side', async () => {
    const t = clock();
    const ring = counting();
    const envelope = new Envelope({ keyring: ring, cache: { clock: t.read } });
    const m1 = await envelope.encrypt('a');
    await envelope.decrypt(m1);
    t.now += 299_999;
    const m2 = await envelope.encrypt('b');
    await envelope.decrypt(m1);
    expect([ring.encrypts, ring.decrypts]).toEqual([1, 1]);
    expect(edksOf(m2)).toBe(edksOf(m1));
    t.now += 1;
    const m3 = await envelope.encrypt('c');
    await envelope.decrypt(m1);
    expect([ring.encrypts, ring.decrypts]).toEqual([2, 2]);
    expect(edksOf(m3)).not.toBe(edksOf(m1));
  });

  it('maxAgeMs: an entry that old is never used; the next encrypt or decrypt calls the keyring and caches the new result', async () => {
    const t = clock();
    const ring = counting();
    const envelope = new Envelope({ keyring: ring, cache: { maxAgeMs: 1_000, clock: t.read } });
    const m1 = await envelope.encrypt('a');
    await envelope.decrypt(m1);
    t.now += 999;
    await envelope.encrypt('b');
    await envelope.decrypt(m1);
    expect([ring.encrypts, ring.decrypts]).toEqual([1, 1]);
    t.now += 1;
    const m3 = await envelope.encrypt('c');
    await envelope.decrypt(m1);
    expect([ring.encrypts, ring.decrypts]).toEqual([2, 2]);
    // The reloaded entries are cached again.
    const m4 = await envelope.encrypt('d');
    await envelope.decrypt(m1);
    expect([ring.encrypts, ring.decrypts]).toEqual([2, 2]);
    expect(edksOf(m4)).toBe(edksOf(m3));
  });

  it('loads through the keyring the Envelope is given: exactly one of options.keyring and options.kms is required', async () => {
    expect(() => new Envelope({ cache: {} } as never)).toThrow(/exactly one of options\.keyring and options\.kms/);
    const ring = counting();
    const envelope = new Envelope({ keyring: ring, cache: {} });
    await envelope.encrypt('x');
    expect(ring.encrypts).toBe(1);
    expect(envelope.stats()).toMatchObject({ keyringCalls: 1, loads: 1 });
  });

  it('a miss gets its materials the way the uncached Envelope does: for suite 0x0578 the keyring sees the signing key in the context, and every cached message verifies with the ESDK', async () => {
    const key = randomBytes(32);
    const ring = counting(new RawAesKeyring({ keyNamespace: 'spec', keyName: 'cache', key }));
    const envelope = new Envelope({ keyring: ring, suite: 0x0578, cache: {} });
    const messages = [await envelope.encrypt('one', { context: { a: '1' } }), await envelope.encrypt('two', { context: { a: '1' } })];
    expect(ring.encrypts).toBe(1);
    expect(Object.keys(ring.contexts[0]!).sort()).toEqual(['a', 'aws-crypto-public-key']);
    const esdk = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
    const reader = new RawAesKeyringNode({
      keyNamespace: 'spec',
      keyName: 'cache',
      unencryptedMasterKey: new Uint8Array(key),
      wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
      utf8Sorting: true,
    });
    const texts: string[] = [];
    for (const m of messages) texts.push(Buffer.from((await esdk.decrypt(reader, m)).plaintext).toString());
    expect(texts).toEqual(['one', 'two']);
  });

  it('maxMessagesPerKey is optional; given, a data key encrypts exactly that many messages, counted from the message that loaded it', async () => {
    const ring = counting();
    const envelope = new Envelope({ keyring: ring, cache: { maxMessagesPerKey: 3 } });
    const keys: string[] = [];
    for (let i = 0; i < 7; i++) keys.push(edksOf(await envelope.encrypt(`m${i}`)));
    expect(ring.encrypts).toBe(3);
    const group = keys.map((k) => keys.indexOf(k));
    expect(group).toEqual([0, 0, 0, 3, 3, 3, 6]);
  });

  it('maxBytesPerKey is optional; given, a data key encrypts at most that many plaintext bytes, and a larger message gets its own uncached key', async () => {
    const ring = counting();
    const envelope = new Envelope({ keyring: ring, cache: { maxBytesPerKey: 100 } });
    const keys: string[] = [];
    for (let i = 0; i < 5; i++) keys.push(edksOf(await envelope.encrypt(Buffer.alloc(40))));
    expect(keys.map((k) => keys.indexOf(k))).toEqual([0, 0, 2, 2, 4]);
    expect(ring.encrypts).toBe(3);
    const big = edksOf(await envelope.encrypt(Buffer.alloc(101)));
    expect(ring.encrypts).toBe(4);
    // The entry in use is left alone: the next small message still uses it (40 + 40 = 80 bytes).
    expect(edksOf(await envelope.encrypt(Buffer.alloc(40)))).toBe(keys[4]);
    expect(big).not.toBe(keys[4]);
    expect(ring.encrypts).toBe(4);
    // Neither limit is required.
    expect(() => new Envelope({ keyring: ring, cache: { maxAgeMs: 5 } })).not.toThrow();
  });

  it('the default byte limit is 2^40 and no setting can exceed 2^53-1, both below 2^63-1', () => {
    const defaults = resolveCacheOptions(undefined);
    expect(defaults && defaults.maxBytesPerKey).toBe(2 ** 40);
    expect(() => resolveCacheOptions({ maxBytesPerKey: Number.MAX_SAFE_INTEGER })).not.toThrow();
    expect(() => resolveCacheOptions({ maxBytesPerKey: Number.MAX_SAFE_INTEGER + 1 })).toThrow(/cache\.maxBytesPerKey/);
    expect(2 ** 40).toBeLessThan(Number.MAX_SAFE_INTEGER);
    expect(BigInt(Number.MAX_SAFE_INTEGER)).toBeLessThan(2n ** 63n - 1n);
  });
});

describe('caching (caching-cmm.md): lookups and entries', () => {
  it('two Envelopes never use each other\'s entries, even with the same keyring, suite and context', async () => {
    const ring = counting();
    const a = new Envelope({ keyring: ring, cache: {} });
    const b = new Envelope({ keyring: ring, cache: {} });
    const ma = await a.encrypt('x', { context: { c: '1' } });
    const mb = await b.encrypt('x', { context: { c: '1' } });
    expect(ring.encrypts).toBe(2);
    expect(edksOf(ma)).not.toBe(edksOf(mb));
    await a.decrypt(ma);
    await b.decrypt(ma);
    expect(ring.decrypts).toBe(2);
    await a.decrypt(ma);
    await b.decrypt(ma);
    expect(ring.decrypts).toBe(2);
  });

  it('encrypt: looks in the cache first; a hit returns the cached materials without a keyring call, a miss calls the keyring and caches what it returns', async () => {
    const ring = counting();
    const envelope = new Envelope({ keyring: ring, cache: {} });
    const m1 = await envelope.encrypt('first');
    expect(envelope.stats()).toMatchObject({ encryptMisses: 1, encryptHits: 0, entries: 1 });
    const m2 = await envelope.encrypt('second');
    expect(ring.encrypts).toBe(1);
    expect(envelope.stats()).toMatchObject({ encryptMisses: 1, encryptHits: 1 });
    // The same data key (same EDKs), and each message decrypts to its own plaintext.
    expect(edksOf(m2)).toBe(edksOf(m1));
    const reader = new Envelope({ keyring: ring, cache: false });
    expect((await reader.decrypt(m1)).plaintext.toString()).toBe('first');
    expect((await reader.decrypt(m2)).plaintext.toString()).toBe('second');
  });

  it('decrypt: looks in the cache first; a hit returns the cached data key without a keyring call, a miss calls the keyring and caches what it returns', async () => {
    const ring = counting();
    const writer = new Envelope({ keyring: ring, cache: {} });
    const m1 = await writer.encrypt('first');
    const m2 = await writer.encrypt('second');
    const envelope = new Envelope({ keyring: ring, cache: {} });
    expect((await envelope.decrypt(m1)).plaintext.toString()).toBe('first');
    expect(ring.decrypts).toBe(1);
    expect(envelope.stats()).toMatchObject({ decryptMisses: 1, decryptHits: 0 });
    // m2 carries the same EDKs and context: served from the cache.
    expect((await envelope.decrypt(m2)).plaintext.toString()).toBe('second');
    expect(ring.decrypts).toBe(1);
    expect(envelope.stats()).toMatchObject({ decryptMisses: 1, decryptHits: 1 });
  });

  it('encrypt and decrypt entries are separate: decrypting a message just encrypted from the cache still calls the keyring once', async () => {
    const ring = counting();
    const envelope = new Envelope({ keyring: ring, cache: {} });
    const m = await envelope.encrypt('x');
    await envelope.encrypt('y');
    await envelope.decrypt(m);
    expect([ring.encrypts, ring.decrypts]).toEqual([1, 1]);
    expect(envelope.stats()).toMatchObject({ entries: 2 });
  });

  it('encrypt entries are kept apart by encryption context: another context is a miss, the same pairs in another order a hit', async () => {
    const ring = counting();
    const envelope = new Envelope({ keyring: ring, cache: {} });
    const a = await envelope.encrypt('x', { context: { t: '1', u: '2' } });
    const b = await envelope.encrypt('x', { context: { u: '2', t: '1' } });
    const c = await envelope.encrypt('x', { context: { t: '1', u: '3' } });
    const d = await envelope.encrypt('x', { context: { t: '1' } });
    const e = await envelope.encrypt('x');
    expect(ring.encrypts).toBe(4);
    expect(edksOf(b)).toBe(edksOf(a));
    expect(new Set([a, c, d, e].map(edksOf)).size).toBe(4);
  });

  it('decrypt entries are kept apart by the exact encrypted data keys and by the encryption context', async () => {
    const dataKey = randomBytes(32);
    const edk: EncryptedDataKey = { providerId: 'spec', providerInfo: Buffer.from('fixed'), ciphertext: randomBytes(48) };
    const writer = new Envelope({ keyring: fixed(dataKey, [edk]), cache: false });
    // Same EDKs, two contexts.
    const c1 = await writer.encrypt('one', { context: { t: '1' } });
    const c2 = await writer.encrypt('two', { context: { t: '2' } });
    // Same context, other EDKs (one more; one changed).
    const more = await new Envelope({ keyring: fixed(dataKey, [edk, { ...edk, providerInfo: Buffer.from('second') }]), cache: false }).encrypt('three', {
      context: { t: '1' },
    });
    const changed = await new Envelope({ keyring: fixed(dataKey, [{ ...edk, ciphertext: randomBytes(48) }]), cache: false }).encrypt('four', {
      context: { t: '1' },
    });
    const ring = counting(fixed(dataKey, [edk]));
    const envelope = new Envelope({ keyring: ring, cache: {} });
    for (const m of [c1, c2, more, changed]) await envelope.decrypt(m);
    expect(ring.decrypts).toBe(4);
    for (const m of [c1, c2, more, changed]) await envelope.decrypt(m);
    expect(ring.decrypts).toBe(4);
  });

  it('decrypt entries are kept apart by algorithm suite: a v1 0x0178 message and a v2 0x0478 message with the same EDKs and context are two entries', async () => {
    const key = randomBytes(32);
    const context = { t: '1' };
    const legacy = buildClient(CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT);
    const esdkRing = new RawAesKeyringNode({
      keyNamespace: 'spec',
      keyName: 'suite',
      unencryptedMasterKey: new Uint8Array(key),
      wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
      utf8Sorting: true,
    });
    const { result: v1 } = await legacy.encrypt(esdkRing, 'legacy', { suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA256, encryptionContext: context });
    const edks = parseHeader(v1, LIMITS)!.encryptedDataKeys;
    const ours = new RawAesKeyring({ keyNamespace: 'spec', keyName: 'suite', key });
    const dataKey = Buffer.from((await ours.onDecrypt({ suiteId: 0x0178, context, encryptedDataKeys: edks }))!);
    const v2 = await new Envelope({ keyring: fixed(dataKey, edks), cache: false }).encrypt('current', { context });
    expect(edksOf(v2)).toBe(edksOf(v1));
    const ring = counting(ours);
    const envelope = new Envelope({ keyring: ring, cache: {}, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' });
    expect((await envelope.decrypt(v1)).plaintext.toString()).toBe('legacy');
    expect((await envelope.decrypt(v2)).plaintext.toString()).toBe('current');
    expect(ring.decrypts).toBe(2);
    await envelope.decrypt(v1);
    await envelope.decrypt(v2);
    expect(ring.decrypts).toBe(2);
  });

  it('decrypt: data keys of identity-KDF suites (0x0014, 0x0046, 0x0078) are never cached: each decrypt calls the keyring, and nothing is stored', async () => {
    const key = randomBytes(32);
    const legacy = buildClient(CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT);
    const esdkRing = new RawAesKeyringNode({
      keyNamespace: 'spec',
      keyName: 'nokdf',
      unencryptedMasterKey: new Uint8Array(key),
      wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
      utf8Sorting: true,
    });
    const ring = counting(new RawAesKeyring({ keyNamespace: 'spec', keyName: 'nokdf', key }));
    const envelope = new Envelope({ keyring: ring, cache: {}, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' });
    const suites = [
      AlgorithmSuiteIdentifier.ALG_AES128_GCM_IV12_TAG16,
      AlgorithmSuiteIdentifier.ALG_AES192_GCM_IV12_TAG16,
      AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16,
    ];
    for (const suiteId of suites) {
      const { result } = await legacy.encrypt(esdkRing, 'no kdf', { suiteId, encryptionContext: { s: String(suiteId) } });
      const before = ring.decrypts;
      for (let i = 0; i < 3; i++) expect((await envelope.decrypt(result)).plaintext.toString()).toBe('no kdf');
      const chunks: Buffer[] = [];
      const stream = envelope.decryptStream();
      stream.on('data', (c: Buffer) => chunks.push(c));
      await new Promise<void>((resolve, reject) => stream.on('end', resolve).on('error', reject).end(result));
      expect(Buffer.concat(chunks).toString()).toBe('no kdf');
      expect(ring.decrypts - before).toBe(4);
    }
    expect(envelope.stats().entries).toBe(0);
    // A KDF suite of the same version is cached as usual.
    const { result: kdf } = await legacy.encrypt(esdkRing, 'kdf', { suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA256 });
    const before = ring.decrypts;
    await envelope.decrypt(kdf);
    await envelope.decrypt(kdf);
    expect(ring.decrypts - before).toBe(1);
  });
});
