/**
 * Review findings on the encryption context:
 * - a context that the message format cannot hold must be refused before the keyring (KMS) runs;
 * - a context key "__proto__" must reach KMS like any other key, or KMS binds a different context.
 */
import { describe, expect, it } from 'vitest';
import { Envelope, KmsKeyring } from '../../src/index.js';
import { LocalKms } from '../../src/local-kms/index.js';
import { parseHeader } from '../../src/format/header.js';
import { countingKeyring } from '../support/keyrings.js';

describe('unrepresentable encryption contexts', () => {
  const cases: [string, Record<string, string>][] = [
    ['a value over 65535 UTF-8 bytes', { a: 'x'.repeat(70_000) }],
    ['a serialized context over 65535 bytes', { a: 'x'.repeat(40_000), b: 'y'.repeat(40_000) }],
  ];
  for (const suite of [0x0478, 0x0578]) {
    for (const [what, context] of cases) {
      it(`suite 0x${suite.toString(16)}: ${what} is a RangeError naming options.context, before any keyring call`, async () => {
        for (const cache of [undefined, false] as const) {
          const keyring = countingKeyring();
          const e = new Envelope({ keyring, suite, ...(cache === false ? { cache } : {}) });
          await expect(e.encrypt('x', { context })).rejects.toThrow(RangeError);
          await expect(e.encrypt('x', { context })).rejects.toThrow(/options\.context/);
          expect(() => e.encryptStream({ context })).toThrow(/options\.context/);
          expect(keyring.calls).toBe(0);
        }
      });
    }
  }

  it('a signed suite reserves room for the public key pair it adds', async () => {
    // 65535 - 2 (count) - 4 (lengths) - 1 (key) = 65528 bytes of value fit an unsigned message
    // exactly, but not one that also carries aws-crypto-public-key.
    const context = { a: 'v'.repeat(65_528) };
    const unsigned = new Envelope({ keyring: countingKeyring(), cache: false });
    const m = await unsigned.encrypt('x', { context });
    expect((await unsigned.decrypt(m)).context.a).toBe(context.a);
    const keyring = countingKeyring();
    const signed = new Envelope({ keyring, suite: 0x0578, cache: false });
    await expect(signed.encrypt('x', { context })).rejects.toThrow(/options\.context/);
    expect(keyring.calls).toBe(0);
  });
});

describe('context key "__proto__"', () => {
  it('is bound by KMS like any other pair (KmsKeyring sends it)', async () => {
    const local = new LocalKms({});
    const key = await local.createKey({});
    const client = local.client();
    const context = JSON.parse('{"__proto__":"x","a":"b"}') as Record<string, string>;
    const e = new Envelope({ keyring: new KmsKeyring({ keyId: key.arn, client }), cache: false });
    const message = await e.encrypt('hi', { context });
    const header = parseHeader(message, { maxEncryptedDataKeys: 10 })!;
    expect(Object.keys(header.context).sort()).toEqual(['__proto__', 'a']);
    const edk = header.encryptedDataKeys[0]!;
    // KMS must refuse the data key without the "__proto__" pair and release it with it.
    await expect(client.decrypt({ ciphertextBlob: edk.ciphertext, encryptionContext: { a: 'b' } })).rejects.toThrow();
    await expect(client.decrypt({ ciphertextBlob: edk.ciphertext, encryptionContext: context })).resolves.toBeDefined();
    expect((await e.decrypt(message)).plaintext.toString()).toBe('hi');
  });
});

describe('context key "__proto__" through an @aws-sdk/client-kms client', () => {
  it('reaches the SDK command input (the SDK adapter does not drop it)', async () => {
    const seen: Record<string, string>[] = [];
    const arn = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const sdkLike = {
      async send(command: { input: { EncryptionContext?: Record<string, string> } }) {
        seen.push(command.input.EncryptionContext!);
        return { KeyId: arn, Plaintext: new Uint8Array(32), CiphertextBlob: new Uint8Array(8) };
      },
    };
    const ring = new KmsKeyring({ keyId: arn, client: sdkLike as never });
    const context = JSON.parse('{"__proto__":"x","a":"b"}') as Record<string, string>;
    await ring.onEncrypt({ suiteId: 0x0478, context });
    expect(seen).toHaveLength(1);
    expect(Object.keys(seen[0]!).sort()).toEqual(['__proto__', 'a']);
    expect(Object.getOwnPropertyDescriptor(seen[0], '__proto__')?.value).toBe('x');
  });
});
