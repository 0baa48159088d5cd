import { randomFillSync } from 'node:crypto';

/**
 * Pooled randomness for non-secret values (message ids).
 *
 * One `randomFillSync` call per 4 KiB amortizes the CSPRNG call overhead over 128 message ids,
 * which matters when a cached data key makes the rest of an encrypt cost only a few microseconds.
 * Bytes are copied out of the pool and every byte is handed out at most once; the pool itself is
 * never exposed, so refilling it cannot change a value already given to a caller.
 *
 * Never use this for key material: pooled bytes stay in memory until they are handed out.
 */
const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafeSlow(POOL_SIZE);
let offset = POOL_SIZE;

/** Writes `length` fresh random bytes into `target` at `at`. */
export function randomFillPooled(target: Uint8Array, at: number, length: number): void {
  if (length > POOL_SIZE) {
    randomFillSync(target, at, length);
    return;
  }
  if (offset + length > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  pool.copy(target, at, offset, offset + length); // no view of the pool is made
  // Wipe what was handed out so the same bytes can never be handed out twice, even by mistake.
  pool.fill(0, offset, offset + length);
  offset += length;
}

/** Returns a new Buffer of `length` random bytes drawn from the pool. */
export function randomPooled(length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  randomFillPooled(out, 0, length);
  return out;
}
