import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { KmsServiceError } from './errors.js';
import type { AuthzRequest, Caller } from './policy-types.js';
import { assertPolicyLockoutSafe, authorizeKeyPolicy, defaultKeyPolicy, evaluateKeyPolicy, isCallerPrincipal, validateKeyPolicy } from './policy.js';
import {
  KEY_PAIR_SPECS,
  KEY_SPECS,
  KEY_SPEC_NAMES,
  KEY_USAGES,
  CHINA_ONLY_KEY_SPECS,
  encryptionAlgorithmsFor,
  keyAgreementAlgorithmsFor,
  hashOf,
  macAlgorithmsFor,
  rsaOaepMaxPlaintext,
  signingAlgorithmsFor,
  type KeySpec,
  type KeyUsage,
} from './specs.js';
import { openBlob, parseBlob, sealBlob } from './blob.js';
import {
  generateKeyPairFor,
  rsaOaepDecrypt,
  rsaOaepEncrypt,
  signMessage,
  verifyMessage,
} from './asym.js';
import {
  IMPORT_PARAMETERS_TTL_MS,
  canonicalMaterial,
  WRAPPING_ALGORITHMS,
  WRAPPING_KEY_SPECS,
  createWrappingKey,
  makeImportToken,
  readImportToken,
  unwrapKeyMaterial,
} from './import.js';
import { ecdhSharedSecret, keySpecOfCurve } from './ecdh.js';
import { Checks, validationError } from './validate.js';
import { MarkerCodec, invalidMarker, paginate, sortByKey, type ListScope } from './paging.js';
import { FileStore, MemoryStore, type KmsStore } from './store.js';
import { checkInputTypes } from './shapes.js';
import {
  DEFAULT_MAX_GRANTS_PER_KEY,
  GRANT_ID,
  GrantTokenCodec,
  atLeastAsStrict,
  constraintTypes,
  findAllowingGrant,
  grantListEntry,
  grantSortKey,
  invalidGrantToken,
  mayRetire,
  newGrantId,
  sameConstraints,
  type GrantRecord,
} from './grants.js';
import { checkGrantForKey, checkGrantIdShape, checkListShape, checkPrincipalShape, normalizePrincipal, parseCreateGrant, requirePrincipal } from './grant-requests.js';
import type { AliasRecord, KeyRecord, MaterialRecord, RotationRecord, Tag } from './model.js';

/**
 * LocalKmsService: an in-process model of AWS KMS key management (customer managed keys in one
 * account and region). Operations take and return the shapes of the AWS KMS API (PascalCase
 * members as in the JSON protocol; blobs as Uint8Array, timestamps as Date), so the HTTP server
 * is only a codec around `call()`.
 *
 * Order of checks in every key operation, as AWS does it: request validation
 * (ValidationException) → key lookup (NotFoundException) → key policy (AccessDeniedException) →
 * key type and state (UnsupportedOperationException, DisabledException, KMSInvalidStateException,
 * InvalidKeyUsageException) → the operation itself.
 *
 * Time comes from an injectable clock; every request first applies what became due since the last
 * one (deletion windows ending, imported material expiring, automatic rotations, import parameters
 * expiring), so tests can move the clock instead of waiting.
 */

export interface LocalKmsServiceOptions {
  /** 12-digit account id of every key; default 111122223333. */
  accountId?: string;
  /** Region in key ARNs; default us-east-1. */
  region?: string;
  /** Milliseconds since the epoch; default Date.now. */
  clock?: () => number;
  /** Persist keys here (survives restarts); in memory when absent. */
  dataDir?: string;
  /** Root key file (32 bytes raw, hex or base64); default `<dataDir>/root.key`, generated on first start. */
  rootKeyFile?: string;
  /** A custom store (advanced; overrides dataDir). */
  store?: KmsStore;
  /** The "Grants per KMS key" quota; default 50,000 as in AWS (where it is adjustable too). */
  maxGrantsPerKey?: number;
  /**
   * Told when a background task of one key (deletion, expiry, automatic rotation) fails, e.g.
   * because the store cannot write the key. The task is skipped and retried a minute later (by
   * the service clock); requests go on. Default: a process warning naming the key and the task.
   */
  onBackgroundError?: (error: unknown, where: { keyId: string; task: BackgroundTask }) => void;
}

export type BackgroundTask = 'deletion' | 'imported material expiry' | 'import parameters expiry' | 'automatic rotation';

/** How long a key whose background task failed is left alone before the task is tried again. */
const BACKGROUND_RETRY_MS = 60_000;

function warnBackgroundError(error: unknown, where: { keyId: string; task: BackgroundTask }): void {
  // The error's name and message only: store errors carry paths and sizes, never key material.
  const e = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  process.emitWarning(`local KMS: ${where.task} of key ${where.keyId} failed (${e}); retrying in ${BACKGROUND_RETRY_MS / 1000} s`, 'LocalKmsWarning');
}

type Blob = Uint8Array;
type Context = Record<string, string>;
type Req = Record<string, unknown>;
export type KmsResponse = Record<string, unknown>;

const DAY_MS = 86_400_000;
const MAX_TAGS = 50;
const MAX_ALIASES_PER_KEY = 50;
const MAX_ON_DEMAND_ROTATIONS = 10;
const DEFAULT_ROTATION_DAYS = 365;
const ALIAS_PATTERN = /^[a-zA-Z0-9:/_-]+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ENCRYPTION_ALGORITHMS = ['SYMMETRIC_DEFAULT', 'RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'SM2PKE'];
const SIGNING_ALGORITHMS = [
  'RSASSA_PSS_SHA_256',
  'RSASSA_PSS_SHA_384',
  'RSASSA_PSS_SHA_512',
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PKCS1_V1_5_SHA_384',
  'RSASSA_PKCS1_V1_5_SHA_512',
  'ECDSA_SHA_256',
  'ECDSA_SHA_384',
  'ECDSA_SHA_512',
  'SM2DSA',
  'ML_DSA_SHAKE_256',
];
const MAC_ALGORITHMS = ['HMAC_SHA_224', 'HMAC_SHA_256', 'HMAC_SHA_384', 'HMAC_SHA_512'];
/** KeyAgreementAlgorithmSpec enum (API Reference, DeriveSharedSecret). */
const KEY_AGREEMENT_ALGORITHMS = ['ECDH'];
const ORIGINS = ['AWS_KMS', 'EXTERNAL', 'AWS_CLOUDHSM', 'EXTERNAL_KEY_STORE'];
const EXPIRATION_MODELS = ['KEY_MATERIAL_EXPIRES', 'KEY_MATERIAL_DOES_NOT_EXPIRE'];

const err = (type: string, message: string) => new KmsServiceError(type, message);

/** Operations AWS KMS has that this model does not: answered with UnsupportedOperationException. */
export const UNSUPPORTED_OPERATIONS = [
  'CreateCustomKeyStore',
  'ConnectCustomKeyStore',
  'DeleteCustomKeyStore',
  'DescribeCustomKeyStores',
  'DisconnectCustomKeyStore',
  'UpdateCustomKeyStore',
  'ReplicateKey',
  'UpdatePrimaryRegion',
];

export class LocalKmsService {
  readonly accountId: string;
  readonly region: string;
  readonly partition: string;
  private readonly clock: () => number;
  private readonly store: KmsStore;
  private keys = new Map<string, KeyRecord>();
  private aliases = new Map<string, AliasRecord>();
  /** Authenticates list markers (NextMarker/Marker), see paging.ts. */
  private readonly markers: MarkerCodec;
  /** Issues and checks grant tokens (grants.ts). */
  private readonly grantTokens: GrantTokenCodec;
  private readonly maxGrantsPerKey: number;
  /** Earliest time something becomes due; -Infinity forces a scan on the next request. */
  private nextEventAt = -Infinity;
  private closed = false;
  private readonly onBackgroundError: NonNullable<LocalKmsServiceOptions['onBackgroundError']>;
  /** Keys whose background task failed, and when to try again. */
  private readonly backgroundRetryAt = new Map<string, number>();

  constructor(options: LocalKmsServiceOptions = {}) {
    const accountId = options.accountId ?? '111122223333';
    if (!/^\d{12}$/.test(accountId)) throw new RangeError(`accountId must be 12 decimal digits, got '${accountId}'`);
    const region = options.region ?? 'us-east-1';
    if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) throw new RangeError(`region must look like us-east-1, got '${region}'`);
    if (options.clock !== undefined && typeof options.clock !== 'function') {
      throw new TypeError('clock must be a function returning milliseconds since the epoch');
    }
    this.accountId = accountId;
    this.region = region;
    this.partition = region.startsWith('cn-') ? 'aws-cn' : region.startsWith('us-gov-') ? 'aws-us-gov' : 'aws';
    this.clock = options.clock ?? Date.now;
    this.store = options.store ?? (options.dataDir ? new FileStore(options.dataDir, options.rootKeyFile) : new MemoryStore());
    // The marker key is the store's token MAC of a fixed label: import token bodies are 73 bytes
    // starting with a version byte 1, so no import token can carry this value as its MAC, and
    // markers survive restarts of a persistent store (its root key is stable).
    this.markers = new MarkerCodec(this.store.tokenMac(Buffer.from('kms-envelope local-kms list markers v1', 'utf8')));
    // Same construction, another label: grant tokens survive restarts like markers do.
    this.grantTokens = new GrantTokenCodec(this.store.tokenMac(Buffer.from('kms-envelope local-kms grant tokens v1', 'utf8')));
    const maxGrants = options.maxGrantsPerKey ?? DEFAULT_MAX_GRANTS_PER_KEY;
    if (!Number.isInteger(maxGrants) || maxGrants < 1) {
      throw new RangeError(`maxGrantsPerKey must be a positive integer (grants per key), got ${String(maxGrants)}`);
    }
    this.maxGrantsPerKey = maxGrants;
    if (options.onBackgroundError !== undefined && typeof options.onBackgroundError !== 'function') {
      throw new TypeError('onBackgroundError must be a function (error, { keyId, task }) => void');
    }
    this.onBackgroundError = options.onBackgroundError ?? warnBackgroundError;
    const loaded = this.store.load();
    for (const k of loaded.keys) this.keys.set(k.keyId, k);
    let dangling = false;
    for (const a of loaded.aliases) {
      // A crash between deleting a key and rewriting aliases.json can leave an alias behind.
      if (this.keys.has(a.targetKeyId)) this.aliases.set(a.name, a);
      else dangling = true;
    }
    if (dangling) this.store.putAliases([...this.aliases.values()]);
  }

  /** The account root, the caller of in-process requests that name no principal. */
  get rootCaller(): Caller {
    return { arn: `arn:${this.partition}:iam::${this.accountId}:root`, account: this.accountId };
  }

  now(): number {
    return this.clock();
  }

  close(): void {
    this.closed = true;
    this.store.close();
  }

  /** Runs one AWS KMS operation by name (`Encrypt`, `CreateKey`, ...). */
  async call(operation: string, input: Req = {}, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    // Own properties only: `TrentService.valueOf` must not reach Object.prototype.valueOf, which
    // returned the service itself (root-derived store keys included) as the response.
    const op = Object.hasOwn(OPERATIONS, operation) ? OPERATIONS[operation] : undefined;
    if (!op) {
      if (UNSUPPORTED_OPERATIONS.includes(operation)) {
        throw err('UnsupportedOperationException', `The local KMS does not support ${operation}.`);
      }
      throw err('UnknownOperationException', `Unknown operation ${operation}`);
    }
    if (this.closed) throw new KmsServiceError('KMSInternalException', 'The local KMS is shut down.', 500);
    const req = input ?? {};
    checkInputTypes(operation, req);
    this.checkGrantTokens(req.GrantTokens);
    this.tick();
    return op.call(this, req, caller);
  }

  // ---------------------------------------------------------------------------------------
  // Time

  /** Applies everything that became due: deletions, material expiry, rotations, stale import parameters. */
  private tick(): void {
    const now = this.clock();
    if (now < this.nextEventAt) return;
    let next = Infinity;
    for (const key of [...this.keys.values()]) {
      // One key's failing task (say, a key file the store can no longer write) must not fail
      // every request for every key: it is reported, skipped, and tried again later.
      const retryAt = this.backgroundRetryAt.get(key.keyId);
      if (retryAt !== undefined && retryAt > now) {
        if (retryAt < next) next = retryAt;
        continue;
      }
      let task: BackgroundTask = 'deletion';
      try {
        if (key.deletionDate !== undefined && key.deletionDate <= now) {
          this.destroyKey(key);
          this.backgroundRetryAt.delete(key.keyId);
          continue;
        }
        let k = key;
        if (k.imported?.validTo !== undefined && k.imported.validTo <= now && k.materials.length > 0) {
          task = 'imported material expiry';
          // AWS deletes expired imported material; the key becomes PendingImport until re-imported.
          k = this.commit(k, {
            materials: [],
            imported: { materialId: k.imported.materialId, fingerprint: k.imported.fingerprint },
          });
        }
        task = 'import parameters expiry';
        if (k.pendingImport && k.pendingImport.expiresAt <= now) k = this.commit(k, { pendingImport: undefined });
        task = 'automatic rotation';
        if (k.rotation.enabled && this.stateOf(k) === 'Enabled') k = this.rotateDue(k, now);
        this.backgroundRetryAt.delete(key.keyId);
        for (const t of this.eventTimes(k)) if (t < next) next = t;
      } catch (e) {
        const at = now + BACKGROUND_RETRY_MS;
        this.backgroundRetryAt.set(key.keyId, at);
        if (at < next) next = at;
        try {
          this.onBackgroundError(e, { keyId: key.keyId, task });
        } catch {
          // A throwing reporter must not bring back the failure it reports.
        }
      }
    }
    this.nextEventAt = next;
  }

  private eventTimes(k: KeyRecord): number[] {
    const t: number[] = [];
    if (k.deletionDate !== undefined) t.push(k.deletionDate);
    if (k.imported?.validTo !== undefined && k.materials.length > 0) t.push(k.imported.validTo);
    if (k.pendingImport) t.push(k.pendingImport.expiresAt);
    // Disabled or pending keys do not rotate; EnableKey/CancelKeyDeletion commit, which rescans.
    const due = this.stateOf(k) === 'Enabled' ? this.nextRotation(k) : undefined;
    if (due !== undefined) t.push(due);
    return t;
  }

  private nextRotation(k: KeyRecord): number | undefined {
    if (!k.rotation.enabled || k.rotation.baseDate === undefined || !k.rotation.periodDays) return undefined;
    return k.rotation.baseDate + k.rotation.periodDays * DAY_MS;
  }

  /** Automatic rotation: one new material per elapsed period, dated when it was due. */
  private rotateDue(key: KeyRecord, now: number): KeyRecord {
    let due = this.nextRotation(key);
    if (due === undefined || due > now) return key;
    const materials = [...key.materials];
    const history = [...key.rotation.history];
    let base = key.rotation.baseDate!;
    for (let i = 0; due !== undefined && due <= now && i < 1000; i++) {
      const m = newSymmetricMaterial(due);
      materials.push(m);
      history.push({ materialId: m.id, date: due, type: 'AUTOMATIC' });
      base = due;
      due = base + key.rotation.periodDays! * DAY_MS;
    }
    return this.commit(key, { materials, rotation: { ...key.rotation, baseDate: base, history } });
  }

  // ---------------------------------------------------------------------------------------
  // Records and persistence

  /** Persists `key` with `changes` applied, then makes it current. Durable before it is visible. */
  private commit(key: KeyRecord, changes: Partial<KeyRecord>): KeyRecord {
    const next: KeyRecord = { ...key, ...changes };
    this.store.putKey(next);
    this.keys.set(next.keyId, next);
    this.nextEventAt = -Infinity;
    return next;
  }

  private commitAliases(aliases: Map<string, AliasRecord>): void {
    this.store.putAliases([...aliases.values()]);
    this.aliases = aliases;
  }

  private destroyKey(key: KeyRecord): void {
    const remaining = new Map([...this.aliases].filter(([, a]) => a.targetKeyId !== key.keyId));
    // Aliases first: a crash in between leaves a key without aliases, never an alias without its key
    // (and a dangling alias would be dropped at start-up anyway).
    if (remaining.size !== this.aliases.size) this.commitAliases(remaining);
    this.store.deleteKey(key.keyId);
    this.keys.delete(key.keyId);
    for (const m of key.materials) m.secret.fill(0);
  }

  keyArn(keyId: string): string {
    return `arn:${this.partition}:kms:${this.region}:${this.accountId}:key/${keyId}`;
  }

  aliasArn(name: string): string {
    return `arn:${this.partition}:kms:${this.region}:${this.accountId}:${name}`;
  }

  stateOf(key: KeyRecord): 'Enabled' | 'Disabled' | 'PendingDeletion' | 'PendingImport' {
    if (key.deletionDate !== undefined) return 'PendingDeletion';
    if (key.origin === 'EXTERNAL' && key.materials.length === 0) return 'PendingImport';
    return key.enabled ? 'Enabled' : 'Disabled';
  }

  /**
   * Resolves a KeyId parameter: key id, key ARN, and (where the operation accepts them) alias
   * name or alias ARN. ARNs of another account or region name keys that do not exist here.
   */
  private resolve(input: string, opts: { alias: boolean }): { key: KeyRecord; alias?: string } {
    const arnPrefix = `arn:${this.partition}:kms:${this.region}:${this.accountId}:`;
    let id = input;
    let aliasName: string | undefined;
    if (input.startsWith('arn:')) {
      const m = /^arn:[\w-]+:kms:[\w-]*:\d*:(key\/.+|alias\/.+)$/.exec(input);
      if (!m) throw err('NotFoundException', `Invalid arn ${input}`);
      if (!input.startsWith(arnPrefix)) {
        if (m[1]!.startsWith('alias/') && opts.alias) throw err('NotFoundException', `Alias ${input} is not found.`);
        throw err('NotFoundException', `Key '${input}' does not exist`);
      }
      if (m[1]!.startsWith('alias/')) aliasName = m[1]!;
      else id = m[1]!.slice(4);
    } else if (input.startsWith('alias/')) {
      aliasName = input;
    }
    if (aliasName !== undefined) {
      if (!opts.alias) throw err('NotFoundException', `Invalid keyId ${input}`);
      const alias = this.aliases.get(aliasName);
      if (!alias) throw err('NotFoundException', `Alias ${this.aliasArn(aliasName)} is not found.`);
      const key = this.keys.get(alias.targetKeyId);
      if (!key) throw err('NotFoundException', `Alias ${this.aliasArn(aliasName)} is not found.`);
      return { key, alias: aliasName };
    }
    if (!UUID.test(id)) throw err('NotFoundException', `Invalid keyId ${input}`);
    const key = this.keys.get(id);
    if (!key) throw err('NotFoundException', `Key '${this.keyArn(id)}' does not exist`);
    return { key };
  }

  /**
   * Key policy check (policy.ts), then grants (grants.ts): an explicit Deny in the key policy wins;
   * otherwise an Allow in the key policy, or a live grant naming the caller, the operation and
   * (for constrained grants) an encryption context the request satisfies, lets the request on.
   * AWS evaluates key policy, IAM policies and grants together the same way; there is no IAM here.
   */
  private authorize(
    caller: Caller,
    action: string,
    key: KeyRecord,
    extra: Omit<AuthzRequest, 'caller' | 'action' | 'resourceArn'> = {},
    requestAlias?: string,
  ): void {
    const request = this.authzRequest(caller, action, key, extra, requestAlias);
    const decision = evaluateKeyPolicy(key.policy, request);
    if (decision.allowed) return;
    // CreateGrant through a grant has its own rules (createGrant), RetireGrant is decided by the grant.
    if (!decision.explicitDeny && action !== 'kms:CreateGrant' && action.startsWith('kms:')) {
      if (findAllowingGrant(key.grants, caller, action.slice(4), extra.encryptionContext)) return;
    }
    // Throws AccessDeniedException naming the principal, the action and the key ARN, like AWS.
    authorizeKeyPolicy(key.policy, request);
  }

  private authzRequest(
    caller: Caller,
    action: string,
    key: KeyRecord,
    extra: Omit<AuthzRequest, 'caller' | 'action' | 'resourceArn'>,
    requestAlias?: string,
  ): AuthzRequest {
    const conditionKeys: Record<string, string | string[] | boolean | undefined> = {
      'kms:KeySpec': key.keySpec,
      'kms:KeyUsage': key.keyUsage,
      'kms:KeyOrigin': key.origin,
      'kms:KeyManager': 'CUSTOMER',
      'kms:MultiRegion': false,
      ...(requestAlias ? { 'kms:RequestAlias': requestAlias } : {}),
      ...(extra.conditionKeys ?? {}),
    };
    return {
      caller,
      action,
      resourceArn: key.arn,
      ...(extra.encryptionContext ? { encryptionContext: extra.encryptionContext } : {}),
      ...(extra.encryptionAlgorithm ? { encryptionAlgorithm: extra.encryptionAlgorithm } : {}),
      conditionKeys,
    };
  }

  /** The key must be Enabled (cryptographic operations). */
  private requireEnabled(key: KeyRecord): void {
    const state = this.stateOf(key);
    if (state === 'Enabled') return;
    if (state === 'Disabled') throw err('DisabledException', `${key.arn} is disabled.`);
    throw this.invalidState(key, state);
  }

  private requireNotPendingDeletion(key: KeyRecord): void {
    if (key.deletionDate !== undefined) throw this.invalidState(key, 'PendingDeletion');
  }

  private invalidState(key: KeyRecord, state: string): KmsServiceError {
    const what = state === 'PendingDeletion' ? 'pending deletion' : state === 'PendingImport' ? 'pending import' : state.toLowerCase();
    return err('KMSInvalidStateException', `${key.arn} is ${what}.`);
  }

  private requireUsage(key: KeyRecord, usage: KeyUsage, operation: string): void {
    if (key.keyUsage !== usage) {
      throw err('InvalidKeyUsageException', `${key.arn} key usage is ${key.keyUsage} which is not valid for ${operation}.`);
    }
  }

  private requireSymmetric(key: KeyRecord, operation: string): void {
    if (key.keySpec !== 'SYMMETRIC_DEFAULT') {
      throw err('InvalidKeyUsageException', `${key.arn} key spec is ${key.keySpec} which is not valid for ${operation}.`);
    }
  }

  private requireRotatable(key: KeyRecord): void {
    if (key.origin !== 'AWS_KMS') {
      throw err('UnsupportedOperationException', `${key.arn} origin is ${key.origin} which is not valid for this operation.`);
    }
    if (key.keySpec !== 'SYMMETRIC_DEFAULT') {
      throw err('UnsupportedOperationException', `${key.arn} key spec is ${key.keySpec} which is not valid for this operation.`);
    }
  }

  private requireExternal(key: KeyRecord): void {
    if (key.origin !== 'EXTERNAL') {
      throw err('UnsupportedOperationException', `${key.arn} origin is ${key.origin} which is not valid for this operation.`);
    }
  }

  private currentMaterial(key: KeyRecord): MaterialRecord {
    const m = key.materials[key.materials.length - 1];
    if (!m) throw this.invalidState(key, 'PendingImport');
    return m;
  }

  metadata(key: KeyRecord): KmsResponse {
    const state = this.stateOf(key);
    const md: KmsResponse = {
      AWSAccountId: this.accountId,
      KeyId: key.keyId,
      Arn: key.arn,
      CreationDate: new Date(key.createdAt),
      Enabled: state === 'Enabled',
      Description: key.description,
      KeyUsage: key.keyUsage,
      KeyState: state,
    };
    if (key.deletionDate !== undefined) md.DeletionDate = new Date(key.deletionDate);
    if (key.imported?.validTo !== undefined && key.materials.length > 0) md.ValidTo = new Date(key.imported.validTo);
    md.Origin = key.origin;
    if (key.origin === 'EXTERNAL' && key.imported?.expirationModel && key.materials.length > 0) {
      md.ExpirationModel = key.imported.expirationModel;
    }
    md.KeyManager = 'CUSTOMER';
    md.CustomerMasterKeySpec = key.keySpec;
    md.KeySpec = key.keySpec;
    if (key.keyUsage === 'ENCRYPT_DECRYPT') md.EncryptionAlgorithms = encryptionAlgorithmsFor(key.keySpec);
    if (key.keyUsage === 'SIGN_VERIFY') md.SigningAlgorithms = signingAlgorithmsFor(key.keySpec);
    if (key.keyUsage === 'GENERATE_VERIFY_MAC') md.MacAlgorithms = macAlgorithmsFor(key.keySpec);
    if (key.keyUsage === 'KEY_AGREEMENT') md.KeyAgreementAlgorithms = keyAgreementAlgorithmsFor(key.keyUsage);
    md.MultiRegion = false;
    if (key.keySpec === 'SYMMETRIC_DEFAULT' && key.materials.length > 0) md.CurrentKeyMaterialId = this.currentMaterial(key).id;
    return md;
  }

  // ---------------------------------------------------------------------------------------
  // Keys

  async createKey(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    c.length('policy', str(req.Policy), 1, 32_768);
    c.length('description', str(req.Description), 0, 8192);
    c.oneOf('keyUsage', str(req.KeyUsage), KEY_USAGES);
    // SM2 is in the API's enum (so it is not a ValidationException) but refused below.
    c.oneOf('keySpec', str(req.KeySpec), [...KEY_SPEC_NAMES, ...CHINA_ONLY_KEY_SPECS]);
    c.oneOf('customerMasterKeySpec', str(req.CustomerMasterKeySpec), [...KEY_SPEC_NAMES, ...CHINA_ONLY_KEY_SPECS]);
    c.oneOf('origin', str(req.Origin), ORIGINS);
    checkTagShapes(c, req.Tags as Tag[] | undefined, 'tags');
    c.done();
    if (req.KeySpec !== undefined && req.CustomerMasterKeySpec !== undefined) {
      throw validationError('You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.');
    }
    const specName = str(req.KeySpec) ?? str(req.CustomerMasterKeySpec) ?? 'SYMMETRIC_DEFAULT';
    if (CHINA_ONLY_KEY_SPECS.includes(specName)) {
      // AWS offers SM2 key pairs (ENCRYPT_DECRYPT, SIGN_VERIFY or KEY_AGREEMENT) only in China
      // Regions (API Reference, CreateKey `KeySpec`/`KeyUsage`) and refuses the spec elsewhere with
      // UnsupportedOperationException, as GenerateDataKeyPair does here. The local KMS does not
      // model China Regions' key specs (SM2, nor SM4 behind SYMMETRIC_DEFAULT) under any region.
      throw err(
        'UnsupportedOperationException',
        this.partition === 'aws-cn'
          ? `KeySpec ${specName} is not supported by the local KMS.`
          : `KeySpec ${specName} is not supported in this Region.`,
      );
    }
    const spec = specName as KeySpec;
    const usage = (str(req.KeyUsage) ?? 'ENCRYPT_DECRYPT') as KeyUsage;
    if (!KEY_SPECS[spec].usages.includes(usage)) {
      throw validationError(`KeyUsage ${usage} is not compatible with KeySpec ${spec}`);
    }
    const origin = str(req.Origin) ?? 'AWS_KMS';
    if (origin !== 'AWS_KMS' && origin !== 'EXTERNAL') {
      throw err('UnsupportedOperationException', `Origin ${origin} is not supported by the local KMS.`);
    }
    if (req.CustomKeyStoreId !== undefined || req.XksKeyId !== undefined) {
      throw err('UnsupportedOperationException', 'Custom key stores are not supported by the local KMS.');
    }
    if (req.MultiRegion === true) {
      throw err('UnsupportedOperationException', 'Multi-Region keys are not supported by the local KMS.');
    }
    const tags = (req.Tags as Tag[] | undefined) ?? [];
    checkTagRules(tags, []);
    const keyId = randomUUID();
    const arn = this.keyArn(keyId);
    let policy: string;
    if (req.Policy !== undefined) {
      policy = String(req.Policy);
      validateKeyPolicy(policy);
      assertPolicyLockoutSafe(policy, caller, arn, req.BypassPolicyLockoutSafetyCheck === true);
    } else {
      policy = defaultKeyPolicy(this.accountId);
    }
    const now = this.clock();
    const key: KeyRecord = {
      keyId,
      arn,
      createdAt: now,
      description: str(req.Description) ?? '',
      keyUsage: usage,
      keySpec: spec,
      origin,
      enabled: true,
      policy,
      tags: tags.map((t) => ({ TagKey: t.TagKey, TagValue: t.TagValue })),
      materials: [],
      rotation: { enabled: false, history: [] },
      onDemandRotations: 0,
    };
    const info = KEY_SPECS[spec];
    if (origin === 'AWS_KMS') {
      if (info.family === 'symmetric') key.materials.push(newSymmetricMaterial(now));
      else if (info.family === 'hmac') key.materials.push({ id: newMaterialId(), createdAt: now, secret: randomBytes(info.hmacBytes!) });
      else {
        const pair = await generateKeyPairFor(spec);
        key.materials.push({ id: newMaterialId(), createdAt: now, secret: pair.privateKey });
        key.publicKey = pair.publicKey;
      }
    }
    const saved = this.commit(key, {});
    return { KeyMetadata: this.metadata(saved) };
  }

  async describeKey(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const keyIdIn = requireKeyId(req.KeyId);
    const { key, alias } = this.resolve(keyIdIn, { alias: true });
    this.authorize(caller, 'kms:DescribeKey', key, {}, alias);
    return { KeyMetadata: this.metadata(key) };
  }

  async listKeys(req: Req): Promise<KmsResponse> {
    const c = new Checks();
    c.range('limit', num(req.Limit), 1, 1000);
    checkMarker(c, req.Marker);
    c.done();
    const all = [...this.keys.values()].sort((a, b) => (a.keyId < b.keyId ? -1 : a.keyId > b.keyId ? 1 : 0));
    const page = paginate(all, (k) => k.keyId, num(req.Limit) ?? 100, str(req.Marker), this.markers, { operation: 'ListKeys', scope: '' });
    return withPage({ Keys: page.items.map((k) => ({ KeyId: k.keyId, KeyArn: k.arn })) }, page);
  }

  async updateKeyDescription(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    checkKeyId(c, req.KeyId);
    c.required('description', req.Description);
    c.length('description', str(req.Description), 0, 8192);
    c.done();
    const { key } = this.resolve(String(req.KeyId), { alias: false });
    this.authorize(caller, 'kms:UpdateKeyDescription', key);
    this.requireNotPendingDeletion(key);
    this.commit(key, { description: String(req.Description) });
    return {};
  }

  async enableKey(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const { key } = this.resolve(requireKeyId(req.KeyId), { alias: false });
    this.authorize(caller, 'kms:EnableKey', key);
    const state = this.stateOf(key);
    if (state === 'PendingDeletion' || state === 'PendingImport') throw this.invalidState(key, state);
    if (!key.enabled) {
      // AWS KMS does not rotate a disabled key (Developer Guide, "Rotating keys"): material that is
      // overdue when the key is re-enabled rotates once, now, and the period restarts from there.
      // Without this, tick() would back-date one rotation per period the key spent disabled.
      const now = this.clock();
      const due = this.nextRotation(key);
      if (due !== undefined && due <= now) {
        const m = newSymmetricMaterial(now);
        this.commit(key, {
          enabled: true,
          materials: [...key.materials, m],
          rotation: {
            ...key.rotation,
            baseDate: now,
            history: [...key.rotation.history, { materialId: m.id, date: now, type: 'AUTOMATIC' }],
          },
        });
      } else {
        this.commit(key, { enabled: true });
      }
    }
    return {};
  }

  async disableKey(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const { key } = this.resolve(requireKeyId(req.KeyId), { alias: false });
    this.authorize(caller, 'kms:DisableKey', key);
    const state = this.stateOf(key);
    if (state === 'PendingDeletion' || state === 'PendingImport') throw this.invalidState(key, state);
    if (key.enabled) this.commit(key, { enabled: false });
    return {};
  }

  async scheduleKeyDeletion(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    checkKeyId(c, req.KeyId);
    // The API model allows 1-365; the service accepts 7-30 (Developer Guide, "Deleting KMS keys").
    c.range('pendingWindowInDays', num(req.PendingWindowInDays), 7, 30);
    c.done();
    const { key } = this.resolve(String(req.KeyId), { alias: false });
    const days = num(req.PendingWindowInDays) ?? 30;
    this.authorize(caller, 'kms:ScheduleKeyDeletion', key, {
      conditionKeys: { 'kms:ScheduleKeyDeletionPendingWindowInDays': String(days) },
    });
    this.requireNotPendingDeletion(key);
    const deletionDate = this.clock() + days * DAY_MS;
    const saved = this.commit(key, { deletionDate, pendingWindowInDays: days });
    return {
      KeyId: saved.arn,
      DeletionDate: new Date(deletionDate),
      KeyState: 'PendingDeletion',
      PendingWindowInDays: days,
    };
  }

  async cancelKeyDeletion(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const { key } = this.resolve(requireKeyId(req.KeyId), { alias: false });
    this.authorize(caller, 'kms:CancelKeyDeletion', key);
    if (key.deletionDate === undefined) throw err('KMSInvalidStateException', `${key.arn} is not pending deletion.`);
    // AWS: a key whose deletion is cancelled is Disabled (or PendingImport without material).
    this.commit(key, { deletionDate: undefined, pendingWindowInDays: undefined, enabled: false });
    return { KeyId: key.arn };
  }

  // ---------------------------------------------------------------------------------------
  // Aliases

  private checkAliasName(c: Checks, member: string, name: unknown): void {
    c.required(member, name);
    c.length(member, str(name), 1, 256);
    c.pattern(member, str(name), ALIAS_PATTERN, '^[a-zA-Z0-9:/_-]+$');
  }

  private aliasRules(name: string): void {
    if (!name.startsWith('alias/') || name.length === 'alias/'.length) {
      throw err('InvalidAliasNameException', `Alias must start with the prefix "alias/" followed by a name: ${name}`);
    }
    if (name.startsWith('alias/aws/')) {
      throw err('InvalidAliasNameException', `Alias names beginning with alias/aws/ are reserved for AWS managed keys: ${name}`);
    }
  }

  async createAlias(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    this.checkAliasName(c, 'aliasName', req.AliasName);
    c.required('targetKeyId', req.TargetKeyId);
    c.length('targetKeyId', str(req.TargetKeyId), 1, 2048);
    c.done();
    const name = String(req.AliasName);
    this.aliasRules(name);
    const { key } = this.resolve(String(req.TargetKeyId), { alias: false });
    this.authorize(caller, 'kms:CreateAlias', key);
    this.requireNotPendingDeletion(key);
    if (this.aliases.has(name)) throw err('AlreadyExistsException', `An alias with the name ${this.aliasArn(name)} already exists`);
    if ([...this.aliases.values()].filter((a) => a.targetKeyId === key.keyId).length >= MAX_ALIASES_PER_KEY) {
      throw err('LimitExceededException', `A KMS key can have at most ${MAX_ALIASES_PER_KEY} aliases.`);
    }
    const now = this.clock();
    const next = new Map(this.aliases);
    next.set(name, { name, targetKeyId: key.keyId, createdAt: now, updatedAt: now });
    this.commitAliases(next);
    return {};
  }

  async updateAlias(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    this.checkAliasName(c, 'aliasName', req.AliasName);
    c.required('targetKeyId', req.TargetKeyId);
    c.length('targetKeyId', str(req.TargetKeyId), 1, 2048);
    c.done();
    const name = String(req.AliasName);
    this.aliasRules(name);
    const alias = this.aliases.get(name);
    if (!alias) throw err('NotFoundException', `Alias ${this.aliasArn(name)} is not found.`);
    const current = this.keys.get(alias.targetKeyId)!;
    const { key } = this.resolve(String(req.TargetKeyId), { alias: false });
    this.authorize(caller, 'kms:UpdateAlias', current);
    this.authorize(caller, 'kms:UpdateAlias', key);
    this.requireNotPendingDeletion(key);
    const family = (k: KeyRecord) => KEY_SPECS[k.keySpec].family === 'symmetric' ? 'SYMMETRIC' : KEY_SPECS[k.keySpec].family === 'hmac' ? 'HMAC' : 'ASYMMETRIC';
    if (family(current) !== family(key) || current.keyUsage !== key.keyUsage) {
      throw validationError(
        `Alias ${this.aliasArn(name)} cannot be changed from a KMS key with key type ${family(current)} and key usage ${current.keyUsage} to a KMS key with key type ${family(key)} and key usage ${key.keyUsage}.`,
      );
    }
    const next = new Map(this.aliases);
    next.set(name, { ...alias, targetKeyId: key.keyId, updatedAt: this.clock() });
    this.commitAliases(next);
    return {};
  }

  async deleteAlias(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    this.checkAliasName(c, 'aliasName', req.AliasName);
    c.done();
    const name = String(req.AliasName);
    this.aliasRules(name);
    const alias = this.aliases.get(name);
    if (!alias) throw err('NotFoundException', `Alias ${this.aliasArn(name)} is not found.`);
    this.authorize(caller, 'kms:DeleteAlias', this.keys.get(alias.targetKeyId)!);
    const next = new Map(this.aliases);
    next.delete(name);
    this.commitAliases(next);
    return {};
  }

  async listAliases(req: Req): Promise<KmsResponse> {
    const c = new Checks();
    c.length('keyId', str(req.KeyId), 1, 2048);
    c.range('limit', num(req.Limit), 1, 100);
    checkMarker(c, req.Marker);
    c.done();
    let list = [...this.aliases.values()];
    const scope: ListScope = { operation: 'ListAliases', scope: '' };
    if (req.KeyId !== undefined) {
      const { key } = this.resolve(String(req.KeyId), { alias: false });
      list = list.filter((a) => a.targetKeyId === key.keyId);
      scope.scope = key.keyId;
    }
    sortByKey(list, (a) => a.name);
    const page = paginate(list, (a) => a.name, num(req.Limit) ?? 50, str(req.Marker), this.markers, scope);
    return withPage(
      {
        Aliases: page.items.map((a) => ({
          AliasName: a.name,
          AliasArn: this.aliasArn(a.name),
          TargetKeyId: a.targetKeyId,
          CreationDate: new Date(a.createdAt),
          LastUpdatedDate: new Date(a.updatedAt),
        })),
      },
      page,
    );
  }

  // ---------------------------------------------------------------------------------------
  // Tags

  async tagResource(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    checkKeyId(c, req.KeyId);
    c.required('tags', req.Tags);
    checkTagShapes(c, req.Tags as Tag[] | undefined, 'tags');
    c.done();
    const { key } = this.resolve(String(req.KeyId), { alias: false });
    this.authorize(caller, 'kms:TagResource', key);
    this.requireNotPendingDeletion(key);
    const tags = req.Tags as Tag[];
    checkTagRules(tags, key.tags);
    const merged = key.tags.map((t) => ({ ...t }));
    for (const t of tags) {
      const existing = merged.find((m) => m.TagKey === t.TagKey);
      if (existing) existing.TagValue = t.TagValue;
      else merged.push({ TagKey: t.TagKey, TagValue: t.TagValue });
    }
    this.commit(key, { tags: merged });
    return {};
  }

  async untagResource(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    checkKeyId(c, req.KeyId);
    c.required('tagKeys', req.TagKeys);
    const keys = (req.TagKeys as string[] | undefined) ?? [];
    keys.forEach((k, i) => c.length(`tagKeys.${i + 1}.member`, k, 1, 128));
    c.done();
    const { key } = this.resolve(String(req.KeyId), { alias: false });
    this.authorize(caller, 'kms:UntagResource', key);
    this.requireNotPendingDeletion(key);
    // AWS tagging rules: `aws:` keys belong to AWS and cannot be edited or removed by callers.
    // UntagResource's only tag error in the API Reference is TagException; the whole request is
    // refused, so no other key in it is removed either.
    const reserved = keys.find(isReservedTagKey);
    if (reserved !== undefined) {
      throw err('TagException', `Tag keys beginning with "aws:" are reserved for AWS use and cannot be removed: ${reserved}`);
    }
    this.commit(key, { tags: key.tags.filter((t) => !keys.includes(t.TagKey)) });
    return {};
  }

  async listResourceTags(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    checkKeyId(c, req.KeyId);
    c.range('limit', num(req.Limit), 1, 50);
    checkMarker(c, req.Marker);
    c.done();
    const { key } = this.resolve(String(req.KeyId), { alias: false });
    this.authorize(caller, 'kms:ListResourceTags', key);
    // Listed in tag-key order: the tag key is the tag's identity, so a marker naming the last key
    // returned stays meaningful when tags are added or removed between pages.
    const tags = sortByKey([...key.tags], (t) => t.TagKey);
    const scope = { operation: 'ListResourceTags', scope: key.keyId };
    const page = paginate(tags, (t) => t.TagKey, num(req.Limit) ?? 50, str(req.Marker), this.markers, scope);
    return withPage({ Tags: page.items.map((t) => ({ TagKey: t.TagKey, TagValue: t.TagValue })) }, page);
  }

  // ---------------------------------------------------------------------------------------
  // Key policies

  private checkPolicyName(c: Checks, name: unknown): void {
    c.length('policyName', str(name), 1, 128);
    c.pattern('policyName', str(name), /^[\w]+$/, '[\\w]+');
  }

  private requireDefaultPolicyName(name: unknown): void {
    if (name !== undefined && name !== 'default') throw err('NotFoundException', 'No such policy exists');
  }

  async getKeyPolicy(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    checkKeyId(c, req.KeyId);
    this.checkPolicyName(c, req.PolicyName);
    c.done();
    const { key } = this.resolve(String(req.KeyId), { alias: false });
    this.authorize(caller, 'kms:GetKeyPolicy', key);
    this.requireDefaultPolicyName(req.PolicyName);
    return { Policy: key.policy, PolicyName: 'default' };
  }

  async putKeyPolicy(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    checkKeyId(c, req.KeyId);
    this.checkPolicyName(c, req.PolicyName);
    c.required('policy', req.Policy);
    c.length('policy', str(req.Policy), 1, 32_768);
    c.done();
    const { key } = this.resolve(String(req.KeyId), { alias: false });
    this.authorize(caller, 'kms:PutKeyPolicy', key);
    this.requireDefaultPolicyName(req.PolicyName);
    const policy = String(req.Policy);
    validateKeyPolicy(policy);
    assertPolicyLockoutSafe(policy, caller, key.arn, req.BypassPolicyLockoutSafetyCheck === true);
    this.commit(key, { policy });
    return {};
  }

  async listKeyPolicies(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    checkKeyId(c, req.KeyId);
    c.range('limit', num(req.Limit), 1, 1000);
    checkMarker(c, req.Marker);
    c.done();
    const { key } = this.resolve(String(req.KeyId), { alias: false });
    this.authorize(caller, 'kms:ListKeyPolicies', key);
    // A key has one policy ("default"), so this list never has a second page and never issues a
    // marker: any Marker is one we did not issue. (The API Reference does not list
    // InvalidMarkerException for ListKeyPolicies; it is the error every other list gives.)
    if (req.Marker !== undefined) throw invalidMarker();
    return { PolicyNames: ['default'], Truncated: false };
  }

  // ---------------------------------------------------------------------------------------
  // Grants (rules in grants.ts, request checks in grant-requests.ts)

  /**
   * Every request's GrantTokens must be tokens this KMS issued (InvalidGrantTokenException).
   * Authorization never needs them: the local model is strongly consistent, so a grant works as
   * soon as CreateGrant returns, and a token of a retired or revoked grant gives nothing.
   */
  private checkGrantTokens(tokens: unknown): void {
    if (!Array.isArray(tokens)) return;
    const c = new Checks();
    c.length('grantTokens', tokens, 0, 10);
    tokens.forEach((t, i) => c.length(`grantTokens.${i + 1}.member`, t as string, 1, 8192));
    c.done();
    for (const t of tokens as string[]) if (!this.grantTokens.read(t)) throw invalidGrantToken();
  }

  private grantsOf(key: KeyRecord): GrantRecord[] {
    return key.grants ?? [];
  }

  async createGrant(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const input = parseCreateGrant(req, this.partition);
    const { key } = this.resolve(input.keyId, { alias: false });
    // kms:CreateGrant with the grant condition keys (Developer Guide, "AWS KMS condition keys").
    // No request comes from an AWS service here, so kms:GrantIsForAWSResource is false.
    const request = this.authzRequest(caller, 'kms:CreateGrant', key, {
      conditionKeys: {
        'kms:GranteePrincipal': input.granteePrincipal,
        'kms:RetiringPrincipal': input.retiringPrincipal,
        'kms:GrantOperations': input.operations,
        'kms:GrantConstraintType': constraintTypes(input.constraints).length > 0 ? constraintTypes(input.constraints) : undefined,
        'kms:GrantConstraintSourceArn': input.constraints?.SourceArn,
        'kms:GrantIsForAWSResource': false,
      },
    });
    const decision = evaluateKeyPolicy(key.policy, request);
    if (!decision.allowed) {
      // A grant that includes CreateGrant lets its grantee create grants with some or all of its
      // operations and constraints at least as strict (Developer Guide, "Granting CreateGrant
      // permission"); those limits do not apply to permission from the key policy.
      const parent = decision.explicitDeny
        ? undefined
        : this.grantsOf(key).find(
            (g) =>
              findAllowingGrant([g], caller, 'CreateGrant', undefined) !== undefined &&
              input.operations.every((op) => g.operations.includes(op)) &&
              atLeastAsStrict(input.constraints, g.constraints),
          );
      if (!parent) authorizeKeyPolicy(key.policy, request);
    }
    // Key states (Developer Guide, "Key states of AWS KMS keys"): as for Decrypt.
    this.requireEnabled(key);
    checkGrantForKey(input, key.keySpec, key.keyUsage);
    const grants = this.grantsOf(key);
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
    if (!retry && grants.length >= this.maxGrantsPerKey) {
      throw err('LimitExceededException', `${key.arn} already has ${grants.length} grants, the quota of grants per KMS key.`);
    }
    this.dryRun(req);
    if (retry) return { GrantToken: this.grantTokens.issue(key.keyId, retry.grantId), GrantId: retry.grantId };
    const seq = (key.grantSeq ?? 0) + 1;
    const grant: GrantRecord = {
      grantId: newGrantId(),
      seq,
      createdAt: this.clock(),
      granteePrincipal: input.granteePrincipal,
      issuingAccount: `arn:${this.partition}:iam::${this.accountId}:root`,
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
    this.commit(key, { grants: [...grants, grant], grantSeq: seq });
    return { GrantToken: this.grantTokens.issue(key.keyId, grant.grantId), GrantId: grant.grantId };
  }

  async listGrants(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    checkKeyId(c, req.KeyId);
    checkListShape(c, req);
    checkGrantIdShape(c, req.GrantId, false);
    checkPrincipalShape(c, 'granteePrincipal', req.GranteePrincipal, false);
    c.done();
    const { key } = this.resolve(String(req.KeyId), { alias: false });
    // Only the key policy gives kms:ListGrants (Developer Guide, "Controlling access to grants").
    this.authorize(caller, 'kms:ListGrants', key, { conditionKeys: { 'kms:GrantIsForAWSResource': false } });
    let grants = this.grantsOf(key);
    if (req.GrantId !== undefined) {
      grants = grants.filter((g) => g.grantId === req.GrantId);
      if (grants.length === 0) throw invalidGrantId(String(req.GrantId));
    }
    if (req.GranteePrincipal !== undefined) {
      const grantee = normalizePrincipal(String(req.GranteePrincipal), this.partition);
      grants = grants.filter((g) => g.granteePrincipal === grantee);
    }
    const sorted = sortByKey([...grants], grantSortKey);
    const page = paginate(sorted, grantSortKey, num(req.Limit) ?? 50, str(req.Marker), this.markers, { operation: 'ListGrants', scope: key.keyId });
    return withPage({ Grants: page.items.map((g) => grantListEntry(g, key.arn)) }, page);
  }

  /**
   * ListRetirableGrants: the grants of every key in the account whose retiring principal is the
   * one named. AWS authorizes it with an IAM policy in the caller's account and requires a
   * principal of that account; without IAM, the account root and the retiring principal itself
   * may ask, anyone else is AccessDeniedException.
   */
  async listRetirableGrants(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    checkPrincipalShape(c, 'retiringPrincipal', req.RetiringPrincipal, true);
    checkListShape(c, req);
    c.done();
    const named = String(req.RetiringPrincipal);
    requirePrincipal(named, 'RetiringPrincipal');
    const principal = normalizePrincipal(named, this.partition);
    const rootArn = `arn:${this.partition}:iam::${caller.account}:root`;
    if (!(isCallerPrincipal(rootArn, caller) && accountOf(principal) === caller.account) && !isCallerPrincipal(principal, caller)) {
      throw err(
        'AccessDeniedException',
        `User: ${caller.arn} is not authorized to perform: kms:ListRetirableGrants on resource: ${principal}`,
      );
    }
    const entries: { grant: GrantRecord; keyArn: string }[] = [];
    for (const key of this.keys.values()) {
      for (const g of this.grantsOf(key)) if (g.retiringPrincipal === principal) entries.push({ grant: g, keyArn: key.arn });
    }
    // Across keys: creation time, then the key, then the grant's place in its key.
    const sortKey = (e: { grant: GrantRecord; keyArn: string }) =>
      `${String(e.grant.createdAt).padStart(16, '0')}.${e.keyArn.slice(-36)}.${grantSortKey(e.grant)}`;
    sortByKey(entries, sortKey);
    const page = paginate(entries, sortKey, num(req.Limit) ?? 50, str(req.Marker), this.markers, { operation: 'ListRetirableGrants', scope: principal });
    return withPage({ Grants: page.items.map((e) => grantListEntry(e.grant, e.keyArn)) }, page);
  }

  async retireGrant(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    c.length('grantToken', str(req.GrantToken), 1, 8192);
    c.length('keyId', str(req.KeyId), 1, 2048);
    checkGrantIdShape(c, req.GrantId, false);
    c.done();
    let key: KeyRecord;
    let grantId: string;
    if (req.GrantToken !== undefined) {
      // A grant token names the grant by itself (API Reference, RetireGrant `GrantToken`).
      const named = this.grantTokens.read(String(req.GrantToken));
      if (!named) throw invalidGrantToken();
      const found = this.keys.get(named.keyId);
      if (!found) throw err('NotFoundException', `Key '${this.keyArn(named.keyId)}' does not exist`);
      if (req.KeyId !== undefined && this.resolve(String(req.KeyId), { alias: false }).key.keyId !== found.keyId) {
        throw validationError('The KeyId does not identify the KMS key of the grant that the grant token names.');
      }
      if (req.GrantId !== undefined && req.GrantId !== named.grantId) throw invalidGrantId(String(req.GrantId));
      if (!this.grantsOf(found).some((g) => g.grantId === named.grantId)) {
        throw err('NotFoundException', 'The grant that the grant token names does not exist: it was retired or revoked.');
      }
      key = found;
      grantId = named.grantId;
    } else {
      if (req.KeyId === undefined || req.GrantId === undefined) {
        throw validationError('RetireGrant needs a GrantToken, or both KeyId and GrantId.');
      }
      key = this.resolve(String(req.KeyId), { alias: false }).key;
      grantId = String(req.GrantId);
    }
    const grant = this.grantsOf(key).find((g) => g.grantId === grantId);
    if (!grant) throw invalidGrantId(grantId);
    if (!mayRetire(grant, caller)) {
      throw err(
        'AccessDeniedException',
        `User: ${caller.arn} is not authorized to perform: kms:RetireGrant on resource: ${key.arn} because the grant does not allow it to retire the grant`,
      );
    }
    this.dryRun(req);
    this.removeGrant(key, grantId);
    return {};
  }

  async revokeGrant(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    checkKeyId(c, req.KeyId);
    checkGrantIdShape(c, req.GrantId, true);
    c.done();
    const { key } = this.resolve(String(req.KeyId), { alias: false });
    // RevokeGrant is authorized by the key policy only (kms:RevokeGrant), never by a grant.
    this.authorize(caller, 'kms:RevokeGrant', key, { conditionKeys: { 'kms:GrantIsForAWSResource': false } });
    const grantId = String(req.GrantId);
    if (!this.grantsOf(key).some((g) => g.grantId === grantId)) throw invalidGrantId(grantId);
    this.dryRun(req);
    this.removeGrant(key, grantId);
    return {};
  }

  private removeGrant(key: KeyRecord, grantId: string): void {
    this.commit(key, { grants: this.grantsOf(key).filter((g) => g.grantId !== grantId) });
  }

  // ---------------------------------------------------------------------------------------
  // Imported key material

  async getParametersForImport(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    checkKeyId(c, req.KeyId);
    c.required('wrappingAlgorithm', req.WrappingAlgorithm);
    c.oneOf('wrappingAlgorithm', str(req.WrappingAlgorithm), WRAPPING_ALGORITHMS);
    c.required('wrappingKeySpec', req.WrappingKeySpec);
    c.oneOf('wrappingKeySpec', str(req.WrappingKeySpec), WRAPPING_KEY_SPECS);
    c.done();
    const { key } = this.resolve(String(req.KeyId), { alias: false });
    const algorithm = String(req.WrappingAlgorithm);
    const spec = String(req.WrappingKeySpec);
    this.authorize(caller, 'kms:GetParametersForImport', key, {
      conditionKeys: { 'kms:WrappingAlgorithm': algorithm, 'kms:WrappingKeySpec': spec },
    });
    this.requireExternal(key);
    this.requireNotPendingDeletion(key);
    const pair = await createWrappingKey(spec);
    const current = this.keys.get(key.keyId);
    if (!current) throw err('NotFoundException', `Key '${key.arn}' does not exist`);
    const expiresAt = this.clock() + IMPORT_PARAMETERS_TTL_MS;
    const tokenId = randomBytes(16).toString('hex');
    this.commit(current, {
      pendingImport: { tokenId, wrappingAlgorithm: algorithm, wrappingKeySpec: spec, ...pair, expiresAt },
    });
    const token = makeImportToken({ keyId: key.keyId, tokenId, expiresAt }, (b) => this.store.tokenMac(b));
    return { KeyId: key.arn, ImportToken: token, PublicKey: pair.publicKey, ParametersValidTo: new Date(expiresAt) };
  }

  async importKeyMaterial(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    checkKeyId(c, req.KeyId);
    c.required('importToken', req.ImportToken);
    c.length('importToken', req.ImportToken, 1, 6144);
    c.required('encryptedKeyMaterial', req.EncryptedKeyMaterial);
    c.length('encryptedKeyMaterial', req.EncryptedKeyMaterial, 1, 6144);
    c.oneOf('expirationModel', str(req.ExpirationModel), EXPIRATION_MODELS);
    c.done();
    const { key } = this.resolve(String(req.KeyId), { alias: false });
    const validTo = time(req.ValidTo);
    // API reference, ImportKeyMaterial: "The default is KEY_MATERIAL_EXPIRES", which needs ValidTo.
    const model = (str(req.ExpirationModel) as 'KEY_MATERIAL_EXPIRES' | 'KEY_MATERIAL_DOES_NOT_EXPIRE' | undefined) ?? 'KEY_MATERIAL_EXPIRES';
    this.authorize(caller, 'kms:ImportKeyMaterial', key, {
      conditionKeys: {
        'kms:ExpirationModel': model,
        ...(validTo !== undefined ? { 'kms:ValidTo': String(Math.floor(validTo / 1000)) } : {}),
      },
    });
    this.requireExternal(key);
    this.requireNotPendingDeletion(key);
    const now = this.clock();
    if (model === 'KEY_MATERIAL_EXPIRES') {
      if (validTo === undefined) throw validationError('ValidTo is required when ExpirationModel is KEY_MATERIAL_EXPIRES.');
      if (validTo <= now) throw validationError('ValidTo must be a time in the future.');
      if (validTo > now + 365 * DAY_MS) throw validationError('ValidTo must be at most 365 days after the request.');
    } else if (validTo !== undefined) {
      throw validationError('ValidTo must not be set when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE.');
    }
    const token = readImportToken(Buffer.from(req.ImportToken as Blob), (b) => this.store.tokenMac(b));
    if (!token || token.keyId !== key.keyId) {
      throw err('InvalidImportTokenException', 'The import token is not valid for this KMS key.');
    }
    if (token.expiresAt <= now) {
      throw err('ExpiredImportTokenException', 'The import token has expired. Call GetParametersForImport for a new import token and public key, and wrap the key material again.');
    }
    const pending = key.pendingImport;
    if (!pending || pending.tokenId !== token.tokenId) {
      throw err('InvalidImportTokenException', 'The import token is not valid for this KMS key; use the import token from the latest GetParametersForImport response.');
    }
    const material = unwrapKeyMaterial(pending.wrappingAlgorithm, pending.privateKey, Buffer.from(req.EncryptedKeyMaterial as Blob));
    if (!material) {
      throw err('InvalidCiphertextException', `The encrypted key material could not be unwrapped with the ${pending.wrappingAlgorithm} wrapping key.`);
    }
    const canonical = canonicalMaterial(key.keySpec, material);
    if ('error' in canonical) {
      material.fill(0);
      throw err('IncorrectKeyMaterialException', canonical.error);
    }
    const fingerprint = this.store.fingerprint(key.keyId, canonical.secret);
    if (key.imported && key.imported.fingerprint !== fingerprint) {
      material.fill(0);
      canonical.secret.fill(0);
      throw err('IncorrectKeyMaterialException', 'The key material is not the key material previously imported into this KMS key.');
    }
    const materialId = key.imported?.materialId ?? newMaterialId();
    const imported = { materialId, fingerprint, expirationModel: model, ...(validTo !== undefined ? { validTo } : {}) };
    this.commit(key, {
      materials: [{ id: materialId, createdAt: now, secret: canonical.secret }],
      imported,
      ...(canonical.publicKey ? { publicKey: canonical.publicKey } : {}),
    });
    return { KeyId: key.arn, KeyMaterialId: materialId };
  }

  async deleteImportedKeyMaterial(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const { key } = this.resolve(requireKeyId(req.KeyId), { alias: false });
    this.authorize(caller, 'kms:DeleteImportedKeyMaterial', key);
    this.requireExternal(key);
    const out: KmsResponse = { KeyId: key.arn };
    if (key.imported) out.KeyMaterialId = key.imported.materialId;
    this.commit(key, {
      materials: [],
      ...(key.imported ? { imported: { materialId: key.imported.materialId, fingerprint: key.imported.fingerprint } } : {}),
    });
    // Only after the deletion is durable: until then the old record is still the current one.
    for (const m of key.materials) m.secret.fill(0);
    return out;
  }

  // ---------------------------------------------------------------------------------------
  // Rotation

  async enableKeyRotation(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    checkKeyId(c, req.KeyId);
    c.range('rotationPeriodInDays', num(req.RotationPeriodInDays), 90, 2560);
    c.done();
    const { key } = this.resolve(String(req.KeyId), { alias: false });
    const period = num(req.RotationPeriodInDays) ?? DEFAULT_ROTATION_DAYS;
    this.authorize(caller, 'kms:EnableKeyRotation', key, { conditionKeys: { 'kms:RotationPeriodInDays': String(period) } });
    this.requireRotatable(key);
    this.requireEnabled(key);
    const baseDate = key.rotation.enabled && key.rotation.baseDate !== undefined ? key.rotation.baseDate : this.clock();
    this.commit(key, { rotation: { ...key.rotation, enabled: true, periodDays: period, baseDate } });
    return {};
  }

  async disableKeyRotation(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const { key } = this.resolve(requireKeyId(req.KeyId), { alias: false });
    this.authorize(caller, 'kms:DisableKeyRotation', key);
    this.requireRotatable(key);
    this.requireEnabled(key);
    this.commit(key, { rotation: { ...key.rotation, enabled: false, baseDate: undefined } });
    return {};
  }

  async getKeyRotationStatus(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const { key } = this.resolve(requireKeyId(req.KeyId), { alias: false });
    this.authorize(caller, 'kms:GetKeyRotationStatus', key);
    this.requireRotatable(key);
    // GetKeyRotationStatus: while a key is pending deletion its rotation status is false; the stored
    // status comes back when the deletion is cancelled.
    const enabled = key.rotation.enabled && key.deletionDate === undefined;
    const out: KmsResponse = { KeyRotationEnabled: enabled, KeyId: key.arn };
    if (enabled) {
      out.RotationPeriodInDays = key.rotation.periodDays;
      const next = this.nextRotation(key);
      if (next !== undefined) out.NextRotationDate = new Date(next);
    }
    return out;
  }

  async rotateKeyOnDemand(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const { key } = this.resolve(requireKeyId(req.KeyId), { alias: false });
    this.authorize(caller, 'kms:RotateKeyOnDemand', key);
    this.requireRotatable(key);
    this.requireEnabled(key);
    if (key.onDemandRotations >= MAX_ON_DEMAND_ROTATIONS) {
      throw err('LimitExceededException', `${key.arn} has reached the limit of ${MAX_ON_DEMAND_ROTATIONS} on-demand rotations.`);
    }
    const now = this.clock();
    const m = newSymmetricMaterial(now);
    this.commit(key, {
      materials: [...key.materials, m],
      onDemandRotations: key.onDemandRotations + 1,
      rotation: { ...key.rotation, history: [...key.rotation.history, { materialId: m.id, date: now, type: 'ON_DEMAND' }] },
    });
    return { KeyId: key.arn };
  }

  async listKeyRotations(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    checkKeyId(c, req.KeyId);
    c.range('limit', num(req.Limit), 1, 1000);
    checkMarker(c, req.Marker);
    c.done();
    const { key } = this.resolve(String(req.KeyId), { alias: false });
    this.authorize(caller, 'kms:ListKeyRotations', key);
    this.requireRotatable(key);
    // Oldest first. Each rotation made its own material, so date + material id identifies it.
    const rotationKey = (r: RotationRecord) => `${String(r.date).padStart(16, '0')}.${r.materialId}`;
    const rotations = sortByKey([...key.rotation.history], rotationKey);
    const scope = { operation: 'ListKeyRotations', scope: key.keyId };
    const page = paginate(rotations, rotationKey, num(req.Limit) ?? 100, str(req.Marker), this.markers, scope);
    return withPage(
      {
        Rotations: page.items.map((r) => ({
          KeyId: key.arn,
          KeyMaterialId: r.materialId,
          RotationDate: new Date(r.date),
          RotationType: r.type,
        })),
      },
      page,
    );
  }

  // ---------------------------------------------------------------------------------------
  // Cryptography

  private dryRun(req: Req): void {
    if (req.DryRun === true) {
      throw err('DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.');
    }
  }

  /** Checks shared by Encrypt and the ReEncrypt destination; returns the ciphertext. */
  private encryptWith(
    key: KeyRecord,
    plaintext: Blob,
    context: Context | undefined,
    algorithm: string,
    operation: string,
  ): { blob: Buffer; materialId?: string } {
    this.requireEnabled(key);
    this.requireUsage(key, 'ENCRYPT_DECRYPT', operation);
    if (!encryptionAlgorithmsFor(key.keySpec).includes(algorithm)) {
      throw err('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${key.keySpec}.`);
    }
    if (key.keySpec === 'SYMMETRIC_DEFAULT') {
      const m = this.currentMaterial(key);
      return { blob: sealBlob(key.keyId, m.id, m.secret, plaintext, context), materialId: m.id };
    }
    if (context && Object.keys(context).length > 0) {
      throw validationError('EncryptionContext is not supported with asymmetric KMS keys.');
    }
    const max = rsaOaepMaxPlaintext(KEY_SPECS[key.keySpec].rsaBits!, algorithm);
    if (plaintext.length > max) {
      throw validationError(`Plaintext is ${plaintext.length} bytes; ${algorithm} with a ${key.keySpec} key encrypts at most ${max} bytes.`);
    }
    return { blob: rsaOaepEncrypt(key.publicKey!, algorithm, plaintext) };
  }

  /** Checks shared by Decrypt and the ReEncrypt source. */
  private decryptWith(
    caller: Caller,
    action: string,
    blob: Blob,
    keyIdIn: string | undefined,
    context: Context | undefined,
    algorithm: string,
    operation: string,
  ): { key: KeyRecord; plaintext: Buffer; materialId?: string } {
    if (algorithm !== 'SYMMETRIC_DEFAULT') {
      if (keyIdIn === undefined) {
        throw validationError(`KeyId is required to decrypt with ${algorithm}: asymmetric ciphertext does not name its key.`);
      }
      const { key, alias } = this.resolve(keyIdIn, { alias: true });
      this.authorize(caller, action, key, { encryptionAlgorithm: algorithm, ...(context ? { encryptionContext: context } : {}) }, alias);
      this.requireEnabled(key);
      this.requireUsage(key, 'ENCRYPT_DECRYPT', operation);
      if (!encryptionAlgorithmsFor(key.keySpec).includes(algorithm)) {
        throw err('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${key.keySpec}.`);
      }
      const plaintext = rsaOaepDecrypt(key.materials[0]!.secret, algorithm, blob);
      if (!plaintext) throw invalidCiphertext();
      return { key, plaintext };
    }
    const parsed = parseBlob(blob);
    let requested: { key: KeyRecord; alias?: string } | undefined;
    if (keyIdIn !== undefined) requested = this.resolve(keyIdIn, { alias: true });
    if (!parsed) {
      if (requested && requested.key.keySpec !== 'SYMMETRIC_DEFAULT') {
        throw err('InvalidKeyUsageException', `Algorithm SYMMETRIC_DEFAULT is incompatible with key spec ${requested.key.keySpec}.`);
      }
      throw invalidCiphertext();
    }
    if (requested && requested.key.keyId !== parsed.keyId) {
      throw err('IncorrectKeyException', 'The key ID in the request does not identify a KMS key that can perform this operation.');
    }
    const key = this.keys.get(parsed.keyId);
    if (!key) throw err('NotFoundException', `Key '${this.keyArn(parsed.keyId)}' does not exist`);
    this.authorize(caller, action, key, { encryptionAlgorithm: algorithm, encryptionContext: context ?? {} }, requested?.alias);
    this.requireEnabled(key);
    this.requireUsage(key, 'ENCRYPT_DECRYPT', operation);
    const material = key.materials.find((m) => m.id === parsed.materialId);
    const plaintext = material ? openBlob(parsed, material.secret, context) : undefined;
    if (!plaintext) throw invalidCiphertext();
    return { key, plaintext, materialId: parsed.materialId };
  }

  async encrypt(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    checkKeyId(c, req.KeyId);
    c.required('plaintext', req.Plaintext);
    c.length('plaintext', req.Plaintext, 1, 4096);
    c.oneOf('encryptionAlgorithm', str(req.EncryptionAlgorithm), ENCRYPTION_ALGORITHMS);
    checkGrantTokens(c, req.GrantTokens);
    c.done();
    const algorithm = str(req.EncryptionAlgorithm) ?? 'SYMMETRIC_DEFAULT';
    const context = req.EncryptionContext as Context | undefined;
    const { key, alias } = this.resolve(String(req.KeyId), { alias: true });
    this.authorize(caller, 'kms:Encrypt', key, { encryptionAlgorithm: algorithm, encryptionContext: context ?? {} }, alias);
    const out = this.encryptWith(key, req.Plaintext as Blob, context, algorithm, 'Encrypt');
    this.dryRun(req);
    return withMaterial({ CiphertextBlob: out.blob, KeyId: key.arn, EncryptionAlgorithm: algorithm }, out.materialId);
  }

  async decrypt(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    c.required('ciphertextBlob', req.CiphertextBlob);
    c.length('ciphertextBlob', req.CiphertextBlob, 1, 6144);
    c.length('keyId', str(req.KeyId), 1, 2048);
    c.oneOf('encryptionAlgorithm', str(req.EncryptionAlgorithm), ENCRYPTION_ALGORITHMS);
    checkGrantTokens(c, req.GrantTokens);
    c.done();
    if (req.Recipient !== undefined) throw err('UnsupportedOperationException', 'Recipient (Nitro Enclaves attestation) is not supported by the local KMS.');
    const algorithm = str(req.EncryptionAlgorithm) ?? 'SYMMETRIC_DEFAULT';
    const out = this.decryptWith(
      caller,
      'kms:Decrypt',
      req.CiphertextBlob as Blob,
      str(req.KeyId),
      req.EncryptionContext as Context | undefined,
      algorithm,
      'Decrypt',
    );
    this.dryRun(req);
    return withMaterial({ KeyId: out.key.arn, Plaintext: out.plaintext, EncryptionAlgorithm: algorithm }, out.materialId);
  }

  async reEncrypt(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    c.required('ciphertextBlob', req.CiphertextBlob);
    c.length('ciphertextBlob', req.CiphertextBlob, 1, 6144);
    c.length('sourceKeyId', str(req.SourceKeyId), 1, 2048);
    c.required('destinationKeyId', req.DestinationKeyId);
    c.length('destinationKeyId', str(req.DestinationKeyId), 1, 2048);
    c.oneOf('sourceEncryptionAlgorithm', str(req.SourceEncryptionAlgorithm), ENCRYPTION_ALGORITHMS);
    c.oneOf('destinationEncryptionAlgorithm', str(req.DestinationEncryptionAlgorithm), ENCRYPTION_ALGORITHMS);
    checkGrantTokens(c, req.GrantTokens);
    c.done();
    const srcAlg = str(req.SourceEncryptionAlgorithm) ?? 'SYMMETRIC_DEFAULT';
    const dstAlg = str(req.DestinationEncryptionAlgorithm) ?? 'SYMMETRIC_DEFAULT';
    const dstContext = req.DestinationEncryptionContext as Context | undefined;
    const { key: dst, alias: dstAlias } = this.resolve(String(req.DestinationKeyId), { alias: true });
    const src = this.decryptWith(
      caller,
      'kms:ReEncryptFrom',
      req.CiphertextBlob as Blob,
      str(req.SourceKeyId),
      req.SourceEncryptionContext as Context | undefined,
      srcAlg,
      'ReEncrypt',
    );
    try {
      this.authorize(
        caller,
        'kms:ReEncryptTo',
        dst,
        {
          encryptionAlgorithm: dstAlg,
          encryptionContext: dstContext ?? {},
          conditionKeys: { 'kms:ReEncryptOnSameKey': src.key.keyId === dst.keyId },
        },
        dstAlias,
      );
      const out = this.encryptWith(dst, src.plaintext, dstContext, dstAlg, 'ReEncrypt');
      this.dryRun(req);
      const res: KmsResponse = {
        CiphertextBlob: out.blob,
        SourceKeyId: src.key.arn,
        KeyId: dst.arn,
        SourceEncryptionAlgorithm: srcAlg,
        DestinationEncryptionAlgorithm: dstAlg,
      };
      if (src.materialId) res.SourceKeyMaterialId = src.materialId;
      if (out.materialId) res.DestinationKeyMaterialId = out.materialId;
      return res;
    } finally {
      src.plaintext.fill(0);
    }
  }

  private dataKeyLength(req: Req): number {
    const c = new Checks();
    checkKeyId(c, req.KeyId);
    c.range('numberOfBytes', num(req.NumberOfBytes), 1, 1024);
    c.oneOf('keySpec', str(req.KeySpec), ['AES_256', 'AES_128']);
    checkGrantTokens(c, req.GrantTokens);
    c.done();
    if (req.NumberOfBytes !== undefined && req.KeySpec !== undefined) {
      throw validationError('Please specify either number of bytes or key spec, not both.');
    }
    if (req.NumberOfBytes === undefined && req.KeySpec === undefined) {
      throw validationError('Please specify either number of bytes or key spec.');
    }
    return num(req.NumberOfBytes) ?? (req.KeySpec === 'AES_128' ? 16 : 32);
  }

  private async dataKey(req: Req, caller: Caller, action: string, operation: string, withPlaintext: boolean): Promise<KmsResponse> {
    const length = this.dataKeyLength(req);
    const context = req.EncryptionContext as Context | undefined;
    const { key, alias } = this.resolve(String(req.KeyId), { alias: true });
    this.authorize(caller, action, key, { encryptionAlgorithm: 'SYMMETRIC_DEFAULT', encryptionContext: context ?? {} }, alias);
    this.requireEnabled(key);
    this.requireUsage(key, 'ENCRYPT_DECRYPT', operation);
    this.requireSymmetric(key, operation);
    this.dryRun(req);
    const plaintext = randomBytes(length);
    const m = this.currentMaterial(key);
    const out: KmsResponse = { CiphertextBlob: sealBlob(key.keyId, m.id, m.secret, plaintext, context) };
    if (withPlaintext) out.Plaintext = plaintext;
    else plaintext.fill(0);
    out.KeyId = key.arn;
    out.KeyMaterialId = m.id;
    return out;
  }

  async generateDataKey(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    return this.dataKey(req, caller, 'kms:GenerateDataKey', 'GenerateDataKey', true);
  }

  async generateDataKeyWithoutPlaintext(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    return this.dataKey(req, caller, 'kms:GenerateDataKeyWithoutPlaintext', 'GenerateDataKeyWithoutPlaintext', false);
  }

  private async dataKeyPair(req: Req, caller: Caller, action: string, operation: string, withPlaintext: boolean): Promise<KmsResponse> {
    const c = new Checks();
    checkKeyId(c, req.KeyId);
    c.required('keyPairSpec', req.KeyPairSpec);
    c.oneOf('keyPairSpec', str(req.KeyPairSpec), [...KEY_PAIR_SPECS, 'SM2']);
    checkGrantTokens(c, req.GrantTokens);
    c.done();
    const pairSpec = String(req.KeyPairSpec);
    if (pairSpec === 'SM2') throw err('UnsupportedOperationException', 'SM2 is only available in China Regions.');
    const context = req.EncryptionContext as Context | undefined;
    const { key, alias } = this.resolve(String(req.KeyId), { alias: true });
    this.authorize(
      caller,
      action,
      key,
      { encryptionAlgorithm: 'SYMMETRIC_DEFAULT', encryptionContext: context ?? {}, conditionKeys: { 'kms:DataKeyPairSpec': pairSpec } },
      alias,
    );
    this.requireEnabled(key);
    this.requireUsage(key, 'ENCRYPT_DECRYPT', operation);
    this.requireSymmetric(key, operation);
    this.dryRun(req);
    const pair = await generateKeyPairFor(pairSpec);
    const m = this.currentMaterial(key);
    const out: KmsResponse = { PrivateKeyCiphertextBlob: sealBlob(key.keyId, m.id, m.secret, pair.privateKey, context) };
    if (withPlaintext) out.PrivateKeyPlaintext = pair.privateKey;
    else pair.privateKey.fill(0);
    out.PublicKey = pair.publicKey;
    out.KeyId = key.arn;
    out.KeyPairSpec = pairSpec;
    out.KeyMaterialId = m.id;
    return out;
  }

  async generateDataKeyPair(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    return this.dataKeyPair(req, caller, 'kms:GenerateDataKeyPair', 'GenerateDataKeyPair', true);
  }

  async generateDataKeyPairWithoutPlaintext(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    return this.dataKeyPair(req, caller, 'kms:GenerateDataKeyPairWithoutPlaintext', 'GenerateDataKeyPairWithoutPlaintext', false);
  }

  async generateRandom(req: Req): Promise<KmsResponse> {
    const c = new Checks();
    c.required('numberOfBytes', req.NumberOfBytes);
    c.range('numberOfBytes', num(req.NumberOfBytes), 1, 1024);
    c.done();
    if (req.CustomKeyStoreId !== undefined) {
      throw err('CustomKeyStoreNotFoundException', `Custom key store ${String(req.CustomKeyStoreId)} does not exist.`);
    }
    return { Plaintext: randomBytes(num(req.NumberOfBytes)!) };
  }

  private signChecks(req: Req, c: Checks): void {
    checkKeyId(c, req.KeyId);
    c.required('message', req.Message);
    c.length('message', req.Message, 1, 4096);
    c.oneOf('messageType', str(req.MessageType), ['RAW', 'DIGEST', 'EXTERNAL_MU']);
    c.required('signingAlgorithm', req.SigningAlgorithm);
    c.oneOf('signingAlgorithm', str(req.SigningAlgorithm), SIGNING_ALGORITHMS);
    checkGrantTokens(c, req.GrantTokens);
  }

  private signingKey(req: Req, caller: Caller, action: string, operation: string): { key: KeyRecord; algorithm: string; messageType: 'RAW' | 'DIGEST' } {
    const algorithm = String(req.SigningAlgorithm);
    const messageType = (str(req.MessageType) ?? 'RAW') as 'RAW' | 'DIGEST' | 'EXTERNAL_MU';
    const { key, alias } = this.resolve(String(req.KeyId), { alias: true });
    this.authorize(caller, action, key, { conditionKeys: { 'kms:SigningAlgorithm': algorithm, 'kms:MessageType': messageType } }, alias);
    this.requireEnabled(key);
    this.requireUsage(key, 'SIGN_VERIFY', operation);
    if (!signingAlgorithmsFor(key.keySpec).includes(algorithm)) {
      throw err('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${key.keySpec}.`);
    }
    if (messageType === 'EXTERNAL_MU') {
      throw err('InvalidKeyUsageException', `MessageType EXTERNAL_MU is only valid for ML-DSA keys, not ${key.keySpec}.`);
    }
    if (messageType === 'DIGEST' && (req.Message as Blob).length !== hashOf(algorithm).bytes) {
      throw validationError(`Digest is invalid length for algorithm ${algorithm}.`);
    }
    return { key, algorithm, messageType };
  }

  async sign(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    this.signChecks(req, c);
    c.done();
    const { key, algorithm, messageType } = this.signingKey(req, caller, 'kms:Sign', 'Sign');
    this.dryRun(req);
    const signature = signMessage(key.materials[0]!.secret, algorithm, messageType, req.Message as Blob);
    return { KeyId: key.arn, Signature: signature, SigningAlgorithm: algorithm };
  }

  async verify(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    this.signChecks(req, c);
    c.required('signature', req.Signature);
    c.length('signature', req.Signature, 1, 6144);
    c.done();
    const { key, algorithm, messageType } = this.signingKey(req, caller, 'kms:Verify', 'Verify');
    this.dryRun(req);
    const ok = verifyMessage(key.materials[0]!.secret, key.publicKey!, algorithm, messageType, req.Message as Blob, req.Signature as Blob);
    if (!ok) throw err('KMSInvalidSignatureException', 'The signature verification failed.');
    return { KeyId: key.arn, SignatureValid: true, SigningAlgorithm: algorithm };
  }

  async getPublicKey(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    checkKeyId(c, req.KeyId);
    checkGrantTokens(c, req.GrantTokens);
    c.done();
    const { key, alias } = this.resolve(String(req.KeyId), { alias: true });
    this.authorize(caller, 'kms:GetPublicKey', key, {}, alias);
    this.requireEnabled(key);
    if (!key.publicKey) {
      throw err('UnsupportedOperationException', `${key.arn} key spec is ${key.keySpec}, which has no public key.`);
    }
    const out: KmsResponse = {
      KeyId: key.arn,
      PublicKey: key.publicKey,
      CustomerMasterKeySpec: key.keySpec,
      KeySpec: key.keySpec,
      KeyUsage: key.keyUsage,
    };
    // Each list only for its own usage (API Reference, GetPublicKey response).
    if (key.keyUsage === 'ENCRYPT_DECRYPT') out.EncryptionAlgorithms = encryptionAlgorithmsFor(key.keySpec);
    if (key.keyUsage === 'SIGN_VERIFY') out.SigningAlgorithms = signingAlgorithmsFor(key.keySpec);
    if (key.keyUsage === 'KEY_AGREEMENT') out.KeyAgreementAlgorithms = keyAgreementAlgorithmsFor(key.keyUsage);
    return out;
  }

  /**
   * DeriveSharedSecret (API Reference, DeriveSharedSecret; Developer Guide, "Key type reference",
   * "Key states of AWS KMS keys"): ECDH between the private key of a KEY_AGREEMENT key and the
   * peer's public key; the answer carries the raw shared secret (ecdh.ts).
   * - Permission kms:DeriveSharedSecret (key policy or a grant), with the condition key
   *   kms:KeyAgreementAlgorithm (Developer Guide, "AWS KMS condition keys").
   * - A key of another usage is InvalidKeyUsageException, like Sign on an encryption key.
   * - Disabled: DisabledException; pending deletion or pending import: KMSInvalidStateException.
   * - A peer key that is not a DER SPKI, not EC, or not on the KMS key's curve: ValidationException,
   *   the exception the API Reference names for a public key that is not a DER SPKI (PublicKey:
   *   a twice-base64-encoded key from AWS CLI v1 is a ValidationException). InvalidKeyUsageException
   *   is about the KMS key, not the peer's.
   * - Recipient (Nitro Enclaves attestation): UnsupportedOperationException, as for Decrypt here.
   * Checks come in the order of the class comment; DryRun answers after every check passed.
   */
  async deriveSharedSecret(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const c = new Checks();
    checkKeyId(c, req.KeyId);
    c.required('keyAgreementAlgorithm', req.KeyAgreementAlgorithm);
    c.oneOf('keyAgreementAlgorithm', str(req.KeyAgreementAlgorithm), KEY_AGREEMENT_ALGORITHMS);
    c.required('publicKey', req.PublicKey);
    // PublicKeyType: 1-8192 bytes (API Reference, the same type as GetPublicKey's PublicKey).
    c.length('publicKey', req.PublicKey, 1, 8192);
    checkGrantTokens(c, req.GrantTokens);
    c.done();
    if (req.Recipient !== undefined) throw err('UnsupportedOperationException', 'Recipient (Nitro Enclaves attestation) is not supported by the local KMS.');
    const algorithm = String(req.KeyAgreementAlgorithm);
    const { key, alias } = this.resolve(String(req.KeyId), { alias: true });
    this.authorize(caller, 'kms:DeriveSharedSecret', key, { conditionKeys: { 'kms:KeyAgreementAlgorithm': algorithm } }, alias);
    this.requireEnabled(key);
    this.requireUsage(key, 'KEY_AGREEMENT', 'DeriveSharedSecret');
    if (!keyAgreementAlgorithmsFor(key.keyUsage).includes(algorithm)) {
      throw err('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${key.keySpec}.`);
    }
    const curve = KEY_SPECS[key.keySpec].curve!;
    const result = ecdhSharedSecret(this.currentMaterial(key).secret, curve, req.PublicKey as Blob);
    if (!result.ok) {
      if (result.problem === 'curve') {
        throw validationError(
          `The public key is on ${result.curve ? keySpecOfCurve(result.curve) : 'another curve'}; ${key.arn} is a ${key.keySpec} key and derives shared secrets only with public keys on the same curve.`,
        );
      }
      throw validationError('PublicKey must be a DER-encoded X.509 SubjectPublicKeyInfo (RFC 5280) holding a valid elliptic curve point.');
    }
    if (req.DryRun === true) {
      result.sharedSecret.fill(0);
      this.dryRun(req);
    }
    return { KeyId: key.arn, SharedSecret: result.sharedSecret, KeyAgreementAlgorithm: algorithm, KeyOrigin: key.origin };
  }

  private macKey(req: Req, caller: Caller, action: string, operation: string): { key: KeyRecord; algorithm: string } {
    const c = new Checks();
    checkKeyId(c, req.KeyId);
    c.required('message', req.Message);
    c.length('message', req.Message, 1, 4096);
    c.required('macAlgorithm', req.MacAlgorithm);
    c.oneOf('macAlgorithm', str(req.MacAlgorithm), MAC_ALGORITHMS);
    if (operation === 'VerifyMac') {
      c.required('mac', req.Mac);
      c.length('mac', req.Mac, 1, 6144);
    }
    checkGrantTokens(c, req.GrantTokens);
    c.done();
    const algorithm = String(req.MacAlgorithm);
    const { key, alias } = this.resolve(String(req.KeyId), { alias: true });
    this.authorize(caller, action, key, { conditionKeys: { 'kms:MacAlgorithm': algorithm } }, alias);
    this.requireEnabled(key);
    this.requireUsage(key, 'GENERATE_VERIFY_MAC', operation);
    if (!macAlgorithmsFor(key.keySpec).includes(algorithm)) {
      throw err('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${key.keySpec}.`);
    }
    this.dryRun(req);
    return { key, algorithm };
  }

  private computeMac(key: KeyRecord, message: Blob): Buffer {
    return createHmac(KEY_SPECS[key.keySpec].hmacHash!, key.materials[0]!.secret).update(message).digest();
  }

  async generateMac(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const { key, algorithm } = this.macKey(req, caller, 'kms:GenerateMac', 'GenerateMac');
    return { Mac: this.computeMac(key, req.Message as Blob), MacAlgorithm: algorithm, KeyId: key.arn };
  }

  async verifyMac(req: Req, caller: Caller = this.rootCaller): Promise<KmsResponse> {
    const { key, algorithm } = this.macKey(req, caller, 'kms:VerifyMac', 'VerifyMac');
    const expected = this.computeMac(key, req.Message as Blob);
    const got = Buffer.from(req.Mac as Blob);
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
      throw err('KMSInvalidMacException', 'The HMAC verification failed.');
    }
    return { KeyId: key.arn, MacValid: true, MacAlgorithm: algorithm };
  }
}

// ---------------------------------------------------------------------------------------------
// Dispatch table: AWS operation name → method.

type Handler = (this: LocalKmsService, input: Req, caller: Caller) => Promise<KmsResponse>;
const p = LocalKmsService.prototype;
const OPERATIONS: Record<string, Handler> = {
  CreateKey: p.createKey,
  DescribeKey: p.describeKey,
  ListKeys: p.listKeys,
  UpdateKeyDescription: p.updateKeyDescription,
  EnableKey: p.enableKey,
  DisableKey: p.disableKey,
  ScheduleKeyDeletion: p.scheduleKeyDeletion,
  CancelKeyDeletion: p.cancelKeyDeletion,
  CreateAlias: p.createAlias,
  UpdateAlias: p.updateAlias,
  DeleteAlias: p.deleteAlias,
  ListAliases: p.listAliases,
  TagResource: p.tagResource,
  UntagResource: p.untagResource,
  ListResourceTags: p.listResourceTags,
  GetKeyPolicy: p.getKeyPolicy,
  PutKeyPolicy: p.putKeyPolicy,
  ListKeyPolicies: p.listKeyPolicies,
  GetParametersForImport: p.getParametersForImport,
  ImportKeyMaterial: p.importKeyMaterial,
  DeleteImportedKeyMaterial: p.deleteImportedKeyMaterial,
  EnableKeyRotation: p.enableKeyRotation,
  DisableKeyRotation: p.disableKeyRotation,
  GetKeyRotationStatus: p.getKeyRotationStatus,
  RotateKeyOnDemand: p.rotateKeyOnDemand,
  ListKeyRotations: p.listKeyRotations,
  Encrypt: p.encrypt,
  Decrypt: p.decrypt,
  ReEncrypt: p.reEncrypt,
  GenerateDataKey: p.generateDataKey,
  GenerateDataKeyWithoutPlaintext: p.generateDataKeyWithoutPlaintext,
  GenerateDataKeyPair: p.generateDataKeyPair,
  GenerateDataKeyPairWithoutPlaintext: p.generateDataKeyPairWithoutPlaintext,
  GenerateRandom: p.generateRandom,
  Sign: p.sign,
  Verify: p.verify,
  GetPublicKey: p.getPublicKey,
  GenerateMac: p.generateMac,
  VerifyMac: p.verifyMac,
  DeriveSharedSecret: p.deriveSharedSecret,
  CreateGrant: p.createGrant,
  ListGrants: p.listGrants,
  ListRetirableGrants: p.listRetirableGrants,
  RetireGrant: p.retireGrant,
  RevokeGrant: p.revokeGrant,
};

export const SUPPORTED_OPERATIONS: readonly string[] = Object.keys(OPERATIONS);

// ---------------------------------------------------------------------------------------------
// Helpers

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' ? v : undefined;
}

/** Timestamp members: Date, epoch milliseconds (in-process) are accepted. */
function time(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'number') return v;
  throw validationError('Timestamps must be a Date or epoch milliseconds.');
}

function requireKeyId(v: unknown): string {
  const c = new Checks();
  checkKeyId(c, v);
  c.done();
  return String(v);
}

/** The `KeyId` member every key operation takes: required, 1-2048 characters (API reference). */
function checkKeyId(c: Checks, v: unknown): void {
  c.required('keyId', v);
  c.length('keyId', str(v), 1, 2048);
}

function checkMarker(c: Checks, marker: unknown): void {
  c.length('marker', str(marker), 1, 1024);
  c.pattern('marker', str(marker), /^[\u0020-\u00FF]*$/, '[\\u0020-\\u00FF]*');
}

function checkGrantTokens(c: Checks, tokens: unknown): void {
  c.length('grantTokens', tokens as string[] | undefined, 0, 10);
}

function checkTagShapes(c: Checks, tags: Tag[] | undefined, member: string): void {
  if (!tags) return;
  tags.forEach((t, i) => {
    const m = `${member}.${i + 1}.member`;
    c.required(`${m}.tagKey`, t?.TagKey);
    c.length(`${m}.tagKey`, t?.TagKey, 1, 128);
    c.required(`${m}.tagValue`, t?.TagValue);
    c.length(`${m}.tagValue`, t?.TagValue, 0, 256);
  });
}

/**
 * Tag rules (Developer Guide, "Tags in AWS KMS"; AWS General Reference, tag restrictions):
 * - keys beginning with `aws:` (any case) are reserved for AWS: TagException;
 * - a tag key appears once per request: TagException;
 * - at most 50 user tags per key, counting the tags it already has: LimitExceededException.
 *   TagException means "a tag is not valid"; a count over the quota is not an invalid tag, and the
 *   API Reference lists LimitExceededException ("a length constraint or quota was exceeded") for
 *   TagResource and CreateKey. Invalid tags are reported before the count.
 */
function checkTagRules(tags: Tag[], existing: Tag[]): void {
  const seen = new Set<string>();
  for (const t of tags) {
    if (isReservedTagKey(t.TagKey)) {
      throw err('TagException', `Tag keys beginning with "aws:" are reserved for AWS use: ${t.TagKey}`);
    }
    if (seen.has(t.TagKey)) throw err('TagException', `Duplicate tag key in the request: ${t.TagKey}`);
    seen.add(t.TagKey);
  }
  const total = new Set([...existing.map((t) => t.TagKey), ...seen]).size;
  if (total > MAX_TAGS) {
    throw err('LimitExceededException', `A KMS key can have at most ${MAX_TAGS} tags; this request would give it ${total}.`);
  }
}

function isReservedTagKey(key: string): boolean {
  return key.toLowerCase().startsWith('aws:');
}

function withPage(out: KmsResponse, page: { truncated: boolean; nextMarker?: string }): KmsResponse {
  out.Truncated = page.truncated;
  if (page.nextMarker !== undefined) out.NextMarker = page.nextMarker;
  return out;
}

function withMaterial(out: KmsResponse, materialId: string | undefined): KmsResponse {
  if (materialId !== undefined) out.KeyMaterialId = materialId;
  return out;
}

function newMaterialId(): string {
  return randomBytes(32).toString('hex');
}

function newSymmetricMaterial(createdAt: number): MaterialRecord {
  return { id: newMaterialId(), createdAt, secret: randomBytes(32) };
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

function invalidCiphertext(): KmsServiceError {
  // One message for every cause (wrong key material, wrong context, damaged bytes), as AWS does.
  return err('InvalidCiphertextException', 'The ciphertext is invalid, or the encryption context does not match.');
}


