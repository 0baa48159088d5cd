import { randomUUID } from 'node:crypto';
import type { KmsCore } from './core.js';
import type { KeyRecord, MaterialRecord } from './model.js';
import type { Requester } from './request-context.js';
import { blobHeader, openBlob, parseBlob, sealBlob } from './blob.js';
import { KmsServiceError } from './errors.js';
import {
  XksProxyFailure,
  getHealthStatus,
  getKeyMetadata,
  xksDecrypt,
  xksEncrypt,
  type XksCiphertext,
  type XksProxyTarget,
  type XksRequestMetadata,
  type XksTransport,
} from './xks-client.js';

/**
 * External key stores of the local KMS (Developer Guide, "External key stores"; API Reference,
 * CreateCustomKeyStore with CustomKeyStoreType EXTERNAL_KEY_STORE; XKS Proxy API Specification).
 * The store's record keeps the proxy's address and SigV4 credential; its secret access key is
 * the record's `password`, sealed at rest like a CloudHSM key store's password (store.ts).
 *
 * Keys are doubly encrypted as AWS describes ("How external key stores work", double encryption):
 * the data is first encrypted with key material the local KMS holds for the KMS key (blob.ts,
 * the key's own material, sealed at rest like any key's), then that ciphertext is encrypted by
 * the external key through the proxy's Encrypt. Neither the proxy's key nor the local material
 * alone opens a ciphertext.
 */

export interface XksStoreFields {
  endpoint: string;
  path: string;
  accessKeyId: string;
  connectivity: 'PUBLIC_ENDPOINT' | 'VPC_ENDPOINT_SERVICE';
  vpcEndpointServiceName?: string;
}

/** The record members an external key store needs from custom-key-stores.ts's record. */
export interface XksStoreLike {
  id: string;
  region: string;
  password: string;
  xks: XksStoreFields;
}

/** AWS's 250 ms ("If KMS does not receive a response from the XKS proxy ... within 250ms, KMS will time out"; spec, each API's KMS considerations). */
export const DEFAULT_XKS_TIMEOUT_MS = 250;

/** XksProxyUriPath (API Reference): 10-128 characters, `[/prefix]/kms/xks/v1` (v + 1-2 digits). */
export const XKS_PATH = /^(?:\/[a-zA-Z0-9/_-]+\/kms\/xks\/v\d{1,2}|\/kms\/xks\/v\d{1,2})$/;
/** XksProxyAuthenticationCredentialType: AccessKeyId 20-30 of [A-Z2-7]; RawSecretAccessKey 43-64 of [a-zA-Z0-9/+=]. */
export const XKS_ACCESS_KEY_ID = /^[A-Z2-7]+$/;
export const XKS_SECRET = /^[a-zA-Z0-9/+=]+$/;
/** XksKeyId (API Reference, CreateKey): 1-128 of `[a-zA-Z0-9-_.]`. */
export const XKS_KEY_ID = /^[a-zA-Z0-9\-_.]+$/;
/** XksProxyVpcEndpointServiceName (API Reference): 20-64 characters. */
export const VPC_SERVICE_NAME = /^com\.amazonaws\.vpce\.([a-z]+-){2,3}\d+\.vpce-svc-[0-9a-z]{17}$/;

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * The problem with an XksProxyUriEndpoint, or undefined. AWS requires `https://` + a host name
 * (or IP) + optional port, nothing else (API Reference: pattern `^https://.*`, 10-128 characters).
 * Local deviation: `http://` is accepted for a loopback host only (127.0.0.1, localhost, [::1]),
 * so a proxy on the same machine can be used without a certificate; plain HTTP anywhere else is
 * refused, as AWS refuses it everywhere.
 */
export function endpointProblem(endpoint: string): string | undefined {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return 'is not a URL';
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
    return 'must use https:// (the local KMS also accepts http:// to 127.0.0.1, localhost or [::1])';
  }
  // After the scheme AWS allows only letters, digits, dots and hyphens (API Reference,
  // CreateCustomKeyStore XksProxyUriEndpoint; pattern ^https://[a-zA-Z0-9.-]+$); the local
  // deviations are an optional port and [::1]. A stray `?` or `#` (empty query or fragment) or a
  // %-escape would otherwise pass the URL checks below.
  if (!/^https?:\/\/(?:[A-Za-z0-9.-]+|\[::1\])(?::\d{1,5})?$/.test(endpoint) || url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '') || endpoint.endsWith('/')) {
    return 'must be only the scheme, the host and an optional port (the path goes in XksProxyUriPath)';
  }
  return undefined;
}

export function targetOf(rec: XksStoreLike): XksProxyTarget {
  return { endpoint: rec.xks.endpoint, path: rec.xks.path, accessKeyId: rec.xks.accessKeyId, secretAccessKey: rec.password, region: rec.region };
}

const err = (type: string, message: string) => new KmsServiceError(type, message);

// ---------------------------------------------------------------------------------------------
// Failures → KMS exceptions (spec "Error codes", KMS considerations table). The proxy's
// errorMessage is never repeated; the messages say what to check.

function failureText(f: XksProxyFailure): string {
  switch (f.kind) {
    case 'unreachable':
      return 'The local KMS cannot communicate with the external key store proxy.';
    case 'timeout':
      return 'The external key store proxy did not respond in time.';
    case 'tls':
      return 'The local KMS cannot establish a TLS connection to the external key store proxy; verify its certificate (service option xksProxyCa).';
    case 'unavailable':
      return 'The external key store proxy reports that all of its external key managers are unavailable.';
    case 'malformed':
      return 'The local KMS cannot interpret the response from the external key store proxy.';
    case 'proxy':
      switch (f.errorName) {
        case 'AuthenticationFailedException':
          return 'The external key store proxy rejected the request because it could not authenticate the local KMS; verify the proxy authentication credential.';
        case 'AccessDeniedException':
          return 'The external key store proxy denied access to the operation.';
        case 'KeyNotFoundException':
          return 'The external key associated with this KMS key was not found in its external key manager.';
        case 'InvalidStateException':
          return 'The external key associated with this KMS key is not enabled in the external key manager.';
        case 'InvalidKeyUsageException':
          return 'The external key associated with this KMS key does not support the requested operation.';
        case 'InvalidCiphertextException':
          return 'The external key store proxy rejected the request because the specified ciphertext is corrupted, missing, or otherwise invalid.';
        case 'InvalidUriPathException':
          return 'The external key store proxy rejected the request because of an invalid URI path; verify XksProxyUriPath.';
        case 'UnsupportedOperationException':
          return 'The external key store proxy does not support the requested operation.';
        case 'DependencyTimeoutException':
          return 'The external key store proxy timed out reaching its external key manager.';
        case 'ThrottlingException':
          return 'The external key store proxy rejected the request due to a very high request rate.';
        case 'InternalException':
          return 'The external key store proxy cannot communicate with the external key manager.';
        default:
          return 'The local KMS cannot interpret the response from the external key store proxy.';
      }
  }
}

/** CreateCustomKeyStore and UpdateCustomKeyStore (the GetHealthStatus they send). */
export function managementError(f: XksProxyFailure): KmsServiceError {
  const name = f.kind === 'proxy' ? f.errorName : undefined;
  let type = 'XksProxyInvalidResponseException';
  if (f.kind === 'unreachable' || f.kind === 'timeout' || f.kind === 'tls' || f.kind === 'unavailable') type = 'XksProxyUriUnreachableException';
  else if (name === 'DependencyTimeoutException' || name === 'ThrottlingException') type = 'XksProxyUriUnreachableException';
  else if (name === 'AuthenticationFailedException') type = 'XksProxyIncorrectAuthenticationCredentialException';
  else if (name === 'InvalidUriPathException') type = 'XksProxyInvalidConfigurationException';
  return err(type, failureText(f));
}

/** ConnectCustomKeyStore's outcome (API Reference, CustomKeyStoresListEntry ConnectionErrorCode). */
export function connectionErrorCode(f: XksProxyFailure): string {
  switch (f.kind) {
    case 'unreachable':
    case 'unavailable':
      return 'XKS_PROXY_NOT_REACHABLE';
    case 'timeout':
      return 'XKS_PROXY_TIMED_OUT';
    case 'tls':
      return 'XKS_PROXY_INVALID_TLS_CONFIGURATION';
    case 'malformed':
      return 'XKS_PROXY_INVALID_RESPONSE';
    case 'proxy':
      switch (f.errorName) {
        case 'AuthenticationFailedException':
          return 'INVALID_CREDENTIALS';
        case 'AccessDeniedException':
          return 'XKS_PROXY_ACCESS_DENIED';
        case 'InvalidUriPathException':
          return 'XKS_PROXY_INVALID_CONFIGURATION';
        case 'DependencyTimeoutException':
          return 'XKS_PROXY_TIMED_OUT';
        case 'ThrottlingException':
          return 'XKS_PROXY_NOT_REACHABLE';
        default:
          return 'XKS_PROXY_INVALID_RESPONSE';
      }
  }
}

/** CreateKey (the GetKeyMetadata it sends). */
export function createKeyError(f: XksProxyFailure): KmsServiceError {
  const name = f.kind === 'proxy' ? f.errorName : undefined;
  let type = 'CustomKeyStoreInvalidStateException';
  if (name === 'KeyNotFoundException') type = 'XksKeyNotFoundException';
  else if (name === 'InvalidStateException' || name === 'InvalidKeyUsageException') type = 'XksKeyInvalidConfigurationException';
  else if (name === 'AccessDeniedException') type = 'KMSInvalidStateException';
  return err(type, failureText(f));
}

/**
 * Cryptographic operations: "AWS KMS cryptographic operations return KMSInvalidStateException for
 * all failures related to the external configuration or connection state of the external key
 * store" (Developer Guide, "Troubleshooting external key stores"), the proxy's
 * InvalidCiphertextException included (spec table).
 */
export function cryptoError(f: unknown): Error {
  if (f instanceof XksProxyFailure) return err('KMSInvalidStateException', failureText(f));
  return f as Error;
}

// ---------------------------------------------------------------------------------------------
// Calls

export function newRequestMetadata(operation: string, who?: Requester, key?: KeyRecord): XksRequestMetadata {
  // kmsRequestId: an id of this request for the proxy's log (the HTTP layer's x-amzn-RequestId
  // is not known to operations here).
  return {
    ...(who ? { awsPrincipalArn: who.caller.arn } : {}),
    ...(key ? { kmsKeyArn: key.arn } : {}),
    kmsOperation: operation,
    kmsRequestId: randomUUID(),
  };
}

/** GetHealthStatus for Create/UpdateCustomKeyStore: management exceptions on failure. */
export async function checkProxyHealth(rec: XksStoreLike, transport: XksTransport, operation: string): Promise<void> {
  try {
    await getHealthStatus(targetOf(rec), transport, newRequestMetadata(operation));
  } catch (e) {
    if (e instanceof XksProxyFailure) throw managementError(e);
    throw e;
  }
}

/** GetHealthStatus for ConnectCustomKeyStore: undefined when healthy, else the ConnectionErrorCode. */
export async function connectXks(rec: XksStoreLike, transport: XksTransport): Promise<string | undefined> {
  try {
    await getHealthStatus(targetOf(rec), transport, newRequestMetadata('ConnectCustomKeyStore'));
    return undefined;
  } catch (e) {
    if (e instanceof XksProxyFailure) return connectionErrorCode(e);
    return 'INTERNAL_ERROR';
  }
}

/**
 * CreateKey's checks of the external key (API Reference, CreateKey XksKeyId; spec
 * GetKeyMetadata "KMS considerations"): it exists (XksKeyNotFoundException), is AES_256, has
 * ENCRYPT and DECRYPT among its usages and is ENABLED (XksKeyInvalidConfigurationException).
 */
export async function checkExternalKey(rec: XksStoreLike, transport: XksTransport, xksKeyId: string, who: Requester): Promise<void> {
  let md;
  try {
    md = await getKeyMetadata(targetOf(rec), transport, xksKeyId, newRequestMetadata('CreateKey', who));
  } catch (e) {
    if (e instanceof XksProxyFailure) throw createKeyError(e);
    throw e;
  }
  const problems: string[] = [];
  if (md.keySpec !== 'AES_256') problems.push(`its key spec is ${md.keySpec}, not AES_256`);
  if (!md.keyUsage.includes('ENCRYPT') || !md.keyUsage.includes('DECRYPT')) problems.push('its key usage must include ENCRYPT and DECRYPT');
  if (md.keyStatus !== 'ENABLED') problems.push(`its status is ${md.keyStatus}, not ENABLED`);
  if (problems.length > 0) throw err('XksKeyInvalidConfigurationException', `External key ${xksKeyId} cannot back a KMS key: ${problems.join('; ')}.`);
}

// ---------------------------------------------------------------------------------------------
// Double encryption
//
//   header    49 B  blob.ts header (version, key id, key material id)
//   ivLen     u8    12 or 16 (the proxy's IV)
//   iv
//   tag       16 B  the proxy's GCM tag
//   mdLen     u8    0-20
//   metadata        the proxy's ciphertextMetadata
//   innerTag  16 B  the inner blob's GCM tag, kept out of the proxy's hands
//   ct              the proxy's ciphertext of the inner blob's iv || ct
//
// The inner tag stays with the caller's ciphertext: were it wrapped too, a hostile proxy could
// answer a Decrypt with the inner layer of ANOTHER ciphertext it wrapped earlier (same key,
// material and context) and the inner layer would authenticate it, so Decrypt would return the
// other plaintext. With the tag outside, a substituted iv || ct fails the inner layer
// (InvalidCiphertextException): the answer must be the one this ciphertext was made with
// (spec Appendix C, ciphertext data integrity: KMS's assurance that decrypting gives the
// plaintext back).
//
// The inner blob is blob.ts's, under the KMS key's local material with AAD = header || context;
// the proxy's AAD is the header, so the outer layer is bound to the key and material too. A
// wrong encryption context passes the proxy and fails the inner layer: InvalidCiphertextException.

const HEADER = 49;

export async function xksSealBlob(rec: XksStoreLike, transport: XksTransport, key: KeyRecord, m: MaterialRecord, plaintext: Uint8Array, context: Readonly<Record<string, string>> | undefined, md: XksRequestMetadata): Promise<Buffer> {
  const inner = sealBlob(key.keyId, m.id, m.secret, plaintext, context);
  const header = blobHeader(key.keyId, m.id);
  const innerTag = inner.subarray(inner.length - 16);
  let c: XksCiphertext;
  try {
    c = await xksEncrypt(targetOf(rec), transport, key.xksKeyId!, md, inner.subarray(HEADER, inner.length - 16), header);
  } catch (e) {
    throw cryptoError(e);
  }
  return Buffer.concat([header, Buffer.from([c.iv.length]), c.iv, c.tag, Buffer.from([c.metadata.length]), c.metadata, innerTag, c.ciphertext]);
}

/** The outer layer's parts, or undefined when the bytes are not an external key store blob. */
export function parseXksBlob(blob: Uint8Array): { header: Buffer; innerTag: Buffer; c: XksCiphertext } | undefined {
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.length);
  let at = HEADER;
  const ivLen = b[at++];
  if (ivLen !== 12 && ivLen !== 16) return undefined;
  const iv = b.subarray(at, (at += ivLen));
  const tag = b.subarray(at, (at += 16));
  const mdLen = b[at++];
  if (mdLen === undefined || mdLen > 20) return undefined;
  const metadata = b.subarray(at, (at += mdLen));
  // The inner tag (16 bytes), then the wrapped inner iv (12 bytes) + ciphertext (at least one).
  if (b.length < at + 29) return undefined;
  const innerTag = b.subarray(at, (at += 16));
  return { header: b.subarray(0, HEADER), innerTag, c: { iv, tag, metadata, ciphertext: b.subarray(at) } };
}

/** Decrypts both layers; undefined when the bytes are not ours or the inner layer fails (InvalidCiphertextException). */
export async function xksOpenBlob(rec: XksStoreLike, transport: XksTransport, key: KeyRecord, blob: Uint8Array, material: MaterialRecord, context: Readonly<Record<string, string>> | undefined, md: XksRequestMetadata): Promise<Buffer | undefined> {
  const outer = parseXksBlob(blob);
  if (!outer) return undefined;
  let innerBody: Buffer;
  try {
    innerBody = await xksDecrypt(targetOf(rec), transport, key.xksKeyId!, md, outer.c, outer.header);
  } catch (e) {
    throw cryptoError(e);
  }
  try {
    const parsed = parseBlob(Buffer.concat([outer.header, innerBody, outer.innerTag]));
    return parsed ? openBlob(parsed, material.secret, context) : undefined;
  } finally {
    innerBody.fill(0);
  }
}
