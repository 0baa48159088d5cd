/** The hierarchical keyring, its branch key store and the storages behind it. */
export { HierarchicalKeyring, type HierarchicalKeyringOptions, type BranchKeyIdSupplier } from './keyring.js';
export { BranchKeyStore, type BranchKeyStoreOptions, type CreateBranchKeyInput, type KeyStoreInfo } from './store.js';
export type { BranchKeyMaterials } from './items.js';
export type { BranchKeyStoreKmsConfiguration } from './kms-config.js';
export type { BranchKeyCacheOptions, BranchKeyCacheStats } from './cache.js';
export { DirectoryBranchKeyStorage, type DirectoryBranchKeyStorageOptions } from './directory-storage.js';
export {
  BranchKeyWriteConflictError,
  type BranchKeyStorage,
  type BranchKeyItem,
  type BranchKeyItemType,
  type BranchKeyWriteConflict,
} from './storage.js';
export { HIERARCHY_PROVIDER_ID } from './wrapping.js';
