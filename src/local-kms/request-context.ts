/**
 * The request context of the local KMS: the ONE place where an authorization request is assembled
 * (caller, action, resource, and every condition key AWS would put in the request context), and
 * where it is turned into the lower-cased condition-key map the policy engine (policy.ts) reads.
 *
 * Sources, by kind of key:
 * - Global keys: IAM User Guide, "AWS global condition context keys" (each key's Availability) and
 *   "Policy variables", "Principal key values" (aws:userid, aws:username, aws:PrincipalType).
 * - KMS keys: KMS Developer Guide, "AWS KMS condition keys" (each key's API operations) and
 *   "AWS KMS permissions"; tag keys: "Limiting tag permissions".
 * A key the documentation does not put in a request is absent here too, so `...IfExists` and `Null`
 * conditions behave as in AWS. Which keys each operation supplies is the table ACTION_KEYS below;
 * the README's condition-key table is checked against it by a test.
 */
import { createHash } from 'node:crypto';
import type { AuthzRequest, Caller, ConditionContext, ConditionValue } from './policy-types.js';

// ---------------------------------------------------------------------------------------------
// What the transport knows about a request

/** Facts about a request that come from its transport, not its body. */
export interface RequestOrigin {
  /** Client IP address (`aws:SourceIp`). IPv4-mapped IPv6 addresses are given as IPv4. */
  sourceIp: string;
  /** The User-Agent header (`aws:UserAgent`); the empty string when the request had none. */
  userAgent: string;
  /** Whether the request arrived over TLS (`aws:SecureTransport`). */
  secureTransport: boolean;
  /**
   * The Region the request addressed (`aws:RequestedRegion`): the Region of its SigV4 credential
   * scope. Absent for unsigned requests, which then address the service's own Region.
   */
  requestedRegion?: string;
}

/**
 * Origin of in-process calls (LocalKms clients, LocalKmsService.call without an origin). They never
 * cross a network, so:
 * - aws:SourceIp is 127.0.0.1, the address a request to the local server has;
 * - aws:SecureTransport is true: AWS KMS endpoints accept only HTTPS, so every request AWS
 *   evaluates carries true; an in-process call has no wire to protect, and giving it false would
 *   make a policy that denies insecure transport refuse calls AWS would allow;
 * - aws:UserAgent names the in-process client;
 * - aws:RequestedRegion is the service's Region.
 */
export const IN_PROCESS_ORIGIN: Readonly<RequestOrigin> = Object.freeze({
  sourceIp: '127.0.0.1',
  userAgent: 'kms-envelope-local-kms/in-process',
  secureTransport: true,
});

/** Who asks and how the request arrived: what every operation passes to authorization. */
export interface Requester {
  caller: Caller;
  origin: RequestOrigin;
}

// ---------------------------------------------------------------------------------------------
// Per-operation keys (KMS Developer Guide, "AWS KMS condition keys")

interface ActionKeys {
  /** Keys the operation always supplies from its request. */
  required: readonly string[];
  /** Keys supplied only when the request has the parameter (or, for kms:RequestAlias, used an alias). */
  optional: readonly string[];
}

const EC = ['kms:EncryptionContext:*', 'kms:EncryptionContextKeys'];
const ALIAS = ['kms:RequestAlias'];
const none: ActionKeys = { required: [], optional: [] };

/**
 * Request-parameter keys of every action a key policy authorizes here (key-resource operations).
 * CreateKey, ListKeys, ListAliases, GenerateRandom and ListRetirableGrants are not in it: AWS
 * authorizes them with IAM policies only, and the local KMS has no IAM policies.
 */
export const ACTION_KEYS: Readonly<Record<string, ActionKeys>> = {
  'kms:DescribeKey': { required: [], optional: ALIAS },
  'kms:UpdateKeyDescription': none,
  'kms:EnableKey': none,
  'kms:DisableKey': none,
  'kms:ScheduleKeyDeletion': { required: ['kms:ScheduleKeyDeletionPendingWindowInDays'], optional: [] },
  'kms:CancelKeyDeletion': none,
  'kms:CreateAlias': none,
  'kms:UpdateAlias': none,
  'kms:DeleteAlias': none,
  'kms:TagResource': { required: ['aws:TagKeys', 'aws:RequestTag/*'], optional: [] },
  'kms:UntagResource': { required: ['aws:TagKeys'], optional: [] },
  'kms:ListResourceTags': none,
  'kms:GetKeyPolicy': none,
  'kms:PutKeyPolicy': { required: [], optional: ['kms:BypassPolicyLockoutSafetyCheck'] },
  'kms:ListKeyPolicies': none,
  'kms:CreateGrant': {
    required: ['kms:GranteePrincipal', 'kms:GrantOperations', 'kms:GrantIsForAWSResource'],
    optional: ['kms:RetiringPrincipal', 'kms:GrantConstraintType', 'kms:GrantConstraintSourceArn', ...EC],
  },
  'kms:ListGrants': { required: ['kms:GrantIsForAWSResource'], optional: [] },
  'kms:RevokeGrant': { required: ['kms:GrantIsForAWSResource'], optional: [] },
  'kms:GetParametersForImport': { required: ['kms:WrappingAlgorithm', 'kms:WrappingKeySpec'], optional: [] },
  'kms:ImportKeyMaterial': { required: ['kms:ExpirationModel'], optional: ['kms:ValidTo'] },
  'kms:DeleteImportedKeyMaterial': none,
  'kms:EnableKeyRotation': { required: ['kms:RotationPeriodInDays'], optional: [] },
  'kms:DisableKeyRotation': none,
  'kms:GetKeyRotationStatus': none,
  'kms:RotateKeyOnDemand': none,
  'kms:ListKeyRotations': none,
  'kms:Encrypt': { required: ['kms:EncryptionAlgorithm'], optional: [...EC, ...ALIAS] },
  'kms:Decrypt': { required: ['kms:EncryptionAlgorithm'], optional: [...EC, ...ALIAS] },
  'kms:ReEncryptFrom': { required: ['kms:EncryptionAlgorithm', 'kms:ReEncryptOnSameKey'], optional: [...EC, ...ALIAS] },
  'kms:ReEncryptTo': { required: ['kms:EncryptionAlgorithm', 'kms:ReEncryptOnSameKey'], optional: [...EC, ...ALIAS] },
  'kms:GenerateDataKey': { required: ['kms:EncryptionAlgorithm'], optional: [...EC, ...ALIAS] },
  'kms:GenerateDataKeyWithoutPlaintext': { required: ['kms:EncryptionAlgorithm'], optional: [...EC, ...ALIAS] },
  'kms:GenerateDataKeyPair': { required: ['kms:EncryptionAlgorithm', 'kms:DataKeyPairSpec'], optional: [...EC, ...ALIAS] },
  'kms:GenerateDataKeyPairWithoutPlaintext': { required: ['kms:EncryptionAlgorithm', 'kms:DataKeyPairSpec'], optional: [...EC, ...ALIAS] },
  'kms:Sign': { required: ['kms:SigningAlgorithm', 'kms:MessageType'], optional: ALIAS },
  'kms:Verify': { required: ['kms:SigningAlgorithm', 'kms:MessageType'], optional: ALIAS },
  'kms:GetPublicKey': { required: [], optional: ALIAS },
  'kms:GenerateMac': { required: ['kms:MacAlgorithm'], optional: ALIAS },
  'kms:VerifyMac': { required: ['kms:MacAlgorithm'], optional: ALIAS },
  'kms:DeriveSharedSecret': { required: ['kms:KeyAgreementAlgorithm'], optional: ALIAS },
};

/**
 * Keys every KMS key resource operation carries from the key itself (Developer Guide, "AWS KMS
 * condition keys": kms:KeySpec, kms:KeyUsage, kms:KeyOrigin, kms:MultiRegion, and the deprecated
 * kms:CustomerMasterKeySpec/kms:CustomerMasterKeyUsage, which "work the same way") and
 * aws:ResourceAccount (the key's account). Not supplied: kms:MultiRegionKeyType (only multi-Region
 * keys have it), kms:ResourceAliases and aws:ResourceTag (IAM policies only), kms:ViaService (no
 * AWS service calls here).
 */
export const KEY_RESOURCE_KEYS: readonly string[] = [
  'kms:KeySpec',
  'kms:KeyUsage',
  'kms:KeyOrigin',
  'kms:MultiRegion',
  'kms:CustomerMasterKeySpec',
  'kms:CustomerMasterKeyUsage',
  'aws:ResourceAccount',
];

/**
 * Global keys every request carries (their Availability is "always" or "all signed requests"),
 * plus the principal's own keys (aws:username for IAM users, aws:PrincipalTag/<key> when the
 * principal has tags, aws:MultiFactorAuthPresent for temporary-credential sessions).
 */
export const GLOBAL_KEYS: readonly string[] = [
  'aws:CurrentTime',
  'aws:EpochTime',
  'aws:SecureTransport',
  'aws:RequestedRegion',
  'aws:SourceIp',
  'aws:UserAgent',
  'aws:ViaAWSService',
  'aws:PrincipalArn',
  'aws:PrincipalAccount',
  'aws:PrincipalType',
  'aws:PrincipalIsAWSService',
  'aws:userid',
  'kms:CallerAccount',
];

/** The key whose policy is evaluated: what the request context needs of it. */
export interface KeyResource {
  arn: string;
  keySpec: string;
  keyUsage: string;
  origin: string;
}

export interface AuthzInput {
  who: Requester;
  /** Action as IAM names it, e.g. `kms:Decrypt`; must be in ACTION_KEYS. */
  action: string;
  key: KeyResource;
  /** Server clock, milliseconds since the epoch (aws:CurrentTime, aws:EpochTime). */
  now: number;
  /** The service's Region, for requests that name none. */
  serviceRegion: string;
  /** The request's encryption context (kms:EncryptionContext:<key>, kms:EncryptionContextKeys). */
  encryptionContext?: Record<string, string>;
  /** The operation's request-parameter keys, by their documented names. */
  keys?: Record<string, ConditionValue>;
}

/**
 * Assembles the authorization request of one operation: global keys, the key's own keys, the
 * operation's keys. Throws (a bug, not a client error) when an operation supplies a key its
 * ACTION_KEYS entry does not list, or leaves out one it always supplies.
 */
export function buildAuthzRequest(input: AuthzInput): AuthzRequest {
  const { who, action, key, now } = input;
  const spec = ACTION_KEYS[action];
  if (!spec) throw new Error(`request context: no condition-key entry for ${action}`);
  const opKeys = input.keys ?? {};
  for (const name of Object.keys(opKeys)) {
    if (!spec.required.includes(name) && !spec.optional.includes(name) && !(name.startsWith('aws:RequestTag/') && spec.required.includes('aws:RequestTag/*'))) {
      throw new Error(`request context: ${action} does not carry ${name}`);
    }
  }
  for (const name of spec.required) {
    if (name === 'aws:RequestTag/*') continue; // one key per tag, none for an empty Tags list
    if (opKeys[name] === undefined) throw new Error(`request context: ${action} needs ${name}`);
  }
  if (input.encryptionContext !== undefined && !spec.optional.includes('kms:EncryptionContextKeys')) {
    throw new Error(`request context: ${action} does not carry an encryption context`);
  }
  const seconds = Math.floor(now / 1000);
  const conditionKeys: Record<string, ConditionValue> = {
    // Global keys (IAM User Guide, "AWS global condition context keys").
    'aws:CurrentTime': new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    'aws:EpochTime': String(seconds),
    'aws:SecureTransport': who.origin.secureTransport,
    'aws:RequestedRegion': who.origin.requestedRegion ?? input.serviceRegion,
    'aws:SourceIp': who.origin.sourceIp,
    'aws:UserAgent': who.origin.userAgent,
    // No AWS service calls the local KMS on anyone's behalf.
    'aws:ViaAWSService': false,
    // The key (Developer Guide, "AWS KMS condition keys", conditions for KMS keys).
    'kms:KeySpec': key.keySpec,
    'kms:KeyUsage': key.keyUsage,
    'kms:KeyOrigin': key.origin,
    'kms:MultiRegion': false,
    'kms:CustomerMasterKeySpec': key.keySpec,
    'kms:CustomerMasterKeyUsage': key.keyUsage,
    'aws:ResourceAccount': /^arn:[^:]+:kms:[^:]*:(\d{12}):/.exec(key.arn)?.[1],
    ...opKeys,
  };
  return {
    caller: who.caller,
    action,
    resourceArn: key.arn,
    ...(input.encryptionContext !== undefined ? { encryptionContext: input.encryptionContext } : {}),
    conditionKeys,
  };
}

// ---------------------------------------------------------------------------------------------
// Principal attributes

/** Principal ARN kinds the local KMS knows (principals.ts accepts these as callers). */
function parsePrincipal(arn: string):
  | { kind: 'root'; account: string }
  | { kind: 'user'; account: string; name: string }
  | { kind: 'role'; account: string; role: string }
  | { kind: 'session'; account: string; role: string; session: string; partition: string }
  | { kind: 'federated'; account: string; name: string }
  | undefined {
  let m = /^arn:[^:]+:iam::(\d{12}):root$/.exec(arn);
  if (m) return { kind: 'root', account: m[1]! };
  m = /^arn:[^:]+:iam::(\d{12}):user\/(?:.*\/)?([^/]+)$/.exec(arn);
  if (m) return { kind: 'user', account: m[1]!, name: m[2]! };
  m = /^arn:[^:]+:iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(arn);
  if (m) return { kind: 'role', account: m[1]!, role: m[2]! };
  m = /^arn:([^:]+):sts::(\d{12}):assumed-role\/([^/]+)\/(.+)$/.exec(arn);
  if (m) return { kind: 'session', partition: m[1]!, account: m[2]!, role: m[3]!, session: m[4]! };
  m = /^arn:[^:]+:sts::(\d{12}):federated-user\/(.+)$/.exec(arn);
  if (m) return { kind: 'federated', account: m[1]!, name: m[2]! };
  return undefined;
}

/**
 * A stable unique id in AWS's form (a 4-letter prefix and 17 characters of A-Z and 2-7, like
 * `AIDAJ45Q7YFFAREXAMPLE`), derived from the account and name so a user or role keeps its id
 * across restarts and principals files. `AIDA` for users, `AROA` for roles.
 */
export function derivedUniqueId(prefix: 'AIDA' | 'AROA', account: string, name: string): string {
  const digest = createHash('sha256').update(`${prefix}:${account}:${name}`).digest();
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let out = prefix;
  for (let i = 0; out.length < 21; i++) out += alphabet[digest[i]! & 31];
  return out;
}

/**
 * aws:userid as IAM defines it per principal ("Principal key values"): the account id for the
 * root user; the user's unique id (AIDA...) for an IAM user; `role-id:session-name` for a role
 * session; `account:name` for a federated user. A role ARN used directly as a caller (allowed in
 * the principals file) stands for a session of that role named after the role.
 */
export function userIdOf(caller: Caller): string | undefined {
  const p = parsePrincipal(caller.arn);
  if (!p) return undefined;
  switch (p.kind) {
    case 'root':
      return p.account;
    case 'user':
      return caller.userId ?? derivedUniqueId('AIDA', p.account, p.name);
    case 'role':
      return `${caller.userId ?? derivedUniqueId('AROA', p.account, p.role)}:${p.role}`;
    case 'session':
      return `${caller.userId ?? derivedUniqueId('AROA', p.account, p.role)}:${p.session}`;
    case 'federated':
      return `${p.account}:${p.name}`;
  }
}

/**
 * aws:PrincipalArn: for a role session the role's ARN (IAM User Guide, aws:PrincipalArn). The
 * role path is unknown from a session ARN, so the role is given without one.
 */
function principalArnOf(caller: Caller): string {
  const p = parsePrincipal(caller.arn);
  if (p?.kind === 'session') return `arn:${p.partition}:iam::${p.account}:role/${p.role}`;
  return caller.arn;
}

const PRINCIPAL_TYPES = { root: 'Account', user: 'User', role: 'AssumedRole', session: 'AssumedRole', federated: 'FederatedUser' } as const;

// ---------------------------------------------------------------------------------------------
// The condition-key map the policy engine reads

/**
 * The condition-key values of one request, keyed by lower-cased condition key (condition key
 * names are case-insensitive in IAM); a key that is absent is missing from the request. Principal
 * keys come from the caller, the rest from `req` (built by buildAuthzRequest for every operation
 * of the service; direct callers of the policy engine may give only what they test).
 */
export function conditionContext(req: AuthzRequest): ConditionContext {
  const ctx = new Map<string, string[]>();
  const set = (key: string, value: ConditionValue) => {
    if (value === undefined) return;
    const list = Array.isArray(value) ? value : [typeof value === 'boolean' ? String(value) : value];
    ctx.set(key.toLowerCase(), list);
  };
  const { caller } = req;
  const principal = parsePrincipal(caller.arn);
  set('kms:CallerAccount', caller.account);
  set('aws:PrincipalArn', principalArnOf(caller));
  set('aws:PrincipalAccount', caller.account);
  set('aws:PrincipalType', principal ? PRINCIPAL_TYPES[principal.kind] : undefined);
  set('aws:userid', userIdOf(caller));
  // aws:username: IAM users only; absent for the root user, roles and federated users.
  if (principal?.kind === 'user') set('aws:username', principal.name);
  // Every caller here signs with its own credentials; none is an AWS service principal.
  set('aws:PrincipalIsAWSService', false);
  // Sessions use temporary credentials, which carry aws:MultiFactorAuthPresent; no session here
  // was authenticated with MFA (there is no MFA in the local KMS).
  if (principal?.kind === 'session' || principal?.kind === 'role' || principal?.kind === 'federated') {
    set('aws:MultiFactorAuthPresent', false);
  }
  // aws:PrincipalTag/<key>: one key per tag of the principal (none for the root user).
  if (principal && principal.kind !== 'root') {
    for (const [k, v] of Object.entries(caller.tags ?? {})) set(`aws:PrincipalTag/${k}`, v);
  }
  set('kms:EncryptionAlgorithm', req.encryptionAlgorithm);
  const ec = req.encryptionContext;
  if (ec && Object.keys(ec).length > 0) {
    // Multi-valued; absent when the request has no encryption context (then ForAllValues is true
    // and ForAnyValue false, as IAM defines for a missing multi-valued key).
    set('kms:EncryptionContextKeys', Object.keys(ec));
    for (const [k, v] of Object.entries(ec)) {
      // The context-key part of the condition key is case-insensitive, the value is compared by the
      // operator (Developer Guide, "kms:EncryptionContext:context-key"). Two pairs whose keys differ
      // only by case both answer for the condition key.
      const key = `kms:encryptioncontext:${k.toLowerCase()}`;
      const prev = ctx.get(key);
      ctx.set(key, prev ? [...prev, v] : [v]);
    }
  }
  for (const [k, v] of Object.entries(req.conditionKeys ?? {})) set(k, v);
  return ctx;
}
