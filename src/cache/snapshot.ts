import { startupSnapshot } from 'node:v8';

/**
 * Empties a key cache when a startup snapshot (`node --build-snapshot` of a bundled application) is
 * saved and again when it is restored. Otherwise every process started from the snapshot would
 * restore the same cached keys: plaintext keys in the snapshot file, one data key serving
 * `maxMessagesPerKey` messages in each process, ages measured on a clock (`performance.now()`)
 * that restarts at 0, and an expiry timer that a restored process never runs, so nothing would
 * expire while the cache still believed its timer armed. Clearing on restore also catches keys
 * cached by code that ran after the first clear (a later serialize callback, an exit handler).
 */
export function clearAroundSnapshots(cache: { clear(): void }): void {
  if (!startupSnapshot.isBuildingSnapshot()) return;
  startupSnapshot.addSerializeCallback(() => cache.clear());
  startupSnapshot.addDeserializeCallback(() => cache.clear());
}
