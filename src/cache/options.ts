/**
 * Options of the data-key cache, validated once when the Envelope is constructed.
 *
 * Every limit has a finite default and a finite maximum: the cache can never be unbounded in
 * entries, age or use per key (DESIGN.md "Every option is validated once, at construction; the cache
 * can never be unbounded"). Why each limit exists is explained at the top of cache.ts.
 */

export interface CacheOptions {
  /**
   * Max cached entries **per side**: at most `maxEntries` encryption materials and, separately, at
   * most `maxEntries` unwrapped data keys for decryption (so at most 2 × maxEntries data keys in
   * memory). Separate sides keep a decrypt-heavy workload from evicting the encrypt materials.
   * Integer 1..100_000, default 100.
   */
  maxEntries?: number;
  /** Max age of an entry in milliseconds, from when its data key arrived. Integer 1..86_400_000 (24 h), default 300_000 (5 min). */
  maxAgeMs?: number;
  /** Max messages encrypted under one cached data key. Integer 1..2^32 (ESDK caching CMM limit), default 10_000. */
  maxMessagesPerKey?: number;
  /** Max plaintext bytes encrypted under one cached data key. Integer 1..2^53-1, default 2^40 (1 TiB). */
  maxBytesPerKey?: number;
  /**
   * Clock in milliseconds, injectable for tests. Default `performance.now()`: monotonic, so a wall
   * clock change cannot extend the life of a cached key.
   */
  clock?: () => number;
}

export interface ResolvedCacheOptions {
  maxEntries: number;
  maxAgeMs: number;
  maxMessagesPerKey: number;
  maxBytesPerKey: number;
  clock: () => number;
}

interface IntegerLimit {
  readonly name: 'maxEntries' | 'maxAgeMs' | 'maxMessagesPerKey' | 'maxBytesPerKey';
  readonly unit: string;
  readonly min: number;
  readonly max: number;
  readonly maxText: string;
  readonly default: number;
}

/** The limits, their units and ranges. Exported so documentation and tests read the same numbers. */
export const CACHE_LIMITS: readonly IntegerLimit[] = Object.freeze([
  { name: 'maxEntries', unit: 'entries', min: 1, max: 100_000, maxText: '100000', default: 100 },
  { name: 'maxAgeMs', unit: 'milliseconds', min: 1, max: 86_400_000, maxText: '86400000 (24 hours)', default: 300_000 },
  {
    name: 'maxMessagesPerKey',
    unit: 'messages',
    min: 1,
    // ESDK spec framework/caching-cmm.md "Limit Messages": the default and ceiling is 2^32.
    max: 2 ** 32,
    maxText: '4294967296 (2^32)',
    default: 10_000,
  },
  {
    name: 'maxBytesPerKey',
    unit: 'bytes',
    min: 1,
    // The spec allows up to 2^63-1 ("Limit Bytes"); byte counts here are JS numbers, exact up to 2^53-1.
    max: Number.MAX_SAFE_INTEGER,
    maxText: '9007199254740991 (2^53-1)',
    default: 2 ** 40,
  },
] as const);

const KNOWN_KEYS: ReadonlySet<string> = new Set(['maxEntries', 'maxAgeMs', 'maxMessagesPerKey', 'maxBytesPerKey', 'clock']);

const defaultClock = (): number => performance.now();

function describe(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (value === null) return 'null';
  return typeof value;
}

/**
 * Validates cache options. `false` disables the cache; `undefined` means all defaults.
 * Throws TypeError (wrong type, unknown key) or RangeError (out of range, not an integer, NaN,
 * Infinity), naming the option as `${option}.<name>`, its unit and its allowed range.
 */
export function resolveCacheOptions(opts: CacheOptions | false | undefined, option = 'cache'): ResolvedCacheOptions | false {
  if (opts === false) return false;
  if (opts === undefined) opts = {};
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) {
    throw new TypeError(`${option} must be an object of cache limits, false (no cache) or undefined (defaults); got ${describe(opts)}`);
  }
  for (const key of Object.keys(opts)) {
    if (!KNOWN_KEYS.has(key)) {
      throw new TypeError(
        `${option}.${key} is not a cache option (allowed: maxEntries, maxAgeMs, maxMessagesPerKey, maxBytesPerKey, clock)`,
      );
    }
  }
  const source = opts as Record<string, unknown>;
  const resolved: Record<string, number> = {};
  for (const limit of CACHE_LIMITS) {
    const value = source[limit.name];
    if (value === undefined) {
      resolved[limit.name] = limit.default;
      continue;
    }
    const range = `an integer number of ${limit.unit} from ${limit.min} to ${limit.maxText}`;
    if (typeof value !== 'number') {
      throw new TypeError(`${option}.${limit.name} must be ${range}; got ${describe(value)}`);
    }
    if (!Number.isInteger(value) || value < limit.min || value > limit.max) {
      throw new RangeError(`${option}.${limit.name} must be ${range}; got ${describe(value)}`);
    }
    resolved[limit.name] = value;
  }
  let clock = defaultClock;
  if (source.clock !== undefined) {
    if (typeof source.clock !== 'function') {
      throw new TypeError(`${option}.clock must be a function returning the time in milliseconds; got ${describe(source.clock)}`);
    }
    clock = source.clock as () => number;
    const sample: unknown = clock();
    if (typeof sample !== 'number' || !Number.isFinite(sample)) {
      throw new TypeError(`${option}.clock must return a finite number of milliseconds; got ${describe(sample)}`);
    }
  }
  return Object.freeze({
    maxEntries: resolved.maxEntries!,
    maxAgeMs: resolved.maxAgeMs!,
    maxMessagesPerKey: resolved.maxMessagesPerKey!,
    maxBytesPerKey: resolved.maxBytesPerKey!,
    clock,
  });
}
