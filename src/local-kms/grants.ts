/**
 * Grants of the local KMS (AWS KMS Developer Guide, "Grants in AWS KMS", "Creating grants",
 * "Managing grants"; API Reference: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant,
 * RevokeGrant, GrantConstraints). This module holds the rules; ops/grants.ts wires them to requests.
 *
 * A grant lets one grantee principal call some grant operations on one key, optionally only when
 * the request's encryption context satisfies the grant's constraints. Grants only allow: an
 * explicit Deny in the key policy still wins (IAM evaluation: an explicit deny anywhere wins).
 *
 * The local KMS is strongly consistent: a grant is effective as soon as CreateGrant returns, so a
 * grant token is never needed to use a grant. Tokens are still issued and checked (a token we did
 * not issue is InvalidGrantTokenException) and RetireGrant accepts one to name the grant.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { KmsServiceError } from './errors.js';
import type { Caller } from './policy-types.js';
import { isCallerPrincipal } from './policy.js';
import { KEY_SPECS, type KeySpec, type KeyUsage } from './specs.js';
import { isMultiRegionKeyId, keyIdBytes, keyIdFromBytes } from './key-id.js';

export type Context = Record<string, string>;

export interface GrantConstraints {
  EncryptionContextSubset?: Context;
  EncryptionContextEquals?: Context;
  /**
   * The AWS resource on whose behalf requests must be made (API Reference, GrantConstraints
   * `SourceArn`: like an aws:SourceArn condition in the grant). Kept and listed, never satisfied
   * here: only AWS services act on behalf of a resource, and the local KMS has none.
   */
  SourceArn?: string;
}

/** The GrantConstraints members the local KMS models; any other member is refused, never dropped. */
export const CONSTRAINT_MEMBERS: readonly string[] = ['EncryptionContextSubset', 'EncryptionContextEquals', 'SourceArn'];

export interface GrantRecord {
  /** 64 lower-case hex characters, like AWS grant ids. */
  grantId: string;
  /** Creation order within the key (KeyRecord.grantSeq), never reused: the grant's list position. */
  seq: number;
  name?: string;
  createdAt: number;
  granteePrincipal: string;
  retiringPrincipal?: string;
  /** Root ARN of the account the grant was created in (ListGrants `IssuingAccount`). */
  issuingAccount: string;
  operations: string[];
  constraints?: GrantConstraints;
}

/** The GrantOperation enum of the API (API Reference, CreateGrant `Operations`). */
export const GRANT_OPERATIONS: readonly string[] = [
  'Decrypt',
  'Encrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'ReEncryptFrom',
  'ReEncryptTo',
  'Sign',
  'Verify',
  'GetPublicKey',
  'CreateGrant',
  'RetireGrant',
  'DescribeKey',
  'GenerateDataKeyPair',
  'GenerateDataKeyPairWithoutPlaintext',
  'GenerateMac',
  'VerifyMac',
  'DeriveSharedSecret',
];

/**
 * Grant operations a key supports, from the Developer Guide "Key type reference" table: the
 * operations valid for the key type, plus DescribeKey, CreateGrant and RetireGrant, valid on
 * every key. DeriveSharedSecret is valid only on KEY_AGREEMENT keys (with GetPublicKey); on any
 * other key a grant naming it is a ValidationException, like Sign on an encryption key.
 */
export function grantOperationsFor(spec: KeySpec, usage: KeyUsage): string[] {
  const common = ['DescribeKey', 'CreateGrant', 'RetireGrant'];
  const family = KEY_SPECS[spec].family;
  if (family === 'symmetric') {
    return [
      ...common,
      'Encrypt',
      'Decrypt',
      'ReEncryptFrom',
      'ReEncryptTo',
      'GenerateDataKey',
      'GenerateDataKeyWithoutPlaintext',
      'GenerateDataKeyPair',
      'GenerateDataKeyPairWithoutPlaintext',
    ];
  }
  if (family === 'hmac') return [...common, 'GenerateMac', 'VerifyMac'];
  if (usage === 'KEY_AGREEMENT') return [...common, 'DeriveSharedSecret', 'GetPublicKey'];
  if (usage === 'ENCRYPT_DECRYPT') return [...common, 'Encrypt', 'Decrypt', 'ReEncryptFrom', 'ReEncryptTo', 'GetPublicKey'];
  return [...common, 'Sign', 'Verify', 'GetPublicKey'];
}

/**
 * Operations an encryption-context constraint does not apply to (API Reference, CreateGrant
 * `Constraints`: a constrained grant may include DescribeKey and RetireGrant, the constraint does
 * not apply to them; for CreateGrant it limits the constraints of the grants created instead).
 * Every other grant operation on a key that can carry a constraint (symmetric encryption keys
 * only) takes an encryption context.
 */
const UNCONSTRAINED_OPERATIONS = new Set(['DescribeKey', 'RetireGrant', 'CreateGrant']);

/** Quota "Grants per KMS key" (Developer Guide, "Resource quotas"): 50,000, adjustable. */
export const DEFAULT_MAX_GRANTS_PER_KEY = 50_000;
/**
 * CreateGrant `Constraints` (API Reference): at most 8 pairs per constraint, and at most 384
 * characters per constraint's encryption context (keys and values together; grant-requests.ts).
 */
export const MAX_CONSTRAINT_PAIRS = 8;
export const MAX_CONSTRAINT_CONTEXT_CHARS = 384;

export const GRANT_ID = /^[0-9a-f]{64}$/;

export function newGrantId(): string {
  return randomBytes(32).toString('hex');
}

// ---------------------------------------------------------------------------------------------
// Constraints

/**
 * A context's values by lower-cased key. In a grant constraint the key is matched without regard
 * to case and the value exactly (API Reference, GrantConstraints), unlike the encryption context
 * check of Decrypt itself, which is exact for both. Built once per context object: a request is
 * checked against every grant of the caller with the same context.
 */
const byLowerKey = new WeakMap<Context, Map<string, string[]>>();
function valuesByKey(ctx: Context): Map<string, string[]> {
  let index = byLowerKey.get(ctx);
  if (index === undefined) {
    index = new Map();
    for (const [k, v] of Object.entries(ctx)) {
      const lk = k.toLowerCase();
      const list = index.get(lk);
      if (list) list.push(v);
      else index.set(lk, [v]);
    }
    byLowerKey.set(ctx, index);
  }
  return index;
}

/**
 * Every pair of `required` is present in `ctx`. Where `ctx` has several keys that differ only by
 * case (AWS asks not to, and does not say how it reads them), every one of them must carry the
 * required value: a constraint allows, so the stricter reading is the one that holds for all.
 */
function includesPairs(ctx: Context, required: Context): boolean {
  const index = valuesByKey(ctx);
  return Object.entries(required).every(([k, v]) => {
    const values = index.get(k.toLowerCase());
    return values !== undefined && values.every((x) => x === v);
  });
}

/** Same pairs, in any order (EncryptionContextEquals). */
function samePairs(ctx: Context, required: Context): boolean {
  return Object.keys(ctx).length === Object.keys(required).length && includesPairs(ctx, required) && includesPairs(required, ctx);
}

/** Whether a request's encryption context satisfies a grant's constraints (all given ones must hold). */
export function constraintsHold(constraints: GrantConstraints | undefined, ctx: Context): boolean {
  if (!constraints) return true;
  if (constraints.EncryptionContextEquals && !samePairs(ctx, constraints.EncryptionContextEquals)) return false;
  if (constraints.EncryptionContextSubset && !includesPairs(ctx, constraints.EncryptionContextSubset)) return false;
  return true;
}

/**
 * "Grant for CreateGrant" rule (Developer Guide, "Creating grants", Granting CreateGrant
 * permission): a child grant's constraints must be at least as strict as its parent's. A child
 * may add pairs to a parent's EncryptionContextSubset or turn it into an EncryptionContextEquals
 * that contains those pairs, never the reverse; a parent's EncryptionContextEquals can only be
 * kept as it is.
 */
export function atLeastAsStrict(child: GrantConstraints | undefined, parent: GrantConstraints | undefined): boolean {
  // A SourceArn parent never allows CreateGrant here (findAllowingGrant); should it ever, its
  // children must keep the same resource.
  if (parent?.SourceArn !== undefined && child?.SourceArn !== parent.SourceArn) return false;
  if (!parent || (!parent.EncryptionContextEquals && !parent.EncryptionContextSubset)) return true;
  if (!child) return false;
  if (parent.EncryptionContextEquals) {
    if (!child.EncryptionContextEquals || !samePairs(child.EncryptionContextEquals, parent.EncryptionContextEquals)) return false;
  }
  if (parent.EncryptionContextSubset) {
    const narrowed =
      (child.EncryptionContextSubset !== undefined && includesPairs(child.EncryptionContextSubset, parent.EncryptionContextSubset)) ||
      (child.EncryptionContextEquals !== undefined && includesPairs(child.EncryptionContextEquals, parent.EncryptionContextSubset));
    if (!narrowed) return false;
  }
  return true;
}

/** Constraint types present, for the `kms:GrantConstraintType` condition key. */
export function constraintTypes(c: GrantConstraints | undefined): string[] {
  const out: string[] = [];
  if (c?.EncryptionContextEquals) out.push('EncryptionContextEquals');
  if (c?.EncryptionContextSubset) out.push('EncryptionContextSubset');
  if (c?.SourceArn !== undefined) out.push('SourceArn');
  return out;
}

export function sameConstraints(a: GrantConstraints | undefined, b: GrantConstraints | undefined): boolean {
  const eq = (x: Context | undefined, y: Context | undefined) =>
    x === undefined || y === undefined ? x === y : Object.keys(x).length === Object.keys(y).length && Object.entries(x).every(([k, v]) => Object.hasOwn(y, k) && y[k] === v);
  return eq(a?.EncryptionContextEquals, b?.EncryptionContextEquals) && eq(a?.EncryptionContextSubset, b?.EncryptionContextSubset) && a?.SourceArn === b?.SourceArn;
}

// ---------------------------------------------------------------------------------------------
// Authorization through grants

/**
 * The live grant on a key that lets `caller` perform `operation` (a grant operation name, e.g.
 * `Decrypt`) with encryption context `ctx`, if any. Retired and revoked grants are deleted, so
 * every grant here is live.
 */
export function findAllowingGrant(
  grants: readonly GrantRecord[] | undefined,
  caller: Caller,
  operation: string,
  ctx: Context | undefined,
): GrantRecord | undefined {
  if (!grants || !GRANT_OPERATIONS.includes(operation)) return undefined;
  for (const g of grants) {
    if (!g.operations.includes(operation)) continue;
    if (!isCallerPrincipal(g.granteePrincipal, caller)) continue;
    // SourceArn (API Reference, GrantConstraints): the grant applies only to requests an AWS
    // service makes on behalf of that resource, DescribeKey included; no request here is one.
    // It does not apply to RetireGrant, which is decided by mayRetire, not here.
    if (g.constraints?.SourceArn !== undefined) continue;
    if (!UNCONSTRAINED_OPERATIONS.has(operation) && !constraintsHold(g.constraints, ctx ?? {})) continue;
    return g;
  }
  return undefined;
}

/**
 * Who the grant itself lets retire it (Developer Guide, "Retiring and revoking grants"; API
 * Reference, RetireGrant): its retiring principal; its grantee when the grant includes
 * RetireGrant; and the account the grant was created in (its root user; the account's IAM
 * identities through kms:RetireGrant, retireDelegatingAccounts). An account named as a principal
 * means its root user here, as in key policies. core.ts authorizeRetireGrant adds the Denies.
 */
export function mayRetire(grant: GrantRecord, caller: Caller): boolean {
  if (grant.retiringPrincipal !== undefined && isCallerPrincipal(grant.retiringPrincipal, caller)) return true;
  if (grant.operations.includes('RetireGrant') && isCallerPrincipal(grant.granteePrincipal, caller)) return true;
  return isCallerPrincipal(grant.issuingAccount, caller);
}

/**
 * Accounts whose IAM policies can give their identities kms:RetireGrant for this grant
 * (Developer Guide, "Retiring and revoking grants"): the account the grant was created in, and the
 * retiring principal's account when the retiring principal is that account.
 */
export function retireDelegatingAccounts(grant: GrantRecord): string[] {
  const accountOfRoot = (arn: string | undefined) => (arn === undefined ? undefined : /^arn:[^:]+:iam::(\d{12}):root$/.exec(arn)?.[1]);
  return [accountOfRoot(grant.issuingAccount), accountOfRoot(grant.retiringPrincipal)].filter((a): a is string => a !== undefined);
}

// ---------------------------------------------------------------------------------------------
// Grant tokens

const TOKEN_VERSION = 1;
/** Tokens of grants on multi-Region keys (key-id.ts). */
const MRK_TOKEN_VERSION = 2;
const TOKEN_MAC_BYTES = 16;
const TOKEN_BYTES = 1 + 16 + 32 + 16 + TOKEN_MAC_BYTES;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export function invalidGrantToken(): KmsServiceError {
  return new KmsServiceError('InvalidGrantTokenException', 'The grant token is not valid.');
}

/**
 * Grant tokens: base64 of version | key id (16 bytes) | grant id (32 bytes) | random nonce (16
 * bytes) | truncated HMAC. Every CreateGrant answer carries a fresh token, also when a named
 * retry returns an existing grant id, and all tokens of one grant are interchangeable (API
 * Reference, CreateGrant `Name`). The MAC key derives from the store's root key, so tokens stay
 * valid across restarts of a server with a data directory.
 */
export class GrantTokenCodec {
  private readonly key: Buffer;

  constructor(key: Buffer) {
    if (key.length < 32) throw new RangeError('grant token key must be at least 32 bytes');
    this.key = Buffer.from(key);
  }

  issue(keyId: string, grantId: string): string {
    const body = Buffer.concat([
      Buffer.from([isMultiRegionKeyId(keyId) ? MRK_TOKEN_VERSION : TOKEN_VERSION]),
      keyIdBytes(keyId),
      Buffer.from(grantId, 'hex'),
      randomBytes(16),
    ]);
    return Buffer.concat([body, this.mac(body)]).toString('base64');
  }

  /** The key and grant a token names, or undefined when we did not issue it. */
  read(token: string): { keyId: string; grantId: string } | undefined {
    if (!BASE64.test(token)) return undefined;
    const raw = Buffer.from(token, 'base64');
    if (raw.length !== TOKEN_BYTES || raw.toString('base64') !== token || (raw[0] !== TOKEN_VERSION && raw[0] !== MRK_TOKEN_VERSION)) return undefined;
    const body = raw.subarray(0, TOKEN_BYTES - TOKEN_MAC_BYTES);
    if (!timingSafeEqual(raw.subarray(TOKEN_BYTES - TOKEN_MAC_BYTES), this.mac(body))) return undefined;
    const keyId = keyIdFromBytes(body.subarray(1, 17), raw[0] === MRK_TOKEN_VERSION);
    return { keyId, grantId: body.subarray(17, 49).toString('hex') };
  }

  private mac(body: Buffer): Buffer {
    return createHmac('sha256', this.key).update('kms-envelope grant token\0').update(body).digest().subarray(0, TOKEN_MAC_BYTES);
  }
}

// ---------------------------------------------------------------------------------------------
// Output

/**
 * Creation order within a key, then grant id: a stable identity for list markers (paging.ts).
 * The sequence number, not the creation time, orders grants made in the same millisecond.
 */
export const grantSortKey = (g: GrantRecord): string => `${String(g.seq).padStart(16, '0')}.${g.grantId}`;

/** A GrantListEntry as ListGrants and ListRetirableGrants return it. */
export function grantListEntry(g: GrantRecord, keyArn: string): Record<string, unknown> {
  const out: Record<string, unknown> = {
    KeyId: keyArn,
    GrantId: g.grantId,
    // The Developer Guide's ListGrants examples show an empty Name for unnamed grants.
    Name: g.name ?? '',
    CreationDate: new Date(g.createdAt),
    GranteePrincipal: g.granteePrincipal,
  };
  if (g.retiringPrincipal !== undefined) out.RetiringPrincipal = g.retiringPrincipal;
  out.IssuingAccount = g.issuingAccount;
  out.Operations = [...g.operations];
  if (g.constraints) {
    const c: Record<string, Context | string> = {};
    if (g.constraints.EncryptionContextSubset) c.EncryptionContextSubset = { ...g.constraints.EncryptionContextSubset };
    if (g.constraints.EncryptionContextEquals) c.EncryptionContextEquals = { ...g.constraints.EncryptionContextEquals };
    if (g.constraints.SourceArn !== undefined) c.SourceArn = g.constraints.SourceArn;
    out.Constraints = c;
  }
  return out;
}
