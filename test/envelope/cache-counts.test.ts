/**
 * The data-key cache seen through the Envelope: KMS call counts (never times) for the cases the
 * cache exists for: a burst of encrypts on a cold cache, long runs under a per-key message limit, and
 * a reader that keeps decrypting blobs that share a few data keys.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Envelope, KmsKeyring } from '../../src/index.js';
import { LocalKms } from '../../src/local-kms/index.js';

describe('data-key cache through the Envelope (local KMS, counted calls)', () => {
  const local = new LocalKms();
  let keyArn: string;
  beforeAll(async () => {
    keyArn = (await local.createKey({})).arn;
  });
  afterAll(() => local.close());
  const kms = () => new KmsKeyring({ keyId: keyArn, client: local.client() });

  it('100 concurrent encrypts on a cold cache make exactly one GenerateDataKey', async () => {
    const envelope = new Envelope({ keyring: kms() });
    const messages = await Promise.all(
      Array.from({ length: 100 }, (_, i) => envelope.encrypt(`message ${i}`, { context: { app: 'burst' } })),
    );
    expect(envelope.stats().kmsCalls).toBe(1);
    expect(envelope.stats().keyringCalls).toBe(1);
    // all 100 share the data key, but each message has its own id (and so its own derived key)
    const ids = new Set(messages.map((m) => m.subarray(3, 35).toString('hex')));
    expect(ids.size).toBe(100);
  });

  it('different contexts are different cache partitions', async () => {
    const envelope = new Envelope({ keyring: kms() });
    for (let i = 0; i < 30; i++) await envelope.encrypt('x', { context: { tenant: `t${i % 3}` } });
    expect(envelope.stats().kmsCalls).toBe(3);
  });

  it('10,000 messages with maxMessagesPerKey 1000 make 10 data keys', async () => {
    const envelope = new Envelope({ keyring: kms(), cache: { maxMessagesPerKey: 1000 } });
    const payload = Buffer.alloc(64, 7);
    for (let i = 0; i < 10_000; i++) await envelope.encrypt(payload);
    expect(envelope.stats().kmsCalls).toBe(10);
  });

  it('a message larger than maxBytesPerKey gets its own data key and leaves the cached one alone', async () => {
    const envelope = new Envelope({ keyring: kms(), cache: { maxBytesPerKey: 1000 } });
    await envelope.encrypt(Buffer.alloc(10));
    await envelope.encrypt(Buffer.alloc(5000)); // alone over the limit: fresh, not cached
    await envelope.encrypt(Buffer.alloc(10)); // still served by the first key
    expect(envelope.stats().kmsCalls).toBe(2);
  });

  it('1,000 decrypts of 10 distinct messages make 10 KMS Decrypt calls', async () => {
    const writer = new Envelope({ keyring: kms(), cache: false });
    const messages = [];
    for (let i = 0; i < 10; i++) messages.push(await writer.encrypt(`blob ${i}`));
    expect(writer.stats().kmsCalls).toBe(10);
    const reader = new Envelope({ keyring: kms() });
    for (let i = 0; i < 1000; i++) {
      const { plaintext } = await reader.decrypt(messages[i % 10]!);
      expect(plaintext.toString()).toBe(`blob ${i % 10}`);
    }
    expect(reader.stats().kmsCalls).toBe(10);
  });

  it('expired entries are not used (injected clock)', async () => {
    let now = 0;
    const envelope = new Envelope({ keyring: kms(), cache: { maxAgeMs: 1000, clock: () => now } });
    await envelope.encrypt('a');
    now = 999;
    await envelope.encrypt('b');
    expect(envelope.stats().kmsCalls).toBe(1);
    now = 1000;
    await envelope.encrypt('c');
    expect(envelope.stats().kmsCalls).toBe(2);
  });

  it('cache: false calls KMS for every message', async () => {
    const envelope = new Envelope({ keyring: kms(), cache: false });
    const m = await envelope.encrypt('a');
    await envelope.encrypt('b');
    await envelope.decrypt(m);
    await envelope.decrypt(m);
    expect(envelope.stats().kmsCalls).toBe(4);
  });
});

describe('decrypt cache keys for large headers', () => {
  it('messages with large headers (hashed cache keys) still share one unwrap per data key', async () => {
    const { RawAesKeyring } = await import('../../src/index.js');
    const { randomBytes } = await import('node:crypto');
    let unwraps = 0;
    const inner = new RawAesKeyring({ keyNamespace: 'big', keyName: 'k', key: randomBytes(32) });
    const keyring = {
      onEncrypt: (i: Parameters<typeof inner.onEncrypt>[0]) => inner.onEncrypt(i),
      onDecrypt: (i: Parameters<typeof inner.onDecrypt>[0]) => (unwraps++, inner.onDecrypt(i)),
    };
    const writer = new Envelope({ keyring });
    const big = { note: 'x'.repeat(10_000) }; // a context far over the 4 KiB raw-key limit
    const a = await writer.encrypt('a', { context: big });
    const b = await writer.encrypt('b', { context: big }); // same data key (encrypt cache)
    const c = await writer.encrypt('c', { context: { note: 'y'.repeat(10_000) } }); // another one
    const reader = new Envelope({ keyring });
    for (const m of [a, b, c, a, b, c]) await reader.decrypt(m);
    expect(unwraps).toBe(2);
    expect((await reader.decrypt(c)).plaintext.toString()).toBe('c');
  });
});
