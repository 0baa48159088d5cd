/**
 * Review finding 1: a keyring that kept the caller's wrapping-key buffer by reference would change
 * key when the caller later zeroes or reuses that buffer (and a caller that zeroes its copy right
 * after construction, as hygiene suggests, would then wrap data keys under zeros). Every keyring
 * that takes key bytes copies them at construction: RawAesKeyring (Uint8Array or KeyObject) and
 * RawRsaKeyring (PEM as Buffer or string, or KeyObject: parsed into its own KeyObject).
 */
import { generateKeyPairSync, randomBytes, createSecretKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Envelope, RawAesKeyring, RawRsaKeyring, type Keyring } from '../../src/index.js';

const roundTrip = async (writer: Keyring, reader: Keyring): Promise<string> => {
  const message = await new Envelope({ keyring: writer, cache: false }).encrypt('payload', { context: { a: 'b' } });
  return (await new Envelope({ keyring: reader, cache: false }).decrypt(message)).plaintext.toString();
};

describe('RawAesKeyring copies the wrapping key at construction', () => {
  for (const size of [16, 24, 32]) {
    it(`${size}-byte Buffer: zeroing or reusing the caller's buffer afterwards changes nothing`, async () => {
      const original = randomBytes(size);
      const callerBuffer = Buffer.from(original);
      const keyring = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: callerBuffer });
      callerBuffer.fill(0); // hygiene: the caller wipes its copy
      const message = await new Envelope({ keyring, cache: false }).encrypt('payload');
      // Under the original key, not under zeros.
      const reader = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: original });
      expect((await new Envelope({ keyring: reader, cache: false }).decrypt(message)).plaintext.toString()).toBe('payload');
      const zeros = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: Buffer.alloc(size) });
      await expect(new Envelope({ keyring: zeros, cache: false }).decrypt(message)).rejects.toMatchObject({
        code: 'ERR_NO_DECRYPTABLE_KEY',
      });
      // The caller reuses the buffer for another key: the keyring still reads what it wrote.
      randomBytes(size).copy(callerBuffer);
      expect(await roundTrip(keyring, reader)).toBe('payload');
      expect(await roundTrip(reader, keyring)).toBe('payload');
    });
  }

  it('a plain Uint8Array view into a larger ArrayBuffer is copied too', async () => {
    const backing = new Uint8Array(64);
    backing.set(randomBytes(64));
    const view = backing.subarray(16, 48);
    const original = Buffer.from(view);
    const keyring = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: view });
    backing.fill(0);
    expect(await roundTrip(keyring, new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: original }))).toBe('payload');
  });

  it('a secret KeyObject works and the keyring leaves the caller its own key object', async () => {
    const original = randomBytes(32);
    const keyObject = createSecretKey(Buffer.from(original));
    const keyring = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: keyObject });
    expect(await roundTrip(keyring, new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: original }))).toBe('payload');
  });
});

describe('RawRsaKeyring copies (parses) its keys at construction', () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

  it('PEM Buffers zeroed by the caller after construction: the keyring still encrypts and decrypts', async () => {
    const pub = Buffer.from(publicPem);
    const priv = Buffer.from(privatePem);
    const keyring = new RawRsaKeyring({ keyNamespace: 'ns', keyName: 'rsa', publicKey: pub, privateKey: priv, padding: 'OAEP_SHA256' });
    pub.fill(0);
    priv.fill(0);
    const reference = new RawRsaKeyring({ keyNamespace: 'ns', keyName: 'rsa', publicKey: publicPem, privateKey: privatePem, padding: 'OAEP_SHA256' });
    expect(await roundTrip(keyring, reference)).toBe('payload');
    expect(await roundTrip(reference, keyring)).toBe('payload');
  });
});
