/**
 * The hierarchical keyring's branch key cache (framework/aws-kms/aws-kms-hierarchical-keyring.md,
 * "Initialization", "Cache Limit TTL", Appendix A): plaintext branch keys, bounded in number and
 * age, loaded once per miss (concurrent misses for one entry share one load), zeroed when they
 * leave.
 *
 * Why these limits: a cached branch key means KMS is not asked, so a key policy change, a revoked
 * grant or a disabled KMS key takes effect for this process at most `maxAgeMs` later; the count
 * bounds how many plaintext branch keys sit in memory.
 *
 * Zeroing: a key is zeroed when its entry is evicted (capacity), expires, or on clear(). As in the
 * data-key cache (src/cache/cache.ts), the zeroing runs in a setImmediate callback, after the
 * current microtask queue has drained: a caller that was just handed the materials (including every
 * waiter of a shared load, resumed in microtasks) uses them synchronously before that.
 */
import { createHash, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { RandomPool } from '../../crypto/random.js';
import { clearAroundSnapshots } from '../../cache/snapshot.js';
import type { BranchKeyMaterials } from './items.js';

export interface BranchKeyCacheOptions {
  /**
   * How long a branch key may be used after KMS decrypted it, in milliseconds ("cache limit TTL").
   * Required. Integer 1..86_400_000 (24 h). Longer = fewer KMS calls, slower effect of revocations.
   */
  maxAgeMs: number;
  /** Max branch keys held (active and version entries together). Integer 1..100_000, default 1000 (the specification's default). */
  maxEntries?: number;
  /** Clock in milliseconds, injectable for tests. Default `performance.now()` (monotonic). */
  clock?: () => number;
}

export interface ResolvedBranchKeyCacheOptions {
  readonly maxAgeMs: number;
  readonly maxEntries: number;
  readonly clock: () => number;
}

const LIMITS = {
  maxAgeMs: { min: 1, max: 86_400_000, unit: 'milliseconds', maxText: '86400000 (24 hours)' },
  maxEntries: { min: 1, max: 100_000, unit: 'entries', maxText: '100000' },
} as const;

/** Validates the cache options once (TypeError for a wrong type or unknown key, RangeError out of range). */
export function resolveBranchKeyCacheOptions(value: unknown, option = 'cache'): ResolvedBranchKeyCacheOptions {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`${option} must be an object with maxAgeMs (required), maxEntries, clock`);
  }
  const o = value as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== 'maxAgeMs' && k !== 'maxEntries' && k !== 'clock') {
      throw new TypeError(`${option}.${k} is not a branch key cache option (allowed: maxAgeMs, maxEntries, clock)`);
    }
  }
  const num = (name: 'maxAgeMs' | 'maxEntries', dflt: number | undefined): number => {
    const v = o[name];
    const l = LIMITS[name];
    const range = `an integer number of ${l.unit} from ${l.min} to ${l.maxText}`;
    if (v === undefined) {
      if (dflt === undefined) throw new TypeError(`${option}.${name} is required: ${range}`);
      return dflt;
    }
    if (typeof v !== 'number') throw new TypeError(`${option}.${name} must be ${range}; got ${typeof v}`);
    if (!Number.isInteger(v) || v < l.min || v > l.max) throw new RangeError(`${option}.${name} must be ${range}; got ${v}`);
    return v;
  };
  const maxAgeMs = num('maxAgeMs', undefined);
  const maxEntries = num('maxEntries', 1000);
  let clock: () => number = () => performance.now();
  if (o.clock !== undefined) {
    if (typeof o.clock !== 'function') throw new TypeError(`${option}.clock must be a function returning milliseconds`);
    clock = o.clock as () => number;
    const sample: unknown = clock();
    if (typeof sample !== 'number' || !Number.isFinite(sample)) throw new TypeError(`${option}.clock must return a finite number`);
  }
  return Object.freeze({ maxAgeMs, maxEntries, clock });
}

const NUL = Buffer.from([0]);
const RESOURCE_HIERARCHY = Buffer.from([0x02]);
const SCOPE_ENCRYPT = Buffer.from([0x01]);
const SCOPE_DECRYPT = Buffer.from([0x02]);

/**
 * Appendix A, "Cache Entry Identifier Formulas": SHA-384 of resource id 0x02, scope (0x01
 * encrypt, 0x02 decrypt), partition id, logical key store name, branch key id (and, to decrypt,
 * the version as its 36-character UTF-8 string), separated by single 0x00 bytes.
 */
export function cacheEntryId(partition: Uint8Array, logicalKeyStoreName: string, branchKeyId: string, version?: string): string {
  const parts: Buffer[] = [
    RESOURCE_HIERARCHY,
    NUL,
    version === undefined ? SCOPE_ENCRYPT : SCOPE_DECRYPT,
    NUL,
    Buffer.from(partition),
    NUL,
    Buffer.from(logicalKeyStoreName, 'utf8'),
    NUL,
    Buffer.from(branchKeyId, 'utf8'),
  ];
  if (version !== undefined) parts.push(NUL, Buffer.from(version, 'utf8'));
  return createHash('sha384').update(Buffer.concat(parts)).digest('hex');
}

/** The default partition id: the 16 bytes of a random v4 UUID (spec "Partition ID"). */
export function randomPartitionId(): Buffer {
  const b = randomBytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return b;
}

/** Size of an entry's data-key pool: 8 keys of 32 bytes (16 of 16 bytes) per CSPRNG call. */
const DATA_KEY_POOL_BYTES = 256;

/** A cached branch key. */
export interface CachedBranchKey {
  readonly materials: BranchKeyMaterials;
  /**
   * Data keys for messages wrapped under this branch key (encrypt entries only draw from it). It
   * lives and is zeroed with the branch key: keys waiting in it exist only while the key that will
   * wrap them, and so could unwrap them, is in memory (crypto/random.ts).
   */
  readonly dataKeys: RandomPool;
}

interface Entry extends CachedBranchKey {
  readonly createdAt: number;
}

/** Zeroes an entry's branch key (after the current turn's users, see above) and its data-key pool (at once). */
function zeroLater(entry: Entry): void {
  entry.dataKeys.close();
  const key = entry.materials.branchKey;
  setImmediate(() => key.fill(0));
}

export interface BranchKeyCacheStats {
  /** Lookups answered from the cache. */
  hits: number;
  /** Lookups that loaded from the branch key store (one per shared load). */
  misses: number;
  /** Entries removed for capacity or age, or by clear(). */
  evictions: number;
  /** Entries held now. */
  entries: number;
}

export class BranchKeyCache {
  readonly #opts: ResolvedBranchKeyCacheOptions;
  readonly #lru: LRUCache<string, Entry>;
  readonly #loading = new Map<string, Promise<Entry>>();
  /** Counts clear() calls: a load started before a clear neither enters the cache nor serves later callers. */
  #generation = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Set while a startup snapshot is being saved (cache/snapshot.ts): loads serve their waiters but are not cached. */
  #paused = false;
  #hits = 0;
  #misses = 0;
  #evictions = 0;

  constructor(opts: ResolvedBranchKeyCacheOptions) {
    this.#opts = opts;
    this.#lru = new LRUCache<string, Entry>({
      max: opts.maxEntries,
      dispose: (entry) => {
        this.#evictions++;
        zeroLater(entry);
      },
    });
    clearAroundSnapshots(this);
  }

  /**
   * The materials under `id`, loading them with `load` on a miss or when the entry is older than
   * maxAgeMs ("cacheEntryWithinLimits": now - creation <= TTL). Use the result synchronously (see
   * the zeroing note above). A failed load is not cached; every waiter of it gets its error.
   */
  /**
   * The cached materials for `id` when present and within maxAgeMs (counted as a hit), else
   * undefined. Synchronous, so a hit costs the keyring no await (issue 14: per-message overhead).
   */
  lookup(id: string): CachedBranchKey | undefined {
    const hit = this.#lru.get(id);
    if (hit !== undefined) {
      if (this.#opts.clock() - hit.createdAt <= this.#opts.maxAgeMs) {
        this.#hits++;
        return hit;
      }
      this.#lru.delete(id);
    }
    return undefined;
  }

  async get(id: string, load: () => Promise<BranchKeyMaterials>): Promise<CachedBranchKey> {
    const cached = this.lookup(id);
    if (cached !== undefined) return cached;
    let pending = this.#loading.get(id);
    if (pending === undefined) {
      this.#misses++;
      pending = this.#load(id, load);
      this.#loading.set(id, pending);
      const done = (): void => {
        if (this.#loading.get(id) === pending) this.#loading.delete(id);
      };
      pending.then(done, done);
    } else {
      this.#hits++;
    }
    return pending;
  }

  async #load(id: string, load: () => Promise<BranchKeyMaterials>): Promise<Entry> {
    const generation = this.#generation;
    const materials = await load();
    // The age counts from when the key arrived, not from when it was asked for.
    const entry: Entry = { materials, dataKeys: new RandomPool(DATA_KEY_POOL_BYTES), createdAt: this.#opts.clock() };
    if (generation !== this.#generation || this.#paused) {
      // clear() ran while this load was in flight (or the cache is paused): its waiters (who asked
      // before) get the key, nobody after them; it is zeroed once they have used it (synchronously,
      // see above).
      setImmediate(() => zeroLater(entry));
      return entry;
    }
    this.#sweep();
    this.#lru.set(id, entry);
    this.#arm();
    return entry;
  }

  /** Removes (and zeroes) every entry past its age. */
  #sweep(): void {
    const now = this.#opts.clock();
    for (const [k, e] of this.#lru.entries()) {
      if (now - e.createdAt > this.#opts.maxAgeMs) this.#lru.delete(k);
    }
  }

  /** One unref'd timer at the oldest entry's deadline, so expired keys leave memory unasked. */
  #arm(): void {
    if (this.#timer !== undefined || this.#lru.size === 0) return;
    let oldest = Infinity;
    for (const e of this.#lru.values()) oldest = Math.min(oldest, e.createdAt);
    const delay = Math.max(0, Math.min(oldest + this.#opts.maxAgeMs - this.#opts.clock() + 1, 2 ** 31 - 1));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#sweep();
      this.#arm();
    }, delay);
    this.#timer.unref();
  }

  /**
   * Removes and zeroes every entry, and detaches loads in flight: the next message asks the key
   * store (and KMS) again, even one that arrives while an older load is still running.
   */
  clear(): void {
    this.#generation++;
    this.#loading.clear();
    this.#lru.clear();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** While paused, nothing enters the cache (cache/snapshot.ts); the cache stays empty until resumed. */
  pause(paused: boolean): void {
    this.#paused = paused;
  }

  stats(): BranchKeyCacheStats {
    return { hits: this.#hits, misses: this.#misses, evictions: this.#evictions, entries: this.#lru.size };
  }
}
