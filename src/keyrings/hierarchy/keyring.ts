/**
 * The hierarchical keyring (framework/aws-kms/aws-kms-hierarchical-keyring.md), wire-compatible with
 * the AWS Encryption SDK's (`KmsHierarchicalKeyRingNode`, provider id `aws-kms-hierarchy`).
 *
 * Every message gets its own random data key, wrapped locally under a key derived from a branch key
 * (wrapping.ts). The branch key comes from a BranchKeyStore, which asks KMS to decrypt it; it is
 * then cached for `cache.maxAgeMs`, so KMS sees one Decrypt per branch key (per tenant) per cache
 * period instead of one request per message.
 */
import { KeyringError, NoDecryptableKeyError } from '../../errors.js';
import type { EncryptedDataKey, EncryptionContext, Keyring, KeyringDecryptInput, KeyringEncryptInput, KeyringEncryptOutput } from '../../types.js';
import { isLibraryContext, isWellFormedUtf16 } from '../../format/context.js';
import { checkGivenDataKey, decodeUtf8, keyringSuite, plainContext, stringOption } from '../common.js';
import { DECRYPT_NOW, ENCRYPT_NOW, registerImmediate, isThenable, type ImmediateKeyring } from '../immediate.js';
import type { Suite } from '../../format/suites.js';
import { BranchKeyCache, cacheEntryId, type CachedBranchKey, randomPartitionId, resolveBranchKeyCacheOptions, type BranchKeyCacheOptions, type BranchKeyCacheStats } from './cache.js';
import type { BranchKeyMaterials } from './items.js';
import type { BranchKeyStore } from './store.js';
import { HIERARCHY_PROVIDER_ID, parseCiphertext, unwrapDataKey, wrapDataKey } from './wrapping.js';

/**
 * Picks the branch key for a message from its encryption context (multi-tenant use: one branch
 * key per tenant). Called on encrypt with the context of the message, and on decrypt with the
 * context stored in the message (signed suites add `aws-crypto-public-key`). May be async.
 * Return the same id for the same tenant on both sides.
 */
export type BranchKeyIdSupplier =
  | ((context: Readonly<EncryptionContext>) => string | Promise<string>)
  | { getBranchKeyId(context: Readonly<EncryptionContext>): string | Promise<string> };

export interface HierarchicalKeyringOptions {
  /** Where branch keys come from. Required. */
  keyStore: BranchKeyStore;
  /** The branch key of every message. Give this or `branchKeyIdSupplier`, not both. */
  branchKeyId?: string;
  /** The branch key per message, from its encryption context. Give this or `branchKeyId`. */
  branchKeyIdSupplier?: BranchKeyIdSupplier;
  /**
   * Branch key cache. `maxAgeMs` is required (the specification's "cache limit TTL", here in
   * milliseconds, 1..86_400_000); `maxEntries` 1..100_000, default 1000. Never unbounded.
   */
  cache: BranchKeyCacheOptions;
  /**
   * Partition id of the cache identifiers (spec "Partition ID"), as UTF-8. Default: the 16 bytes
   * of a random v4 UUID. Only matters for telling keyrings apart; the cache is per keyring.
   */
  partitionId?: string;
}

const KNOWN = new Set(['keyStore', 'branchKeyId', 'branchKeyIdSupplier', 'cache', 'partitionId']);
const PROVIDER_ID_MAX = 0xffff;

/**
 * Marks keyrings whose promise is a fresh data key per message, so an Envelope leaves its data-key
 * cache off by default (envelope-options.ts). A registered symbol, not `instanceof`, so a keyring
 * from another copy of this package (two versions in node_modules) is recognized too.
 */
export const FRESH_DATA_KEYS = Symbol.for('kms-envelope.freshDataKeyPerMessage');

export class HierarchicalKeyring implements Keyring, ImmediateKeyring {
  readonly [FRESH_DATA_KEYS] = true;
  readonly #store: BranchKeyStore;
  readonly #branchKeyId: string | undefined;
  readonly #supplier: ((context: Readonly<EncryptionContext>) => string | Promise<string>) | undefined;
  readonly #cache: BranchKeyCache;
  readonly #partition: Uint8Array;
  /**
   * cacheEntryId per (branch key id, version): a SHA-384 over the same bytes for every message of a
   * cache period, so computed once. Bounded like the cache (cleared when it reaches twice its
   * maxEntries); the ids are not secret (hashes of names).
   */
  readonly #entryIds = new Map<string, string>();
  readonly #maxEntryIds: number;

  constructor(options: HierarchicalKeyringOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('HierarchicalKeyring options must be an object');
    for (const k of Object.keys(options)) {
      if (!KNOWN.has(k)) throw new TypeError(`${k} is not a HierarchicalKeyring option (allowed: ${[...KNOWN].join(', ')})`);
    }
    const ks = options.keyStore as unknown as Record<string, unknown> | null;
    if (ks === null || typeof ks !== 'object' || typeof ks.getActiveBranchKey !== 'function' || typeof ks.getBranchKeyVersion !== 'function') {
      throw new TypeError('keyStore must be a BranchKeyStore');
    }
    if (typeof ks.logicalKeyStoreName !== 'string') throw new TypeError('keyStore must be a BranchKeyStore (logicalKeyStoreName)');
    this.#store = options.keyStore;
    const hasId = options.branchKeyId !== undefined;
    const hasSupplier = options.branchKeyIdSupplier !== undefined;
    if (hasId === hasSupplier) throw new TypeError('give exactly one of branchKeyId and branchKeyIdSupplier');
    if (hasId) this.#branchKeyId = stringOption(options.branchKeyId, 'branchKeyId', PROVIDER_ID_MAX);
    if (hasSupplier) {
      const s = options.branchKeyIdSupplier as unknown;
      if (typeof s === 'function') {
        this.#supplier = s as (context: Readonly<EncryptionContext>) => string | Promise<string>;
      } else if (s !== null && typeof s === 'object' && typeof (s as { getBranchKeyId?: unknown }).getBranchKeyId === 'function') {
        const obj = s as { getBranchKeyId(context: Readonly<EncryptionContext>): string | Promise<string> };
        this.#supplier = (context) => obj.getBranchKeyId(context);
      } else {
        throw new TypeError('branchKeyIdSupplier must be a function or an object with getBranchKeyId(context)');
      }
    }
    const cacheOptions = resolveBranchKeyCacheOptions(options.cache, 'cache');
    this.#cache = new BranchKeyCache(cacheOptions);
    this.#maxEntryIds = 2 * cacheOptions.maxEntries;
    this.#partition =
      options.partitionId === undefined ? randomPartitionId() : Buffer.from(stringOption(options.partitionId, 'partitionId'), 'utf8');
  }

  /** Branch key cache counters (hits, misses = branch key store loads, evictions, entries). */
  cacheStats(): BranchKeyCacheStats {
    return this.#cache.stats();
  }

  /** Removes and zeroes every cached branch key: the next message asks the key store (and KMS) again. */
  clearCache(): void {
    this.#cache.clear();
  }

  async onEncrypt(input: KeyringEncryptInput): Promise<KeyringEncryptOutput> {
    return this[ENCRYPT_NOW](input);
  }

  async onDecrypt(input: KeyringDecryptInput): Promise<Uint8Array | undefined> {
    return this[DECRYPT_NOW](input);
  }

  /**
   * onEncrypt, answered without a promise when the branch key id is known at once (a fixed id, or a
   * supplier that returned a string) and the branch key is cached (keyrings/immediate.ts).
   */
  [ENCRYPT_NOW](input: KeyringEncryptInput): KeyringEncryptOutput | Promise<KeyringEncryptOutput> {
    const suite = keyringSuite(input.suiteId);
    const given = input.dataKey !== undefined ? checkGivenDataKey(input.dataKey, suite) : undefined;
    const context = ownContext(input.context);
    // No closure unless the id is late: this runs per message.
    const branchKeyId = this.#branchKeyIdFor(context);
    if (typeof branchKeyId !== 'string') return branchKeyId.then((id) => this.#encryptUnder(id, suite, given, context));
    return this.#encryptUnder(branchKeyId, suite, given, context);
  }

  #encryptUnder(
    branchKeyId: string,
    suite: Suite,
    given: Uint8Array | undefined,
    context: Readonly<EncryptionContext>,
  ): KeyringEncryptOutput | Promise<KeyringEncryptOutput> {
    const id = this.#entryId(branchKeyId, undefined);
    const cached = this.#cache.lookup(id);
    if (cached !== undefined) return this.#wrap(cached, branchKeyId, suite, given, context);
    return this.#cache
      .get(id, () => this.#store.getActiveBranchKey(branchKeyId))
      .then((entry) => this.#wrap(entry, branchKeyId, suite, given, context));
  }

  // Runs in the same turn as the cache lookup or load that produced `entry`: the cached branch key
  // is used before anything can evict and zero it.
  #wrap(
    { materials, dataKeys }: CachedBranchKey,
    branchKeyId: string,
    suite: Suite,
    given: Uint8Array | undefined,
    context: Readonly<EncryptionContext>,
  ): KeyringEncryptOutput {
    if (materials.branchKeyId !== branchKeyId) throw new KeyringError('the branch key store returned another branch key');
    // A fresh key per message, from the pool that lives and is zeroed with this cached branch key
    // (cache.ts): keys waiting there are never in memory without the key that will wrap them.
    const dataKey = given ?? dataKeys.takeKey(suite.keyLength);
    let ciphertext: Buffer;
    try {
      ciphertext = wrapDataKey({
        branchKey: materials.branchKey,
        branchKeyId,
        branchKeyVersion: materials.branchKeyVersion,
        dataKey,
        context,
      });
    } catch (err) {
      if (given === undefined) dataKey.fill(0);
      throw new KeyringError('HierarchicalKeyring could not wrap the data key', { cause: err });
    }
    const edk: EncryptedDataKey = {
      providerId: HIERARCHY_PROVIDER_ID,
      providerInfo: Buffer.from(branchKeyId, 'utf8'),
      ciphertext,
    };
    return { dataKey, encryptedDataKeys: [edk] };
  }

  /**
   * onDecrypt, answered without a promise when the branch key id is known at once and the branch
   * key version of the EDK that authenticates is cached (keyrings/immediate.ts).
   */
  [DECRYPT_NOW](input: KeyringDecryptInput): Uint8Array | undefined | Promise<Uint8Array | undefined> {
    const suite = keyringSuite(input.suiteId);
    const context = ownContext(input.context);
    const branchKeyId = this.#branchKeyIdFor(context);
    if (typeof branchKeyId !== 'string') return branchKeyId.then((id) => this.#decryptFor(id, suite, input, context));
    return this.#decryptFor(branchKeyId, suite, input, context);
  }

  #decryptFor(
    branchKeyId: string,
    suite: Suite,
    input: KeyringDecryptInput,
    context: Readonly<EncryptionContext>,
  ): Uint8Array | undefined | Promise<Uint8Array | undefined> {
    // Spec "OnDecrypt": provider id aws-kms-hierarchy and provider info (UTF-8) = our branch key id.
    let ours: EncryptedDataKey[] | undefined;
    for (const edk of input.encryptedDataKeys) {
      if (edk.providerId === HIERARCHY_PROVIDER_ID && decodeUtf8(edk.providerInfo) === branchKeyId) (ours ??= []).push(edk);
    }
    if (ours === undefined) return undefined;
    return this.#unwrapFirst({ ours, branchKeyId, suite, context, errors: [] }, 0);
  }

  /**
   * Tries the matching EDKs in order from `from`, returning the first data key that authenticates.
   * A cache miss continues in #loadAndUnwrap, which resumes here with the next EDK.
   */
  #unwrapFirst(attempt: DecryptAttempt, from: number): Uint8Array | Promise<Uint8Array> {
    const { ours, suite, errors } = attempt;
    for (let i = from; i < ours.length; i++) {
      const parts = parseCiphertext(ours[i]!.ciphertext, suite.keyLength);
      if (parts === undefined) {
        errors.push(new KeyringError('encrypted data key has the wrong length'));
        continue;
      }
      const id = this.#entryId(attempt.branchKeyId, parts.version);
      const cached = this.#cache.lookup(id);
      if (cached === undefined) return this.#loadAndUnwrap(attempt, i, parts, id);
      const key = this.#tryUnwrap(attempt, cached.materials, parts);
      if (key !== undefined) return key;
    }
    const names = [...new Set(errors.map((e) => ('code' in e ? String(e.code) : e.name)))];
    throw new NoDecryptableKeyError(
      `HierarchicalKeyring could not decrypt any of its ${ours.length} matching encrypted data key(s) (${names.join(', ')})`,
      { cause: new AggregateError(errors, 'hierarchical keyring decrypt attempts failed') },
    );
  }

  async #loadAndUnwrap(attempt: DecryptAttempt, i: number, parts: CiphertextParts, id: string): Promise<Uint8Array> {
    const { branchKeyId } = attempt;
    let materials: BranchKeyMaterials;
    try {
      ({ materials } = await this.#cache.get(id, () => this.#store.getBranchKeyVersion(branchKeyId, parts.version)));
    } catch (err) {
      attempt.errors.push(err instanceof Error ? err : new KeyringError('branch key store failed'));
      return this.#unwrapFirst(attempt, i + 1);
    }
    // Nothing awaits between the load and the unwrap: the key is used before it can be zeroed.
    return this.#tryUnwrap(attempt, materials, parts) ?? this.#unwrapFirst(attempt, i + 1);
  }

  /** The data key, or undefined (the failure recorded in `attempt.errors`) when this EDK does not authenticate. */
  #tryUnwrap(attempt: DecryptAttempt, materials: BranchKeyMaterials, parts: CiphertextParts): Buffer | undefined {
    try {
      if (materials.branchKeyId !== attempt.branchKeyId || materials.branchKeyVersion !== parts.version) {
        throw new KeyringError('the branch key store returned another branch key version');
      }
      return unwrapDataKey({ branchKey: materials.branchKey, branchKeyId: attempt.branchKeyId, parts, context: attempt.context });
    } catch {
      // One message for every unwrap failure: wrong key, changed context, flipped bit.
      attempt.errors.push(new KeyringError('encrypted data key did not authenticate'));
      return undefined;
    }
  }

  #entryId(branchKeyId: string, version: string | undefined): string {
    // A version from parseCiphertext is a 36-character canonical UUID: 'd' + version + id is unambiguous.
    const key = version === undefined ? `e${branchKeyId}` : `d${version}${branchKeyId}`;
    let id = this.#entryIds.get(key);
    if (id === undefined) {
      id = cacheEntryId(this.#partition, this.#store.logicalKeyStoreName, branchKeyId, version);
      if (this.#entryIds.size >= this.#maxEntryIds) this.#entryIds.clear();
      this.#entryIds.set(key, id);
    }
    return id;
  }

  /**
   * The branch key id of a message: the fixed one, or the supplier's answer (a string at once, or
   * a promise of one when the supplier is async). A supplier failure is a KeyringError.
   */
  #branchKeyIdFor(context: Readonly<EncryptionContext>): string | Promise<string> {
    if (this.#branchKeyId !== undefined) return this.#branchKeyId;
    let id: unknown;
    let settled: Promise<unknown> | undefined;
    try {
      id = this.#supplier!(Object.freeze({ ...context }));
      // The answer is read here only (as keyring-call.ts callNow reads a keyring's): anything that
      // is or may be a promise is adopted by a promise of ours, and Promise.prototype.then (not
      // the answer's own `then`) carries the result on.
      if (id instanceof Promise || isThenable(id)) settled = Promise.resolve(id);
    } catch (err) {
      throw new KeyringError('branchKeyIdSupplier failed', { cause: err });
    }
    if (settled !== undefined) {
      return Promise.prototype.then.call(settled, suppliedId, (err: unknown) => {
        throw new KeyringError('branchKeyIdSupplier failed', { cause: err });
      }) as Promise<string>;
    }
    return suppliedId(id);
  }
}
registerImmediate(HierarchicalKeyring.prototype);

function suppliedId(id: unknown): string {
  if (typeof id !== 'string' || id.length === 0) throw new KeyringError('branchKeyIdSupplier must return a non-empty string');
  // As the branchKeyId option (stringOption): written into messages as UTF-8 (an unpaired
  // surrogate would come back as U+FFFD and never match), in a field of at most 65,535 bytes.
  if (!isWellFormedUtf16(id)) throw new KeyringError('branchKeyIdSupplier returned a string with an unpaired surrogate');
  if (Buffer.byteLength(id, 'utf8') > PROVIDER_ID_MAX) {
    throw new KeyringError(`branchKeyIdSupplier returned an id over ${PROVIDER_ID_MAX} UTF-8 bytes`);
  }
  return id;
}

/** One onDecrypt call's matching EDKs and the failures seen so far. */
interface DecryptAttempt {
  readonly ours: readonly EncryptedDataKey[];
  readonly branchKeyId: string;
  readonly suite: Suite;
  readonly context: Readonly<EncryptionContext>;
  readonly errors: Error[];
}

type CiphertextParts = NonNullable<ReturnType<typeof parseCiphertext>>;

/**
 * The context a keyring call works with. One the Envelope built or parsed (frozen, string values,
 * its serialization memoized: format/context.ts) is used as is, so the wrap AAD and the header
 * share one serialization; any other (a caller invoking the keyring directly) is copied first, so
 * what is bound cannot change between reads.
 */
function ownContext(context: Readonly<EncryptionContext>): Readonly<EncryptionContext> {
  return isLibraryContext(context) ? context : plainContext(context);
}
