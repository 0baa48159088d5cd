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
import * as kem from './ops/kem.js';
import { flushUsage, getKeyLastUsage, recordUsage, usageFields } from './ops/usage.js';
import type { KeyRecord } from './model.js';

export type { LocalKmsServiceOptions, BackgroundTask } from './core.js';
export type { KmsResponse } from './ops/util.js';

/**
 * LocalKmsService: an in-process model of AWS KMS key management (customer managed keys in one
 * account and region). Operations take and return the shapes of the AWS KMS API (PascalCase
 * members as in the JSON protocol; blobs as Uint8Array, timestamps as Date), so the HTTP server
 * is only a codec around `call()`.
 *
 * This file is only the dispatcher: the state and shared rules are in core.ts, each operation in
 * the module of its family under ops/, grouped as the KMS API Reference groups them.
 */

/** Operations AWS KMS has that this model does not: answered with UnsupportedOperationException. */
export const UNSUPPORTED_OPERATIONS = [
  'CreateCustomKeyStore',
  'ConnectCustomKeyStore',
  'DeleteCustomKeyStore',
  'DescribeCustomKeyStores',
  'DisconnectCustomKeyStore',
  'UpdateCustomKeyStore',
  'ReplicateKey', // multi-Region keys: in progress
  'UpdatePrimaryRegion', // multi-Region keys: in progress
];

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
};

export const SUPPORTED_OPERATIONS: readonly string[] = Object.keys(OPERATIONS);

export class LocalKmsService extends KmsCore {
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
    this.checkGrantTokens(req.GrantTokens);
    this.tick();
    const out = await op(this, req, { caller, origin });
    recordUsage(this, operation, out); // GetKeyLastUsage (ops/usage.ts): successful operations only
    return out;
  }

  /** Every key write also carries the key's last usage, which ops/usage.ts keeps in memory. */
  override commit(key: KeyRecord, changes: Partial<KeyRecord>): KeyRecord {
    return super.commit(key, { ...usageFields(this, key), ...changes });
  }

  override close(): void {
    if (!this.closed) {
      try {
        flushUsage(this);
      } catch {
        // A store that cannot write loses the newest last-usage records only; close goes on.
      }
    }
    super.close();
  }
}
