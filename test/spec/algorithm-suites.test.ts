/**
 * The algorithm suites (framework/algorithm-suites.md): our suite table against the one the
 * reference implementation (@aws-crypto/client-node 5.0.2) defines, and the key derivations
 * against an independent HKDF (node:crypto HMAC).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { AlgorithmSuiteIdentifier, NodeAlgorithmSuite } from '@aws-crypto/client-node';
import { describe, expect, it } from 'vitest';
import { deriveCommittedKey, deriveLegacyKey } from '../../src/crypto/hkdf.js';
import { gcmAlgorithm } from '../../src/format/body.js';
import { SUITES } from '../../src/format/suites.js';
import { u16, v2Keys } from './helpers.js';

const CURVE_NAMES: Record<string, string> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1' };

describe('algorithm suites (framework/algorithm-suites.md)', () => {
  it('our table holds exactly the ESDK suites, each with the key length, IV, tag, KDF, signature, commitment, message format and suite data the reference implementation gives it', () => {
    const esdkIds = Object.values(AlgorithmSuiteIdentifier).filter((v): v is number => typeof v === 'number').sort((a, b) => a - b);
    expect([...SUITES.keys()].sort((a, b) => a - b)).toEqual(esdkIds);
    expect(new Set(SUITES.keys()).size).toBe(SUITES.size); // ids are unique
    expect(SUITES.has(0x0000)).toBe(false); // reserved
    for (const [id, ours] of SUITES) {
      const ref = new NodeAlgorithmSuite(id);
      expect(ours.id, `0x${id.toString(16)}`).toBe(id);
      expect(gcmAlgorithm(ours.keyLength)).toBe(ref.encryption); // AES-GCM with the suite's key size
      expect(ours.keyLength * 8).toBe(ref.keyLength);
      expect(ours.ivLength).toBe(ref.ivLength);
      expect(ours.tagLength * 8).toBe(ref.tagLength);
      expect(ours.kdfHash).toBe(ref.kdf === 'HKDF' ? ref.kdfHash : undefined);
      expect(ours.signatureCurve === undefined ? undefined : CURVE_NAMES[ours.signatureCurve]).toBe(ref.signatureCurve);
      expect(ours.signatureHash).toBe(ref.signatureHash);
      expect(ours.committing).toBe(ref.commitment === 'KEY');
      expect(ours.messageFormat).toBe(ref.messageFormat);
      expect(ours.suiteDataLength).toBe(ref.suiteDataLength ?? 0);
    }
  });

  it('suites without a KDF use the data key itself as the message key; HKDF suites derive it with the suite id in the info', () => {
    for (const [id, suite] of SUITES) {
      const dataKey = randomBytes(suite.keyLength);
      if (suite.committing) {
        const messageId = randomBytes(32);
        const { key, commitment } = deriveCommittedKey(suite, dataKey, messageId);
        const ref = v2Keys(id, dataKey, messageId);
        expect(key.equals(ref.key), `0x${id.toString(16)}`).toBe(true);
        expect(commitment.equals(ref.commitment)).toBe(true);
        continue;
      }
      const messageId = randomBytes(16);
      const key = deriveLegacyKey(suite, dataKey, messageId);
      if (suite.kdfHash === undefined) {
        // Identity KDF: input returned unchanged, so the key length equals the input length.
        expect(key.equals(dataKey), `0x${id.toString(16)}`).toBe(true);
        expect(key).not.toBe(dataKey);
      } else {
        // HKDF with no salt (HashLen zero bytes), info = suite id || message id.
        const hashLength = suite.kdfHash === 'sha256' ? 32 : 48;
        const prk = createHmac(suite.kdfHash, Buffer.alloc(hashLength)).update(dataKey).digest();
        const okm = createHmac(suite.kdfHash, prk).update(Buffer.concat([u16(id), messageId, Buffer.from([1])])).digest();
        expect(key.equals(okm.subarray(0, suite.keyLength)), `0x${id.toString(16)}`).toBe(true);
      }
    }
  });

  it('the suite id is bound into the key: 0x0478 and 0x0578 derive different keys from the same data key and message id, with the same commitment', () => {
    const dataKey = randomBytes(32);
    const messageId = randomBytes(32);
    const a = deriveCommittedKey(SUITES.get(0x0478)!, dataKey, messageId);
    const b = deriveCommittedKey(SUITES.get(0x0578)!, dataKey, messageId);
    expect(a.key.equals(b.key)).toBe(false);
    expect(a.commitment.equals(b.commitment)).toBe(true); // "COMMITKEY" carries no suite id
  });
});
