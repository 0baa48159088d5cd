/**
 * The XKS proxy's HTTP(S) server (XKS Proxy API Specification): POST
 * `/{uriPrefix}/kms/xks/v1/health` and `/{uriPrefix}/kms/xks/v1/keys/{externalKeyId}/{metadata,
 * encrypt,decrypt}`, SigV4-signed for service `kms-xks-proxy` in the configured Region.
 *
 * Order of checks: the path (InvalidUriPathException 404), the method (405 with Allow: POST, the
 * spec: "MUST reject the request with a 405"), the body size, the signature
 * (AuthenticationFailedException 401), then the body (ValidationException and the API's own
 * errors). Nothing about the request is read before it is authenticated except its path and size.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { KmsServiceError } from '../local-kms/errors.js';
import { checkSigV4, verifySigV4Signature, XKS_SIGV4_SERVICE } from '../local-kms/sigv4.js';
import { type ResolveOptions, type ResolvedXksProxyConfig, type XksProxyConfig, XksProxyConfigError, isLoopback, resolveXksProxyConfig } from './config.js';
import { XksError, errorBody } from './errors.js';
import { type Api, MAX_BODY_BYTES, type RequestMetadata, parseBody, readDecrypt, readEncrypt, readRequestMetadata } from './requests.js';
import { TokenKeys } from './token-keys.js';

/** SigV4 service name of the XKS API (spec, Appendix A). */
export { XKS_SIGV4_SERVICE };

/** One line of the proxy's request log (spec, "Logging"): never plaintext, keys, secrets or PINs. */
export interface XksLogEntry {
  time: string;
  api: Api | 'unknown';
  /** The external key id of a keys/ API. */
  keyId?: string;
  status: number;
  errorName?: string;
  /** Processing time in milliseconds. */
  ms: number;
  /** From requestMetadata, when the request was authenticated and carried it. */
  kmsRequestId?: string;
  kmsOperation?: string;
  awsPrincipalArn?: string;
  kmsKeyArn?: string;
  kmsViaService?: string;
  /** The SigV4 access key id that signed it (authenticated requests only). */
  accessKeyId?: string;
}

export interface StartXksProxyOptions extends ResolveOptions {
  /** Called once per request after the response is sent; default none. */
  log?: (entry: XksLogEntry) => void;
  /** The clock SigV4 signing times are checked against (epoch ms); tests only. Default Date.now. */
  now?: () => number;
}

export interface XksProxyHandle {
  /** `http://127.0.0.1:PORT` or `https://...`: KMS's XksProxyUriEndpoint (with a port). */
  url: string;
  /** `/{uriPrefix}/kms/xks/v1`: KMS's XksProxyUriPath. */
  uriPath: string;
  /** Stops accepting, ends open connections and logs out of the token. */
  close(): Promise<void>;
}

type Route = { api: 'GetHealthStatus' } | { api: 'GetKeyMetadata' | 'Encrypt' | 'Decrypt'; keyId: string };

const KEY_APIS: Record<string, 'GetKeyMetadata' | 'Encrypt' | 'Decrypt'> = { metadata: 'GetKeyMetadata', encrypt: 'Encrypt', decrypt: 'Decrypt' };

/** The API a request path names under `uriPath`, or undefined (InvalidUriPathException). */
function route(path: string, uriPath: string): Route | undefined {
  if (!path.startsWith(`${uriPath}/`)) return undefined;
  const rest = path.slice(uriPath.length + 1).split('/');
  if (rest.length === 1 && rest[0] === 'health') return { api: 'GetHealthStatus' };
  if (rest.length === 3 && rest[0] === 'keys' && rest[1] !== '' && Object.hasOwn(KEY_APIS, rest[2]!)) {
    return { api: KEY_APIS[rest[2]!]!, keyId: rest[1]! };
  }
  return undefined;
}

/**
 * Starts an XKS proxy. `config` is the config file's object (see XksProxyConfig in config.ts),
 * validated here (XksProxyConfigError naming the field); the token is opened and logged in before
 * the returned promise resolves (TokenError with the CKR_ name on a wrong PIN or missing token;
 * Pkcs11UnavailableError without pkcs11js).
 */
export async function startXksProxy(config: XksProxyConfig | ResolvedXksProxyConfig, opts: StartXksProxyOptions = {}): Promise<XksProxyHandle> {
  const c = config.credentials instanceof Map ? (config as ResolvedXksProxyConfig) : resolveXksProxyConfig(config, opts);
  // An already-resolved config skips resolveXksProxyConfig: the transport rule is checked here too
  // (spec, "Authentication": proxy traffic MUST be HTTPS; plain HTTP only for loopback tests).
  if (!c.tls && !isLoopback(c.host)) {
    throw new XksProxyConfigError('tls', `is required to listen on ${c.host}: without TLS only a loopback address (127.0.0.1, ::1, localhost) may be bound`);
  }
  const keys = await TokenKeys.open(c.module, c.tokenLabel, c.pin);
  const uriPath = `${c.uriPrefix ? `/${c.uriPrefix}` : ''}/kms/xks/v1`;
  const now = opts.now ?? Date.now;

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    const entry: Partial<XksLogEntry> = { api: 'unknown' };
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
      res.end(text);
      if (opts.log) {
        try {
          opts.log({ time: new Date().toISOString(), ...entry, status, ms: Math.round((performance.now() - started) * 10) / 10 } as XksLogEntry);
        } catch {
          // A failing logger must not break the proxy.
        }
      }
    };
    const fail = (e: unknown, headers?: Record<string, string>) => {
      const x = e instanceof XksError ? e : new XksError('InternalException', 'Internal error.');
      entry.errorName = x.errorName;
      send(x.status, errorBody(x), headers);
    };

    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const r = route(q < 0 ? url : url.slice(0, q), uriPath);
    if (!r) {
      req.resume();
      return fail(new XksError('InvalidUriPathException', 'The URI path is not an API of this proxy.'));
    }
    entry.api = r.api;
    if ('keyId' in r) entry.keyId = r.keyId.slice(0, 128);
    if (req.method !== 'POST') {
      req.resume();
      entry.errorName = 'MethodNotAllowed';
      return send(405, { errorMessage: `${req.method ?? ''} is not allowed; the XKS API is POST only.`.slice(0, 200) }, { allow: 'POST' });
    }

    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        tooLarge = true;
        chunks.length = 0;
        // Answer now and drop the connection instead of reading the rest.
        fail(new XksError('UnsupportedOperationException', `The request body is larger than the ${MAX_BODY_BYTES} bytes this proxy supports.`), { connection: 'close' });
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => {
      // The client went away; nothing to answer.
    });
    req.on('end', () => {
      if (tooLarge) return;
      try {
        const body = Buffer.concat(chunks);
        entry.accessKeyId = authenticate(req, body, c, now());
        const json = parseBody(body);
        logMetadata(entry, readRequestMetadata(json, r.api));
        send(200, operate(keys, r, json));
      } catch (e) {
        fail(e);
      }
    });
  };

  let server: Server;
  try {
    // Inside the try: a certificate and key that do not match throw here, and the token session
    // opened above must not stay logged in behind the error.
    server = c.tls ? createHttpsServer({ cert: c.tls.cert, key: c.tls.key, minVersion: 'TLSv1.2' }, handler) : createHttpServer(handler);
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(c.port, c.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    keys.close();
    throw e;
  }
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  let closing: Promise<void> | undefined;
  return {
    url: `${c.tls ? 'https' : 'http'}://${host}:${addr.port}`,
    uriPath,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => {
          keys.close();
          resolve();
        });
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function logMetadata(entry: Partial<XksLogEntry>, md: RequestMetadata): void {
  // Opaque strings from KMS: bounded so one request cannot flood the log.
  for (const k of ['kmsRequestId', 'kmsOperation', 'awsPrincipalArn', 'kmsKeyArn', 'kmsViaService'] as const) {
    if (md[k] !== undefined) entry[k] = md[k]!.slice(0, 2048);
  }
}

/**
 * SigV4 (spec, Appendix A): scope `<date>/<region>/kms-xks-proxy/aws4_request`, host and
 * x-amz-date signed, signing time within 5 minutes, signature by a configured credential. Every
 * failure is AuthenticationFailedException; the message says what was wrong, never a secret.
 * Returns the access key id.
 */
function authenticate(req: IncomingMessage, body: Buffer, c: ResolvedXksProxyConfig, nowMs: number): string {
  const signed = { method: req.method ?? 'POST', path: req.url ?? '/', headers: req.headers, rawHeaders: req.rawHeaders, body };
  try {
    const auth = checkSigV4(signed, { nowMs, region: c.region, service: XKS_SIGV4_SERVICE });
    const secret = c.credentials.get(auth.accessKeyId);
    if (secret === undefined) throw new XksError('AuthenticationFailedException', 'The access key id is not one of this proxy.');
    try {
      verifySigV4Signature(signed, auth, secret);
    } catch (e) {
      if (e instanceof KmsServiceError) throw new XksError('AuthenticationFailedException', 'The request signature does not match (check the secret access key and the signing method).');
      throw e;
    }
    return auth.accessKeyId;
  } catch (e) {
    if (e instanceof KmsServiceError) throw new XksError('AuthenticationFailedException', `${e.type}: ${e.message}`);
    throw e;
  }
}

function b64(b: Buffer): string {
  return b.toString('base64');
}

/** Runs one authenticated API call; returns its response body. */
function operate(keys: TokenKeys, r: Route, body: Record<string, unknown>): unknown {
  switch (r.api) {
    case 'GetHealthStatus': {
      const h = keys.health();
      return {
        xksProxyFleetSize: 1,
        xksProxyVendor: 'kms-envelope',
        xksProxyModel: 'kms-envelope xks-proxy (PKCS#11)',
        ekmVendor: h.token?.manufacturerId || 'unknown',
        ekmFleetDetails: [
          {
            id: h.token?.serialNumber || 'unknown',
            model: h.token?.model || 'unknown',
            healthStatus: h.ok ? 'ACTIVE' : 'UNAVAILABLE',
          },
        ],
      };
    }
    case 'GetKeyMetadata':
      return keys.metadata(r.keyId);
    case 'Encrypt': {
      const out = keys.encrypt(r.keyId, readEncrypt(body));
      return {
        ciphertext: b64(out.ciphertext),
        initializationVector: b64(out.initializationVector),
        authenticationTag: b64(out.authenticationTag),
        ...(out.ciphertextDataIntegrityValue ? { ciphertextDataIntegrityValue: b64(out.ciphertextDataIntegrityValue) } : {}),
      };
    }
    case 'Decrypt':
      return { plaintext: b64(keys.decrypt(r.keyId, readDecrypt(body))) };
  }
}
