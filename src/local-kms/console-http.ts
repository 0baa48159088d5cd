/**
 * The local KMS web console (`kms-envelope local-kms --console`): static assets from ./console/ and a
 * small JSON API under /console/api/ on the KMS server's own port.
 *
 * No back door: every state-reading or state-changing action is one AWS KMS operation run through
 * `LocalKmsService.call` with the caller the console is signed in as (a principal of the principals
 * file, chosen by its access key id; the account root without a file), so key policies and IAM
 * apply exactly as to an SDK request, in the Region the console's Region menu names (the request's
 * `aws:RequestedRegion`, as the SigV4 scope of an SDK client of that Region). The other endpoints
 * write nothing: the key policy the AWS console's wizard writes (generated-policies.ts
 * `keyPolicyFor`), the validation CreateKey applies to a policy (`validateKeyPolicy`), the check
 * of a typed Region name, and the session (principals' ARNs, the Regions that hold keys).
 *
 * Browser safety (the console is a local web server, so other web pages and DNS rebinding are the
 * threats, OWASP "Cross-Site Request Forgery Prevention Cheat Sheet"):
 * - loopback only: the server refuses to start the console on a non-loopback interface, refuses
 *   non-loopback peers, and refuses any Host header other than 127.0.0.1 / localhost / [::1] with
 *   the server's port (a rebound DNS name carries its own Host);
 * - a per-process random CSRF token, given to the page in a <meta> element, must come back in the
 *   `X-CSRF-Token` header of every POST (a cross-site form cannot set headers), and a POST whose
 *   Origin is not the console's own is refused;
 * - Content-Security-Policy without inline scripts, no framing; assets are served `no-store`;
 * - outputs never carry secrets: operations that return plaintext (Decrypt, GenerateDataKey, ...)
 *   are not offered, and any `Plaintext` member would be dropped before answering.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { KmsServiceError } from './errors.js';
import { consoleKeyKind, keyPolicyFor } from './generated-policies.js';
import { validateKeyPolicy } from './policy.js';
import { resolveCaller, type PrincipalEntry } from './principals.js';
import { checkRegionName } from './regions.js';
import type { RequestOrigin } from './request-context.js';
import type { LocalKmsService } from './service.js';
import { decodeInput, encodeOutput } from './shapes.js';

/** The Content-Security-Policy of every console answer: own scripts and styles only, no inline code. */
export const CONSOLE_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/**
 * KMS operations the console may call. Nothing here returns plaintext or key material: Decrypt,
 * GenerateDataKey(Pair), GenerateRandom and DeriveSharedSecret are left out on purpose.
 */
export const CONSOLE_OPERATIONS: readonly string[] = [
  'ListKeys', 'DescribeKey', 'ListAliases', 'CreateKey', 'CreateAlias', 'DeleteAlias', 'UpdateKeyDescription',
  'EnableKey', 'DisableKey', 'ScheduleKeyDeletion', 'CancelKeyDeletion', 'GetKeyPolicy', 'PutKeyPolicy',
  'ListResourceTags', 'TagResource', 'UntagResource', 'GetKeyRotationStatus', 'EnableKeyRotation', 'DisableKeyRotation',
  'RotateKeyOnDemand', 'ListKeyRotations', 'GetPublicKey', 'GetParametersForImport', 'ImportKeyMaterial',
  'DeleteImportedKeyMaterial', 'Encrypt', 'GenerateDataKeyWithoutPlaintext',
  // Read-only: the wizard's "Custom key store" origin and the key stores page. Its answer has no
  // password (AWS never returns KeyStorePassword or XksProxyAuthenticationCredential).
  'DescribeCustomKeyStores',
];

const SECRET_MEMBERS = new Set(['Plaintext', 'SharedSecret', 'PrivateKeyPlaintext']);
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);
const ASSET_NAME = /^[a-z0-9-]+\.(?:js|css|html)$/;
const MAX_API_BODY = 256 * 1024;
const TYPES: Record<string, string> = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8', html: 'text/html; charset=utf-8' };

/** Whether `host` (a bind address) is a loopback interface. */
export function isLoopbackAddress(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || /^::ffff:127\./.test(host);
}

/** The directory of the console's static assets: beside this module in src/, under dist/local-kms/ once built. */
function assetDir(): string {
  for (const rel of ['./console/', '../local-kms/console/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(`${dir}index.html`)) return dir;
  }
  throw new Error('local-kms console assets not found (run npm run build)');
}

export interface ConsoleSettings {
  service: LocalKmsService;
  principals: Map<string, PrincipalEntry> | undefined;
  /** The port the server listens on, known once it listens (the Host check needs it). */
  port(): number;
  /** What the transport knows of the request (server.ts requestOrigin). */
  origin(req: IncomingMessage): RequestOrigin;
}

export interface ConsoleHandler {
  /** Answers a request whose path is /console or below. `body` was read by the server (size-limited). */
  handle(req: IncomingMessage, res: ServerResponse, path: string, body: Buffer): Promise<void>;
  /** Whether the request's Host names this server on loopback (the server applies it to every path). */
  hostAllowed(req: IncomingMessage): boolean;
}

function sameToken(a: string, b: string): boolean {
  const d = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(d(a), d(b));
}

function headers(type: string, length: number): Record<string, string | number> {
  return {
    'Content-Type': type,
    'Content-Length': length,
    'Content-Security-Policy': CONSOLE_CSP,
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, headers('application/json; charset=utf-8', Buffer.byteLength(text)));
  res.end(text);
}

function sendKmsError(res: ServerResponse, e: KmsServiceError): void {
  sendJson(res, e.status, { __type: e.type, message: e.message });
}

/** Drops secret members at any depth (defence in depth: no allowed operation returns one). */
function withoutSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSecrets);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const [k, v] of Object.entries(value)) if (!SECRET_MEMBERS.has(k)) out[k] = withoutSecrets(v);
    return out;
  }
  return value;
}

const forbidden = (message: string) => new KmsServiceError('AccessDeniedException', message, 403);

export function createConsole(settings: ConsoleSettings): ConsoleHandler {
  const dir = assetDir();
  const csrf = randomBytes(32).toString('base64url');
  const assets = new Map<string, Buffer>();
  for (const name of readdirSync(dir)) if (ASSET_NAME.test(name)) assets.set(name, readFileSync(`${dir}${name}`));
  const index = Buffer.from(assets.get('index.html')!.toString('utf8').replace('__CSRF_TOKEN__', csrf), 'utf8');

  const accountId = settings.service.accountId;
  const principals = settings.principals;

  /** Host must name this server on loopback (DNS rebinding sends the attacker's name). */
  function hostAllowed(req: IncomingMessage): boolean {
    const host = req.headers.host ?? '';
    const m = /^(.*?)(?::(\d+))?$/.exec(host.toLowerCase());
    if (!m || !LOOPBACK_HOSTS.has(m[1]!)) return false;
    return m[2] === undefined ? settings.port() === 80 : Number(m[2]) === settings.port();
  }

  function originAllowed(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return true; // non-browser clients; the CSRF token still applies
    try {
      const u = new URL(origin);
      return u.protocol === 'http:' && LOOPBACK_HOSTS.has(u.hostname === '::1' ? '[::1]' : u.hostname) && Number(u.port || 80) === settings.port();
    } catch {
      return false;
    }
  }

  /**
   * The Region a console request acts in, checked as the KMS endpoint checks a credential scope's
   * Region (auth.ts servesRegion: well formed and in the partition of the server's Region), but
   * answered as a ValidationException naming the problem: the console's Region menu takes typed
   * names, and "the security token is invalid" would not tell the user what is wrong.
   */
  function regionOf(value: unknown): string {
    let region: string;
    try {
      region = checkRegionName(value);
    } catch (e) {
      throw new KmsServiceError('ValidationException', (e as Error).message);
    }
    const service = settings.service;
    if (!service.regions.serves(region)) {
      // Cut as checkRegionName cuts it: a well-formed name may be any length, and is not echoed whole.
      throw new KmsServiceError('ValidationException', `${region.slice(0, 64)} is not in the partition of this local KMS (${service.regions.partition}, default Region ${service.defaultRegion}).`);
    }
    return region;
  }

  /**
   * The Regions the Region menu offers: the default and every Region holding a key (sorted). Which
   * Regions are in use is no secret of any one principal (the AWS console lists every Region to
   * everyone); the keys themselves are listed through ListKeys as the signed-in principal.
   */
  function regionsInUse(): string[] {
    const service = settings.service;
    const used = new Set([service.defaultRegion]);
    for (const core of service.regions.all()) if (core.keys.size > 0) used.add(core.region);
    return [...used].sort();
  }

  function parseBody(req: IncomingMessage, body: Buffer): Record<string, unknown> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') throw new KmsServiceError('SerializationException', 'Content-Type must be application/json.');
    if (body.length > MAX_API_BODY) throw new KmsServiceError('RequestEntityTooLargeException', `Request body exceeds ${MAX_API_BODY} bytes.`, 413);
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
    } catch {
      throw new KmsServiceError('SerializationException', 'The request body is not valid JSON.');
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new KmsServiceError('SerializationException', 'Expected a JSON object.');
    return parsed as Record<string, unknown>;
  }

  async function api(req: IncomingMessage, res: ServerResponse, route: string, body: Buffer): Promise<void> {
    if (route === 'session' && req.method === 'GET') {
      // Access key ids and ARNs only: secrets and session tokens of the file never leave the server.
      sendJson(res, 200, {
        accountId,
        region: settings.service.defaultRegion,
        regions: regionsInUse(),
        principals: principals === undefined ? null : [...principals.entries()].map(([accessKeyId, e]) => ({ accessKeyId, arn: e.arn })),
      });
      return;
    }
    if (req.method !== 'POST') throw new KmsServiceError('UnknownOperationException', `No route for ${req.method} /console/api/${route}`, 404);
    const token = req.headers['x-csrf-token'];
    if (typeof token !== 'string' || !sameToken(token, csrf)) throw forbidden('Missing or invalid CSRF token.');
    if (!originAllowed(req)) throw forbidden('Cross-origin request refused.');
    const input = parseBody(req, body);
    if (route === 'call') {
      const operation = typeof input.operation === 'string' ? input.operation : '';
      if (!CONSOLE_OPERATIONS.includes(operation)) throw new KmsServiceError('UnsupportedOperationException', `The console does not offer ${operation || 'this operation'}.`);
      // The signed-in principal: by access key id from the principals file; without a file, the root.
      const accessKeyId = typeof input.principal === 'string' ? input.principal : undefined;
      const caller = resolveCaller(principals === undefined ? undefined : accessKeyId, principals, { accountId });
      // The Region menu's choice goes where an SDK puts it: the Region of the request (SigV4 scope),
      // so aws:RequestedRegion and the key ARNs are that Region's.
      const origin = settings.origin(req);
      if (input.region !== undefined) origin.requestedRegion = regionOf(input.region);
      const decoded = decodeInput(operation, input.input ?? {});
      const output = await settings.service.call(operation, decoded, caller, origin);
      sendJson(res, 200, withoutSecrets(encodeOutput(output)));
      return;
    }
    if (route === 'key-policy') {
      const list = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
      let policy: string;
      try {
        policy = keyPolicyFor({
          accountId,
          administrators: list(input.administrators),
          users: list(input.users),
          keyKind: consoleKeyKind(String(input.keySpec ?? 'SYMMETRIC_DEFAULT'), String(input.keyUsage ?? 'ENCRYPT_DECRYPT')),
          externalOrigin: input.external === true,
          administratorsCanDelete: input.administratorsCanDelete !== false,
        });
      } catch (e) {
        throw new KmsServiceError('ValidationException', (e as Error).message);
      }
      sendJson(res, 200, { policy });
      return;
    }
    if (route === 'region') {
      sendJson(res, 200, { region: regionOf(input.region) });
      return;
    }
    if (route === 'validate-policy') {
      if (typeof input.policy !== 'string') throw new KmsServiceError('ValidationException', 'policy must be a string.');
      validateKeyPolicy(input.policy);
      sendJson(res, 200, { valid: true });
      return;
    }
    throw new KmsServiceError('UnknownOperationException', `No route for POST /console/api/${route}`, 404);
  }

  return {
    hostAllowed,
    async handle(req, res, path, body) {
      try {
        const peer = req.socket.remoteAddress ?? '';
        if (!isLoopbackAddress(peer)) throw forbidden('The console answers loopback clients only.');
        if (!hostAllowed(req)) throw forbidden('Host header must be 127.0.0.1, localhost or [::1] with this port.');
        if (path.startsWith('/console/api/')) {
          await api(req, res, path.slice('/console/api/'.length), body);
          return;
        }
        if (req.method !== 'GET' && req.method !== 'HEAD') throw new KmsServiceError('UnknownOperationException', `No route for ${req.method} ${path}`, 404);
        const name = path === '/console' || path === '/console/' ? 'index.html' : path.slice('/console/'.length);
        const content = name === 'index.html' ? index : assets.get(name);
        if (!ASSET_NAME.test(name) || content === undefined) throw new KmsServiceError('UnknownOperationException', `No route for GET ${path}`, 404);
        res.writeHead(200, headers(TYPES[name.split('.').pop()!]!, content.length));
        res.end(req.method === 'HEAD' ? undefined : content);
      } catch (e) {
        if (e instanceof KmsServiceError) sendKmsError(res, e);
        else {
          process.stderr.write(`local-kms console: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
          sendKmsError(res, new KmsServiceError('KMSInternalException', 'An internal error occurred.', 500));
        }
      }
    },
  };
}
