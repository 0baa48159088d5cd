/**
 * How the Envelope calls a keyring: under a time limit, and taking ownership of the data key the
 * keyring hands over (DESIGN.md, Keyring interface).
 *
 * Ownership follows the ESDK: its encryption and decryption materials hold the data key a keyring
 * sets and SHOULD offer a way to zero it (framework/structures.md, "Plaintext Data Key"). Here the
 * buffer a keyring returns is handed over: the Envelope copies the key into a buffer of its own
 * (never a slice of Node's shared Buffer pool, where the AWS SDK's decoded KMS plaintexts live and
 * where any other pooled Buffer's `.buffer` would reach it) and zeroes the keyring's bytes at once.
 * Its own copy is zeroed when its life ends: at once when uncached, when it leaves the cache
 * otherwise. A keyring must therefore return a fresh buffer it does not keep; one that keeps its
 * buffer and hands it out again finds it zeroed, gives the Envelope zeros the second time, which
 * is refused, so the mistake fails loudly instead of encrypting under a known key, and no cache
 * entry shares memory with another.
 */
import { performance } from 'node:perf_hooks';
import { EnvelopeError, KeyringError, KeyringTimeoutError } from './errors.js';
import { isThenable } from './keyrings/immediate.js';
import { copyInto, lengthOf, zeroFill } from './format/typed-array.js';
import { secretBuffer } from './crypto/secret-buffer.js';

/** A pending keyring call in a KeyringDeadlines queue. `expire` is cleared once it settles. */
interface Pending {
  readonly deadline: number;
  expire: (() => void) | undefined;
}

/**
 * The time limit of an Envelope's keyring calls (`keyringTimeoutMs`): one shared, `unref()`ed timer
 * instead of a `setTimeout`/`clearTimeout` pair per call, which cost a Timeout object and two
 * timer-list updates per message on the hot path (issue 14's profile).
 *
 * Every call of one instance has the same limit, so deadlines (start + timeoutMs on the monotonic
 * `performance.now()` clock) are queued in the order they fall due. The timer is armed for the
 * head's deadline; when it fires it fails every call whose deadline has passed and re-arms for
 * the next one, or stops when none is pending. A call that answers is only marked: nothing is
 * cleared or re-armed, so a steady stream of calls creates about one timer per `timeoutMs`.
 * Settled entries are dropped from the head at once, and the queue is compacted when they make up
 * most of it (calls answered behind a slow one), so it holds O(pending calls) entries.
 */
export class KeyringDeadlines {
  readonly #timeoutMs: number;
  #queue: Pending[] = [];
  #head = 0;
  /** Settled entries still in the queue behind the head. */
  #settled = 0;
  #timer: NodeJS.Timeout | undefined;

  /** `timeoutMs`: validated by the caller (an integer from 1 to 600,000 milliseconds). */
  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Calls a keyring method (`start`) and settles with `next` of its answer (or like its failure),
   * or rejects with KeyringTimeoutError once `timeoutMs` have passed. A call that settles after its
   * timeout is detached: its value goes to `discard` (which zeroes the data key) and a late
   * rejection is swallowed, since its callers were already given the timeout. The shared timer is
   * `unref()`ed, so a hanging keyring never keeps the process alive. Keyrings take no cancellation
   * signal, so the call itself cannot be aborted.
   *
   * A failure that is not an EnvelopeError (a plain Error, a string, `undefined`, thrown
   * synchronously or rejected) becomes a KeyringError: see foreignKeyringError.
   */
  call<T, R>(start: () => T | Promise<T>, discard: (late: T) => void, next: (value: T) => R): Promise<R> {
    let call: Promise<T>;
    try {
      // A keyring method that is not `async` may throw before returning a promise.
      call = Promise.resolve(start());
    } catch (err) {
      return Promise.reject(foreignKeyringError(err));
    }
    return new Promise<R>((resolve, reject) => {
      const timeoutMs = this.#timeoutMs;
      const entry: Pending = {
        deadline: performance.now() + timeoutMs,
        expire: () => reject(new KeyringTimeoutError(timeoutMs)),
      };
      this.#add(entry);
      // Promise.prototype.then, not `call.then`: Promise.resolve returns a keyring's own native
      // promise as it is, and an own `then` property on it (a hostile or broken keyring) would
      // otherwise run here, could throw past foreignKeyringError or call back twice.
      Promise.prototype.then.call(
        call,
        (value) => {
          if (entry.expire !== undefined) {
            this.#settle(entry);
            // `next` turns the keyring's answer into our own value before anything resolves with
            // it: resolving a promise with the answer itself would read its `then` once more, and
            // an answer that turns into a thenable on that read would escape the deadline.
            let result: R;
            try {
              result = next(value);
            } catch (err) {
              reject(err);
              return;
            }
            resolve(result);
            return;
          }
          try {
            discard(value);
          } catch {
            // A malformed late answer has nothing to wipe; nobody is waiting for it.
          }
        },
        (err: unknown) => {
          if (entry.expire === undefined) return;
          this.#settle(entry);
          reject(foreignKeyringError(err));
        },
      );
    });
  }

  /**
   * As `call`, but a keyring that answered synchronously (a value, or a synchronous throw) is
   * answered synchronously: there is nothing left to time out, so no promise or queue entry is
   * made. Used with the library's own keyrings' immediate methods (keyrings/immediate.ts) and with
   * keyrings whose methods are not `async`.
   *
   * The answer is inspected once, here: anything that is or may be a promise (a native promise,
   * an object inheriting from Promise.prototype, anything with a callable `then`) goes through
   * `call` and its time limit, and `next` gets the settled value. The caller never looks at the
   * keyring's answer itself: a hostile answer whose `then` (or prototype) reads differently the
   * second time cannot slip past the deadline.
   */
  callNow<T, R>(start: () => T | Promise<T>, discard: (late: T) => void, next: (value: T) => R): R | Promise<R> {
    let answer: T | Promise<T>;
    let pending: boolean;
    try {
      answer = start();
      // Both read the answer (`then`, the prototype chain), which a hostile answer may make throw.
      pending = answer instanceof Promise || isThenable(answer);
    } catch (err) {
      throw foreignKeyringError(err);
    }
    if (!pending) return next(answer as T);
    return this.call(() => answer, discard, next);
  }

  #add(entry: Pending): void {
    this.#queue.push(entry);
    if (this.#timer === undefined) this.#arm(this.#timeoutMs);
  }

  #arm(delay: number): void {
    this.#timer = setTimeout(() => this.#fire(), delay);
    this.#timer.unref();
  }

  #settle(entry: Pending): void {
    entry.expire = undefined;
    const q = this.#queue;
    if (q[this.#head] !== entry) {
      this.#settled++;
      // Answered behind a slower call: compact once settled entries are most of the queue.
      if (this.#settled > 32 && this.#settled * 2 > q.length - this.#head) this.#compact();
      return;
    }
    this.#head++;
    this.#dropSettledHead();
  }

  #dropSettledHead(): void {
    const q = this.#queue;
    while (this.#head < q.length && q[this.#head]!.expire === undefined) {
      this.#head++;
      this.#settled--;
    }
    if (this.#head === q.length) {
      q.length = 0;
      this.#head = 0;
      this.#settled = 0;
    } else if (this.#head > 1024 && this.#head * 2 > q.length) {
      this.#compact();
    }
  }

  #compact(): void {
    this.#queue = this.#queue.filter((e, i) => i >= this.#head && e.expire !== undefined);
    this.#head = 0;
    this.#settled = 0;
  }

  #fire(): void {
    this.#timer = undefined;
    const now = performance.now();
    const q = this.#queue;
    // Deadlines are in queue order: fail the due ones from the head.
    while (this.#head < q.length) {
      const e = q[this.#head]!;
      const expire = e.expire;
      if (expire !== undefined) {
        if (e.deadline > now) break;
        e.expire = undefined;
      } else {
        this.#settled--;
      }
      this.#head++;
      expire?.();
    }
    this.#dropSettledHead();
    // libuv's cached loop time can fire a timer a fraction of a millisecond early: rounding up
    // re-arms for what is left, so no call fails before its full timeoutMs.
    if (this.#head < this.#queue.length) this.#arm(Math.max(1, Math.ceil(this.#queue[this.#head]!.deadline - now)));
  }
}

/** Built-in error classes whose names say what went wrong without saying anything secret. */
const BUILTIN_ERRORS: ReadonlyMap<unknown, string> = new Map<unknown, string>(
  [Error, TypeError, RangeError, ReferenceError, SyntaxError, EvalError, URIError, AggregateError].map((c) => [c, c.name]),
);

/**
 * What a keyring call failed with, as the Envelope reports it: an EnvelopeError (KmsError,
 * NoDecryptableKeyError, KeyringError, ...) as it is; anything else (a custom keyring's plain
 * Error, a string, a non-Error rejection) wrapped in KeyringError (ERR_KEYRING) with the original
 * as `cause`, so callers switching on `code` see a typed error. The original's message is not
 * copied into ours: a custom keyring's text may carry secrets (a connection string, a token);
 * the cause keeps it for whoever chooses to log it. Our message names only the kind of value.
 */
export function foreignKeyringError(err: unknown): EnvelopeError {
  if (err instanceof EnvelopeError) return err;
  let kind: string;
  if (err instanceof Error) kind = BUILTIN_ERRORS.get(err.constructor) ?? 'an Error subclass';
  else kind = err === null || err === undefined ? String(err) : `a value of type ${typeof err} (not an Error)`;
  return new KeyringError(`keyring call failed with ${kind}; the original is the cause`, { cause: err });
}

/**
 * Takes the data key a keyring returned: copied into a new buffer of exactly `length` bytes with an
 * ArrayBuffer of its own, and the keyring's bytes zeroed (see the top of this file). Refuses with
 * KeyringError anything but `length` bytes, and an all-zero key; a refused key is zeroed too.
 * Reads the keyring's array only through the intrinsic TypedArray methods (format/typed-array.ts),
 * so a subclass with lying `length` or `fill` cannot make the copy and the wipe disagree.
 */
export function takeDataKey(key: unknown, length: number): Buffer {
  if (!(key instanceof Uint8Array)) {
    throw new KeyringError(`keyring returned a data key of the wrong length (not a Uint8Array of ${length} bytes)`);
  }
  const n = lengthOf(key);
  if (n !== length) {
    zeroFill(key);
    throw new KeyringError(`keyring returned a data key of the wrong length (${n} bytes, not ${length})`);
  }
  const own = secretBuffer(length);
  copyInto(own, key);
  zeroFill(key);
  if (isAllZero(own)) {
    throw new KeyringError('keyring returned an all-zero data key (a keyring must return a fresh buffer it does not keep)');
  }
  return own;
}

/** Zeroes a late or refused keyring answer if it is bytes; anything else has nothing to wipe. */
export function wipe(key: unknown): void {
  if (key instanceof Uint8Array) key.fill(0);
}

/**
 * True when every byte is zero. ORs every byte with no early exit, so the time taken does not
 * depend on where the first non-zero byte is; it runs once per keyring call, not per message.
 */
function isAllZero(b: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < b.length; i++) acc |= b[i]!;
  return acc === 0;
}
