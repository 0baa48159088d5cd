/**
 * kms-envelope: envelope encryption with AWS KMS data keys, AES-256-GCM and a bounded data-key
 * cache, in the AWS Encryption SDK message format.
 *
 * The local KMS (`kms-envelope/local-kms`) and the S3 helpers (`kms-envelope/s3`) are separate
 * entry points; nothing here imports them.
 */
export {
  Envelope,
  type EnvelopeOptions,
  type EnvelopeKmsOptions,
  type EncryptOptions,
  type DecryptOptions,
  type DecryptResult,
  type EncryptResult,
  type FileOptions,
  type EncryptStreamOptions,
  type DecryptStreamOptions,
  type EnvelopeStats,
  type CommitmentPolicy,
  type SignaturePolicy,
} from './envelope.js';
export type { MessageHeader } from './format/header.js';
export type {
  EncryptionContext,
  EncryptedDataKey,
  Keyring,
  KeyringEncryptInput,
  KeyringEncryptOutput,
  KeyringDecryptInput,
  KmsClient,
} from './types.js';
export { KmsKeyring, type KmsKeyringOptions, type KmsDiscoveryFilter } from './keyrings/kms.js';
export { isMultiRegionKmsArn, isMultiRegionKmsIdentifier } from './keyrings/kms-arn.js';
export { mrkMatchForDecrypt, assertMrksAreUnique } from './keyrings/kms-mrk.js';
export { RawAesKeyring, type RawAesKeyringOptions } from './keyrings/raw-aes.js';
export { RawRsaKeyring, type RawRsaKeyringOptions, type RsaPadding } from './keyrings/raw-rsa.js';
export { MultiKeyring, type MultiKeyringOptions } from './keyrings/multi.js';
export {
  HierarchicalKeyring,
  type HierarchicalKeyringOptions,
  type BranchKeyIdSupplier,
  BranchKeyStore,
  type BranchKeyStoreOptions,
  type CreateBranchKeyInput,
  type KeyStoreInfo,
  type BranchKeyMaterials,
  type BranchKeyStoreKmsConfiguration,
  type BranchKeyCacheOptions,
  type BranchKeyCacheStats,
  DirectoryBranchKeyStorage,
  type DirectoryBranchKeyStorageOptions,
  BranchKeyWriteConflictError,
  type BranchKeyStorage,
  type BranchKeyItem,
  type BranchKeyItemType,
  type BranchKeyWriteConflict,
} from './keyrings/hierarchy/index.js';
export type { CacheOptions } from './cache/options.js';
export * from './errors.js';
