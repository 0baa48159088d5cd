/**
 * The key scanner of the HSM memory test (memory-scan.ts): its AES-256 agrees with node:crypto,
 * a GCM ciphertext with known plaintext yields a check only its key passes, and a key is found at
 * any offset, raw or base64/hex encoded, while low-entropy bytes are not even tried.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyScanner, MIN_DISTINCT, aes256Matches, gcmKeyCheck, keyMatches } from './memory-scan.js';

function gcmCheckOf(key: Buffer, label = 'k') {
  const iv = randomBytes(12);
  const plaintext = randomBytes(40);
  const c = createCipheriv('aes-256-gcm', key, iv);
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return gcmKeyCheck(label, iv, ct, plaintext);
}

describe('memory-scan', () => {
  it('its AES-256 block encryption agrees with node:crypto', () => {
    for (let i = 0; i < 300; i++) {
      const key = randomBytes(32);
      const input = randomBytes(16);
      const output = createCipheriv('aes-256-ecb', key, null).setAutoPadding(false).update(input);
      expect(aes256Matches(key, input, output)).toBe(true);
      output[i % 16] ^= 1 << (i % 8);
      expect(aes256Matches(key, input, output)).toBe(false);
    }
    // FIPS-197 Appendix C.3 (AES-256 example vector).
    const key = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
    expect(aes256Matches(key, Buffer.from('00112233445566778899aabbccddeeff', 'hex'), Buffer.from('8ea2b7ca516745bfeafc49904b496089', 'hex'))).toBe(true);
  });

  it('gcmKeyCheck: the key of an AES-256-GCM ciphertext passes, another key does not', () => {
    const key = randomBytes(32);
    const check = gcmCheckOf(key);
    expect(keyMatches(key, check)).toBe(true);
    expect(keyMatches(randomBytes(32), check)).toBe(false);
    expect(() => gcmKeyCheck('x', randomBytes(16), randomBytes(16), randomBytes(16))).toThrow(RangeError);
  });

  it('finds a key at any offset of random bytes, and tries no window of zeros or text', () => {
    const key = randomBytes(32);
    for (const at of [0, 1, 7, 500, 1024 - 32]) {
      const data = randomBytes(1024);
      key.copy(data, at);
      const s = new KeyScanner([gcmCheckOf(key, 'target'), gcmCheckOf(randomBytes(32), 'other')]);
      s.scan(data, 'noise');
      expect(s.result.hits).toEqual([{ label: 'target', where: `noise+0x${at.toString(16)}`, key: key.toString('hex') }]);
      expect(s.result.candidates).toBe(1024 - 31);
    }
    const quiet = new KeyScanner([gcmCheckOf(key)]);
    quiet.scan(Buffer.alloc(4096), 'zeros');
    quiet.scan(Buffer.from('hello, world. '.repeat(300)), 'text');
    expect(quiet.result.candidates).toBe(0);
    // The filter's bound: fewer than MIN_DISTINCT distinct bytes is not tried, even if it is the key.
    const weak = Buffer.alloc(32, 0);
    for (let i = 0; i < MIN_DISTINCT - 2; i++) weak[i] = i + 1; // with the zeros: MIN_DISTINCT - 1 values
    const w = new KeyScanner([gcmCheckOf(weak)]);
    w.scan(weak, 'weak');
    expect(w.result).toMatchObject({ candidates: 0, hits: [] });
  });

  it('scanText finds a key encoded as base64, base64url or hex inside longer text, at any byte offset', () => {
    const key = randomBytes(32);
    for (const pad of [0, 1, 2, 3]) {
      const bytes = Buffer.concat([randomBytes(pad), key, randomBytes(5)]);
      for (const text of [bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex'), `{"k":"${bytes.toString('base64')}"}`, `key ${key.toString('base64')}`]) {
        const s = new KeyScanner([gcmCheckOf(key)]);
        s.scanText(text, 'text');
        expect(s.result.hits.map((h) => h.key)).toEqual([key.toString('hex')]);
      }
    }
  });
});
