/**
 * The immediate keyring path (src/keyrings/immediate.ts): the library's own keyrings answer the
 * Envelope without a promise when no I/O is needed (a raw AES key, a cached branch key). These
 * tests pin what must not change because of it:
 * - the immediate methods give the same answers as the public ones (each reads the other's EDKs);
 * - a keyring answering at once costs no keyring timer (the deadline queue is never armed), while
 *   a keyring that has to wait (an async branch key id supplier, a store load) is still timed;
 * - a subclass override or a spy on onEncrypt/onDecrypt is called, not bypassed;
 * - foreign keyrings whose methods are not `async` (a plain value, a synchronous throw, an answer
 *   whose `then` getter throws) still get the same typed errors.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  BranchKeyStore,
  DirectoryBranchKeyStorage,
  Envelope,
  HierarchicalKeyring,
  RawAesKeyring,
  type Keyring,
  type KeyringDecryptInput,
  type KeyringEncryptInput,
  type KeyringEncryptOutput,
} from '../../src/index.js';
import { LocalKms } from '../../src/local-kms/index.js';
import { DECRYPT_NOW, ENCRYPT_NOW, isThenable } from '../../src/keyrings/immediate.js';
import { parseHeader } from '../../src/format/header.js';
import { deriveAndVerifyHeader } from '../../src/format/decrypt.js';
import { spyTimers } from '../envelope/timer-spy.js';

const isZero = (b: Uint8Array): boolean => b.length > 0 && b.every((x) => x === 0);

const TIMEOUT_MS = 98_765;

/** The timers created with the Envelope's keyring time limit. */
const keyringTimers = (): { created: unknown[] } => spyTimers(TIMEOUT_MS);

afterEach(() => {
  vi.restoreAllMocks();
});

describe('immediate keyring path: raw AES', () => {
  const key = randomBytes(32);
  const input: KeyringEncryptInput = { suiteId: 0x0478, context: { purpose: 'immediate' } };

  it('answers without a promise, and reads what onEncrypt wrote (and the other way round)', async () => {
    const keyring = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key });
    const now = keyring[ENCRYPT_NOW](input);
    expect(isThenable(now)).toBe(false);
    const later = await keyring.onEncrypt(input);
    for (const [written, readBy] of [
      [now, (i: KeyringDecryptInput) => keyring.onDecrypt(i)],
      [later, (i: KeyringDecryptInput) => keyring[DECRYPT_NOW](i)],
    ] as const) {
      const got = await readBy({ ...input, encryptedDataKeys: written.encryptedDataKeys });
      expect(Buffer.from(got!).equals(Buffer.from(written.dataKey))).toBe(true);
    }
    // A changed context: both say the same (the EDK is not for this context).
    const changed = { suiteId: 0x0478, context: { purpose: 'other' }, encryptedDataKeys: now.encryptedDataKeys };
    let immediate: unknown;
    try {
      immediate = keyring[DECRYPT_NOW](changed);
    } catch (err) {
      immediate = err;
    }
    const viaPublic = await keyring.onDecrypt(changed).catch((err: unknown) => err);
    expect(immediate).toEqual(viaPublic);
  });

  it('costs no keyring timer when the keyring answers at once (cached and uncached)', async () => {
    const timers = keyringTimers();
    const keyring = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key });
    for (const cache of [undefined, false] as const) {
      const e = new Envelope({ keyring, keyringTimeoutMs: TIMEOUT_MS, ...(cache === false ? { cache } : {}) });
      for (let i = 0; i < 50; i++) {
        const m = await e.encrypt('x', { context: { i: String(i) } });
        expect((await e.decrypt(m)).plaintext.toString()).toBe('x');
      }
    }
    expect(timers.created).toHaveLength(0);
  });

  it('a subclass that overrides onEncrypt/onDecrypt is called, and so is a spy set after the Envelope was made', async () => {
    const seen: string[] = [];
    class Logged extends RawAesKeyring {
      override async onEncrypt(i: KeyringEncryptInput): Promise<KeyringEncryptOutput> {
        seen.push('encrypt');
        return super.onEncrypt(i);
      }
      override async onDecrypt(i: KeyringDecryptInput): Promise<Uint8Array | undefined> {
        seen.push('decrypt');
        return super.onDecrypt(i);
      }
    }
    const logged = new Envelope({ keyring: new Logged({ keyNamespace: 'ns', keyName: 'k', key }), cache: false });
    await logged.decrypt(await logged.encrypt('x'));
    expect(seen).toEqual(['encrypt', 'decrypt']);

    const plain = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key });
    const e = new Envelope({ keyring: plain, cache: false });
    const encryptSpy = vi.spyOn(plain, 'onEncrypt');
    const decryptSpy = vi.spyOn(plain, 'onDecrypt');
    await e.decrypt(await e.encrypt('y'));
    expect(encryptSpy).toHaveBeenCalledTimes(1);
    expect(decryptSpy).toHaveBeenCalledTimes(1);
    // Removing the spies brings the immediate path back.
    vi.restoreAllMocks();
    const timers = keyringTimers();
    const e2 = new Envelope({ keyring: plain, cache: false, keyringTimeoutMs: TIMEOUT_MS });
    await e2.decrypt(await e2.encrypt('z'));
    expect(timers.created).toHaveLength(0);
  });
});

describe('immediate keyring path: foreign keyrings whose methods are not async', () => {
  const inner = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: randomBytes(32) });

  it('a plain (non-promise) answer is used as it is', async () => {
    const syncKeyring = {
      onEncrypt: (i: KeyringEncryptInput) => inner[ENCRYPT_NOW](i),
      onDecrypt: (i: KeyringDecryptInput) => inner[DECRYPT_NOW](i),
    } as unknown as Keyring;
    const e = new Envelope({ keyring: syncKeyring, cache: false });
    expect((await e.decrypt(await e.encrypt('plain'))).plaintext.toString()).toBe('plain');
  });

  it('a synchronous throw, or an answer whose `then` getter throws, is a KeyringError (ERR_KEYRING)', async () => {
    const secret = 'do-not-leak-this';
    const hostileAnswer = Object.defineProperty({}, 'then', {
      get() {
        throw new Error(secret);
      },
    });
    for (const onEncrypt of [
      () => {
        throw new Error(secret);
      },
      () => hostileAnswer,
    ]) {
      const keyring = { onEncrypt, onDecrypt: async () => undefined } as unknown as Keyring;
      for (const cache of [undefined, false] as const) {
        const e = new Envelope({ keyring, ...(cache === false ? { cache } : {}) });
        const err = await e.encrypt('x').catch((caught: unknown) => caught);
        expect(err).toMatchObject({ code: 'ERR_KEYRING' });
      }
    }
    const m = await new Envelope({ keyring: inner, cache: false }).encrypt('x');
    for (const onDecrypt of [
      () => {
        throw new Error(secret);
      },
      () => hostileAnswer,
    ]) {
      const keyring = { onEncrypt: async () => inner.onEncrypt({ suiteId: 0x0478, context: {} }), onDecrypt } as unknown as Keyring;
      const err = await new Envelope({ keyring, cache: false }).decrypt(m).catch((caught: unknown) => caught);
      expect(err).toMatchObject({ code: 'ERR_KEYRING' });
    }
  });
});

describe('immediate keyring path: hierarchical keyring', () => {
  let dir: string;
  let kms: LocalKms;
  let store: BranchKeyStore;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kms-envelope-immediate-'));
    kms = new LocalKms();
    store = new BranchKeyStore({
      storage: new DirectoryBranchKeyStorage({ dir }),
      logicalKeyStoreName: 'immediate',
      kmsConfiguration: { kmsKeyArn: (await kms.createKey()).arn },
      kmsClient: kms.client(),
    });
    await store.createKey({ branchKeyId: 'a', encryptionContext: { tenant: 'a' } });
    await store.createKey({ branchKeyId: 'b', encryptionContext: { tenant: 'b' } });
  });
  afterEach(() => {
    kms.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a cached branch key answers without a promise; a store load returns one; both give the same answers', async () => {
    const keyring = new HierarchicalKeyring({ keyStore: store, branchKeyId: 'a', cache: { maxAgeMs: 60_000 } });
    const input = { suiteId: 0x0478, context: { t: 'a' } };
    const first = keyring[ENCRYPT_NOW](input);
    expect(isThenable(first)).toBe(true); // the branch key is loaded from the store
    const loaded = await first;
    const now = keyring[ENCRYPT_NOW](input);
    expect(isThenable(now)).toBe(false);
    const immediate = now as KeyringEncryptOutput;
    expect(Buffer.from(immediate.dataKey).equals(Buffer.from(loaded.dataKey))).toBe(false);
    // Decrypt caches branch key versions under their own ids (as the ESDK does): the first decrypt
    // loads the version, the next one answers at once.
    const edks = { ...input, encryptedDataKeys: loaded.encryptedDataKeys };
    const firstDecrypt = keyring[DECRYPT_NOW](edks);
    expect(isThenable(firstDecrypt)).toBe(true);
    expect(Buffer.from((await firstDecrypt)!).equals(Buffer.from(loaded.dataKey))).toBe(true);
    const decrypted = keyring[DECRYPT_NOW](edks);
    expect(isThenable(decrypted)).toBe(false);
    expect(Buffer.from(decrypted as Uint8Array).equals(Buffer.from(loaded.dataKey))).toBe(true);
    expect(Buffer.from((await keyring.onDecrypt({ ...input, encryptedDataKeys: immediate.encryptedDataKeys }))!).equals(Buffer.from(immediate.dataKey))).toBe(true);
    // The same failure both ways when the context changed.
    const changed = { suiteId: 0x0478, context: { t: 'changed' }, encryptedDataKeys: immediate.encryptedDataKeys };
    let viaNow: unknown;
    try {
      viaNow = await keyring[DECRYPT_NOW](changed);
    } catch (err) {
      viaNow = err;
    }
    const viaPublic = await keyring.onDecrypt(changed).catch((err: unknown) => err);
    expect(viaNow).toMatchObject({ code: 'ERR_NO_DECRYPTABLE_KEY' });
    expect((viaNow as Error).message).toBe((viaPublic as Error).message);
  });

  it('through an Envelope: no keyring timer once the branch key is cached; an async supplier is still timed and works', async () => {
    const timers = keyringTimers();
    const keyring = new HierarchicalKeyring({ keyStore: store, branchKeyId: 'a', cache: { maxAgeMs: 60_000 } });
    // Load the active branch key and its version into the keyring's cache, outside any Envelope.
    const warm = await keyring.onEncrypt({ suiteId: 0x0478, context: {} });
    await keyring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: warm.encryptedDataKeys });
    const staticId = new Envelope({ keyring, cache: false, keyringTimeoutMs: TIMEOUT_MS });
    for (let i = 0; i < 100; i++) {
      const m = await staticId.encrypt(`m${i}`, { context: { i: String(i) } });
      expect((await staticId.decrypt(m)).plaintext.toString()).toBe(`m${i}`);
    }
    expect(timers.created).toHaveLength(0);

    const asyncSupplier = new Envelope({
      keyring: new HierarchicalKeyring({ keyStore: store, branchKeyIdSupplier: async (c) => c.t!, cache: { maxAgeMs: 60_000 } }),
      cache: false,
      keyringTimeoutMs: TIMEOUT_MS,
    });
    for (const t of ['a', 'b', 'a', 'b']) {
      const m = await asyncSupplier.encrypt(`for ${t}`, { context: { t } });
      expect((await asyncSupplier.decrypt(m)).plaintext.toString()).toBe(`for ${t}`);
    }
    // The async supplier's calls were promises, so they went through the deadline queue.
    expect(timers.created.length).toBeGreaterThan(0);
  });

  it('a supplier that throws, rejects, returns a non-string or a thenable whose `then` getter throws: KeyringError (ERR_KEYRING)', async () => {
    const hostile = Object.defineProperty({}, 'then', {
      get() {
        throw new Error('supplier secret');
      },
    });
    const suppliers = [
      () => {
        throw new Error('supplier secret');
      },
      async () => {
        throw new Error('supplier secret');
      },
      () => 42,
      () => hostile,
    ];
    for (const supplier of suppliers) {
      const keyring = new HierarchicalKeyring({
        keyStore: store,
        branchKeyIdSupplier: supplier as unknown as (c: Record<string, string>) => string,
        cache: { maxAgeMs: 60_000 },
      });
      let thrown: unknown;
      try {
        await keyring[ENCRYPT_NOW]({ suiteId: 0x0478, context: {} });
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toMatchObject({ code: 'ERR_KEYRING' });
      expect(String((thrown as Error).message)).not.toContain('supplier secret');
      const e = new Envelope({ keyring, cache: false });
      await expect(e.encrypt('x')).rejects.toMatchObject({ code: 'ERR_KEYRING' });
    }
  });
});

/**
 * Attacks from the adversarial review of this path (issue 14 note): answers that read differently
 * the second time, prototype patches made before the Envelope, native promises with an own
 * `then`, and keyrings that keep the buffer they hand out.
 */
describe('immediate keyring path: hostile answers and patches', () => {
  const raw = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: randomBytes(32) });
  const underZeroKey = (message: Buffer): boolean => {
    const h = parseHeader(message, { maxEncryptedDataKeys: 10, maxHeaderBytes: 1 << 20 })!;
    try {
      deriveAndVerifyHeader(h, Buffer.alloc(32));
      return true;
    } catch {
      return false;
    }
  };

  /**
   * An answer inheriting from Promise.prototype whose `then` getter returns undefined on the first
   * `hideFirst` reads and a slow thenable's `then` after that.
   */
  function flipping<T>(value: () => T, handed: Uint8Array[], hideFirst: number): unknown {
    let reads = 0;
    return Object.create(Promise.prototype, {
      then: {
        get() {
          if (reads++ < hideFirst) return undefined;
          return (onFulfilled: (v: T) => unknown) =>
            setTimeout(() => {
              const v = value();
              handed.push((v as { dataKey?: Uint8Array }).dataKey ?? (v as Uint8Array));
              onFulfilled(v);
            }, 300);
        },
      },
    });
  }

  it('an answer whose `then` appears on a later read never escapes keyringTimeoutMs, and a late key is zeroed', async () => {
    const message = await new Envelope({ keyring: raw, cache: false }).encrypt('m');
    // hideFirst 0: a slow thenable from the start (timed out); 1 and 2: a plain value when the
    // library reads it (a malformed answer, refused), whatever `then` says afterwards.
    for (const hideFirst of [0, 1, 2]) {
      const handed: Uint8Array[] = [];
      const keyring = {
        onEncrypt: (i: KeyringEncryptInput) => flipping(() => raw[ENCRYPT_NOW](i), handed, hideFirst),
        onDecrypt: (i: KeyringDecryptInput) => flipping(() => raw[DECRYPT_NOW](i), handed, hideFirst),
      } as unknown as Keyring;
      const expected = hideFirst === 0 ? 'ERR_KEYRING_TIMEOUT' : 'ERR_KEYRING';
      for (const cache of [undefined, false] as const) {
        const e = new Envelope({ keyring, keyringTimeoutMs: 50, ...(cache === false ? { cache } : {}) });
        const started = performance.now();
        await expect(e.encrypt('x')).rejects.toMatchObject({ code: expected });
        await expect(e.decrypt(message)).rejects.toMatchObject({ code: expected });
        expect(performance.now() - started).toBeLessThan(290);
      }
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(handed).toHaveLength(hideFirst === 0 ? 4 : 0);
      for (const key of handed) expect(isZero(key)).toBe(true);
    }
  });

  it('a patch of the class prototype made before the Envelope is honoured (not bypassed by the immediate method)', async () => {
    const original = RawAesKeyring.prototype.onEncrypt;
    const originalDecrypt = RawAesKeyring.prototype.onDecrypt;
    let calls = 0;
    RawAesKeyring.prototype.onEncrypt = async function (this: RawAesKeyring, input: KeyringEncryptInput) {
      calls++;
      if (input.context.forbidden !== undefined) throw new Error('policy: refused');
      return original.call(this, input);
    };
    const decryptSpy = vi.spyOn(RawAesKeyring.prototype, 'onDecrypt');
    try {
      const e = new Envelope({ keyring: new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: randomBytes(32) }), cache: false });
      await expect(e.encrypt('x', { context: { forbidden: 'yes' } })).rejects.toMatchObject({ code: 'ERR_KEYRING' });
      await e.decrypt(await e.encrypt('y'));
      expect(calls).toBe(2);
      expect(decryptSpy).toHaveBeenCalledTimes(1);
    } finally {
      RawAesKeyring.prototype.onEncrypt = original;
      vi.restoreAllMocks();
      expect(RawAesKeyring.prototype.onDecrypt).toBe(originalDecrypt);
    }
  });

  it("a native promise's own `then` is never called: one that throws gives ERR_KEYRING, one that calls back twice is not believed", async () => {
    const secret = 'SECRET-TOKEN';
    const throwing = {
      onEncrypt: (i: KeyringEncryptInput) => {
        const p = Promise.resolve(raw[ENCRYPT_NOW](i));
        (p as unknown as { then: unknown }).then = () => {
          throw new Error(secret);
        };
        return p;
      },
      onDecrypt: async () => undefined,
    } as unknown as Keyring;
    const err = await new Envelope({ keyring: throwing, cache: false }).encrypt('x').catch((caught: unknown) => caught);
    // The promise itself resolved: its own `then` was not used, so the message is written.
    expect(err).toBeInstanceOf(Buffer);

    const messages: Buffer[] = [];
    const twice = {
      onEncrypt: (i: KeyringEncryptInput) => {
        const p = new Promise<never>(() => {}); // never settles
        (p as unknown as { then: unknown }).then = (f: (v: unknown) => void) => {
          const out = raw[ENCRYPT_NOW](i);
          f(out);
          f(out);
        };
        return p;
      },
      onDecrypt: async () => undefined,
    } as unknown as Keyring;
    const e = new Envelope({ keyring: twice, keyringTimeoutMs: 50 });
    for (let i = 0; i < 2; i++) {
      await expect(e.encrypt('x').then((m) => void messages.push(m))).rejects.toMatchObject({ code: 'ERR_KEYRING_TIMEOUT' });
    }
    expect(messages.filter(underZeroKey)).toHaveLength(0);
  });

  it('a keyring that keeps the buffer it hands out, under a data-key cache: loud failure, never a message under zeros', async () => {
    const FIXED = randomBytes(32);
    const keyring: Keyring = {
      onEncrypt: async (i) => raw.onEncrypt({ ...i, dataKey: FIXED }),
      onDecrypt: async (i) => raw.onDecrypt(i),
    };
    const e = new Envelope({ keyring, cache: { maxEntries: 1 } });
    const m1 = await e.encrypt('one', { context: { t: '1' } });
    await expect(e.encrypt('two', { context: { t: '2' } })).rejects.toMatchObject({ code: 'ERR_KEYRING' });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const m3 = await e.encrypt('three', { context: { t: '1' } }); // a hit on the first entry, intact
    for (const m of [m1, m3]) {
      expect(underZeroKey(m)).toBe(false);
      expect((await e.decrypt(m)).plaintext.length).toBeGreaterThan(0);
    }
  });

  it('a supplier id with an unpaired surrogate or over 65,535 bytes, or a native promise with a throwing own `then`: ERR_KEYRING from onEncrypt itself', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kms-envelope-immediate-'));
    const kms = new LocalKms();
    try {
      const store = new BranchKeyStore({
        storage: new DirectoryBranchKeyStorage({ dir }),
        logicalKeyStoreName: 'immediate',
        kmsConfiguration: { kmsKeyArn: (await kms.createKey()).arn },
        kmsClient: kms.client(),
      });
      const hostilePromise = (): Promise<string> => {
        const p = Promise.resolve('a');
        (p as unknown as { then: unknown }).then = () => {
          throw new Error('SUPPLIER-SECRET');
        };
        return p;
      };
      for (const supplier of [() => 'a\ud800', () => 'x'.repeat(70_000), async () => '\udc00b', hostilePromise]) {
        const keyring = new HierarchicalKeyring({ keyStore: store, branchKeyIdSupplier: supplier, cache: { maxAgeMs: 60_000 } });
        const err = await keyring.onEncrypt({ suiteId: 0x0478, context: {} }).catch((caught: unknown) => caught);
        if (supplier === hostilePromise) {
          // The promise resolved to 'a': its own `then` is not used; 'a' has no branch key here.
          expect(err).toMatchObject({ code: 'ERR_BRANCH_KEY_STORE' });
        } else {
          expect(err).toMatchObject({ code: 'ERR_KEYRING' });
        }
        expect(String((err as Error).message)).not.toContain('SECRET');
      }
    } finally {
      kms.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
