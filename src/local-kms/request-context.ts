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
 * conditions behave as in AWS. Which keys each operation supplies is the table ACTION_KEYS below
 * (key operations: what the key policy reads, and with IAM_ONLY_KEY_RESOURCE_KEYS what identity
 * policies read) and IAM_ONLY_ACTION_KEYS (what AWS authorizes with identity policies alone); the
 * README's condition-key tables are checked against both by a test.
 */
import { createHash } from 'node:crypto';
import { parseIamDate, UNREADABLE } from './policy-operators.js';
import type { AuthzRequest, Caller, ConditionContext, ConditionEntry, ConditionValue } from './policy-types.js';

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
 * Request-parameter keys of every action a key policy authorizes here (KMS key resource
 * operations; Developer Guide, "AWS KMS permissions", Resources "KMS key"). The same request,
 * plus IAM_ONLY_KEY_RESOURCE_KEYS, is what the caller's identity policies see (iam.ts).
 * Operations AWS authorizes with IAM policies alone are in IAM_ONLY_ACTION_KEYS instead.
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
  // Decided by the grant; a Deny of kms:RetireGrant still applies (ops/grants.ts retireGrant).
  'kms:RetireGrant': none,
  'kms:GetParametersForImport': { required: ['kms:WrappingAlgorithm', 'kms:WrappingKeySpec'], optional: [] },
  'kms:ImportKeyMaterial': { required: ['kms:ExpirationModel'], optional: ['kms:ValidTo'] },
  'kms:DeleteImportedKeyMaterial': none,
  'kms:EnableKeyRotation': { required: ['kms:RotationPeriodInDays'], optional: [] },
  'kms:DisableKeyRotation': none,
  'kms:GetKeyRotationStatus': none,
  'kms:RotateKeyOnDemand': none,
  'kms:ListKeyRotations': none,
  // Multi-Region keys: the Region named by the request (Developer Guide, "AWS KMS condition keys").
  'kms:ReplicateKey': { required: ['kms:ReplicaRegion'], optional: [] },
  'kms:UpdatePrimaryRegion': { required: ['kms:PrimaryRegion'], optional: [] },
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
  // No request-parameter condition key is documented for the encapsulation algorithm (ML_KEM is
  // the only one): the key's own keys (kms:KeySpec, kms:KeyUsage, ...) and kms:RequestAlias.
  'kms:Encapsulate': { required: [], optional: ALIAS },
  'kms:Decapsulate': { required: [], optional: ALIAS },
  // Key ID or key ARN only ("Alias names are not supported"): no kms:RequestAlias.
  'kms:GetKeyLastUsage': none,
};

/**
 * Keys every KMS key resource operation carries from the key itself (Developer Guide, "AWS KMS
 * condition keys": kms:KeySpec, kms:KeyUsage, kms:KeyOrigin, kms:MultiRegion, and the deprecated
 * kms:CustomerMasterKeySpec/kms:CustomerMasterKeyUsage, which "work the same way") and
 * aws:ResourceAccount (the key's account), and kms:MultiRegionKeyType (PRIMARY or REPLICA, multi-Region
 * keys only). Not supplied: kms:ViaService (no AWS service calls here). kms:ResourceAliases and aws:ResourceTag
 * are supplied to identity policies only (IAM_ONLY_KEY_RESOURCE_KEYS), never to key policies.
 */
export const KEY_RESOURCE_KEYS: readonly string[] = [
  'kms:KeySpec',
  'kms:KeyUsage',
  'kms:KeyOrigin',
  'kms:MultiRegion',
  'kms:MultiRegionKeyType',
  'kms:CustomerMasterKeySpec',
  'kms:CustomerMasterKeyUsage',
  'aws:ResourceAccount',
];

/**
 * Global keys every request carries (their Availability is "always" or "all signed requests"),
 * plus the principal's own keys (aws:username for IAM users, aws:PrincipalTag/<key> when the
 * principal has tags, aws:MultiFactorAuthPresent and aws:TokenIssueTime for temporary-credential
 * sessions).
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

/**
 * Keys of the KMS key that AWS KMS supplies to IAM policies only (Developer Guide, "AWS KMS
 * condition keys", kms:ResourceAliases: "IAM policies only"; "Using tags to control access to KMS
 * keys": aws:ResourceTag "is supported only in IAM policies"): one aws:ResourceTag/<key> per tag
 * of the key, and kms:ResourceAliases, the key's alias names (absent when it has none).
 */
export const IAM_ONLY_KEY_RESOURCE_KEYS: readonly string[] = ['aws:ResourceTag/*', 'kms:ResourceAliases'];

/** The key whose policy is evaluated: what the request context needs of it. */
export interface KeyResource {
  arn: string;
  keySpec: string;
  keyUsage: string;
  origin: string;
  /** Multi-Region keys: whether this copy is the primary or a replica (kms:MultiRegionKeyType). */
  multiRegionKeyType?: 'PRIMARY' | 'REPLICA';
  /** The key's tags and alias names: needed only for identity policies (IAM_ONLY_KEY_RESOURCE_KEYS). */
  tags?: readonly { TagKey: string; TagValue: string }[];
  aliases?: readonly string[];
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
 * Throws (a bug, not a client error) when an operation supplies a key its entry does not list, or
 * leaves out one it always supplies.
 */
function checkOperationKeys(what: string, spec: ActionKeys, opKeys: Record<string, ConditionValue>): void {
  const perTag = (name: string) => name.startsWith('aws:RequestTag/') && (spec.required.includes('aws:RequestTag/*') || spec.optional.includes('aws:RequestTag/*'));
  for (const name of Object.keys(opKeys)) {
    if (!spec.required.includes(name) && !spec.optional.includes(name) && !perTag(name)) {
      throw new Error(`request context: ${what} does not carry ${name}`);
    }
  }
  for (const name of spec.required) {
    if (name === 'aws:RequestTag/*') continue; // one key per tag, none for an empty Tags list
    if (opKeys[name] === undefined) throw new Error(`request context: ${what} needs ${name}`);
  }
}

/** The global keys of a request (IAM User Guide, "AWS global condition context keys"); principal keys come from the caller (conditionContext). */
function globalKeys(who: Requester, now: number, serviceRegion: string): Record<string, ConditionValue> {
  const seconds = Math.floor(now / 1000);
  return {
    'aws:CurrentTime': new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    'aws:EpochTime': String(seconds),
    'aws:SecureTransport': who.origin.secureTransport,
    'aws:RequestedRegion': who.origin.requestedRegion ?? serviceRegion,
    'aws:SourceIp': who.origin.sourceIp,
    'aws:UserAgent': who.origin.userAgent,
    // No AWS service calls the local KMS on anyone's behalf.
    'aws:ViaAWSService': false,
  };
}

/**
 * Assembles the authorization request of one operation: global keys, the key's own keys, the
 * operation's keys. Throws (a bug, not a client error) when an operation supplies a key its
 * ACTION_KEYS entry does not list, or leaves out one it always supplies.
 *
 * `policy` says who reads the request: `key` (the key policy, the default) or `identity` (the
 * caller's IAM policies), which also get IAM_ONLY_KEY_RESOURCE_KEYS from `key.tags` and
 * `key.aliases`.
 */
export function buildAuthzRequest(input: AuthzInput, policy: 'key' | 'identity' = 'key'): AuthzRequest {
  const { who, action, key, now } = input;
  const spec = ACTION_KEYS[action];
  if (!spec) throw new Error(`request context: no condition-key entry for ${action}`);
  const opKeys = input.keys ?? {};
  checkOperationKeys(action, spec, opKeys);
  if (input.encryptionContext !== undefined && !spec.optional.includes('kms:EncryptionContextKeys')) {
    throw new Error(`request context: ${action} does not carry an encryption context`);
  }
  const iamOnly: Record<string, ConditionValue> = {};
  if (policy === 'identity') {
    if (key.tags === undefined || key.aliases === undefined) throw new Error(`request context: identity policies of ${action} need the key's tags and aliases`);
    for (const t of key.tags) iamOnly[`aws:ResourceTag/${t.TagKey}`] = t.TagValue;
    iamOnly['kms:ResourceAliases'] = key.aliases.length > 0 ? [...key.aliases] : undefined;
  }
  const conditionKeys: Record<string, ConditionValue> = {
    ...globalKeys(who, now, input.serviceRegion),
    // The key (Developer Guide, "AWS KMS condition keys", conditions for KMS keys).
    'kms:KeySpec': key.keySpec,
    'kms:KeyUsage': key.keyUsage,
    'kms:KeyOrigin': key.origin,
    'kms:MultiRegion': key.multiRegionKeyType !== undefined,
    'kms:MultiRegionKeyType': key.multiRegionKeyType,
    'kms:CustomerMasterKeySpec': key.keySpec,
    'kms:CustomerMasterKeyUsage': key.keyUsage,
    'aws:ResourceAccount': /^arn:[^:]+:kms:[^:]*:(\d{12}):/.exec(key.arn)?.[1],
    ...iamOnly,
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
// Operations AWS authorizes with IAM policies only

/**
 * What an IAM-only authorization is made on (Developer Guide, "AWS KMS permissions", Resources):
 * - `account`: no resource ("*"). "Best practices for IAM policies" says to write `"Resource":
 *   "*"`; "AWS KMS permissions" also accepts an account-specific variation such as
 *   `arn:aws:kms:<region>:<account>:*`. The request is matched as `arn:<partition>:kms:<region>:
 *   <account>:*`, which both forms match and no key or alias ARN pattern does, and reported as `*`
 *   (AWS's denial reads "on resource: *").
 * - `account-keys`: every KMS key of the account and Region, `arn:...:key/*`. CreateKey's Tags
 *   need kms:TagResource "in an IAM policy that isn't restricted to particular KMS keys"
 *   ("Controlling access to tags"); AWS's denial names no resource.
 * - `alias`: the alias ARN (CreateAlias, UpdateAlias, DeleteAlias; "Controlling access to aliases").
 * - `principal`: the retiring principal the request names (API Reference, ListRetirableGrants:
 *   "The authorized resource ... is the retiring principal specified in the request").
 */
export type IamOnlyResource = 'account' | 'account-keys' | 'alias' | 'principal';

interface IamOnlyKeys extends ActionKeys {
  /** The permission, as IAM names it. */
  action: string;
  resource: IamOnlyResource;
}

/** The request-parameter keys of CreateKey: the new key's properties, defaults included (Developer Guide, "AWS KMS condition keys"). */
const CREATE_KEY_KEYS = ['kms:KeySpec', 'kms:KeyUsage', 'kms:KeyOrigin', 'kms:MultiRegion', 'kms:CustomerMasterKeySpec', 'kms:CustomerMasterKeyUsage'];

/**
 * Every authorization AWS makes with IAM policies alone, by operation (and, where one operation
 * makes two, what the second is for), with the keys its request carries. Sources: Developer Guide,
 * "AWS KMS permissions" (Policy type "IAM policy"), "AWS KMS condition keys" (kms:KeySpec,
 * kms:KeyUsage, kms:KeyOrigin, kms:MultiRegion and kms:BypassPolicyLockoutSafetyCheck "CreateKey:
 * IAM policies only"; the keys are present "even when the parameter doesn't appear in the request",
 * except kms:BypassPolicyLockoutSafetyCheck, whose documented Null statement tells requests without
 * it), "Controlling access to tags" (aws:RequestTag, aws:TagKeys), "Controlling access to aliases"
 * (no condition keys for the alias). kms:CallerAccount is documented for KMS key resource and
 * custom key store operations only, so these requests carry the global and principal keys without it.
 * Custom key store operations are IAM-only too ("AWS KMS permissions": Policy type "IAM policy"),
 * on the account's resource; their kms:CallerAccount is not modelled (as for the others).
 */
export const IAM_ONLY_ACTION_KEYS: Readonly<Record<string, IamOnlyKeys>> = {
  CreateKey: {
    action: 'kms:CreateKey',
    resource: 'account',
    required: CREATE_KEY_KEYS,
    optional: ['kms:BypassPolicyLockoutSafetyCheck', 'aws:TagKeys', 'aws:RequestTag/*'],
  },
  'CreateKey with Tags': {
    action: 'kms:TagResource',
    resource: 'account-keys',
    required: [...CREATE_KEY_KEYS, 'aws:TagKeys', 'aws:RequestTag/*'],
    optional: [],
  },
  ListKeys: { action: 'kms:ListKeys', resource: 'account', required: [], optional: [] },
  ListAliases: { action: 'kms:ListAliases', resource: 'account', required: [], optional: [] },
  GenerateRandom: { action: 'kms:GenerateRandom', resource: 'account', required: [], optional: [] },
  ListRetirableGrants: { action: 'kms:ListRetirableGrants', resource: 'principal', required: [], optional: [] },
  'CreateAlias on the alias': { action: 'kms:CreateAlias', resource: 'alias', required: [], optional: [] },
  'UpdateAlias on the alias': { action: 'kms:UpdateAlias', resource: 'alias', required: [], optional: [] },
  'DeleteAlias on the alias': { action: 'kms:DeleteAlias', resource: 'alias', required: [], optional: [] },
  CreateCustomKeyStore: { action: 'kms:CreateCustomKeyStore', resource: 'account', required: [], optional: [] },
  ConnectCustomKeyStore: { action: 'kms:ConnectCustomKeyStore', resource: 'account', required: [], optional: [] },
  DisconnectCustomKeyStore: { action: 'kms:DisconnectCustomKeyStore', resource: 'account', required: [], optional: [] },
  DescribeCustomKeyStores: { action: 'kms:DescribeCustomKeyStores', resource: 'account', required: [], optional: [] },
  UpdateCustomKeyStore: { action: 'kms:UpdateCustomKeyStore', resource: 'account', required: [], optional: [] },
  DeleteCustomKeyStore: { action: 'kms:DeleteCustomKeyStore', resource: 'account', required: [], optional: [] },
};

export interface IamOnlyInput {
  who: Requester;
  /** Entry of IAM_ONLY_ACTION_KEYS. */
  name: string;
  now: number;
  serviceRegion: string;
  /** Where the request's resources live: the service's partition, Region and account. */
  partition: string;
  account: string;
  /** The alias name (`alias` entries) or the principal ARN (`principal` entries). */
  alias?: string;
  principal?: string;
  /** The operation's request-parameter keys, by their documented names. */
  keys?: Record<string, ConditionValue>;
}

/**
 * Assembles the request the caller's identity policies see for an IAM-only authorization: global
 * and principal keys (without kms:CallerAccount), the operation's keys, and the resource it is
 * matched on, with the resource an access-denied message names (`shownResource`, undefined when
 * AWS names none).
 */
export function buildIamOnlyRequest(input: IamOnlyInput): { request: AuthzRequest; shownResource: string | undefined } {
  const spec = IAM_ONLY_ACTION_KEYS[input.name];
  if (!spec) throw new Error(`request context: no IAM-only entry ${input.name}`);
  const opKeys = input.keys ?? {};
  checkOperationKeys(input.name, spec, opKeys);
  const base = `arn:${input.partition}:kms:${input.serviceRegion}:${input.account}`;
  let resourceArn: string;
  let shownResource: string | undefined;
  const conditionKeys: Record<string, ConditionValue> = { ...globalKeys(input.who, input.now, input.serviceRegion) };
  switch (spec.resource) {
    case 'account':
      resourceArn = `${base}:*`;
      shownResource = '*';
      break;
    case 'account-keys':
      resourceArn = `${base}:key/*`;
      shownResource = undefined;
      break;
    case 'alias':
      if (input.alias === undefined) throw new Error(`request context: ${input.name} needs the alias`);
      resourceArn = shownResource = `${base}:${input.alias}`;
      conditionKeys['aws:ResourceAccount'] = input.account;
      break;
    case 'principal':
      if (input.principal === undefined) throw new Error(`request context: ${input.name} needs the principal`);
      resourceArn = shownResource = input.principal;
      break;
  }
  Object.assign(conditionKeys, opKeys);
  return {
    request: { caller: input.who.caller, action: spec.action, resourceArn, conditionKeys, withoutKeys: ['kms:CallerAccount'] },
    shownResource,
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

/** Role sessions, role entries (a session of the role) and federated users sign with temporary credentials. */
export function usesTemporaryCredentials(caller: Caller): boolean {
  const kind = parsePrincipal(caller.arn)?.kind;
  return kind === 'session' || kind === 'role' || kind === 'federated';
}

/**
 * Longest life of temporary security credentials: 129,600 seconds, 36 hours (IAM User Guide,
 * "Disabling permissions for temporary security credentials"). A session in use now was issued
 * within that time. (Role sessions live at most 12 hours; the one bound for every kind of session
 * only widens the range, which is the strict side.)
 */
const MAX_SESSION_MS = 36 * 3_600_000;

/** ISO 8601 to the second, as AWS writes aws:CurrentTime and aws:TokenIssueTime. */
const isoSeconds = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * The times a caller's unknown aws:TokenIssueTime can have, as [earliest, latest]; undefined when
 * the caller has no temporary credentials or its issue time is known (Caller `tokenIssueTime`, a
 * valid date). A principals-file entry cannot know when a real session was issued; a session in
 * use at `now` was issued no later than `now` and no earlier than its longest life before it. The
 * request must then be allowed whatever the time was (core.ts): denied when a Deny applies at
 * either end or to the two together, allowed only when allowed at both ends.
 */
export function tokenIssueTimeRange(caller: Caller, now: number): [string, string] | undefined {
  if (!usesTemporaryCredentials(caller)) return undefined;
  // "Known" means a date the policy engine reads (policy-operators.ts parseIamDate): a value
  // Date.parse would take but the engine would not ("May 1 2024") stays unknown, evaluated over the range.
  if (caller.tokenIssueTime !== undefined && parseIamDate(caller.tokenIssueTime) !== UNREADABLE) return undefined;
  return [isoSeconds(now - MAX_SESSION_MS), isoSeconds(now)];
}

/** `req` with aws:TokenIssueTime set to `value` (one time, or several to probe Deny statements). */
export function withTokenIssueTime(req: AuthzRequest, value: string | string[]): AuthzRequest {
  return { ...req, conditionKeys: { ...(req.conditionKeys ?? {}), 'aws:TokenIssueTime': value } };
}

// ---------------------------------------------------------------------------------------------
// The condition-key map the policy engine reads

/**
 * The condition keys of a request as they are set, by lower-cased name. A multivalued key (given
 * as a list) is its list; a single-valued key keeps one value per spelling of its name, so that
 * names differing only by case (`aws:RequestTag/Env` and `aws:RequestTag/env`, one per tag of the
 * request; `kms:EncryptionContext:tenant` and `...:Tenant`) are all kept, none overwriting another.
 * Setting the same spelling again replaces its value.
 */
class ContextBuilder {
  private readonly keys = new Map<string, string[] | Map<string, string>>();

  set(key: string, value: ConditionValue): void {
    if (value === undefined) return;
    const name = key.toLowerCase();
    if (Array.isArray(value)) {
      this.keys.set(name, value);
      return;
    }
    let spellings = this.keys.get(name);
    if (!(spellings instanceof Map)) this.keys.set(name, (spellings = new Map()));
    spellings.set(key, typeof value === 'boolean' ? String(value) : value);
  }

  delete(key: string): void {
    this.keys.delete(key.toLowerCase());
  }

  /**
   * A single-valued key with several different values (one per spelling) is `ambiguous`: its
   * values are the candidates the policy engine reads the stricter way. Equal values are one.
   */
  build(): ConditionContext {
    const out = new Map<string, ConditionEntry>();
    for (const [name, v] of this.keys) {
      if (Array.isArray(v)) {
        out.set(name, { values: v, ambiguous: false });
      } else {
        const values = [...new Set(v.values())];
        out.set(name, { values, ambiguous: values.length > 1 });
      }
    }
    return out;
  }
}

/**
 * The condition-key values of one request, keyed by lower-cased condition key (condition key
 * names are case-insensitive in IAM); a key that is absent is missing from the request. Principal
 * keys come from the caller, the rest from `req` (built by buildAuthzRequest for every operation
 * of the service; direct callers of the policy engine may give only what they test).
 *
 * Tag keys and encryption context keys are case-sensitive (Developer Guide, "Tags in AWS KMS";
 * "Encryption context"), condition key names are not (IAM User Guide, aws:RequestTag/tag-key,
 * aws:ResourceTag/tag-key; Developer Guide, kms:EncryptionContext:context-key): a request (or a
 * key) with both `Env` and `env` gives aws:RequestTag/env (aws:ResourceTag/env) two candidate
 * values, and neither may be dropped, or a Deny on one of them could be evaded by adding the other.
 */
export function conditionContext(req: AuthzRequest): ConditionContext {
  const ctx = new ContextBuilder();
  const set = (key: string, value: ConditionValue) => ctx.set(key, value);
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
  if (usesTemporaryCredentials(caller)) {
    set('aws:MultiFactorAuthPresent', false);
    // aws:TokenIssueTime: present for temporary credentials only (IAM User Guide, "AWS global
    // condition context keys"). Unknown (undefined) here, core.ts evaluates it over its range.
    set('aws:TokenIssueTime', caller.tokenIssueTime);
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
    // The context-key part of the condition key is case-insensitive, the value is compared by the
    // operator (Developer Guide, "kms:EncryptionContext:context-key"). Pairs whose keys differ only
    // by case are candidate values of one single-valued key (ContextBuilder).
    for (const [k, v] of Object.entries(ec)) set(`kms:EncryptionContext:${k}`, v);
  }
  for (const [k, v] of Object.entries(req.conditionKeys ?? {})) set(k, v);
  for (const k of req.withoutKeys ?? []) ctx.delete(k);
  return ctx.build();
}
