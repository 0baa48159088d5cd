/**
 * AWS Signature Version 4 verification for the local KMS (header-signed requests; IAM User Guide,
 * "Create a signed AWS API request" and "Elements of an AWS API request signature"). Once a
 * principals file is configured every request goes through `checkSigV4` (header, scope, signed
 * headers, clock), and through `verifySigV4Signature` when the file gives the caller's secret.
 *
 *   canonical request = method \n canonical URI \n canonical query \n canonical headers \n
 *                       signed headers \n hex(SHA-256(body))
 *   string to sign    = "AWS4-HMAC-SHA256" \n X-Amz-Date \n date/region/service/aws4_request \n
 *                       hex(SHA-256(canonical request))
 *   signing key       = HMAC chain "AWS4"+secret -> date -> region -> service -> "aws4_request"
 *
 * The payload hash is always recomputed from the body received; `x-amz-content-sha256` is never
 * trusted, so a signature replayed on another body fails. Errors are named and worded as AWS JSON
 * services (KMS) answer them.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { KmsServiceError } from './errors.js';

const ALGORITHM = 'AWS4-HMAC-SHA256';
/**
 * How far a signing time may be from the server's clock, either way: five minutes. IAM User Guide,
 * "AWS Signature Version 4 for API requests" ("Protect against potential replay attacks": in most
 * cases a request must reach AWS within five minutes of its time stamp), and AWS KMS answers a
 * request outside it with "Signature expired: ... (<now> - 5 min.)" (reported by KMS users in
 * aws/aws-sdk-js#2340 and aws/aws-sdk-js-v3#6400). Some other services allow 15 minutes; KMS
 * does not, and the shorter window is also the stricter one.
 */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;
const SKEW_MINUTES = MAX_CLOCK_SKEW_MS / 60_000;
const SERVICE = 'kms';

export interface SignedRequest {
  method: string;
  /** Request target as received (`req.url`): path, optionally followed by `?query`. */
  path: string;
  headers: IncomingHttpHeaders;
  /**
   * The headers as received, name/value alternating (`req.rawHeaders`). Node keeps only the first
   * of several Authorization headers in `headers`; with this, a request carrying more than one is
   * refused instead of being read through whichever Node kept.
   */
  rawHeaders?: readonly string[];
  body: Buffer;
}

/** The parts of a SigV4 Authorization header. */
export interface ParsedAuthorization {
  accessKeyId: string;
  /** Credential scope: `YYYYMMDD`, Region, service, terminator (`aws4_request`). */
  date: string;
  region: string;
  service: string;
  terminator: string;
  /** Signed header names, lower case, in the order given. */
  signedHeaders: string[];
  signature: string;
}

const incomplete = (message: string) => new KmsServiceError('IncompleteSignatureException', message);
const invalid = (message: string) => new KmsServiceError('InvalidSignatureException', message);

/**
 * A header's value, own properties only: names come from the client (SignedHeaders), and
 * `constructor` or `__proto__` must read as an absent header, not as Object.prototype members.
 */
function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  if (!Object.hasOwn(headers, name)) return undefined;
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : v;
}

/** The three parameters of an AWS4-HMAC-SHA256 Authorization header, each exactly once. */
const PARAMETERS = ['Credential', 'SignedHeaders', 'Signature'] as const;
type Parameter = (typeof PARAMETERS)[number];

/**
 * Reads `AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/kms/aws4_request,
 * SignedHeaders=host;x-amz-date, Signature=abcd`: the algorithm, then parameters separated by
 * commas and/or spaces, in any order. This is the only reader of the header: the caller's access
 * key, the Region checked against the server's, the Region of aws:RequestedRegion and the scope
 * the signature is computed over all come from one result, so no part of the header can say one
 * thing to the signature check and another to the policy engine.
 *
 * Strict where AWS is silent (IAM User Guide, "Elements of an AWS API request signature" describes
 * one Credential, one SignedHeaders and one Signature): a repeated parameter, an unknown one or a
 * part that is not name=value is IncompleteSignatureException, never skipped. A part without `=`
 * is worded as AWS words it ("'<part>' not a valid key=value pair (missing equal-sign) in
 * Authorization header: '<header>'."). Missing or empty parameters and a Credential that is not
 * five slash-separated elements are `problems`, reported together as AWS reports them.
 */
function readAuthorization(value: string): { parsed?: ParsedAuthorization; problems: string[] } {
  const trimmed = value.trim();
  const space = trimmed.search(/\s/);
  const algorithm = space < 0 ? trimmed : trimmed.slice(0, space);
  const parts = (space < 0 ? '' : trimmed.slice(space)).split(/[\s,]+/).filter((p) => p.length > 0);
  if (algorithm !== ALGORITHM) {
    throw incomplete(`Unsupported AWS 'algorithm': '${algorithm.slice(0, 64)}'. Only '${ALGORITHM}' is supported.`);
  }
  const params = new Map<Parameter, string>();
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq < 0) {
      throw incomplete(`'${part.slice(0, 128)}' not a valid key=value pair (missing equal-sign) in Authorization header: '${trimmed.slice(0, 512)}'.`);
    }
    const name = part.slice(0, eq);
    if (!(PARAMETERS as readonly string[]).includes(name)) {
      throw incomplete(`'${name.slice(0, 64)}' is not a parameter of an ${ALGORITHM} Authorization header (only Credential, SignedHeaders and Signature are).`);
    }
    if (params.has(name as Parameter)) throw incomplete(`Authorization header has more than one '${name}' parameter.`);
    params.set(name as Parameter, part.slice(eq + 1));
  }
  const problems = ['Credential', 'Signature', 'SignedHeaders']
    .filter((p) => !params.get(p as Parameter))
    .map((p) => `Authorization header requires '${p}' parameter.`);
  const credentialText = params.get('Credential');
  const credential = credentialText?.split('/') ?? [];
  if (credentialText && (credential.length !== 5 || credential.some((c) => c.length === 0))) {
    problems.push(
      `Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '${credentialText.slice(0, 128)}'.`,
    );
  }
  if (problems.length > 0) return { problems };
  const signedHeaders = params.get('SignedHeaders')!.split(';').map((h) => h.trim().toLowerCase()).filter(Boolean);
  const [accessKeyId, date, region, service, terminator] = credential as [string, string, string, string, string];
  return { problems, parsed: { accessKeyId, date, region, service, terminator, signedHeaders, signature: params.get('Signature')! } };
}

/**
 * The parts of an Authorization header value, or IncompleteSignatureException when it is not
 * exactly one SigV4 authorization (see readAuthorization for the rules and wording).
 */
export function parseAuthorization(value: string): ParsedAuthorization {
  const { parsed, problems } = readAuthorization(value);
  if (!parsed) throw incomplete(problems.join(' '));
  return parsed;
}

/**
 * The request's one Authorization header: undefined when there is none, IncompleteSignatureException
 * when it came more than once (Node would keep the first and drop the others unseen).
 */
function authorizationHeader(req: Pick<SignedRequest, 'headers' | 'rawHeaders'>): string | undefined {
  if (req.rawHeaders) {
    let count = 0;
    for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === 'authorization') count++;
    if (count > 1) throw incomplete('A request may carry only one Authorization header.');
  }
  return headerValue(req.headers, 'authorization') || undefined;
}

/**
 * What a request's Authorization header claims, read by the same strict parser, without checking
 * it: for a server that authenticates nobody (no principals file), where the header only names the
 * access key and Region the client used. A header that does not parse claims nothing.
 */
export function claimedAuthorization(req: Pick<SignedRequest, 'headers' | 'rawHeaders'>): ParsedAuthorization | undefined {
  try {
    const value = authorizationHeader(req);
    return value === undefined ? undefined : parseAuthorization(value);
  } catch (e) {
    if (e instanceof KmsServiceError) return undefined;
    throw e;
  }
}

/** The access key id a request claims (Authorization header Credential), or undefined. */
export function accessKeyIdOf(headers: IncomingHttpHeaders): string | undefined {
  return claimedAuthorization({ headers })?.accessKeyId;
}

/**
 * The session token a request carries (`X-Amz-Security-Token`, IAM User Guide "Create a signed
 * AWS API request": how temporary credentials are sent), or undefined.
 */
export function securityTokenOf(headers: IncomingHttpHeaders): string | undefined {
  return headerValue(headers, 'x-amz-security-token');
}

/** RFC 3986 escaping as SigV4 wants it: encodeURIComponent plus `!'()*`. */
function escapeUri(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Canonical URI for services other than S3: the path normalized (empty, `.` and `..` segments
 * removed) and URI-encoded once more on top of its wire encoding, `/` kept.
 */
function canonicalUri(rawPath: string): string {
  const segments: string[] = [];
  for (const seg of rawPath.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') segments.pop();
    else segments.push(seg);
  }
  const normalized =
    (rawPath.startsWith('/') ? '/' : '') + segments.join('/') + (segments.length > 0 && rawPath.endsWith('/') ? '/' : '');
  return escapeUri(normalized).replace(/%2F/g, '/');
}

/** Canonical query: each name and value decoded then re-encoded, sorted by name then value. */
function canonicalQuery(rawQuery: string): string {
  if (!rawQuery) return '';
  const pairs = rawQuery
    .split('&')
    .filter(Boolean)
    .map((p) => {
      const eq = p.indexOf('=');
      const k = eq < 0 ? p : p.slice(0, eq);
      const v = eq < 0 ? '' : p.slice(eq + 1);
      return [escapeUri(safeDecode(k)), escapeUri(safeDecode(v))] as const;
    })
    .filter(([k]) => k !== 'X-Amz-Signature');
  pairs.sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/** Header values trimmed, inner runs of spaces collapsed (SigV4 canonical headers). */
function canonicalHeaderValue(v: string): string {
  return v.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').trim();
}

/** `20240102T030405Z` -> epoch ms, or NaN. */
function parseAmzDate(s: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return NaN;
  const [, y, mo, d, h, mi, se] = m.map(Number) as [number, number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, se);
  const back = new Date(ms);
  return back.getUTCDate() === d && back.getUTCMonth() === mo - 1 ? ms : NaN;
}

/** Epoch ms -> `20240102T030405Z`. */
export function formatAmzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

const sha256Hex = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** The SigV4 service name of XKS proxy requests (XKS Proxy API Specification, Appendix A). */
export const XKS_SIGV4_SERVICE = 'kms-xks-proxy';

/**
 * SigV4's string to sign and signature of a canonical request, for a credential scope
 * (`date` YYYYMMDD, Region, service) and signing time `amzDate`: what a signer sends and a
 * verifier recomputes.
 */
export function sigV4Signature(
  secretAccessKey: string,
  scope: { date: string; region: string; service: string },
  amzDate: string,
  canonicalRequest: string,
): { stringToSign: string; signature: Buffer } {
  const stringToSign = [ALGORITHM, amzDate, `${scope.date}/${scope.region}/${scope.service}/aws4_request`, sha256Hex(canonicalRequest)].join('\n');
  let key = hmac(`AWS4${secretAccessKey}`, scope.date);
  key = hmac(key, scope.region);
  key = hmac(key, scope.service);
  key = hmac(key, 'aws4_request');
  return { stringToSign, signature: createHmac('sha256', key).update(stringToSign, 'utf8').digest() };
}

/** What the server checks a signature against. */
export interface SigV4Options {
  /** The server's time, epoch milliseconds; the signing time must be within MAX_CLOCK_SKEW_MS of it. */
  nowMs: number;
  /**
   * The Region this server serves, or a test of the Regions it serves: the credential scope must
   * name one.
   */
  region: string | ((region: string) => boolean);
  /**
   * The service name the credential scope must name: `kms` (the default) for the local KMS,
   * `kms-xks-proxy` for the XKS proxy (XKS Proxy API Specification, Appendix A).
   */
  service?: string;
}

/** A request's SigV4 Authorization that passed every check but the signature itself. */
export interface SigV4Authorization {
  accessKeyId: string;
  /** Credential scope: `YYYYMMDD`, Region, service (`kms`). */
  date: string;
  region: string;
  service: string;
  /** Signed header names, lower case, sorted, unique. */
  signedHeaders: string[];
  signature: string;
  /** Signing time in ISO 8601 basic format (`X-Amz-Date`, or the `Date` header converted). */
  amzDate: string;
}

/**
 * Checks everything about a request's SigV4 authentication that needs no secret, in the order AWS
 * services report it: the Authorization header and its parts, the signing time's format, the
 * signed headers, the credential scope, then the signing time's distance from `nowMs`. Throws
 * `KmsServiceError`: `MissingAuthenticationTokenException` (no Authorization header),
 * `IncompleteSignatureException` (more than one Authorization header, unsupported algorithm,
 * missing, repeated, unknown or malformed parts, no or garbled date),
 * `InvalidSignatureException` (a header that must be signed is not, a scope naming another
 * Region, service, terminator or date, a signing time more than 5 minutes away).
 *
 * Signed headers (IAM User Guide, "Create a signed AWS API request"): `host`, the date header
 * used, and every `x-amz-*` header the request carries. For KMS that includes `x-amz-target`,
 * which names the operation: left unsigned, a captured request could be replayed as another
 * operation (DescribeKey as ScheduleKeyDeletion) with its signature still valid.
 */
export function checkSigV4(req: SignedRequest, opts: SigV4Options): SigV4Authorization {
  if (typeof opts.region !== 'function' && (typeof opts.region !== 'string' || opts.region.length === 0)) {
    throw new TypeError('region must be a non-empty string or a function');
  }
  const served = opts.region;
  const service = opts.service ?? SERVICE;
  if (!Number.isFinite(opts.nowMs)) throw new TypeError('nowMs must be a finite number of epoch milliseconds');
  const authorization = authorizationHeader(req);
  if (!authorization) {
    throw new KmsServiceError('MissingAuthenticationTokenException', 'Request is missing Authentication Token');
  }
  const { parsed, problems } = readAuthorization(authorization);
  const amzDateHeader = headerValue(req.headers, 'x-amz-date');
  const dateHeader = headerValue(req.headers, 'date');
  if (!parsed || (!amzDateHeader && !dateHeader)) {
    if (!amzDateHeader && !dateHeader) {
      problems.push("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
    }
    throw incomplete(problems.join(' '));
  }

  // Signing time: X-Amz-Date (ISO 8601 basic format), else the HTTP Date header.
  let signedAtMs: number;
  let amzDate: string;
  if (amzDateHeader) {
    signedAtMs = parseAmzDate(amzDateHeader.trim());
    if (Number.isNaN(signedAtMs)) {
      throw incomplete(`Date must be in ISO-8601 'basic format'. Got '${amzDateHeader.slice(0, 64)}'.`);
    }
    amzDate = amzDateHeader.trim();
  } else {
    signedAtMs = Date.parse(dateHeader!);
    if (Number.isNaN(signedAtMs)) throw incomplete(`Date header is not a valid HTTP date: '${dateHeader!.slice(0, 64)}'.`);
    amzDate = formatAmzDate(signedAtMs);
  }

  // Headers that must be signed: without the host the signature could be sent to another
  // endpoint, without the date replayed after the window, without an x-amz-* header (the target
  // above all) the request could be changed in what it asks for.
  const signed = new Set(parsed.signedHeaders);
  if (!signed.has('host')) {
    throw invalid("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
  }
  if (!signed.has(amzDateHeader ? 'x-amz-date' : 'date')) {
    throw invalid(`'${amzDateHeader ? 'X-Amz-Date' : 'Date'}' must be a 'SignedHeader' in the AWS Authorization.`);
  }
  const unsignedAmz = Object.keys(req.headers)
    .map((name) => name.toLowerCase())
    .filter((name) => name.startsWith('x-amz-') && !signed.has(name))
    .sort();
  if (unsignedAmz.length > 0) {
    throw invalid(`'${unsignedAmz[0]!.slice(0, 64)}' must be a 'SignedHeader' in the AWS Authorization.`);
  }

  // Credential scope: <date>/<region>/kms/aws4_request, its date the signing date, its Region the
  // one this server serves. AWS reports every scope problem at once.
  const scope: string[] = [];
  if (typeof served === 'string' ? parsed.region !== served : !served(parsed.region)) scope.push(`Credential should be scoped to a valid region, not '${parsed.region.slice(0, 64)}'.`);
  if (parsed.service !== service) scope.push(`Credential should be scoped to correct service: '${service}'.`);
  if (parsed.terminator !== 'aws4_request') {
    scope.push(`Credential should be scoped with a valid terminator: 'aws4_request', not '${parsed.terminator.slice(0, 64)}'.`);
  }
  if (parsed.date !== amzDate.slice(0, 8)) {
    scope.push(
      `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: ` +
        `'${parsed.date.slice(0, 16)}' != '${amzDate.slice(0, 8)}', from '${amzDate}'.`,
    );
  }
  if (scope.length > 0) throw invalid(scope.join(' '));

  // Clock skew, worded as AWS KMS words it (e.g. "Signature expired: 20181105T215603Z is now
  // earlier than 20181105T221104Z (20181105T221604Z - 5 min.)").
  const nowMs = opts.nowMs;
  if (signedAtMs < nowMs - MAX_CLOCK_SKEW_MS) {
    throw invalid(
      `Signature expired: ${amzDate} is now earlier than ${formatAmzDate(nowMs - MAX_CLOCK_SKEW_MS)} ` +
        `(${formatAmzDate(nowMs)} - ${SKEW_MINUTES} min.)`,
    );
  }
  if (signedAtMs > nowMs + MAX_CLOCK_SKEW_MS) {
    throw invalid(
      `Signature not yet current: ${amzDate} is still later than ${formatAmzDate(nowMs + MAX_CLOCK_SKEW_MS)} ` +
        `(${formatAmzDate(nowMs)} + ${SKEW_MINUTES} min.)`,
    );
  }

  return {
    accessKeyId: parsed.accessKeyId,
    date: parsed.date,
    region: parsed.region,
    service: parsed.service,
    signedHeaders: [...signed].sort(),
    signature: parsed.signature,
    amzDate,
  };
}

/**
 * Verifies the signature of a request `checkSigV4` accepted, with the caller's secret access key:
 * the canonical request is rebuilt from what was received (the body hashed here, never taken from
 * `x-amz-content-sha256`) and the HMAC compared in constant time. Throws
 * `InvalidSignatureException` on a mismatch, including a signature replayed on another body,
 * method, path, query or signed header value.
 */
export function verifySigV4Signature(req: SignedRequest, auth: SigV4Authorization, secretAccessKey: string): void {
  const q = req.path.indexOf('?');
  const rawPath = q < 0 ? req.path : req.path.slice(0, q);
  const rawQuery = q < 0 ? '' : req.path.slice(q + 1);
  const canonicalHeaders = auth.signedHeaders
    .map((name) => `${name}:${canonicalHeaderValue(headerValue(req.headers, name) ?? '')}\n`)
    .join('');
  const canonicalRequest = [
    req.method.toUpperCase(),
    canonicalUri(rawPath || '/'),
    canonicalQuery(rawQuery),
    canonicalHeaders,
    auth.signedHeaders.join(';'),
    sha256Hex(req.body),
  ].join('\n');
  const { stringToSign, signature: expected } = sigV4Signature(secretAccessKey, auth, auth.amzDate, canonicalRequest);

  // Constant-time comparison of the raw 32-byte MACs; a malformed hex signature simply mismatches.
  const wellFormed = /^[0-9a-f]{64}$/i.test(auth.signature);
  const given = wellFormed ? Buffer.from(auth.signature, 'hex') : Buffer.alloc(32);
  const ok = timingSafeEqual(given, expected) && wellFormed;
  if (!ok) {
    // Like AWS, tell the client what was signed (nothing secret: no key, only request metadata).
    throw invalid(
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret ' +
        'Access Key and signing method. Consult the service documentation for details.\n\n' +
        `The Canonical String for this request should have been\n'${canonicalRequest}'\n\n` +
        `The String-to-Sign should have been\n'${stringToSign}'\n`,
    );
  }
}

/** `checkSigV4` then `verifySigV4Signature`: the whole SigV4 verification with a known secret. */
export function verifySigV4(req: SignedRequest, secretAccessKey: string, opts: SigV4Options): void {
  verifySigV4Signature(req, checkSigV4(req, opts), secretAccessKey);
}
