import { randomBytes } from 'node:crypto';
import type { Requester } from '../request-context.js';
import type { KmsCore } from '../core.js';
import type { KeyRecord } from '../model.js';
import { Checks, validationError } from '../validate.js';
import { paginate } from '../paging.js';
import { TokenError, tokenKeyRef } from '../pkcs11.js';
import {
  CLUSTER_ID,
  ensureBinding,
  newKeyStoreId,
  registryOf,
  sameToken,
  trustAnchorMatches,
  type CloudHsmStoreRecord,
  type CustomKeyStoreRecord,
} from '../custom-key-stores.js';
import { checkXksKeyId, checkXksKeyRequest, checkXksMembers, createXksStore, describeXks, hasXksMembers, updateXksStore } from './xks-key-stores.js';
import { checkMarker, err, num, str, withPage, type KmsResponse, type Req } from './util.js';

/**
 * Custom key store operations (API Reference: CreateCustomKeyStore, ConnectCustomKeyStore,
 * DisconnectCustomKeyStore, DescribeCustomKeyStores, UpdateCustomKeyStore, DeleteCustomKeyStore)
 * for CloudHSM key stores backed by a PKCS#11 token (custom-key-stores.ts) and external key stores
 * reached through an XKS proxy (xks-key-stores.ts, xks-stores.ts).
 *
 * Connecting is synchronous here: AWS answers ConnectCustomKeyStore at once and connects in the
 * background (CONNECTING, then CONNECTED or FAILED); the local KMS connects before it answers, so
 * a DescribeCustomKeyStores after it already shows the outcome.
 */

function checkStoreId(c: Checks, v: unknown, required = true): void {
  if (required) c.required('customKeyStoreId', v);
  c.length('customKeyStoreId', str(v), 1, 64);
}

function checkPassword(c: Checks, v: unknown): void {
  // KeyStorePasswordType: 7-32 characters (sensitive: never echoed).
  c.length('keyStorePassword', str(v), 7, 32);
}

function checkCluster(c: Checks, v: unknown): void {
  c.length('cloudHsmClusterId', str(v), 19, 24);
}

/**
 * The caller's key store `id`. Key stores are not shared across accounts ("Cross-account use: No"):
 * for a caller of another account the id names a key store of its own account, which is not here.
 */
function find(kms: KmsCore, id: string, who: Requester): CustomKeyStoreRecord {
  const rec = registryOf(kms).records.get(id);
  if (!rec || rec.region !== kms.region || kms.isForeign(who)) throw err('CustomKeyStoreNotFoundException', `Custom key store ${id} does not exist.`);
  return rec;
}

/**
 * What Connect, Disconnect and Delete start with: a well-formed CustomKeyStoreId, the IAM-only
 * permission, then the caller's key store and the registry that holds its connection.
 */
function storeOperand(kms: KmsCore, req: Req, who: Requester, operation: string): { rec: CustomKeyStoreRecord; reg: ReturnType<typeof registryOf> } {
  const c = new Checks();
  checkStoreId(c, req.CustomKeyStoreId);
  c.done();
  kms.authorizeIamOnly(who, operation);
  return { rec: find(kms, String(req.CustomKeyStoreId), who), reg: registryOf(kms) };
}

function requireCluster(kms: KmsCore, clusterId: string) {
  const hsm = registryOf(kms).hsms.get(clusterId);
  if (!hsm || !CLUSTER_ID.test(clusterId)) {
    throw err('CloudHsmClusterNotFoundException', `CloudHSM cluster ${clusterId} was not found (the local KMS knows the clusters it was started with: --hsm).`);
  }
  return hsm;
}

/** The cluster (token) is already some other key store's: CloudHsmClusterInUseException. */
function requireClusterFree(kms: KmsCore, clusterId: string, except?: string): void {
  const reg = registryOf(kms);
  const hsm = reg.hsms.get(clusterId)!;
  for (const r of reg.records.values()) {
    if (r.id === except || r.type !== 'AWS_CLOUDHSM') continue;
    const other = reg.hsms.get(r.clusterId);
    if (r.clusterId === clusterId || (other && sameToken(other, hsm))) {
      throw err('CloudHsmClusterInUseException', `CloudHSM cluster ${clusterId} is already associated with custom key store ${r.id}.`);
    }
  }
}

function requireNameFree(kms: KmsCore, name: string, except?: string): void {
  // "The name must be unique in your AWS account and Region" (API Reference, CreateCustomKeyStore).
  for (const r of registryOf(kms).records.values()) {
    if (r.id !== except && r.region === kms.region && r.name === name) throw err('CustomKeyStoreNameInUseException', `Custom key store name ${name} is already in use.`);
  }
}

async function requireBinding(): Promise<void> {
  try {
    await ensureBinding();
  } catch (e) {
    throw err('CloudHsmClusterInvalidConfigurationException', (e as Error).message);
  }
}

export async function createCustomKeyStore(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  c.required('customKeyStoreName', req.CustomKeyStoreName);
  c.length('customKeyStoreName', str(req.CustomKeyStoreName), 1, 256);
  checkCluster(c, req.CloudHsmClusterId);
  c.length('trustAnchorCertificate', str(req.TrustAnchorCertificate), 1, 5000);
  checkPassword(c, req.KeyStorePassword);
  c.oneOf('customKeyStoreType', str(req.CustomKeyStoreType), ['AWS_CLOUDHSM', 'EXTERNAL_KEY_STORE']);
  checkXksMembers(c, req);
  c.done();
  kms.authorizeIamOnly(who, 'CreateCustomKeyStore');
  if (kms.isForeign(who)) throw err('UnsupportedOperationException', `The local KMS serves account ${kms.accountId} only.`);
  if (str(req.CustomKeyStoreType) === 'EXTERNAL_KEY_STORE') {
    const rec = await createXksStore(kms, req, (name) => requireNameFree(kms, name));
    // Another request may have taken the name or the address while the proxy was asked.
    return { CustomKeyStoreId: commitNew(kms, rec) };
  }
  if (hasXksMembers(req)) throw validationError('XksProxy* members apply only to a custom key store of type EXTERNAL_KEY_STORE.');
  // "To create a CloudHSM key store, specify the CustomKeyStoreName, CloudHsmClusterId,
  // KeyStorePassword, and TrustAnchorCertificate" (API Reference, CreateCustomKeyStore).
  for (const [member, v] of [['CloudHsmClusterId', req.CloudHsmClusterId], ['TrustAnchorCertificate', req.TrustAnchorCertificate], ['KeyStorePassword', req.KeyStorePassword]] as const) {
    if (v === undefined) throw validationError(`${member} is required for a custom key store of type AWS_CLOUDHSM.`);
  }
  const name = String(req.CustomKeyStoreName);
  const clusterId = String(req.CloudHsmClusterId);
  requireNameFree(kms, name);
  const hsm = requireCluster(kms, clusterId);
  requireClusterFree(kms, clusterId);
  if (!trustAnchorMatches(hsm, String(req.TrustAnchorCertificate))) {
    throw err('IncorrectTrustAnchorException', `The trust anchor certificate is not the trust anchor of CloudHSM cluster ${clusterId}.`);
  }
  await requireBinding();
  const rec: CustomKeyStoreRecord = {
    id: newKeyStoreId(randomBytes(16)),
    name,
    region: kms.region,
    type: 'AWS_CLOUDHSM',
    clusterId,
    trustAnchor: String(req.TrustAnchorCertificate),
    password: String(req.KeyStorePassword),
    createdAt: kms.now(),
    connect: false,
  };
  return { CustomKeyStoreId: commitNew(kms, rec) };
}

/** Adds a new key store to the registry and persists it (undone when the store cannot write). */
function commitNew(kms: KmsCore, rec: CustomKeyStoreRecord): string {
  registryOf(kms).commit(rec.id, rec);
  return rec.id;
}

export async function connectCustomKeyStore(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const { rec, reg } = storeOperand(kms, req, who, 'ConnectCustomKeyStore');
  const conn = reg.connection(rec.id);
  if (conn.state === 'FAILED' || conn.state === 'DISCONNECTING') {
    throw err('CustomKeyStoreInvalidStateException', `Custom key store ${rec.id} is ${conn.state}; disconnect it (DisconnectCustomKeyStore) before connecting it again.`);
  }
  if (conn.state === 'CONNECTED' || conn.state === 'CONNECTING') return {};
  // CONNECTING before the first await: a concurrent Connect returns at once, and a concurrent
  // Disconnect is valid (and wins: reg.connect then closes the session it opened).
  conn.state = 'CONNECTING';
  try {
    // The PKCS#11 binding is for CloudHSM key stores only; an external key store needs none.
    if (rec.type === 'AWS_CLOUDHSM') await requireBinding();
    if (!rec.connect) {
      reg.records.set(rec.id, { ...rec, connect: true });
      reg.save();
    }
  } catch (e) {
    if (conn.state === 'CONNECTING') conn.state = 'DISCONNECTED';
    throw e;
  }
  if (conn.state === 'CONNECTING') await reg.connect(reg.records.get(rec.id)!);
  return {};
}

export async function disconnectCustomKeyStore(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const { rec, reg } = storeOperand(kms, req, who, 'DisconnectCustomKeyStore');
  const conn = reg.connection(rec.id);
  if (conn.state === 'DISCONNECTED' || conn.state === 'DISCONNECTING') {
    throw err('CustomKeyStoreInvalidStateException', `Custom key store ${rec.id} is ${conn.state}.`);
  }
  if (rec.connect) {
    reg.records.set(rec.id, { ...rec, connect: false });
    reg.save();
  }
  reg.disconnect(rec.id);
  return {};
}

export async function describeCustomKeyStores(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkStoreId(c, req.CustomKeyStoreId, false);
  c.length('customKeyStoreName', str(req.CustomKeyStoreName), 1, 256);
  c.range('limit', num(req.Limit), 1, 1000);
  checkMarker(c, req.Marker);
  c.done();
  kms.authorizeIamOnly(who, 'DescribeCustomKeyStores');
  const reg = registryOf(kms);
  let all = kms.isForeign(who) ? [] : [...reg.records.values()].filter((r) => r.region === kms.region);
  const id = str(req.CustomKeyStoreId);
  const name = str(req.CustomKeyStoreName);
  // "Enter only one of the custom key store ID or the name" is the console's rule; the API
  // answers CustomKeyStoreNotFoundException when the one named does not exist.
  if (id !== undefined) all = all.filter((r) => r.id === id);
  if (name !== undefined) all = all.filter((r) => r.name === name);
  if ((id !== undefined || name !== undefined) && all.length === 0) {
    throw err('CustomKeyStoreNotFoundException', `Custom key store ${id ?? name} does not exist.`);
  }
  all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const page = paginate(all, (r) => r.id, num(req.Limit) ?? 100, str(req.Marker), kms.markers, { operation: 'DescribeCustomKeyStores', scope: '' });
  return withPage(
    {
      CustomKeyStores: page.items.map((r) => {
        const conn = reg.connection(r.id);
        return {
          CustomKeyStoreId: r.id,
          CustomKeyStoreName: r.name,
          ...(r.type === 'AWS_CLOUDHSM' ? { CloudHsmClusterId: r.clusterId, TrustAnchorCertificate: r.trustAnchor } : describeXks(r)),
          ConnectionState: conn.state,
          ...(conn.state === 'FAILED' && conn.errorCode ? { ConnectionErrorCode: conn.errorCode } : {}),
          CreationDate: new Date(r.createdAt),
          CustomKeyStoreType: r.type,
        };
      }),
    },
    page,
  );
}

export async function updateCustomKeyStore(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkStoreId(c, req.CustomKeyStoreId);
  c.length('newCustomKeyStoreName', str(req.NewCustomKeyStoreName), 1, 256);
  checkPassword(c, req.KeyStorePassword);
  checkCluster(c, req.CloudHsmClusterId);
  checkXksMembers(c, req);
  c.done();
  kms.authorizeIamOnly(who, 'UpdateCustomKeyStore');
  const found = find(kms, String(req.CustomKeyStoreId), who);
  const reg = registryOf(kms);
  const state = reg.connection(found.id).state;
  const newName = str(req.NewCustomKeyStoreName);
  if (newName !== undefined) requireNameFree(kms, newName, found.id);
  if (found.type === 'EXTERNAL_KEY_STORE') {
    const next = await updateXksStore(kms, found, req, state);
    // The store may have been deleted while its proxy was asked: committing would bring it back
    // (API Reference, UpdateCustomKeyStore: CustomKeyStoreNotFoundException).
    if (reg.records.get(found.id) === undefined) throw err('CustomKeyStoreNotFoundException', `Custom key store ${found.id} does not exist.`);
    if (newName !== undefined) requireNameFree(kms, newName, found.id);
    return commitUpdate(kms, found, next);
  }
  if (hasXksMembers(req)) throw err('UnsupportedOperationException', 'External key store settings do not apply to a CloudHSM key store.');
  const rec: CloudHsmStoreRecord = found;
  const newCluster = str(req.CloudHsmClusterId);
  const newPassword = str(req.KeyStorePassword);
  // "you can change the name while connected; to change the password or the cluster, disconnect
  // first" (API Reference, UpdateCustomKeyStore).
  if ((newCluster !== undefined || newPassword !== undefined) && state !== 'DISCONNECTED') {
    throw err('CustomKeyStoreInvalidStateException', `Custom key store ${rec.id} must be DISCONNECTED to change its password or cluster; it is ${state}.`);
  }
  if (newCluster !== undefined && newCluster !== rec.clusterId) {
    const hsm = requireCluster(kms, newCluster);
    const old = reg.hsms.get(rec.clusterId);
    // A new cluster must share the original's backup history: here, be the same token.
    if (!old || !sameToken(old, hsm)) {
      throw err('CloudHsmClusterNotRelatedException', `CloudHSM cluster ${newCluster} is not related to ${rec.clusterId}.`);
    }
  }
  return commitUpdate(kms, rec, {
    ...rec,
    ...(newName !== undefined ? { name: newName } : {}),
    ...(newCluster !== undefined ? { clusterId: newCluster } : {}),
    ...(newPassword !== undefined ? { password: newPassword } : {}),
  });
}

function commitUpdate(kms: KmsCore, rec: CustomKeyStoreRecord, next: CustomKeyStoreRecord): KmsResponse {
  registryOf(kms).commit(rec.id, next);
  return {};
}

export async function deleteCustomKeyStore(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const { rec, reg } = storeOperand(kms, req, who, 'DeleteCustomKeyStore');
  const state = reg.connection(rec.id).state;
  if (state !== 'DISCONNECTED') {
    throw err('CustomKeyStoreInvalidStateException', `Custom key store ${rec.id} must be DISCONNECTED to be deleted; it is ${state}.`);
  }
  // Keys pending deletion count too: "the custom key store contains KMS keys" until they are deleted.
  for (const k of kms.keys.values()) {
    if (k.customKeyStoreId === rec.id) throw err('CustomKeyStoreHasCMKsException', `Custom key store ${rec.id} contains KMS keys; delete them first (ScheduleKeyDeletion).`);
  }
  reg.commit(rec.id, undefined);
  reg.connections.delete(rec.id);
  return {};
}

/**
 * CreateKey in a custom key store: symmetric encryption keys only, single-Region.
 * - Origin AWS_CLOUDHSM + CustomKeyStoreId of a CONNECTED CloudHSM key store: the AES-256 key is
 *   generated in the token (generateHsmKey); the record holds no key material (its one material
 *   entry has an empty secret: it only gives the ciphertext blob a KeyMaterialId).
 * - Origin EXTERNAL_KEY_STORE + CustomKeyStoreId of a CONNECTED external key store + XksKeyId
 *   (xks-key-stores.ts): the record holds the inner layer's key material and the XksKeyId.
 */
export async function checkKeyStoreRequest(kms: KmsCore, req: Req, who: Requester, spec: string, usage: string, origin: string): Promise<{ rec: CustomKeyStoreRecord; xksKeyId?: string } | undefined> {
  const c = new Checks();
  checkXksKeyId(c, req.XksKeyId);
  c.done();
  const storeId = str(req.CustomKeyStoreId);
  const inStore = origin === 'AWS_CLOUDHSM' || origin === 'EXTERNAL_KEY_STORE';
  if (storeId === undefined && !inStore) {
    if (req.XksKeyId !== undefined) throw validationError('XksKeyId applies only when Origin is EXTERNAL_KEY_STORE.');
    return undefined;
  }
  if (storeId === undefined) throw validationError(`CustomKeyStoreId is required when Origin is ${origin}.`);
  if (!inStore) throw validationError(`Origin must be AWS_CLOUDHSM or EXTERNAL_KEY_STORE to create a KMS key in custom key store ${storeId}; it is ${origin}.`);
  const rec = find(kms, storeId, who);
  if (spec !== 'SYMMETRIC_DEFAULT' || usage !== 'ENCRYPT_DECRYPT') {
    throw err('UnsupportedOperationException', `KMS keys in a custom key store must be symmetric encryption keys (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT), not ${spec} ${usage}.`);
  }
  if (req.MultiRegion === true) throw err('UnsupportedOperationException', 'Multi-Region keys cannot be created in a custom key store.');
  if (origin === 'EXTERNAL_KEY_STORE') return { rec, xksKeyId: await checkXksKeyRequest(kms, req, who, rec) };
  if (req.XksKeyId !== undefined) throw validationError('XksKeyId applies only when Origin is EXTERNAL_KEY_STORE.');
  if (rec.type !== 'AWS_CLOUDHSM') {
    throw err('UnsupportedOperationException', `Custom key store ${rec.id} is an external key store; Origin AWS_CLOUDHSM needs a CloudHSM key store.`);
  }
  const state = registryOf(kms).connection(rec.id).state;
  if (state !== 'CONNECTED') {
    throw err('CustomKeyStoreInvalidStateException', `Custom key store ${rec.id} is ${state}; CreateKey needs it CONNECTED.`);
  }
  return { rec };
}

/** Generates the key in the token; the caller commits the record (and calls undo if that fails). */
export function generateHsmKey(kms: KmsCore, rec: CustomKeyStoreRecord, key: KeyRecord): { undo: () => void } {
  const session = registryOf(kms).connection(rec.id).session!;
  const ref = tokenKeyRef(key.keyId);
  try {
    session.generateAesKey(ref);
  } catch (e) {
    if (e instanceof TokenError) throw err('KMSInternalException', `The CloudHSM key store's token could not generate the key: ${e.ckr}.`);
    throw e;
  }
  return { undo: () => session.destroy(ref) };
}
