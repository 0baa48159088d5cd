/**
 * Data keys are zeroed when they leave the cache, observed through the Envelope: the buffers the
 * Envelope actually encrypts and decrypts with are captured (encryptBuffer / deriveAndVerifyHeader
 * wrapped with vi.mock), shown to be the cached ones (the same object is reused on a hit), and read
 * back after a capacity eviction and after clearCache(): all zeros. DataKeyCache's own zeroing
 * (expiry, usage limits, clear, in-flight loads) is tested in test/cache/cache.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { Envelope } from '../../src/index.js';
import { CountingKeyring, rawKeyring } from './harness.js';

const seen = vi.hoisted(() => ({ encrypt: [] as Buffer[], decrypt: [] as Buffer[] }));

vi.mock('../../src/format/encrypt.js', async (importOriginal) => {
  const orig = await importOriginal<typeof import('../../src/format/encrypt.js')>();
  return {
    ...orig,
    encryptBuffer: (...args: Parameters<typeof orig.encryptBuffer>) => {
      seen.encrypt.push(args[1] as Buffer);
      return orig.encryptBuffer(...args);
    },
  };
});
vi.mock('../../src/format/decrypt.js', async (importOriginal) => {
  const orig = await importOriginal<typeof import('../../src/format/decrypt.js')>();
  return {
    ...orig,
    deriveAndVerifyHeader: (...args: Parameters<typeof orig.deriveAndVerifyHeader>) => {
      seen.decrypt.push(args[1] as Buffer);
      return orig.deriveAndVerifyHeader(...args);
    },
  };
});

/** One turn of the event loop: the cache zeroes evicted keys in a setImmediate. */
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const isZero = (b: Buffer) => b.length === 32 && b.every((x) => x === 0);

describe('Envelope cache: evicted data keys read as zeros', () => {
  it('encrypt and decrypt entries, evicted for capacity (maxEntries 1) and by clearCache()', async () => {
    const keyring = new CountingKeyring(rawKeyring());
    const envelope = new Envelope({ keyring, cache: { maxEntries: 1 } });
    const data = randomBytes(100);

    // Encrypt side: partition p=1 loads, then hits with the very same key buffer.
    const m1 = await envelope.encrypt(data, { context: { p: '1' } });
    await envelope.encrypt(data, { context: { p: '1' } });
    expect(keyring.encryptCalls).toBe(1);
    expect(seen.encrypt).toHaveLength(2);
    const cached1 = seen.encrypt[0]!;
    expect(seen.encrypt[1]).toBe(cached1); // the cached buffer itself, not a copy
    expect(cached1.equals(keyring.dataKeys[0]!)).toBe(true); // and it holds the keyring's data key
    // A second partition pushes p=1 out (one entry per side).
    const m2 = await envelope.encrypt(data, { context: { p: '2' } });
    const cached2 = seen.encrypt[2]!;
    await tick();
    expect(envelope.stats().evictions.capacity).toBe(1);
    expect(isZero(cached1)).toBe(true);
    expect(isZero(cached2)).toBe(false);

    // Decrypt side: m1 unwraps once, the hit reuses the same buffer, m2 evicts it.
    expect((await envelope.decrypt(m1)).plaintext.equals(data)).toBe(true);
    expect((await envelope.decrypt(m1)).plaintext.equals(data)).toBe(true);
    expect(keyring.decryptCalls).toBe(1);
    const dec1 = seen.decrypt[0]!;
    expect(seen.decrypt[1]).toBe(dec1);
    expect(dec1.equals(cached1)).toBe(false); // cached1 is zeros by now; dec1 holds the key
    expect(dec1.equals(keyring.dataKeys[0]!)).toBe(true);
    expect((await envelope.decrypt(m2)).plaintext.equals(data)).toBe(true);
    const dec2 = seen.decrypt[2]!;
    await tick();
    expect(isZero(dec1)).toBe(true);
    expect(isZero(dec2)).toBe(false);

    // clearCache() zeroes what is left on both sides.
    envelope.clearCache();
    await tick();
    expect(isZero(cached2)).toBe(true);
    expect(isZero(dec2)).toBe(true);
    expect(envelope.stats().evictions.cleared).toBe(2);
    // And the Envelope still works after a clear: fresh keys, fresh buffers.
    expect((await envelope.decrypt(m2)).plaintext.equals(data)).toBe(true);
    expect(isZero(seen.decrypt[3]!)).toBe(false);
  });
});
