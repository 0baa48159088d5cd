import type { Requester } from '../request-context.js';
import type { KeyRecord, KeyUsageRecord } from '../model.js';
import type { KmsCore } from '../core.js';
import { requireKeyId, type KmsResponse, type Req } from './util.js';

/**
 * Key last usage (API Reference: GetKeyLastUsage).
 *
 * What counts: a SUCCESSFUL request of one of the operations of the KeyLastUsageTrackingOperation
 * enum (TRACKED_OPERATIONS), on every key it used: ReEncrypt records on its source and on its
 * destination key ("Usage information is recorded for both keys independently"). Failed requests,
 * DryRun requests (they fail with DryRunOperationException), Verify/VerifyMac that find the
 * signature or MAC invalid (they fail too), and every other operation (DescribeKey, GetPublicKey,
 * CreateGrant, ...) do not count.
 *
 * TrackingStartDate: "the date from which KMS began recording cryptographic activity for this key,
 * or the date the KMS key was created, whichever is later". Here recording began when a local KMS
 * with this feature first served the key's store: keys created since have their creation date;
 * an older key gets the time this process started tracking, kept with the key from its next write.
 *
 * Cost on the hot path (Encrypt, Decrypt, GenerateDataKey of the in-process local KMS): a Map
 * update, no disk write. The record reaches the store (keys/<id>.json, in clear: no secret in it)
 * - with the key's next write of any kind (LocalKmsService.commit adds it),
 * - on close(),
 * - and by itself at most once per PERSIST_AFTER_MS per key (the first use after creation or after
 *   a restart, then when the stored record is older than that), so a crash loses at most that
 *   window of last-usage updates, never the fact that a key was used.
 * CloudTrailEventId and KmsRequestId are absent: there is no CloudTrail here, and the request id
 * of the HTTP answer does not reach the service.
 */

/** KeyLastUsageTrackingOperation enum of the API. */
export const TRACKED_OPERATIONS: readonly string[] = [
  'Decrypt',
  'DeriveSharedSecret',
  'Encrypt',
  'GenerateDataKey',
  'GenerateDataKeyPair',
  'GenerateDataKeyPairWithoutPlaintext',
  'GenerateDataKeyWithoutPlaintext',
  'GenerateMac',
  'ReEncrypt',
  'Sign',
  'Verify',
  'VerifyMac',
  'Encapsulate',
  'Decapsulate',
];
const TRACKED = new Set(TRACKED_OPERATIONS);

/** Longest time a last-usage record stays in memory only (see above). */
export const PERSIST_AFTER_MS = 3_600_000;

class UsageState {
  readonly usage = new Map<string, KeyUsageRecord>();
  readonly dirty = new Set<string>();
  constructor(readonly startedAt: number) {}
}

const states = new WeakMap<KmsCore, UsageState>();

/**
 * Starts tracking for a core (its constructor): from then on, keys the core creates have their
 * creation date as TrackingStartDate, which is never later than KeyCreationDate.
 */
export function startUsageTracking(kms: KmsCore): void {
  if (!states.has(kms)) states.set(kms, new UsageState(kms.clock()));
}

function stateOf(kms: KmsCore): UsageState {
  let s = states.get(kms);
  if (!s) states.set(kms, (s = new UsageState(kms.clock())));
  return s;
}

function trackedSince(kms: KmsCore, key: KeyRecord): number {
  return key.usageTrackedSince ?? Math.max(key.createdAt, stateOf(kms).startedAt);
}

/** The last usage of `key`: the newer of memory and store. */
function lastUsageOf(kms: KmsCore, key: KeyRecord): KeyUsageRecord | undefined {
  const mem = stateOf(kms).usage.get(key.keyId);
  const stored = key.lastUsage;
  if (!mem) return stored;
  return stored && stored.timestamp > mem.timestamp ? stored : mem;
}

/**
 * The usage fields a key write carries (LocalKmsService.commit): what memory holds, and the
 * tracking start, so that both survive a restart with the key's next write.
 */
export function usageFields(kms: KmsCore, key: KeyRecord): Partial<KeyRecord> {
  const s = stateOf(kms);
  const lastUsage = lastUsageOf(kms, key);
  s.dirty.delete(key.keyId);
  return { usageTrackedSince: trackedSince(kms, key), ...(lastUsage ? { lastUsage } : {}) };
}

const keyIdOfArn = (arn: unknown): string | undefined => (typeof arn === 'string' ? /:key\/([^/]+)$/.exec(arn)?.[1] : undefined);

/** Records a successful `operation` on the keys its response names (KeyId; ReEncrypt's SourceKeyId too). */
export function recordUsage(kms: KmsCore, operation: string, response: KmsResponse): void {
  if (!TRACKED.has(operation)) return;
  const ids = [keyIdOfArn(response.KeyId)];
  if (operation === 'ReEncrypt') ids.push(keyIdOfArn(response.SourceKeyId));
  const s = stateOf(kms);
  const timestamp = kms.clock();
  for (const id of new Set(ids)) {
    if (id === undefined) continue;
    const key = kms.keys.get(id);
    if (!key) continue;
    const record: KeyUsageRecord = { operation, timestamp };
    s.usage.set(id, record);
    if (key.lastUsage === undefined || timestamp - key.lastUsage.timestamp >= PERSIST_AFTER_MS) {
      try {
        kms.commit(key, {}); // LocalKmsService.commit adds the usage fields
      } catch {
        s.dirty.add(id); // the store is failing: the operation succeeded anyway; close() tries again
      }
    } else {
      s.dirty.add(id);
    }
  }
}

/** Writes every key whose last usage is only in memory (close()). */
export function flushUsage(kms: KmsCore): void {
  const s = states.get(kms);
  if (!s) return;
  for (const id of [...s.dirty]) {
    const key = kms.keys.get(id);
    if (key) kms.commit(key, {});
    s.dirty.delete(id);
  }
}

/**
 * GetKeyLastUsage: key ID or key ARN only ("Alias names are not supported"), not across accounts
 * ("Cross-account use: No"), permission kms:GetKeyLastUsage in the key policy. The API lists no
 * key-state exception, so it answers in every key state (like DescribeKey). KeyLastUsage is an
 * empty structure when nothing was recorded since TrackingStartDate.
 */
export async function getKeyLastUsage(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const { key } = kms.resolve(requireKeyId(req.KeyId), { alias: false }, who);
  kms.authorize(who, 'kms:GetKeyLastUsage', key);
  const last = lastUsageOf(kms, key);
  return {
    KeyId: key.keyId,
    KeyLastUsage: last ? { Operation: last.operation, Timestamp: new Date(last.timestamp) } : {},
    TrackingStartDate: new Date(trackedSince(kms, key)),
    KeyCreationDate: new Date(key.createdAt),
  };
}
