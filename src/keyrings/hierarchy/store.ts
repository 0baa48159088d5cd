/**
 * The branch key store (framework/branch-key-store.md): creates, rotates and reads the branch keys
 * of the hierarchical keyring. KMS requests and encryption contexts are the specification's, item
 * for item, so a store written by the AWS Encryption SDK (KeyStore / BranchKeyStoreNode) is usable
 * here and the other way round, whatever the storage (a directory, DynamoDB) behind it.
 *
 * KMS requests per operation:
 * - createKey: GenerateDataKeyWithoutPlaintext (DECRYPT_ONLY), ReEncrypt (DECRYPT_ONLY -> ACTIVE),
 *   GenerateDataKeyWithoutPlaintext (beacon key);
 * - versionKey: ReEncrypt of the ACTIVE item onto itself (authenticates it), then the same two
 *   requests as createKey's branch key;
 * - getActiveBranchKey / getBranchKeyVersion / getBeaconKey: one Decrypt.
 */
import { randomUUID } from 'node:crypto';
import { secretCopy } from '../../crypto/secret-buffer.js';
import { BranchKeyStoreError, KmsError } from '../../errors.js';
import { isWellFormedUtf16 } from '../../format/context.js';
import type { EncryptionContext } from '../../types.js';
import { createDefaultKmsClient, toKmsClient, type CountedKmsClient } from '../kms-client.js';
import { stringOption } from '../common.js';
import {
  ACTIVE_TYPE,
  BEACON_TYPE,
  CREATE_TIME,
  TYPE,
  VERSION,
  VERSION_PREFIX,
  activeContext,
  beaconContext,
  checkItem,
  createTime,
  customContextOf,
  decryptOnlyContext,
  itemFromContext,
  versionOf,
  type BranchKeyMaterials,
} from './items.js';
import { keyIdFor, resolveKmsConfiguration, type BranchKeyStoreKmsConfiguration, type ResolvedKmsConfiguration } from './kms-config.js';
import { BranchKeyWriteConflictError, type BranchKeyItem, type BranchKeyItemType, type BranchKeyStorage } from './storage.js';

/** Branch keys and beacon keys are 32 bytes (GenerateDataKeyWithoutPlaintext NumberOfBytes 32). */
const KEY_BYTES = 32;

export interface BranchKeyStoreOptions {
  /** Where items live: `DirectoryBranchKeyStorage` (embedded), DynamoDB, or your own `BranchKeyStorage`. */
  storage: BranchKeyStorage;
  /**
   * Logical key store name, bound into every branch key's KMS encryption context (`tablename`).
   * Required; must be the same for every store reading the same items (the ESDK's
   * `logicalKeyStoreName`). Keys written under one name do not decrypt under another. Never give
   * two different physical stores (directories, tables) the same name (spec "Logical Key Store
   * Name"): cache identifiers tell branch keys apart by this name and the branch key id.
   */
  logicalKeyStoreName: string;
  /** Which KMS key wraps branch keys; see BranchKeyStoreKmsConfiguration. Required. */
  kmsConfiguration: BranchKeyStoreKmsConfiguration;
  /**
   * An `@aws-sdk/client-kms` KMSClient or a KmsClient that also has generateDataKeyWithoutPlaintext
   * and reEncrypt (the local KMS in-process client has them). Default: a KMSClient for the Region of
   * the configured key ARN (or the MRDiscovery Region), built on first use.
   */
  kmsClient?: unknown;
  /** KMS grant tokens sent with every request. Default none. */
  grantTokens?: readonly string[];
  /** Identifier of this store for GetKeyStoreInfo. Default: a random v4 UUID. */
  keyStoreId?: string;
  /** Wall clock in milliseconds for `create-time`. Default Date.now. */
  clock?: () => number;
}

export interface CreateBranchKeyInput {
  /**
   * The id of the new branch key. Default a random v4 UUID. When given, `encryptionContext` is
   * required (spec "CreateKey"): a chosen id is usually a tenant name, and the context documents it.
   */
  branchKeyId?: string;
  /** Custom encryption context bound to every version of the key (stored as `aws-crypto-ec:<key>`). */
  encryptionContext?: Readonly<EncryptionContext>;
}

export interface KeyStoreInfo {
  keyStoreId: string;
  /** The storage's name (a directory, a table), when it has one. */
  keyStoreName: string | undefined;
  logicalKeyStoreName: string;
  grantTokens: string[];
  kmsConfiguration: BranchKeyStoreKmsConfiguration;
}

const KNOWN = new Set(['storage', 'logicalKeyStoreName', 'kmsConfiguration', 'kmsClient', 'grantTokens', 'keyStoreId', 'clock']);

export class BranchKeyStore {
  readonly logicalKeyStoreName: string;
  readonly keyStoreId: string;
  readonly #storage: BranchKeyStorage;
  readonly #kms: ResolvedKmsConfiguration;
  readonly #client: CountedKmsClient;
  readonly #grantTokens: string[] | undefined;
  readonly #clock: () => number;

  constructor(options: BranchKeyStoreOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('BranchKeyStore options must be an object');
    for (const k of Object.keys(options)) {
      if (!KNOWN.has(k)) throw new TypeError(`${k} is not a BranchKeyStore option (allowed: ${[...KNOWN].join(', ')})`);
    }
    const s = options.storage as unknown as Record<string, unknown> | null;
    if (
      s === null ||
      typeof s !== 'object' ||
      typeof s.writeNewBranchKey !== 'function' ||
      typeof s.writeNewBranchKeyVersion !== 'function' ||
      typeof s.getItem !== 'function'
    ) {
      throw new TypeError('storage must be a BranchKeyStorage (writeNewBranchKey, writeNewBranchKeyVersion, getItem)');
    }
    this.#storage = options.storage;
    this.logicalKeyStoreName = stringOption(options.logicalKeyStoreName, 'logicalKeyStoreName');
    this.#kms = resolveKmsConfiguration(options.kmsConfiguration);
    if (options.kmsClient === undefined) {
      this.#client = createDefaultKmsClient(this.#kms.region !== undefined ? { region: this.#kms.region } : {});
    } else {
      this.#client = toKmsClient(options.kmsClient, 'kmsClient');
      if (!this.#client.supportsBranchKeys) {
        throw new TypeError('kmsClient must also implement generateDataKeyWithoutPlaintext and reEncrypt (a KMSClient does)');
      }
    }
    if (options.grantTokens !== undefined) {
      if (!Array.isArray(options.grantTokens) || !options.grantTokens.every((t) => typeof t === 'string' && t.length > 0)) {
        throw new TypeError('grantTokens must be an array of non-empty strings');
      }
      this.#grantTokens = [...options.grantTokens];
    }
    this.keyStoreId = options.keyStoreId === undefined ? randomUUID() : stringOption(options.keyStoreId, 'keyStoreId');
    if (options.clock !== undefined && typeof options.clock !== 'function') {
      throw new TypeError('clock must be a function returning milliseconds since the epoch');
    }
    this.#clock = options.clock ?? Date.now;
  }

  /** KMS requests this store has sent (including failed ones). */
  get kmsCalls(): number {
    return this.#client.kmsCalls;
  }

  /** GetKeyStoreInfo. */
  getKeyStoreInfo(): KeyStoreInfo {
    const name = (this.#storage as { name?: unknown }).name;
    return {
      keyStoreId: this.keyStoreId,
      keyStoreName: typeof name === 'string' ? name : undefined,
      logicalKeyStoreName: this.logicalKeyStoreName,
      grantTokens: this.#grantTokens ? [...this.#grantTokens] : [],
      kmsConfiguration: this.#kms.given,
    };
  }

  /**
   * CreateKey: a new branch key (its first version, its ACTIVE item) and its beacon key, written
   * together. Returns the branch key id and the version. Rejects with BranchKeyStoreError
   * `BRANCH_KEY_EXISTS` when the id is taken, `UNSUPPORTED` with a discovery configuration.
   */
  async createKey(input: CreateBranchKeyInput = {}): Promise<{ branchKeyId: string; branchKeyVersion: string }> {
    const arn = this.#writableArn('createKey');
    if (input === null || typeof input !== 'object') throw new TypeError('createKey input must be an object');
    const custom = checkCustomContext(input.encryptionContext);
    let branchKeyId: string;
    if (input.branchKeyId !== undefined) {
      branchKeyId = stringOption(input.branchKeyId, 'branchKeyId');
      if (Object.keys(custom).length === 0) {
        throw new TypeError('encryptionContext (at least one pair) is required when branchKeyId is given');
      }
    } else {
      branchKeyId = randomUUID();
    }
    const version = randomUUID();
    const decryptOnly = decryptOnlyContext({
      branchKeyId,
      version,
      createTime: createTime(this.#clock()),
      logicalKeyStoreName: this.logicalKeyStoreName,
      kmsArn: arn,
      custom,
    });
    const { versionItem, activeItem } = await this.#wrapNewVersion(arn, decryptOnly);
    const beaconCtx = beaconContext(decryptOnly);
    const beacon = await this.#client.generateDataKeyWithoutPlaintext({
      keyId: arn,
      numberOfBytes: KEY_BYTES,
      encryptionContext: beaconCtx,
      grantTokens: this.#grantTokens,
    });
    await this.#write(() =>
      this.#storage.writeNewBranchKey({ version: versionItem, active: activeItem, beacon: itemFromContext(beaconCtx, beacon.ciphertextBlob) }),
    );
    return { branchKeyId, branchKeyVersion: version };
  }

  /**
   * VersionKey: rotates the branch key. A new version becomes ACTIVE; every older version still
   * decrypts (its item stays). Rejects with BranchKeyStoreError `ACTIVE_CHANGED` when another
   * VersionKey won a race (nothing was written: try again), `NOT_FOUND` for an unknown id.
   */
  async versionKey(branchKeyId: string): Promise<{ branchKeyId: string; branchKeyVersion: string }> {
    const arn = this.#writableArn('versionKey');
    stringOption(branchKeyId, 'branchKeyId');
    const { item: oldActive, context: oldContext, keyId } = await this.#read(branchKeyId, ACTIVE_TYPE);
    // "Authenticating a Keystore item": KMS checks the ACTIVE item's attributes by re-encrypting
    // its ciphertext under the same context; a changed attribute fails here.
    await this.#client.reEncrypt({
      ciphertextBlob: oldActive.enc,
      sourceKeyId: keyId,
      sourceEncryptionContext: oldContext,
      destinationKeyId: keyId,
      destinationEncryptionContext: oldContext,
      grantTokens: this.#grantTokens,
    });
    const version = randomUUID();
    // The new version keeps every attribute of the ACTIVE item (kms-arn included: it MUST NOT change).
    const decryptOnly: EncryptionContext = Object.assign(Object.create(null), oldContext);
    delete decryptOnly[VERSION];
    decryptOnly[TYPE] = VERSION_PREFIX + version;
    decryptOnly[CREATE_TIME] = createTime(this.#clock());
    const { versionItem, activeItem } = await this.#wrapNewVersion(arn, decryptOnly);
    await this.#write(() =>
      this.#storage.writeNewBranchKeyVersion({ version: versionItem, active: activeItem, expectedActiveEnc: oldActive.enc }),
    );
    return { branchKeyId, branchKeyVersion: version };
  }

  /** GetActiveBranchKey: the materials of the active version (one KMS Decrypt). */
  async getActiveBranchKey(branchKeyId: string): Promise<BranchKeyMaterials> {
    stringOption(branchKeyId, 'branchKeyId');
    return this.#materials(branchKeyId, ACTIVE_TYPE);
  }

  /** GetBranchKeyVersion: the materials of one version (one KMS Decrypt). */
  async getBranchKeyVersion(branchKeyId: string, branchKeyVersion: string): Promise<BranchKeyMaterials> {
    stringOption(branchKeyId, 'branchKeyId');
    stringOption(branchKeyVersion, 'branchKeyVersion');
    return this.#materials(branchKeyId, `${VERSION_PREFIX}${branchKeyVersion}`);
  }

  /** GetBeaconKey: the beacon key of a branch key (for searchable encryption; one KMS Decrypt). */
  async getBeaconKey(branchKeyId: string): Promise<{ beaconKeyIdentifier: string; beaconKey: Uint8Array; encryptionContext: EncryptionContext }> {
    stringOption(branchKeyId, 'branchKeyId');
    const { key, context } = await this.#decrypt(branchKeyId, BEACON_TYPE);
    return { beaconKeyIdentifier: branchKeyId, beaconKey: key, encryptionContext: customContextOf(context) };
  }

  async #materials(branchKeyId: string, type: BranchKeyItemType): Promise<BranchKeyMaterials> {
    const { key, context } = await this.#decrypt(branchKeyId, type);
    let version: string;
    try {
      version = versionOf(context);
    } catch (err) {
      key.fill(0);
      throw err;
    }
    return { branchKeyId, branchKeyVersion: version, branchKey: key, encryptionContext: customContextOf(context) };
  }

  /** "AWS KMS Branch Key Decryption": Decrypt `enc` under the item's authenticated context. */
  async #decrypt(branchKeyId: string, type: BranchKeyItemType): Promise<{ key: Uint8Array; context: EncryptionContext }> {
    const { item, context, keyId } = await this.#read(branchKeyId, type);
    const out = await this.#client.decrypt({
      keyId,
      ciphertextBlob: item.enc,
      encryptionContext: context,
      grantTokens: this.#grantTokens,
    });
    if (out.plaintext.length !== KEY_BYTES) {
      out.plaintext.fill(0);
      throw new KmsError(`KMS Decrypt returned a ${out.plaintext.length}-byte branch key; expected ${KEY_BYTES}`, 'MalformedResponse');
    }
    // The SDK decodes the plaintext into a slice of Node's shared Buffer pool, where any other slice
    // of the same slab (via `.buffer`) could read it for as long as the branch key is cached: the
    // key moves to memory of its own and the SDK's bytes are zeroed.
    const key = secretCopy(out.plaintext);
    out.plaintext.fill(0);
    return { key, context };
  }

  /** GetItem, record format check, and the KMS key id the configuration allows for the item. */
  async #read(branchKeyId: string, type: BranchKeyItemType): Promise<{ item: BranchKeyItem; context: EncryptionContext; keyId: string }> {
    let raw: BranchKeyItem | undefined;
    try {
      raw = await this.#storage.getItem(branchKeyId, type);
    } catch (err) {
      if (err instanceof BranchKeyStoreError) throw err; // typed by the storage (REQUEST_FAILED, MALFORMED_ITEM): kept
      throw new BranchKeyStoreError('FAILED', `branch key storage failed to read ${type} of ${JSON.stringify(branchKeyId)}`, { cause: err });
    }
    if (raw === undefined) {
      throw new BranchKeyStoreError('NOT_FOUND', `no ${type} item for branch key ${JSON.stringify(branchKeyId)}`);
    }
    const { item, context } = checkItem(raw, { branchKeyId, type }, this.logicalKeyStoreName);
    const keyId = keyIdFor(this.#kms, item['kms-arn']);
    if (keyId === undefined) {
      throw new BranchKeyStoreError(
        'KMS_ARN_MISMATCH',
        `the kms-arn of branch key ${JSON.stringify(branchKeyId)} is not compatible with this store's KMS configuration`,
      );
    }
    return { item, context, keyId };
  }

  /** "Wrapped Branch Key Creation": GenerateDataKeyWithoutPlaintext, then ReEncrypt to the ACTIVE context. */
  async #wrapNewVersion(arn: string, decryptOnly: EncryptionContext): Promise<{ versionItem: BranchKeyItem; activeItem: BranchKeyItem }> {
    const generated = await this.#client.generateDataKeyWithoutPlaintext({
      keyId: arn,
      numberOfBytes: KEY_BYTES,
      encryptionContext: decryptOnly,
      grantTokens: this.#grantTokens,
    });
    const active = activeContext(decryptOnly);
    const reEncrypted = await this.#client.reEncrypt({
      ciphertextBlob: generated.ciphertextBlob,
      sourceKeyId: arn,
      sourceEncryptionContext: decryptOnly,
      destinationKeyId: arn,
      destinationEncryptionContext: active,
      grantTokens: this.#grantTokens,
    });
    return {
      versionItem: itemFromContext(decryptOnly, generated.ciphertextBlob),
      activeItem: itemFromContext(active, reEncrypted.ciphertextBlob),
    };
  }

  #writableArn(op: string): string {
    if (this.#kms.arn === undefined) {
      throw new BranchKeyStoreError('UNSUPPORTED', `${op} needs a kmsKeyArn or kmsMrkKeyArn configuration, not discovery`);
    }
    return this.#kms.arn;
  }

  async #write(write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (err) {
      if (err instanceof BranchKeyWriteConflictError) {
        throw new BranchKeyStoreError(err.conflict, err.message, { cause: err });
      }
      // A storage that already reports a typed failure (the DynamoDB storage's
      // TRANSACTIONS_UNSUPPORTED, REQUEST_FAILED with the AWS error name) keeps it: FAILED would
      // hide the one thing the caller can act on.
      if (err instanceof BranchKeyStoreError) throw err;
      throw new BranchKeyStoreError('FAILED', 'branch key storage failed to write', { cause: err });
    }
  }
}

function checkCustomContext(ctx: unknown): EncryptionContext {
  if (ctx === undefined) return {};
  if (ctx === null || typeof ctx !== 'object' || Array.isArray(ctx)) throw new TypeError('encryptionContext must be an object of strings');
  const out: EncryptionContext = {};
  for (const k of Object.keys(ctx)) {
    const v = (ctx as Record<string, unknown>)[k];
    if (typeof v !== 'string' || !isWellFormedUtf16(k) || !isWellFormedUtf16(v) || k.length === 0) {
      throw new TypeError('encryptionContext keys must be non-empty strings and values strings (well-formed UTF-16)');
    }
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

export type { BranchKeyMaterials };
