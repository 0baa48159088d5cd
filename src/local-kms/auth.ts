/**
 * Who is calling the local KMS: the authentication step of the HTTP server, between reading a
 * request and dispatching it (KMS operations and, with a principals file, `/_local/clock`).
 *
 * Without a principals file nobody is authenticated: every request, signed with any credentials or
 * not signed at all, is the account root (the offline default). With one, AWS's rules apply to
 * every request (IAM User Guide, "Elements of an AWS API request signature"; KMS API Reference,
 * "Common Errors"): exactly one SigV4 Authorization header is required, its credential scope must
 * name the Region this server serves, `host`, the date and every `x-amz-*` header must be signed
 * and the signing time must be within five minutes; the access key must be in the file (unless
 * unknown keys are explicitly allowed to act as the root); a session token must be sent exactly
 * when the entry has one, and be that one; and when the file gives the secret the signature itself
 * is verified. An entry without a secret cannot have its signature verified: its access key id
 * (and its session token, if it has one) alone identify the caller, after every other check.
 *
 * The Authorization header is parsed once (sigv4.ts); the Region the request names
 * (aws:RequestedRegion) is taken from that same parse, the one the signature was checked against.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { checkSigV4, claimedAuthorization, securityTokenOf, verifySigV4Signature, type SignedRequest } from './sigv4.js';
import { resolveCaller, type PrincipalEntry } from './principals.js';
import { KmsServiceError } from './errors.js';
import type { Caller } from './policy-types.js';

export interface AuthSettings {
  /** The principals file's entries, or undefined when the server runs without one. */
  principals: Map<string, PrincipalEntry> | undefined;
  /** With principals: unknown access keys act as the account root instead of being refused. */
  allowUnknownKeysAsRoot: boolean;
  accountId: string;
  /** Whether the server serves a Region (credential scopes must name one it serves). */
  servesRegion: (region: string) => boolean;
}

/** The outcome of authentication. */
export interface Authenticated {
  caller: Caller;
  /**
   * The Region of the request's credential scope (aws:RequestedRegion), from the one parse of its
   * Authorization header. With principals it is the verified scope, so always a Region the server
   * serves; without, the Region a well-formed header names; absent for a request without one.
   */
  requestedRegion?: string;
}

/** Same answer as an unknown access key: AWS does not say whether the key or the token was wrong. */
const invalidToken = () => new KmsServiceError('UnrecognizedClientException', 'The security token included in the request is invalid.');

/** Constant-time equality of two tokens of any lengths (their SHA-256 digests are compared). */
function sameToken(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(a), digest(b));
}

/**
 * The caller of `req` and the Region it addressed, or a `KmsServiceError`
 * (MissingAuthenticationTokenException, IncompleteSignatureException, InvalidSignatureException,
 * UnrecognizedClientException). `nowMs` is wall-clock time: SDKs sign with the wall clock, not the
 * server's test clock.
 */
export function authenticate(req: SignedRequest, settings: AuthSettings, nowMs: number): Authenticated {
  const { principals } = settings;
  if (principals === undefined) {
    const claimed = claimedAuthorization(req);
    return {
      caller: resolveCaller(claimed?.accessKeyId, undefined, { accountId: settings.accountId }),
      ...(claimed !== undefined ? { requestedRegion: claimed.region } : {}),
    };
  }
  const auth = checkSigV4(req, { nowMs, region: settings.servesRegion });
  const caller = resolveCaller(auth.accessKeyId, principals, {
    accountId: settings.accountId,
    allowUnknownKeysAsRoot: settings.allowUnknownKeysAsRoot,
  });
  const entry = principals.get(auth.accessKeyId);
  if (entry !== undefined) {
    // Temporary credentials are valid only with their token, a long-term key only without one
    // (IAM User Guide, "Temporary security credentials in IAM"). Checked before the signature, as
    // AWS resolves the credentials (the token) before it can verify what they signed.
    const token = securityTokenOf(req.headers);
    const expected = entry.sessionToken;
    if (expected === undefined ? token !== undefined : token === undefined || !sameToken(token, expected)) throw invalidToken();
    if (entry.secretAccessKey !== undefined) verifySigV4Signature(req, auth, entry.secretAccessKey);
  }
  return { caller, requestedRegion: auth.region };
}
