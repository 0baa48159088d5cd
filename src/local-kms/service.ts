import { KmsServiceError } from './errors.js';
import type { Caller } from './policy-types.js';
import { IN_PROCESS_ORIGIN, type RequestOrigin, type Requester } from './request-context.js';
import { checkInputTypes } from './shapes.js';
import { KmsCore } from './core.js';
import { err, type KmsResponse, type Req } from './ops/util.js';
import * as keys from './ops/keys.js';
import * as aliasesTags from './ops/aliases-tags.js';
import * as policies from './ops/policies.js';
import * as grants from './ops/grants.js';
import * as imports from './ops/import.js';
import * as rotation from './ops/rotation.js';
import * as crypto from './ops/crypto.js';
import * as asymmetric from './ops/asymmetric.js';
import * as keyAgreement from './ops/key-agreement.js';
import * as multiRegion from './ops/multi-region.js';
import { RegionSet, checkRegionName } from './regions.js';
import { reconcileMultiRegionKeys } from './multi-region.js';
import type { LocalKmsServiceOptions } from './core.js';
import * as kem from './ops/kem.js';
import { getKeyLastUsage, recordUsage } from './ops/usage.js';
import * as keyStores from './ops/custom-key-stores.js';
import { closeKeyStores, configureKeyStores, keyStoresReady, parseHsmOption, parseXksOptions } from './custom-key-stores.js';

export type { LocalKmsServiceOptions, BackgroundTask } from './core.js';
export type { KmsResponse } from './ops/util.js';

/**
 * LocalKmsService: an in-process model of AWS KMS key management (customer managed keys in one
 * account, in every Region of its partition: regions.ts). Operations take and return the shapes of the AWS KMS API (PascalCase
 * members as in the JSON protocol; blobs as Uint8Array, timestamps as Date), so the HTTP server
 * is only a codec around `call()`.
 *
 * This file is only the dispatcher: the state and shared rules are in core.ts, each operation in
 * the module of its family under ops/, grouped as the KMS API Reference groups them.
 */

/** Operations AWS KMS has that this model does not: answered with UnsupportedOperationException. */
export const UNSUPPORTED_OPERATIONS: string[] = [];

type Handler = (kms: KmsCore, input: Req, who: Requester) => Promise<KmsResponse>;

/** AWS operation name → handler, by family. */
const OPERATIONS: Record<string, Handler> = {
  CreateKey: keys.createKey,
  DescribeKey: keys.describeKey,
  ListKeys: keys.listKeys,
  UpdateKeyDescription: keys.updateKeyDescription,
  EnableKey: keys.enableKey,
  DisableKey: keys.disableKey,
  ScheduleKeyDeletion: keys.scheduleKeyDeletion,
  CancelKeyDeletion: keys.cancelKeyDeletion,
  CreateAlias: aliasesTags.createAlias,
  UpdateAlias: aliasesTags.updateAlias,
  DeleteAlias: aliasesTags.deleteAlias,
  ListAliases: aliasesTags.listAliases,
  TagResource: aliasesTags.tagResource,
  UntagResource: aliasesTags.untagResource,
  ListResourceTags: aliasesTags.listResourceTags,
  GetKeyPolicy: policies.getKeyPolicy,
  PutKeyPolicy: policies.putKeyPolicy,
  ListKeyPolicies: policies.listKeyPolicies,
  GetParametersForImport: imports.getParametersForImport,
  ImportKeyMaterial: imports.importKeyMaterial,
  DeleteImportedKeyMaterial: imports.deleteImportedKeyMaterial,
  EnableKeyRotation: rotation.enableKeyRotation,
  DisableKeyRotation: rotation.disableKeyRotation,
  GetKeyRotationStatus: rotation.getKeyRotationStatus,
  RotateKeyOnDemand: rotation.rotateKeyOnDemand,
  ListKeyRotations: rotation.listKeyRotations,
  Encrypt: crypto.encrypt,
  Decrypt: crypto.decrypt,
  ReEncrypt: crypto.reEncrypt,
  GenerateDataKey: crypto.generateDataKey,
  GenerateDataKeyWithoutPlaintext: crypto.generateDataKeyWithoutPlaintext,
  GenerateDataKeyPair: crypto.generateDataKeyPair,
  GenerateDataKeyPairWithoutPlaintext: crypto.generateDataKeyPairWithoutPlaintext,
  GenerateRandom: crypto.generateRandom,
  Sign: asymmetric.sign,
  Verify: asymmetric.verify,
  GetPublicKey: asymmetric.getPublicKey,
  GenerateMac: asymmetric.generateMac,
  VerifyMac: asymmetric.verifyMac,
  DeriveSharedSecret: keyAgreement.deriveSharedSecret,
  Encapsulate: kem.encapsulate,
  Decapsulate: kem.decapsulate,
  GetKeyLastUsage: getKeyLastUsage,
  CreateGrant: grants.createGrant,
  ListGrants: grants.listGrants,
  ListRetirableGrants: grants.listRetirableGrants,
  RetireGrant: grants.retireGrant,
  RevokeGrant: grants.revokeGrant,
  ReplicateKey: multiRegion.replicateKey,
  UpdatePrimaryRegion: multiRegion.updatePrimaryRegion,
  CreateCustomKeyStore: keyStores.createCustomKeyStore,
  ConnectCustomKeyStore: keyStores.connectCustomKeyStore,
  DisconnectCustomKeyStore: keyStores.disconnectCustomKeyStore,
  DescribeCustomKeyStores: keyStores.describeCustomKeyStores,
  UpdateCustomKeyStore: keyStores.updateCustomKeyStore,
  DeleteCustomKeyStore: keyStores.deleteCustomKeyStore,
};

export const SUPPORTED_OPERATIONS: readonly string[] = Object.keys(OPERATIONS);

export class LocalKmsService extends KmsCore {
  /** The Region requests that name none address (the `region` option). */
  readonly defaultRegion: string;

  /**
   * The service is the core of its home Region (the Region of a data directory's own keys, else
   * the `region` option); the other Regions' cores open on first use, and those a data directory
   * holds keys for open now, so multi-Region keys find all their copies.
   */
  constructor(options: LocalKmsServiceOptions = {}) {
    super(options);
    this.defaultRegion = checkRegionName(options.region ?? 'us-east-1');
    try {
      this.regions = new RegionSet(this, (region) => {
        const core = new KmsCore(options, { home: this, region });
        core.regions = this.regions;
        return core;
      });
      if (!this.regions.serves(this.defaultRegion)) {
        throw new RangeError(`region ${this.defaultRegion} is not in the partition of this data directory's Region ${this.region}`);
      }
      for (const region of this.store.otherRegions?.() ?? []) {
        if (!this.regions.serves(region)) continue;
        // A Region whose keys were all deleted keeps its directory; opened empty, it is dropped again
        // as after a request (RegionSet.release), or such directories would fill MAX_REGIONS and the
        // next start would fail.
        this.regions.release(this.regions.core(region), false);
      }
      reconcileMultiRegionKeys(this.regions);
      configureKeyStores(this.regions, this.store, parseHsmOption(options.hsms), parseXksOptions(options.xksProxyTimeoutMs, options.xksProxyCa, Date.now));
    } catch (e) {
      this.store.close();
      throw e;
    }
  }

  /**
   * Requests this service has answered (successfully or not), by Region and operation, e.g.
   * `{ 'eu-west-1': { Decrypt: 3 } }`: what tests count KMS calls with, server-side.
   */
  callCounts(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const core of this.regions.all()) if (core.calls.size > 0) out[core.region] = Object.fromEntries(core.calls);
    return out;
  }

  /** The core of `region` (opened on first use), for in-process inspection. */
  inRegion(region: string): KmsCore {
    return this.regions.core(checkRegionName(region));
  }

  override close(): void {
    if (this.regions) closeKeyStores(this.regions);
    for (const core of this.regions.all()) if (core !== this) core.close();
    super.close();
  }

  /**
   * Runs one AWS KMS operation by name (`Encrypt`, `CreateKey`, ...) for `caller`. `origin` is what
   * the transport knows of the request (source IP, user agent, TLS, Region of the signature), the
   * source of the global condition keys; in-process calls get IN_PROCESS_ORIGIN.
   */
  async call(operation: string, input: Req = {}, caller: Caller = this.rootCaller, origin: RequestOrigin = IN_PROCESS_ORIGIN): Promise<KmsResponse> {
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
    const core = this.regions.core(origin.requestedRegion ?? this.defaultRegion);
    core.calls.set(operation, (core.calls.get(operation) ?? 0) + 1);
    core.inflight++;
    try {
      core.checkGrantTokens(req.GrantTokens);
      // Key stores left CONNECTED by the last run are reconnected first (once), so their keys'
      // deletions below can reach the token.
      await keyStoresReady(core);
      // Every Region, twice: a replica's deletion starts its primary's waiting period, which may be
      // over already (multi-region.ts replicaGone), and a primary's rotation reaches its replicas.
      for (let pass = 0; pass < 2; pass++) for (const c of this.regions.all()) c.tick();
      const out = await op(core, req, { caller, origin });
      recordUsage(core, operation, out); // GetKeyLastUsage (ops/usage.ts): successful operations only
      return out;
    } finally {
      core.inflight--;
      this.regions.release(core, core.inflight > 0);
    }
  }
}
