import { randomFillSync } from 'node:crypto';
import { startupSnapshot } from 'node:v8';
import { secretBuffer } from './secret-buffer.js';

/**
 * Pooled randomness: one `randomFillSync` for many values.
 *
 * A CSPRNG call costs about 5 µs on the bench machine, nearly all of it per call rather than per
 * byte: about an eighth of a 1 KiB hierarchical-keyring encrypt (CPU profile of `npm run bench`'s
 * loop). Drawing several values from one call removes that cost from most messages.
 *
 * Every pooled byte is copied out (no view of a pool is ever made), handed out at most once and
 * zeroed in the pool at once, so nothing already handed out stays in the pool and a refill cannot
 * change a value a caller holds.
 *
 * - One process-wide 4 KiB pool (`randomFillPooled`, `randomPooled`) for values stored in the
 *   message in the clear: message ids, the hierarchical keyring's salts and IVs.
 * - Key pools (`RandomPool.takeKey`) belong to one holder of key material and are discarded with it:
 *   the hierarchical keyring keeps one per cached branch key, so the data keys waiting in it exist
 *   only while the branch key that will wrap them is in memory, and are zeroed when it is.
 *
 * Startup snapshots (`node --build-snapshot` of a bundled application): pooled bytes saved in a
 * snapshot would be restored into every process started from it, repeating message ids, wrap IVs
 * and data keys across processes. From the library's serialize callback until its deserialize
 * callback every draw goes to the CSPRNG directly (later serialize callbacks, `beforeExit` and
 * `exit` handlers may still encrypt); each deserialization starts a new epoch, and a pool filled in
 * an earlier epoch (before the serialize callback) is discarded before its next draw.
 */

let epoch = 0;
let direct = false;

export class RandomPool {
  readonly #size: number;
  #bytes: Buffer | undefined;
  #offset: number;
  #epoch = epoch;
  #closed = false;

  /** `size` bytes per CSPRNG call, allocated at the first draw (a pool never drawn from costs nothing). */
  constructor(size: number) {
    this.#size = size;
    this.#offset = size;
  }

  /** Writes `length` fresh random bytes into `target` at `at`. */
  fill(target: Uint8Array, at: number, length: number): void {
    if (length > this.#size || direct || this.#closed) {
      randomFillSync(target, at, length);
      return;
    }
    if (this.#epoch !== epoch) {
      this.discard();
      this.#epoch = epoch;
    }
    let bytes = this.#bytes;
    if (bytes === undefined) bytes = this.#bytes = secretBuffer(this.#size);
    if (this.#offset + length > this.#size) {
      randomFillSync(bytes);
      this.#offset = 0;
    }
    const from = this.#offset;
    bytes.copy(target, at, from, from + length);
    bytes.fill(0, from, from + length);
    this.#offset = from + length;
  }

  /** A fresh random key of `length` bytes in a Buffer of its own (crypto/secret-buffer.ts). */
  takeKey(length: number): Buffer {
    const key = secretBuffer(length);
    this.fill(key, 0, length);
    return key;
  }

  /** Zeroes the pool and marks it empty: the next draw refills it from the CSPRNG. */
  discard(): void {
    this.#bytes?.fill(0);
    this.#offset = this.#size;
  }

  /** Zeroes the pool for good: later draws (a caller still holding it) go to the CSPRNG directly. */
  close(): void {
    this.discard();
    this.#closed = true;
  }
}

const publicPool = new RandomPool(4096);

if (startupSnapshot.isBuildingSnapshot()) {
  startupSnapshot.addSerializeCallback(() => {
    direct = true;
    publicPool.discard();
  });
  startupSnapshot.addDeserializeCallback(() => {
    epoch++;
    direct = false;
  });
}

/** Writes `length` fresh random bytes into `target` at `at`. Not for key material. */
export function randomFillPooled(target: Uint8Array, at: number, length: number): void {
  publicPool.fill(target, at, length);
}

/** Returns a new Buffer of `length` random bytes drawn from the pool. Not for key material. */
export function randomPooled(length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  publicPool.fill(out, 0, length);
  return out;
}
