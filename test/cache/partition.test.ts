/**
 * Issue 10, hole 7 (cache edge cases): the encrypt partition is computed from the one validated
 * copy of the caller's context. The caller's object is read once; the partition, the keyring call
 * and the header all come from that read, so an object that reads differently twice (a getter, a
 * Proxy) cannot make a cached entry's context differ from its partition ("poison" it).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Envelope, RawAesKeyring, type EncryptionContext, type KeyringEncryptInput } from '../../src/index.js';

function setup() {
  const inner = new RawAesKeyring({ keyNamespace: 'part', keyName: 'k', key: randomBytes(32) });
  const seen: EncryptionContext[] = [];
  const keyring = {
    onEncrypt: (input: KeyringEncryptInput) => {
      seen.push({ ...input.context });
      return inner.onEncrypt(input);
    },
    onDecrypt: inner.onDecrypt.bind(inner),
  };
  return { envelope: new Envelope({ keyring }), reader: new Envelope({ keyring: inner, cache: false }), seen };
}

/** An object whose `tenant` reads as the next value of `values` on each read. */
function shifting(values: string[]): { context: EncryptionContext; reads: () => number } {
  let reads = 0;
  const context = {};
  Object.defineProperty(context, 'tenant', {
    enumerable: true,
    get: () => values[Math.min(reads++, values.length - 1)],
  });
  return { context: context as EncryptionContext, reads: () => reads };
}

describe('the encrypt partition comes from the validated copy of the context', () => {
  it('a getter that answers differently on each read cannot poison a partition', async () => {
    const { envelope, reader, seen } = setup();
    const tricky = shifting(['a', 'b', 'c']);
    const m0 = await envelope.encrypt('tricky', { context: tricky.context });
    expect(tricky.reads()).toBe(1); // one pass over the caller's object
    const m1 = await envelope.encrypt('plain a', { context: { tenant: 'a' } });
    const m2 = await envelope.encrypt('plain b', { context: { tenant: 'b' } });
    // Every message carries the context its caller asked for, also when served from the cache.
    expect((await reader.decrypt(m0)).context).toEqual({ tenant: 'a' });
    expect((await reader.decrypt(m1)).context).toEqual({ tenant: 'a' });
    expect((await reader.decrypt(m2)).context).toEqual({ tenant: 'b' });
    // The keyring saw the context of the read that made the partition.
    expect(seen).toEqual([{ tenant: 'a' }, { tenant: 'b' }]);
  });

  it('a Proxy whose keys change between reads cannot poison a partition', async () => {
    const { envelope, reader } = setup();
    let ownKeysCalls = 0;
    const proxy = new Proxy({} as EncryptionContext, {
      ownKeys: () => (ownKeysCalls++ === 0 ? ['a'] : ['a', 'extra']),
      getOwnPropertyDescriptor: (_t, key) => ({ value: `v-${String(key)}`, enumerable: true, configurable: true, writable: true }),
      get: (_t, key) => `v-${String(key)}`,
    });
    const m0 = await envelope.encrypt('proxy', { context: proxy });
    const m1 = await envelope.encrypt('plain', { context: { a: 'v-a' } });
    expect((await reader.decrypt(m0)).context).toEqual({ a: 'v-a' });
    expect((await reader.decrypt(m1)).context).toEqual({ a: 'v-a' });
  });

  it('a value that is not a string on the read that counts is refused, whatever later reads say', async () => {
    const { envelope } = setup();
    let reads = 0;
    const context = {};
    Object.defineProperty(context, 'n', { enumerable: true, get: () => (reads++ === 0 ? 7 : 'seven') });
    await expect(envelope.encrypt('x', { context: context as EncryptionContext })).rejects.toThrow(TypeError);
    await expect(envelope.encrypt('x', { context: context as EncryptionContext })).resolves.toBeInstanceOf(Buffer);
  });

  it('the cache-hit path refuses what validation refuses', async () => {
    const { envelope } = setup();
    await envelope.encrypt('warm', { context: { ok: 'v' } });
    const bad: unknown[] = [
      { 'aws-crypto-public-key': 'x' },
      { ok: 'v', 'aws-crypto-x': 'y' },
      { ok: 5 },
      { ok: { toJSON: () => 'v' } },
      null,
      [],
      'ok=v',
    ];
    for (const context of bad) {
      for (let i = 0; i < 2; i++) {
        await expect(envelope.encrypt('x', { context: context as EncryptionContext })).rejects.toThrow(TypeError);
      }
    }
    expect(envelope.stats().encryptMisses).toBe(1);
  });
});

describe('readContextPairs sorts keys as Array.prototype.sort does', () => {
  it('matches the built-in order for random keys, including non-BMP and look-alike ones', async () => {
    const { readContextPairs } = await import('../../src/cache/partition.js');
    // Code units chosen to disagree between code point order and UTF-16 order (U+FF5E vs a
    // surrogate pair), plus prefixes and the empty string.
    const alphabet = ['a', 'b', 'A', '', 'ab', '\u{1F600}', '\uFF5E', '\u00E9', 'e\u0301', '~', '0'];
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let trial = 0; trial < 500; trial++) {
      const n = 1 + Math.floor(next() * 20); // past 16 the built-in sort is used
      const context: Record<string, string> = {};
      for (let i = 0; i < n; i++) {
        let k = '';
        for (let j = 0, len = Math.floor(next() * 4); j < len; j++) k += alphabet[Math.floor(next() * alphabet.length)];
        context[k] = `v${i}`;
      }
      const keys = Object.keys(context).sort();
      expect(readContextPairs(context)).toEqual(keys.flatMap((k) => [k, context[k]]));
    }
  });
});
