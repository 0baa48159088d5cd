import type { Requester } from '../request-context.js';
import { Checks, validationError } from '../validate.js';
import type { KeyRecord, Tag } from '../model.js';
import type { KmsCore } from '../core.js';
import { commitAll, copyMaterials, isReplica } from '../multi-region.js';
import { checkTagRules, checkTagShapes } from './aliases-tags.js';
import { authorizeNewKey, newKeyPolicy } from './keys.js';
import { checkKeyId, err, str, type KmsResponse, type Req } from './util.js';

/**
 * Multi-Region keys (API Reference: ReplicateKey, UpdatePrimaryRegion; CreateKey `MultiRegion`
 * makes the primary, ops/keys.ts). What the copies share is kept in step by multi-region.ts.
 */

/** ReplicaRegion / PrimaryRegion: 1-32 characters, `^([a-z]+-){2,3}\d+$` (API Reference). */
const REGION_MEMBER = /^([a-z]+-){2,3}\d+$/;

function checkRegionMember(c: Checks, member: string, v: unknown): void {
  c.required(member, v);
  c.length(member, str(v), 1, 32);
  c.pattern(member, str(v), REGION_MEMBER, '^([a-z]+-){2,3}\\d+$');
}

/** The key must be a multi-Region key; `primary`: its primary (UnsupportedOperationException otherwise). */
function requireMultiRegion(kms: KmsCore, key: KeyRecord, operation: string, primary: boolean): void {
  if (!key.multiRegion) {
    throw err('UnsupportedOperationException', `${key.arn} is not a multi-Region key; ${operation} applies to multi-Region primary keys only.`);
  }
  if (primary && isReplica(kms, key)) {
    throw err(
      'UnsupportedOperationException',
      `${key.arn} is a multi-Region replica key; ${operation} applies to its primary key in ${key.multiRegion.primaryRegion}.`,
    );
  }
}

export async function replicateKey(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkKeyId(c, req.KeyId);
  checkRegionMember(c, 'replicaRegion', req.ReplicaRegion);
  c.length('policy', str(req.Policy), 1, 32_768);
  c.length('description', str(req.Description), 0, 8192);
  checkTagShapes(c, req.Tags as Tag[] | undefined, 'tags');
  c.done();
  const replicaRegion = String(req.ReplicaRegion);
  // "Specify the key ID or key ARN of a multi-Region primary key": no aliases.
  const { key } = kms.resolve(String(req.KeyId), { alias: false }, who);
  kms.authorize(who, 'kms:ReplicateKey', key, { keys: { 'kms:ReplicaRegion': replicaRegion } });
  requireMultiRegion(kms, key, 'ReplicateKey', true);
  const state = kms.stateOf(key);
  // A primary that is being deleted, or waits for its replicas' deletion, "cannot be replicated".
  if (state === 'PendingDeletion' || state === 'PendingReplicaDeletion') throw kms.invalidState(key, state);
  if (!kms.regions.serves(replicaRegion)) {
    throw validationError(`ReplicaRegion ${replicaRegion} is not a Region of the ${kms.partition} partition of key ${key.arn}.`);
  }
  const target = kms.regions.core(replicaRegion);
  target.inflight++;
  try {
    return await replicateInto(kms, target, key, req, who);
  } finally {
    target.inflight--;
    kms.regions.release(target, target.inflight > 0);
  }
}

async function replicateInto(kms: KmsCore, target: KmsCore, key: KeyRecord, req: Req, who: Requester): Promise<KmsResponse> {
  const replicaRegion = target.region;
  // "You cannot create more than one replica of a primary key in any Region", the primary's own
  // Region included; a replica pending deletion still counts.
  const existing = target.keys.get(key.keyId);
  if (existing || replicaRegion === kms.region) {
    throw err('AlreadyExistsException', `The multi-Region key ${key.keyId} already has a key in ${replicaRegion}: ${target.keyArn(key.keyId)}.`);
  }
  const tags = (req.Tags as Tag[] | undefined) ?? [];
  checkTagRules(tags, []);
  // In the replica Region the replica is a new key: kms:CreateKey (and kms:TagResource for Tags)
  // in the caller's IAM policies there (API Reference, ReplicateKey "Required permissions").
  authorizeNewKey(target, who, { keySpec: key.keySpec, keyUsage: key.keyUsage, origin: key.origin, multiRegion: true }, tags, req.BypassPolicyLockoutSafetyCheck);
  const arn = target.keyArn(key.keyId);
  const multiRegion = { ...key.multiRegion!, primaryRegion: kms.region };
  // The key policy is each copy's own: the request's, else the default key policy (not the primary's).
  const policy = newKeyPolicy(target, req, who, { arn, keySpec: key.keySpec, keyUsage: key.keyUsage, origin: key.origin, multiRegion });
  const now = target.clock();
  const replica: KeyRecord = {
    keyId: key.keyId,
    arn,
    createdAt: now,
    description: str(req.Description) ?? '',
    keyUsage: key.keyUsage,
    keySpec: key.keySpec,
    origin: key.origin,
    enabled: true,
    policy,
    tags: tags.map((t) => ({ TagKey: t.TagKey, TagValue: t.TagValue })),
    // "If you replicate a multi-Region primary key with imported key material, the replica key is
    // created with no key material. You must import the same key material": the primary's
    // fingerprint makes ImportKeyMaterial refuse any other (IncorrectKeyMaterialException).
    materials: key.origin === 'AWS_KMS' ? copyMaterials(key.materials) : [],
    ...(key.publicKey ? { publicKey: Buffer.from(key.publicKey) } : {}),
    ...(key.origin === 'EXTERNAL' && key.imported ? { imported: { materialId: key.imported.materialId, fingerprint: key.imported.fingerprint } } : {}),
    rotation: { ...key.rotation, history: [...key.rotation.history] },
    onDemandRotations: key.onDemandRotations,
    multiRegion,
    ...(target.replicaCreationMs > 0 ? { creatingUntil: now + target.replicaCreationMs } : {}),
  };
  const saved = target.commit(replica, {});
  return {
    ReplicaKeyMetadata: target.metadata(saved),
    ReplicaPolicy: saved.policy,
    ReplicaTags: saved.tags.map((t) => ({ ...t })),
  };
}

export async function updatePrimaryRegion(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkKeyId(c, req.KeyId);
  checkRegionMember(c, 'primaryRegion', req.PrimaryRegion);
  c.done();
  const primaryRegion = String(req.PrimaryRegion);
  const { key } = kms.resolve(String(req.KeyId), { alias: false }, who);
  kms.authorize(who, 'kms:UpdatePrimaryRegion', key, { keys: { 'kms:PrimaryRegion': primaryRegion } });
  requireMultiRegion(kms, key, 'UpdatePrimaryRegion', true);
  // "There must be an existing replica key in this Region."
  const target = kms.regions.serves(primaryRegion) ? kms.regions.get(primaryRegion) : undefined;
  const replica = primaryRegion !== kms.region ? target?.keys.get(key.keyId) : undefined;
  if (!target || !replica?.multiRegion) {
    throw err('NotFoundException', `The multi-Region key ${key.keyId} has no replica in ${primaryRegion}.`);
  }
  // kms:UpdatePrimaryRegion on the replica too, in its own key policy.
  target.authorize(who, 'kms:UpdatePrimaryRegion', replica, { keys: { 'kms:PrimaryRegion': primaryRegion } });
  // Both keys must be Enabled when the operation starts (Developer Guide, "Changing the primary
  // key in a set of multi-Region keys").
  for (const [core, k] of [[kms, key], [target, replica]] as const) core.requireEnabled(k);
  // The new primary first: once one copy holds the new epoch, a restart completes the change
  // (multi-region.ts reconcileMultiRegionKeys).
  const epoch = (key.multiRegion!.epoch ?? 0) + 1;
  const copies = kms.regions.copies(key.keyId).sort((a, b) => (a.region === primaryRegion ? -1 : b.region === primaryRegion ? 1 : 0));
  commitAll(copies, () => ({ multiRegion: { primaryRegion, epoch } }));
  return {};
}
