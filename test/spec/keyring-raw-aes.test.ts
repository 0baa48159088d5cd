/**
 * Compliance: framework/raw-aes-keyring.md (test/spec/compliance/framework/raw-aes-keyring.md).
 * The wrapping is checked against node:crypto directly, with an encryption context serializer
 * written here from the specification (structures.md, "Serialization"), not the library's own.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RawAesKeyring } from '../../src/keyrings/index.js';
import type { EncryptedDataKey, EncryptionContext } from '../../src/types.js';

/** structures.md serialization: u16 count, then u16-length-prefixed UTF-8 key and value, sorted by key bytes; empty = no bytes. */
function serialize(context: EncryptionContext): Buffer {
  const pairs = Object.entries(context).map(([k, v]) => [Buffer.from(k, 'utf8'), Buffer.from(v, 'utf8')] as const);
  if (pairs.length === 0) return Buffer.alloc(0);
  pairs.sort((a, b) => Buffer.compare(a[0], b[0]));
  const parts: Buffer[] = [u16(pairs.length)];
  for (const [k, v] of pairs) parts.push(u16(k.length), k, u16(v.length), v);
  return Buffer.concat(parts);
}
const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

const CIPHER = { 16: 'aes-128-gcm', 24: 'aes-192-gcm', 32: 'aes-256-gcm' } as const;
const CONTEXT = { tenant: 'a', 'é': '😀', Z: '' };

/** Parses a raw AES EDK by the layout of the specification ("Key Provider Information", "Ciphertext"). */
function layout(edk: EncryptedDataKey, nameLength: number) {
  const info = Buffer.from(edk.providerInfo);
  return {
    name: info.subarray(0, nameLength).toString('utf8'),
    tagBits: info.readUInt32BE(nameLength),
    ivLength: info.readUInt32BE(nameLength + 4),
    iv: info.subarray(nameLength + 8),
    encryptedKey: Buffer.from(edk.ciphertext).subarray(0, edk.ciphertext.length - 16),
    tag: Buffer.from(edk.ciphertext).subarray(edk.ciphertext.length - 16),
  };
}

/** An EDK made here with node:crypto: what a conforming raw AES keyring writes. */
function wrapByHand(opts: { key: Buffer; name: string; iv: Buffer; dataKey: Buffer; context: EncryptionContext; tagBits?: number; ivField?: number }): EncryptedDataKey {
  const c = createCipheriv(CIPHER[opts.key.length as 16 | 24 | 32], opts.key, opts.iv, { authTagLength: 16 });
  c.setAAD(serialize(opts.context));
  const ct = Buffer.concat([c.update(opts.dataKey), c.final(), c.getAuthTag()]);
  const info = Buffer.concat([Buffer.from(opts.name, 'utf8'), u32(opts.tagBits ?? 128), u32(opts.ivField ?? opts.iv.length), opts.iv]);
  return { providerId: 'ns', providerInfo: info, ciphertext: ct };
}

describe('raw AES keyring: initialization', () => {
  it('needs a key namespace, a key name and a wrapping key; each missing or empty one is a TypeError naming it', () => {
    const key = randomBytes(32);
    expect(() => new RawAesKeyring({ keyName: 'k', key } as never)).toThrow(/options\.keyNamespace/);
    expect(() => new RawAesKeyring({ keyNamespace: '', keyName: 'k', key })).toThrow(/options\.keyNamespace/);
    expect(() => new RawAesKeyring({ keyNamespace: 'ns', key } as never)).toThrow(/options\.keyName/);
    expect(() => new RawAesKeyring({ keyNamespace: 'ns', keyName: '', key })).toThrow(/options\.keyName/);
    expect(() => new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k' } as never)).toThrow(/options\.key /);
    expect(new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key })).toBeInstanceOf(RawAesKeyring);
  });

  it('accepts 128-, 192- and 256-bit wrapping keys (AES-GCM, 12-byte IV, 16-byte tag) and refuses every other length with a RangeError', async () => {
    for (const size of [16, 24, 32] as const) {
      const key = randomBytes(size);
      const ring = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key });
      const out = await ring.onEncrypt({ suiteId: 0x0478, context: {} });
      const l = layout(out.encryptedDataKeys[0]!, 1);
      // Decrypts with AES-GCM of exactly that key size.
      const d = createDecipheriv(CIPHER[size], key, l.iv, { authTagLength: 16 });
      d.setAuthTag(l.tag);
      expect(Buffer.concat([d.update(l.encryptedKey), d.final()])).toEqual(Buffer.from(out.dataKey));
    }
    for (const size of [0, 1, 8, 15, 17, 20, 23, 25, 31, 33, 48, 64]) {
      expect(() => new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: randomBytes(size) }), `${size}`).toThrow(RangeError);
      expect(() => new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: randomBytes(size) }), `${size}`).toThrow(/options\.key must be 16, 24 or 32 bytes/);
    }
  });
});

describe('raw AES keyring: OnEncrypt', () => {
  it('without a data key: generates one of the suite key length, fresh and random each call', async () => {
    const ring = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: randomBytes(32) });
    for (const [suiteId, length] of [[0x0014, 16], [0x0046, 24], [0x0078, 32], [0x0478, 32], [0x0578, 32]] as const) {
      const seen = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const out = await ring.onEncrypt({ suiteId, context: {} });
        expect(out.dataKey.length).toBe(length);
        seen.add(Buffer.from(out.dataKey).toString('hex'));
      }
      expect(seen.size).toBe(20);
    }
  });

  it('wraps the data key with AES-GCM under the wrapping key, AAD = serialized context, a fresh random 12-byte IV and a 16-byte tag', async () => {
    const key = randomBytes(32);
    const ring = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'kéy', key });
    const ivs = new Set<string>();
    const contexts: EncryptionContext[] = [{}, CONTEXT, { '\u{1F600}': 'x', '\uFF61': 'y' }];
    for (const context of contexts) {
      const dataKey = randomBytes(32);
      const out = await ring.onEncrypt({ suiteId: 0x0478, context, dataKey });
      const l = layout(out.encryptedDataKeys[0]!, Buffer.byteLength('kéy'));
      expect(l.iv.length).toBe(12);
      expect(l.tag.length).toBe(16);
      ivs.add(l.iv.toString('hex'));
      const d = createDecipheriv('aes-256-gcm', key, l.iv, { authTagLength: 16 });
      d.setAAD(serialize(context));
      d.setAuthTag(l.tag);
      expect(Buffer.concat([d.update(l.encryptedKey), d.final()])).toEqual(dataKey);
      // Another AAD does not authenticate: the context is bound.
      const wrong = createDecipheriv('aes-256-gcm', key, l.iv, { authTagLength: 16 });
      wrong.setAAD(serialize({ ...context, extra: '1' }));
      wrong.setAuthTag(l.tag);
      wrong.update(l.encryptedKey);
      expect(() => wrong.final()).toThrow();
    }
    for (let i = 0; i < 50; i++) {
      const out = await ring.onEncrypt({ suiteId: 0x0478, context: {} });
      ivs.add(layout(out.encryptedDataKeys[0]!, Buffer.byteLength('kéy')).iv.toString('hex'));
    }
    expect(ivs.size).toBe(53);
  });

  it('writes one EDK: provider id = key namespace; provider info = key name, tag bits 128, IV length 12, IV; ciphertext = encrypted key, then tag', async () => {
    const ring = new RawAesKeyring({ keyNamespace: 'name-space ü', keyName: 'key name ü', key: randomBytes(24) });
    const out = await ring.onEncrypt({ suiteId: 0x0478, context: CONTEXT });
    expect(out.encryptedDataKeys).toHaveLength(1);
    const edk = out.encryptedDataKeys[0]!;
    expect(edk.providerId).toBe('name-space ü');
    const n = Buffer.byteLength('key name ü');
    expect(edk.providerInfo.length).toBe(n + 4 + 4 + 12);
    const l = layout(edk, n);
    expect(l.name).toBe('key name ü');
    expect(l.tagBits).toBe(128);
    expect(l.ivLength).toBe(12);
    expect(edk.ciphertext.length).toBe(32 + 16);
  });

  it('with a data key: returns that same key and appends exactly one EDK that decrypts to it', async () => {
    const ring = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: randomBytes(16) });
    const dataKey = randomBytes(16);
    const out = await ring.onEncrypt({ suiteId: 0x0014, context: CONTEXT, dataKey });
    expect(out.dataKey).toBe(dataKey);
    expect(out.encryptedDataKeys).toHaveLength(1);
    expect(await ring.onDecrypt({ suiteId: 0x0014, context: CONTEXT, encryptedDataKeys: out.encryptedDataKeys })).toEqual(dataKey);
  });

  it('fails when the encryption context cannot be serialized (a value over 65,535 bytes, a total over 65,535 bytes, a non-string value)', async () => {
    const ring = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: randomBytes(32) });
    await expect(ring.onEncrypt({ suiteId: 0x0478, context: { k: 'x'.repeat(70_000) } })).rejects.toThrow(RangeError);
    const wide = Object.fromEntries(Array.from({ length: 3 }, (_, i) => [`k${i}`, 'x'.repeat(30_000)]));
    await expect(ring.onEncrypt({ suiteId: 0x0478, context: wide })).rejects.toThrow(RangeError);
    await expect(ring.onEncrypt({ suiteId: 0x0478, context: { k: 5 as never } })).rejects.toThrow(TypeError);
  });
});

describe('raw AES keyring: OnDecrypt', () => {
  const key = randomBytes(32);
  const ring = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'name', key });

  it('decrypts an EDK wrapped by hand: encrypted key and tag from the ciphertext, IV from the provider info, the wrapping key, AAD = serialized context', async () => {
    const dataKey = randomBytes(32);
    const iv = randomBytes(12);
    const edk = wrapByHand({ key, name: 'name', iv, dataKey, context: CONTEXT });
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: CONTEXT, encryptedDataKeys: [edk] })).toEqual(dataKey);
    // Change any one input of the AES-GCM decryption and nothing decrypts.
    const ct = Buffer.from(edk.ciphertext);
    const flipKey = Buffer.from(ct);
    flipKey[0]! ^= 1;
    const flipTag = Buffer.from(ct);
    flipTag[ct.length - 1]! ^= 1;
    const otherIv = Buffer.from(edk.providerInfo);
    otherIv[otherIv.length - 1]! ^= 1;
    for (const bad of [{ ...edk, ciphertext: flipKey }, { ...edk, ciphertext: flipTag }, { ...edk, providerInfo: otherIv }]) {
      expect(await ring.onDecrypt({ suiteId: 0x0478, context: CONTEXT, encryptedDataKeys: [bad] })).toBeUndefined();
    }
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: { ...CONTEXT, tenant: 'b' }, encryptedDataKeys: [edk] })).toBeUndefined();
    const otherKey = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'name', key: randomBytes(32) });
    expect(await otherKey.onDecrypt({ suiteId: 0x0478, context: CONTEXT, encryptedDataKeys: [edk] })).toBeUndefined();
  });

  it('tries the EDKs one by one in list order and returns the key of the first that decrypts', async () => {
    const first = randomBytes(32);
    const second = randomBytes(32);
    const a = wrapByHand({ key, name: 'name', iv: randomBytes(12), dataKey: first, context: {} });
    const b = wrapByHand({ key, name: 'name', iv: randomBytes(12), dataKey: second, context: {} });
    const junk = { ...a, ciphertext: randomBytes(48) };
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: [junk, a, b] })).toEqual(first);
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: [junk, b, a] })).toEqual(second);
  });

  it('skips EDKs whose provider info or ciphertext cannot be deserialized, and goes on to the next', async () => {
    const dataKey = randomBytes(32);
    const good = wrapByHand({ key, name: 'name', iv: randomBytes(12), dataKey, context: {} });
    const info = Buffer.from(good.providerInfo);
    const shortInfo = { ...good, providerInfo: info.subarray(0, info.length - 1) };
    const longInfo = { ...good, providerInfo: Buffer.concat([info, Buffer.from([0])]) };
    const noInfo = { ...good, providerInfo: Buffer.alloc(0) };
    const shortCt = { ...good, ciphertext: Buffer.from(good.ciphertext).subarray(0, 47) };
    const longCt = { ...good, ciphertext: Buffer.concat([Buffer.from(good.ciphertext), Buffer.from([0])]) };
    const noCt = { ...good, ciphertext: Buffer.alloc(0) };
    const bad = [shortInfo, longInfo, noInfo, shortCt, longCt, noCt];
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: bad })).toBeUndefined();
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: [...bad, good] })).toEqual(dataKey);
  });

  it('only attempts EDKs whose provider id equals the key namespace and whose key name equals the key name, exactly', async () => {
    const dataKey = randomBytes(32);
    const good = wrapByHand({ key, name: 'name', iv: randomBytes(12), dataKey, context: {} });
    const iv = randomBytes(12);
    // Same wrapping key and IV, other names: these would decrypt if the name were not checked,
    // because the key name is not part of the AES-GCM input.
    const variants = [
      { ...good, providerId: 'ns2' },
      { ...good, providerId: 'NS' },
      wrapByHand({ key, name: 'nam', iv, dataKey, context: {} }),
      wrapByHand({ key, name: 'names', iv, dataKey, context: {} }),
      wrapByHand({ key, name: 'Name', iv, dataKey, context: {} }),
    ];
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: variants })).toBeUndefined();
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: [...variants, good] })).toEqual(dataKey);
  });

  it('only attempts EDKs whose provider info says tag length 128 bits and IV length 12 bytes', async () => {
    const dataKey = randomBytes(32);
    const iv = randomBytes(12);
    const good = wrapByHand({ key, name: 'name', iv, dataKey, context: {} });
    // Same IV bytes and ciphertext, but the length fields say otherwise: not attempted.
    const tag96 = wrapByHand({ key, name: 'name', iv, dataKey, context: {}, tagBits: 96 });
    const tag127 = wrapByHand({ key, name: 'name', iv, dataKey, context: {}, tagBits: 127 });
    const iv16 = { ...good, providerInfo: Buffer.concat([Buffer.from('name'), u32(128), u32(16), iv, Buffer.alloc(4)]) };
    const iv12but16 = wrapByHand({ key, name: 'name', iv, dataKey, context: {}, ivField: 16 });
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: [tag96, tag127, iv16, iv12but16] })).toBeUndefined();
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: [tag96, iv16, good] })).toEqual(dataKey);
  });

  it('fails when the encryption context cannot be serialized', async () => {
    const edk = wrapByHand({ key, name: 'name', iv: randomBytes(12), dataKey: randomBytes(32), context: {} });
    await expect(ring.onDecrypt({ suiteId: 0x0478, context: { k: 'x'.repeat(70_000) }, encryptedDataKeys: [edk] })).rejects.toThrow(RangeError);
  });
});
