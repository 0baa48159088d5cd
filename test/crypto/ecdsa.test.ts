/**
 * Signing keys of the signed suites (src/crypto/ecdsa.ts): made with createECDH and imported from
 * a SEC 1 DER built by hand, so that no key generation job is left to the garbage collector and no
 * JWK export is needed (on Node 20 the two together deadlock the process; see compressPublicKey).
 * These check that the pair is a pair on both curves, that a point read from an SPKI matches the
 * generator's, and that the path a signed encrypt takes per message no longer hangs.
 */
import { spawnSync } from 'node:child_process';
import { createECDH, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compressPublicKey, generateSigningKey, parsePublicKey, publicKeyStringFor } from '../../src/crypto/ecdsa.js';
import { SUITES } from '../../src/format/suites.js';

describe('ECDSA signing keys', () => {
  for (const id of [0x0214, 0x0578]) {
    const suite = SUITES.get(id)!;
    it(`suite 0x${id.toString(16).padStart(4, '0')} (${suite.signatureCurve}): 300 fresh pairs sign and verify through the context's public key`, () => {
      const seen = new Set<string>();
      for (let i = 0; i < 300; i++) {
        const { privateKey, publicKey } = generateSigningKey(suite);
        expect(privateKey.type).toBe('private');
        expect(privateKey.asymmetricKeyDetails?.namedCurve).toBe(suite.signatureCurve === 'P-256' ? 'prime256v1' : 'secp384r1');
        expect(publicKeyStringFor(privateKey)).toBe(publicKey);
        const data = Buffer.from(`message ${i}`);
        const signature = sign(suite.signatureHash!, data, { key: privateKey, dsaEncoding: 'der' });
        expect(verify(suite.signatureHash!, data, { key: parsePublicKey(suite, publicKey), dsaEncoding: 'der' }, signature)).toBe(true);
        seen.add(publicKey);
      }
      expect(seen.size).toBe(300);
    });
  }

  it('compressPublicKey reads the point from the SPKI: the compressed point createECDH reports, for keys imported from elsewhere', () => {
    // The reference keys come from createECDH and are imported from a JWK: no generateKeyPairSync
    // plus JWK export in this process, the pair that can deadlock Node 20 (see compressPublicKey).
    for (const [namedCurve, crv] of [['prime256v1', 'P-256'], ['secp384r1', 'P-384']] as const) {
      const size = crv === 'P-256' ? 32 : 48;
      for (let i = 0; i < 50; i++) {
        const ecdh = createECDH(namedCurve);
        ecdh.generateKeys();
        const point = ecdh.getPublicKey();
        const x = point.subarray(1, 1 + size).toString('base64url');
        const y = point.subarray(1 + size).toString('base64url');
        const publicKey = createPublicKey({ key: { kty: 'EC', crv, x, y }, format: 'jwk' });
        expect(compressPublicKey(publicKey)).toEqual(ecdh.getPublicKey(undefined, 'compressed'));
      }
    }
    expect(() => compressPublicKey(createPublicKey(generateKeyPairSync('ed25519').publicKey))).toThrow(TypeError);
    expect(() => compressPublicKey(generateKeyPairSync('ec', { namedCurve: 'secp521r1' }).publicKey)).toThrow(TypeError);
  });

  it('3,000 signed encrypts without a data-key cache (a key pair and its public key per message) finish: the JWK export this replaced hung within about 1,000', () => {
    // In a child process of its own, with a time limit: a deadlock would otherwise hang the suite.
    // With the JWK export, the same loop of P-384 pairs hung after 200-1,000 pairs in three of three runs.
    const dist = join(resolve(import.meta.dirname, '../..'), 'dist/index.js');
    const script = `
      const { Envelope, RawAesKeyring } = await import(${JSON.stringify(dist)});
      const keyring = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: new Uint8Array(32).fill(7) });
      const envelope = new Envelope({ keyring, cache: false, suite: 0x0578 });
      for (let i = 0; i < 3000; i++) await envelope.encrypt('m');
      console.log('done');`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 90_000 });
    expect(r.signal, 'the child hung and was killed').toBeNull();
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('done');
  }, 120_000);
});
