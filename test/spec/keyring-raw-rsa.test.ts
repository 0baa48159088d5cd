/**
 * Compliance: framework/raw-rsa-keyring.md (test/spec/compliance/framework/raw-rsa-keyring.md).
 * OAEP is checked by decoding the RSA output by hand (RFC 8017 section 7.1.2), so the hash used by
 * MGF1 is verified independently of node:crypto's OAEP implementation.
 */
import { constants, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, privateDecrypt, publicEncrypt, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RawRsaKeyring, type RsaPadding } from '../../src/keyrings/index.js';
import type { EncryptedDataKey } from '../../src/types.js';

const pem = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
});
const { publicKey, privateKey } = pem;
const OAEP: [RsaPadding, 'sha1' | 'sha256' | 'sha384' | 'sha512'][] = [
  ['OAEP_SHA1', 'sha1'],
  ['OAEP_SHA256', 'sha256'],
  ['OAEP_SHA384', 'sha384'],
  ['OAEP_SHA512', 'sha512'],
];
const SUITE = 0x0478;

/** MGF1 (RFC 8017 B.2.1) with hash `h`. */
function mgf1(h: string, seed: Buffer, length: number): Buffer {
  const out: Buffer[] = [];
  for (let c = 0; Buffer.concat(out).length < length; c++) {
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(c);
    out.push(createHash(h).update(seed).update(counter).digest());
  }
  return Buffer.concat(out).subarray(0, length);
}

/** Raw RSA, then EME-OAEP decoding by hand with hash `h` for both the label hash and MGF1. */
function oaepDecodeByHand(ciphertext: Uint8Array, h: string): Buffer {
  const em = privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, ciphertext);
  const hLen = createHash(h).digest().length;
  expect(em[0]).toBe(0);
  const maskedSeed = em.subarray(1, 1 + hLen);
  const maskedDb = em.subarray(1 + hLen);
  const seed = xor(maskedSeed, mgf1(h, maskedDb, hLen));
  const db = xor(maskedDb, mgf1(h, seed, maskedDb.length));
  expect(db.subarray(0, hLen)).toEqual(createHash(h).digest()); // lHash of the empty label
  const one = db.indexOf(1, hLen);
  expect(db.subarray(hLen, one).every((b) => b === 0)).toBe(true);
  return db.subarray(one + 1);
}
const xor = (a: Buffer, b: Buffer) => Buffer.from(a.map((x, i) => x ^ b[i]!));

describe('raw RSA keyring: initialization', () => {
  it('needs a key namespace, a key name, a padding scheme and a public and/or a private key; each missing one is a TypeError naming it', () => {
    expect(() => new RawRsaKeyring({ keyName: 'k', publicKey, padding: 'OAEP_SHA256' } as never)).toThrow(/options\.keyNamespace/);
    expect(() => new RawRsaKeyring({ keyNamespace: 'n', publicKey, padding: 'OAEP_SHA256' } as never)).toThrow(/options\.keyName/);
    expect(() => new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey } as never)).toThrow(/options\.padding/);
    expect(() => new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', padding: 'OAEP_SHA256' })).toThrow(/options\.publicKey .*options\.privateKey/);
    expect(new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey, padding: 'OAEP_SHA256' })).toBeInstanceOf(RawRsaKeyring);
    expect(new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', privateKey, padding: 'OAEP_SHA256' })).toBeInstanceOf(RawRsaKeyring);
  });

  it('accepts exactly the five padding schemes of the specification and refuses any other (TypeError naming options.padding)', () => {
    for (const padding of ['PKCS1', 'OAEP_SHA1', 'OAEP_SHA256', 'OAEP_SHA384', 'OAEP_SHA512'] as const) {
      expect(new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey, padding }).padding).toBe(padding);
    }
    for (const padding of ['OAEP_MD5', 'OAEP_SHA224', 'NONE', 'PSS', 'oaep_sha256', 'RSA_PKCS1_OAEP_PADDING', '', 4, undefined]) {
      expect(() => new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey, padding: padding as never }), String(padding)).toThrow(/options\.padding/);
    }
  });

  it('loads a PEM X.509 SubjectPublicKeyInfo public key and a PEM PKCS #8 private key (and PKCS #1, DER via KeyObject); refuses keys that are not RSA', async () => {
    expect(publicKey).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const pkcs1Public = createPublicKey(publicKey).export({ type: 'pkcs1', format: 'pem' });
    const pkcs1Private = createPrivateKey(privateKey).export({ type: 'pkcs1', format: 'pem' });
    const derObject = createPrivateKey({ key: createPrivateKey(privateKey).export({ type: 'pkcs8', format: 'der' }), format: 'der', type: 'pkcs8' });
    const enc = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey, padding: 'OAEP_SHA256' });
    const out = await enc.onEncrypt({ suiteId: SUITE, context: {} });
    for (const p of [privateKey, pkcs1Private, derObject]) {
      const dec = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', privateKey: p, padding: 'OAEP_SHA256' });
      expect(await dec.onDecrypt({ suiteId: SUITE, context: {}, encryptedDataKeys: out.encryptedDataKeys })).toEqual(out.dataKey);
    }
    const enc1 = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey: pkcs1Public, padding: 'OAEP_SHA256' });
    const out1 = await enc1.onEncrypt({ suiteId: SUITE, context: {} });
    expect(oaepDecodeByHand(out1.encryptedDataKeys[0]!.ciphertext, 'sha256')).toEqual(Buffer.from(out1.dataKey));

    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ed = generateKeyPairSync('ed25519');
    for (const k of [ec.publicKey, ed.publicKey, 'not a key']) {
      expect(() => new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey: k, padding: 'OAEP_SHA256' })).toThrow(TypeError);
    }
    for (const k of [ec.privateKey, ed.privateKey, publicKey]) {
      expect(() => new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', privateKey: k, padding: 'OAEP_SHA256' })).toThrow(/options\.privateKey/);
    }
  });

  it('every private key it can be given carries the CRT components: node:crypto cannot build an RSA private key without them', () => {
    const jwk = createPrivateKey(privateKey).export({ format: 'jwk' });
    for (const c of ['e', 'p', 'q', 'dp', 'dq', 'qi']) expect(typeof jwk[c as keyof typeof jwk], c).toBe('string');
    const { n, e, d } = jwk;
    expect(() => createPrivateKey({ key: { kty: 'RSA', n, e, d }, format: 'jwk' })).toThrow();
  });
});

describe('raw RSA keyring: OnEncrypt', () => {
  it('fails (ERR_KEYRING) without a public key, and does not derive one from the private key', async () => {
    const dec = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', privateKey, padding: 'OAEP_SHA256' });
    await expect(dec.onEncrypt({ suiteId: SUITE, context: {} })).rejects.toMatchObject({ code: 'ERR_KEYRING' });
    await expect(dec.onEncrypt({ suiteId: SUITE, context: {}, dataKey: randomBytes(32) })).rejects.toMatchObject({ code: 'ERR_KEYRING' });
  });

  it('refuses a private key given as options.publicKey: it does not derive the public key from it', () => {
    for (const k of [privateKey, createPrivateKey(privateKey)]) {
      expect(() => new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey: k, padding: 'OAEP_SHA256' })).toThrow(/options\.publicKey/);
    }
  });

  it('without a data key: generates a fresh random one of the suite key length', async () => {
    const ring = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey, padding: 'OAEP_SHA256' });
    for (const [suiteId, length] of [[0x0014, 16], [0x0046, 24], [0x0478, 32]] as const) {
      const seen = new Set<string>();
      for (let i = 0; i < 10; i++) {
        const out = await ring.onEncrypt({ suiteId, context: {} });
        expect(out.dataKey.length).toBe(length);
        seen.add(Buffer.from(out.dataKey).toString('hex'));
      }
      expect(seen.size).toBe(10);
    }
  });

  for (const [padding, hash] of OAEP) {
    it(`${padding}: the EDK ciphertext is RSA-OAEP of the data key under the public key, with ${hash} for the label hash and for MGF1`, async () => {
      const ring = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey, padding });
      const dataKey = randomBytes(32);
      const out = await ring.onEncrypt({ suiteId: SUITE, context: {}, dataKey });
      expect(out.dataKey).toBe(dataKey);
      expect(out.encryptedDataKeys).toHaveLength(1);
      expect(out.encryptedDataKeys[0]!.ciphertext.length).toBe(256);
      expect(oaepDecodeByHand(out.encryptedDataKeys[0]!.ciphertext, hash)).toEqual(dataKey);
    });
  }

  it('PKCS1: the EDK ciphertext is an RSAES-PKCS1-v1_5 block of the data key under the public key', async () => {
    const ring = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey, padding: 'PKCS1' });
    const dataKey = randomBytes(32);
    const out = await ring.onEncrypt({ suiteId: SUITE, context: {}, dataKey });
    const em = privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, out.encryptedDataKeys[0]!.ciphertext);
    expect([em[0], em[1]]).toEqual([0, 2]);
    const sep = em.indexOf(0, 2);
    expect(sep).toBeGreaterThanOrEqual(10);
    expect(em.subarray(sep + 1)).toEqual(dataKey);
  });

  it('writes one EDK: provider id = key namespace, provider info = key name (UTF-8)', async () => {
    const ring = new RawRsaKeyring({ keyNamespace: 'rsa ns ü', keyName: 'rsa kéy', publicKey, padding: 'OAEP_SHA1' });
    const out = await ring.onEncrypt({ suiteId: SUITE, context: { a: 'b' } });
    expect(out.encryptedDataKeys).toHaveLength(1);
    expect(out.encryptedDataKeys[0]!.providerId).toBe('rsa ns ü');
    expect(Buffer.from(out.encryptedDataKeys[0]!.providerInfo)).toEqual(Buffer.from('rsa kéy', 'utf8'));
  });
});

describe('raw RSA keyring: OnDecrypt', () => {
  const ring = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', privateKey, padding: 'OAEP_SHA256' });
  const wrap = (dataKey: Buffer, providerId = 'n', name = 'k'): EncryptedDataKey => ({
    providerId,
    providerInfo: Buffer.from(name, 'utf8'),
    ciphertext: publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, dataKey),
  });

  it('fails (ERR_KEYRING) without a private key', async () => {
    const enc = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey, padding: 'OAEP_SHA256' });
    const out = await enc.onEncrypt({ suiteId: SUITE, context: {} });
    await expect(enc.onDecrypt({ suiteId: SUITE, context: {}, encryptedDataKeys: out.encryptedDataKeys })).rejects.toMatchObject({ code: 'ERR_KEYRING' });
    await expect(enc.onDecrypt({ suiteId: SUITE, context: {}, encryptedDataKeys: [] })).rejects.toMatchObject({ code: 'ERR_KEYRING' });
  });

  it('decrypts an EDK wrapped with RSA-OAEP outside the keyring: private key, configured padding, EDK ciphertext as input', async () => {
    const dataKey = randomBytes(32);
    expect(await ring.onDecrypt({ suiteId: SUITE, context: {}, encryptedDataKeys: [wrap(dataKey)] })).toEqual(dataKey);
    // The same key wrapped with another OAEP hash does not decrypt under OAEP_SHA256.
    const sha1 = { ...wrap(dataKey), ciphertext: publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, dataKey) };
    expect(await ring.onDecrypt({ suiteId: SUITE, context: {}, encryptedDataKeys: [sha1] })).toBeUndefined();
  });

  it('tries the EDKs in list order and returns the key of the first that decrypts', async () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    const junk = { ...wrap(a), ciphertext: randomBytes(256) };
    expect(await ring.onDecrypt({ suiteId: SUITE, context: {}, encryptedDataKeys: [junk, wrap(a), wrap(b)] })).toEqual(a);
    expect(await ring.onDecrypt({ suiteId: SUITE, context: {}, encryptedDataKeys: [junk, wrap(b), wrap(a)] })).toEqual(b);
  });

  it('attempts only EDKs whose provider id equals the key namespace and provider info equals the key name, exactly', async () => {
    const dataKey = randomBytes(32);
    // All decryptable with our private key: only the namespace/name decides.
    const others = [wrap(dataKey, 'N'), wrap(dataKey, 'n2'), wrap(dataKey, 'n', 'K'), wrap(dataKey, 'n', 'kk'), wrap(dataKey, 'n', ''), wrap(dataKey, 'n', 'k\0')];
    expect(await ring.onDecrypt({ suiteId: SUITE, context: {}, encryptedDataKeys: others })).toBeUndefined();
    expect(await ring.onDecrypt({ suiteId: SUITE, context: {}, encryptedDataKeys: [...others, wrap(dataKey)] })).toEqual(dataKey);
  });
});
