/**
 * The XKS proxy's configuration: a JSON file for `kms-envelope xks-proxy --config F`, the same
 * object for `startXksProxy(config)`. Validated once, before anything starts; every problem is a
 * `XksProxyConfigError` (a TypeError) naming the field, and no message ever repeats a secret
 * access key or a PIN.
 *
 * ```json
 * {
 *   "host": "127.0.0.1",
 *   "port": 8443,
 *   "uriPrefix": "example/uri/path/prefix",
 *   "region": "us-east-1",
 *   "credentials": [
 *     { "accessKeyId": "BETWEEN2TENAND3TENCHARACTERS", "secretAccessKey": "<43-64 of A-Za-z0-9+/=>" }
 *   ],
 *   "pkcs11": { "module": "/usr/lib/softhsm/libsofthsm2.so", "tokenLabel": "xks", "pinEnv": "XKS_PIN" },
 *   "tls": { "cert": "proxy.crt", "key": "proxy.key" }
 * }
 * ```
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';

/** One SigV4 credential KMS signs with (the custom key store's XksProxyAuthenticationCredential). */
export interface XksCredential {
  /**
   * 20 to 30 characters, `A`-`Z` and `2`-`7` only (XKS Proxy API Specification, Appendix A).
   * Identifies which secret verifies a request.
   */
  accessKeyId: string;
  /**
   * 43 to 64 characters of `A`-`Z`, `a`-`z`, `0`-`9`, `+`, `/`, `=` (the spec's "XKS proxy
   * configuration file" and Appendix A; e.g. `openssl rand -base64 32`). Anyone holding it can
   * call the proxy: keep the config file private.
   */
  secretAccessKey: string;
}

/** Where the keys are: a PKCS#11 library and one of its tokens, logged in as the user. */
export interface XksPkcs11Config {
  /** Path of the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  module: string;
  /** The token's label (CK_TOKEN_INFO label, as `softhsm2-util --init-token --label` sets it). */
  tokenLabel: string;
  /** The user PIN. Exactly one of `pin`, `pinEnv`, `pinFile`. Never logged nor put in a message. */
  pin?: string;
  /** Name of an environment variable holding the user PIN. */
  pinEnv?: string;
  /** A file holding the user PIN (one trailing newline is ignored); relative to the config file. */
  pinFile?: string;
}

/**
 * The proxy's configuration (the JSON file's shape; `startXksProxy` takes the same object).
 *
 * - `host`: interface to bind, default `127.0.0.1`. Without `tls` only a loopback address is
 *   accepted: the spec requires HTTPS, plain HTTP is for tests on this machine.
 * - `port`: TCP port, 0-65535, default 0 (any free port; the bound URL is reported).
 * - `uriPrefix`: the path before `/kms/xks/v1` (the key store's XksProxyUriPath minus that
 *   suffix), letters, digits, `/`, `-`, `_`; default none. The whole XksProxyUriPath must stay
 *   within the spec's 128 characters.
 * - `region`: the AWS Region KMS signs requests for (the SigV4 credential scope), e.g. us-east-1.
 * - `credentials`: 1 to 2 SigV4 credentials, all accepted at once (the spec's credential rotation:
 *   add the new one, update the key store, then remove the old one). Access key ids are unique.
 * - `pkcs11`: the token (see XksPkcs11Config).
 * - `tls`: `{ cert, key }` PEM files (relative to the config file); HTTPS (TLS 1.2+) when given.
 */
export interface XksProxyConfig {
  host?: string;
  port?: number;
  uriPrefix?: string;
  region: string;
  credentials: XksCredential[];
  pkcs11: XksPkcs11Config;
  tls?: { cert: string; key: string };
}

/** A validated configuration: defaults applied, the PIN and TLS files read. */
export interface ResolvedXksProxyConfig {
  host: string;
  port: number;
  /** Without leading or trailing slash; '' for none. */
  uriPrefix: string;
  region: string;
  credentials: ReadonlyMap<string, string>;
  module: string;
  tokenLabel: string;
  pin: string;
  tls?: { cert: Buffer; key: Buffer };
}

/** A configuration problem; `field` is the path of the offending member (`pkcs11.pinEnv`). */
export class XksProxyConfigError extends TypeError {
  override readonly name = 'XksProxyConfigError';
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`xks-proxy config: ${field}: ${problem}`);
  }
}

const TOP = ['host', 'port', 'uriPrefix', 'region', 'credentials', 'pkcs11', 'tls'];
const PKCS11 = ['module', 'tokenLabel', 'pin', 'pinEnv', 'pinFile'];

/** The spec's rules (Appendix A; "XKS proxy configuration in AWS KMS console"). */
const ACCESS_KEY_ID = /^[A-Z2-7]{20,30}$/;
const SECRET_ACCESS_KEY = /^[A-Za-z0-9+/=]{43,64}$/;
/** XksProxyUriPath: at most 128 characters of a-z, A-Z, 0-9, /, -, _ ("API operations"). */
const URI_PATH_CHARS = /^[A-Za-z0-9/_-]*$/;
const MAX_URI_PATH = 128;
const SUFFIX = '/kms/xks/v1';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unknownMembers(o: Record<string, unknown>, allowed: string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new XksProxyConfigError(`${where}${k}`, `unknown field (expected one of ${allowed.join(', ')})`);
  }
}

function str(o: Record<string, unknown>, k: string, where: string): string {
  const v = o[k];
  if (typeof v !== 'string' || v.length === 0) throw new XksProxyConfigError(`${where}${k}`, 'must be a non-empty string');
  return v;
}

/** 127.0.0.0/8, ::1, localhost: the only addresses plain HTTP may bind. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export interface ResolveOptions {
  /** Directory relative paths (pinFile, tls) are resolved against; default the working directory. */
  baseDir?: string;
  /** Where `pkcs11.pinEnv` is looked up; default process.env. */
  env?: NodeJS.ProcessEnv;
}

/** Validates `raw` (a parsed config file or a `XksProxyConfig`) and reads the files it names. */
export function resolveXksProxyConfig(raw: unknown, opts: ResolveOptions = {}): ResolvedXksProxyConfig {
  const baseDir = opts.baseDir ?? process.cwd();
  const env = opts.env ?? process.env;
  const path = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  if (!isObject(raw)) throw new XksProxyConfigError('(top level)', 'must be a JSON object');
  unknownMembers(raw, TOP, '');

  const host = raw.host === undefined ? '127.0.0.1' : str(raw, 'host', '');
  let port = 0;
  if (raw.port !== undefined) {
    if (typeof raw.port !== 'number' || !Number.isInteger(raw.port) || raw.port < 0 || raw.port > 65535) {
      throw new XksProxyConfigError('port', 'must be an integer 0-65535 (0: any free port)');
    }
    port = raw.port;
  }

  let uriPrefix = '';
  if (raw.uriPrefix !== undefined) {
    if (typeof raw.uriPrefix !== 'string') throw new XksProxyConfigError('uriPrefix', 'must be a string');
    uriPrefix = raw.uriPrefix.replace(/^\/+|\/+$/g, '');
    if (!URI_PATH_CHARS.test(uriPrefix)) throw new XksProxyConfigError('uriPrefix', 'may hold only letters, digits, /, - and _');
    if (uriPrefix.includes('//')) throw new XksProxyConfigError('uriPrefix', 'must not contain an empty path segment (//)');
    const uriPath = `${uriPrefix ? `/${uriPrefix}` : ''}${SUFFIX}`;
    if (uriPath.length > MAX_URI_PATH) {
      throw new XksProxyConfigError('uriPrefix', `makes the XksProxyUriPath ${uriPath.length} characters long; at most ${MAX_URI_PATH}`);
    }
  }

  const region = str(raw, 'region', '');
  if (!/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/.test(region)) throw new XksProxyConfigError('region', `is not an AWS Region name (e.g. us-east-1): ${JSON.stringify(region.slice(0, 40))}`);

  if (!Array.isArray(raw.credentials) || raw.credentials.length < 1 || raw.credentials.length > 2) {
    throw new XksProxyConfigError('credentials', 'must be an array of 1 or 2 {accessKeyId, secretAccessKey} (2 while rotating)');
  }
  const credentials = new Map<string, string>();
  raw.credentials.forEach((c: unknown, i: number) => {
    const where = `credentials[${i}].`;
    if (!isObject(c)) throw new XksProxyConfigError(`credentials[${i}]`, 'must be an object {accessKeyId, secretAccessKey}');
    unknownMembers(c, ['accessKeyId', 'secretAccessKey'], where);
    const id = str(c, 'accessKeyId', where);
    if (!ACCESS_KEY_ID.test(id)) throw new XksProxyConfigError(`${where}accessKeyId`, 'must be 20-30 characters, A-Z and 2-7 only');
    const secret = str(c, 'secretAccessKey', where);
    if (!SECRET_ACCESS_KEY.test(secret)) {
      throw new XksProxyConfigError(`${where}secretAccessKey`, `must be 43-64 characters of A-Z, a-z, 0-9, +, / and = (it has ${secret.length} characters)`);
    }
    if (credentials.has(id)) throw new XksProxyConfigError(`${where}accessKeyId`, 'is given twice');
    credentials.set(id, secret);
  });

  if (!isObject(raw.pkcs11)) throw new XksProxyConfigError('pkcs11', 'must be an object {module, tokenLabel, pin | pinEnv | pinFile}');
  const p = raw.pkcs11;
  unknownMembers(p, PKCS11, 'pkcs11.');
  const module = path(str(p, 'module', 'pkcs11.'));
  const tokenLabel = str(p, 'tokenLabel', 'pkcs11.');
  if (tokenLabel.length > 32) throw new XksProxyConfigError('pkcs11.tokenLabel', 'is longer than a token label can be (32 bytes)');
  const given = ['pin', 'pinEnv', 'pinFile'].filter((k) => p[k] !== undefined);
  if (given.length !== 1) throw new XksProxyConfigError('pkcs11', `needs exactly one of pin, pinEnv, pinFile (got ${given.length === 0 ? 'none' : given.join(', ')})`);
  let pin: string;
  if (p.pin !== undefined) {
    if (typeof p.pin !== 'string' || p.pin.length === 0) throw new XksProxyConfigError('pkcs11.pin', 'must be a non-empty string');
    pin = p.pin;
  } else if (p.pinEnv !== undefined) {
    const name = str(p, 'pinEnv', 'pkcs11.');
    const v = env[name];
    if (v === undefined || v === '') throw new XksProxyConfigError('pkcs11.pinEnv', `the environment variable ${name.slice(0, 64)} is not set or empty`);
    pin = v;
  } else {
    const file = path(str(p, 'pinFile', 'pkcs11.'));
    try {
      pin = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new XksProxyConfigError('pkcs11.pinFile', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    if (pin.length === 0) throw new XksProxyConfigError('pkcs11.pinFile', `${file} is empty`);
  }

  let tls: ResolvedXksProxyConfig['tls'];
  if (raw.tls !== undefined) {
    if (!isObject(raw.tls)) throw new XksProxyConfigError('tls', 'must be an object {cert, key} (PEM files)');
    unknownMembers(raw.tls, ['cert', 'key'], 'tls.');
    // Both named before either is read: a missing member is reported as missing, not as the
    // other file's read error.
    const files = { cert: path(str(raw.tls, 'cert', 'tls.')), key: path(str(raw.tls, 'key', 'tls.')) };
    const read = (k: 'cert' | 'key') => {
      const file = files[k];
      let pem: Buffer;
      try {
        pem = readFileSync(file);
      } catch (e) {
        throw new XksProxyConfigError(`tls.${k}`, `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
      }
      if (!pem.includes('-----BEGIN')) throw new XksProxyConfigError(`tls.${k}`, `${file} is not a PEM file`);
      return pem;
    };
    tls = { cert: read('cert'), key: read('key') };
  } else if (!isLoopback(host)) {
    throw new XksProxyConfigError('tls', `is required to listen on ${host}: without TLS only a loopback address (127.0.0.1, ::1, localhost) may be bound`);
  }

  return { host, port, uriPrefix, region, credentials, module, tokenLabel, pin, ...(tls ? { tls } : {}) };
}

/** Reads and validates a JSON config file (relative paths in it are relative to its directory). */
export function loadXksProxyConfig(file: string, env: NodeJS.ProcessEnv = process.env): ResolvedXksProxyConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new XksProxyConfigError('(file)', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    // The parser's message quotes the text around the error, which may be a secret: say where only.
    const at = /position (\d+)/.exec((e as Error).message);
    throw new XksProxyConfigError('(file)', `${file} is not valid JSON${at ? ` (at character ${at[1]})` : ''}`);
  }
  return resolveXksProxyConfig(raw, { baseDir: resolve(file, '..'), env });
}
