import { createHash } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { SecureContext } from 'node:tls';
import { formatAmzDate, sigV4Signature, XKS_SIGV4_SERVICE } from './sigv4.js';

/**
 * The local KMS as a client of an external key store proxy (XKS Proxy API Specification v1,
 * aws/aws-kms-xksproxy-api-spec): every call is a POST of JSON to
 * `<XksProxyUriEndpoint><XksProxyUriPath>/health` or `.../keys/<externalKeyId>/<metadata|encrypt|decrypt>`,
 * signed with SigV4 (service `kms-xks-proxy`, the key store's Region, its
 * XksProxyAuthenticationCredential; spec Appendix A). Failures are classified (XksProxyFailure.kind) and mapped to KMS exceptions
 * by the caller (xks-stores.ts), because the same failure is a different exception per KMS
 * operation (spec "Error codes", KMS considerations table).
 */

/** Where a key store's proxy is and how requests to it are signed. */
export interface XksProxyTarget {
  /** `https://host[:port]` (or, local deviation, `http://` to a loopback host). */
  endpoint: string;
  /** `[/prefix]/kms/xks/v1`. */
  path: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

/** Transport settings of the local KMS (service options xksProxyTimeoutMs, xksProxyCa). */
export interface XksTransport {
  timeoutMs: number;
  /** Extra PEM CA certificates trusted for HTTPS proxies (added to Node's defaults, never replacing verification). */
  ca?: string[];
  /** The TLS context built once from `ca` (Node's default CAs plus the extra ones). */
  secureContext?: SecureContext;
  clock: () => number;
}

/**
 * What went wrong talking to the proxy:
 * - `unreachable`: no TCP connection (refused, reset, DNS);
 * - `timeout`: no complete answer within the timeout (spec: 250 ms);
 * - `tls`: the TLS handshake failed (certificate not trusted, wrong name, ...);
 * - `malformed`: an answer that is not the spec's (not JSON, missing or ill-sized fields, an HTTP
 *   error without an `errorName`);
 * - `proxy`: the proxy's own error (`errorName` from the spec's table: ValidationException,
 *   InvalidStateException, InvalidCiphertextException, InvalidKeyUsageException,
 *   AuthenticationFailedException, AccessDeniedException, KeyNotFoundException,
 *   InvalidUriPathException, ThrottlingException, UnsupportedOperationException,
 *   DependencyTimeoutException, InternalException);
 * - `unavailable`: GetHealthStatus says every external key manager is UNAVAILABLE.
 * The proxy's errorMessage is never kept (KMS does not pass it on; spec "KMS Considerations").
 */
export class XksProxyFailure extends Error {
  constructor(
    readonly kind: 'unreachable' | 'timeout' | 'tls' | 'malformed' | 'proxy' | 'unavailable',
    readonly errorName?: string,
  ) {
    super(`XKS proxy failure: ${kind}${errorName ? ` (${errorName})` : ''}`);
    this.name = 'XksProxyFailure';
  }
}

/** What KMS tells the proxy about the request (spec: requestMetadata). */
export interface XksRequestMetadata {
  awsPrincipalArn?: string;
  kmsKeyArn?: string;
  kmsOperation: string;
  kmsRequestId: string;
  kmsViaService?: string;
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes a base64 member, or throws `malformed`; `sizes` are the allowed decoded lengths. */
function b64(v: unknown, check: (n: number) => boolean): Buffer {
  if (typeof v !== 'string' || !B64.test(v)) throw new XksProxyFailure('malformed');
  const out = Buffer.from(v, 'base64');
  if (!check(out.length)) throw new XksProxyFailure('malformed');
  return out;
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest();

/**
 * SigV4 headers for a POST of `body` to `url` (spec Appendix A: method POST, the URI path as the
 * canonical URI, empty query, SignedHeaders `host;x-amz-date` as KMS sends them, SHA-256 of the
 * payload).
 * The path holds only `[A-Za-z0-9/_.-]` (XksProxyUriPath and XksKeyId patterns), which SigV4's
 * URI encoding leaves as is.
 */
export function signXksRequest(url: URL, body: Buffer, t: Pick<XksProxyTarget, 'accessKeyId' | 'secretAccessKey' | 'region'>, nowMs: number): Record<string, string> {
  const amzDate = formatAmzDate(nowMs);
  const date = amzDate.slice(0, 8);
  const payloadHash = sha256(body).toString('hex');
  const headers: Record<string, string> = { host: url.host, 'x-amz-date': amzDate };
  const signed = Object.keys(headers).sort();
  const canonical = ['POST', url.pathname, '', signed.map((h) => `${h}:${headers[h]}\n`).join(''), signed.join(';'), payloadHash].join('\n');
  const { signature } = sigV4Signature(t.secretAccessKey, { date, region: t.region, service: XKS_SIGV4_SERVICE }, amzDate, canonical);
  const scope = `${date}/${t.region}/${XKS_SIGV4_SERVICE}/aws4_request`;
  return { ...headers, 'content-type': 'application/json', authorization: `AWS4-HMAC-SHA256 Credential=${t.accessKeyId}/${scope}, SignedHeaders=${signed.join(';')}, Signature=${signature.toString('hex')}` };
}

/** The largest proxy answer read (the biggest legitimate one, Encrypt of 4 KiB, is under 8 KiB). */
const MAX_RESPONSE = 64 * 1024;

const TLS_CODES = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|HOSTNAME|ALTNAME|EPROTO/i;

/** One signed POST; resolves with the parsed JSON body of a 200, throws XksProxyFailure otherwise. */
export function callProxy(t: XksProxyTarget, transport: XksTransport, suffix: string, payload: unknown): Promise<Record<string, unknown>> {
  const url = new URL(t.endpoint + t.path + suffix);
  const body = Buffer.from(JSON.stringify(payload), 'utf8');
  const headers = { ...signXksRequest(url, body, t, transport.clock()), 'content-length': String(body.length) };
  const https = url.protocol === 'https:';
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (e: XksProxyFailure) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(e);
    };
    const options = { method: 'POST', headers, agent: false as const };
    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_RESPONSE) fail(new XksProxyFailure('malformed'));
        else chunks.push(c);
      });
      res.on('error', () => fail(new XksProxyFailure('unreachable')));
      res.on('end', () => {
        if (settled) return;
        let json: unknown;
        try {
          json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          json = undefined;
        }
        const obj = json !== null && typeof json === 'object' && !Array.isArray(json) ? (json as Record<string, unknown>) : undefined;
        if (res.statusCode !== 200) {
          const name = obj?.errorName;
          return fail(typeof name === 'string' && /^[A-Za-z]{1,64}$/.test(name) ? new XksProxyFailure('proxy', name) : new XksProxyFailure('malformed'));
        }
        if (!obj) return fail(new XksProxyFailure('malformed'));
        settled = true;
        clearTimeout(timer);
        resolve(obj);
      });
    };
    const req = https
      ? httpsRequest(url, { ...options, ...(transport.secureContext ? { secureContext: transport.secureContext } : transport.ca ? { ca: transport.ca } : {}) }, onResponse)
      : httpRequest(url, options, onResponse);
    // The whole exchange (connect, TLS, request, answer) within the timeout, as KMS counts it.
    const timer = setTimeout(() => fail(new XksProxyFailure('timeout')), transport.timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => {
      const code = `${e.code ?? ''} ${e.message}`;
      fail(new XksProxyFailure(https && TLS_CODES.test(code) ? 'tls' : 'unreachable'));
    });
    req.end(body);
  });
}

/**
 * GetHealthStatus (spec "GetHealthStatus"): 1-10 ekmFleetDetails entries with healthStatus
 * ACTIVE, DEGRADED or UNAVAILABLE; all UNAVAILABLE is `unavailable` (XksProxyUriUnreachableException).
 */
export async function getHealthStatus(t: XksProxyTarget, transport: XksTransport, md: XksRequestMetadata): Promise<void> {
  const res = await callProxy(t, transport, '/health', { requestMetadata: { kmsRequestId: md.kmsRequestId, kmsOperation: md.kmsOperation } });
  const fleet = res.ekmFleetDetails;
  if (!Array.isArray(fleet) || fleet.length < 1 || fleet.length > 10) throw new XksProxyFailure('malformed');
  const states = fleet.map((e) => (e && typeof e === 'object' ? (e as Record<string, unknown>).healthStatus : undefined));
  if (!states.every((s) => s === 'ACTIVE' || s === 'DEGRADED' || s === 'UNAVAILABLE')) throw new XksProxyFailure('malformed');
  if (states.every((s) => s === 'UNAVAILABLE')) throw new XksProxyFailure('unavailable');
}

export interface XksKeyMetadata {
  keySpec: string;
  keyUsage: string[];
  keyStatus: string;
}

/** GetKeyMetadata (spec "GetKeyMetadata"): keySpec, keyUsage (at most ten), keyStatus. */
export async function getKeyMetadata(t: XksProxyTarget, transport: XksTransport, keyId: string, md: XksRequestMetadata): Promise<XksKeyMetadata> {
  const res = await callProxy(t, transport, `/keys/${keyId}/metadata`, { requestMetadata: md });
  const { keySpec, keyUsage, keyStatus } = res;
  if (typeof keySpec !== 'string' || typeof keyStatus !== 'string' || !Array.isArray(keyUsage) || keyUsage.length > 10 || !keyUsage.every((u) => typeof u === 'string')) {
    throw new XksProxyFailure('malformed');
  }
  return { keySpec, keyUsage: keyUsage as string[], keyStatus };
}

export interface XksCiphertext {
  ciphertext: Buffer;
  iv: Buffer;
  tag: Buffer;
  /** Up to 20 vendor bytes (spec: ciphertextMetadata); empty when the proxy sent none. */
  metadata: Buffer;
}

/**
 * Encrypt (spec "Encrypt"), AES_GCM, asking for the ciphertext data integrity value (SHA_256,
 * Appendix C): the answer must carry it and it must equal SHA-256(aad || metadata || iv ||
 * ciphertext || tag), KMS's assurance that decrypting those values will give the plaintext back.
 */
export async function xksEncrypt(t: XksProxyTarget, transport: XksTransport, keyId: string, md: XksRequestMetadata, plaintext: Buffer, aad: Buffer): Promise<XksCiphertext> {
  const res = await callProxy(t, transport, `/keys/${keyId}/encrypt`, {
    requestMetadata: md,
    additionalAuthenticatedData: aad.toString('base64'),
    plaintext: plaintext.toString('base64'),
    encryptionAlgorithm: 'AES_GCM',
    ciphertextDataIntegrityValueAlgorithm: 'SHA_256',
  });
  const out: XksCiphertext = {
    ciphertext: b64(res.ciphertext, (n) => n === plaintext.length),
    iv: b64(res.initializationVector, (n) => n === 12 || n === 16),
    tag: b64(res.authenticationTag, (n) => n === 16),
    metadata: res.ciphertextMetadata === undefined ? Buffer.alloc(0) : b64(res.ciphertextMetadata, (n) => n <= 20),
  };
  const cdiv = b64(res.ciphertextDataIntegrityValue, (n) => n === 32);
  const expected = sha256(Buffer.concat([aad, out.metadata, out.iv, out.ciphertext, out.tag]));
  if (!cdiv.equals(expected)) throw new XksProxyFailure('malformed');
  return out;
}

/** Decrypt (spec "Decrypt"): the plaintext, as long as the ciphertext. */
export async function xksDecrypt(t: XksProxyTarget, transport: XksTransport, keyId: string, md: XksRequestMetadata, c: XksCiphertext, aad: Buffer): Promise<Buffer> {
  const res = await callProxy(t, transport, `/keys/${keyId}/decrypt`, {
    requestMetadata: md,
    additionalAuthenticatedData: aad.toString('base64'),
    encryptionAlgorithm: 'AES_GCM',
    ciphertext: c.ciphertext.toString('base64'),
    ...(c.metadata.length > 0 ? { ciphertextMetadata: c.metadata.toString('base64') } : {}),
    initializationVector: c.iv.toString('base64'),
    authenticationTag: c.tag.toString('base64'),
  });
  return b64(res.plaintext, (n) => n === c.ciphertext.length);
}
