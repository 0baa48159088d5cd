/**
 * Review finding 4: intermediate copies of key material were left in memory unwiped.
 * - RawAesKeyring.onDecrypt concatenated the decipher output into a new buffer and dropped the
 *   original, which held the unwrapped data key; when the tag failed (another context, another
 *   key of the same name) the GCM output of the data key's ciphertext was dropped unwiped as well
 *   (with only the AAD different, that output IS the data key).
 * - HKDF: the unused tail of a single-block HKDF-Expand output (legacy suites with a key shorter
 *   than the hash: 0x0114, 0x0146, 0x0214, 0x0346, 0x0378) stayed in the memory behind the
 *   returned key, and the tail of the commitment block (HKDF-Expand output bytes 32..63) likewise.
 * - MultiKeyring: a child handed the data key may return a copy of it; that copy was compared and
 *   dropped unwiped (also when the child returned another key, or the generator a key of the
 *   wrong length).
 * Every buffer that held key material and is not handed to a caller is zeroed, on error paths too.
 * The data key a keyring returns belongs to the Envelope, which zeroes it (key-ownership.test.ts).
 *
 * Spying: node:crypto is wrapped so that every decipher output and HMAC digest made while a probe
 * is recording is kept by reference and read back after the call.
 */
import * as realCrypto from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';

const spy = vi.hoisted(() => ({ recording: false, outputs: [] as Buffer[], failCipher: false, failSign: false }));
vi.mock('node:crypto', async (importOriginal) => {
  const orig = await importOriginal<typeof import('node:crypto')>();
  const keep = (b: Buffer): Buffer => {
    if (spy.recording) spy.outputs.push(b);
    return b;
  };
  const createDecipheriv = ((...args: Parameters<typeof orig.createDecipheriv>) => {
    const d = orig.createDecipheriv(...args);
    const update = d.update.bind(d) as (data: Uint8Array) => Buffer;
    const final = d.final.bind(d) as () => Buffer;
    (d as unknown as { update: unknown }).update = (data: Uint8Array) => keep(update(data));
    (d as unknown as { final: unknown }).final = () => keep(final());
    return d;
  }) as typeof orig.createDecipheriv;
  const createHmac = ((...args: Parameters<typeof orig.createHmac>) => {
    const h = orig.createHmac(...args);
    const digest = h.digest.bind(h) as () => Buffer;
    (h as unknown as { digest: unknown }).digest = () => keep(digest());
    return h;
  }) as typeof orig.createHmac;
  // Failure injection: the next createCipheriv / createSign throws (an OpenSSL failure stand-in).
  const createCipheriv = ((...args: Parameters<typeof orig.createCipheriv>) => {
    if (spy.failCipher) throw new Error('injected cipher failure');
    return orig.createCipheriv(...args);
  }) as typeof orig.createCipheriv;
  const createSign = ((...args: Parameters<typeof orig.createSign>) => {
    if (spy.failSign) throw new Error('injected signer failure');
    return orig.createSign(...args);
  }) as typeof orig.createSign;
  const mocked = { ...orig, createDecipheriv, createHmac, createCipheriv, createSign };
  return { ...mocked, default: mocked };
});

import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Envelope, MultiKeyring, RawAesKeyring, type Keyring, type KeyringEncryptInput } from '../../src/index.js';
import { deriveAndCheckCommitment, deriveCommittedKey, deriveLegacyKey } from '../../src/crypto/hkdf.js';
import { SUITES } from '../../src/format/suites.js';

const { randomBytes } = realCrypto;

afterEach(() => {
  spy.failCipher = false;
  spy.failSign = false;
  spy.recording = false;
  spy.outputs.length = 0;
});

/** Runs `fn` while recording decipher outputs and HMAC digests. */
async function recording<T>(fn: () => T | Promise<T>): Promise<T> {
  spy.recording = true;
  try {
    return await fn();
  } finally {
    spy.recording = false;
  }
}

/** The whole memory of each buffer (not only its view): a dropped tail is key material too. */
const whole = (b: Uint8Array): Uint8Array => new Uint8Array(b.buffer, 0, b.buffer.byteLength);
const isZero = (b: Uint8Array): boolean => b.every((x) => x === 0);

describe('RawAesKeyring.onDecrypt wipes the decipher output it does not return', () => {
  const keyring = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: randomBytes(32) });
  const suiteId = 0x0478;

  it('success: after the owner zeroes the returned key, no decipher output holds key bytes', async () => {
    const out = await keyring.onEncrypt({ suiteId, context: { a: 'b' } });
    const expected = Buffer.from(out.dataKey);
    const key = await recording(() => keyring.onDecrypt({ suiteId, context: { a: 'b' }, encryptedDataKeys: out.encryptedDataKeys }));
    expect(Buffer.from(key!)).toEqual(expected);
    expect(spy.outputs.length).toBeGreaterThan(0);
    key!.fill(0); // what the Envelope does with the key it owns
    for (const b of spy.outputs) expect(isZero(whole(b))).toBe(true);
  });

  it('tag failure (another context): the unauthenticated output, which is the data key, is wiped', async () => {
    const out = await keyring.onEncrypt({ suiteId, context: { a: 'b' } });
    const key = await recording(() => keyring.onDecrypt({ suiteId, context: { a: 'other' }, encryptedDataKeys: out.encryptedDataKeys }));
    expect(key).toBeUndefined();
    expect(spy.outputs.length).toBeGreaterThan(0);
    for (const b of spy.outputs) expect(isZero(whole(b))).toBe(true);
  });

  it('through an uncached Envelope: every decipher output of the keyring call is zero after decrypt', async () => {
    const message = await new Envelope({ keyring, cache: false }).encrypt('payload');
    let window: Buffer[] = [];
    const probe: Keyring = {
      onEncrypt: (input) => keyring.onEncrypt(input),
      onDecrypt: async (input) => {
        const key = await recording(() => keyring.onDecrypt(input));
        window = [...spy.outputs];
        return key;
      },
    };
    const { plaintext } = await new Envelope({ keyring: probe, cache: false }).decrypt(message);
    expect(plaintext.toString()).toBe('payload');
    expect(window.length).toBeGreaterThan(0);
    for (const b of window) expect(isZero(whole(b))).toBe(true);
  });
});

describe('HKDF derivation leaves no key material behind but what it returns', () => {
  const messageId = randomBytes(32);

  it('deriveCommittedKey (0x0478, 0x0578): PRK, the expand block tails and the commitment block tail are zero', async () => {
    for (const id of [0x0478, 0x0578]) {
      spy.outputs.length = 0;
      const suite = SUITES.get(id)!;
      const { key, commitment } = await recording(() => deriveCommittedKey(suite, randomBytes(32), messageId));
      expect(spy.outputs).toHaveLength(3); // extract, expand (key), expand (commitment)
      key.fill(0);
      for (const b of spy.outputs) {
        // Only the commitment (public: it is written into the header) may remain.
        const mem = whole(b);
        if (b.buffer === commitment.buffer) {
          expect(isZero(mem.subarray(0, commitment.byteOffset))).toBe(true);
          expect(isZero(mem.subarray(commitment.byteOffset + commitment.length))).toBe(true);
        } else {
          expect(isZero(mem)).toBe(true);
        }
      }
    }
  });

  it('deriveAndCheckCommitment, mismatch: nothing derived remains', async () => {
    const suite = SUITES.get(0x0478)!;
    await expect(recording(() => deriveAndCheckCommitment(suite, randomBytes(32), messageId, randomBytes(32)))).rejects.toMatchObject({
      code: 'ERR_COMMITMENT_MISMATCH',
    });
    expect(spy.outputs).toHaveLength(3);
    for (const b of spy.outputs) {
      // The commitment computed for the wrong key: not secret, but nothing else may remain.
      const mem = whole(b);
      expect(isZero(mem.subarray(32))).toBe(true);
    }
    expect(isZero(whole(spy.outputs[0]!))).toBe(true); // PRK
    expect(isZero(whole(spy.outputs[1]!))).toBe(true); // encryption key block
  });

  for (const id of [0x0114, 0x0146, 0x0178, 0x0214, 0x0346, 0x0378]) {
    it(`deriveLegacyKey 0x${id.toString(16).padStart(4, '0')}: PRK and the unused tail of the expand block are zero`, async () => {
      const suite = SUITES.get(id)!;
      const key = await recording(() => deriveLegacyKey(suite, randomBytes(suite.keyLength), randomBytes(16)));
      expect(key.length).toBe(suite.keyLength);
      expect(spy.outputs).toHaveLength(2); // extract, expand
      key.fill(0);
      for (const b of spy.outputs) expect(isZero(whole(b))).toBe(true);
    });
  }
});

describe('MultiKeyring wipes data key copies handed back by its keyrings', () => {
  const suiteId = 0x0478;
  const aes = (name: string): RawAesKeyring => new RawAesKeyring({ keyNamespace: 'ns', keyName: name, key: randomBytes(32) });

  /** A child that wraps like `inner` but returns `answer(dataKey)` as the data key, recorded. */
  function copying(inner: Keyring, answer: (dataKey: Uint8Array) => Uint8Array, seen: Uint8Array[]): Keyring {
    return {
      onEncrypt: async (input: KeyringEncryptInput) => {
        const out = await inner.onEncrypt(input);
        const dataKey = answer(out.dataKey);
        seen.push(dataKey);
        return { dataKey, encryptedDataKeys: out.encryptedDataKeys };
      },
      onDecrypt: (input) => inner.onDecrypt(input),
    };
  }

  it('a child returning a copy of the data key: the copy is zeroed, the key itself is not, the message decrypts', async () => {
    const seen: Uint8Array[] = [];
    const child = aes('c');
    for (const copy of [(k: Uint8Array) => Buffer.from(k), (k: Uint8Array) => new Uint8Array(k)]) {
      seen.length = 0;
      const multi = new MultiKeyring({ generator: aes('g'), children: [copying(child, copy, seen)] });
      const out = await multi.onEncrypt({ suiteId, context: {} });
      expect(seen).toHaveLength(1);
      expect(seen[0]).not.toBe(out.dataKey);
      expect(isZero(seen[0]!)).toBe(true);
      expect(isZero(out.dataKey)).toBe(false);
      const key = await child.onDecrypt({ suiteId, context: {}, encryptedDataKeys: out.encryptedDataKeys });
      expect(Buffer.from(key!)).toEqual(Buffer.from(out.dataKey));
    }
    // Through an Envelope: the message decrypts with the child alone.
    const multi = new MultiKeyring({ generator: aes('g'), children: [copying(child, (k) => Buffer.from(k), seen)] });
    const message = await new Envelope({ keyring: multi, cache: false }).encrypt('payload');
    expect((await new Envelope({ keyring: child, cache: false }).decrypt(message)).plaintext.toString()).toBe('payload');
  });

  it('a child returning the very same buffer (or a view of it) keeps it intact', async () => {
    const seen: Uint8Array[] = [];
    const view = (k: Uint8Array): Uint8Array => new Uint8Array(k.buffer, k.byteOffset, k.byteLength);
    for (const same of [(k: Uint8Array) => k, view]) {
      const multi = new MultiKeyring({ generator: aes('g'), children: [copying(aes('c'), same, seen)] });
      const out = await multi.onEncrypt({ suiteId, context: {} });
      expect(isZero(out.dataKey)).toBe(false);
    }
  });

  it('a child replacing the data key: its key and the generated key are both zeroed, ERR_KEYRING', async () => {
    const seen: Uint8Array[] = [];
    const generated: Uint8Array[] = [];
    const multi = new MultiKeyring({
      generator: copying(aes('g'), (k) => k, generated),
      children: [copying(aes('c'), () => randomBytes(32), seen)],
    });
    await expect(multi.onEncrypt({ suiteId, context: {} })).rejects.toMatchObject({ code: 'ERR_KEYRING' });
    expect(isZero(seen[0]!)).toBe(true);
    expect(isZero(generated[0]!)).toBe(true);
  });

  it('a generator returning a key of the wrong length: that key is zeroed, ERR_KEYRING', async () => {
    const generated: Uint8Array[] = [];
    const multi = new MultiKeyring({ generator: copying(aes('g'), (k) => Buffer.concat([k, k]), generated) });
    await expect(multi.onEncrypt({ suiteId, context: {} })).rejects.toMatchObject({ code: 'ERR_KEYRING' });
    expect(isZero(generated[0]!)).toBe(true);
  });
});

describe('a failure right after the per-message key is derived leaves no derived key behind', () => {
  /** Hands out the inner keyring's key, then arms `arm` and starts recording HMAC digests. */
  const arming = (arm: () => void): Keyring => {
    const inner = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: randomBytes(32) });
    return {
      onEncrypt: async (input) => {
        const out = await inner.onEncrypt(input);
        arm();
        spy.recording = true;
        return out;
      },
      onDecrypt: (input) => inner.onDecrypt(input),
    };
  };

  it('encrypt: the header cipher fails; the derived key and PRK are zero', async () => {
    const e = new Envelope({ keyring: arming(() => (spy.failCipher = true)), cache: false });
    await expect(e.encrypt('payload')).rejects.toThrow('injected cipher failure');
    spy.recording = false;
    expect(spy.outputs).toHaveLength(3);
    for (const b of spy.outputs.slice(0, 2)) expect(isZero(whole(b))).toBe(true);
  });

  it('encryptStream (signed suite): the signer fails after the header is written; the derived key and PRK are zero', async () => {
    const e = new Envelope({ keyring: arming(() => (spy.failSign = true)), cache: false, suite: 0x0578 });
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    await expect(pipeline(Readable.from([Buffer.from('payload')]), e.encryptStream(), sink)).rejects.toThrow('injected signer failure');
    spy.recording = false;
    expect(spy.outputs).toHaveLength(3);
    for (const b of spy.outputs.slice(0, 2)) expect(isZero(whole(b))).toBe(true);
  });
});
