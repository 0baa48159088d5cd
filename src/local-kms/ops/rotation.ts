import type { Requester } from '../request-context.js';
import { Checks } from '../validate.js';
import { paginate, sortByKey } from '../paging.js';
import type { KeyRecord, RotationRecord } from '../model.js';
import { isReplica, syncReplicas } from '../multi-region.js';
import type { KmsCore } from '../core.js';
import { checkKeyId, checkMarker, err, newSymmetricMaterial, num, requireKeyId, str, withPage, type KmsResponse, type Req } from './util.js';

/**
 * Key rotation (API Reference: EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus,
 * RotateKeyOnDemand, ListKeyRotations); automatic rotations themselves run in KmsCore.tick.
 */

const MAX_ON_DEMAND_ROTATIONS = 10;
const DEFAULT_ROTATION_DAYS = 365;

/**
 * Rotation of related multi-Region keys is a property of the primary key, set there and copied to
 * the replicas (API Reference, EnableKeyRotation/DisableKeyRotation/RotateKeyOnDemand: "set the
 * property on the primary key").
 */
function requirePrimary(kms: KmsCore, key: KeyRecord, operation: string): void {
  if (isReplica(kms, key)) {
    throw err(
      'UnsupportedOperationException',
      `${key.arn} is a multi-Region replica key; ${operation} applies to its primary key in ${key.multiRegion!.primaryRegion}.`,
    );
  }
}

export async function enableKeyRotation(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkKeyId(c, req.KeyId);
  c.range('rotationPeriodInDays', num(req.RotationPeriodInDays), 90, 2560);
  c.done();
  const { key } = kms.resolve(String(req.KeyId), { alias: false }, who);
  const period = num(req.RotationPeriodInDays) ?? DEFAULT_ROTATION_DAYS;
  kms.authorize(who, 'kms:EnableKeyRotation', key, { keys: { 'kms:RotationPeriodInDays': String(period) } });
  kms.requireRotatable(key);
  requirePrimary(kms, key, 'EnableKeyRotation');
  kms.requireEnabled(key);
  const baseDate = key.rotation.enabled && key.rotation.baseDate !== undefined ? key.rotation.baseDate : kms.clock();
  const saved = kms.commit(key, { rotation: { ...key.rotation, enabled: true, periodDays: period, baseDate } });
  syncReplicas(kms, saved);
  return {};
}

export async function disableKeyRotation(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const { key } = kms.resolve(requireKeyId(req.KeyId), { alias: false }, who);
  kms.authorize(who, 'kms:DisableKeyRotation', key);
  kms.requireRotatable(key);
  requirePrimary(kms, key, 'DisableKeyRotation');
  kms.requireEnabled(key);
  const saved = kms.commit(key, { rotation: { ...key.rotation, enabled: false, baseDate: undefined } });
  syncReplicas(kms, saved);
  return {};
}

export async function getKeyRotationStatus(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const { key } = kms.resolve(requireKeyId(req.KeyId), { alias: false }, who);
  kms.authorize(who, 'kms:GetKeyRotationStatus', key);
  kms.requireRotatable(key);
  // GetKeyRotationStatus: while a key is pending deletion its rotation status is false; the stored
  // status comes back when the deletion is cancelled.
  const enabled = key.rotation.enabled && key.deletionDate === undefined;
  const out: KmsResponse = { KeyRotationEnabled: enabled, KeyId: key.arn };
  if (enabled) {
    out.RotationPeriodInDays = key.rotation.periodDays;
    const next = kms.nextRotation(key);
    if (next !== undefined) out.NextRotationDate = new Date(next);
  }
  return out;
}

export async function rotateKeyOnDemand(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const { key } = kms.resolve(requireKeyId(req.KeyId), { alias: false }, who);
  kms.authorize(who, 'kms:RotateKeyOnDemand', key);
  kms.requireRotatable(key);
  requirePrimary(kms, key, 'RotateKeyOnDemand');
  kms.requireEnabled(key);
  if (key.onDemandRotations >= MAX_ON_DEMAND_ROTATIONS) {
    throw err('LimitExceededException', `${key.arn} has reached the limit of ${MAX_ON_DEMAND_ROTATIONS} on-demand rotations.`);
  }
  const now = kms.clock();
  const m = newSymmetricMaterial(now);
  const saved = kms.commit(key, {
    materials: [...key.materials, m],
    onDemandRotations: key.onDemandRotations + 1,
    rotation: { ...key.rotation, history: [...key.rotation.history, { materialId: m.id, date: now, type: 'ON_DEMAND' }] },
  });
  syncReplicas(kms, saved);
  return { KeyId: key.arn };
}

export async function listKeyRotations(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkKeyId(c, req.KeyId);
  c.range('limit', num(req.Limit), 1, 1000);
  checkMarker(c, req.Marker);
  c.done();
  const { key } = kms.resolve(String(req.KeyId), { alias: false }, who);
  kms.authorize(who, 'kms:ListKeyRotations', key);
  kms.requireRotatable(key);
  // Oldest first. Each rotation made its own material, so date + material id identifies it.
  const rotationKey = (r: RotationRecord) => `${String(r.date).padStart(16, '0')}.${r.materialId}`;
  const rotations = sortByKey([...key.rotation.history], rotationKey);
  const scope = { operation: 'ListKeyRotations', scope: key.keyId };
  const page = paginate(rotations, rotationKey, num(req.Limit) ?? 100, str(req.Marker), kms.markers, scope);
  return withPage(
    {
      Rotations: page.items.map((r) => ({
        KeyId: key.arn,
        KeyMaterialId: r.materialId,
        RotationDate: new Date(r.date),
        RotationType: r.type,
      })),
    },
    page,
  );
}
