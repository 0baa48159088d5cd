import { constants, generateKeyPairSync, privateDecrypt, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RawRsaKeyringNode } from '@aws-crypto/client-node';
import { RawRsaKeyring, type RsaPadding } from '../../src/keyrings/index.js';
import { CONTEXTS, esdkUnwrap, esdkWrap } from './helpers.js';

const { publicKey, privateKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
});

const OAEP: [RsaPadding, 'sha1' | 'sha256' | 'sha384' | 'sha512'][] = [
  ['OAEP_SHA1', 'sha1'],
  ['OAEP_SHA256', 'sha256'],
  ['OAEP_SHA384', 'sha384'],
  ['OAEP_SHA512', 'sha512'],
];

describe('RawRsaKeyring: interop with the ESDK RawRsaKeyringNode', () => {
  for (const [padding, oaepHash] of OAEP) {
    it(`${padding}: ours -> ESDK and ESDK -> ours`, async () => {
      const ours = new RawRsaKeyring({ keyNamespace: 'rsa-ns', keyName: 'rsa-kéy', publicKey, privateKey, padding });
      const esdk = new RawRsaKeyringNode({
        keyNamespace: 'rsa-ns',
        keyName: 'rsa-kéy',
        rsaKey: { publicKey, privateKey },
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash,
      });
      for (const suiteId of [0x0478, 0x0578, 0x0014]) {
        const context = CONTEXTS[3]!;
        const mine = await ours.onEncrypt({ suiteId, context });
        expect(mine.encryptedDataKeys[0]!.providerId).toBe('rsa-ns');
        expect(Buffer.from(mine.encryptedDataKeys[0]!.providerInfo).toString()).toBe('rsa-kéy');
        expect(mine.encryptedDataKeys[0]!.ciphertext.length).toBe(256);
        expect(await esdkUnwrap(esdk, suiteId, context, mine.encryptedDataKeys)).toEqual(Buffer.from(mine.dataKey));

        const theirs = await esdkWrap(esdk, suiteId, context);
        const key = await ours.onDecrypt({ suiteId, context, encryptedDataKeys: theirs.edks });
        expect(Buffer.from(key!)).toEqual(theirs.dataKey);
      }
    });
  }

  it('a padding mismatch does not decrypt (OAEP-SHA256 EDK, OAEP-SHA1 keyring)', async () => {
    const a = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey, privateKey, padding: 'OAEP_SHA256' });
    const b = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey, privateKey, padding: 'OAEP_SHA1' });
    const out = await a.onEncrypt({ suiteId: 0x0478, context: {} });
    expect(await b.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: out.encryptedDataKeys })).toBeUndefined();
  });

  it('PKCS1: writes standard PKCS#1 v1.5 type-2 blocks (checked by hand: 00 02 PS 00 key)', async () => {
    const ours = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey, padding: 'PKCS1' });
    const out = await ours.onEncrypt({ suiteId: 0x0478, context: {} });
    const block = privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, out.encryptedDataKeys[0]!.ciphertext);
    expect(block.length).toBe(256);
    expect(block[0]).toBe(0);
    expect(block[1]).toBe(2);
    const sep = block.indexOf(0, 2);
    expect(sep).toBe(256 - 32 - 1);
    expect(block.subarray(2, sep).includes(0)).toBe(false);
    expect(block.subarray(sep + 1)).toEqual(Buffer.from(out.dataKey));
  });

  it('PKCS1 with a private key: works where Node.js allows PKCS#1 v1.5 decryption, else RangeError naming padding', async () => {
    let ours: RawRsaKeyring;
    try {
      ours = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey, privateKey, padding: 'PKCS1' });
    } catch (e) {
      expect(e).toBeInstanceOf(RangeError);
      expect((e as Error).message).toMatch(/options\.padding .*CVE-2023-46809/);
      return;
    }
    const out = await ours.onEncrypt({ suiteId: 0x0478, context: {} });
    expect(await ours.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: out.encryptedDataKeys })).toEqual(out.dataKey);
  });
});

describe('RawRsaKeyring: behaviour', () => {
  it('public-only keyrings encrypt but refuse to decrypt; private-only keyrings decrypt but refuse to encrypt', async () => {
    const enc = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey, padding: 'OAEP_SHA256' });
    const dec = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', privateKey, padding: 'OAEP_SHA256' });
    const out = await enc.onEncrypt({ suiteId: 0x0478, context: {} });
    await expect(enc.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: out.encryptedDataKeys })).rejects.toMatchObject({ code: 'ERR_KEYRING' });
    expect(await dec.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: out.encryptedDataKeys })).toEqual(out.dataKey);
    await expect(dec.onEncrypt({ suiteId: 0x0478, context: {} })).rejects.toMatchObject({ code: 'ERR_KEYRING' });
  });

  it('matches namespace and exact key name; skips undecryptable EDKs; checks the data key length', async () => {
    const ours = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey, privateKey, padding: 'OAEP_SHA256' });
    const dataKey = randomBytes(32);
    const out = await ours.onEncrypt({ suiteId: 0x0478, context: {}, dataKey });
    const edk = out.encryptedDataKeys[0]!;
    const other = { ...edk, providerInfo: Buffer.from('kk') };
    const otherNs = { ...edk, providerId: 'm' };
    const garbage = { ...edk, ciphertext: randomBytes(256) };
    expect(await ours.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: [other, otherNs, garbage] })).toBeUndefined();
    expect(await ours.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: [other, garbage, edk] })).toEqual(dataKey);
    // A 32-byte key is not a key for a 16-byte suite.
    expect(await ours.onDecrypt({ suiteId: 0x0014, context: {}, encryptedDataKeys: [edk] })).toBeUndefined();
  });

  it('validates options', () => {
    const { publicKey: ec } = generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    expect(() => new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', padding: 'OAEP_SHA256' })).toThrow(TypeError);
    expect(() => new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey, padding: 'OAEP_MD5' as never })).toThrow(/options\.padding/);
    expect(() => new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey: 'nope', padding: 'OAEP_SHA256' })).toThrow(/options\.publicKey/);
    expect(() => new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey: ec, padding: 'OAEP_SHA256' })).toThrow(/RSA/);
    expect(() => new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', privateKey: publicKey, padding: 'OAEP_SHA256' })).toThrow(/options\.privateKey/);
    expect(() => new RawRsaKeyring({ keyNamespace: 'aws-kms', keyName: 'k', publicKey, padding: 'OAEP_SHA256' })).toThrow(/reserved/);
    // 1024-bit modulus with OAEP-SHA512: 128 - 2*64 - 2 < 0 bytes of room.
    expect(() => new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey: small.publicKey, padding: 'OAEP_SHA512' })).toThrow(RangeError);
    expect(new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey: small.publicKey, privateKey: small.privateKey, padding: 'OAEP_SHA256' })).toBeInstanceOf(RawRsaKeyring);
  });
});
