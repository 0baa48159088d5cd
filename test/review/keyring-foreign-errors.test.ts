/**
 * Review finding 3: a keyring that fails with something other than an EnvelopeError (a custom
 * keyring throwing a plain Error or a string, rejecting with a non-Error, or throwing
 * synchronously) let that value escape untyped from encrypt/decrypt and the streams (a stream even
 * turned a string into `new Error(string)`, copying its text into the message). The Envelope wraps
 * it in KeyringError (ERR_KEYRING) with the original as `cause` and none of its text in the
 * message (it may carry secrets); the CLI maps that to exit status 10. Typed errors (KmsError,
 * NoDecryptableKeyError, KeyringTimeoutError, ...) pass through unchanged.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Envelope,
  KeyringError,
  KmsError,
  MultiKeyring,
  NoDecryptableKeyError,
  RawAesKeyring,
  type Keyring,
} from '../../src/index.js';
import { classify } from '../../src/cli/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'kms-envelope-foreign-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = 'password=hunter2';

/** What a keyring may fail with, and how (async rejection or synchronous throw). */
const FAILURES: { what: string; value: () => unknown; sync: boolean }[] = [
  { what: 'a plain Error', value: () => new Error(`db said ${SECRET}`), sync: false },
  { what: 'a TypeError', value: () => new TypeError(`bad ${SECRET}`), sync: false },
  { what: 'a string', value: () => `failed: ${SECRET}`, sync: false },
  { what: 'undefined', value: () => undefined, sync: false },
  { what: 'a plain object', value: () => ({ secret: SECRET }), sync: false },
  { what: 'a plain Error thrown synchronously', value: () => new Error(`sync ${SECRET}`), sync: true },
  { what: 'a string thrown synchronously', value: () => `sync ${SECRET}`, sync: true },
];

/** Encrypts and decrypts with `inner`, but fails `which` calls with `thrown`. */
function failing(inner: Keyring, which: 'encrypt' | 'decrypt', thrown: unknown, sync: boolean): Keyring {
  const fail = (): never => {
    throw thrown;
  };
  const call = <T>(real: () => Promise<T>, mine: boolean): Promise<T> => {
    if (!mine) return real();
    if (sync) fail();
    return Promise.reject(thrown);
  };
  // Non-async methods, so a synchronous throw really is synchronous.
  return {
    onEncrypt: (input) => call(() => inner.onEncrypt(input), which === 'encrypt'),
    onDecrypt: (input) => call(() => inner.onDecrypt(input), which === 'decrypt'),
  };
}

function expectWrapped(err: unknown, thrown: unknown): void {
  expect(err).toBeInstanceOf(KeyringError);
  expect(err).toMatchObject({ code: 'ERR_KEYRING', name: 'KeyringError' });
  expect((err as Error).cause).toBe(thrown);
  expect((err as Error).message).not.toContain(SECRET);
  expect(classify(err)).toMatchObject({ code: 'ERR_KEYRING', exit: 10 });
  expect(classify(err).message).not.toContain(SECRET);
}

async function caught(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}

const sink = (): Writable => new Writable({ write: (_c, _e, cb) => cb() });

describe('a keyring failure that is not an EnvelopeError becomes KeyringError with the original as cause', () => {
  for (const { what, value, sync } of FAILURES) {
    it(`${what}: encrypt, encryptDetailed, encryptStream, encryptFile (cached and uncached)`, async () => {
      for (const cache of [undefined, false] as const) {
        const thrown = value();
        const inner = new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', key: randomBytes(32) });
        const e = new Envelope({ keyring: failing(inner, 'encrypt', thrown, sync), cache });
        expectWrapped(await caught(() => e.encrypt('x')), thrown);
        expectWrapped(await caught(() => e.encryptDetailed('x', { context: { a: 'b' } })), thrown);
        expectWrapped(await caught(() => pipeline(Readable.from([Buffer.from('x')]), e.encryptStream(), sink())), thrown);
        expectWrapped(
          await caught(() => pipeline(Readable.from([Buffer.from('x')]), e.encryptStream({ plaintextLength: 1 }), sink())),
          thrown,
        );
        const src = join(dir, 'plain');
        writeFileSync(src, 'x');
        expectWrapped(await caught(() => e.encryptFile(src, join(dir, 'out'))), thrown);
      }
    });

    it(`${what}: decrypt, decryptStream, decryptFile (cached and uncached)`, async () => {
      for (const cache of [undefined, false] as const) {
        const thrown = value();
        const inner = new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', key: randomBytes(32) });
        const message = await new Envelope({ keyring: inner }).encrypt('x');
        const e = new Envelope({ keyring: failing(inner, 'decrypt', thrown, sync), cache });
        expectWrapped(await caught(() => e.decrypt(message)), thrown);
        expectWrapped(await caught(() => pipeline(Readable.from([message]), e.decryptStream(), sink())), thrown);
        const src = join(dir, 'message');
        writeFileSync(src, message);
        expectWrapped(await caught(() => e.decryptFile(src, join(dir, 'out'))), thrown);
      }
    });
  }
});

describe('typed keyring errors pass through unchanged', () => {
  const typed: { what: string; make: () => Error; code: string; exit: number }[] = [
    { what: 'KmsError', make: () => new KmsError('AccessDenied', 'AccessDeniedException'), code: 'ERR_KMS', exit: 4 },
    { what: 'NoDecryptableKeyError', make: () => new NoDecryptableKeyError(), code: 'ERR_NO_DECRYPTABLE_KEY', exit: 7 },
    { what: 'KeyringError', make: () => new KeyringError('unusable'), code: 'ERR_KEYRING', exit: 10 },
  ];
  for (const { what, make, code, exit } of typed) {
    it(what, async () => {
      const inner = new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', key: randomBytes(32) });
      const message = await new Envelope({ keyring: inner }).encrypt('x');
      const thrownE = make();
      const thrownD = make();
      const enc = new Envelope({ keyring: failing(inner, 'encrypt', thrownE, false), cache: false });
      const dec = new Envelope({ keyring: failing(inner, 'decrypt', thrownD, true), cache: false });
      expect(await caught(() => enc.encrypt('x'))).toBe(thrownE);
      expect(await caught(() => pipeline(Readable.from([Buffer.from('x')]), enc.encryptStream(), sink()))).toBe(thrownE);
      const err = await caught(() => dec.decrypt(message));
      expect(err).toBe(thrownD);
      expect(classify(err)).toMatchObject({ code, exit });
    });
  }

  it('a timeout stays ERR_KEYRING_TIMEOUT; a multi-keyring child failure stays in its NoDecryptableKeyError', async () => {
    const hanging: Keyring = { onEncrypt: () => new Promise(() => {}), onDecrypt: () => new Promise(() => {}) };
    await expect(new Envelope({ keyring: hanging, keyringTimeoutMs: 5 }).encrypt('x')).rejects.toMatchObject({
      code: 'ERR_KEYRING_TIMEOUT',
    });
    const inner = new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', key: randomBytes(32) });
    const message = await new Envelope({ keyring: inner }).encrypt('x');
    const thrown = new Error('child');
    const multi = new MultiKeyring({ children: [failing(inner, 'decrypt', thrown, false)] });
    const err = await caught(() => new Envelope({ keyring: multi }).decrypt(message));
    expect(err).toBeInstanceOf(NoDecryptableKeyError);
    expect(((err as Error).cause as AggregateError).errors).toEqual([thrown]);
  });
});
