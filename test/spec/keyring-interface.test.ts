/**
 * Compliance: framework/keyring-interface.md (test/spec/compliance/framework/keyring-interface.md).
 * Properties every keyring this library ships must have, checked across the raw AES, raw RSA, multi
 * and KMS keyrings, and how a keyring's "failure" reaches the caller of an Envelope.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RawAesKeyring, RawRsaKeyring } from '../../src/keyrings/index.js';

const rsa = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
});

describe('keyring interface: key provider id', () => {
  it('raw AES and raw RSA keyrings refuse a key namespace that is or starts with "aws-kms"', () => {
    for (const ns of ['aws-kms', 'aws-kms-mrk', 'aws-kms/x', 'aws-kmsfoo']) {
      expect(() => new RawAesKeyring({ keyNamespace: ns, keyName: 'k', key: randomBytes(32) }), ns).toThrow(TypeError);
      expect(() => new RawAesKeyring({ keyNamespace: ns, keyName: 'k', key: randomBytes(32) }), ns).toThrow(/options\.keyNamespace/);
      expect(() => new RawRsaKeyring({ keyNamespace: ns, keyName: 'k', publicKey: rsa.publicKey, padding: 'OAEP_SHA256' }), ns).toThrow(
        /options\.keyNamespace/,
      );
    }
    // Only the prefix is reserved: a namespace merely containing it is an ordinary namespace.
    expect(new RawAesKeyring({ keyNamespace: 'my-aws-kms', keyName: 'k', key: randomBytes(32) }).keyNamespace).toBe('my-aws-kms');
    expect(new RawAesKeyring({ keyNamespace: 'AWS-KMS', keyName: 'k', key: randomBytes(32) }).keyNamespace).toBe('AWS-KMS');
  });
});
