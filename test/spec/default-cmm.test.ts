/**
 * The default CMM (framework/default-cmm.md) as the Envelope implements it around its keyring:
 * materials come from the keyring on every call (when no cache is configured), signed suites get a
 * fresh signing key whose public key goes into a copy of the caller's context, and decryption asks
 * the keyring with the parsed header's suite, context and encrypted data keys.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encryptBuffer, prepareEncryption } from '../../src/format/encrypt.js';
import { makeMaterials } from '../format/esdk-helpers.js';
import { parseModel } from '../hostile/model.js';
import { envelopeErrorOf, envelopeWith, RecordingKeyring, runStream } from './helpers.js';

describe('default CMM (framework/default-cmm.md)', () => {
  it("the caller's context object is left unchanged when the public key is added for a signed suite", async () => {
    const keyring = new RecordingKeyring();
    const envelope = envelopeWith(keyring, { suite: 0x0578, cache: false });
    const context = { tenant: 'acme' };
    const message = await envelope.encrypt('x', { context });
    expect(context).toEqual({ tenant: 'acme' });
    expect(Object.keys(keyring.encryptInputs[0]!.context).sort()).toEqual(['aws-crypto-public-key', 'tenant']);
    await runStream(envelope.encryptStream({ context }), [Buffer.from('y')]);
    expect(context).toEqual({ tenant: 'acme' });
    expect((await envelope.decrypt(message)).context['aws-crypto-public-key']).toBe(keyring.encryptInputs[0]!.context['aws-crypto-public-key']);
  });

  it('signed suites: every set of materials gets a fresh P-384 signing key whose public key (base64 compressed point) is in the context the keyring sees and in the header; the private key is in neither', async () => {
    const keyring = new RecordingKeyring();
    const envelope = envelopeWith(keyring, { suite: 0x0578, cache: false });
    const keys = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const message = await envelope.encrypt('x');
      const publicKey = keyring.encryptInputs[i]!.context['aws-crypto-public-key']!;
      const point = Buffer.from(publicKey, 'base64');
      expect(point).toHaveLength(49); // 1 + 48: compressed P-384 point
      expect([2, 3]).toContain(point[0]);
      expect(point.toString('base64')).toBe(publicKey);
      const pair = parseModel(message).context.pairs.find((p) => p.key.toString() === 'aws-crypto-public-key');
      expect(pair?.value.toString()).toBe(publicKey);
      keys.add(publicKey);
    }
    expect(keys.size).toBe(5);
    // Unsigned suites: no public key anywhere.
    const unsigned = new RecordingKeyring();
    const m = await envelopeWith(unsigned, { cache: false }).encrypt('x');
    expect(unsigned.encryptInputs[0]!.context).toEqual({});
    expect(parseModel(m).context.pairs).toHaveLength(0);
    // The private key: a message written with a known signing key does not contain its scalar.
    const materials = makeMaterials(0x0578, { a: 'b' });
    const d = Buffer.from(materials.signingKey!.export({ format: 'jwk' }).d!, 'base64url');
    const written = encryptBuffer(prepareEncryption(materials, 64), materials.dataKey, randomBytes(300));
    expect(written.includes(d.subarray(0, 16))).toBe(false);
    expect(Object.values(materials.context).some((v) => Buffer.from(v, 'base64').includes(d.subarray(0, 16)))).toBe(false);
  });

  it('without a cache, every decrypt calls the keyring once with the parsed suite, context and encrypted data keys, and uses the data key it returns', async () => {
    for (const suite of [0x0478, 0x0578]) {
      const keyring = new RecordingKeyring(randomBytes(32), 2);
      const envelope = envelopeWith(keyring, { suite, cache: false });
      const message = await envelope.encrypt('payload', { context: { tenant: 'acme' } });
      const model = parseModel(message);
      for (let i = 1; i <= 3; i++) {
        expect((await envelope.decrypt(message)).plaintext.toString()).toBe('payload');
        expect(keyring.decryptInputs).toHaveLength(i);
        const seen = keyring.decryptInputs[i - 1]!;
        expect(seen.suiteId).toBe(suite);
        expect(seen.context).toEqual(keyring.encryptInputs[0]!.context);
        expect(seen.encryptedDataKeys.map((e) => Buffer.from(e.ciphertext).toString('hex'))).toEqual(
          model.edks.map((e) => e.ciphertext.toString('hex')),
        );
      }
      // The data key really comes from the keyring: another key fails the key commitment.
      const liar = { onEncrypt: keyring.onEncrypt.bind(keyring), onDecrypt: async () => randomBytes(32) };
      expect((await envelopeErrorOf(envelopeWith(liar, { cache: false }).decrypt(message))).code).toBe('ERR_COMMITMENT_MISMATCH');
    }
  });
});
