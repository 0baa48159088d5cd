/**
 * Where a branch key store keeps its items (ESDK specification, framework/branch-key-store.md,
 * "Record Format"). The store (KMS calls, encryption contexts, authentication of items) is the
 * same whatever the storage; a storage only keeps items and gives the two atomic writes the
 * specification makes with DynamoDB TransactWriteItems:
 * - CreateKey ("Writing Branch Key and Beacon Key to Keystore"): the version, ACTIVE and beacon
 *   items of a new branch key together, each on condition `attribute_not_exists(branch-key-id)`;
 * - VersionKey: a new version item (condition `attribute_not_exists(branch-key-id)`) and the new
 *   ACTIVE item (condition `attribute_exists(branch-key-id) AND enc = :encOld`, the ACTIVE item
 *   read before), together, so two racing VersionKey calls cannot both win.
 *
 * Implementations: the embedded directory storage (offline default) and DynamoDB (its own subpath
 * export, @aws-sdk/client-dynamodb as an optional peer dependency).
 */

/** The item types of a branch key: `branch:ACTIVE`, `branch:version:<version>`, `beacon:ACTIVE`. */
export type BranchKeyItemType = 'branch:ACTIVE' | 'beacon:ACTIVE' | `branch:version:${string}`;

/**
 * One item, attribute for attribute as the specification's DynamoDB item (names included), so a
 * storage maps it without knowing what the attributes mean.
 */
export interface BranchKeyItem {
  /** `branch-key-id` (DynamoDB S, partition key). */
  'branch-key-id': string;
  /** `type` (S, sort key). */
  type: BranchKeyItemType;
  /** `version` (S): only on the `branch:ACTIVE` item, `branch:version:<version>` of the active version. */
  version?: string;
  /** `enc` (B): the KMS ciphertext of the key. */
  enc: Uint8Array;
  /** `kms-arn` (S): the KMS key that wrapped `enc`. */
  'kms-arn': string;
  /** `create-time` (S): ISO 8601 UTC, to the microsecond. */
  'create-time': string;
  /** `hierarchy-version` (N): decimal text, `1`. */
  'hierarchy-version': string;
  /** Custom encryption context: `aws-crypto-ec:<key>` (S) for each pair. */
  [customContext: `aws-crypto-ec:${string}`]: string;
}

/** Why a conditional write did not happen (the store maps it to its own typed error). */
export type BranchKeyWriteConflict = 'BRANCH_KEY_EXISTS' | 'ACTIVE_CHANGED';

/**
 * A write refused by its condition: `BRANCH_KEY_EXISTS` (CreateKey: an item of that branch key id
 * exists) or `ACTIVE_CHANGED` (VersionKey: the ACTIVE item is not the one read before, or is gone).
 * Nothing of the write happened. Any other failure rejects with the storage's own error.
 */
export class BranchKeyWriteConflictError extends Error {
  readonly conflict: BranchKeyWriteConflict;
  constructor(conflict: BranchKeyWriteConflict, message: string) {
    super(message);
    this.name = 'BranchKeyWriteConflictError';
    this.conflict = conflict;
  }
}

export interface BranchKeyStorage {
  /**
   * The storage's own name (a directory, a DynamoDB table), reported by the store's
   * GetKeyStoreInfo as `keyStoreName` (spec "GetKeyStoreInfo": the key store name). Optional.
   */
  readonly name?: string;

  /**
   * CreateKey's write: all three items of a new branch key, or none. Rejects with
   * BranchKeyWriteConflictError('BRANCH_KEY_EXISTS') when any item with this branch key id and one
   * of these types exists.
   */
  writeNewBranchKey(items: { version: BranchKeyItem; active: BranchKeyItem; beacon: BranchKeyItem }): Promise<void>;

  /**
   * VersionKey's write: the new version item and the new ACTIVE item, or neither, only while the
   * stored ACTIVE item's `enc` equals `expectedActiveEnc` (else BranchKeyWriteConflictError
   * 'ACTIVE_CHANGED'); a version item that exists already is 'BRANCH_KEY_EXISTS'.
   */
  writeNewBranchKeyVersion(items: { version: BranchKeyItem; active: BranchKeyItem; expectedActiveEnc: Uint8Array }): Promise<void>;

  /** The item of `branchKeyId` and `type` (GetItem, consistent read), or undefined when there is none. */
  getItem(branchKeyId: string, type: BranchKeyItemType): Promise<BranchKeyItem | undefined>;
}
