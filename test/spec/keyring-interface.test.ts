/**
 * Compliance: framework/keyring-interface.md (test/spec/compliance/framework/keyring-interface.md).
 * Properties every keyring this library ships must have, checked across the raw AES, raw RSA, multi
 * and KMS keyrings, and how a keyring's "failure" reaches the caller of an Envelope.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { KmsKeyring, MultiKeyring, RawAesKeyring, RawRsaKeyring } from '../../src/keyrings/index.js';
import { Envelope } from '../../src/index.js';
import { LocalKms } from '../../src/local-kms/index.js';
import type { EncryptedDataKey, Keyring, KeyringDecryptInput, KmsClient } from '../../src/types.js';

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

const local = new LocalKms();
afterAll(() => local.close());

/** The in-process local KMS client, recording the operations the keyring sends. */
function recordingKms() {
  const inner = local.client();
  const ops: string[] = [];
  const client: KmsClient = {
    generateDataKey: (i) => (ops.push('GenerateDataKey'), inner.generateDataKey(i)),
    encrypt: (i) => (ops.push('Encrypt'), inner.encrypt(i)),
    decrypt: (i) => (ops.push('Decrypt'), inner.decrypt(i)),
  };
  return { client, ops };
}

/** One keyring of each kind the library offers (the KMS one over the in-process local KMS). */
async function keyrings() {
  const kms = recordingKms();
  const { arn } = await local.createKey();
  const aes = new RawAesKeyring({ keyNamespace: 'ns-aes', keyName: 'aes', key: randomBytes(32) });
  const rsaRing = new RawRsaKeyring({ keyNamespace: 'ns-rsa', keyName: 'rsa', publicKey: rsa.publicKey, privateKey: rsa.privateKey, padding: 'OAEP_SHA256' });
  const kmsRing = new KmsKeyring({ keyId: arn, client: kms.client });
  const multi = new MultiKeyring({ generator: new RawAesKeyring({ keyNamespace: 'ns-multi', keyName: 'g', key: randomBytes(32) }), children: [aes] });
  return { rings: { aes, rsa: rsaRing, kms: kmsRing, multi } as Record<string, Keyring>, kms, arn };
}

const SUITES: [number, number][] = [[0x0014, 16], [0x0046, 24], [0x0078, 32], [0x0114, 16], [0x0146, 24], [0x0178, 32], [0x0214, 16], [0x0346, 24], [0x0378, 32], [0x0478, 32], [0x0578, 32]];
const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);

describe('keyring interface: the keyrings', () => {
  it('every keyring the library offers implements onEncrypt and onDecrypt and carries a message through an Envelope', async () => {
    const { rings } = await keyrings();
    for (const [name, ring] of Object.entries(rings)) {
      expect(typeof ring.onEncrypt, name).toBe('function');
      expect(typeof ring.onDecrypt, name).toBe('function');
      const envelope = new Envelope({ keyring: ring, cache: false });
      const message = await envelope.encrypt(`via ${name}`, { context: { k: name } });
      expect((await envelope.decrypt(message)).plaintext.toString(), name).toBe(`via ${name}`);
    }
  });

  it('raw keyrings take the key namespace and the key name as strings; anything else is a TypeError naming the option', () => {
    for (const bad of [5, null, {}, Buffer.from('ns'), ['ns']]) {
      expect(() => new RawAesKeyring({ keyNamespace: bad as never, keyName: 'k', key: randomBytes(32) })).toThrow(/options\.keyNamespace/);
      expect(() => new RawAesKeyring({ keyNamespace: 'ns', keyName: bad as never, key: randomBytes(32) })).toThrow(/options\.keyName/);
      expect(() => new RawRsaKeyring({ keyNamespace: bad as never, keyName: 'k', publicKey: rsa.publicKey, padding: 'OAEP_SHA1' })).toThrow(/options\.keyNamespace/);
      expect(() => new RawRsaKeyring({ keyNamespace: 'ns', keyName: bad as never, publicKey: rsa.publicKey, padding: 'OAEP_SHA1' })).toThrow(/options\.keyName/);
    }
  });

  it('the provider id goes into the message as the UTF-8 bytes of the key namespace; provider info is bytes (raw RSA: the UTF-8 key name; raw AES: starts with it; KMS: the UTF-8 key ARN)', async () => {
    const aes = new RawAesKeyring({ keyNamespace: 'espace-é', keyName: 'clé-aes', key: randomBytes(32) });
    const rsaRing = new RawRsaKeyring({ keyNamespace: 'espace-ü', keyName: 'clé-rsa', publicKey: rsa.publicKey, padding: 'OAEP_SHA256' });
    const { rings, arn } = await keyrings();
    for (const [ring, ns, info] of [
      [aes, 'espace-é', 'clé-aes'],
      [rsaRing, 'espace-ü', 'clé-rsa'],
      [rings.kms!, 'aws-kms', arn],
    ] as const) {
      const message = await new Envelope({ keyring: ring, cache: false }).encrypt('x');
      const id = Buffer.from(ns, 'utf8');
      const infoBytes = Buffer.from(info, 'utf8');
      // In the header: u16 length || provider id || u16 length || provider info ...
      const at = message.indexOf(Buffer.concat([u16(id.length), id]));
      expect(at, ns).toBeGreaterThan(0);
      const infoLen = message.readUInt16BE(at + 2 + id.length);
      const stored = message.subarray(at + 4 + id.length, at + 4 + id.length + infoLen);
      if (ring === aes) expect(stored.subarray(0, infoBytes.length)).toEqual(infoBytes);
      else expect(stored).toEqual(infoBytes);
    }
  });
});

describe('keyring interface: OnEncrypt', () => {
  it('without a data key every keyring generates one of the suite key derivation input length and returns it with EDKs that decrypt to it', async () => {
    const { rings } = await keyrings();
    for (const [name, ring] of Object.entries(rings)) {
      for (const [suiteId, length] of SUITES) {
        const out = await ring.onEncrypt({ suiteId, context: { s: String(suiteId) } });
        expect(out.dataKey.length, `${name} ${suiteId}`).toBe(length);
        expect(out.encryptedDataKeys.length, name).toBeGreaterThan(0);
        const back = await ring.onDecrypt({ suiteId, context: { s: String(suiteId) }, encryptedDataKeys: out.encryptedDataKeys });
        expect(Buffer.from(back!), `${name} ${suiteId}`).toEqual(Buffer.from(out.dataKey));
      }
    }
  });

  it('with a data key every keyring returns that same key, generates none, and adds EDKs that decrypt to it', async () => {
    const { rings, kms } = await keyrings();
    const multiChildren = new MultiKeyring({ children: [rings.aes!, rings.rsa!, rings.kms!] });
    for (const [name, ring] of Object.entries({ ...rings, multiChildren })) {
      if (name === 'multi') continue; // a multi-keyring with a generator refuses a given key (multi-keyring.md)
      kms.ops.length = 0;
      const dataKey = randomBytes(32);
      const out = await ring.onEncrypt({ suiteId: 0x0478, context: {}, dataKey });
      expect(out.dataKey, name).toBe(dataKey);
      expect(kms.ops, name).not.toContain('GenerateDataKey');
      expect(out.encryptedDataKeys.length, name).toBeGreaterThan(0);
      for (const edk of out.encryptedDataKeys) {
        const back = await ring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: [edk] });
        expect(Buffer.from(back!), name).toEqual(dataKey);
      }
    }
  });

  it('without a data key nothing but the new key is wrapped: the KMS keyring calls GenerateDataKey first, and Encrypt only for the key it generated', async () => {
    const kms = recordingKms();
    const a = (await local.createKey()).arn;
    const b = (await local.createKey()).arn;
    const ring = new KmsKeyring({ keyIds: [a, b], client: kms.client });
    const out = await ring.onEncrypt({ suiteId: 0x0478, context: {} });
    expect(kms.ops).toEqual(['GenerateDataKey', 'Encrypt']);
    const viaB = await new KmsKeyring({ keyId: b, client: local.client() }).onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: out.encryptedDataKeys });
    expect(viaB).toEqual(out.dataKey);
  });

  it('a keyring that cannot generate or encrypt fails (ERR_KEYRING) and returns nothing: a discovery KMS keyring, a raw RSA keyring without a public key', async () => {
    const kms = recordingKms();
    const discovery = new KmsKeyring({ discovery: true, client: kms.client });
    const privateOnly = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', privateKey: rsa.privateKey, padding: 'OAEP_SHA256' });
    for (const ring of [discovery, privateOnly]) {
      await expect(ring.onEncrypt({ suiteId: 0x0478, context: {} })).rejects.toMatchObject({ code: 'ERR_KEYRING' });
      await expect(ring.onEncrypt({ suiteId: 0x0478, context: {}, dataKey: randomBytes(32) })).rejects.toMatchObject({ code: 'ERR_KEYRING' });
    }
    expect(kms.ops).toEqual([]);
    await expect(new Envelope({ keyring: discovery, cache: false }).encrypt('x')).rejects.toMatchObject({ code: 'ERR_KEYRING' });
  });

  it('no keyring stores the encryption context in the EDKs it returns', async () => {
    const { rings } = await keyrings();
    const marker = 'ctx-marker-5f3a9c';
    for (const [name, ring] of Object.entries(rings)) {
      const out = await ring.onEncrypt({ suiteId: 0x0478, context: { [marker]: marker + '-value' } });
      for (const edk of out.encryptedDataKeys) {
        const all = Buffer.concat([Buffer.from(edk.providerId), Buffer.from(edk.providerInfo), Buffer.from(edk.ciphertext)]);
        expect(all.includes(marker), name).toBe(false);
      }
    }
  });

  it('generated data keys are random: 200 from each keyring are all different, and no byte position is constant', async () => {
    const { rings } = await keyrings();
    for (const [name, ring] of Object.entries(rings)) {
      const keys: Buffer[] = [];
      for (let i = 0; i < 200; i++) keys.push(Buffer.from((await ring.onEncrypt({ suiteId: 0x0478, context: {} })).dataKey));
      expect(new Set(keys.map((k) => k.toString('hex'))).size, name).toBe(200);
      for (let p = 0; p < 32; p++) expect(new Set(keys.map((k) => k[p])).size, `${name} byte ${p}`).toBeGreaterThan(50);
    }
  });
});

describe('keyring interface: OnDecrypt', () => {
  it('a keyring is never asked to decrypt once a data key is known: its input holds no data key, the Envelope asks once per message, a multi-keyring and a KMS keyring stop at the first key', async () => {
    const aes = new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', key: randomBytes(32) });
    const inputs: KeyringDecryptInput[] = [];
    const watched: Keyring = { onEncrypt: (i) => aes.onEncrypt(i), onDecrypt: (i) => (inputs.push(i), aes.onDecrypt(i)) };
    const envelope = new Envelope({ keyring: watched, cache: false });
    const message = await envelope.encrypt('x');
    await envelope.decrypt(message);
    expect(inputs).toHaveLength(1);
    expect(Object.keys(inputs[0]!).sort()).toEqual(['context', 'encryptedDataKeys', 'suiteId']);
    // Multi-keyring: the child after the one that found the key is not called.
    let later = 0;
    const after: Keyring = { onEncrypt: (i) => aes.onEncrypt(i), onDecrypt: async () => (later++, undefined) };
    const out = await aes.onEncrypt({ suiteId: 0x0478, context: {} });
    await new MultiKeyring({ children: [aes, after] }).onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: out.encryptedDataKeys });
    expect(later).toBe(0);
    // KMS keyring: two EDKs it could decrypt, one request.
    const kms = recordingKms();
    const { arn } = await local.createKey();
    const ring = new KmsKeyring({ keyId: arn, client: kms.client });
    const e1 = await ring.onEncrypt({ suiteId: 0x0478, context: {} });
    const e2 = await ring.onEncrypt({ suiteId: 0x0478, context: {} });
    kms.ops.length = 0;
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: [...e1.encryptedDataKeys, ...e2.encryptedDataKeys] })).toEqual(e1.dataKey);
    expect(kms.ops).toEqual(['Decrypt']);
  });

  it('given the suite, the context and the EDKs, each keyring returns the data key of an EDK it can decrypt', async () => {
    const { rings } = await keyrings();
    const all: EncryptedDataKey[] = [];
    const keys = new Map<string, Uint8Array>();
    for (const [name, ring] of Object.entries(rings)) {
      const out = await ring.onEncrypt({ suiteId: 0x0478, context: { who: 'all' } });
      all.push(...out.encryptedDataKeys);
      keys.set(name, out.dataKey);
    }
    // Every keyring sees every EDK; each returns the key of the first EDK it can open (the
    // multi-keyring's generator opens the multi-keyring's own first EDK).
    for (const [name, ring] of Object.entries(rings)) {
      const mine = await ring.onDecrypt({ suiteId: 0x0478, context: { who: 'all' }, encryptedDataKeys: all });
      expect(Buffer.from(mine!), name).toEqual(Buffer.from(keys.get(name)!));
    }
  });

  it('a keyring that decrypts no EDK returns undefined and changes nothing; the Envelope then fails with ERR_NO_DECRYPTABLE_KEY', async () => {
    const { rings } = await keyrings();
    const stranger = new RawAesKeyring({ keyNamespace: 'other', keyName: 'other', key: randomBytes(32) });
    const message = await new Envelope({ keyring: stranger, cache: false }).encrypt('x', { context: { a: 'b' } });
    const out = await stranger.onEncrypt({ suiteId: 0x0478, context: { a: 'b' } });
    for (const [name, ring] of Object.entries(rings)) {
      const edks = Object.freeze(out.encryptedDataKeys.map((e) => Object.freeze({ ...e })));
      const context = Object.freeze({ a: 'b' });
      const snapshot = JSON.stringify([edks, context]);
      expect(await ring.onDecrypt(Object.freeze({ suiteId: 0x0478, context, encryptedDataKeys: edks })), name).toBeUndefined();
      expect(JSON.stringify([edks, context]), name).toBe(snapshot);
      await expect(new Envelope({ keyring: ring, cache: false }).decrypt(message), name).rejects.toMatchObject({ code: 'ERR_NO_DECRYPTABLE_KEY' });
    }
  });
});

describe('keyring interface: security considerations', () => {
  it('a changed byte anywhere in a raw AES EDK, a raw RSA (OAEP) EDK ciphertext or a KMS EDK ciphertext makes it undecryptable', async () => {
    const { rings } = await keyrings();
    for (const name of ['aes', 'rsa', 'kms']) {
      const ring = rings[name]!;
      const out = await ring.onEncrypt({ suiteId: 0x0478, context: { t: '1' } });
      const edk = out.encryptedDataKeys[0]!;
      const fields: ('ciphertext' | 'providerInfo')[] = name === 'aes' ? ['ciphertext', 'providerInfo'] : ['ciphertext'];
      for (const field of fields) {
        for (let i = 0; i < edk[field].length; i++) {
          const changed = Buffer.from(edk[field]);
          changed[i]! ^= 1 << i % 8;
          const tampered = { ...edk, [field]: changed };
          const got = await ring.onDecrypt({ suiteId: 0x0478, context: { t: '1' }, encryptedDataKeys: [tampered] }).catch(() => undefined);
          expect(got, `${name} ${field}[${i}]`).toBeUndefined();
        }
      }
    }
  });

  it('the context is bound: raw AES and KMS EDKs do not decrypt under another context; for raw RSA, which the specification does not bind, the message header authentication does', async () => {
    const { rings } = await keyrings();
    for (const name of ['aes', 'kms']) {
      const ring = rings[name]!;
      const out = await ring.onEncrypt({ suiteId: 0x0478, context: { t: 'aaaa' } });
      for (const context of [{ t: 'bbbb' }, {}, { t: 'aaaa', u: '' }] as Record<string, string>[]) {
        const got = await ring.onDecrypt({ suiteId: 0x0478, context, encryptedDataKeys: out.encryptedDataKeys }).catch(() => undefined);
        expect(got, `${name} ${JSON.stringify(context)}`).toBeUndefined();
      }
    }
    const envelope = new Envelope({ keyring: rings.rsa!, cache: false });
    const message = await envelope.encrypt('x', { context: { t: 'aaaa' } });
    const at = message.indexOf('aaaa');
    const forged = Buffer.from(message);
    forged.write('bbbb', at);
    await expect(envelope.decrypt(forged)).rejects.toMatchObject({ code: 'ERR_DECRYPTION_FAILED' });
  });
});
