import type { KmsCore } from './core.js';
import type { KeyRecord, MaterialRecord } from './model.js';
import type { KmsResponse } from './ops/util.js';
import type { RegionalCopy, RegionSet } from './regions.js';

/**
 * What related multi-Region keys share and how it stays in step (Developer Guide, "Multi-Region
 * keys in AWS KMS", shared properties): the key id, key spec, key usage, origin, key material and
 * automatic rotation belong to the primary key and are copied to every replica when they change;
 * key policy, description, tags, aliases, grants, enabled state and deletion are each copy's own.
 *
 * AWS shows a transient `Updating` state for a few seconds after UpdatePrimaryRegion; here the
 * change is complete when the call returns, so `Updating` is never shown.
 */

/** Whether `key` (held by `core`) is a replica: a multi-Region key whose primary is elsewhere. */
export function isReplica(core: KmsCore, key: KeyRecord): boolean {
  return key.multiRegion !== undefined && key.multiRegion.primaryRegion !== core.region;
}

/** DescribeKey's MultiRegionConfiguration: this key's type, the primary, and every replica. */
export function multiRegionConfiguration(core: KmsCore, key: KeyRecord): KmsResponse {
  const primaryRegion = key.multiRegion!.primaryRegion;
  const copies = core.regions ? core.regions.copies(key.keyId) : [{ region: core.region, key }];
  const primary = copies.find((c) => c.region === primaryRegion);
  return {
    MultiRegionKeyType: primaryRegion === core.region ? 'PRIMARY' : 'REPLICA',
    PrimaryKey: { Arn: primary?.key.arn ?? key.arn.replace(/^(arn:[^:]+:kms:)[^:]+/, `$1${primaryRegion}`), Region: primaryRegion },
    ReplicaKeys: copies.filter((c) => c.region !== primaryRegion).map((c) => ({ Arn: c.key.arn, Region: c.region })),
  };
}

/** Copies of key material for another Region's record: its own buffers, zeroed when that copy is deleted. */
export function copyMaterials(materials: readonly MaterialRecord[], existing: readonly MaterialRecord[] = []): MaterialRecord[] {
  return materials.map((m) => existing.find((e) => e.id === m.id) ?? { id: m.id, createdAt: m.createdAt, secret: Buffer.from(m.secret) });
}

/**
 * After the primary's material or rotation settings changed: the same on every replica (Developer
 * Guide, "Rotating multi-Region keys": rotation happens on the primary and KMS copies the new key
 * material to each replica). Imported material (origin EXTERNAL) is imported into each copy by
 * its owner, so only the rotation settings are copied for those.
 */
export function syncReplicas(core: KmsCore, primary: KeyRecord): void {
  if (!core.regions || isReplica(core, primary)) return;
  const copies = core.regions.copies(primary.keyId).filter((c) => c.region !== core.region);
  commitAll(copies, (copy) => ({
    ...(primary.origin === 'AWS_KMS' ? { materials: copyMaterials(primary.materials, copy.key.materials) } : {}),
    rotation: { ...primary.rotation, history: [...primary.rotation.history] },
    onDemandRotations: primary.onDemandRotations,
  }));
}

/**
 * Commits a change to several copies (one file per Region, so not atomic together). The first
 * write that lands decides: a copy whose write fails still changes in memory, so this process
 * stays consistent, and the error is thrown after all were tried; at the next start
 * reconcileMultiRegionKeys completes on disk what a crash or failed write left half done.
 */
export function commitAll(copies: readonly RegionalCopy[], changes: (copy: RegionalCopy) => Partial<KeyRecord>): void {
  let failure: unknown;
  for (const copy of copies) {
    const change = changes(copy);
    try {
      copy.core.commit(copy.key, change);
    } catch (e) {
      failure ??= e;
      copy.core.keys.set(copy.key.keyId, { ...copy.key, ...change });
    }
  }
  if (failure !== undefined) throw failure;
}

/**
 * At start, after every Region with keys is open: completes what an interrupted multi-Region write
 * left half done. The copy with the highest epoch names the primary (UpdatePrimaryRegion writes
 * the new epoch to every copy); the primary's key material and rotation reach every replica
 * (RotateKeyOnDemand and automatic rotation write the primary first). Either the whole change
 * shows after a crash, or, when no copy recorded it, none of it.
 */
export function reconcileMultiRegionKeys(regions: RegionSet): void {
  const ids = new Set<string>();
  for (const core of regions.all()) for (const key of core.keys.values()) if (key.multiRegion) ids.add(key.keyId);
  for (const id of ids) {
    const copies = regions.copies(id);
    const newest = copies.reduce((a, b) => ((b.key.multiRegion!.epoch ?? 0) > (a.key.multiRegion!.epoch ?? 0) ? b : a));
    const truth = newest.key.multiRegion!;
    const stale = copies.filter((c) => c.key.multiRegion!.primaryRegion !== truth.primaryRegion || (c.key.multiRegion!.epoch ?? 0) !== (truth.epoch ?? 0));
    commitAll(stale, () => ({ multiRegion: { ...truth } }));
    const primary = regions.copies(id).find((c) => c.region === truth.primaryRegion);
    if (!primary) continue;
    const materialIds = (k: KeyRecord) => k.materials.map((m) => m.id).join(',');
    const behind = regions
      .copies(id)
      .some((c) => c !== primary && ((primary.key.origin === 'AWS_KMS' && materialIds(c.key) !== materialIds(primary.key)) || c.key.rotation.history.length !== primary.key.rotation.history.length));
    if (behind) syncReplicas(primary.core, primary.key);
  }
}

/**
 * A copy of a multi-Region key was deleted. A primary waiting in PendingReplicaDeletion starts its
 * own waiting period when its last replica is gone (API Reference, ScheduleKeyDeletion).
 */
export function replicaGone(core: KmsCore, gone: KeyRecord, now: number): void {
  if (!core.regions || !gone.multiRegion) return;
  const copies = core.regions.copies(gone.keyId);
  const primary = copies.find((c) => c.region === c.key.multiRegion!.primaryRegion);
  if (!primary || primary.key.pendingReplicaDeletion !== true) return;
  if (copies.some((c) => c !== primary)) return;
  const days = primary.key.pendingWindowInDays ?? 30;
  primary.core.commit(primary.key, { pendingReplicaDeletion: undefined, deletionDate: now + days * 86_400_000 });
}

/** The replicas of a primary key that still exist (in any key state). */
export function liveReplicas(core: KmsCore, primary: KeyRecord): KeyRecord[] {
  if (!core.regions || !primary.multiRegion) return [];
  return core.regions.copies(primary.keyId).filter((c) => c.region !== core.region).map((c) => c.key);
}

/** What another copy of a multi-Region key remembers of its imported material, if one imported any. */
export function importedByAnotherCopy(core: KmsCore, key: KeyRecord): KeyRecord['imported'] {
  if (!core.regions) return undefined;
  return core.regions.copies(key.keyId).find((c) => c.region !== core.region && c.key.imported)?.key.imported;
}
