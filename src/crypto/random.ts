import { randomFillSync } from 'node:crypto';
import { startupSnapshot } from 'node:v8';

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
 * Two pools:
 * - `randomFillPooled`/`randomPooled` (4 KiB): values stored in the message in the clear, such as
 *   message ids and the hierarchical keyring's salt and IV.
 * - `randomKey` (256 bytes, 8 keys of 32 bytes): data keys, for keyrings that already hold a key
 *   in memory that unwraps every data key they make (the hierarchical keyring's cached branch key).
 *   At most 7 future keys wait in the pool. Someone who can read process memory learns nothing new
 *   from them: the keyring's cached key unwraps those and every other data key, and OpenSSL's DRBG
 *   state, in the same process, predicts future output until its next reseed. Past keys are not
 *   recoverable from the pool, as they are not from the DRBG (backtracking resistance).
 *
 * Startup snapshots (`node --build-snapshot` with a bundled application): a pool filled while the
 * snapshot was built would be restored, with the same bytes, into every process started from it,
 * repeating message ids, wrap IVs and data keys across processes. Both pools are zeroed and marked
 * empty before the heap is serialized, so each process fills its own.
 */
class Pool {
  readonly #bytes: Buffer;
  #offset: number;

  constructor(size: number) {
    this.#bytes = Buffer.allocUnsafeSlow(size); // memory of its own, never Node's shared Buffer pool
    this.#offset = size;
  }

  fill(target: Uint8Array, at: number, length: number): void {
    const size = this.#bytes.length;
    if (length > size) {
      randomFillSync(target, at, length);
      return;
    }
    if (this.#offset + length > size) {
      randomFillSync(this.#bytes);
      this.#offset = 0;
    }
    const from = this.#offset;
    this.#bytes.copy(target, at, from, from + length);
    this.#bytes.fill(0, from, from + length);
    this.#offset = from + length;
  }

  /** Zeroes the pool and marks it empty: the next draw refills it from the CSPRNG. */
  discard(): void {
    this.#bytes.fill(0);
    this.#offset = this.#bytes.length;
  }
}

const publicPool = new Pool(4096);
const keyPool = new Pool(256);

if (startupSnapshot.isBuildingSnapshot()) {
  startupSnapshot.addSerializeCallback(() => {
    publicPool.discard();
    keyPool.discard();
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

/**
 * A fresh random data key of `length` bytes in memory of its own (never Node's shared Buffer pool,
 * so zeroing it leaves no copy), from the key pool. Only for keyrings that hold a key unwrapping
 * every data key they make (see above).
 */
export function randomKey(length: number): Buffer {
  const key = Buffer.allocUnsafeSlow(length);
  keyPool.fill(key, 0, length);
  return key;
}
