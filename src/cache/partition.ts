/**
 * Encrypt-side cache partitions: which cached materials a caller's encryption context may use.
 * (The suite and frame length are fixed per Envelope, and so is its cache.)
 *
 * The caller's context object is read exactly once (`readContextPairs`). The partition, the
 * validation and the copy that the keyring and the header see all come from that one read, so an
 * object that answers differently when read again (a getter, a Proxy) cannot make a cached entry's
 * context differ from its partition.
 *
 * The partition is a canonical string of the pairs: sorted by key, each key and value written as
 * its length in UTF-16 code units, ':' and the string. That is a prefix code, so two contexts share
 * a partition only if they are equal. Hence a cache hit needs no validation of its own: entries are
 * only ever stored under the partition of a context that passed checkEncryptContext (the Envelope's
 * miss path computes it from the validated copy), and a lookup matches such an entry only when the
 * caller's read is that very context.
 */

const NO_PAIRS: readonly unknown[] = Object.freeze([]);

/**
 * One read of a caller's context: its own enumerable string keys, sorted (UTF-16 code unit order,
 * `Array.prototype.sort`), each followed by its value as read, not yet checked:
 * `[k0, v0, k1, v1, ...]`. `context` must be a non-array object (checkEncryptContext rejects the rest).
 */
export function readContextPairs(context: object | undefined): readonly unknown[] {
  if (context === undefined) return NO_PAIRS;
  const keys = Object.keys(context);
  const n = keys.length;
  if (n === 0) return NO_PAIRS;
  if (n > 1) sortKeys(keys);
  const pairs: unknown[] = new Array(2 * n);
  for (let i = 0; i < n; i++) {
    const k = keys[i]!;
    pairs[2 * i] = k;
    pairs[2 * i + 1] = (context as Record<string, unknown>)[k];
  }
  return pairs;
}

/**
 * Sorts string keys in place in UTF-16 code unit order, the order of `Array.prototype.sort` without
 * a comparator (for strings, `<` compares code units the same way). Contexts have a few keys, and
 * an insertion sort of a few needs no work array, where the built-in sort allocates one per call:
 * this runs once per encrypt, so that was garbage on every message.
 */
function sortKeys(keys: string[]): void {
  const n = keys.length;
  if (n > 16) {
    keys.sort();
    return;
  }
  for (let i = 1; i < n; i++) {
    const k = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > k) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = k;
  }
}

/** The partition of a read (see above), or `undefined` when a value is not a string. */
export function partitionOf(pairs: readonly unknown[]): string | undefined {
  let s = '';
  for (let i = 0; i < pairs.length; i += 2) {
    const k = pairs[i] as string;
    const v = pairs[i + 1];
    if (typeof v !== 'string') return undefined;
    s += k.length + ':' + k + v.length + ':' + v;
  }
  return s;
}

/** The read as a null-prototype object (for validation, which then copies it once more). */
export function pairsToObject(pairs: readonly unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  for (let i = 0; i < pairs.length; i += 2) out[pairs[i] as string] = pairs[i + 1];
  return out;
}
