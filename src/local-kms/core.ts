import { KmsServiceError } from './errors.js';
import type { AuthzRequest, Caller, ConditionValue } from './policy-types.js';
import { buildAuthzRequest, buildIamOnlyRequest, tokenIssueTimeRange, withTokenIssueTime, type KeyResource, type Requester } from './request-context.js';
import { authorizeIdentityOnly, authorizeKeyOperation, keyOperationExplicitDeny } from './iam.js';
import { accessDenied, authorizeKeyPolicy, evaluateIdentityPolicies, evaluateKeyPolicy } from './policy.js';
import { CROSS_ACCOUNT_ACTIONS, isAccountRoot } from './cross-account.js';
import { encapsulationAlgorithmsFor, encryptionAlgorithmsFor, keyAgreementAlgorithmsFor, macAlgorithmsFor, signingAlgorithmsFor, type KeyUsage } from './specs.js';
import { Checks } from './validate.js';
import { MarkerCodec } from './paging.js';
import { FileStore, MemoryStore, type KmsStore } from './store.js';
import { DEFAULT_MAX_GRANTS_PER_KEY, GrantTokenCodec, findAllowingGrant, invalidGrantToken, mayRetire, retireDelegatingAccounts, type GrantRecord } from './grants.js';
import type { AliasRecord, KeyRecord, MaterialRecord } from './model.js';
import { DAY_MS, err, newSymmetricMaterial, type KmsResponse, type Req } from './ops/util.js';
import { checkRegionName, partitionOfRegion, type RegionSet } from './regions.js';
import { flushUsage, startUsageTracking, usageFields } from './ops/usage.js';
import { isReplica, multiRegionConfiguration, replicaGone, syncReplicas } from './multi-region.js';
import { destroyTokenKey, keyStoreMetadata, keyUnavailable, type HsmConfig } from './custom-key-stores.js';

/** Key states (API Reference, KeyMetadata `KeyState`); Updating is never shown (see multi-region.ts). */
export type KeyState = 'Enabled' | 'Disabled' | 'PendingDeletion' | 'PendingImport' | 'PendingReplicaDeletion' | 'Creating' | 'Unavailable';

/**
 * The state and shared rules of the local KMS: keys and aliases with their store, the clock and the
 * background tasks it drives, key lookup, authorization, key-state checks and key metadata. The
 * operations themselves live in ops/ (one module per operation family of the KMS API Reference)
 * and reach this state through a `KmsCore`; service.ts dispatches to them.
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
  /**
   * The default Region: the one requests that name none address (unsigned requests, in-process
   * clients without `region`); default us-east-1. Every Region of its partition is served (see
   * regions.ts); a data directory's own keys stay in the Region it was first started with.
   */
  region?: string;
  /**
   * How long a replica made by ReplicateKey stays in the `Creating` key state, in milliseconds of
   * the service clock; default 0 (usable at once). AWS takes "a few seconds"; a value such as 3000
   * lets a client's retry on KMSInvalidStateException be tested. 0..600,000.
   */
  replicaCreationMs?: number;
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
  /**
   * The "CloudHSM clusters" CreateCustomKeyStore can name: cluster id (`cluster-` + 11-16
   * letters/digits) → a PKCS#11 token { module: library path, tokenLabel, trustAnchor?: PEM }.
   * Keys of those key stores live in the token (custom-key-stores.ts); the optional peer
   * dependency `pkcs11js` is loaded the first time one is used. Default: none.
   */
  hsms?: Record<string, HsmConfig>;
  /**
   * How long the local KMS waits for an external key store proxy's complete answer, in
   * milliseconds (connection, TLS, request and response). Default 250, AWS's fixed proxy timeout
   * (XKS Proxy API Specification); 1..60,000. A timeout fails the operation (XKS_PROXY_TIMED_OUT,
   * XksProxyUriUnreachableException, KMSInvalidStateException, by operation).
   */
  xksProxyTimeoutMs?: number;
  /**
   * PEM CA certificate(s) trusted, in addition to Node's default CAs, when an external key store
   * proxy is reached over HTTPS, e.g. the CA of a proxy's self-signed certificate. Verification is
   * never turned off: a proxy whose certificate chains to neither fails with
   * XKS_PROXY_INVALID_TLS_CONFIGURATION. Default: Node's CAs only.
   */
  xksProxyCa?: string | string[];
}

export type BackgroundTask = 'deletion' | 'imported material expiry' | 'import parameters expiry' | 'automatic rotation';

/** Key ids: a UUID, or `mrk-` + 32 hex digits for multi-Region keys (Developer Guide, "Key identifiers"). */
const KEY_ID = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/;

/** How long a key whose background task failed is left alone before the task is tried again. */
const BACKGROUND_RETRY_MS = 60_000;

function warnBackgroundError(error: unknown, where: { keyId: string; task: BackgroundTask }): void {
  // The error's name and message only: store errors carry paths and sizes, never key material.
  const e = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  process.emitWarning(`local KMS: ${where.task} of key ${where.keyId} failed (${e}); retrying in ${BACKGROUND_RETRY_MS / 1000} s`, 'LocalKmsWarning');
}

/** What an operation adds to its authorization request (request-context.ts checks the names). */
export interface OperationKeys {
  /** The request's encryption context (kms:EncryptionContext:<key>, kms:EncryptionContextKeys). */
  encryptionContext?: Record<string, string>;
  /** Request-parameter condition keys by their documented names, e.g. `kms:EncryptionAlgorithm`. */
  keys?: Record<string, ConditionValue>;
}

/** Internal: the members operations use are public here, but KmsCore is not exported by index.ts. */
export class KmsCore {
  readonly accountId: string;
  readonly region: string;
  readonly partition: string;
  readonly clock: () => number;
  readonly store: KmsStore;
  keys = new Map<string, KeyRecord>();
  aliases = new Map<string, AliasRecord>();
  /** Authenticates list markers (NextMarker/Marker), see paging.ts. */
  readonly markers: MarkerCodec;
  /** Issues and checks grant tokens (grants.ts). */
  readonly grantTokens: GrantTokenCodec;
  readonly maxGrantsPerKey: number;
  /** Earliest time something becomes due; -Infinity forces a scan on the next request. */
  nextEventAt = -Infinity;
  closed = false;
  readonly onBackgroundError: NonNullable<LocalKmsServiceOptions['onBackgroundError']>;
  /** Keys whose background task failed, and when to try again. */
  readonly backgroundRetryAt = new Map<string, number>();
  /** Every Region this KMS serves, this one included (regions.ts); set by LocalKmsService. */
  regions!: RegionSet;
  readonly replicaCreationMs: number;
  /** Requests addressed to this Region, by operation (LocalKmsService.callCounts). */
  readonly calls = new Map<string, number>();
  /** Requests being answered by this core now (an empty Region's core is dropped when none is). */
  inflight = 0;

  /**
   * `sibling`: the core of another Region of the same KMS, sharing the home core's account, clock,
   * root key and settings, with its own store (`regions/<region>/` of a data directory).
   */
  constructor(options: LocalKmsServiceOptions = {}, sibling?: { home: KmsCore; region: string }) {
    const accountId = options.accountId ?? '111122223333';
    if (!/^\d{12}$/.test(accountId)) throw new RangeError(`accountId must be 12 decimal digits, got '${accountId}'`);
    const optionRegion = checkRegionName(options.region ?? 'us-east-1');
    if (options.clock !== undefined && typeof options.clock !== 'function') {
      throw new TypeError('clock must be a function returning milliseconds since the epoch');
    }
    const creation = options.replicaCreationMs ?? 0;
    if (!Number.isInteger(creation) || creation < 0 || creation > 600_000) {
      throw new RangeError(`replicaCreationMs must be an integer number of milliseconds in 0..600000, got ${String(creation)}`);
    }
    this.replicaCreationMs = creation;
    this.accountId = accountId;
    this.clock = options.clock ?? Date.now;
    if (sibling) {
      this.store = sibling.home.store.forRegion!(sibling.region);
    } else {
      this.store = options.store ?? (options.dataDir ? new FileStore(options.dataDir, options.rootKeyFile) : new MemoryStore());
    }
    // A data directory's own keys belong to the Region it was first started with, whatever the
    // default Region is now (so their ARNs stay true).
    let region: string;
    try {
      region = checkRegionName(sibling?.region ?? this.store.homeRegion?.(optionRegion) ?? optionRegion);
    } catch (e) {
      this.store.close();
      throw e;
    }
    this.region = region;
    this.partition = partitionOfRegion(region)!;
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
    this.onBackgroundError = sibling?.home.onBackgroundError ?? options.onBackgroundError ?? warnBackgroundError;
    startUsageTracking(this);
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
    if (!this.closed) {
      try {
        flushUsage(this);
      } catch {
        // A store that cannot write loses the newest last-usage records only; close goes on.
      }
    }
    this.closed = true;
    this.store.close();
  }

  // ---------------------------------------------------------------------------------------
  // Time

  /** Applies everything that became due: deletions, material expiry, rotations, stale import parameters. */
  tick(): void {
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
          // The primary's waiting period starts when the replica was deleted, its deletion date.
          if (key.multiRegion) replicaGone(this, key, key.deletionDate);
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
        if (k.rotation.enabled && this.stateOf(k) === 'Enabled' && !isReplica(this, k)) {
          const before = k;
          k = this.rotateDue(k, now);
          if (k !== before && k.multiRegion) syncReplicas(this, k);
        }
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

  eventTimes(k: KeyRecord): number[] {
    const t: number[] = [];
    if (k.deletionDate !== undefined) t.push(k.deletionDate);
    if (k.imported?.validTo !== undefined && k.materials.length > 0) t.push(k.imported.validTo);
    if (k.pendingImport) t.push(k.pendingImport.expiresAt);
    // Disabled or pending keys do not rotate; EnableKey/CancelKeyDeletion commit, which rescans.
    const due = this.stateOf(k) === 'Enabled' && !isReplica(this, k) ? this.nextRotation(k) : undefined;
    if (due !== undefined) t.push(due);
    return t;
  }

  nextRotation(k: KeyRecord): number | undefined {
    if (!k.rotation.enabled || k.rotation.baseDate === undefined || !k.rotation.periodDays) return undefined;
    return k.rotation.baseDate + k.rotation.periodDays * DAY_MS;
  }

  /** Automatic rotation: one new material per elapsed period, dated when it was due. */
  rotateDue(key: KeyRecord, now: number): KeyRecord {
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

  /**
   * Persists `key` with `changes` applied, then makes it current. Durable before it is visible.
   * Every write also carries the key's last usage, which ops/usage.ts keeps in memory.
   */
  commit(key: KeyRecord, changes: Partial<KeyRecord>): KeyRecord {
    const next: KeyRecord = { ...key, ...usageFields(this, key), ...changes };
    this.store.putKey(next);
    this.keys.set(next.keyId, next);
    this.nextEventAt = -Infinity;
    return next;
  }

  commitAliases(aliases: Map<string, AliasRecord>): void {
    this.store.putAliases([...aliases.values()]);
    this.aliases = aliases;
  }

  destroyKey(key: KeyRecord): void {
    const remaining = new Map([...this.aliases].filter(([, a]) => a.targetKeyId !== key.keyId));
    // Aliases first: a crash in between leaves a key without aliases, never an alias without its key
    // (and a dangling alias would be dropped at start-up anyway).
    if (remaining.size !== this.aliases.size) this.commitAliases(remaining);
    destroyTokenKey(this, key);
    this.store.deleteKey(key.keyId);
    this.keys.delete(key.keyId);
    for (const m of key.materials) m.secret.fill(0);
  }

  keyArn(keyId: string, account = this.accountId): string {
    return `arn:${this.partition}:kms:${this.region}:${account}:key/${keyId}`;
  }

  aliasArn(name: string, account = this.accountId): string {
    return `arn:${this.partition}:kms:${this.region}:${account}:${name}`;
  }

  stateOf(key: KeyRecord): KeyState {
    if (key.deletionDate !== undefined) return 'PendingDeletion';
    if (key.pendingReplicaDeletion === true) return 'PendingReplicaDeletion';
    if (key.creatingUntil !== undefined && this.clock() < key.creatingUntil) return 'Creating';
    if (key.origin === 'EXTERNAL' && key.materials.length === 0) return 'PendingImport';
    // A key whose custom key store is not connected (API Reference, KeyMetadata KeyState).
    if (keyUnavailable(this, key)) return 'Unavailable';
    return key.enabled ? 'Enabled' : 'Disabled';
  }

  /**
   * Resolves a KeyId parameter: key id, key ARN, and (where the operation accepts them) alias
   * name or alias ARN. ARNs of another account or region name keys that do not exist here.
   *
   * For a caller of another account a bare key id or alias name names a key or alias of ITS
   * account (API Reference, `KeyId`: "To specify a KMS key in a different AWS account, you must
   * use the key ARN or alias ARN"), which this KMS does not hold: NotFoundException, naming the
   * ARN in the caller's account as AWS resolves it. `shortKeyId`: Decrypt and the ReEncrypt source
   * of symmetric ciphertext, where the API Reference also accepts a short key id across accounts
   * (the ciphertext names the key; the id only has to agree with it).
   */
  resolve(input: string, opts: { alias: boolean; shortKeyId?: boolean }, who: Requester): { key: KeyRecord; alias?: string } {
    const arnPrefix = `arn:${this.partition}:kms:${this.region}:${this.accountId}:`;
    const callerAccount = who.caller.account;
    const foreign = callerAccount !== this.accountId;
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
      if (foreign && opts.alias) throw err('NotFoundException', `Alias ${this.aliasArn(aliasName, callerAccount)} is not found.`);
    } else if (foreign && KEY_ID.test(id) && opts.shortKeyId !== true) {
      throw err('NotFoundException', `Key '${this.keyArn(id, callerAccount)}' does not exist`);
    }
    if (aliasName !== undefined) {
      if (!opts.alias) throw err('NotFoundException', `Invalid keyId ${input}`);
      const alias = this.aliases.get(aliasName);
      if (!alias) throw err('NotFoundException', `Alias ${this.aliasArn(aliasName)} is not found.`);
      const key = this.keys.get(alias.targetKeyId);
      if (!key) throw err('NotFoundException', `Alias ${this.aliasArn(aliasName)} is not found.`);
      return { key, alias: aliasName };
    }
    if (!KEY_ID.test(id)) throw err('NotFoundException', `Invalid keyId ${input}`);
    const key = this.keys.get(id);
    if (!key) throw err('NotFoundException', `Key '${this.keyArn(id)}' does not exist`);
    return { key };
  }

  /** Whether `who` is a principal of another account than the one this KMS serves (cross-account.ts). */
  isForeign(who: Requester): boolean {
    return who.caller.account !== this.accountId;
  }

  /**
   * Key policy check (policy.ts), then grants (grants.ts): an explicit Deny in the key policy wins;
   * otherwise an Allow in the key policy, or a live grant naming the caller, the operation and
   * (for constrained grants) an encryption context the request satisfies, lets the request on.
   * For a caller whose IAM is modelled (principals file `policies`) its identity policies take
   * part as AWS combines them (iam.ts): their Deny denies, and an account principal in the key
   * policy delegates to them. `viaGrant` replaces the grant check (CreateGrant has its own rules).
   *
   * A caller of another account (cross-account.ts): only the cross-account permissions are
   * effective, and the key policy alone allows only that account's root user when the caller's IAM
   * is not modelled (its IAM would have to allow too, and the local KMS cannot see it).
   */
  authorize(who: Requester, action: string, key: KeyRecord, op: OperationKeys = {}, requestAlias?: string, viaGrant?: () => boolean): void {
    const { caller } = who;
    const foreign = this.isForeign(who);
    if (foreign && !CROSS_ACCOUNT_ACTIONS.has(action)) {
      // "If you give a user in a different account permission for other operations, those
      // permissions have no effect" (Developer Guide, "Allowing users in other accounts to use a KMS key").
      throw accessDenied(caller.arn, action, key.arn, 'resource-based', false);
    }
    // RetireGrant is decided by the grant (authorizeRetireGrant), never here.
    const grantAllows =
      viaGrant ?? (() => action !== 'kms:CreateGrant' && action.startsWith('kms:') && findAllowingGrant(key.grants, caller, action.slice(4), op.encryptionContext) !== undefined);
    const identityPolicies = caller.identityPolicies;
    this.overIssueTimes(who, (at, denyOnly) => {
      const request = at(this.authzRequest(who, action, key, op, requestAlias));
      if (identityPolicies !== undefined) {
        const a = {
          keyPolicy: key.policy,
          request,
          identityRequest: () => at(this.authzRequest(who, action, key, op, requestAlias, 'identity')),
          identityPolicies,
          keyAccount: this.accountId,
          viaGrant: grantAllows,
        };
        if (!denyOnly) return authorizeKeyOperation(a);
        const denied = keyOperationExplicitDeny(a);
        if (denied) throw denied;
        return;
      }
      const decision = evaluateKeyPolicy(key.policy, request);
      if (denyOnly) {
        if (decision.explicitDeny) throw accessDenied(caller.arn, action, key.arn, 'resource-based', true);
        return;
      }
      const keyPolicySuffices = !foreign || isAccountRoot(caller.arn);
      if (decision.allowed && keyPolicySuffices) return;
      if (!decision.explicitDeny && grantAllows()) return;
      // Allowed by the key policy, but a caller of another account also needs its own IAM.
      if (decision.allowed) throw accessDenied(caller.arn, action, key.arn, 'identity-based', false);
      // Throws AccessDeniedException naming the principal, the action and the key ARN, like AWS.
      authorizeKeyPolicy(key.policy, request);
    });
  }

  /**
   * RetireGrant (Developer Guide, "Retiring and revoking grants"): the grant decides who may retire
   * it (its retiring principal; its grantee when it includes RetireGrant; the account it was
   * created in, grants.ts mayRetire), and "Principals specified in the grant can retire a grant
   * without the kms:RetireGrant permission". kms:RetireGrant in IAM policies still counts:
   * - a Deny of kms:RetireGrant in the caller's identity policies denies ("To deny permission to
   *   retire a grant, you can use a Deny action with the kms:RetireGrant permission");
   * - an Allow delegates: the account the grant was created in, and the retiring principal's
   *   account when that is an account, can give kms:RetireGrant to their IAM identities.
   * The permission "is not effective in a key policy": a key-policy Allow gives nothing. Whether a
   * key-policy Deny applies the documentation does not say; the local KMS applies it (stricter).
   */
  authorizeRetireGrant(who: Requester, key: KeyRecord, grant: GrantRecord): void {
    const { caller } = who;
    const action = 'kms:RetireGrant';
    this.overIssueTimes(who, (at, denyOnly) => {
      if (evaluateKeyPolicy(key.policy, at(this.authzRequest(who, action, key))).explicitDeny) {
        throw accessDenied(caller.arn, action, key.arn, 'resource-based', true);
      }
      let identityAllows = false;
      if (caller.identityPolicies !== undefined) {
        const decision = evaluateIdentityPolicies(caller.identityPolicies, at(this.authzRequest(who, action, key, {}, undefined, 'identity')));
        if (decision.explicitDeny) throw accessDenied(caller.arn, action, key.arn, 'identity-based', true);
        identityAllows = decision.allowed;
      }
      if (denyOnly || mayRetire(grant, caller)) return;
      if (identityAllows && retireDelegatingAccounts(grant).includes(caller.account)) return;
      throw err('AccessDeniedException', `User: ${caller.arn} is not authorized to perform: ${action} on resource: ${key.arn} because the grant does not allow it to retire the grant`);
    });
  }

  /**
   * An authorization AWS makes with IAM policies alone (request-context.ts IAM_ONLY_ACTION_KEYS:
   * CreateKey, ListKeys, ListAliases, GenerateRandom, ListRetirableGrants, the alias side of the
   * alias operations). Callers whose IAM is not modelled pass, as they always did here. The
   * resources are the caller's own account's: a caller of another account lists, creates and
   * names aliases in its account (cross-account.ts), so its policies are matched against that.
   */
  authorizeIamOnly(who: Requester, name: string, opts: { keys?: Record<string, ConditionValue>; alias?: string; principal?: string } = {}): void {
    const identityPolicies = who.caller.identityPolicies;
    if (identityPolicies === undefined) return;
    const { request, shownResource } = buildIamOnlyRequest({
      who,
      name,
      now: this.clock(),
      serviceRegion: this.region,
      partition: this.partition,
      account: who.caller.account,
      ...opts,
    });
    this.overIssueTimes(who, (at, denyOnly) => {
      const r = at(request);
      if (!denyOnly) return authorizeIdentityOnly(r, identityPolicies, shownResource);
      if (evaluateIdentityPolicies(identityPolicies, r).explicitDeny) throw accessDenied(r.caller.arn, r.action, shownResource, 'identity-based', true);
    });
  }

  /**
   * Runs one authorization `check` as the caller's aws:TokenIssueTime requires. Known (or not a
   * temporary-credential caller): once, as built. Unknown (request-context.ts tokenIssueTimeRange,
   * [earliest, latest]): the request must pass whatever the real time was, so Deny statements are
   * probed with both times as the key's values (`denyOnly`: a statement matching either time, or a
   * window between them, denies), then the full check runs at each end and must pass at both. For
   * the ordering operators (DateLessThan, DateGreaterThan, their ...Equals forms, and windows made
   * of them) this is at least as strict as any one issue time in the range. Not covered: DateEquals
   * (or DateNotEquals) naming the very second a session was issued strictly inside the range, and
   * Allows split over statements that leave a gap between the ends.
   */
  overIssueTimes(who: Requester, check: (at: (request: AuthzRequest) => AuthzRequest, denyOnly: boolean) => void): void {
    const range = tokenIssueTimeRange(who.caller, this.clock());
    if (range === undefined) return check((r) => r, false);
    check((r) => withTokenIssueTime(r, [...range]), true);
    for (const t of range) check((r) => withTokenIssueTime(r, t), false);
  }

  /**
   * The authorization request of `action` on `key`, through the one request-context builder: as
   * the key policy reads it, or (`identity`) as the caller's identity policies read it, with the
   * key's tags and aliases.
   */
  authzRequest(
    who: Requester,
    action: string,
    key: Pick<KeyRecord, 'arn' | 'keySpec' | 'keyUsage' | 'origin'> & { keyId?: string; tags?: KeyRecord['tags']; multiRegion?: KeyRecord['multiRegion'] },
    op: OperationKeys = {},
    requestAlias?: string,
    policy: 'key' | 'identity' = 'key',
  ): AuthzRequest {
    let resource: KeyResource = key.multiRegion
      ? { ...key, multiRegionKeyType: key.multiRegion.primaryRegion === this.region ? 'PRIMARY' : 'REPLICA' }
      : key;
    if (policy === 'identity') {
      if (key.keyId === undefined) throw new Error('authzRequest: identity policies need a stored key (its tags and aliases)');
      const aliases = [...this.aliases.values()].filter((a) => a.targetKeyId === key.keyId).map((a) => a.name);
      resource = { ...resource, tags: key.tags ?? [], aliases };
    }
    return buildAuthzRequest(
      {
        who,
        action,
        key: resource,
        now: this.clock(),
        serviceRegion: this.region,
        ...(op.encryptionContext !== undefined ? { encryptionContext: op.encryptionContext } : {}),
        keys: { ...(op.keys ?? {}), ...(requestAlias !== undefined ? { 'kms:RequestAlias': requestAlias } : {}) },
      },
      policy,
    );
  }

  /** The key must be Enabled (cryptographic operations). */
  requireEnabled(key: KeyRecord): void {
    const state = this.stateOf(key);
    if (state === 'Enabled') return;
    if (state === 'Disabled') throw err('DisabledException', `${key.arn} is disabled.`);
    throw this.invalidState(key, state);
  }

  requireNotPendingDeletion(key: KeyRecord): void {
    if (key.deletionDate !== undefined) throw this.invalidState(key, 'PendingDeletion');
    if (key.pendingReplicaDeletion === true) throw this.invalidState(key, 'PendingReplicaDeletion');
  }

  invalidState(key: KeyRecord, state: string): KmsServiceError {
    const what = state.replace(/[A-Z]/g, (c, i: number) => (i === 0 ? c.toLowerCase() : ` ${c.toLowerCase()}`));
    return err('KMSInvalidStateException', `${key.arn} is ${what}.`);
  }

  requireUsage(key: KeyRecord, usage: KeyUsage, operation: string): void {
    if (key.keyUsage !== usage) {
      throw err('InvalidKeyUsageException', `${key.arn} key usage is ${key.keyUsage} which is not valid for ${operation}.`);
    }
  }

  requireSymmetric(key: KeyRecord, operation: string): void {
    if (key.keySpec !== 'SYMMETRIC_DEFAULT') {
      throw err('InvalidKeyUsageException', `${key.arn} key spec is ${key.keySpec} which is not valid for ${operation}.`);
    }
  }

  requireRotatable(key: KeyRecord): void {
    if (key.origin !== 'AWS_KMS') {
      throw err('UnsupportedOperationException', `${key.arn} origin is ${key.origin} which is not valid for this operation.`);
    }
    if (key.keySpec !== 'SYMMETRIC_DEFAULT') {
      throw err('UnsupportedOperationException', `${key.arn} key spec is ${key.keySpec} which is not valid for this operation.`);
    }
  }

  requireExternal(key: KeyRecord): void {
    if (key.origin !== 'EXTERNAL') {
      throw err('UnsupportedOperationException', `${key.arn} origin is ${key.origin} which is not valid for this operation.`);
    }
  }

  currentMaterial(key: KeyRecord): MaterialRecord {
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
    if (key.pendingReplicaDeletion === true) md.PendingDeletionWindowInDays = key.pendingWindowInDays;
    if (key.imported?.validTo !== undefined && key.materials.length > 0) md.ValidTo = new Date(key.imported.validTo);
    md.Origin = key.origin;
    if (key.origin === 'EXTERNAL' && key.imported?.expirationModel && key.materials.length > 0) {
      md.ExpirationModel = key.imported.expirationModel;
    }
    Object.assign(md, keyStoreMetadata(this, key));
    md.KeyManager = 'CUSTOMER';
    md.CustomerMasterKeySpec = key.keySpec;
    md.KeySpec = key.keySpec;
    if (key.keyUsage === 'ENCRYPT_DECRYPT') md.EncryptionAlgorithms = encryptionAlgorithmsFor(key.keySpec);
    if (key.keyUsage === 'SIGN_VERIFY') md.SigningAlgorithms = signingAlgorithmsFor(key.keySpec);
    if (key.keyUsage === 'GENERATE_VERIFY_MAC') md.MacAlgorithms = macAlgorithmsFor(key.keySpec);
    if (key.keyUsage === 'KEY_AGREEMENT') md.KeyAgreementAlgorithms = keyAgreementAlgorithmsFor(key.keyUsage);
    if (key.keyUsage === 'ENCAPSULATE_DECAPSULATE') md.EncapsulationAlgorithms = encapsulationAlgorithmsFor(key.keyUsage);
    md.MultiRegion = key.multiRegion !== undefined;
    if (key.multiRegion) md.MultiRegionConfiguration = multiRegionConfiguration(this, key);
    if (key.keySpec === 'SYMMETRIC_DEFAULT' && key.materials.length > 0) md.CurrentKeyMaterialId = this.currentMaterial(key).id;
    return md;
  }


  /**
   * Every request's GrantTokens must be tokens this KMS issued (InvalidGrantTokenException).
   * Authorization never needs them: the local model is strongly consistent, so a grant works as
   * soon as CreateGrant returns, and a token of a retired or revoked grant gives nothing.
   */
  checkGrantTokens(tokens: unknown): void {
    if (!Array.isArray(tokens)) return;
    const c = new Checks();
    c.length('grantTokens', tokens, 0, 10);
    tokens.forEach((t, i) => c.length(`grantTokens.${i + 1}.member`, t as string, 1, 8192));
    c.done();
    for (const t of tokens as string[]) if (!this.grantTokens.read(t)) throw invalidGrantToken();
  }

  dryRun(req: Req): void {
    if (req.DryRun === true) {
      throw err('DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.');
    }
  }

}
