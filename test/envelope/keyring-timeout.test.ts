/**
 * Issue 10, hole 7 (cache edge cases): a keyring call that never settles must not wedge its cache
 * partition forever. `keyringTimeoutMs` bounds every keyring call (encrypt and decrypt, cached or
 * not, buffers and streams): the callers waiting on it fail with KeyringTimeoutError
 * (ERR_KEYRING_TIMEOUT) and the next caller starts a fresh call. A call that settles after its
 * timeout is detached: its data key is zeroed, never cached and never handed out.
 */
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  Envelope,
  EnvelopeError,
  KeyringTimeoutError,
  RawAesKeyring,
  type EnvelopeOptions,
  type Keyring,
  type KeyringDecryptInput,
  type KeyringEncryptInput,
  type KeyringEncryptOutput,
} from '../../src/index.js';
import * as errorsEntry from '../../src/errors.js';
import { spyTimers } from './timer-spy.js';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const isZero = (b: Uint8Array): boolean => b.length > 0 && b.every((x) => x === 0);

interface Held<T> {
  resolve: (value: T) => void;
}

/**
 * A raw AES keyring whose first `hang` calls of each kind never settle by themselves: the test may
 * settle them later with `settleLate()`. Later calls answer normally. Keeps every data key it hands
 * out, by reference.
 */
class HangingKeyring implements Keyring {
  readonly inner = new RawAesKeyring({ keyNamespace: 'hang', keyName: 'k', key: randomBytes(32) });
  encryptCalls = 0;
  decryptCalls = 0;
  readonly handedOut: Uint8Array[] = [];
  readonly heldEncrypts: Array<Held<KeyringEncryptOutput>> = [];
  readonly heldDecrypts: Array<Held<Uint8Array | undefined>> = [];
  constructor(public hang = 1) {}
  async onEncrypt(input: KeyringEncryptInput): Promise<KeyringEncryptOutput> {
    const n = ++this.encryptCalls;
    if (n <= this.hang) return new Promise((resolve) => this.heldEncrypts.push({ resolve }));
    const out = await this.inner.onEncrypt(input);
    this.handedOut.push(out.dataKey);
    return out;
  }
  async onDecrypt(input: KeyringDecryptInput): Promise<Uint8Array | undefined> {
    const n = ++this.decryptCalls;
    if (n <= this.hang) return new Promise((resolve) => this.heldDecrypts.push({ resolve }));
    const key = await this.inner.onDecrypt(input);
    if (key !== undefined) this.handedOut.push(key);
    return key;
  }
}

function collect(): { sink: Writable; data: () => Buffer } {
  const chunks: Buffer[] = [];
  return {
    sink: new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        cb();
      },
    }),
    data: () => Buffer.concat(chunks),
  };
}

const expectTimeout = async (p: Promise<unknown>, ms: number): Promise<void> => {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KeyringTimeoutError);
  expect(error).toBeInstanceOf(EnvelopeError);
  expect(error).toMatchObject({ code: 'ERR_KEYRING_TIMEOUT', name: 'KeyringTimeoutError', timeoutMs: ms });
  expect((error as Error).message).toContain(`${ms} ms`);
};

describe('keyringTimeoutMs option', () => {
  it('is validated at construction: an integer number of milliseconds from 1 to 600000', () => {
    const keyring = new HangingKeyring();
    for (const value of [0, -1, 1.5, NaN, Infinity, 600_001, '100', null]) {
      let error: unknown;
      try {
        new Envelope({ keyring, keyringTimeoutMs: value as number });
      } catch (e) {
        error = e;
      }
      expect(error, String(value)).toBeInstanceOf(RangeError);
      expect((error as Error).message).toContain('keyringTimeoutMs');
      expect((error as Error).message).toContain('milliseconds');
      expect((error as Error).message).toContain('from 1 to 600000');
    }
    for (const ok of [1, 30_000, 600_000]) expect(() => new Envelope({ keyring, keyringTimeoutMs: ok })).not.toThrow();
  });

  it('KeyringTimeoutError is exported by both entry points', () => {
    expect(errorsEntry.KeyringTimeoutError).toBe(KeyringTimeoutError);
    expect(new KeyringTimeoutError(5).code).toBe('ERR_KEYRING_TIMEOUT');
  });
});

describe('a keyring call that never settles', () => {
  const cases: Array<[string, Partial<EnvelopeOptions>]> = [
    ['cached', {}],
    ['cache: false', { cache: false }],
  ];

  it.each(cases)('encrypt (%s): waiters fail with ERR_KEYRING_TIMEOUT, the next caller starts a fresh call', async (_name, options) => {
    // Cached, the five share one call; uncached, each makes its own: all of them hang.
    const keyring = new HangingKeyring(options.cache === false ? 5 : 1);
    const e = new Envelope({ keyring, keyringTimeoutMs: 50, ...options });
    const waiters = Array.from({ length: 5 }, () => e.encrypt('x', { context: { p: '1' } }));
    for (const w of waiters) await expectTimeout(w, 50);
    const callsAfterTimeout = keyring.encryptCalls;
    const message = await e.encrypt('after', { context: { p: '1' } });
    expect(keyring.encryptCalls).toBe(callsAfterTimeout + 1);
    const reader = new Envelope({ keyring: keyring.inner, cache: false });
    expect((await reader.decrypt(message)).plaintext.toString()).toBe('after');
    if (options.cache === undefined) expect(callsAfterTimeout).toBe(1); // the five shared one call
  });

  it.each(cases)('decrypt (%s): waiters fail with ERR_KEYRING_TIMEOUT, the next caller starts a fresh call', async (_name, options) => {
    const keyring = new HangingKeyring(options.cache === false ? 5 : 1);
    const message = await new Envelope({ keyring: keyring.inner }).encrypt('m');
    const e = new Envelope({ keyring, keyringTimeoutMs: 50, ...options });
    const waiters = Array.from({ length: 5 }, () => e.decrypt(message));
    for (const w of waiters) await expectTimeout(w, 50);
    const callsAfterTimeout = keyring.decryptCalls;
    expect((await e.decrypt(message)).plaintext.toString()).toBe('m');
    expect(keyring.decryptCalls).toBe(callsAfterTimeout + 1);
    if (options.cache === undefined) expect(callsAfterTimeout).toBe(1);
  });

  it('encryptStream and decryptStream fail with ERR_KEYRING_TIMEOUT too', async () => {
    const keyring = new HangingKeyring();
    const e = new Envelope({ keyring, keyringTimeoutMs: 50 });
    await expectTimeout(pipeline(Readable.from([Buffer.from('s')]), e.encryptStream(), collect().sink), 50);
    const message = await e.encrypt('s');
    await expectTimeout(pipeline(Readable.from([message]), e.decryptStream(), collect().sink), 50);
    const out = collect();
    await pipeline(Readable.from([message]), e.decryptStream(), out.sink);
    expect(out.data().toString()).toBe('s');
  });

  it('a timed-out encrypt call that settles later: its key is zeroed, never cached, never handed out', async () => {
    const keyring = new HangingKeyring();
    const e = new Envelope({ keyring, keyringTimeoutMs: 50 });
    await expectTimeout(e.encrypt('x'), 50);
    const late = await keyring.inner.onEncrypt({ suiteId: e.suiteId, context: {} });
    const lateKey = late.dataKey;
    keyring.heldEncrypts[0]!.resolve(late);
    await turn();
    expect(isZero(lateKey)).toBe(true);
    const message = await e.encrypt('y');
    expect(keyring.encryptCalls).toBe(2); // the late key was not cached: a fresh call
    expect(message.includes(Buffer.from(late.encryptedDataKeys[0]!.ciphertext))).toBe(false);
    expect(e.stats().entries).toBe(1);
  });

  it('a timed-out decrypt call that settles later: its key is zeroed, never cached, never handed out', async () => {
    const keyring = new HangingKeyring();
    const message = await new Envelope({ keyring: keyring.inner }).encrypt('m');
    const e = new Envelope({ keyring, keyringTimeoutMs: 50 });
    await expectTimeout(e.decrypt(message), 50);
    const lateKey = randomBytes(32);
    keyring.heldDecrypts[0]!.resolve(lateKey);
    await turn();
    expect(isZero(lateKey)).toBe(true);
    expect(e.stats().entries).toBe(0);
    expect((await e.decrypt(message)).plaintext.toString()).toBe('m');
    expect(keyring.decryptCalls).toBe(2);
  });

  it('a call that rejects after its timeout is absorbed (no unhandled rejection)', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      let fail!: (e: Error) => void;
      const keyring: Keyring = {
        onEncrypt: () => new Promise((_, reject) => (fail = reject)),
        onDecrypt: async () => undefined,
      };
      const e = new Envelope({ keyring, keyringTimeoutMs: 20, cache: false });
      await expectTimeout(e.encrypt('x'), 20);
      fail(new Error('late failure'));
      await turn();
      await turn();
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('keyring timeout timers', () => {
  afterEach(() => vi.restoreAllMocks());


  it('are unref()ed while a call is pending, so they never keep the process alive', async () => {
    const ms = 123_457;
    const timers = spyTimers(ms);
    const keyring = new HangingKeyring();
    const e = new Envelope({ keyring, keyringTimeoutMs: ms, cache: false });
    const pending = e.encrypt('x');
    await turn();
    expect(timers.created).toHaveLength(1);
    expect(timers.created[0]!.hasRef()).toBe(false);
    // Let the call finish so nothing is left behind.
    keyring.heldEncrypts[0]!.resolve(await keyring.inner.onEncrypt({ suiteId: e.suiteId, context: {} }));
    await pending;
    // The shared timer may stay armed (idle, unref()ed) until its deadline: then it stops, since no
    // call is pending; the next call reuses it meanwhile instead of creating one.
    expect(timers.created[0]!.hasRef()).toBe(false);
  });

  it('1,000 keyring calls share one deadline timer instead of one timer each (encrypt and decrypt, cached or not)', async () => {
    // One timer per call cost a Timeout object and a timer-list insertion and removal per message
    // (issue 14's profile). Calls of one Envelope share one unref()ed timer armed for the earliest
    // pending deadline; with calls answering at once, at most one timer is created per Envelope.
    const ms = 123_459;
    const timers = spyTimers(ms);
    const keyring = new HangingKeyring(0);
    for (const cache of [undefined, false] as const) {
      const e = new Envelope({ keyring, keyringTimeoutMs: ms, ...(cache === false ? { cache } : {}) });
      for (let i = 0; i < 250; i++) {
        const m = await e.encrypt('x', { context: { i: String(i) } });
        await e.decrypt(m);
      }
    }
    expect(keyring.encryptCalls + keyring.decryptCalls).toBe(1000);
    expect(timers.created.length).toBeLessThanOrEqual(2);
    for (const t of timers.created) expect(t.hasRef()).toBe(false);
  });

  it('a shared deadline times out only the calls that reached it, each after its own timeoutMs', async () => {
    // Calls started 0, 30 and 60 ms apart under one 80 ms limit: the first one's timeout must not
    // take the later ones with it, and each fails no earlier than 80 ms after it started.
    const keyring = new HangingKeyring(3);
    const e = new Envelope({ keyring, keyringTimeoutMs: 80, cache: false });
    const started: number[] = [];
    const failed: number[] = [];
    const calls: Promise<void>[] = [];
    for (let i = 0; i < 3; i++) {
      started.push(performance.now());
      calls.push(expectTimeout(e.encrypt('x'), 80).then(() => void failed.push(performance.now())));
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    await Promise.all(calls);
    for (let i = 0; i < 3; i++) expect(failed[i]! - started[i]!).toBeGreaterThanOrEqual(79);
    // A call that answers in time is not failed by a timer armed for an earlier call's deadline.
    const slow = new HangingKeyring(1);
    const e2 = new Envelope({ keyring: slow, keyringTimeoutMs: 80, cache: false });
    const first = e2.encrypt('a');
    await new Promise((resolve) => setTimeout(resolve, 40));
    // 100 calls answer at once behind the hanging one (the queue drops them as they answer).
    for (let i = 0; i < 100; i++) await expect(e2.encrypt('b')).resolves.toBeInstanceOf(Buffer);
    await expectTimeout(first, 80);
    await expect(e2.encrypt('c')).resolves.toBeInstanceOf(Buffer);
  });
});
