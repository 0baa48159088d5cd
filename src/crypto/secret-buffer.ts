/**
 * A zero-filled Buffer for key material, over an ArrayBuffer of its own.
 *
 * Not `Buffer.allocUnsafeSlow(n)`: V8 keeps the bytes of a typed array of up to 64 bytes created
 * without an ArrayBuffer inside the JavaScript heap, and its garbage collector moves them, leaving
 * copies behind that `fill(0)` never reaches (an outside review found zeroed 32-byte data keys in
 * heap pages). An explicit ArrayBuffer's bytes live outside the heap and never move, so zeroing the
 * Buffer zeroes the only copy. Not `Buffer.allocUnsafe` either: a slice of Node's shared pool slab
 * would let anyone holding another slice of it (via `.buffer`) read the key.
 */
export function secretBuffer(length: number): Buffer {
  return Buffer.from(new ArrayBuffer(length));
}

/** A copy of `bytes` in a secretBuffer (the caller zeroes the original if it must). */
export function secretCopy(bytes: Uint8Array): Buffer {
  const copy = secretBuffer(bytes.length);
  copy.set(bytes);
  return copy;
}
