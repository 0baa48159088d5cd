import { randomBytes } from 'node:crypto';
import type { Requester } from '../request-context.js';
import type { KmsCore } from '../core.js';
import { Checks, validationError } from '../validate.js';
import { newKeyStoreId, registryOf, type CustomKeyStoreRecord, type XksStoreRecord } from '../custom-key-stores.js';
import {
  VPC_SERVICE_NAME,
  XKS_ACCESS_KEY_ID,
  XKS_KEY_ID,
  XKS_PATH,
  XKS_SECRET,
  checkExternalKey,
  checkProxyHealth,
  endpointProblem,
  type XksStoreFields,
} from '../xks-stores.js';
import { err, str, type Req } from './util.js';

/**
 * The external key store parts of CreateCustomKeyStore, UpdateCustomKeyStore,
 * DescribeCustomKeyStores and CreateKey (API Reference; Developer Guide, "External key stores").
 * The CloudHSM parts and the shared rules (names, ids, IAM-only permissions, connection states)
 * are in custom-key-stores.ts.
 */

const XKS_MEMBERS = ['XksProxyUriEndpoint', 'XksProxyUriPath', 'XksProxyAuthenticationCredential', 'XksProxyConnectivity', 'XksProxyVpcEndpointServiceName'] as const;

export function hasXksMembers(req: Req): boolean {
  return XKS_MEMBERS.some((m) => req[m] !== undefined);
}

/** Member constraints of the XKS request members (API Reference, CreateCustomKeyStore). */
export function checkXksMembers(c: Checks, req: Req): void {
  c.length('xksProxyUriEndpoint', str(req.XksProxyUriEndpoint), 10, 128);
  const path = str(req.XksProxyUriPath);
  c.length('xksProxyUriPath', path, 10, 128);
  c.pattern('xksProxyUriPath', path, XKS_PATH, '^(/[a-zA-Z0-9\\/_-]+/kms/xks/v\\d{1,2})$|^(/kms/xks/v\\d{1,2})$');
  const vpc = str(req.XksProxyVpcEndpointServiceName);
  c.length('xksProxyVpcEndpointServiceName', vpc, 20, 64);
  c.pattern('xksProxyVpcEndpointServiceName', vpc, VPC_SERVICE_NAME, '^com\\.amazonaws\\.vpce\\.([a-z]+-){2,3}\\d+\\.vpce-svc-[0-9a-z]{17}$');
  c.oneOf('xksProxyConnectivity', str(req.XksProxyConnectivity), ['PUBLIC_ENDPOINT', 'VPC_ENDPOINT_SERVICE']);
  const cred = req.XksProxyAuthenticationCredential as Record<string, unknown> | undefined;
  if (cred !== undefined) {
    // XksProxyAuthenticationCredentialType: both members required. The secret is never echoed
    // (validate.ts shows `[SENSITIVE]` for members named *secret*).
    if (c.required('xksProxyAuthenticationCredential.accessKeyId', cred.AccessKeyId)) {
      c.length('xksProxyAuthenticationCredential.accessKeyId', str(cred.AccessKeyId), 20, 30);
      c.pattern('xksProxyAuthenticationCredential.accessKeyId', str(cred.AccessKeyId), XKS_ACCESS_KEY_ID, '^[A-Z2-7]+$');
    }
    if (c.required('xksProxyAuthenticationCredential.rawSecretAccessKey', cred.RawSecretAccessKey)) {
      c.length('xksProxyAuthenticationCredential.rawSecretAccessKey', str(cred.RawSecretAccessKey), 43, 64);
      c.pattern('xksProxyAuthenticationCredential.rawSecretAccessKey', str(cred.RawSecretAccessKey), XKS_SECRET, '^[a-zA-Z0-9\\/+=]+$');
    }
  }
  const endpoint = str(req.XksProxyUriEndpoint);
  if (endpoint !== undefined && endpoint.length >= 10 && endpoint.length <= 128) {
    const problem = endpointProblem(endpoint);
    if (problem) c.violation('xksProxyUriEndpoint', endpoint, `Member ${problem}`);
  }
}

/**
 * The uniqueness rules of an external key store's proxy address in the account and Region (API
 * Reference, CreateCustomKeyStore XksProxyUriEndpoint/XksProxyUriPath): endpoint + path unique
 * (XksProxyUriInUseException); a VPC_ENDPOINT_SERVICE store's endpoint (its private DNS name)
 * is its own, shared with no other store of either kind (XksProxyUriEndpointInUseException).
 */
function requireAddressFree(kms: KmsCore, f: XksStoreFields, except?: string): void {
  for (const r of registryOf(kms).records.values()) {
    if (r.id === except || r.type !== 'EXTERNAL_KEY_STORE' || r.region !== kms.region) continue;
    if (r.xks.endpoint === f.endpoint && r.xks.path === f.path) {
      throw err('XksProxyUriInUseException', `The proxy URI ${f.endpoint}${f.path} is already used by external key store ${r.id}.`);
    }
    if (r.xks.endpoint === f.endpoint && (r.xks.connectivity === 'VPC_ENDPOINT_SERVICE' || f.connectivity === 'VPC_ENDPOINT_SERVICE')) {
      throw err('XksProxyUriEndpointInUseException', `The proxy URI endpoint ${f.endpoint} is already used by external key store ${r.id}.`);
    }
  }
}

/**
 * VPC endpoint service connectivity cannot be modelled: the local KMS has no VPC and no
 * interface endpoint to create. AWS answers XksProxyVpcEndpointServiceNotFoundException when it
 * cannot find the named service, which is the truth here, so a store is never created (or
 * updated) with VPC_ENDPOINT_SERVICE connectivity; the member rules before it are still checked.
 */
function refuseVpc(name: string | undefined): never {
  throw err(
    'XksProxyVpcEndpointServiceNotFoundException',
    `VPC endpoint service ${name ?? ''} was not found: the local KMS runs outside any VPC and supports PUBLIC_ENDPOINT connectivity only.`,
  );
}

function checkConnectivity(f: XksStoreFields): void {
  if (f.connectivity === 'VPC_ENDPOINT_SERVICE' && f.vpcEndpointServiceName === undefined) {
    throw validationError('XksProxyVpcEndpointServiceName is required when XksProxyConnectivity is VPC_ENDPOINT_SERVICE.');
  }
  if (f.connectivity === 'PUBLIC_ENDPOINT' && f.vpcEndpointServiceName !== undefined) {
    throw validationError('XksProxyVpcEndpointServiceName applies only when XksProxyConnectivity is VPC_ENDPOINT_SERVICE.');
  }
}

/** CreateCustomKeyStore with CustomKeyStoreType EXTERNAL_KEY_STORE; member checks and IAM authorization have run. */
export async function createXksStore(kms: KmsCore, req: Req, requireNameFree: (name: string) => void): Promise<XksStoreRecord> {
  for (const m of ['CloudHsmClusterId', 'TrustAnchorCertificate', 'KeyStorePassword'] as const) {
    if (req[m] !== undefined) throw validationError(`${m} does not apply to a custom key store of type EXTERNAL_KEY_STORE.`);
  }
  // "To create an external key store, specify ... XksProxyUriEndpoint, XksProxyUriPath,
  // XksProxyAuthenticationCredential and XksProxyConnectivity" (API Reference, CreateCustomKeyStore).
  for (const m of ['XksProxyUriEndpoint', 'XksProxyUriPath', 'XksProxyAuthenticationCredential', 'XksProxyConnectivity'] as const) {
    if (req[m] === undefined) throw validationError(`${m} is required for a custom key store of type EXTERNAL_KEY_STORE.`);
  }
  const cred = req.XksProxyAuthenticationCredential as { AccessKeyId: string; RawSecretAccessKey: string };
  const f: XksStoreFields = {
    endpoint: String(req.XksProxyUriEndpoint),
    path: String(req.XksProxyUriPath),
    accessKeyId: cred.AccessKeyId,
    connectivity: String(req.XksProxyConnectivity) as XksStoreFields['connectivity'],
    ...(req.XksProxyVpcEndpointServiceName !== undefined ? { vpcEndpointServiceName: String(req.XksProxyVpcEndpointServiceName) } : {}),
  };
  checkConnectivity(f);
  const name = String(req.CustomKeyStoreName);
  requireNameFree(name);
  requireAddressFree(kms, f);
  if (f.connectivity === 'VPC_ENDPOINT_SERVICE') refuseVpc(f.vpcEndpointServiceName);
  const rec: XksStoreRecord = {
    id: newKeyStoreId(randomBytes(16)),
    name,
    region: kms.region,
    type: 'EXTERNAL_KEY_STORE',
    xks: f,
    password: cred.RawSecretAccessKey,
    createdAt: kms.now(),
    connect: false,
  };
  // The proxy must answer GetHealthStatus with these settings before the store exists
  // (API Reference, XksProxyUriUnreachableException: "The path must be reachable before you
  // create the external key store or update its settings").
  await checkProxyHealth(rec, registryOf(kms).xks, 'CreateCustomKeyStore');
  // Again: a concurrent CreateCustomKeyStore may have taken the name or the proxy URI while the
  // proxy was asked (API Reference, CreateCustomKeyStore: CustomKeyStoreNameInUseException,
  // XksProxyUriInUseException).
  requireNameFree(name);
  requireAddressFree(kms, f);
  return rec;
}

/**
 * UpdateCustomKeyStore of an external key store: the new record. The name, the authentication
 * credential and the URI path can change while connected; the endpoint, the connectivity and
 * the VPC endpoint service name only while DISCONNECTED (Developer Guide, "Edit external key
 * store properties"). Changed proxy settings are tried with GetHealthStatus first.
 */
export async function updateXksStore(kms: KmsCore, rec: XksStoreRecord, req: Req, state: string): Promise<XksStoreRecord> {
  for (const m of ['CloudHsmClusterId', 'KeyStorePassword'] as const) {
    if (req[m] !== undefined) throw err('UnsupportedOperationException', `${m} does not apply to an external key store.`);
  }
  const needsDisconnect = ['XksProxyUriEndpoint', 'XksProxyConnectivity', 'XksProxyVpcEndpointServiceName'].filter((m) => req[m] !== undefined);
  if (needsDisconnect.length > 0 && state !== 'DISCONNECTED') {
    throw err('CustomKeyStoreInvalidStateException', `Custom key store ${rec.id} must be DISCONNECTED to change ${needsDisconnect.join(', ')}; it is ${state}.`);
  }
  const cred = req.XksProxyAuthenticationCredential as { AccessKeyId: string; RawSecretAccessKey: string } | undefined;
  const connectivity = (str(req.XksProxyConnectivity) ?? rec.xks.connectivity) as XksStoreFields['connectivity'];
  const vpc = str(req.XksProxyVpcEndpointServiceName) ?? (connectivity === 'VPC_ENDPOINT_SERVICE' ? rec.xks.vpcEndpointServiceName : undefined);
  const f: XksStoreFields = {
    endpoint: str(req.XksProxyUriEndpoint) ?? rec.xks.endpoint,
    path: str(req.XksProxyUriPath) ?? rec.xks.path,
    accessKeyId: cred?.AccessKeyId ?? rec.xks.accessKeyId,
    connectivity,
    ...(vpc !== undefined ? { vpcEndpointServiceName: vpc } : {}),
  };
  checkConnectivity(f);
  requireAddressFree(kms, f, rec.id);
  if (f.connectivity === 'VPC_ENDPOINT_SERVICE') refuseVpc(f.vpcEndpointServiceName);
  const next: XksStoreRecord = { ...rec, ...(str(req.NewCustomKeyStoreName) !== undefined ? { name: String(req.NewCustomKeyStoreName) } : {}), xks: f, password: cred?.RawSecretAccessKey ?? rec.password };
  const proxyChanged = cred !== undefined || f.endpoint !== rec.xks.endpoint || f.path !== rec.xks.path;
  if (proxyChanged) {
    await checkProxyHealth(next, registryOf(kms).xks, 'UpdateCustomKeyStore');
    // Again after the proxy answered: the store may have been connected meanwhile (the endpoint
    // changes only while DISCONNECTED, Developer Guide "Edit external key store properties"), or
    // another store may have taken the proxy URI (XksProxyUriInUseException).
    const now = registryOf(kms).connections.get(rec.id)?.state ?? 'DISCONNECTED';
    if (needsDisconnect.length > 0 && now !== 'DISCONNECTED') {
      throw err('CustomKeyStoreInvalidStateException', `Custom key store ${rec.id} must be DISCONNECTED to change ${needsDisconnect.join(', ')}; it is ${now}.`);
    }
    requireAddressFree(kms, f, rec.id);
  }
  return next;
}

/** DescribeCustomKeyStores members of an external key store: XksProxyConfiguration, never the secret. */
export function describeXks(r: XksStoreRecord): Record<string, unknown> {
  return {
    XksProxyConfiguration: {
      Connectivity: r.xks.connectivity,
      AccessKeyId: r.xks.accessKeyId,
      UriEndpoint: r.xks.endpoint,
      UriPath: r.xks.path,
      ...(r.xks.vpcEndpointServiceName !== undefined ? { VpcEndpointServiceName: r.xks.vpcEndpointServiceName } : {}),
    },
  };
}

/**
 * CreateKey with Origin EXTERNAL_KEY_STORE (API Reference, CreateKey): CustomKeyStoreId of a
 * CONNECTED external key store and an XksKeyId no other KMS key of that store uses
 * (XksKeyAlreadyInUseException; keys pending deletion count), then the proxy's GetKeyMetadata.
 */
export async function checkXksKeyRequest(kms: KmsCore, req: Req, who: Requester, rec: CustomKeyStoreRecord): Promise<string> {
  const xksKeyId = str(req.XksKeyId);
  if (rec.type !== 'EXTERNAL_KEY_STORE') {
    throw err('UnsupportedOperationException', `Custom key store ${rec.id} is a CloudHSM key store; Origin EXTERNAL_KEY_STORE needs an external key store.`);
  }
  if (xksKeyId === undefined) throw validationError('XksKeyId is required when Origin is EXTERNAL_KEY_STORE.');
  const state = registryOf(kms).connection(rec.id).state;
  if (state !== 'CONNECTED') throw err('CustomKeyStoreInvalidStateException', `Custom key store ${rec.id} is ${state}; CreateKey needs it CONNECTED.`);
  const requireUnused = () => {
    for (const k of kms.keys.values()) {
      if (k.customKeyStoreId === rec.id && k.xksKeyId === xksKeyId) {
        throw err('XksKeyAlreadyInUseException', `External key ${xksKeyId} is already associated with KMS key ${k.arn} in custom key store ${rec.id}.`);
      }
    }
  };
  requireUnused();
  await checkExternalKey(rec, registryOf(kms).xks, xksKeyId, who);
  // Again: a concurrent CreateKey may have taken it while the proxy was asked.
  requireUnused();
  // And the store may have been disconnected or deleted meanwhile: CreateKey needs it to exist
  // and be CONNECTED (API Reference, CreateKey: CustomKeyStoreNotFoundException,
  // CustomKeyStoreInvalidStateException).
  if (registryOf(kms).records.get(rec.id) === undefined) throw err('CustomKeyStoreNotFoundException', `Custom key store ${rec.id} does not exist.`);
  const after = registryOf(kms).connection(rec.id).state;
  if (after !== 'CONNECTED') throw err('CustomKeyStoreInvalidStateException', `Custom key store ${rec.id} is ${after}; CreateKey needs it CONNECTED.`);
  return xksKeyId;
}

export function checkXksKeyId(c: Checks, v: unknown): void {
  c.length('xksKeyId', str(v), 1, 128);
  c.pattern('xksKeyId', str(v), XKS_KEY_ID, '^[a-zA-Z0-9-_.]+$');
}
