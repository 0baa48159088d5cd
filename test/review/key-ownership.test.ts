/**
 * Issue 10, hole 6 (key hygiene). The Envelope takes ownership of the data key a keyring returns
 * (DESIGN.md, Keyring interface, and src/keyring-call.ts): it copies the key into a buffer of its
 * own (never a slice of Node's shared Buffer pool) and zeroes the keyring's bytes at once; its own
 * copy is zeroed when its life ends: at once when uncached, on eviction, expiry, usage exhaustion
 * or clearCache() when cached. It refuses an all-zero data key (ERR_KEYRING), so a keyring that
 * hands out a buffer it keeps fails loudly instead of encrypting under zeros (and two cache entries
 * never share one buffer). Buffer decrypt destroys its derived message key.
 *
 * Every buffer a keyring hands out is kept by reference and read back afterwards, and so is every
 * copy the Envelope takes (takeDataKey, wrapped below).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  Envelope,
  KmsKeyring,
  MultiKeyring,
  RawAesKeyring,
  RawRsaKeyring,
  type EnvelopeOptions,
  type Keyring,
  type KeyringDecryptInput,
  type KeyringEncryptInput,
  type KeyringEncryptOutput,
} from '../../src/index.js';
import type { DecryptionKey } from '../../src/format/decrypt.js';
import { LocalKms, startLocalKmsServer } from '../../src/local-kms/index.js';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';

// Every per-message key buffer decrypt derives, captured to read back after the call.
const derived = vi.hoisted(() => [] as DecryptionKey[]);
vi.mock('../../src/format/decrypt.js', async (importOriginal) => {
  const orig = await importOriginal<typeof import('../../src/format/decrypt.js')>();
  return {
    ...orig,
    deriveAndVerifyHeader: (...args: Parameters<typeof orig.deriveAndVerifyHeader>) => {
      const key = orig.deriveAndVerifyHeader(...args);
      derived.push(key);
      return key;
    },
  };
});

// Every data key copy the Envelope takes from a keyring (takeDataKey), to read back after the call.
const owned = vi.hoisted(() => [] as Buffer[]);
vi.mock('../../src/keyring-call.js', async (importOriginal) => {
  const orig = await importOriginal<typeof import('../../src/keyring-call.js')>();
  return {
    ...orig,
    takeDataKey: (...args: Parameters<typeof orig.takeDataKey>) => {
      const key = orig.takeDataKey(...args);
      owned.push(key);
      return key;
    },
  };
});

/** One turn of the event loop: the cache zeroes keys that left it in a setImmediate. */
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const isZero = (b: Uint8Array): boolean => b.length > 0 && b.every((x) => x === 0);

/** Wraps a keyring and keeps every data key buffer it hands out, by reference. */
class HandOverKeyring implements Keyring {
  readonly handedOut: Uint8Array[] = [];
  constructor(readonly inner: Keyring = new RawAesKeyring({ keyNamespace: 'own', keyName: 'k', key: randomBytes(32) })) {}
  async onEncrypt(input: KeyringEncryptInput): Promise<KeyringEncryptOutput> {
    const out = await this.inner.onEncrypt(input);
    this.handedOut.push(out.dataKey);
    return out;
  }
  async onDecrypt(input: KeyringDecryptInput): Promise<Uint8Array | undefined> {
    const key = await this.inner.onDecrypt(input);
    if (key !== undefined) this.handedOut.push(key);
    return key;
  }
}

function envelope(keyring: Keyring, options: Omit<EnvelopeOptions, 'keyring'> = {}): Envelope {
  return new Envelope({ keyring, ...options });
}

describe('uncached: the keyring buffer is zeroed as soon as the message is done', () => {
  it('encrypt with cache: false zeroes the data key the keyring handed over', async () => {
    const keyring = new HandOverKeyring();
    const e = envelope(keyring, { cache: false });
    const messages = [await e.encrypt('one'), await e.encrypt('two', { context: { a: 'b' } })];
    expect(keyring.handedOut).toHaveLength(2);
    for (const key of keyring.handedOut) expect(isZero(key)).toBe(true);
    // The messages were written under the real keys: another reader decrypts them.
    const reader = envelope(keyring.inner, { cache: false });
    expect((await reader.decrypt(messages[0]!)).plaintext.toString()).toBe('one');
    expect((await reader.decrypt(messages[1]!)).plaintext.toString()).toBe('two');
  });

  it('decrypt with cache: false zeroes the unwrapped data key the keyring handed over', async () => {
    const keyring = new HandOverKeyring();
    const message = await envelope(keyring.inner).encrypt('secret');
    const e = envelope(keyring, { cache: false });
    expect((await e.decrypt(message)).plaintext.toString()).toBe('secret');
    expect((await e.decrypt(message)).plaintext.toString()).toBe('secret');
    expect(keyring.handedOut).toHaveLength(2);
    for (const key of keyring.handedOut) expect(isZero(key)).toBe(true);
  });

  it('encryptStream and decryptStream with cache: false zero the keyring buffers', async () => {
    const keyring = new HandOverKeyring();
    const e = envelope(keyring, { cache: false });
    const chunks: Buffer[] = [];
    const sink = () =>
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          chunks.push(chunk);
          cb();
        },
      });
    await pipeline(Readable.from([Buffer.from('streamed')]), e.encryptStream(), sink());
    const message = Buffer.concat(chunks.splice(0));
    await pipeline(Readable.from([message]), e.decryptStream(), sink());
    expect(Buffer.concat(chunks).toString()).toBe('streamed');
    expect(keyring.handedOut).toHaveLength(2);
    for (const key of keyring.handedOut) expect(isZero(key)).toBe(true);
  });

  it('buffer decrypt zeroes its derived message key, cached or not, success or failure', async () => {
    const keyring = new HandOverKeyring();
    const message = await envelope(keyring.inner).encrypt('x'.repeat(100));
    const tampered = Buffer.from(message);
    tampered[tampered.length - 1]! ^= 1; // last byte of the final frame's tag
    for (const cache of [undefined, false] as const) {
      const e = envelope(keyring, cache === false ? { cache } : {});
      derived.length = 0;
      await e.decrypt(message);
      await e.decrypt(message);
      await expect(e.decrypt(tampered)).rejects.toMatchObject({ code: 'ERR_DECRYPTION_FAILED' });
      expect(derived).toHaveLength(3);
      for (const key of derived) expect(isZero(key.bytes)).toBe(true);
    }
  });
});

describe("cached: the Envelope's own copy is what the cache holds, and it is zeroed when it leaves", () => {
  // The keyring's buffers are zeroed as soon as they are taken; the cache holds the copies.
  const keyringBuffersZeroed = (keyring: HandOverKeyring): void => {
    expect(keyring.handedOut.length).toBeGreaterThan(0);
    for (const key of keyring.handedOut) expect(isZero(key)).toBe(true);
  };

  it('encrypt entry evicted for capacity, then clearCache()', async () => {
    owned.length = 0;
    const keyring = new HandOverKeyring();
    const e = envelope(keyring, { cache: { maxEntries: 1 } });
    await e.encrypt('a', { context: { p: '1' } });
    await e.encrypt('b', { context: { p: '1' } }); // a hit on the same key
    await e.encrypt('c', { context: { p: '2' } }); // pushes p=1 out
    await tick();
    expect(owned).toHaveLength(2);
    expect(isZero(owned[0]!)).toBe(true);
    expect(isZero(owned[1]!)).toBe(false); // still cached, still in use
    keyringBuffersZeroed(keyring); // the keyring's own bytes were wiped when they were taken
    for (const key of owned) expect(key.buffer.byteLength).toBe(32); // not a slice of a shared pool
    e.clearCache();
    await tick();
    expect(isZero(owned[1]!)).toBe(true);
  });

  it('encrypt entry expired (injected clock)', async () => {
    owned.length = 0;
    let now = 0;
    const keyring = new HandOverKeyring();
    const e = envelope(keyring, { cache: { maxAgeMs: 1000, clock: () => now } });
    await e.encrypt('a');
    now = 1000;
    await e.encrypt('b'); // the first entry is expired: removed, and a new key loaded
    await tick();
    expect(owned).toHaveLength(2);
    expect(isZero(owned[0]!)).toBe(true);
    expect(isZero(owned[1]!)).toBe(false);
  });

  it('encrypt entry used up (maxMessagesPerKey, maxBytesPerKey)', async () => {
    owned.length = 0;
    const keyring = new HandOverKeyring();
    const byMessages = envelope(keyring, { cache: { maxMessagesPerKey: 2 } });
    await byMessages.encrypt('a');
    await byMessages.encrypt('b');
    const byBytes = envelope(keyring, { cache: { maxBytesPerKey: 10 } });
    await byBytes.encrypt(Buffer.alloc(10));
    await tick();
    expect(owned).toHaveLength(2);
    for (const key of owned) expect(isZero(key)).toBe(true);
  });

  it('decrypt entries evicted for capacity, expired, and cleared', async () => {
    owned.length = 0;
    let now = 0;
    const keyring = new HandOverKeyring();
    const writer = envelope(keyring.inner, { cache: false });
    const [m1, m2, m3] = [await writer.encrypt('1'), await writer.encrypt('2'), await writer.encrypt('3')];
    owned.length = 0;
    const e = envelope(keyring, { cache: { maxEntries: 1, maxAgeMs: 1000, clock: () => now } });
    await e.decrypt(m1);
    await e.decrypt(m1); // hit
    await e.decrypt(m2); // evicts m1's key for capacity
    await tick();
    expect(owned).toHaveLength(2);
    expect(isZero(owned[0]!)).toBe(true);
    expect(isZero(owned[1]!)).toBe(false);
    now = 1000;
    await e.decrypt(m3); // m2's key has expired
    await tick();
    expect(isZero(owned[1]!)).toBe(true);
    expect(isZero(owned[2]!)).toBe(false);
    e.clearCache();
    await tick();
    expect(isZero(owned[2]!)).toBe(true);
  });

  it('a stream from the cache gets its own copy; the cached key lives on until it leaves', async () => {
    owned.length = 0;
    const keyring = new HandOverKeyring();
    const e = envelope(keyring);
    const message = await e.encrypt('m');
    const out: Buffer[] = [];
    await pipeline(
      Readable.from([message]),
      e.decryptStream(),
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          out.push(chunk);
          cb();
        },
      }),
    );
    expect(Buffer.concat(out).toString()).toBe('m');
    await tick();
    expect(owned.some((k) => isZero(k))).toBe(false); // both still cached
    keyringBuffersZeroed(keyring);
    expect((await e.decrypt(message)).plaintext.toString()).toBe('m'); // a hit, on an intact key
    e.clearCache();
    await tick();
    for (const key of owned) expect(isZero(key)).toBe(true);
  });
});

describe('all-zero data keys are refused (ERR_KEYRING)', () => {
  const edk = { providerId: 'zero', providerInfo: Buffer.from('k'), ciphertext: Buffer.alloc(8, 1) };

  it('from onEncrypt, cached or not', async () => {
    const keyring: Keyring = {
      onEncrypt: async () => ({ dataKey: new Uint8Array(32), encryptedDataKeys: [edk] }),
      onDecrypt: async () => undefined,
    };
    for (const cache of [undefined, false] as const) {
      const e = envelope(keyring, cache === false ? { cache } : {});
      await expect(e.encrypt('x')).rejects.toMatchObject({ code: 'ERR_KEYRING' });
      await expect(e.encrypt('x', { context: { a: 'b' } })).rejects.toMatchObject({ code: 'ERR_KEYRING' });
    }
  });

  it('from onDecrypt, cached or not', async () => {
    const message = await envelope(new HandOverKeyring()).encrypt('x');
    const keyring: Keyring = {
      onEncrypt: async () => {
        throw new Error('unused');
      },
      onDecrypt: async () => Buffer.alloc(32),
    };
    for (const cache of [undefined, false] as const) {
      const e = envelope(keyring, cache === false ? { cache } : {});
      await expect(e.decrypt(message)).rejects.toMatchObject({ code: 'ERR_KEYRING' });
    }
  });

  it('a custom keyring that hands out a buffer it keeps fails loudly on its next call', async () => {
    const kept = randomBytes(32);
    const keyring: Keyring = {
      onEncrypt: async () => ({ dataKey: kept, encryptedDataKeys: [edk] }),
      onDecrypt: async () => kept,
    };
    const e = envelope(keyring, { cache: false });
    await e.encrypt('first'); // takes `kept`, uses it, zeroes it
    expect(isZero(kept)).toBe(true);
    await expect(e.encrypt('second')).rejects.toMatchObject({ code: 'ERR_KEYRING' });
  });
});

describe('the bundled keyrings hand over fresh buffers (zeroing one breaks nothing)', () => {
  const local = new LocalKms();
  let keyArn: string;
  beforeAll(async () => {
    keyArn = (await local.createKey({})).arn;
  });
  afterAll(() => local.close());

  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const aes = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'aes', key: randomBytes(32) });
  const rsa = new RawRsaKeyring({ keyNamespace: 'ns', keyName: 'rsa', publicKey, privateKey, padding: 'OAEP_SHA256' });
  const keyrings: Array<[string, () => Keyring]> = [
    ['RawAesKeyring', () => aes],
    ['RawRsaKeyring', () => rsa],
    ['MultiKeyring', () => new MultiKeyring({ generator: aes, children: [rsa] })],
    ['KmsKeyring (local KMS)', () => new KmsKeyring({ keyId: keyArn, client: local.client() })],
  ];
  it.each(keyrings)('%s', async (_name, make) => {
    const keyring = new HandOverKeyring(make());
    const e = envelope(keyring, { cache: false });
    const messages = [];
    for (let i = 0; i < 3; i++) messages.push(await e.encrypt(`m${i}`));
    for (let i = 0; i < 3; i++) expect((await e.decrypt(messages[i]!)).plaintext.toString()).toBe(`m${i}`);
    expect(keyring.handedOut).toHaveLength(6);
    expect(new Set(keyring.handedOut).size).toBe(6); // six distinct buffers
    for (const key of keyring.handedOut) expect(isZero(key)).toBe(true);
  });
});

describe("KMS data keys never stay in Node's shared Buffer pool", () => {
  // The AWS SDK decodes KMS plaintexts into pooled Buffers (8 KiB slabs shared with any other
  // pooled Buffer, whose `.buffer` reaches them). The Envelope copies them into buffers of its own
  // and wipes the SDK's bytes at once (src/keyring-call.ts), cached or not.
  it('GenerateDataKey and Decrypt over HTTP through @aws-sdk/client-kms, with the default cache', async () => {
    const server = await startLocalKmsServer({ port: 0 });
    const client = new KMSClient({ endpoint: server.url, region: 'us-east-1', credentials: { accessKeyId: 'AKIDPOOL', secretAccessKey: 'pool' } });
    try {
      const arn = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
      const keyring = new HandOverKeyring(new KmsKeyring({ keyId: arn, client }));
      // Copies of the keys, each in its own memory (Buffer.from would put them in the pool too).
      const copies: Buffer[] = [];
      const keep = (k: Uint8Array): void => {
        const c = Buffer.allocUnsafeSlow(k.length);
        c.set(k);
        copies.push(c);
      };
      const watching: Keyring = {
        onEncrypt: async (i) => {
          const out = await keyring.onEncrypt(i);
          keep(out.dataKey);
          return out;
        },
        onDecrypt: async (i) => {
          const key = await keyring.onDecrypt(i);
          if (key !== undefined) keep(key);
          return key;
        },
      };
      owned.length = 0;
      const e = envelope(watching);
      const detailed = await e.encryptDetailed('pooled?');
      const reader = envelope(watching);
      expect((await reader.decrypt(detailed.message)).plaintext.toString()).toBe('pooled?');
      expect(keyring.handedOut).toHaveLength(2);
      expect(keyring.handedOut.some((k) => k.buffer.byteLength > k.length)).toBe(true); // the SDK's are pooled
      for (const key of keyring.handedOut) expect(isZero(key)).toBe(true); // and wiped when taken
      expect(owned).toHaveLength(2);
      for (const key of owned) {
        expect(key.buffer.byteLength).toBe(32); // the Envelope's copies are not
        expect(isZero(key)).toBe(false); // both still cached
      }
      // Nothing the caller was handed reaches a slab with a live key in it.
      for (const view of [detailed.header.headerIv, detailed.header.bytes, detailed.message]) {
        const slab = Buffer.from(view.buffer);
        for (const copy of copies) expect(slab.indexOf(copy)).toBe(-1);
      }
    } finally {
      client.destroy();
      await server.close();
    }
  });
});
