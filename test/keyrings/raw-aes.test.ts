import { randomBytes, createSecretKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RawAesKeyringNode, RawAesWrappingSuiteIdentifier, type WrappingSuiteIdentifier } from '@aws-crypto/client-node';
import { RawAesKeyring } from '../../src/keyrings/index.js';
import { serializeContext } from '../../src/format/context.js';
import { CONTEXTS, esdkUnwrap, esdkWrap } from './helpers.js';

const WRAPPING: Record<number, WrappingSuiteIdentifier> = {
  16: RawAesWrappingSuiteIdentifier.AES128_GCM_IV12_TAG16_NO_PADDING,
  24: RawAesWrappingSuiteIdentifier.AES192_GCM_IV12_TAG16_NO_PADDING,
  32: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
};
const SUITES = [0x0478, 0x0578, 0x0014, 0x0046, 0x0178, 0x0378];

function pair(size: number, keyName = 'key-name ü') {
  const key = randomBytes(size);
  const ours = new RawAesKeyring({ keyNamespace: 'ns-ü', keyName, key });
  const esdk = new RawAesKeyringNode({
    keyNamespace: 'ns-ü',
    keyName,
    unencryptedMasterKey: new Uint8Array(key),
    wrappingSuite: WRAPPING[size]!,
    utf8Sorting: true,
  });
  return { key, ours, esdk };
}

describe('RawAesKeyring: EDK layout', () => {
  it('writes providerInfo = name || 128 || 12 || IV and ciphertext = GCM(key) || tag', async () => {
    const { ours } = pair(32, 'kn');
    const out = await ours.onEncrypt({ suiteId: 0x0478, context: { a: 'b' } });
    expect(out.dataKey.length).toBe(32);
    expect(out.encryptedDataKeys).toHaveLength(1);
    const edk = out.encryptedDataKeys[0]!;
    expect(edk.providerId).toBe('ns-ü');
    const info = Buffer.from(edk.providerInfo);
    expect(info.length).toBe(2 + 4 + 4 + 12);
    expect(info.subarray(0, 2).toString()).toBe('kn');
    expect(info.readUInt32BE(2)).toBe(128);
    expect(info.readUInt32BE(6)).toBe(12);
    expect(edk.ciphertext.length).toBe(32 + 16);
  });

  it('uses a fresh IV and data key each time', async () => {
    const { ours } = pair(16);
    const a = await ours.onEncrypt({ suiteId: 0x0478, context: {} });
    const b = await ours.onEncrypt({ suiteId: 0x0478, context: {} });
    expect(Buffer.compare(Buffer.from(a.dataKey), Buffer.from(b.dataKey))).not.toBe(0);
    expect(Buffer.compare(Buffer.from(a.encryptedDataKeys[0]!.providerInfo), Buffer.from(b.encryptedDataKeys[0]!.providerInfo))).not.toBe(0);
  });

  it('wraps a given data key without replacing it', async () => {
    const { ours } = pair(24);
    const dataKey = randomBytes(32);
    const out = await ours.onEncrypt({ suiteId: 0x0478, context: {}, dataKey });
    expect(out.dataKey).toBe(dataKey);
    expect(await ours.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: out.encryptedDataKeys })).toEqual(dataKey);
  });
});

describe('RawAesKeyring: interop with the ESDK RawAesKeyringNode (utf8Sorting: true)', () => {
  for (const size of [16, 24, 32]) {
    for (const suiteId of SUITES) {
      it(`AES-${size * 8} wrapping, suite 0x${suiteId.toString(16).padStart(4, '0')}: ours -> ESDK and ESDK -> ours`, async () => {
        const { ours, esdk } = pair(size);
        for (const context of CONTEXTS) {
          const mine = await ours.onEncrypt({ suiteId, context });
          const unwrapped = await esdkUnwrap(esdk, suiteId, context, mine.encryptedDataKeys);
          expect(unwrapped).toEqual(Buffer.from(mine.dataKey));

          const theirs = await esdkWrap(esdk, suiteId, context);
          const key = await ours.onDecrypt({ suiteId, context, encryptedDataKeys: theirs.edks });
          expect(Buffer.from(key!)).toEqual(theirs.dataKey);
        }
      });
    }
  }

  it('serializes the AAD sorted by UTF-8 bytes, not UTF-16 code units', () => {
    // U+1F600 encodes as F0.., U+FF61 as EF..: UTF-8 order puts U+FF61 first, UTF-16 order the emoji.
    const aad = serializeContext({ '\u{1F600}': 'x', '\uFF61': 'y' });
    expect(aad.readUInt16BE(0)).toBe(2);
    expect(aad.subarray(4, 7).toString()).toBe('\uFF61');
  });

  it('the ESDK without utf8Sorting disagrees on such a context (proves the test is sensitive)', async () => {
    const key = randomBytes(32);
    const ours = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key });
    const legacy = new RawAesKeyringNode({
      keyNamespace: 'ns',
      keyName: 'k',
      unencryptedMasterKey: new Uint8Array(key),
      wrappingSuite: WRAPPING[32]!,
    });
    const context = CONTEXTS[4]!;
    const mine = await ours.onEncrypt({ suiteId: 0x0478, context });
    // The ESDK's raw keyring swallows the GCM failure and finds no key.
    expect(await esdkUnwrap(legacy, 0x0478, context, mine.encryptedDataKeys)).toBeUndefined();
    const withSorting = new RawAesKeyringNode({
      keyNamespace: 'ns',
      keyName: 'k',
      unencryptedMasterKey: new Uint8Array(key),
      wrappingSuite: WRAPPING[32]!,
      utf8Sorting: true,
    });
    expect(await esdkUnwrap(withSorting, 0x0478, context, mine.encryptedDataKeys)).toEqual(Buffer.from(mine.dataKey));
  });
});

describe('RawAesKeyring: decrypt', () => {
  it('returns undefined for another namespace, another key name, a wrong key or a wrong context', async () => {
    const { key, ours } = pair(32, 'name');
    const out = await ours.onEncrypt({ suiteId: 0x0478, context: { a: '1' } });
    const edks = out.encryptedDataKeys;
    const otherNs = new RawAesKeyring({ keyNamespace: 'other', keyName: 'name', key });
    const otherName = new RawAesKeyring({ keyNamespace: 'ns-ü', keyName: 'name2', key });
    const prefixName = new RawAesKeyring({ keyNamespace: 'ns-ü', keyName: 'nam', key });
    const otherKey = new RawAesKeyring({ keyNamespace: 'ns-ü', keyName: 'name', key: randomBytes(32) });
    for (const k of [otherNs, otherName, prefixName, otherKey]) {
      expect(await k.onDecrypt({ suiteId: 0x0478, context: { a: '1' }, encryptedDataKeys: edks })).toBeUndefined();
    }
    expect(await ours.onDecrypt({ suiteId: 0x0478, context: { a: '2' }, encryptedDataKeys: edks })).toBeUndefined();
    expect(await ours.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: edks })).toBeUndefined();
    // Data key length must match the suite: a 32-byte key is not a 0x0014 (16-byte) key.
    expect(await ours.onDecrypt({ suiteId: 0x0014, context: { a: '1' }, encryptedDataKeys: edks })).toBeUndefined();
    expect(Buffer.from((await ours.onDecrypt({ suiteId: 0x0478, context: { a: '1' }, encryptedDataKeys: edks }))!)).toEqual(
      Buffer.from(out.dataKey),
    );
  });

  it('skips EDKs that fail authentication and uses a later one', async () => {
    const { ours } = pair(32);
    const out = await ours.onEncrypt({ suiteId: 0x0478, context: {} });
    const good = out.encryptedDataKeys[0]!;
    const ct = Buffer.from(good.ciphertext);
    ct[0]! ^= 1;
    const tampered = { ...good, ciphertext: ct };
    const info = Buffer.from(good.providerInfo);
    info.writeUInt32BE(96, info.length - 16); // tag length field
    const badTag = { ...good, providerInfo: info };
    const truncated = { ...good, ciphertext: good.ciphertext.subarray(1) };
    const key = await ours.onDecrypt({
      suiteId: 0x0478,
      context: {},
      encryptedDataKeys: [tampered, badTag, truncated, { providerId: 'x', providerInfo: Buffer.alloc(0), ciphertext: Buffer.alloc(0) }, good],
    });
    expect(Buffer.from(key!)).toEqual(Buffer.from(out.dataKey));
    expect(await ours.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: [tampered, badTag, truncated] })).toBeUndefined();
  });

  it('copies the wrapping key at construction', async () => {
    const key = randomBytes(32);
    const copy = Buffer.from(key);
    const ours = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key });
    key.fill(0);
    const out = await ours.onEncrypt({ suiteId: 0x0478, context: {} });
    const other = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: copy });
    expect(await other.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: out.encryptedDataKeys })).toEqual(out.dataKey);
  });

  it('accepts a secret KeyObject', async () => {
    const raw = randomBytes(16);
    const a = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: createSecretKey(raw) });
    const b = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: raw });
    const out = await a.onEncrypt({ suiteId: 0x0478, context: {} });
    expect(await b.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: out.encryptedDataKeys })).toEqual(out.dataKey);
  });
});

describe('RawAesKeyring: options', () => {
  const key = randomBytes(32);
  it('rejects bad options with TypeError/RangeError naming the option', () => {
    expect(() => new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: randomBytes(20) })).toThrow(RangeError);
    expect(() => new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: randomBytes(20) })).toThrow(/options\.key .*16, 24 or 32 bytes/);
    expect(() => new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: 'abc' as never })).toThrow(TypeError);
    expect(() => new RawAesKeyring({ keyNamespace: '', keyName: 'k', key })).toThrow(/options\.keyNamespace/);
    expect(() => new RawAesKeyring({ keyNamespace: 'ns', keyName: '', key })).toThrow(/options\.keyName/);
    expect(() => new RawAesKeyring({ keyNamespace: 'aws-kms', keyName: 'k', key })).toThrow(/reserved/);
    expect(() => new RawAesKeyring({ keyNamespace: 'ns', keyName: 'x'.repeat(70000), key })).toThrow(RangeError);
    expect(() => new RawAesKeyring(null as never)).toThrow(TypeError);
  });

  it('never puts key bytes in error messages', () => {
    const bad = Buffer.alloc(20, 0xab);
    try {
      new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: bad });
    } catch (e) {
      expect(String((e as Error).message)).not.toMatch(/ab{2}|171/);
    }
  });

  it('rejects an unknown suite and a data key of the wrong length', async () => {
    const ours = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key });
    await expect(ours.onEncrypt({ suiteId: 0x9999, context: {} })).rejects.toThrow(RangeError);
    await expect(ours.onEncrypt({ suiteId: 0x0478, context: {}, dataKey: randomBytes(16) })).rejects.toMatchObject({
      code: 'ERR_KEYRING',
    });
  });
});
