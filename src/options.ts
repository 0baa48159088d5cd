/**
 * Checks the names in an options object, constructor or per call. A misspelt or foreign option is
 * not harmless: `decrypt(msg, { encryptionContext })` (the ESDK's name for our `context`) would
 * otherwise skip the required-context check without a word, and `encrypt` would write an empty
 * context. So every options object is checked against the names its call knows.
 */

/**
 * Throws a TypeError naming the first own enumerable key of `options` that is not in `known`.
 * `options === undefined` (no options) passes at once; anything else but a non-array object is a
 * TypeError. Costs one `Object.keys` and a Set lookup per key, so it sits on hot paths (encrypt
 * with a warm cache) too. Own keys only: an inherited unknown property is read by nothing, so it
 * cannot be mistaken for an option.
 */
export function checkOptionNames(options: unknown, known: ReadonlySet<string>, where: string): void {
  if (options === undefined) return;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${where} options must be an object`);
  }
  // for-in with an own-property check visits what Object.keys returns (own enumerable string keys)
  // without allocating the array: this runs on every encrypt and decrypt.
  for (const k in options) {
    if (Object.prototype.hasOwnProperty.call(options, k) && !known.has(k)) throw new TypeError(unknownMessage(k, known, where));
  }
}

function unknownMessage(k: string, known: ReadonlySet<string>, where: string): string {
  let msg = `unknown option ${JSON.stringify(k)} for ${where} (known: ${[...known].join(', ')})`;
  // The AWS Encryption SDKs call it `encryptionContext`; here it is `context`.
  if (k === 'encryptionContext' && known.has('context')) msg += '; the encryption context option is called `context`';
  return msg;
}
