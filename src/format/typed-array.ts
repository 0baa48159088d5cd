/**
 * Reading and writing Uint8Arrays handed over by other code (a keyring's data key, its encrypted
 * data keys) through the intrinsic TypedArray methods. A subclass, or an own property, can make
 * `length`, `fill` or `set` answer differently from what the array holds, and differently on each
 * read; the intrinsics read the array's internal slots, so a size computed once is the size copied.
 */
const typedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as Uint8Array;
const intrinsicLength = Object.getOwnPropertyDescriptor(typedArrayPrototype, 'length')!.get! as (this: Uint8Array) => number;
const intrinsicFill = typedArrayPrototype.fill as (this: Uint8Array, value: number) => Uint8Array;
const intrinsicSet = typedArrayPrototype.set as (this: Uint8Array, source: ArrayLike<number>, offset?: number) => void;

/** The number of elements `b` really holds. */
export function lengthOf(b: Uint8Array): number {
  return intrinsicLength.call(b);
}

/** Zeroes every element of `b`. */
export function zeroFill(b: Uint8Array): void {
  intrinsicFill.call(b, 0);
}

/** Copies all of `source` into `target` at `offset`. */
export function copyInto(target: Uint8Array, source: Uint8Array, offset = 0): void {
  intrinsicSet.call(target, source, offset);
}
