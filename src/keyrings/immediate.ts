/**
 * Keyrings that can answer without a promise.
 *
 * The public Keyring methods return promises (types.ts). The library's own keyrings whose answer
 * often needs no I/O (a raw AES key, a cached branch key) also implement these two internal
 * methods, which return the same answer, or throw the same error, as onEncrypt/onDecrypt, but
 * synchronously whenever they can: a promise only when the keyring has to wait (a branch key store
 * load, an async branch key id supplier). The Envelope prefers them, so a message whose keyring
 * answers at once costs no promise, timer entry or microtask turn for the keyring call (issue 14's
 * profile: at 1 KiB these were a measurable part of each message). The symbols are not exported
 * from the package, so this is not an interface outside code can implement or call.
 */
import type { Keyring, KeyringDecryptInput, KeyringEncryptInput, KeyringEncryptOutput } from '../types.js';

export const ENCRYPT_NOW: unique symbol = Symbol('kms-envelope.keyring.encryptNow');
export const DECRYPT_NOW: unique symbol = Symbol('kms-envelope.keyring.decryptNow');

export interface ImmediateKeyring {
  [ENCRYPT_NOW](input: KeyringEncryptInput): KeyringEncryptOutput | Promise<KeyringEncryptOutput>;
  [DECRYPT_NOW](input: KeyringDecryptInput): Uint8Array | undefined | Promise<Uint8Array | undefined>;
}

/** True when `x` is a thenable: what `await` would wait for. */
export function isThenable(x: unknown): x is PromiseLike<unknown> {
  return (typeof x === 'object' || typeof x === 'function') && x !== null && typeof (x as { then?: unknown }).then === 'function';
}

/**
 * The public methods each immediate keyring class defined, captured when its module loaded
 * (registerImmediate), before any other code could patch its prototype.
 */
const originals = new WeakMap<object, { onEncrypt: unknown; onDecrypt: unknown }>();

/**
 * Records `proto`'s own onEncrypt/onDecrypt as the ones its immediate methods stand for. Called
 * once per class, right after the class definition.
 */
export function registerImmediate(proto: object): void {
  const p = proto as Record<string, unknown>;
  originals.set(proto, { onEncrypt: p.onEncrypt, onDecrypt: p.onDecrypt });
}

/**
 * How the Envelope calls a keyring's `onEncrypt` or `onDecrypt`: through the immediate method when
 * the keyring has one and its public method is still the one its class defined (registerImmediate).
 * A subclass that overrides `onEncrypt`, or a spy or wrapper assigned over it (on the instance or
 * on the prototype, before or after the Envelope was made), is called as written, since it may do
 * more than the immediate method does. Checked per call: one property read and one comparison.
 */
export function keyringMethod(keyring: Keyring, name: 'onEncrypt', now: typeof ENCRYPT_NOW): (input: KeyringEncryptInput) => KeyringEncryptOutput | Promise<KeyringEncryptOutput>;
export function keyringMethod(keyring: Keyring, name: 'onDecrypt', now: typeof DECRYPT_NOW): (input: KeyringDecryptInput) => Uint8Array | undefined | Promise<Uint8Array | undefined>;
export function keyringMethod(keyring: Keyring, name: 'onEncrypt' | 'onDecrypt', now: symbol): (input: never) => unknown {
  const k = keyring as unknown as Record<string | symbol, unknown>;
  const immediate = k[now];
  let owner: object | null = keyring;
  while (owner !== null && !Object.prototype.hasOwnProperty.call(owner, now)) owner = Object.getPrototypeOf(owner) as object | null;
  const paired = owner === null ? undefined : originals.get(owner)?.[name];
  if (typeof immediate !== 'function' || typeof paired !== 'function') {
    return (input) => (k[name] as (i: unknown) => unknown).call(keyring, input);
  }
  return (input) => {
    const method = k[name] as (i: unknown) => unknown;
    return method === paired ? (immediate as (i: unknown) => unknown).call(keyring, input) : method.call(keyring, input);
  };
}
