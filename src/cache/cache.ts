/**
 * Bounded data-key cache: encryption materials reused across messages, unwrapped data keys reused
 * across decryptions, with single-flight loads and zeroing of keys that leave the cache.
 *
 * ## Cache limits and why
 *
 * The model is the ESDK caching CMM (aws-encryption-sdk-specification framework/caching-cmm.md):
 * a cached data key may be used until it is `maxAgeMs` old ("Cache Limit TTL"), or has encrypted
 * `maxMessagesPerKey` messages ("Limit Messages", at most 2^32) or `maxBytesPerKey` plaintext
 * bytes ("Limit Bytes"), whichever comes first; `maxEntries` bounds memory. Every limit is finite,
 * with a finite maximum (options.ts).
 *
 * - Reusing one data key across messages does not reuse GCM keys or nonces. Each message derives its
 *   own AES key with HKDF from the data key and the message's random 32-byte message id (suites
 *   0x0478/0x0578, framework/algorithm-suites.md), and frame IVs are sequence numbers, unique under
 *   that derived key. The NIST SP 800-38D bound of 2^32 GCM invocations per key with random 96-bit
 *   IVs therefore does not directly apply to the data key: two messages only share a GCM key if
 *   their 256-bit message ids collide (about n^2 / 2^257 for n messages). The 2^32 ceiling on
 *   `maxMessagesPerKey` is kept because the ESDK spec sets it ("Limit Messages").
 * - The limits are there to bound damage, not nonce reuse: a data key that leaks (memory dump,
 *   core file, a bug) decrypts only the messages it encrypted, i.e. at most `maxMessagesPerKey`
 *   messages / `maxBytesPerKey` bytes written within `maxAgeMs`.
 * - `maxAgeMs` keeps KMS authorization meaningful. A cached key means KMS is not asked: a key
 *   policy change, a grant revocation, a disabled or scheduled-for-deletion KMS key take effect for
 *   this process at most `maxAgeMs` later, on both the encrypt and the decrypt side. The age is
 *   counted from when the keyring call returned.
 * - `maxEntries` bounds memory and the number of plaintext keys resident at once. Encrypt and decrypt
 *   entries are counted separately (each side holds at most `maxEntries`), so a process that decrypts
 *   many distinct messages cannot push out its few encryption materials.
 * - A message larger than `maxBytesPerKey` gets fresh materials that are not cached (and the cached
 *   entry is left untouched); its caller zeroes that key itself (`cached: false`).
 *
 * ## Zeroing
 *
 * Data keys are zeroed (`fill(0)`) when they leave the cache: capacity eviction, expiry, usage
 * exhaustion, replacement and `clear()`. A caller may still be holding a key it has just been handed
 * (the Envelope uses it synchronously right after `takeEncrypt`/`getDecrypt`, or in the continuation
 * of `loadEncrypt`/`loadDecrypt`), so zeroing is deferred to `setImmediate`, which runs only after the
 * current microtask queue has drained. The contract for callers: use what the cache returns before
 * the next I/O or timer turn; a long-lived user (a stream) copies the key and zeroes its copy.
 * The cache owns the buffers its loads return: they must not be shared with anything else.
 *
 * ## Expiry trade-off
 *
 * An entry at least `maxAgeMs` old is never returned: age is checked on every access with the
 * (injectable) clock. Expired entries are also removed and zeroed without being accessed, by a
 * single timer armed for the oldest entry's deadline (plus up to 1 s of slack, so neighbouring
 * deadlines share one wake-up); the timer is `unref()`ed, so it never keeps the process alive, and
 * it costs O(1) amortized per entry (entries sit in insertion order, which is
 * deadline order because the age limit is the same for all). If the event loop is blocked, or the
 * process is exiting, an expired key can stay in memory (never used) a little longer: the trade-off
 * for not scanning the cache on the hot path. The same sweep runs before each insertion, so expired
 * entries go before a live entry is evicted for capacity.
 *
 * ## Hot path
 *
 * `takeEncrypt` and `getDecrypt` create no objects, closures or Dates: one LRU lookup (with a shared
 * options object, so lru-cache does not build a default `{}`), one clock read, counter updates. The
 * clock read itself returns a boxed double in V8 (16 bytes of young garbage per call, also for
 * `Date.now()`); that is the price of checking the age on every access.
 */

import { LRUCache } from 'lru-cache';
import type { ResolvedCacheOptions } from './options.js';
import { clearAroundSnapshots } from './snapshot.js';

/** What the cache stores on the encrypt side; the Envelope's materials object carries more fields. */
export interface CachedEncryption {
  dataKey: Buffer;
}

/** Removals by reason (the shape the Envelope reports). */
export interface CacheEvictions {
  /** Least recently used entries pushed out by `maxEntries`. */
  capacity: number;
  /** Entries that reached `maxAgeMs`. */
  expired: number;
  /** Encrypt entries that reached `maxMessagesPerKey` or `maxBytesPerKey`. */
  usage: number;
  /** Entries removed by `clear()` (and loads that completed after a `clear()`). */
  cleared: number;
}

/** Cache counters (the shape the Envelope reports; `DataKeyCache.stats()` returns a superset). */
export interface CacheStats {
  /** encryptHits + decryptHits */
  hits: number;
  /** encryptMisses + decryptMisses */
  misses: number;
  encryptHits: number;
  /** Messages that needed a keyring call or waited for one: cold, exhausted, expired, oversize. */
  encryptMisses: number;
  decryptHits: number;
  decryptMisses: number;
  /** Keyring calls made (= KMS GenerateDataKey/Decrypt calls with a KMS keyring), failed ones included. */
  loads: number;
  evictions: CacheEvictions;
  /** Entries held now, both sides. */
  entries: number;
}

/** Everything `DataKeyCache.stats()` reports: the CacheStats plus a per-side breakdown. */
export interface DataKeyCacheStats extends CacheStats {
  encryptLoads: number;
  decryptLoads: number;
  /** Keyring calls that threw or rejected. */
  loadFailures: number;
  /** Messages larger than `maxBytesPerKey`, encrypted with fresh, uncached materials. */
  uncached: number;
  evictions: CacheEvictions & {
    /**
     * Entries replaced by a newer entry under the same key: of the parallel loads a burst needs
     * (see loadEncrypt), the partition keeps the key that arrived last; the earlier one is zeroed.
     */
    replaced: number;
  };
  encryptEntries: number;
  decryptEntries: number;
}

type RemovalReason = 'expired' | 'usage' | 'cleared';

class EncryptEntry<E extends CachedEncryption> {
  messages = 0;
  bytes = 0;
  removed = false;
  zeroed = false;
  constructor(
    readonly key: string,
    readonly materials: E,
    readonly expiresAt: number,
  ) {}
  get dataKey(): Buffer {
    return this.materials.dataKey;
  }
}

class DecryptEntry {
  removed = false;
  zeroed = false;
  constructor(
    readonly key: string,
    readonly dataKey: Buffer,
    readonly expiresAt: number,
  ) {}
}

type AnyEntry = EncryptEntry<CachedEncryption> | DecryptEntry;

/**
 * An encrypt-side load in flight, with the usage its waiters have reserved: the messages and bytes
 * they will take from the entry it brings. A caller joins a flight only if its message still fits
 * that budget, so every waiter is served by its flight and a burst the limits split across several
 * keys loads those keys in parallel.
 */
interface EncryptFlight<E extends CachedEncryption> {
  readonly promise: Promise<EncryptEntry<E>>;
  messages: number;
  bytes: number;
}

/** Shared, frozen option objects so lru-cache's `get`/`set` do not allocate a default `{}` per call. */
const GET_OPTS = Object.freeze({});
const SET_OPTS = Object.freeze({});

export class DataKeyCache<E extends CachedEncryption> {
  readonly options: ResolvedCacheOptions;

  private readonly clock: () => number;
  private readonly maxAgeMs: number;
  private readonly maxMessages: number;
  private readonly maxBytes: number;

  private readonly enc: LRUCache<string, EncryptEntry<E>>;
  private readonly dec: LRUCache<string, DecryptEntry>;
  /** The newest encrypt load in flight per partition (older ones still serve their own waiters). */
  private readonly encFlights = new Map<string, EncryptFlight<E>>();
  private readonly decFlights = new Map<string, Promise<DecryptEntry>>();

  /** Set around our own `delete()` calls so the dispose hook knows why an entry left. */
  private removalReason: RemovalReason | undefined;
  /** Bumped by clear(): loads started before it do not populate the cache. */
  private generation = 0;
  /** Set while a startup snapshot is being saved (snapshot.ts): loads serve their callers but are not cached. */
  private paused = false;

  /** Entries in insertion (= deadline) order, for the expiry sweep; removed ones are skipped lazily. */
  private queue: AnyEntry[] = [];
  private queueHead = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.purgeExpired();
  };

  /** Keys waiting for the deferred zeroing. */
  private zeroQueue: AnyEntry[] = [];
  private zeroScheduled = false;
  private readonly flushZero = (): void => {
    const pending = this.zeroQueue;
    this.zeroQueue = [];
    this.zeroScheduled = false;
    for (const entry of pending) {
      entry.dataKey.fill(0);
      entry.zeroed = true;
    }
  };

  private encryptHits = 0;
  private encryptMisses = 0;
  private decryptHits = 0;
  private decryptMisses = 0;
  private encryptLoads = 0;
  private decryptLoads = 0;
  private loadFailures = 0;
  private uncached = 0;
  private readonly evictions: DataKeyCacheStats['evictions'] = { capacity: 0, expired: 0, usage: 0, cleared: 0, replaced: 0 };

  constructor(opts: ResolvedCacheOptions) {
    this.options = opts;
    this.clock = opts.clock;
    this.maxAgeMs = opts.maxAgeMs;
    this.maxMessages = opts.maxMessagesPerKey;
    this.maxBytes = opts.maxBytesPerKey;
    // Our own expiry (createdAt + maxAgeMs, injected clock) instead of lru-cache's `ttl`, which reads
    // its own clock through a debounce timer; lru-cache only orders entries and reports removals.
    const dispose = (entry: AnyEntry, _key: string, reason: LRUCache.DisposeReason): void => {
      this.onRemoved(entry, reason);
    };
    this.enc = new LRUCache<string, EncryptEntry<E>>({ max: opts.maxEntries, dispose });
    this.dec = new LRUCache<string, DecryptEntry>({ max: opts.maxEntries, dispose });
    clearAroundSnapshots(this);
  }

  // ---------------------------------------------------------------------------------------------
  // Encrypt side

  /**
   * Hot path. Returns the cached materials for `partition` when present, younger than `maxAgeMs`,
   * and with room for one more message of `bytes` plaintext bytes; that use is counted. Otherwise
   * `undefined` (the miss is counted by `loadEncrypt`). An entry without room (or expired) is
   * removed. A message larger than `maxBytesPerKey` returns `undefined` and leaves the entry alone.
   * `bytes` may be `Infinity` for "unknown length": such a message is never served from the cache.
   */
  takeEncrypt(partition: string, bytes: number): E | undefined {
    if (!(bytes >= 0)) throw badBytes(bytes);
    if (bytes > this.maxBytes) return undefined;
    const entry = this.enc.get(partition, GET_OPTS);
    if (entry === undefined || !this.use(entry, bytes)) return undefined;
    this.encryptHits++;
    return entry.materials;
  }

  /**
   * Miss path with single-flight: concurrent calls for the same partition share one `load()` as
   * long as their messages fit one key's limits (`maxMessagesPerKey`, `maxBytesPerKey`); a caller
   * that would overdraw the load in flight starts another one at once, so a burst that needs n keys
   * makes n loads in parallel rather than one after another. Each caller then takes its usage from
   * the entry its load brought; one that finds no room left after all (the entry expired, or a
   * synchronous hit took the room) loads again. A message larger than `maxBytesPerKey` gets its own
   * fresh materials, not cached and not shared (`cached: false`: the caller zeroes that key after
   * use). A failed load rejects every caller waiting on it and caches nothing.
   */
  async loadEncrypt(partition: string, bytes: number, load: () => Promise<E>): Promise<{ materials: E; cached: boolean }> {
    if (!(bytes >= 0)) throw badBytes(bytes);
    if (bytes > this.maxBytes) {
      this.encryptMisses++;
      this.uncached++;
      this.encryptLoads++;
      try {
        const materials = await load();
        checkMaterials(materials);
        return { materials, cached: false };
      } catch (err) {
        this.loadFailures++;
        throw err;
      }
    }
    const hit = this.takeEncrypt(partition, bytes);
    if (hit !== undefined) return { materials: hit, cached: true };
    this.encryptMisses++;
    for (;;) {
      const entry = await this.joinEncryptLoad(partition, bytes, load);
      // Still synchronous with the flight's completion: a removed entry (capacity eviction in the same
      // tick) is not zeroed yet and its usage counters still hold, so it may serve this message.
      if (!entry.zeroed && this.use(entry, bytes)) return { materials: entry.materials, cached: true };
      // No room left for this caller: another waiter used it up. Take a newer entry or load again.
      const current = this.enc.get(partition, GET_OPTS);
      if (current !== undefined && this.use(current, bytes)) return { materials: current.materials, cached: true };
    }
  }

  /**
   * The load this message waits for: the newest one in flight for the partition if the message
   * still fits what its waiters have left of one key's limits, else a new one. Only the newest
   * flight is considered (O(1) per caller); an older flight's small leftover goes unused.
   */
  private joinEncryptLoad(partition: string, bytes: number, load: () => Promise<E>): Promise<EncryptEntry<E>> {
    const current = this.encFlights.get(partition);
    if (current !== undefined && current.messages < this.maxMessages && current.bytes + bytes <= this.maxBytes) {
      current.messages++;
      current.bytes += bytes;
      return current.promise;
    }
    return this.startEncryptLoad(partition, bytes, load);
  }

  private startEncryptLoad(partition: string, bytes: number, load: () => Promise<E>): Promise<EncryptEntry<E>> {
    const generation = this.generation;
    this.encryptLoads++;
    const promise = (async () => {
      const materials = await load();
      checkMaterials(materials);
      return this.insertEncrypt(partition, materials, generation);
    })();
    const flight: EncryptFlight<E> = { promise, messages: 1, bytes };
    this.encFlights.set(partition, flight);
    // Registered before any waiter's `await`, so the flight is forgotten before waiters resume.
    const settle = (): void => {
      if (this.encFlights.get(partition) === flight) this.encFlights.delete(partition);
    };
    promise.then(settle, () => {
      this.loadFailures++;
      settle();
    });
    return promise;
  }

  private insertEncrypt(partition: string, materials: E, generation: number): EncryptEntry<E> {
    const entry = new EncryptEntry(partition, materials, this.clock() + this.maxAgeMs);
    if (generation !== this.generation || this.paused) {
      // Loaded across a clear() or while paused: serve the callers already waiting, then zero; do not cache.
      this.retire(entry, 'cleared');
      return entry;
    }
    this.sweep();
    this.enc.set(partition, entry, SET_OPTS);
    this.track(entry);
    return entry;
  }

  /** Checks age and room, counts one message of `bytes`, removes the entry once it is used up. */
  private use(entry: EncryptEntry<E>, bytes: number): boolean {
    if (this.clock() >= entry.expiresAt) {
      this.remove(entry, 'expired');
      return false;
    }
    const messages = entry.messages + 1;
    const total = entry.bytes + bytes;
    if (messages > this.maxMessages || total > this.maxBytes) {
      this.remove(entry, 'usage');
      return false;
    }
    entry.messages = messages;
    entry.bytes = total;
    if (messages === this.maxMessages || total === this.maxBytes) this.remove(entry, 'usage');
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Decrypt side

  /** Hot path. The unwrapped data key cached under `key` if younger than `maxAgeMs`, else `undefined`. */
  getDecrypt(key: string): Buffer | undefined {
    const entry = this.dec.get(key, GET_OPTS);
    if (entry === undefined) return undefined;
    if (this.clock() >= entry.expiresAt) {
      this.remove(entry, 'expired');
      return undefined;
    }
    this.decryptHits++;
    return entry.dataKey;
  }

  /** Miss path with single-flight: concurrent calls for the same key share one `load()`. */
  async loadDecrypt(key: string, load: () => Promise<Buffer>): Promise<Buffer> {
    const hit = this.getDecrypt(key);
    if (hit !== undefined) return hit;
    this.decryptMisses++;
    for (;;) {
      const flight = this.decFlights.get(key) ?? this.startDecryptLoad(key, load);
      const entry = await flight;
      if (!entry.zeroed) return entry.dataKey;
    }
  }

  private startDecryptLoad(key: string, load: () => Promise<Buffer>): Promise<DecryptEntry> {
    const generation = this.generation;
    this.decryptLoads++;
    const flight = (async () => {
      const dataKey = await load();
      if (!(dataKey instanceof Uint8Array)) throw new TypeError('data key load must resolve to a Buffer');
      return this.insertDecrypt(key, dataKey as Buffer, generation);
    })();
    this.decFlights.set(key, flight);
    const settle = (): void => {
      if (this.decFlights.get(key) === flight) this.decFlights.delete(key);
    };
    flight.then(settle, () => {
      this.loadFailures++;
      settle();
    });
    return flight;
  }

  private insertDecrypt(key: string, dataKey: Buffer, generation: number): DecryptEntry {
    const entry = new DecryptEntry(key, dataKey, this.clock() + this.maxAgeMs);
    if (generation !== this.generation || this.paused) {
      this.retire(entry, 'cleared');
      return entry;
    }
    this.sweep();
    this.dec.set(key, entry, SET_OPTS);
    this.track(entry);
    return entry;
  }

  // ---------------------------------------------------------------------------------------------
  // Removal, zeroing, expiry

  /** While paused, nothing enters the cache (snapshot.ts); the cache stays empty until resumed. */
  pause(paused: boolean): void {
    this.paused = paused;
  }

  /**
   * Removes every entry (zeroed after the current tick) and detaches the loads in flight: they still
   * serve the callers already waiting on them, but are not cached, and a caller arriving after
   * clear() starts a load of its own instead of joining one started before.
   */
  clear(): void {
    this.generation++;
    this.encFlights.clear();
    this.decFlights.clear();
    this.removalReason = 'cleared';
    try {
      this.enc.clear();
      this.dec.clear();
    } finally {
      this.removalReason = undefined;
    }
    this.queue = [];
    this.queueHead = 0;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /** Removes (and schedules zeroing of) every expired entry; returns how many. Also run by a timer. */
  purgeExpired(): number {
    const removed = this.sweep();
    this.arm();
    return removed;
  }

  stats(): DataKeyCacheStats {
    const encryptEntries = this.enc.size;
    const decryptEntries = this.dec.size;
    return {
      hits: this.encryptHits + this.decryptHits,
      misses: this.encryptMisses + this.decryptMisses,
      encryptHits: this.encryptHits,
      encryptMisses: this.encryptMisses,
      decryptHits: this.decryptHits,
      decryptMisses: this.decryptMisses,
      loads: this.encryptLoads + this.decryptLoads,
      encryptLoads: this.encryptLoads,
      decryptLoads: this.decryptLoads,
      loadFailures: this.loadFailures,
      uncached: this.uncached,
      evictions: { ...this.evictions },
      entries: encryptEntries + decryptEntries,
      encryptEntries,
      decryptEntries,
    };
  }

  private remove(entry: AnyEntry, reason: RemovalReason): void {
    if (entry.removed) return;
    const map = entry instanceof DecryptEntry ? this.dec : this.enc;
    if (map.peek(entry.key, GET_OPTS) === entry) {
      this.removalReason = reason;
      try {
        map.delete(entry.key);
      } finally {
        this.removalReason = undefined;
      }
    } else {
      // Not (or no longer) in the LRU, e.g. handed to waiters after a clear(): retire it directly.
      this.retire(entry, reason);
    }
  }

  /** lru-cache dispose hook: every way an entry leaves the LRU ends here. */
  private onRemoved(entry: AnyEntry, reason: LRUCache.DisposeReason): void {
    let why: keyof DataKeyCacheStats['evictions'];
    if (reason === 'evict') why = 'capacity';
    else if (reason === 'set') why = 'replaced';
    else why = this.removalReason ?? 'cleared';
    this.retire(entry, why);
  }

  private retire(entry: AnyEntry, why: keyof DataKeyCacheStats['evictions']): void {
    if (entry.removed) return;
    entry.removed = true;
    this.evictions[why]++;
    this.zeroQueue.push(entry);
    if (!this.zeroScheduled) {
      this.zeroScheduled = true;
      setImmediate(this.flushZero);
    }
  }

  private track(entry: AnyEntry): void {
    this.queue.push(entry);
    // Compact when removed entries dominate, so churn (e.g. maxMessagesPerKey: 1) cannot grow the queue.
    const live = this.queue.length - this.queueHead;
    if (live > 64 && live > 2 * (this.enc.size + this.dec.size)) {
      this.queue = this.queue.slice(this.queueHead).filter((e) => !e.removed);
      this.queueHead = 0;
    }
    if (this.timer === undefined) this.arm();
  }

  /** Removes expired entries from the head of the deadline queue. */
  private sweep(): number {
    const queue = this.queue;
    let head = this.queueHead;
    let removed = 0;
    if (head < queue.length) {
      const now = this.clock();
      while (head < queue.length) {
        const entry = queue[head]!;
        if (!entry.removed) {
          if (now < entry.expiresAt) break;
          this.remove(entry, 'expired');
          removed++;
        }
        head++;
      }
    }
    if (head === queue.length) {
      this.queue = [];
      this.queueHead = 0;
    } else if (head > 1024 && head * 2 > queue.length) {
      this.queue = queue.slice(head);
      this.queueHead = 0;
    } else {
      this.queueHead = head;
    }
    return removed;
  }

  /** Arms the unref'd expiry timer for the oldest live entry, if any. */
  private arm(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const queue = this.queue;
    let head = this.queueHead;
    while (head < queue.length && queue[head]!.removed) head++;
    this.queueHead = head;
    if (head >= queue.length) return;
    // Slack of up to 1 s (1/16 of maxAgeMs) batches neighbouring deadlines into one wake-up; an entry
    // past its deadline is refused on access anyway, the slack only delays its zeroing.
    const wait = Math.min(Math.max(0, Math.ceil(queue[head]!.expiresAt - this.clock())), this.maxAgeMs);
    const delay = wait + Math.max(1, Math.min(1000, Math.floor(this.maxAgeMs / 16)));
    this.timer = setTimeout(this.onTimer, delay);
    this.timer.unref();
  }
}

function badBytes(bytes: unknown): RangeError {
  return new RangeError(`bytes must be a non-negative number of plaintext bytes (Infinity for unknown); got ${String(bytes)}`);
}

function checkMaterials(materials: CachedEncryption): void {
  if (materials === null || typeof materials !== 'object' || !(materials.dataKey instanceof Uint8Array)) {
    throw new TypeError('encryption materials load must resolve to an object with a dataKey Buffer');
  }
}
