import { KmsServiceError } from '../errors.js';
import type { Requester } from '../request-context.js';
import { isCallerPrincipal } from '../policy.js';
import { Checks, validationError } from '../validate.js';
import { paginate, sortByKey } from '../paging.js';
import {
  GRANT_ID,
  atLeastAsStrict,
  constraintTypes,
  findAllowingGrant,
  grantListEntry,
  grantSortKey,
  invalidGrantToken,
  newGrantId,
  sameConstraints,
  type GrantRecord,
} from '../grants.js';
import { checkGrantForKey, checkGrantIdShape, checkListShape, checkPrincipalShape, parseCreateGrant, requirePrincipal } from '../grant-requests.js';
import type { KeyRecord } from '../model.js';
import type { KmsCore } from '../core.js';
import { checkKeyId, err, num, str, withPage, type KmsResponse, type Req } from './util.js';

/**
 * Grants (API Reference: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant);
 * the grant rules are in grants.ts, the request checks in grant-requests.ts.
 */

function grantsOf(key: KeyRecord): GrantRecord[] {
  return key.grants ?? [];
}

export async function createGrant(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const input = parseCreateGrant(req);
  const { key } = kms.resolve(input.keyId, { alias: false }, who);
  // kms:CreateGrant with the grant condition keys (Developer Guide, "AWS KMS condition keys"):
  // kms:GranteePrincipal and kms:RetiringPrincipal are the request's parameters as given (only
  // principal ARNs are accepted, grant-requests.ts, so they are also what the grant stores).
  // No request comes from an AWS service here, so kms:GrantIsForAWSResource is false. The
  // encryption context keys (kms:EncryptionContext:<key>, kms:EncryptionContextKeys) apply to
  // CreateGrant through the pairs of its encryption context constraint.
  const c = input.constraints;
  const constraintContext =
    c?.EncryptionContextEquals !== undefined || c?.EncryptionContextSubset !== undefined
      ? { ...(c.EncryptionContextSubset ?? {}), ...(c.EncryptionContextEquals ?? {}) }
      : undefined;
  const operationKeys = {
    ...(constraintContext !== undefined ? { encryptionContext: constraintContext } : {}),
    keys: {
      'kms:GranteePrincipal': input.granteePrincipal,
      'kms:RetiringPrincipal': input.retiringPrincipal,
      'kms:GrantOperations': input.operations,
      'kms:GrantConstraintType': constraintTypes(input.constraints).length > 0 ? constraintTypes(input.constraints) : undefined,
      'kms:GrantConstraintSourceArn': input.constraints?.SourceArn,
      'kms:GrantIsForAWSResource': false,
    },
  };
  // A grant that includes CreateGrant lets its grantee create grants with some or all of its
  // operations and constraints at least as strict (Developer Guide, "Granting CreateGrant
  // permission"); those limits do not apply to permission from the key policy (or IAM).
  const viaParentGrant = () =>
    grantsOf(key).some(
      (g) =>
        findAllowingGrant([g], who.caller, 'CreateGrant', undefined) !== undefined &&
        input.operations.every((op) => g.operations.includes(op)) &&
        atLeastAsStrict(input.constraints, g.constraints),
    );
  kms.authorize(who, 'kms:CreateGrant', key, operationKeys, undefined, viaParentGrant);
  // Key states (Developer Guide, "Key states of AWS KMS keys"): as for Decrypt.
  kms.requireEnabled(key);
  checkGrantForKey(input, key.keySpec, key.keyUsage);
  const grants = grantsOf(key);
  // Name makes CreateGrant idempotent: a request with the same properties as an existing grant,
  // the name included, is a retry and returns that grant's id with a fresh token (API Reference,
  // CreateGrant `Name`; Developer Guide, "Creating grants").
  const retry =
    input.name === undefined
      ? undefined
      : grants.find(
          (g) =>
            g.name === input.name &&
            g.granteePrincipal === input.granteePrincipal &&
            g.retiringPrincipal === input.retiringPrincipal &&
            g.operations.length === input.operations.length &&
            input.operations.every((op) => g.operations.includes(op)) &&
            sameConstraints(g.constraints, input.constraints),
        );
  if (!retry && grants.length >= kms.maxGrantsPerKey) {
    throw err('LimitExceededException', `${key.arn} already has ${grants.length} grants, the quota of grants per KMS key.`);
  }
  kms.dryRun(req);
  if (retry) return { GrantToken: kms.grantTokens.issue(key.keyId, retry.grantId), GrantId: retry.grantId };
  const seq = (key.grantSeq ?? 0) + 1;
  const grant: GrantRecord = {
    grantId: newGrantId(),
    seq,
    createdAt: kms.clock(),
    granteePrincipal: input.granteePrincipal,
    issuingAccount: `arn:${kms.partition}:iam::${kms.accountId}:root`,
    operations: input.operations,
  };
  if (input.name !== undefined) grant.name = input.name;
  if (input.retiringPrincipal !== undefined) grant.retiringPrincipal = input.retiringPrincipal;
  if (input.constraints) grant.constraints = input.constraints;
  // Cost: grants live in their key's record, and commit() rewrites the whole key file (with
  // a data dir) and copies the grant array, so CreateGrant, RetireGrant and RevokeGrant are
  // O(grants of the key) each and filling a key to the 50,000 quota is quadratic. Measured
  // with a data dir: about 1.2 ms per CreateGrant per 1,000 existing grants, ~250 bytes per
  // unconstrained grant (about 12 MB and ~60 ms per CreateGrant at 50,000; with both
  // constraints at their 384-character limit roughly 1 KB more per grant). Acceptable for a
  // test KMS; a per-grant append log would be the fix if it ever matters.
  kms.commit(key, { grants: [...grants, grant], grantSeq: seq });
  return { GrantToken: kms.grantTokens.issue(key.keyId, grant.grantId), GrantId: grant.grantId };
}

export async function listGrants(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkKeyId(c, req.KeyId);
  checkListShape(c, req);
  checkGrantIdShape(c, req.GrantId, false);
  checkPrincipalShape(c, 'granteePrincipal', req.GranteePrincipal, false);
  c.done();
  const { key } = kms.resolve(String(req.KeyId), { alias: false }, who);
  // Only the key policy (or IAM through it) gives kms:ListGrants, never a grant (Developer Guide,
  // "Controlling access to grants").
  kms.authorize(who, 'kms:ListGrants', key, { keys: { 'kms:GrantIsForAWSResource': false } });
  let grants = grantsOf(key);
  if (req.GrantId !== undefined) {
    grants = grants.filter((g) => g.grantId === req.GrantId);
    if (grants.length === 0) throw invalidGrantId(String(req.GrantId));
  }
  // The grantee as the grant stores it: the principal ARN CreateGrant was given.
  if (req.GranteePrincipal !== undefined) grants = grants.filter((g) => g.granteePrincipal === req.GranteePrincipal);
  const sorted = sortByKey([...grants], grantSortKey);
  const page = paginate(sorted, grantSortKey, num(req.Limit) ?? 50, str(req.Marker), kms.markers, { operation: 'ListGrants', scope: key.keyId });
  return withPage({ Grants: page.items.map((g) => grantListEntry(g, key.arn)) }, page);
}

/**
 * ListRetirableGrants: the grants of every key in the account whose retiring principal is the
 * one named. AWS authorizes it with an IAM policy in the caller's account, on the retiring
 * principal the request names, which must be of that account (API Reference,
 * ListRetirableGrants). For a caller whose IAM is modelled that is what is evaluated; for the
 * others (no `policies`) the account root and the retiring principal itself may ask, anyone else
 * is AccessDeniedException.
 */
export async function listRetirableGrants(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const { caller } = who;
  const c = new Checks();
  checkPrincipalShape(c, 'retiringPrincipal', req.RetiringPrincipal, true);
  checkListShape(c, req);
  c.done();
  // A principal ARN (API Reference, ListRetirableGrants `RetiringPrincipal`), as CreateGrant takes it.
  const principal = String(req.RetiringPrincipal);
  requirePrincipal(principal, 'RetiringPrincipal');
  const rootArn = `arn:${kms.partition}:iam::${caller.account}:root`;
  const refuse = () =>
    err('AccessDeniedException', `User: ${caller.arn} is not authorized to perform: kms:ListRetirableGrants on resource: ${principal}`);
  if (caller.identityPolicies !== undefined) {
    if (accountOf(principal) !== caller.account) throw refuse();
    kms.authorizeIamOnly(who, 'ListRetirableGrants', { principal });
  } else if (!(isCallerPrincipal(rootArn, caller) && accountOf(principal) === caller.account) && !isCallerPrincipal(principal, caller)) {
    throw refuse();
  }
  const entries: { grant: GrantRecord; keyArn: string }[] = [];
  for (const key of kms.keys.values()) {
    for (const g of grantsOf(key)) if (g.retiringPrincipal === principal) entries.push({ grant: g, keyArn: key.arn });
  }
  // Across keys: creation time, then the key, then the grant's place in its key.
  const sortKey = (e: { grant: GrantRecord; keyArn: string }) =>
    `${String(e.grant.createdAt).padStart(16, '0')}.${e.keyArn.slice(-36)}.${grantSortKey(e.grant)}`;
  sortByKey(entries, sortKey);
  const page = paginate(entries, sortKey, num(req.Limit) ?? 50, str(req.Marker), kms.markers, { operation: 'ListRetirableGrants', scope: principal });
  return withPage({ Grants: page.items.map((e) => grantListEntry(e.grant, e.keyArn)) }, page);
}

export async function retireGrant(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  c.length('grantToken', str(req.GrantToken), 1, 8192);
  c.length('keyId', str(req.KeyId), 1, 2048);
  checkGrantIdShape(c, req.GrantId, false);
  c.done();
  let key: KeyRecord;
  let grantId: string;
  if (req.GrantToken !== undefined) {
    // A grant token names the grant by itself (API Reference, RetireGrant `GrantToken`).
    const named = kms.grantTokens.read(String(req.GrantToken));
    if (!named) throw invalidGrantToken();
    const found = kms.keys.get(named.keyId);
    if (!found) throw err('NotFoundException', `Key '${kms.keyArn(named.keyId)}' does not exist`);
    if (req.KeyId !== undefined && kms.resolve(String(req.KeyId), { alias: false }, who).key.keyId !== found.keyId) {
      throw validationError('The KeyId does not identify the KMS key of the grant that the grant token names.');
    }
    if (req.GrantId !== undefined && req.GrantId !== named.grantId) throw invalidGrantId(String(req.GrantId));
    if (!grantsOf(found).some((g) => g.grantId === named.grantId)) {
      throw err('NotFoundException', 'The grant that the grant token names does not exist: it was retired or revoked.');
    }
    key = found;
    grantId = named.grantId;
  } else {
    if (req.KeyId === undefined || req.GrantId === undefined) {
      throw validationError('RetireGrant needs a GrantToken, or both KeyId and GrantId.');
    }
    key = kms.resolve(String(req.KeyId), { alias: false }, who).key;
    grantId = String(req.GrantId);
  }
  const grant = grantsOf(key).find((g) => g.grantId === grantId);
  if (!grant) throw invalidGrantId(grantId);
  // The grant decides, an IAM Deny of kms:RetireGrant still denies (core.ts authorizeRetireGrant).
  kms.authorizeRetireGrant(who, key, grant);
  kms.dryRun(req);
  removeGrant(kms, key, grantId);
  return {};
}

export async function revokeGrant(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkKeyId(c, req.KeyId);
  checkGrantIdShape(c, req.GrantId, true);
  c.done();
  const { key } = kms.resolve(String(req.KeyId), { alias: false }, who);
  // RevokeGrant is authorized by the key policy (or IAM through it) with kms:RevokeGrant, never by a grant.
  kms.authorize(who, 'kms:RevokeGrant', key, { keys: { 'kms:GrantIsForAWSResource': false } });
  const grantId = String(req.GrantId);
  if (!grantsOf(key).some((g) => g.grantId === grantId)) throw invalidGrantId(grantId);
  kms.dryRun(req);
  removeGrant(kms, key, grantId);
  return {};
}

function removeGrant(kms: KmsCore, key: KeyRecord, grantId: string): void {
  kms.commit(key, { grants: grantsOf(key).filter((g) => g.grantId !== grantId) });
}


/**
 * A grant id that names no grant of the key (or is not a grant id at all). The API lists
 * InvalidGrantIdException for ListGrants, RetireGrant and RevokeGrant.
 */
function invalidGrantId(grantId: string): KmsServiceError {
  const shown = GRANT_ID.test(grantId) ? grantId : 'given';
  return err('InvalidGrantIdException', `The grant id ${shown} does not identify a grant of this KMS key.`);
}

function accountOf(principalArn: string): string | undefined {
  return /^arn:[^:]+:(?:iam|sts)::(\d{12}):/.exec(principalArn)?.[1];
}
