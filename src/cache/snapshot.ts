import { startupSnapshot } from 'node:v8';

/**
 * Keeps a key cache out of startup snapshots (`node --build-snapshot` of a bundled application).
 * Otherwise every process started from the snapshot would restore the same cached keys: plaintext
 * keys in the snapshot file, one data key serving `maxMessagesPerKey` messages in each process,
 * ages measured on a clock (`performance.now()`) that restarts at 0, and an expiry timer that a
 * restored process never runs.
 *
 * The library's serialize callback empties the cache and pauses it: Node goes on running code
 * after the serialize callbacks (later serialize callbacks, `beforeExit` handlers once more, `exit`
 * handlers) before it saves the heap, and keys those load serve their callers but are not cached.
 * The deserialize callback empties the cache again and resumes it; until then (a deserialize
 * callback registered earlier) the cache is empty and paused.
 */
export function clearAroundSnapshots(cache: { clear(): void; pause(paused: boolean): void }): void {
  if (!startupSnapshot.isBuildingSnapshot()) return;
  startupSnapshot.addSerializeCallback(() => {
    cache.clear();
    cache.pause(true);
  });
  startupSnapshot.addDeserializeCallback(() => {
    cache.clear();
    cache.pause(false);
  });
}
