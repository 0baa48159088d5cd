import type { GrantRecord } from './grants.js';
import type { KeySpec, KeyUsage } from './specs.js';

/** In-memory records of the local KMS. Secrets (`secret`, `privateKey`) are sealed by the store at rest. */

export interface Tag {
  TagKey: string;
  TagValue: string;
}

export interface MaterialRecord {
  /** 64 hex chars, like AWS's KeyMaterialId; named in every ciphertext blob. */
  id: string;
  createdAt: number;
  /** Symmetric: 32 bytes. RSA/ECC: PKCS#8 DER private key. HMAC: raw key. */
  secret: Buffer;
}

export interface RotationRecord {
  materialId: string;
  date: number;
  type: 'AUTOMATIC' | 'ON_DEMAND';
}

export interface RotationState {
  enabled: boolean;
  periodDays?: number;
  /** Start of the current automatic-rotation period (enable time or last automatic rotation). */
  baseDate?: number;
  history: RotationRecord[];
}

/** Parameters handed out by GetParametersForImport (only the newest set per key is valid). */
export interface PendingImport {
  tokenId: string;
  wrappingAlgorithm: string;
  wrappingKeySpec: string;
  publicKey: Buffer;
  privateKey: Buffer;
  expiresAt: number;
}

/** What the key remembers about imported material, even after the material is deleted or expired. */
export interface ImportedState {
  materialId: string;
  /** Keyed fingerprint (HMAC under a root-derived key) to detect re-import of different material. */
  fingerprint: string;
  expirationModel?: 'KEY_MATERIAL_EXPIRES' | 'KEY_MATERIAL_DOES_NOT_EXPIRE';
  validTo?: number;
}

export interface KeyRecord {
  keyId: string;
  arn: string;
  createdAt: number;
  description: string;
  keyUsage: KeyUsage;
  keySpec: KeySpec;
  origin: 'AWS_KMS' | 'EXTERNAL' | 'AWS_CLOUDHSM' | 'EXTERNAL_KEY_STORE';
  /**
   * Keys in a CloudHSM key store (custom-key-stores.ts): the key store's id. The key's AES key is
   * a token object (pkcs11.ts tokenKeyRef: CKA_ID = the key id's bytes); `materials` then holds one
   * entry with an empty secret, which only names the KeyMaterialId of its ciphertexts.
   */
  customKeyStoreId?: string;
  /**
   * Keys in an external key store (xks-stores.ts): the external key's id at the proxy (XksKeyId).
   * `materials` then holds the key's own AES key, the inner layer of its double encryption.
   */
  xksKeyId?: string;
  /** The EnableKey/DisableKey switch; the visible KeyState also depends on deletion and import. */
  enabled: boolean;
  deletionDate?: number;
  pendingWindowInDays?: number;
  policy: string;
  tags: Tag[];
  /** Oldest first; the last one is current. EXTERNAL keys hold at most one. */
  materials: MaterialRecord[];
  /** DER SubjectPublicKeyInfo of asymmetric keys. */
  publicKey?: Buffer;
  rotation: RotationState;
  onDemandRotations: number;
  imported?: ImportedState;
  pendingImport?: PendingImport;
  /**
   * Live grants, oldest first (grants.ts). Stored in the key's own file, so they are as durable as
   * the key and disappear with it when the key is deleted. Absent in files written before grants.
   */
  grants?: GrantRecord[];
  /** Sequence number of the last grant created on this key (0 or absent: none yet). */
  grantSeq?: number;
  /**
   * Multi-Region keys (key id `mrk-` + 32 hex digits): the Region of the set's primary key. Every
   * copy records it, so each Region knows whether its copy is the primary or a replica. Absent for
   * single-Region keys.
   */
  multiRegion?: {
    primaryRegion: string;
    /**
     * Counts UpdatePrimaryRegion calls (absent: 0). The copy with the highest epoch is right about
     * the primary: a crash between the copies' writes is completed at the next start.
     */
    epoch?: number;
  };
  /** A replica made by ReplicateKey is `Creating` until this time (service option replicaCreationMs). */
  creatingUntil?: number;
  /**
   * ScheduleKeyDeletion of a primary key with replicas: the key is PendingReplicaDeletion, and its
   * waiting period (pendingWindowInDays) starts when its last replica is deleted.
   */
  pendingReplicaDeletion?: boolean;
  /** Last successful cryptographic operation as last written (ops/usage.ts keeps newer ones in memory). */
  lastUsage?: KeyUsageRecord;
  /** GetKeyLastUsage TrackingStartDate (absent in files written before usage tracking). */
  usageTrackedSince?: number;
}

/** GetKeyLastUsage `KeyLastUsage` (ops/usage.ts). */
export interface KeyUsageRecord {
  operation: string;
  timestamp: number;
}

export interface AliasRecord {
  name: string;
  targetKeyId: string;
  createdAt: number;
  updatedAt: number;
}
