export { DataKeyCache, type CachedEncryption, type CacheStats, type CacheEvictions, type DataKeyCacheStats } from './cache.js';
export { resolveCacheOptions, CACHE_LIMITS, type CacheOptions, type ResolvedCacheOptions } from './options.js';
