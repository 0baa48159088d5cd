/**
 * The Envelope as a user meets it: options validated once at construction, round trips over the
 * local KMS, and every kind of bad message rejected with its typed error and never with plaintext.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import {
  Envelope,
  EnvelopeError,
  KmsKeyring,
  MultiKeyring,
  RawAesKeyring,
  type Keyring,
} from '../../src/index.js';
import { LocalKms } from '../../src/local-kms/index.js';

const raw = (key = randomBytes(32), keyName = 'k') => new RawAesKeyring({ keyNamespace: 'test', keyName, key });

/** Asserts that `p` rejects with an EnvelopeError whose code is one of `codes` (and never resolves). */
async function rejectsWith(p: Promise<unknown>, codes: string[], label: string): Promise<void> {
  let result: unknown;
  try {
    result = await p;
  } catch (e) {
    expect(e, label).toBeInstanceOf(EnvelopeError);
    expect(codes, `${label}: got ${(e as EnvelopeError).code}`).toContain((e as EnvelopeError).code);
    return;
  }
  throw new Error(`${label}: resolved with ${typeof result} instead of rejecting`);
}

describe('Envelope options', () => {
  const keyring = raw();
  it.each([
    [{}, TypeError, /exactly one of options.keyring and options.kms/],
    [{ keyring, kms: { keyId: 'alias/x' } }, TypeError, /exactly one/],
    [{ keyring, bogus: 1 }, TypeError, /unknown option "bogus"/],
    [{ keyring: {} }, TypeError, /options.keyring must implement onEncrypt and onDecrypt/],
    [{ keyring, suite: 0x0014 }, RangeError, /suite must be one of 0x0478, 0x0578/],
    [{ keyring, frameLength: 0 }, RangeError, /frameLength must be an integer number of bytes from 1 to 2147483647/],
    [{ keyring, frameLength: 2 ** 31 }, RangeError, /frameLength must be an integer number of bytes from 1 to 2147483647/],
    [{ keyring, frameLength: 2 ** 32 }, RangeError, /frameLength/],
    [{ keyring, frameLength: 1.5 }, RangeError, /frameLength/],
    [{ keyring, commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' }, RangeError, /commitmentPolicy must be one of/],
    [{ keyring, maxEncryptedDataKeys: 0 }, RangeError, /maxEncryptedDataKeys must be an integer number of keys from 1 to 65535/],
    [{ keyring, maxHeaderBytes: 10 }, RangeError, /maxHeaderBytes/],
    [{ keyring, maxFrameLength: 0 }, RangeError, /maxFrameLength must be an integer number of bytes from 1 to 4294967295/],
    [{ keyring, maxBodyBytes: 2 ** 37 }, RangeError, /maxBodyBytes/],
    [{ keyring, cache: { maxEntries: Infinity } }, RangeError, /cache.maxEntries/],
    [{ keyring, cache: { maxAgeMs: -1 } }, RangeError, /cache.maxAgeMs/],
    [{ keyring, cache: { size: 3 } }, TypeError, /size/],
  ])('rejects %o', (options, type, message) => {
    expect(() => new Envelope(options as never)).toThrow(type);
    expect(() => new Envelope(options as never)).toThrow(message);
  });

  it('accepts frame lengths up to 2^31 - 1, the largest every ESDK reads', () => {
    expect(new Envelope({ keyring, frameLength: 2 ** 31 - 1 }).frameLength).toBe(2 ** 31 - 1);
  });

  it('rejects bad arguments to encrypt and decrypt with TypeErrors naming them', async () => {
    const e = new Envelope({ keyring });
    await expect(e.encrypt(42 as never)).rejects.toThrow(/plaintext must be a Uint8Array or a string/);
    await expect(e.encrypt('x', { context: { 'aws-crypto-public-key': 'x' } })).rejects.toThrow(TypeError);
    await expect(e.encrypt('x', { context: { n: 1 as never } })).rejects.toThrow(/options.context\["n"\] must be a string/);
    await expect(e.decrypt('x' as never)).rejects.toThrow(/message must be a Uint8Array/);
  });
});

describe('stream decrypt limits', () => {
  it('maxFrameLength bounds what a stream will hold, before any keyring call', async () => {
    let calls = 0;
    const inner = raw();
    const keyring: Keyring = {
      onEncrypt: (i) => inner.onEncrypt(i),
      onDecrypt: (i) => (calls++, inner.onDecrypt(i)),
    };
    const plaintext = randomBytes(3 << 20);
    const message = await new Envelope({ keyring, frameLength: 2 << 20 }).encrypt(plaintext);
    const collect = async (e: Envelope) => {
      const s = e.decryptStream();
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      const done = new Promise<void>((resolve, reject) => {
        s.on('end', resolve);
        s.on('error', reject);
      });
      s.end(message);
      await done;
      return Buffer.concat(chunks);
    };
    await rejectsWith(collect(new Envelope({ keyring, maxFrameLength: 1 << 20 })), ['ERR_LIMIT_EXCEEDED'], 'frame over limit');
    expect(calls).toBe(0);
    expect((await collect(new Envelope({ keyring, maxFrameLength: 2 << 20 }))).equals(plaintext)).toBe(true);
    expect(calls).toBe(1);
  });
});

describe('Envelope over the in-process local KMS', () => {
  const local = new LocalKms();
  let keyArn: string;
  let otherArn: string;
  beforeAll(async () => {
    keyArn = (await local.createKey({ Description: 'envelope test' })).arn;
    otherArn = (await local.createKey({ Description: 'other' })).arn;
    await local.createAlias('alias/envelope-test', keyArn);
  });
  afterAll(() => local.close());

  it('round-trips strings and bytes with the kms shorthand and an alias (resolveOnDecrypt), and reports KMS calls', async () => {
    // An alias decrypts only with the explicit opt-in (aws-kms-keyring.md "OnDecrypt" wants key ARNs).
    const envelope = new Envelope({ kms: { keyId: 'alias/envelope-test', client: local.client(), resolveOnDecrypt: true } });
    const message = await envelope.encrypt('héllo wörld', { context: { tenant: 'acme', Purpose: 'test' } });
    expect(message[0]).toBe(0x02); // message format v2
    expect(message.readUInt16BE(1)).toBe(0x0478);
    const out = await envelope.decrypt(message, { context: { tenant: 'acme' } });
    expect(out.plaintext.toString('utf8')).toBe('héllo wörld');
    expect(out.context).toEqual({ tenant: 'acme', Purpose: 'test' });
    expect(out.suiteId).toBe(0x0478);
    // one GenerateDataKey; the decrypt unwraps once (the decrypt cache is separate from the encrypt cache)
    expect(envelope.stats().kmsCalls).toBe(2);
    const bytes = randomBytes(100_000);
    expect((await envelope.decrypt(await envelope.encrypt(bytes))).plaintext.equals(bytes)).toBe(true);
  });

  it('rejects a message under a key the reader may not use', async () => {
    const writer = new Envelope({ keyring: new KmsKeyring({ keyId: keyArn, client: local.client() }) });
    const reader = new Envelope({ keyring: new KmsKeyring({ keyId: otherArn, client: local.client() }) });
    const message = await writer.encrypt('secret');
    await rejectsWith(reader.decrypt(message), ['ERR_NO_DECRYPTABLE_KEY'], 'other KMS key');
    const rawMessage = await new Envelope({ keyring: raw() }).encrypt('secret');
    await rejectsWith(new Envelope({ keyring: raw() }).decrypt(rawMessage), ['ERR_NO_DECRYPTABLE_KEY'], 'other raw key');
  });

  it('rejects a wrong or missing required context before calling KMS', async () => {
    const envelope = new Envelope({ kms: { keyId: keyArn, client: local.client() } });
    const message = await envelope.encrypt('secret', { context: { tenant: 'a' } });
    const before = envelope.stats().kmsCalls;
    await rejectsWith(envelope.decrypt(message, { context: { tenant: 'b' } }), ['ERR_CONTEXT_MISMATCH'], 'wrong value');
    await rejectsWith(envelope.decrypt(message, { context: { region: 'eu' } }), ['ERR_CONTEXT_MISMATCH'], 'missing key');
    await rejectsWith(envelope.decrypt(message, { context: { Tenant: 'a' } }), ['ERR_CONTEXT_MISMATCH'], 'case differs');
    expect(envelope.stats().kmsCalls).toBe(before);
    const error = await envelope.decrypt(message, { context: { tenant: 'b' } }).catch((e) => e);
    expect(String(error.message)).not.toContain('"a"'); // names the key, never the values
  });

  it('a context changed inside the message fails at KMS (the context is bound to the data key)', async () => {
    const envelope = new Envelope({ kms: { keyId: keyArn, client: local.client() } });
    const message = await envelope.encrypt('secret', { context: { tenant: 'aaaa' } });
    const at = message.indexOf(Buffer.from('aaaa'));
    const forged = Buffer.from(message);
    forged.write('bbbb', at);
    await rejectsWith(envelope.decrypt(forged), ['ERR_NO_DECRYPTABLE_KEY', 'ERR_DECRYPTION_FAILED'], 'forged context');
  });
});

describe('hostile messages are rejected with typed errors, never with plaintext', () => {
  const keyring = raw();
  for (const suite of [0x0478, 0x0578]) {
    it(`suite 0x0${suite.toString(16)}: every byte of header, body and footer`, async () => {
      const envelope = new Envelope({ keyring, suite, frameLength: 64 });
      const message = await envelope.encrypt(randomBytes(200), { context: { k: 'v' } });
      for (let i = 0; i < message.length; i++) {
        const forged = Buffer.from(message);
        forged[i] ^= 0x01;
        await rejectsWith(
          envelope.decrypt(forged),
          [
            'ERR_DECRYPTION_FAILED',
            'ERR_MALFORMED_MESSAGE',
            'ERR_COMMITMENT_MISMATCH',
            'ERR_COMMITMENT_POLICY',
            'ERR_NO_DECRYPTABLE_KEY',
            'ERR_LIMIT_EXCEEDED',
          ],
          `byte ${i} of ${message.length}`,
        );
      }
    });

    it(`suite 0x0${suite.toString(16)}: every truncation and trailing bytes`, async () => {
      const envelope = new Envelope({ keyring, suite, frameLength: 32 });
      const message = await envelope.encrypt(randomBytes(100));
      for (let n = 0; n < message.length; n++) {
        await rejectsWith(
          envelope.decrypt(message.subarray(0, n)),
          ['ERR_MALFORMED_MESSAGE', 'ERR_DECRYPTION_FAILED'],
          `truncated to ${n}`,
        );
      }
      await rejectsWith(envelope.decrypt(Buffer.concat([message, Buffer.from([0])])), ['ERR_MALFORMED_MESSAGE'], 'trailing');
    });
  }

  it('all authentication failures share one message', async () => {
    const envelope = new Envelope({ keyring, frameLength: 16 });
    const message = await envelope.encrypt(randomBytes(64));
    const messages = new Set<string>();
    // 4 regular frames of 48 bytes, then an empty final frame of 40 bytes (marker, seq, IV, length, tag):
    // flip the final tag, the final IV, the last regular frame's tag and its ciphertext.
    for (const i of [message.length - 1, message.length - 25, message.length - 41, message.length - 60]) {
      const forged = Buffer.from(message);
      forged[i] ^= 0x80;
      const e = (await envelope.decrypt(forged).catch((x) => x)) as EnvelopeError;
      expect(e.code).toBe('ERR_DECRYPTION_FAILED');
      messages.add(e.message);
    }
    expect(messages.size).toBe(1);
  });

  it('refuses more encrypted data keys than maxEncryptedDataKeys without calling the keyring', async () => {
    const keyrings = [raw(), raw(), raw()];
    const writer = new Envelope({ keyring: new MultiKeyring({ generator: keyrings[0], children: keyrings.slice(1) }) });
    const message = await writer.encrypt('x');
    let calls = 0;
    const counting: Keyring = {
      onEncrypt: (i) => keyrings[0]!.onEncrypt(i),
      onDecrypt: (i) => {
        calls++;
        return keyrings[0]!.onDecrypt(i);
      },
    };
    await rejectsWith(new Envelope({ keyring: counting, maxEncryptedDataKeys: 2 }).decrypt(message), ['ERR_LIMIT_EXCEEDED'], 'edks');
    expect(calls).toBe(0);
    const ok = await new Envelope({ keyring: counting, maxEncryptedDataKeys: 3 }).decrypt(message);
    expect(ok.plaintext.toString()).toBe('x');
  });

  it('a keyring that returns a key of the wrong length is an ERR_KEYRING', async () => {
    const bad: Keyring = {
      onEncrypt: async () => ({ dataKey: new Uint8Array(16), encryptedDataKeys: [] }),
      onDecrypt: async () => new Uint8Array(16),
    };
    await rejectsWith(new Envelope({ keyring: bad }).encrypt('x'), ['ERR_KEYRING'], 'short key');
    const message = await new Envelope({ keyring }).encrypt('x');
    await rejectsWith(new Envelope({ keyring: bad }).decrypt(message), ['ERR_KEYRING'], 'short key on decrypt');
  });
});
