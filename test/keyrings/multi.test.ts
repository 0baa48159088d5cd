import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MultiKeyringNode, RawAesKeyringNode, RawAesWrappingSuiteIdentifier } from '@aws-crypto/client-node';
import { MultiKeyring, RawAesKeyring } from '../../src/keyrings/index.js';
import { KeyringError, NoDecryptableKeyError } from '../../src/errors.js';
import type { Keyring } from '../../src/types.js';
import { esdkUnwrap, esdkWrap } from './helpers.js';

const aes = (name: string, key = randomBytes(32)) => ({ key, ring: new RawAesKeyring({ keyNamespace: 'ns', keyName: name, key }) });
const esdkAes = (name: string, key: Buffer) =>
  new RawAesKeyringNode({
    keyNamespace: 'ns',
    keyName: name,
    unencryptedMasterKey: new Uint8Array(key),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
    utf8Sorting: true,
  });

/** A keyring that fails every call, and counts them. */
class Failing implements Keyring {
  calls = 0;
  kmsCalls = 0;
  async onEncrypt(): Promise<never> {
    this.calls++;
    throw new KeyringError('boom');
  }
  async onDecrypt(): Promise<never> {
    this.calls++;
    this.kmsCalls++;
    throw new KeyringError('boom');
  }
}

describe('MultiKeyring', () => {
  it('generator makes the key, every child wraps the same key; each can decrypt alone', async () => {
    const g = aes('g');
    const c1 = aes('c1');
    const c2 = aes('c2');
    const multi = new MultiKeyring({ generator: g.ring, children: [c1.ring, c2.ring] });
    const out = await multi.onEncrypt({ suiteId: 0x0478, context: { a: 'b' } });
    expect(out.encryptedDataKeys.map((e) => Buffer.from(e.providerInfo).subarray(0, 2).toString())).toEqual(['g\0', 'c1', 'c2']);
    for (const r of [g.ring, c1.ring, c2.ring, multi]) {
      expect(await r.onDecrypt({ suiteId: 0x0478, context: { a: 'b' }, encryptedDataKeys: out.encryptedDataKeys })).toEqual(out.dataKey);
    }
    // And the ESDK's own raw AES keyrings unwrap each EDK to the same key.
    for (const [name, key] of [['g', g.key], ['c1', c1.key], ['c2', c2.key]] as const) {
      expect(await esdkUnwrap(esdkAes(name, key), 0x0478, { a: 'b' }, out.encryptedDataKeys)).toEqual(Buffer.from(out.dataKey));
    }
  });

  it('decrypts what an ESDK MultiKeyringNode wrote', async () => {
    const g = aes('g');
    const c = aes('c');
    const esdk = new MultiKeyringNode({ generator: esdkAes('g', g.key), children: [esdkAes('c', c.key)] });
    const theirs = await esdkWrap(esdk, 0x0578, { x: 'y' });
    expect(theirs.edks).toHaveLength(2);
    const onlyChild = new MultiKeyring({ children: [c.ring] });
    expect(Buffer.from((await onlyChild.onDecrypt({ suiteId: 0x0578, context: { x: 'y' }, encryptedDataKeys: theirs.edks }))!)).toEqual(theirs.dataKey);
  });

  it('decrypt: first success wins, failures are collected, undefined when nothing matched and nothing failed', async () => {
    const g = aes('g');
    const failing = new Failing();
    const out = await g.ring.onEncrypt({ suiteId: 0x0478, context: {} });
    const input = { suiteId: 0x0478, context: {}, encryptedDataKeys: out.encryptedDataKeys };

    // Failing child before a good one: still succeeds.
    expect(await new MultiKeyring({ children: [failing, g.ring] }).onDecrypt(input)).toEqual(out.dataKey);
    // Generator tried first: the failing child after it is never called.
    failing.calls = 0;
    expect(await new MultiKeyring({ generator: g.ring, children: [failing] }).onDecrypt(input)).toEqual(out.dataKey);
    expect(failing.calls).toBe(0);
    // Nothing ours, nothing failed.
    expect(await new MultiKeyring({ children: [aes('other').ring] }).onDecrypt(input)).toBeUndefined();
    // Nothing ours, something failed: NoDecryptableKeyError carrying the causes.
    const err = await new MultiKeyring({ children: [aes('other').ring, failing, failing] }).onDecrypt(input).catch((e) => e);
    expect(err).toBeInstanceOf(NoDecryptableKeyError);
    expect(err.code).toBe('ERR_NO_DECRYPTABLE_KEY');
    expect((err.cause as AggregateError).errors).toHaveLength(2);
  });

  it('encrypt: fails if the generator or a child fails; no generator needs a given data key; a generator refuses one', async () => {
    const g = aes('g');
    await expect(new MultiKeyring({ generator: new Failing() }).onEncrypt({ suiteId: 0x0478, context: {} })).rejects.toThrow('boom');
    await expect(new MultiKeyring({ generator: g.ring, children: [new Failing()] }).onEncrypt({ suiteId: 0x0478, context: {} })).rejects.toThrow('boom');
    await expect(new MultiKeyring({ children: [g.ring] }).onEncrypt({ suiteId: 0x0478, context: {} })).rejects.toBeInstanceOf(KeyringError);
    const dataKey = randomBytes(32);
    const out = await new MultiKeyring({ children: [g.ring, aes('h').ring] }).onEncrypt({ suiteId: 0x0478, context: {}, dataKey });
    expect(out.dataKey).toEqual(dataKey);
    expect(out.encryptedDataKeys).toHaveLength(2);
    await expect(new MultiKeyring({ generator: g.ring }).onEncrypt({ suiteId: 0x0478, context: {}, dataKey })).rejects.toBeInstanceOf(KeyringError);
  });

  it('a child that swaps the data key is rejected', async () => {
    const swapper: Keyring = {
      async onEncrypt(input) {
        return { dataKey: randomBytes(input.dataKey!.length), encryptedDataKeys: [] };
      },
      async onDecrypt() {
        return undefined;
      },
    };
    await expect(new MultiKeyring({ generator: aes('g').ring, children: [swapper] }).onEncrypt({ suiteId: 0x0478, context: {} })).rejects.toThrow(/replaced the data key/);
  });

  it('sums kmsCalls of its keyrings, counting each keyring once', async () => {
    const f1 = new Failing();
    const f2 = new Failing();
    const multi = new MultiKeyring({ generator: f1, children: [f1, f2] });
    await multi.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: [] }).catch(() => undefined);
    expect(f1.kmsCalls + f2.kmsCalls).toBe(3);
    expect(multi.kmsCalls).toBe(3);
    expect(new MultiKeyring({ children: [aes('x').ring] }).kmsCalls).toBe(0);
  });

  it('validates options', () => {
    expect(() => new MultiKeyring({})).toThrow(TypeError);
    expect(() => new MultiKeyring({ children: [] })).toThrow(/generator/);
    expect(() => new MultiKeyring({ generator: {} as never })).toThrow(/options\.generator/);
    expect(() => new MultiKeyring({ children: [aes('a').ring, 5 as never] })).toThrow(/options\.children\[1\]/);
  });
});
