import { randomBytes, randomUUID } from 'node:crypto';
import type { Requester } from '../request-context.js';
import { defaultKeyPolicy } from '../generated-policies.js';
import { assertPolicyLockoutSafe, validateKeyPolicy } from '../policy.js';
import { CHINA_ONLY_KEY_SPECS, KEY_SPECS, KEY_SPEC_NAMES, KEY_USAGES, type KeySpec, type KeyUsage } from '../specs.js';
import { generateKeyPairFor } from '../asym.js';
import { Checks, validationError } from '../validate.js';
import { paginate } from '../paging.js';
import type { KeyRecord, Tag } from '../model.js';
import type { KmsCore } from '../core.js';
import { checkTagRules, checkTagShapes } from './aliases-tags.js';
import { isReplica, liveReplicas, syncReplicas } from '../multi-region.js';
import { checkKeyStoreRequest, generateHsmKey } from './custom-key-stores.js';
import { DAY_MS, checkKeyId, checkMarker, err, newMaterialId, newSymmetricMaterial, num, requireKeyId, str, withPage, type KmsResponse, type Req } from './util.js';

/**
 * Keys and key states (API Reference: CreateKey, DescribeKey, ListKeys, UpdateKeyDescription,
 * EnableKey, DisableKey, ScheduleKeyDeletion, CancelKeyDeletion).
 */

const ORIGINS = ['AWS_KMS', 'EXTERNAL', 'AWS_CLOUDHSM', 'EXTERNAL_KEY_STORE'];
const CUSTOMER_MASTER_KEY_SPECS = [
  'RSA_2048', 'RSA_3072', 'RSA_4096', 'ECC_NIST_P256', 'ECC_NIST_P384', 'ECC_NIST_P521', 'ECC_SECG_P256K1',
  'SYMMETRIC_DEFAULT', 'HMAC_224', 'HMAC_256', 'HMAC_384', 'HMAC_512', 'SM2',
];

export async function createKey(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  c.length('policy', str(req.Policy), 1, 32_768);
  c.length('description', str(req.Description), 0, 8192);
  c.oneOf('keyUsage', str(req.KeyUsage), KEY_USAGES);
  // SM2 is in the API's enum (so it is not a ValidationException) but refused below.
  c.oneOf('keySpec', str(req.KeySpec), [...KEY_SPEC_NAMES, ...CHINA_ONLY_KEY_SPECS]);
  // The deprecated member's own enum (API Reference, CustomerMasterKeySpec): the key specs that
  // existed when it was replaced by KeySpec, none of the newer ones.
  c.oneOf('customerMasterKeySpec', str(req.CustomerMasterKeySpec), CUSTOMER_MASTER_KEY_SPECS);
  c.oneOf('origin', str(req.Origin), ORIGINS);
  checkTagShapes(c, req.Tags as Tag[] | undefined, 'tags');
  c.done();
  if (req.KeySpec !== undefined && req.CustomerMasterKeySpec !== undefined) {
    throw validationError('You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.');
  }
  const specName = str(req.KeySpec) ?? str(req.CustomerMasterKeySpec) ?? 'SYMMETRIC_DEFAULT';
  if (CHINA_ONLY_KEY_SPECS.includes(specName)) {
    // AWS offers SM2 key pairs (ENCRYPT_DECRYPT, SIGN_VERIFY or KEY_AGREEMENT) only in China
    // Regions (API Reference, CreateKey `KeySpec`/`KeyUsage`) and refuses the spec elsewhere with
    // UnsupportedOperationException, as GenerateDataKeyPair does here. The local KMS does not
    // model China Regions' key specs (SM2, nor SM4 behind SYMMETRIC_DEFAULT) under any region.
    throw err(
      'UnsupportedOperationException',
      kms.partition === 'aws-cn'
        ? `KeySpec ${specName} is not supported by the local KMS.`
        : `KeySpec ${specName} is not supported in this Region.`,
    );
  }
  const spec = specName as KeySpec;
  const usage = (str(req.KeyUsage) ?? 'ENCRYPT_DECRYPT') as KeyUsage;
  if (!KEY_SPECS[spec].usages.includes(usage)) {
    throw validationError(`KeyUsage ${usage} is not compatible with KeySpec ${spec}`);
  }
  const origin = str(req.Origin) ?? 'AWS_KMS';
  const tags = (req.Tags as Tag[] | undefined) ?? [];
  authorizeNewKey(kms, who, { keySpec: spec, keyUsage: usage, origin, multiRegion: req.MultiRegion === true }, tags, req.BypassPolicyLockoutSafetyCheck);
  if (kms.isForeign(who)) {
    // AWS creates the key in the caller's own account ("Cross-account use: No. You cannot use this
    // operation to create a KMS key in a different AWS account"). The local KMS holds one
    // account's keys; making one here would hand that account's key to another.
    throw err(
      'UnsupportedOperationException',
      `The local KMS serves account ${kms.accountId} only; CreateKey by a principal of account ${who.caller.account} would create a key in that account.`,
    );
  }
  // Custom key stores: CloudHSM (the key in the token) and external (the external key at the proxy).
  const keyStore = await checkKeyStoreRequest(kms, req, who, spec, usage, origin);
  // Past that check the origin is one the local KMS makes keys of.
  const keyOrigin = origin as KeyRecord['origin'];
  checkTagRules(tags, []);
  const multiRegion = req.MultiRegion === true;
  // Multi-Region keys have ids `mrk-` + 32 hex digits (Developer Guide, "Multi-Region key identifiers").
  const keyId = multiRegion ? `mrk-${randomBytes(16).toString('hex')}` : randomUUID();
  const arn = kms.keyArn(keyId);
  const mrk = multiRegion ? { primaryRegion: kms.region } : undefined;
  const policy = newKeyPolicy(kms, req, who, { arn, keySpec: spec, keyUsage: usage, origin: keyOrigin, ...(mrk ? { multiRegion: mrk } : {}) });
  const now = kms.clock();
  const key: KeyRecord = {
    keyId,
    arn,
    createdAt: now,
    description: str(req.Description) ?? '',
    keyUsage: usage,
    keySpec: spec,
    origin: keyOrigin,
    enabled: true,
    policy,
    tags: tags.map((t) => ({ TagKey: t.TagKey, TagValue: t.TagValue })),
    materials: [],
    rotation: { enabled: false, history: [] },
    onDemandRotations: 0,
    ...(mrk ? { multiRegion: mrk } : {}),
  };
  if (keyStore?.xksKeyId !== undefined) {
    // The KMS key's own material is the inner layer of the double encryption (xks-stores.ts).
    key.customKeyStoreId = keyStore.rec.id;
    key.xksKeyId = keyStore.xksKeyId;
    key.materials.push(newSymmetricMaterial(now));
    return { KeyMetadata: kms.metadata(kms.commit(key, {})) };
  }
  if (keyStore) {
    key.origin = 'AWS_CLOUDHSM';
    key.customKeyStoreId = keyStore.rec.id;
    key.materials.push({ id: newMaterialId(), createdAt: now, secret: Buffer.alloc(0) });
    const { undo } = generateHsmKey(kms, keyStore.rec, key);
    try {
      return { KeyMetadata: kms.metadata(kms.commit(key, {})) };
    } catch (e) {
      undo();
      throw e;
    }
  }
  const info = KEY_SPECS[spec];
  if (origin === 'AWS_KMS') {
    if (info.family === 'symmetric') key.materials.push(newSymmetricMaterial(now));
    else if (info.family === 'hmac') key.materials.push({ id: newMaterialId(), createdAt: now, secret: randomBytes(info.hmacBytes!) });
    else {
      const pair = await generateKeyPairFor(spec);
      key.materials.push({ id: newMaterialId(), createdAt: now, secret: pair.privateKey });
      key.publicKey = pair.publicKey;
    }
  }
  const saved = kms.commit(key, {});
  return { KeyMetadata: kms.metadata(saved) };
}

/**
 * A new key (CreateKey, and ReplicateKey in the replica's Region) is authorized by IAM policies
 * alone (Developer Guide, "AWS KMS permissions"), with its properties as condition keys, defaults
 * included ("AWS KMS condition keys"); Tags also need kms:TagResource in an IAM policy (API
 * Reference, CreateKey and ReplicateKey "Required permissions").
 */
export function authorizeNewKey(
  kms: KmsCore,
  who: Requester,
  key: { keySpec: string; keyUsage: string; origin: string; multiRegion: boolean },
  tags: readonly Tag[],
  bypass: unknown,
): void {
  const createKeys = {
    'kms:KeySpec': key.keySpec,
    'kms:KeyUsage': key.keyUsage,
    'kms:KeyOrigin': key.origin,
    'kms:MultiRegion': key.multiRegion,
    'kms:CustomerMasterKeySpec': key.keySpec,
    'kms:CustomerMasterKeyUsage': key.keyUsage,
  };
  const tagKeys = tags.length > 0 ? { 'aws:TagKeys': tags.map((t) => t.TagKey), ...Object.fromEntries(tags.map((t) => [`aws:RequestTag/${t.TagKey}`, t.TagValue])) } : {};
  kms.authorizeIamOnly(who, 'CreateKey', {
    keys: { ...createKeys, ...tagKeys, ...(typeof bypass === 'boolean' ? { 'kms:BypassPolicyLockoutSafetyCheck': bypass } : {}) },
  });
  if (tags.length > 0) kms.authorizeIamOnly(who, 'CreateKey with Tags', { keys: { ...createKeys, ...tagKeys } });
}

/**
 * The key policy of a new key (CreateKey, ReplicateKey): the request's `Policy`, validated and
 * lockout-safety checked (API Reference, CreateKey `BypassPolicyLockoutSafetyCheck`: the new policy
 * must let this caller make a subsequent PutKeyPolicy request on the new key, evaluated as that
 * request would be, with the key's own condition keys and the caller's global keys), else the
 * default key policy.
 */
export function newKeyPolicy(kms: KmsCore, req: Req, who: Requester, key: Pick<KeyRecord, 'arn' | 'keySpec' | 'keyUsage' | 'origin' | 'multiRegion'>): string {
  if (req.Policy === undefined) return defaultKeyPolicy(kms.accountId);
  const policy = String(req.Policy);
  validateKeyPolicy(policy);
  const subsequent = kms.authzRequest(who, 'kms:PutKeyPolicy', key);
  // An unknown aws:TokenIssueTime: the caller must keep access at both ends of its range (core.ts).
  kms.overIssueTimes(who, (at, denyOnly) => {
    if (!denyOnly) assertPolicyLockoutSafe(policy, who.caller, key.arn, req.BypassPolicyLockoutSafetyCheck === true, at(subsequent));
  });
  return policy;
}

export async function describeKey(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const keyIdIn = requireKeyId(req.KeyId);
  const { key, alias } = kms.resolve(keyIdIn, { alias: true }, who);
  kms.authorize(who, 'kms:DescribeKey', key, {}, alias);
  return { KeyMetadata: kms.metadata(key) };
}

export async function listKeys(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  c.range('limit', num(req.Limit), 1, 1000);
  checkMarker(c, req.Marker);
  c.done();
  kms.authorizeIamOnly(who, 'ListKeys');
  // ListKeys lists the caller's own account's keys ("Cross-account use: No"): for a caller of
  // another account, the keys of that account this KMS holds, which are none.
  const foreign = kms.isForeign(who);
  const all = foreign ? [] : [...kms.keys.values()].sort((a, b) => (a.keyId < b.keyId ? -1 : a.keyId > b.keyId ? 1 : 0));
  const scope = { operation: 'ListKeys', scope: foreign ? `account ${who.caller.account}` : '' };
  const page = paginate(all, (k) => k.keyId, num(req.Limit) ?? 100, str(req.Marker), kms.markers, scope);
  return withPage({ Keys: page.items.map((k) => ({ KeyId: k.keyId, KeyArn: k.arn })) }, page);
}

export async function updateKeyDescription(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkKeyId(c, req.KeyId);
  c.required('description', req.Description);
  c.length('description', str(req.Description), 0, 8192);
  c.done();
  const { key } = kms.resolve(String(req.KeyId), { alias: false }, who);
  kms.authorize(who, 'kms:UpdateKeyDescription', key);
  kms.requireNotPendingDeletion(key);
  kms.commit(key, { description: String(req.Description) });
  return {};
}

export async function enableKey(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const { key } = kms.resolve(requireKeyId(req.KeyId), { alias: false }, who);
  kms.authorize(who, 'kms:EnableKey', key);
  const state = kms.stateOf(key);
  if (state === 'PendingDeletion' || state === 'PendingImport' || state === 'PendingReplicaDeletion') throw kms.invalidState(key, state);
  if (!key.enabled) {
    // AWS KMS does not rotate a disabled key (Developer Guide, "Rotating keys"): material that is
    // overdue when the key is re-enabled rotates once, now, and the period restarts from there.
    // Without this, tick() would back-date one rotation per period the key spent disabled.
    const now = kms.clock();
    const due = kms.nextRotation(key);
    if (due !== undefined && due <= now && !isReplica(kms, key)) {
      const m = newSymmetricMaterial(now);
      const saved = kms.commit(key, {
        enabled: true,
        materials: [...key.materials, m],
        rotation: {
          ...key.rotation,
          baseDate: now,
          history: [...key.rotation.history, { materialId: m.id, date: now, type: 'AUTOMATIC' }],
        },
      });
      if (saved.multiRegion) syncReplicas(kms, saved);
    } else {
      kms.commit(key, { enabled: true });
    }
  }
  return {};
}

export async function disableKey(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const { key } = kms.resolve(requireKeyId(req.KeyId), { alias: false }, who);
  kms.authorize(who, 'kms:DisableKey', key);
  const state = kms.stateOf(key);
  if (state === 'PendingDeletion' || state === 'PendingImport' || state === 'PendingReplicaDeletion') throw kms.invalidState(key, state);
  if (key.enabled) kms.commit(key, { enabled: false });
  return {};
}

export async function scheduleKeyDeletion(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkKeyId(c, req.KeyId);
  // The API model allows 1-365; the service accepts 7-30 (Developer Guide, "Deleting KMS keys").
  c.range('pendingWindowInDays', num(req.PendingWindowInDays), 7, 30);
  c.done();
  const { key } = kms.resolve(String(req.KeyId), { alias: false }, who);
  const days = num(req.PendingWindowInDays) ?? 30;
  kms.authorize(who, 'kms:ScheduleKeyDeletion', key, {
    keys: { 'kms:ScheduleKeyDeletionPendingWindowInDays': String(days) },
  });
  kms.requireNotPendingDeletion(key);
  if (key.multiRegion && !isReplica(kms, key) && liveReplicas(kms, key).length > 0) {
    // "KMS will not delete a multi-Region primary key with existing replica keys": it waits in
    // PendingReplicaDeletion, and its waiting period starts when the last replica is deleted; the
    // response then has no DeletionDate (API Reference, ScheduleKeyDeletion).
    const saved = kms.commit(key, { pendingReplicaDeletion: true, pendingWindowInDays: days });
    return { KeyId: saved.arn, KeyState: 'PendingReplicaDeletion', PendingWindowInDays: days };
  }
  const deletionDate = kms.clock() + days * DAY_MS;
  const saved = kms.commit(key, { deletionDate, pendingWindowInDays: days });
  return {
    KeyId: saved.arn,
    DeletionDate: new Date(deletionDate),
    KeyState: 'PendingDeletion',
    PendingWindowInDays: days,
  };
}

export async function cancelKeyDeletion(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const { key } = kms.resolve(requireKeyId(req.KeyId), { alias: false }, who);
  kms.authorize(who, 'kms:CancelKeyDeletion', key);
  if (key.deletionDate === undefined && key.pendingReplicaDeletion !== true) throw err('KMSInvalidStateException', `${key.arn} is not pending deletion.`);
  // AWS: a key whose deletion is cancelled is Disabled (or PendingImport without material).
  kms.commit(key, { deletionDate: undefined, pendingReplicaDeletion: undefined, pendingWindowInDays: undefined, enabled: false });
  return { KeyId: key.arn };
}
