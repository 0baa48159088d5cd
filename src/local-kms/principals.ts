/**
 * Principals of the local KMS: who is calling, from the SigV4 access key id.
 *
 * The principals file (`--principals FILE`) maps access key ids to IAM principal ARNs and, optionally,
 * to the secret access key; with a secret the server verifies the request signature (sigv4.ts).
 * Once a file is given, only its keys are callers (resolveCaller; auth.ts checks the signature).
 * File shape: `{ "<accessKeyId>": { "arn": "arn:aws:iam::111122223333:user/alice", "secretAccessKey": "...",
 * "userId": "AIDA...", "tags": { "team": "payments" } } }`. `userId` and `tags` are optional: they are
 * the principal's IAM unique id (the base of `aws:userid`; absent, a stable id is derived from the
 * ARN) and its IAM tags (`aws:PrincipalTag/<key>`), see request-context.ts.
 *
 * `sessionToken` (optional) makes the entry temporary credentials, as STS issues them for a role
 * session (AssumeRole) or a federated user: the access key is valid only together with that token,
 * sent as `X-Amz-Security-Token` (IAM User Guide, "Temporary security credentials in IAM";
 * "Create a signed AWS API request"). A request for such an entry without the token, or with
 * another one, is UnrecognizedClientException, and so is a request that sends a token for an
 * entry without one (a long-term key): AWS answers "The security token included in the request
 * is invalid." (auth.ts). The token is compared, never logged or echoed.
 *
 * `tokenIssueTime` (optional, ISO 8601) is when the credentials of a role session, role entry or
 * federated user were issued: its `aws:TokenIssueTime`. Without it the time is unknown and
 * evaluated strictly over every time a live session can have been issued (request-context.ts
 * tokenIssueTimeRange). IAM users and the root user sign with long-term keys, which carry none.
 *
 * `policies` (optional) are the principal's IAM identity policies, an array of policy documents
 * (JSON objects). An entry with `policies`, even `[]`, has its IAM modelled (iam.ts): the account
 * principal of a key policy delegates to these policies, and operations AWS authorizes with IAM
 * policies alone need them. An entry without `policies` keeps the behaviour the local KMS had
 * before identity policies existed: IAM is not modelled for it. The account root has none.
 */
import { readFileSync } from 'node:fs';
import { KmsServiceError } from './errors.js';
import { findDuplicateMember, findInexactNumber } from './json-members.js';
import { inexactNumberMessage, parseIdentityPolicy } from './policy.js';
import type { Caller, IdentityPolicy } from './policy-types.js';

export interface PrincipalEntry {
  arn: string;
  secretAccessKey?: string;
  /**
   * Session token of temporary credentials (role session, federated user): requests must carry
   * exactly it in `X-Amz-Security-Token`. Absent: a long-term key, and requests must carry none.
   */
  sessionToken?: string;
  /** IAM unique id: `AIDA` + 17 characters for a user, `AROA` + 17 for a role (its sessions too). */
  userId?: string;
  /** IAM tags of the principal (the role's, for a role session). */
  tags?: Record<string, string>;
  /** When the temporary credentials were issued (aws:TokenIssueTime), ISO 8601 UTC to the second. */
  tokenIssueTime?: string;
  /** IAM identity policies of the principal (the role's, for a role session); absent: IAM not modelled. */
  policies?: readonly IdentityPolicy[];
}

/**
 * IAM's quota of managed policies per user or role is 20 (IAM User Guide, "IAM and AWS STS
 * quotas"); inline policies add a few more. A bound, so one entry cannot hold the server.
 */
const MAX_IDENTITY_POLICIES = 50;
/**
 * Largest policy document, in characters of its JSON without whitespace: IAM's largest
 * single-document quota (a role's inline policies, 10,240; managed policies 6,144), so no document
 * IAM accepts is refused, and evaluation stays bounded (policy.ts, "Bounded work").
 */
const MAX_IDENTITY_POLICY_CHARS = 10_240;

/** Checks and parses the optional `policies` of one entry; every problem names the entry and the policy. */
function identityPolicies(where: string, arn: string, policies: unknown): IdentityPolicy[] {
  if (/:root$/.test(arn)) {
    throw new Error(`${where}: "policies" cannot be set for the root user (IAM policies do not restrict the account root)`);
  }
  if (!Array.isArray(policies)) throw new Error(`${where}: "policies" must be an array of IAM identity policy documents (JSON objects)`);
  if (policies.length > MAX_IDENTITY_POLICIES) throw new Error(`${where}: "policies" has ${policies.length} documents; at most ${MAX_IDENTITY_POLICIES} are accepted`);
  return policies.map((doc, i) => {
    const size = JSON.stringify(doc)?.length ?? 0;
    if (size > MAX_IDENTITY_POLICY_CHARS) {
      throw new Error(`${where}: "policies"[${i}] has ${size} characters without whitespace; IAM accepts at most ${MAX_IDENTITY_POLICY_CHARS}`);
    }
    try {
      return parseIdentityPolicy(doc);
    } catch (err) {
      throw new Error(`${where}: "policies"[${i}]: ${err instanceof KmsServiceError ? err.message : String(err)}`);
    }
  });
}

/**
 * IAM unique ids as AWS issues them: a 4-letter prefix naming the kind (AIDA user, AROA role) and
 * upper-case letters and digits, 16 to 128 characters in all (IAM API, `UserId`/`RoleId`).
 */
const UNIQUE_ID = /^(AIDA|AROA)[A-Z0-9]{12,124}$/;
/** IAM tag keys: 1-128 characters, tag values 0-256, of letters, digits, spaces and `_.:/=+-@` (IAM API, Tag). */
const TAG_TEXT = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
const MAX_PRINCIPAL_TAGS = 50;

/** Checks the optional `userId` and `tags` of one entry; every problem names the entry. */
function principalAttributes(where: string, arn: string, userId: unknown, tags: unknown): Pick<PrincipalEntry, 'userId' | 'tags'> {
  const out: Pick<PrincipalEntry, 'userId' | 'tags'> = {};
  const kind = /:root$/.test(arn) ? 'root' : /:user\//.test(arn) ? 'user' : /:(role|assumed-role)\//.test(arn) ? 'role' : 'federated';
  if (userId !== undefined) {
    if (kind === 'root' || kind === 'federated') {
      throw new Error(`${where}: "userId" cannot be set for ${kind === 'root' ? 'the root user (its aws:userid is the account id)' : 'a federated user (its aws:userid is account:name)'}`);
    }
    const prefix = kind === 'user' ? 'AIDA' : 'AROA';
    if (typeof userId !== 'string' || !UNIQUE_ID.test(userId) || !userId.startsWith(prefix)) {
      throw new Error(`${where}: "userId" must be an IAM unique id starting with ${prefix} (${kind === 'user' ? 'IAM user' : 'IAM role'}), 16 to 128 upper-case letters and digits, e.g. ${prefix}J45Q7YFFAREXAMPLE`);
    }
    out.userId = userId;
  }
  if (tags !== undefined) {
    if (kind === 'root') throw new Error(`${where}: "tags" cannot be set for the root user (it has no IAM tags)`);
    if (typeof tags !== 'object' || tags === null || Array.isArray(tags)) {
      throw new Error(`${where}: "tags" must be an object mapping tag keys to string values`);
    }
    const entries = Object.entries(tags);
    if (entries.length > MAX_PRINCIPAL_TAGS) throw new Error(`${where}: "tags" has ${entries.length} tags; IAM allows at most ${MAX_PRINCIPAL_TAGS}`);
    const seen = new Set<string>();
    for (const [k, v] of entries) {
      if (k.length < 1 || k.length > 128 || !TAG_TEXT.test(k) || k.toLowerCase().startsWith('aws:')) {
        throw new Error(`${where}: tag key "${k}" must be 1 to 128 letters, digits, spaces or _.:/=+-@ and not start with aws:`);
      }
      if (typeof v !== 'string' || v.length > 256 || !TAG_TEXT.test(v)) {
        throw new Error(`${where}: tag "${k}" must have a string value of at most 256 letters, digits, spaces or _.:/=+-@`);
      }
      // Tag keys are case-insensitive in IAM (aws:PrincipalTag/<key> matches any case).
      if (seen.has(k.toLowerCase())) throw new Error(`${where}: tag keys "${k}" differ only by case from another tag key`);
      seen.add(k.toLowerCase());
    }
    out.tags = { ...(tags as Record<string, string>) };
  }
  return out;
}

/**
 * Session tokens: visible ASCII (STS tokens are base64 text), at most 16 KiB. STS does not fix the
 * size ("typically less than 4096 bytes", IAM User Guide, "Requesting temporary security
 * credentials"); Node refuses request headers past 16 KiB in all, so a longer token could never
 * arrive.
 */
const SESSION_TOKEN = /^[\x21-\x7e]+$/;
const MAX_SESSION_TOKEN_CHARS = 16_384;

/** ISO 8601 date and time with a zone, as AWS writes aws:TokenIssueTime (e.g. 2024-05-01T12:00:00Z). */
const ISO_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,9})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$/;

/** Milliseconds of an ISO 8601 date-time, NaN unless it names a real calendar day (no 30 February). */
function parseIsoDateTime(value: unknown): number {
  const m = typeof value === 'string' ? ISO_DATE_TIME.exec(value) : null;
  if (!m) return NaN;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (new Date(Date.UTC(y, mo - 1, d)).getUTCDate() !== d || mo < 1 || mo > 12) return NaN;
  return Date.parse(value as string);
}

/** Checks the optional `tokenIssueTime` of one entry; returns it as ISO 8601 UTC to the second. */
function tokenIssueTime(where: string, arn: string, value: unknown): string {
  if (!/:(?:assumed-role|role|federated-user)\//.test(arn)) {
    throw new Error(`${where}: "tokenIssueTime" is only for role sessions, roles and federated users (temporary credentials); IAM users and the root user sign with long-term access keys, which carry no aws:TokenIssueTime`);
  }
  const ms = parseIsoDateTime(value);
  if (!Number.isFinite(ms)) {
    throw new Error(`${where}: "tokenIssueTime" must be an ISO 8601 date and time with a zone, e.g. 2024-05-01T12:00:00Z`);
  }
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Access key ids as AWS issues them: 16..128 word characters (IAM API `AccessKeyId` constraints). */
const ACCESS_KEY_ID = /^\w{16,128}$/;
/**
 * Principals a caller can be: account root, IAM user, IAM role, STS assumed-role session. The
 * account id is part of the ARN and becomes `kms:CallerAccount`.
 */
const CALLER_ARN =
  /^arn:aws(?:-[a-z]+)*:(?:iam::(\d{12}):(?:root|user\/[\w+=,.@\/-]+|role\/[\w+=,.@\/-]+)|sts::(\d{12}):(?:assumed-role\/[\w+=,.@-]+\/[\w+=,.@-]+|federated-user\/[\w+=,.@-]+))$/;

/** Account id of a principal ARN, or undefined when the ARN is not a principal ARN. */
export function accountOfPrincipalArn(arn: string): string | undefined {
  const m = CALLER_ARN.exec(arn);
  return m ? (m[1] ?? m[2]) : undefined;
}

/**
 * Reads and checks a principals file. Every problem is reported as an Error naming the file and the
 * entry, never echoing a secret.
 */
export function loadPrincipals(file: string): Map<string, PrincipalEntry> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`principals file ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`principals file ${file}: not valid JSON (${(err as Error).message})`);
  }
  // JSON.parse keeps the last of two members with one name: an entry, a field or a member of an
  // identity policy given twice would be read one way silently (json-members.ts). Refused.
  const duplicate = findDuplicateMember(text);
  if (duplicate) throw new Error(`principals file ${file}: member "${duplicate.name}" appears twice in ${duplicate.path}`);
  // A number in an identity policy's condition is compared as text (policy-parse.ts
  // inexactNumberMessage); the file holds no other numbers.
  const inexact = findInexactNumber(text);
  if (inexact) throw new Error(inexactNumberMessage(`principals file ${file}`, inexact));
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new Error(`principals file ${file}: expected a JSON object mapping access key ids to { "arn": ..., "secretAccessKey"?: ..., "sessionToken"?: ..., "userId"?: ..., "tags"?: ..., "tokenIssueTime"?: ..., "policies"?: [...] }`);
  }
  const out = new Map<string, PrincipalEntry>();
  for (const [accessKeyId, entry] of Object.entries(doc)) {
    const where = `principals file ${file}: entry "${accessKeyId}"`;
    if (!ACCESS_KEY_ID.test(accessKeyId)) {
      throw new Error(`${where}: access key id must be 16 to 128 letters, digits or underscores`);
    }
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new Error(`${where}: expected an object { "arn": ..., "secretAccessKey"?: ... }`);
    }
    const { arn, secretAccessKey, sessionToken, userId, tags, policies, tokenIssueTime: issued, ...rest } = entry as Record<string, unknown>;
    const unknown = Object.keys(rest);
    if (unknown.length > 0) throw new Error(`${where}: unknown field(s) ${unknown.map((k) => `"${k}"`).join(', ')}`);
    if (typeof arn !== 'string' || accountOfPrincipalArn(arn) === undefined) {
      throw new Error(
        `${where}: "arn" must be an IAM principal ARN such as arn:aws:iam::111122223333:user/alice, ` +
          'arn:aws:iam::111122223333:role/app or arn:aws:iam::111122223333:root',
      );
    }
    const value: PrincipalEntry = { arn, ...principalAttributes(where, arn, userId, tags) };
    if (policies !== undefined) value.policies = identityPolicies(where, arn, policies);
    if (issued !== undefined) value.tokenIssueTime = tokenIssueTime(where, arn, issued);
    if (secretAccessKey !== undefined) {
      if (typeof secretAccessKey !== 'string' || secretAccessKey.length === 0) {
        throw new Error(`${where}: "secretAccessKey" must be a non-empty string when given`);
      }
      value.secretAccessKey = secretAccessKey;
    }
    if (sessionToken !== undefined) {
      // Never echo the token: it is a credential.
      if (typeof sessionToken !== 'string' || !SESSION_TOKEN.test(sessionToken)) {
        throw new Error(`${where}: "sessionToken" must be a non-empty string of visible ASCII characters (the token STS issued)`);
      }
      if (sessionToken.length > MAX_SESSION_TOKEN_CHARS) {
        throw new Error(`${where}: "sessionToken" has ${sessionToken.length} characters; at most ${MAX_SESSION_TOKEN_CHARS} are accepted`);
      }
      value.sessionToken = sessionToken;
    }
    out.set(accessKeyId, value);
  }
  return out;
}

/** How the caller of a request is decided (see resolveCaller). */
export interface ResolveCallerOptions {
  /** Account of the keys: its root is the caller when no principals file is configured. */
  accountId: string;
  /**
   * With a principals file: let an access key that is not in it act as the account root instead
   * of being refused (UnrecognizedClientException). A request with no access key at all is
   * refused either way. Default false.
   */
  allowUnknownKeysAsRoot?: boolean;
}

/**
 * The caller of a request, from the access key id its signature names.
 *
 * - No principals file: every caller is the account root, whatever key it names or none (the
 *   offline default; nobody is authenticated).
 * - A principals file: a listed key is its principal. As in AWS (KMS API Reference, "Common
 *   Errors"), a request naming no key is MissingAuthenticationTokenException and a key nobody
 *   issued is UnrecognizedClientException, unless `allowUnknownKeysAsRoot` makes such keys the
 *   account root. There is no anonymous principal in AWS KMS, so none here once principals exist.
 */
export function resolveCaller(
  accessKeyId: string | undefined,
  principals: Map<string, PrincipalEntry> | undefined,
  opts: ResolveCallerOptions,
): Caller {
  const root = (): Caller => {
    const caller: Caller = { arn: `arn:aws:iam::${opts.accountId}:root`, account: opts.accountId };
    if (accessKeyId !== undefined) caller.accessKeyId = accessKeyId;
    return caller;
  };
  if (principals === undefined) return root();
  if (accessKeyId === undefined) {
    throw new KmsServiceError('MissingAuthenticationTokenException', 'Request is missing Authentication Token');
  }
  const entry = principals.get(accessKeyId);
  if (entry) {
    const caller: Caller = { arn: entry.arn, account: accountOfPrincipalArn(entry.arn)!, accessKeyId };
    if (entry.userId !== undefined) caller.userId = entry.userId;
    if (entry.tags !== undefined) caller.tags = entry.tags;
    if (entry.tokenIssueTime !== undefined) caller.tokenIssueTime = entry.tokenIssueTime;
    if (entry.policies !== undefined) caller.identityPolicies = entry.policies;
    return caller;
  }
  if (opts.allowUnknownKeysAsRoot === true) return root();
  throw new KmsServiceError('UnrecognizedClientException', 'The security token included in the request is invalid.');
}
