import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { deriveCommittedKey } from '../../src/crypto/hkdf.js';
import { decryptBody, deriveAndVerifyHeader, MessageDecryptor, parseHeader } from '../../src/format/index.js';

/**
 * Known-answer tests: the 46 message format v2 vectors of the AWS Encryption SDK
 * (see test/vectors/README.md). Each vector gives the plaintext data key, so no keyring is needed.
 */
interface Vector {
  ciphertext: string;
  commitment: string;
  'content-encryption-key'?: string;
  'decrypted-dek': string;
  'encryption-context': Record<string, string>;
  'message-id': string;
  header?: string;
  'plaintext-frames'?: string[];
  status: boolean;
  exception: string | null;
  comment: string;
}

const file = JSON.parse(readFileSync(new URL('./commitment-test-vectors.json', import.meta.url), 'utf8')) as {
  tests: Vector[];
};
const vectors = file.tests;
const b64 = (s: string): Buffer => Buffer.from(s, 'base64');
const limits = { maxEncryptedDataKeys: 10 };

describe('commitment test vectors', () => {
  it('has all 46 cases', () => {
    expect(vectors).toHaveLength(46);
    expect(vectors.filter((v) => !v.status).length).toBeGreaterThan(0);
  });

  for (const [i, v] of vectors.entries()) {
    it(`${i + 1}: ${v.comment}`, () => {
      const message = b64(v.ciphertext);
      const dataKey = b64(v['decrypted-dek']);
      const header = parseHeader(message, limits);
      expect(header).toBeDefined();
      if (header === undefined) return;
      expect(header.version).toBe(2);
      expect(header.messageId.equals(b64(v['message-id']))).toBe(true);
      expect(header.context).toEqual(v['encryption-context']);
      if (v.header !== undefined) expect(header.bytes.equals(b64(v.header))).toBe(true);

      // Our derivation against the vector's commitment and content key. For valid cases both
      // describe `decrypted-dek` and equal the header's suite data. Failing cases either describe
      // the given data key with a header carrying another commitment (case 2), or describe the
      // key the message was really written with, while `decrypted-dek` is a different key (the
      // "two different plaintext data keys" cases).
      const derived = deriveCommittedKey(header.suite, dataKey, header.messageId);
      const describesDek = derived.commitment.toString('base64') === v.commitment;
      if (describesDek && v['content-encryption-key'] !== undefined) {
        expect(derived.key.toString('base64')).toBe(v['content-encryption-key']);
      }
      if (v.status) {
        expect(describesDek).toBe(true);
        expect(header.commitment!.toString('base64')).toBe(v.commitment);
      } else {
        expect(derived.commitment.equals(header.commitment!)).toBe(false);
        if (!describesDek) expect(header.commitment!.toString('base64')).toBe(v.commitment);
        expect(() => deriveAndVerifyHeader(header, dataKey)).toThrow(expect.objectContaining({ code: 'ERR_COMMITMENT_MISMATCH' }));
        const dec = new MessageDecryptor(limits);
        dec.push(message);
        expect(dec.needsKey).toBe(true);
        expect(() => dec.setDataKey(dataKey)).toThrow(expect.objectContaining({ code: 'ERR_COMMITMENT_MISMATCH' }));
        return;
      }

      const expected = Buffer.from((v['plaintext-frames'] ?? []).join(''), 'utf8');
      const key = deriveAndVerifyHeader(header, dataKey);
      expect(decryptBody(header, key, message).equals(expected)).toBe(true);

      // The incremental decryptor agrees, fed in 7-byte chunks.
      const dec = new MessageDecryptor(limits);
      const out: Buffer[] = [];
      for (let o = 0; o < message.length; o += 7) {
        dec.push(message.subarray(o, o + 7));
        if (dec.needsKey) dec.setDataKey(dataKey);
        out.push(...dec.read());
      }
      out.push(...dec.end());
      expect(Buffer.concat(out).equals(expected)).toBe(true);
    });
  }
});
