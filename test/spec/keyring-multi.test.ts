/**
 * Compliance: framework/multi-keyring.md (test/spec/compliance/framework/multi-keyring.md).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MultiKeyring, RawAesKeyring } from '../../src/keyrings/index.js';
import { KeyringError, KmsError, NoDecryptableKeyError } from '../../src/errors.js';
import type { Keyring, KeyringDecryptInput, KeyringEncryptInput } from '../../src/types.js';

const SUITE = 0x0478;
const aes = (name: string) => new RawAesKeyring({ keyNamespace: 'ns', keyName: name, key: randomBytes(32) });

/** A keyring that throws `err` from every call and records the inputs it was given. */
class Throwing implements Keyring {
  readonly encryptInputs: KeyringEncryptInput[] = [];
  readonly decryptInputs: KeyringDecryptInput[] = [];
  constructor(readonly err: Error) {}
  async onEncrypt(input: KeyringEncryptInput): Promise<never> {
    this.encryptInputs.push(input);
    throw this.err;
  }
  async onDecrypt(input: KeyringDecryptInput): Promise<never> {
    this.decryptInputs.push(input);
    throw this.err;
  }
}

describe('multi-keyring: OnDecrypt', () => {
  it('when no keyring succeeds, the failure carries every collected failure, in order: the errors as its cause, their kinds and our own errors\' messages in its message', async () => {
    const g = aes('g');
    const out = await g.onEncrypt({ suiteId: SUITE, context: {} });
    const a = new Throwing(new KmsError('KMS Decrypt failed: AccessDeniedException: not allowed here', 'AccessDeniedException'));
    const b = new Throwing(new KeyringError('second child is broken'));
    const c = new Throwing(new RangeError('a foreign text, which may hold a secret'));
    const multi = new MultiKeyring({ generator: aes('other'), children: [a, aes('third'), b, c] });
    const err = await multi.onDecrypt({ suiteId: SUITE, context: {}, encryptedDataKeys: out.encryptedDataKeys }).catch((e) => e);
    expect(err).toBeInstanceOf(NoDecryptableKeyError);
    expect(err.code).toBe('ERR_NO_DECRYPTABLE_KEY');
    const msg: string = err.message;
    expect(msg).toContain('[1] KmsError (ERR_KMS): KMS Decrypt failed: AccessDeniedException: not allowed here');
    expect(msg).toContain('[2] KeyringError (ERR_KEYRING): second child is broken');
    // A foreign error's kind only (its text may carry secrets: test/review/multi-keyring-error-text.test.ts).
    expect(msg).toContain('[3] RangeError');
    expect(msg).not.toContain('foreign text');
    expect(msg.indexOf('AccessDeniedException')).toBeLessThan(msg.indexOf('second child is broken'));
    // The errors themselves, messages and all, travel as the cause.
    expect((err.cause as AggregateError).errors).toEqual([a.err, b.err, c.err]);
  });
});

/** Records calls into a shared log, delegating to `inner`. */
function recording(name: string, inner: Keyring, log: string[]): Keyring & { inputs: (KeyringEncryptInput | KeyringDecryptInput)[] } {
  const inputs: (KeyringEncryptInput | KeyringDecryptInput)[] = [];
  return {
    inputs,
    async onEncrypt(input) {
      log.push(`${name}.onEncrypt`);
      inputs.push(input);
      return inner.onEncrypt(input);
    },
    async onDecrypt(input) {
      log.push(`${name}.onDecrypt`);
      inputs.push(input);
      return inner.onDecrypt(input);
    },
  };
}

describe('multi-keyring: initialization', () => {
  it('needs a generator or at least one child: neither, or an empty child list without generator, is a TypeError', () => {
    expect(() => new MultiKeyring({})).toThrow(TypeError);
    expect(() => new MultiKeyring({ children: [] })).toThrow(/options\.generator or a non-empty options\.children/);
    expect(() => new MultiKeyring({ generator: undefined, children: [] })).toThrow(TypeError);
    expect(new MultiKeyring({ generator: aes('g') }).children).toEqual([]);
    expect(new MultiKeyring({ children: [aes('c')] }).generator).toBeUndefined();
  });
});

describe('multi-keyring: OnEncrypt', () => {
  it('with a generator: the generator is called first, with the input suite and context and no data key; each child then wraps that key', async () => {
    const log: string[] = [];
    const g = recording('g', aes('g'), log);
    const c1 = recording('c1', aes('c1'), log);
    const c2 = recording('c2', aes('c2'), log);
    const context = { tenant: 't', purpose: 'p' };
    const out = await new MultiKeyring({ generator: g, children: [c1, c2] }).onEncrypt({ suiteId: 0x0578, context });
    expect(log).toEqual(['g.onEncrypt', 'c1.onEncrypt', 'c2.onEncrypt']);
    const gi = g.inputs[0] as KeyringEncryptInput;
    expect(gi.suiteId).toBe(0x0578);
    expect(gi.context).toEqual(context);
    expect(gi.dataKey).toBeUndefined();
    for (const c of [c1, c2]) {
      const ci = c.inputs[0] as KeyringEncryptInput;
      expect(ci.suiteId).toBe(0x0578);
      expect(ci.context).toEqual(context);
      expect(Buffer.from(ci.dataKey!)).toEqual(Buffer.from(out.dataKey));
    }
  });

  it('returns the data key and the EDKs of the generator and of every child, in call order; each sub-keyring alone decrypts the result', async () => {
    const g = aes('g');
    const c1 = aes('c1');
    const c2 = aes('c2');
    const out = await new MultiKeyring({ generator: g, children: [c1, c2] }).onEncrypt({ suiteId: SUITE, context: { a: 'b' } });
    expect(out.encryptedDataKeys).toHaveLength(3);
    expect(out.encryptedDataKeys.map((e) => Buffer.from(e.providerInfo).subarray(0, 2).toString())).toEqual(['g\0', 'c1', 'c2']);
    for (const k of [g, c1, c2]) {
      const key = await k.onDecrypt({ suiteId: SUITE, context: { a: 'b' }, encryptedDataKeys: out.encryptedDataKeys });
      expect(Buffer.from(key!)).toEqual(Buffer.from(out.dataKey));
    }
  });

  it('with a generator, an input that already holds a data key fails (ERR_KEYRING) without calling any keyring', async () => {
    const log: string[] = [];
    const multi = new MultiKeyring({ generator: recording('g', aes('g'), log), children: [recording('c', aes('c'), log)] });
    await expect(multi.onEncrypt({ suiteId: SUITE, context: {}, dataKey: randomBytes(32) })).rejects.toMatchObject({ code: 'ERR_KEYRING' });
    expect(log).toEqual([]);
  });

  it('a failing generator fails OnEncrypt with its error; no child is called', async () => {
    const log: string[] = [];
    const boom = new KmsError('KMS GenerateDataKey failed: DisabledException', 'DisabledException');
    const multi = new MultiKeyring({ generator: new Throwing(boom), children: [recording('c', aes('c'), log)] });
    await expect(multi.onEncrypt({ suiteId: SUITE, context: {} })).rejects.toBe(boom);
    expect(log).toEqual([]);
  });

  it('a generator that returns no data key, or one of the wrong length, fails OnEncrypt (ERR_KEYRING)', async () => {
    const edk = { providerId: 'x', providerInfo: new Uint8Array(1), ciphertext: new Uint8Array(1) };
    for (const dataKey of [undefined, new Uint8Array(0), randomBytes(16)]) {
      const gen: Keyring = {
        onEncrypt: async () => ({ dataKey, encryptedDataKeys: [edk] }) as never,
        onDecrypt: async () => undefined,
      };
      await expect(new MultiKeyring({ generator: gen, children: [aes('c')] }).onEncrypt({ suiteId: SUITE, context: {} })).rejects.toMatchObject({
        code: 'ERR_KEYRING',
      });
    }
  });

  it('without a generator and without an input data key, OnEncrypt fails (ERR_KEYRING) without calling a child', async () => {
    const log: string[] = [];
    const multi = new MultiKeyring({ children: [recording('c', aes('c'), log)] });
    await expect(multi.onEncrypt({ suiteId: SUITE, context: {} })).rejects.toMatchObject({ code: 'ERR_KEYRING' });
    expect(log).toEqual([]);
  });

  it('without a generator, every child wraps the input data key, in order', async () => {
    const log: string[] = [];
    const c1 = aes('c1');
    const c2 = aes('c2');
    const dataKey = randomBytes(32);
    const out = await new MultiKeyring({ children: [recording('c1', c1, log), recording('c2', c2, log)] }).onEncrypt({ suiteId: SUITE, context: {}, dataKey });
    expect(log).toEqual(['c1.onEncrypt', 'c2.onEncrypt']);
    expect(out.dataKey).toBe(dataKey);
    expect(out.encryptedDataKeys).toHaveLength(2);
    expect(await c2.onDecrypt({ suiteId: SUITE, context: {}, encryptedDataKeys: [out.encryptedDataKeys[1]!] })).toEqual(dataKey);
  });

  it('a failing child fails OnEncrypt with its error, and the data key the generator made is zeroed', async () => {
    let generated: Uint8Array | undefined;
    const g = aes('g');
    const spy: Keyring = {
      async onEncrypt(input) {
        const out = await g.onEncrypt(input);
        generated = out.dataKey;
        return out;
      },
      onDecrypt: (input) => g.onDecrypt(input),
    };
    const boom = new KeyringError('child failed');
    const log: string[] = [];
    const multi = new MultiKeyring({ generator: spy, children: [aes('c1'), new Throwing(boom), recording('c3', aes('c3'), log)] });
    await expect(multi.onEncrypt({ suiteId: SUITE, context: {} })).rejects.toBe(boom);
    expect(log).toEqual([]);
    expect(generated!.every((b) => b === 0)).toBe(true);
  });
});

describe('multi-keyring: OnDecrypt order and inputs', () => {
  it('tries the generator first, then the children in order, each with the same unmodified input, and returns the first key found', async () => {
    const log: string[] = [];
    const owner = aes('owner');
    const out = await owner.onEncrypt({ suiteId: SUITE, context: { k: 'v' } });
    const input = Object.freeze({ suiteId: SUITE, context: Object.freeze({ k: 'v' }), encryptedDataKeys: Object.freeze([...out.encryptedDataKeys]) });
    const g = recording('g', aes('g'), log);
    const fail = new Throwing(new KeyringError('broken'));
    const c2 = recording('c2', owner, log);
    const c3 = recording('c3', aes('owner-too'), log);
    const multi = new MultiKeyring({ generator: g, children: [recording('c1', fail, log), c2, c3] });
    const key = await multi.onDecrypt(input);
    expect(Buffer.from(key!)).toEqual(Buffer.from(out.dataKey));
    // c3 comes after the first success and is never called.
    expect(log).toEqual(['g.onDecrypt', 'c1.onDecrypt', 'c2.onDecrypt']);
    expect(fail.decryptInputs).toHaveLength(1);
    for (const seen of [g.inputs[0], fail.decryptInputs[0], c2.inputs[0]]) expect(seen).toBe(input);
  });

  it('a failing keyring does not stop the others: its error is collected and the next keyring is tried', async () => {
    const owner = aes('owner');
    const out = await owner.onEncrypt({ suiteId: SUITE, context: {} });
    const first = new Throwing(new KeyringError('first'));
    const second = new Throwing(new KeyringError('second'));
    const multi = new MultiKeyring({ generator: first, children: [second, owner] });
    expect(Buffer.from((await multi.onDecrypt({ suiteId: SUITE, context: {}, encryptedDataKeys: out.encryptedDataKeys }))!)).toEqual(
      Buffer.from(out.dataKey),
    );
    expect(first.decryptInputs).toHaveLength(1);
    expect(second.decryptInputs).toHaveLength(1);
  });

  it('no keyring finds a key and none failed: OnDecrypt returns undefined (no data key)', async () => {
    const owner = aes('owner');
    const out = await owner.onEncrypt({ suiteId: SUITE, context: {} });
    const multi = new MultiKeyring({ generator: aes('x'), children: [aes('y')] });
    expect(await multi.onDecrypt({ suiteId: SUITE, context: {}, encryptedDataKeys: out.encryptedDataKeys })).toBeUndefined();
  });
});
