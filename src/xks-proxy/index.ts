/**
 * `kms-envelope/xks-proxy`: an External Key Store (XKS) proxy serving the XKS Proxy API
 * Specification (aws/aws-kms-xksproxy-api-spec) on keys of a PKCS#11 token. Needs the optional
 * peer dependency `pkcs11js` (loaded when a proxy starts or a key is created).
 *
 * ```ts
 * const proxy = await startXksProxy({
 *   region: 'us-east-1',
 *   uriPrefix: 'example/uri/path/prefix',
 *   credentials: [{ accessKeyId: 'BETWEEN2TENAND3TENCHARACTERS', secretAccessKey: '...43-64 chars...' }],
 *   pkcs11: { module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'xks', pin: '1234' },
 * });
 * // proxy.url: http://127.0.0.1:PORT (XksProxyUriEndpoint), proxy.uriPath: /example/uri/path/prefix/kms/xks/v1
 * await proxy.close();
 * ```
 */
export { startXksProxy, XKS_SIGV4_SERVICE, type StartXksProxyOptions, type XksLogEntry, type XksProxyHandle } from './server.js';
export {
  loadXksProxyConfig,
  resolveXksProxyConfig,
  XksProxyConfigError,
  type ResolveOptions,
  type ResolvedXksProxyConfig,
  type XksCredential,
  type XksPkcs11Config,
  type XksProxyConfig,
} from './config.js';
export { createXksKey, XKS_KEY_USAGES, type XksKeyUsage } from './create-key.js';
export { XksError, XKS_ERRORS, type XksErrorName } from './errors.js';
export { TokenError, Pkcs11UnavailableError } from '../local-kms/pkcs11.js';
