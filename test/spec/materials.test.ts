/**
 * Encryption materials (framework/structures.md, "Encryption Materials") as the format engine
 * accepts them: prepareEncryption is where materials are checked before any byte is written.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { prepareEncryption } from '../../src/format/encrypt.js';
import { generateSigningKey } from '../../src/crypto/ecdsa.js';
import { SUITES } from '../../src/format/suites.js';
import { makeMaterials } from '../format/esdk-helpers.js';

describe('encryption materials (framework/structures.md)', () => {
  it('must carry a committing suite, a data key of its length, at least one encrypted data key and a context', () => {
    const m = makeMaterials(0x0478, { a: 'b' });
    expect(() => prepareEncryption(m, 64)).not.toThrow();
    const { suite: _s, ...noSuite } = m;
    expect(() => prepareEncryption(noSuite as never, 64)).toThrow(RangeError);
    const { dataKey: _d, ...noKey } = m;
    expect(() => prepareEncryption(noKey as never, 64)).toThrow(/dataKey/);
    expect(() => prepareEncryption({ ...m, dataKey: Buffer.alloc(16, 1) }, 64)).toThrow(/dataKey/);
    expect(() => prepareEncryption({ ...m, encryptedDataKeys: [] }, 64)).toThrow(/encryptedDataKeys/);
    const { context: _c, ...noContext } = m;
    expect(() => prepareEncryption(noContext as never, 64)).toThrow(/context/);
  });

  it('a signing key must fit the suite: present for signed suites (on its curve, matching the context), absent for unsigned ones', () => {
    const signed = makeMaterials(0x0578);
    expect(() => prepareEncryption(signed, 64)).not.toThrow();
    const p256 = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    expect(() => prepareEncryption({ ...signed, signingKey: p256 }, 64)).toThrow(/signingKey/);
    const { signingKey, ...unsignedOnly } = signed;
    expect(() => prepareEncryption(unsignedOnly, 64)).toThrow(/signingKey/);
    // An unsigned suite with a signing key (and no public key in the context) is refused too: the
    // key would be present in materials whose suite has no signature algorithm.
    const unsigned = makeMaterials(0x0478);
    expect(() => prepareEncryption({ ...unsigned, signingKey: signingKey! }, 64)).toThrow(/signingKey/);
    expect(() => prepareEncryption({ ...unsigned, signingKey: generateSigningKey(SUITES.get(0x0578)!).privateKey }, 64)).toThrow(
      /signingKey/,
    );
  });
});
