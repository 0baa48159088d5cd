/**
 * Review finding: a keyring whose encrypted data keys cannot be written (wrong field types, a
 * field over 65535 bytes) surfaced as a bare TypeError/RangeError from the header writer instead
 * of a KeyringError (ERR_KEYRING, errors.ts: "a keyring returned something unusable").
 */
import { expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Envelope, type EncryptedDataKey, type Keyring } from '../../src/index.js';

function keyringReturning(edk: unknown): Keyring {
  return {
    async onEncrypt() {
      return { dataKey: randomBytes(32), encryptedDataKeys: [edk as EncryptedDataKey] };
    },
    async onDecrypt() {
      return undefined;
    },
  };
}

const good = { providerId: 'p', providerInfo: Buffer.from('i'), ciphertext: Buffer.alloc(40) };
it.each([
  ['providerId not a string', { ...good, providerId: 7 }],
  ['providerInfo not bytes', { ...good, providerInfo: 'info' }],
  ['ciphertext not bytes', { ...good, ciphertext: undefined }],
  ['providerInfo over 65535 bytes', { ...good, providerInfo: Buffer.alloc(70_000) }],
  ['providerId over 65535 UTF-8 bytes', { ...good, providerId: 'é'.repeat(40_000) }],
  ['null', null],
])('%s: ERR_KEYRING', async (_what, edk) => {
  for (const cache of [undefined, false] as const) {
    const e = new Envelope({ keyring: keyringReturning(edk), ...(cache === false ? { cache } : {}) });
    await expect(e.encrypt('x')).rejects.toMatchObject({ code: 'ERR_KEYRING' });
  }
});

it('a well-formed EDK still encrypts', async () => {
  const e = new Envelope({ keyring: keyringReturning(good) });
  expect((await e.encrypt('x')).length).toBeGreaterThan(0);
});
