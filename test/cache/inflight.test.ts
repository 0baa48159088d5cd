/**
 * Issue 10, hole 7 (cache edge cases): keyring calls in flight.
 *
 * - clearCache() detaches the loads in flight: the callers already waiting on one are still served,
 *   but a caller arriving after clearCache() starts a load of its own.
 * - A burst that the usage limits (maxMessagesPerKey, maxBytesPerKey) split across several data keys
 *   loads those keys in parallel, not one after another. Asserted on the keyring's peak concurrency
 *   and call count, never on time.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { DataKeyCache, resolveCacheOptions, type CachedEncryption, type ResolvedCacheOptions } from '../../src/cache/index.js';
import {
  Envelope,
  RawAesKeyring,
  type Keyring,
  type KeyringDecryptInput,
  type KeyringEncryptInput,
  type KeyringEncryptOutput,
} from '../../src/index.js';

/** A raw AES keyring whose calls wait until the test releases them (or answer at once once `open`). */
class GatedKeyring implements Keyring {
  readonly inner = new RawAesKeyring({ keyNamespace: 'gate', keyName: 'k', key: randomBytes(32) });
  readonly waiting: Array<() => void> = [];
  /** The encrypted data key of each onEncrypt call, in call order. */
  readonly edks: Buffer[] = [];
  encryptCalls = 0;
  decryptCalls = 0;
  open = false;
  private gate(): Promise<void> {
    return this.open ? Promise.resolve() : new Promise((resolve) => this.waiting.push(resolve));
  }
  /** Lets every waiting call go, and every later one. */
  release(): void {
    this.open = true;
    for (const go of this.waiting.splice(0)) go();
  }
  async onEncrypt(input: KeyringEncryptInput): Promise<KeyringEncryptOutput> {
    this.encryptCalls++;
    const out = await this.inner.onEncrypt(input);
    this.edks.push(Buffer.from(out.encryptedDataKeys[0]!.ciphertext));
    await this.gate();
    return out;
  }
  async onDecrypt(input: KeyringDecryptInput): Promise<Uint8Array | undefined> {
    this.decryptCalls++;
    await this.gate();
    return this.inner.onDecrypt(input);
  }
}

/** A raw AES keyring that takes `ms` per call and records its peak concurrency. */
class SlowKeyring implements Keyring {
  readonly inner = new RawAesKeyring({ keyNamespace: 'slow', keyName: 'k', key: randomBytes(32) });
  calls = 0;
  active = 0;
  peak = 0;
  constructor(readonly ms: number) {}
  async onEncrypt(input: KeyringEncryptInput): Promise<KeyringEncryptOutput> {
    this.calls++;
    this.peak = Math.max(this.peak, ++this.active);
    try {
      await sleep(this.ms);
      return await this.inner.onEncrypt(input);
    } finally {
      this.active--;
    }
  }
  async onDecrypt(input: KeyringDecryptInput): Promise<Uint8Array | undefined> {
    return this.inner.onDecrypt(input);
  }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('clearCache() detaches keyring calls in flight', () => {
  it('encrypt: a caller arriving after clearCache() never gets a key loaded before it', async () => {
    const keyring = new GatedKeyring();
    const e = new Envelope({ keyring });
    const before = e.encrypt('before');
    await turn();
    expect(keyring.encryptCalls).toBe(1);
    e.clearCache();
    const after = e.encrypt('after');
    await turn();
    keyring.release();
    const [m1, m2] = await Promise.all([before, after]);
    expect(keyring.encryptCalls).toBe(2);
    // The waiter from before the clear got the first key; the caller after it, the second.
    expect(m1.includes(keyring.edks[0]!)).toBe(true);
    expect(m2.includes(keyring.edks[1]!)).toBe(true);
    expect(m2.includes(keyring.edks[0]!)).toBe(false);
    // The load from before the clear is not cached; the one started after it is.
    await e.encrypt('next');
    expect(keyring.encryptCalls).toBe(2);
    const reader = new Envelope({ keyring: keyring.inner });
    expect((await reader.decrypt(m2)).plaintext.toString()).toBe('after');
  });

  it('encrypt: callers already waiting when clearCache() runs are still served by their load', async () => {
    const keyring = new GatedKeyring();
    const e = new Envelope({ keyring });
    const waiting = [e.encrypt('a'), e.encrypt('b'), e.encrypt('c')];
    await turn();
    e.clearCache();
    keyring.release();
    const messages = await Promise.all(waiting);
    expect(keyring.encryptCalls).toBe(1);
    for (const m of messages) expect(m.includes(keyring.edks[0]!)).toBe(true);
    // That load was not cached: the next message loads again.
    await e.encrypt('d');
    expect(keyring.encryptCalls).toBe(2);
  });

  it('decrypt: a caller arriving after clearCache() starts its own unwrap', async () => {
    const keyring = new GatedKeyring();
    keyring.open = true;
    const message = await new Envelope({ keyring, cache: false }).encrypt('m');
    keyring.open = false;
    const reader = new Envelope({ keyring });
    const before = reader.decrypt(message);
    await turn();
    expect(keyring.decryptCalls).toBe(1);
    reader.clearCache();
    const after = reader.decrypt(message);
    await turn();
    keyring.release();
    const [r1, r2] = await Promise.all([before, after]);
    expect(r1.plaintext.toString()).toBe('m');
    expect(r2.plaintext.toString()).toBe('m');
    expect(keyring.decryptCalls).toBe(2);
  });

  it('DataKeyCache.clear(): loadEncrypt and loadDecrypt after clear() start new loads', async () => {
    const cache = new DataKeyCache<CachedEncryption>(resolveCacheOptions({}) as ResolvedCacheOptions);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let loads = 0;
    const load = async (): Promise<CachedEncryption> => {
      const n = ++loads;
      await gate;
      return { dataKey: Buffer.alloc(32, n) };
    };
    const unwrap = async (): Promise<Buffer> => {
      const n = ++loads;
      await gate;
      return Buffer.alloc(32, n);
    };
    const e1 = cache.loadEncrypt('p', 1, load);
    const d1 = cache.loadDecrypt('k', unwrap);
    cache.clear();
    const e2 = cache.loadEncrypt('p', 1, load);
    const d2 = cache.loadDecrypt('k', unwrap);
    release();
    const [a, b, c, d] = await Promise.all([e1, e2, d1, d2]);
    expect(loads).toBe(4);
    expect(a.materials.dataKey[0]).toBe(1);
    expect(b.materials.dataKey[0]).toBe(3);
    expect(c[0]).toBe(2);
    expect(d[0]).toBe(4);
  });
});

describe('a burst split across several keys by the usage limits loads them in parallel', () => {
  it('20 concurrent encrypts with maxMessagesPerKey 1: 20 keyring calls, all at once', async () => {
    const keyring = new SlowKeyring(50);
    const e = new Envelope({ keyring, cache: { maxMessagesPerKey: 1 } });
    const messages = await Promise.all(Array.from({ length: 20 }, (_, i) => e.encrypt(`m${i}`)));
    expect(keyring.calls).toBe(20);
    expect(keyring.peak).toBe(20);
    const reader = new Envelope({ keyring: keyring.inner, cache: false });
    for (let i = 0; i < 20; i++) expect((await reader.decrypt(messages[i]!)).plaintext.toString()).toBe(`m${i}`);
  });

  it('20 concurrent 300-byte encrypts with maxBytesPerKey 1000: 7 keyring calls, all at once', async () => {
    const keyring = new SlowKeyring(50);
    const e = new Envelope({ keyring, cache: { maxBytesPerKey: 1000 } });
    await Promise.all(Array.from({ length: 20 }, () => e.encrypt(Buffer.alloc(300))));
    // Three 300-byte messages fit under one key (900 <= 1000), so 20 messages need 7 keys.
    expect(keyring.calls).toBe(7);
    expect(keyring.peak).toBe(7);
  });

  it('a burst within one key still makes a single call (single-flight kept)', async () => {
    const keyring = new SlowKeyring(20);
    const e = new Envelope({ keyring, cache: { maxMessagesPerKey: 100 } });
    await Promise.all(Array.from({ length: 100 }, () => e.encrypt('x')));
    expect(keyring.calls).toBe(1);
    await Promise.all(Array.from({ length: 250 }, () => e.encrypt('x')));
    expect(keyring.calls).toBe(4); // 100 used up the first key; 250 more need 3 more keys
    expect(keyring.peak).toBe(3);
  });

  it('DataKeyCache: each parallel load serves at most its budget of messages and bytes', async () => {
    const cache = new DataKeyCache<CachedEncryption & { serial: number }>(
      resolveCacheOptions({ maxMessagesPerKey: 4, maxBytesPerKey: 100 }) as ResolvedCacheOptions,
    );
    let active = 0;
    let peak = 0;
    let serial = 0;
    const load = async () => {
      const n = ++serial;
      peak = Math.max(peak, ++active);
      await sleep(10);
      active--;
      return { dataKey: Buffer.alloc(32, n), serial: n };
    };
    // 10 messages of 30 bytes: 3 fit under one key by bytes (90), so 4 keys; then 8 of 1 byte: 4 per key.
    const sizes = [...Array(10).fill(30), ...Array(8).fill(1)] as number[];
    const results = await Promise.all(sizes.map((bytes) => cache.loadEncrypt('p', bytes, load)));
    const perKey = new Map<number, { messages: number; bytes: number }>();
    results.forEach((r, i) => {
      const u = perKey.get(r.materials.serial) ?? { messages: 0, bytes: 0 };
      u.messages++;
      u.bytes += sizes[i]!;
      perKey.set(r.materials.serial, u);
    });
    for (const u of perKey.values()) {
      expect(u.messages).toBeLessThanOrEqual(4);
      expect(u.bytes).toBeLessThanOrEqual(100);
    }
    expect(serial).toBe(perKey.size);
    expect(peak).toBe(serial); // every key of the burst was loaded at the same time
    expect(serial).toBeLessThanOrEqual(6);
  });
});
