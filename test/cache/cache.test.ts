import { describe, expect, it } from 'vitest';
import { DataKeyCache, resolveCacheOptions, type CacheOptions, type CachedEncryption, type ResolvedCacheOptions } from '../../src/cache/index.js';

/** One turn of the event loop: deferred zeroing (setImmediate) has run afterwards. */
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Materials extends CachedEncryption {
  serial: number;
}

/** A fake keyring: counts calls, hands out distinct non-zero keys, can be told to fail. */
function keySource() {
  let calls = 0;
  const source = {
    get calls() {
      return calls;
    },
    // The serial is taken when the call starts: loads of one burst run in parallel.
    materials: async (): Promise<Materials> => {
      const n = ++calls;
      await Promise.resolve();
      return { dataKey: Buffer.alloc(32, (n % 255) + 1), serial: n };
    },
    dataKey: async (): Promise<Buffer> => {
      const n = ++calls;
      await Promise.resolve();
      return Buffer.alloc(32, (n % 255) + 1);
    },
  };
  return source;
}

function makeCache(opts: CacheOptions = {}): { cache: DataKeyCache<Materials>; clock: { now: number } } {
  const clock = { now: 1_000 };
  const resolved = resolveCacheOptions({ clock: () => clock.now, ...opts }) as ResolvedCacheOptions;
  return { cache: new DataKeyCache<Materials>(resolved), clock };
}

/** What the Envelope does per message: synchronous hit, else the single-flight miss path. */
async function encryptOnce(
  cache: DataKeyCache<Materials>,
  partition: string,
  bytes: number,
  load: () => Promise<Materials>,
): Promise<{ materials: Materials; cached: boolean }> {
  const hit = cache.takeEncrypt(partition, bytes);
  if (hit !== undefined) return { materials: hit, cached: true };
  return cache.loadEncrypt(partition, bytes, load);
}

async function decryptOnce(cache: DataKeyCache<Materials>, key: string, load: () => Promise<Buffer>): Promise<Buffer> {
  return cache.getDecrypt(key) ?? cache.loadDecrypt(key, load);
}

const isZero = (b: Buffer): boolean => b.every((x) => x === 0);

describe('resolveCacheOptions', () => {
  it('returns false for false, defaults for undefined and {}', () => {
    expect(resolveCacheOptions(false)).toBe(false);
    for (const input of [undefined, {}]) {
      const r = resolveCacheOptions(input) as ResolvedCacheOptions;
      expect(r.maxEntries).toBe(100);
      expect(r.maxAgeMs).toBe(300_000);
      expect(r.maxMessagesPerKey).toBe(10_000);
      expect(r.maxBytesPerKey).toBe(2 ** 40);
      expect(typeof r.clock()).toBe('number');
    }
  });

  it('accepts the bounds of every range', () => {
    const low = resolveCacheOptions({ maxEntries: 1, maxAgeMs: 1, maxMessagesPerKey: 1, maxBytesPerKey: 1 }) as ResolvedCacheOptions;
    expect([low.maxEntries, low.maxAgeMs, low.maxMessagesPerKey, low.maxBytesPerKey]).toEqual([1, 1, 1, 1]);
    const high = resolveCacheOptions({
      maxEntries: 100_000,
      maxAgeMs: 86_400_000,
      maxMessagesPerKey: 2 ** 32,
      maxBytesPerKey: Number.MAX_SAFE_INTEGER,
    }) as ResolvedCacheOptions;
    expect([high.maxEntries, high.maxAgeMs, high.maxMessagesPerKey, high.maxBytesPerKey]).toEqual([
      100_000,
      86_400_000,
      2 ** 32,
      Number.MAX_SAFE_INTEGER,
    ]);
  });

  const limits = [
    { name: 'maxEntries', unit: 'entries', max: 100_000, maxText: '100000' },
    { name: 'maxAgeMs', unit: 'milliseconds', max: 86_400_000, maxText: '86400000' },
    { name: 'maxMessagesPerKey', unit: 'messages', max: 2 ** 32, maxText: '4294967296' },
    { name: 'maxBytesPerKey', unit: 'bytes', max: Number.MAX_SAFE_INTEGER, maxText: '9007199254740991' },
  ] as const;

  for (const limit of limits) {
    it(`rejects bad ${limit.name} naming option, unit and range`, () => {
      const bad: Array<[unknown, typeof RangeError | typeof TypeError]> = [
        [0, RangeError],
        [-1, RangeError],
        [1.5, RangeError],
        [NaN, RangeError],
        [Infinity, RangeError],
        [-Infinity, RangeError],
        [limit.max + (limit.max >= 2 ** 53 - 1 ? 2 : 1), RangeError],
        ['10', TypeError],
        [null, TypeError],
        [10n, TypeError],
      ];
      for (const [value, kind] of bad) {
        let error: unknown;
        try {
          resolveCacheOptions({ [limit.name]: value } as CacheOptions);
        } catch (err) {
          error = err;
        }
        expect(error, `${limit.name}=${String(value)}`).toBeInstanceOf(kind);
        const message = (error as Error).message;
        expect(message).toContain(`cache.${limit.name}`);
        expect(message).toContain(limit.unit);
        expect(message).toContain(`from 1 to ${limit.maxText}`);
      }
    });
  }

  it('names the option path given by the caller', () => {
    expect(() => resolveCacheOptions({ maxAgeMs: 0 }, 'options.cache')).toThrow(/options\.cache\.maxAgeMs/);
  });

  it('rejects unknown keys, non-objects and a bad clock', () => {
    expect(() => resolveCacheOptions({ ttl: 5 } as unknown as CacheOptions)).toThrow(TypeError);
    expect(() => resolveCacheOptions({ ttl: 5 } as unknown as CacheOptions)).toThrow(/cache\.ttl is not a cache option/);
    for (const value of [null, true, 5, 'x', []]) {
      expect(() => resolveCacheOptions(value as unknown as CacheOptions)).toThrow(TypeError);
    }
    expect(() => resolveCacheOptions({ clock: 5 as unknown as () => number })).toThrow(/cache\.clock must be a function/);
    expect(() => resolveCacheOptions({ clock: () => NaN })).toThrow(/cache\.clock must return a finite number/);
  });
});

describe('DataKeyCache encrypt side', () => {
  it('100 concurrent loadEncrypt on a cold cache make exactly one load', async () => {
    const { cache } = makeCache();
    const keys = keySource();
    const results = await Promise.all(Array.from({ length: 100 }, () => encryptOnce(cache, 'p', 1024, keys.materials)));
    expect(keys.calls).toBe(1);
    expect(new Set(results.map((r) => r.materials)).size).toBe(1);
    expect(results.every((r) => r.cached)).toBe(true);
    const s = cache.stats();
    expect(s.encryptLoads).toBe(1);
    expect(s.encryptMisses).toBe(100);
    expect(s.encryptEntries).toBe(1);
    // The next message is a synchronous hit on the same materials.
    expect(cache.takeEncrypt('p', 1024)).toBe(results[0]!.materials);
  });

  it('maxMessagesPerKey 1000 over 10,000 messages makes 10 loads', async () => {
    const { cache } = makeCache({ maxMessagesPerKey: 1000 });
    const keys = keySource();
    const perKey = new Map<number, number>();
    for (let i = 0; i < 10_000; i++) {
      const { materials } = await encryptOnce(cache, 'p', 1024, keys.materials);
      perKey.set(materials.serial, (perKey.get(materials.serial) ?? 0) + 1);
    }
    expect(keys.calls).toBe(10);
    expect([...perKey.values()]).toEqual(Array(10).fill(1000));
    const s = cache.stats();
    expect(s.encryptHits).toBe(9_990);
    expect(s.encryptMisses).toBe(10);
    expect(s.evictions.usage).toBe(10);
  });

  it('concurrent callers beyond the message limit load again, one load per maxMessagesPerKey', async () => {
    const { cache } = makeCache({ maxMessagesPerKey: 10 });
    const keys = keySource();
    const results = await Promise.all(Array.from({ length: 100 }, () => encryptOnce(cache, 'p', 1, keys.materials)));
    expect(keys.calls).toBe(10);
    const perKey = new Map<number, number>();
    for (const r of results) perKey.set(r.materials.serial, (perKey.get(r.materials.serial) ?? 0) + 1);
    expect([...perKey.values()]).toEqual(Array(10).fill(10));
  });

  it('maxBytesPerKey: a key serves messages while their bytes fit', async () => {
    const { cache } = makeCache({ maxBytesPerKey: 1000 });
    const keys = keySource();
    const serials: number[] = [];
    for (let i = 0; i < 10; i++) serials.push((await encryptOnce(cache, 'p', 300, keys.materials)).materials.serial);
    // 3 x 300 = 900 fit; a 4th would make 1200 > 1000.
    expect(serials).toEqual([1, 1, 1, 2, 2, 2, 3, 3, 3, 4]);
    expect(cache.stats().evictions.usage).toBe(3);
  });

  it('maxBytesPerKey: a key that reaches the limit exactly leaves the cache at once', async () => {
    const { cache } = makeCache({ maxBytesPerKey: 1000 });
    const keys = keySource();
    const first = await encryptOnce(cache, 'p', 500, keys.materials);
    expect(cache.takeEncrypt('p', 500)).toBe(first.materials);
    expect(cache.stats().encryptEntries).toBe(0);
    expect(cache.stats().evictions.usage).toBe(1);
    expect(isZero(first.materials.dataKey)).toBe(false); // still usable in this tick
    await tick();
    expect(isZero(first.materials.dataKey)).toBe(true);
  });

  it('a message bigger than maxBytesPerKey gets fresh uncached materials; the entry is untouched', async () => {
    const { cache } = makeCache({ maxBytesPerKey: 1000 });
    const keys = keySource();
    const cached = await encryptOnce(cache, 'p', 10, keys.materials);
    expect(cache.takeEncrypt('p', 5000)).toBeUndefined();
    const big = await cache.loadEncrypt('p', 5000, keys.materials);
    expect(big.cached).toBe(false);
    expect(big.materials).not.toBe(cached.materials);
    // Two concurrent oversize messages do not share a key.
    const [a, b] = await Promise.all([cache.loadEncrypt('p', 2000, keys.materials), cache.loadEncrypt('p', 2000, keys.materials)]);
    expect(a.materials).not.toBe(b.materials);
    expect(keys.calls).toBe(4);
    // The cached entry still serves small messages and kept its budget: 10 + 990 fills it exactly.
    expect(cache.takeEncrypt('p', 990)).toBe(cached.materials);
    expect(cache.stats().encryptEntries).toBe(0);
    await tick();
    // The cache never zeroes what it did not cache: the caller owns uncached keys.
    expect(isZero(big.materials.dataKey)).toBe(false);
    expect(isZero(cached.materials.dataKey)).toBe(true);
    const s = cache.stats();
    expect(s.uncached).toBe(3);
    expect(s.encryptLoads).toBe(4);
  });

  it('unknown length (Infinity) bypasses the cache; negative or NaN bytes are rejected', async () => {
    const { cache } = makeCache();
    const keys = keySource();
    await encryptOnce(cache, 'p', 1, keys.materials);
    expect(cache.takeEncrypt('p', Infinity)).toBeUndefined();
    expect((await cache.loadEncrypt('p', Infinity, keys.materials)).cached).toBe(false);
    expect(() => cache.takeEncrypt('p', -1)).toThrow(RangeError);
    expect(() => cache.takeEncrypt('p', NaN)).toThrow(RangeError);
    await expect(cache.loadEncrypt('p', NaN, keys.materials)).rejects.toThrow(RangeError);
    expect(cache.stats().encryptEntries).toBe(1);
  });

  it('partitions do not share materials', async () => {
    const { cache } = makeCache();
    const keys = keySource();
    const a = await encryptOnce(cache, 'suite=0478|ctx=a', 1, keys.materials);
    const b = await encryptOnce(cache, 'suite=0478|ctx=b', 1, keys.materials);
    expect(a.materials).not.toBe(b.materials);
    expect(cache.takeEncrypt('suite=0478|ctx=a', 1)).toBe(a.materials);
    expect(cache.takeEncrypt('suite=0478|ctx=b', 1)).toBe(b.materials);
    expect(cache.takeEncrypt('suite=0578|ctx=a', 1)).toBeUndefined();
  });

  it('expiry follows the injected clock; expired keys are zeroed', async () => {
    const { cache, clock } = makeCache({ maxAgeMs: 1000 });
    const keys = keySource();
    const first = await encryptOnce(cache, 'p', 1, keys.materials);
    clock.now += 999;
    expect(cache.takeEncrypt('p', 1)).toBe(first.materials);
    clock.now += 1;
    expect(cache.takeEncrypt('p', 1)).toBeUndefined();
    expect(cache.stats().evictions.expired).toBe(1);
    expect(isZero(first.materials.dataKey)).toBe(false);
    await tick();
    expect(isZero(first.materials.dataKey)).toBe(true);
    const second = await encryptOnce(cache, 'p', 1, keys.materials);
    expect(second.materials.serial).toBe(2);
  });

  it('capacity eviction drops the least recently used entry and zeroes its key', async () => {
    const { cache } = makeCache({ maxEntries: 3 });
    const keys = keySource();
    const a = await encryptOnce(cache, 'a', 1, keys.materials);
    const b = await encryptOnce(cache, 'b', 1, keys.materials);
    const c = await encryptOnce(cache, 'c', 1, keys.materials);
    expect(cache.takeEncrypt('a', 1)).toBe(a.materials); // a is now most recently used; b is the LRU
    await encryptOnce(cache, 'd', 1, keys.materials);
    expect(cache.stats().evictions.capacity).toBe(1);
    expect(isZero(b.materials.dataKey)).toBe(false);
    await tick();
    expect(isZero(b.materials.dataKey)).toBe(true);
    expect(cache.takeEncrypt('b', 1)).toBeUndefined();
    expect(cache.takeEncrypt('a', 1)).toBe(a.materials);
    expect(cache.takeEncrypt('c', 1)).toBe(c.materials);
    expect(isZero(a.materials.dataKey) || isZero(c.materials.dataKey)).toBe(false);
    expect(cache.stats().encryptEntries).toBe(3);
  });

  it('waiters of a load evicted for capacity in the same tick are still served', async () => {
    const { cache } = makeCache({ maxEntries: 1 });
    const keys = keySource();
    const results = await Promise.all(
      ['x', 'y'].flatMap((p) => Array.from({ length: 5 }, () => encryptOnce(cache, p, 1, keys.materials))),
    );
    expect(keys.calls).toBe(2);
    // Each result's key was valid when handed out (zeroing is deferred).
    expect(results.every((r) => r.cached)).toBe(true);
    await tick();
    expect(cache.stats().encryptEntries).toBe(1);
    expect(cache.stats().evictions.capacity).toBe(1);
  });

  it('a failing load rejects every waiter, caches nothing, and the next call loads again', async () => {
    const { cache } = makeCache();
    let calls = 0;
    const failing = async (): Promise<Materials> => {
      calls++;
      await Promise.resolve();
      throw new Error('kms down');
    };
    const settled = await Promise.allSettled(Array.from({ length: 20 }, () => encryptOnce(cache, 'p', 1, failing)));
    expect(calls).toBe(1);
    expect(settled.every((r) => r.status === 'rejected' && (r.reason as Error).message === 'kms down')).toBe(true);
    expect(cache.stats().encryptEntries).toBe(0);
    expect(cache.stats().loadFailures).toBe(1);
    const keys = keySource();
    const ok = await encryptOnce(cache, 'p', 1, keys.materials);
    expect(ok.cached).toBe(true);
    expect(keys.calls).toBe(1);
    expect(cache.stats().encryptLoads).toBe(2);
  });

  it('a load that throws synchronously or returns no dataKey rejects and is not remembered', async () => {
    const { cache } = makeCache();
    const syncThrow = (): Promise<Materials> => {
      throw new Error('sync');
    };
    await expect(cache.loadEncrypt('p', 1, syncThrow)).rejects.toThrow('sync');
    await expect(cache.loadEncrypt('p', 1, async () => ({}) as Materials)).rejects.toThrow(TypeError);
    const keys = keySource();
    expect((await cache.loadEncrypt('p', 1, keys.materials)).cached).toBe(true);
    expect(cache.stats().loadFailures).toBe(2);
  });
});

describe('DataKeyCache decrypt side', () => {
  it('1,000 decrypts over 10 distinct keys make 10 loads', async () => {
    const { cache } = makeCache();
    const keys = keySource();
    for (let i = 0; i < 1000; i++) await decryptOnce(cache, `edk-${i % 10}`, keys.dataKey);
    expect(keys.calls).toBe(10);
    const s = cache.stats();
    expect(s.decryptLoads).toBe(10);
    expect(s.decryptHits).toBe(990);
    expect(s.decryptMisses).toBe(10);
    expect(s.decryptEntries).toBe(10);
  });

  it('single-flight: concurrent loadDecrypt of one key share one load', async () => {
    const { cache } = makeCache();
    const keys = keySource();
    const got = await Promise.all(Array.from({ length: 50 }, () => decryptOnce(cache, 'k', keys.dataKey)));
    expect(keys.calls).toBe(1);
    expect(new Set(got).size).toBe(1);
  });

  it('a failing decrypt load rejects all waiters and is not cached', async () => {
    const { cache } = makeCache();
    let calls = 0;
    const failing = async (): Promise<Buffer> => {
      calls++;
      await Promise.resolve();
      throw new Error('access denied');
    };
    const settled = await Promise.allSettled(Array.from({ length: 10 }, () => decryptOnce(cache, 'k', failing)));
    expect(calls).toBe(1);
    expect(settled.every((r) => r.status === 'rejected')).toBe(true);
    expect(cache.getDecrypt('k')).toBeUndefined();
    const keys = keySource();
    await decryptOnce(cache, 'k', keys.dataKey);
    expect(keys.calls).toBe(1);
    expect(cache.getDecrypt('k')).toBeDefined();
  });

  it('decrypt entries expire and are zeroed', async () => {
    const { cache, clock } = makeCache({ maxAgeMs: 50 });
    const keys = keySource();
    const key = await decryptOnce(cache, 'k', keys.dataKey);
    clock.now += 49;
    expect(cache.getDecrypt('k')).toBe(key);
    clock.now += 1;
    expect(cache.getDecrypt('k')).toBeUndefined();
    await tick();
    expect(isZero(key)).toBe(true);
  });

  it('decrypt capacity eviction is LRU and zeroes', async () => {
    const { cache } = makeCache({ maxEntries: 2 });
    const keys = keySource();
    const k1 = await decryptOnce(cache, 'k1', keys.dataKey);
    const k2 = await decryptOnce(cache, 'k2', keys.dataKey);
    expect(cache.getDecrypt('k1')).toBe(k1);
    await decryptOnce(cache, 'k3', keys.dataKey);
    await tick();
    expect(isZero(k2)).toBe(true);
    expect(isZero(k1)).toBe(false);
    expect(cache.getDecrypt('k2')).toBeUndefined();
  });

  it('encrypt and decrypt sides are bounded separately', async () => {
    const { cache } = makeCache({ maxEntries: 2 });
    const keys = keySource();
    await encryptOnce(cache, 'p', 1, keys.materials);
    for (let i = 0; i < 5; i++) await decryptOnce(cache, `k${i}`, keys.dataKey);
    const s = cache.stats();
    expect(s.encryptEntries).toBe(1);
    expect(s.decryptEntries).toBe(2);
    expect(s.entries).toBe(3);
    expect(s.evictions.capacity).toBe(3);
  });
});

describe('DataKeyCache zeroing and expiry sweep', () => {
  it('clear() removes everything and zeroes after the current tick', async () => {
    const { cache } = makeCache();
    const keys = keySource();
    const enc = await encryptOnce(cache, 'p', 1, keys.materials);
    const dec = await decryptOnce(cache, 'k', keys.dataKey);
    cache.clear();
    expect(cache.takeEncrypt('p', 1)).toBeUndefined();
    expect(cache.getDecrypt('k')).toBeUndefined();
    expect(isZero(enc.materials.dataKey) || isZero(dec)).toBe(false);
    await tick();
    expect(isZero(enc.materials.dataKey)).toBe(true);
    expect(isZero(dec)).toBe(true);
    expect(cache.stats().evictions.cleared).toBe(2);
    expect(cache.stats().entries).toBe(0);
  });

  it('a load in flight across clear() serves its waiters but is not cached', async () => {
    const { cache } = makeCache();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = async (): Promise<Materials> => {
      await gate;
      return { dataKey: Buffer.alloc(32, 7), serial: 99 };
    };
    const pending = Promise.all(Array.from({ length: 3 }, () => cache.loadEncrypt('p', 1, slow)));
    cache.clear();
    release();
    const results = await pending;
    expect(results.every((r) => r.materials.serial === 99 && r.cached)).toBe(true);
    expect(cache.stats().encryptEntries).toBe(0);
    await tick();
    expect(isZero(results[0]!.materials.dataKey)).toBe(true);
    expect(cache.stats().evictions.cleared).toBe(1);
  });

  it('purgeExpired removes and zeroes expired entries without an access', async () => {
    const { cache, clock } = makeCache({ maxAgeMs: 1000 });
    const keys = keySource();
    const a = await encryptOnce(cache, 'a', 1, keys.materials);
    clock.now += 10;
    const b = await decryptOnce(cache, 'b', keys.dataKey);
    clock.now += 10;
    const c = await encryptOnce(cache, 'c', 1, keys.materials);
    clock.now += 995; // a and b are 1015 and 1005 ms old, c 995 ms
    expect(cache.purgeExpired()).toBe(2);
    expect(cache.stats().entries).toBe(1);
    expect(cache.stats().evictions.expired).toBe(2);
    await tick();
    expect(isZero(a.materials.dataKey)).toBe(true);
    expect(isZero(b)).toBe(true);
    expect(isZero(c.materials.dataKey)).toBe(false);
  });

  it('expired entries are removed before a live entry is evicted for capacity', async () => {
    const { cache, clock } = makeCache({ maxEntries: 2, maxAgeMs: 100 });
    const keys = keySource();
    await encryptOnce(cache, 'old', 1, keys.materials);
    clock.now += 50;
    const live = await encryptOnce(cache, 'live', 1, keys.materials);
    clock.now += 60; // 'old' is 110 ms old
    await encryptOnce(cache, 'new', 1, keys.materials);
    const s = cache.stats();
    expect(s.evictions.expired).toBe(1);
    expect(s.evictions.capacity).toBe(0);
    expect(cache.takeEncrypt('live', 1)).toBe(live.materials);
  });

  it('the unref()ed expiry timer zeroes expired keys with the default clock', async () => {
    const cache = new DataKeyCache<Materials>(resolveCacheOptions({ maxAgeMs: 5 }) as ResolvedCacheOptions);
    const keys = keySource();
    const { materials } = await cache.loadEncrypt('p', 1, keys.materials);
    // Poll (no timing assertion): the timer must eventually sweep the entry with no access at all.
    for (let i = 0; i < 500 && !isZero(materials.dataKey); i++) await new Promise((r) => setTimeout(r, 10));
    expect(isZero(materials.dataKey)).toBe(true);
    expect(cache.stats().evictions.expired).toBe(1);
    expect(cache.stats().entries).toBe(0);
  });

  it('churn does not grow the expiry queue without bound', async () => {
    const { cache } = makeCache({ maxMessagesPerKey: 1 });
    const keys = keySource();
    for (let i = 0; i < 5_000; i++) await encryptOnce(cache, 'p', 1, keys.materials);
    expect(keys.calls).toBe(5_000);
    // Internal, but this is the property: removed entries are compacted away.
    const queue = (cache as unknown as { queue: unknown[]; queueHead: number }).queue;
    expect(queue.length).toBeLessThan(200);
    cache.clear();
  });
});

describe('DataKeyCache stats', () => {
  it('reports hits, misses, loads, evictions by reason and entries', async () => {
    const { cache, clock } = makeCache({ maxEntries: 2, maxAgeMs: 1000, maxMessagesPerKey: 3 });
    const keys = keySource();
    for (let i = 0; i < 4; i++) await encryptOnce(cache, 'p', 1, keys.materials); // 1 miss + 2 hits, usage eviction, 1 miss
    await encryptOnce(cache, 'q', 1, keys.materials); // miss
    await encryptOnce(cache, 'r', 1, keys.materials); // miss, evicts 'p' (LRU) for capacity
    await decryptOnce(cache, 'k', keys.dataKey); // miss
    await decryptOnce(cache, 'k', keys.dataKey); // hit
    clock.now += 1000;
    expect(cache.getDecrypt('k')).toBeUndefined(); // expired
    await decryptOnce(cache, 'k', keys.dataKey); // miss; inserting sweeps q and r, expired too
    cache.clear(); // the new k
    expect(cache.stats()).toEqual({
      hits: 3,
      misses: 6,
      encryptHits: 2,
      encryptMisses: 4,
      decryptHits: 1,
      decryptMisses: 2,
      loads: 6,
      encryptLoads: 4,
      decryptLoads: 2,
      loadFailures: 0,
      uncached: 0,
      evictions: { capacity: 1, expired: 3, usage: 1, cleared: 1, replaced: 0 },
      entries: 0,
      encryptEntries: 0,
      decryptEntries: 0,
    });
  });
});
