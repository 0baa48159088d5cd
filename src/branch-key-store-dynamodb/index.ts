/**
 * `kms-envelope/branch-key-store-dynamodb`: the storage of the hierarchical keyring's branch key
 * store in a DynamoDB table of the ESDK specification's layout.
 *
 * `@aws-sdk/client-dynamodb` is an optional peer dependency, imported on first use; importing
 * this module does not load it, and `kms-envelope` itself never reaches this module.
 */
export { DynamoDbBranchKeyStorage, type DynamoDbBranchKeyStorageOptions } from './storage.js';
export type { CreateTableOptions, CreateTableResult } from './table.js';
export {
  BranchKeyWriteConflictError,
  type BranchKeyItem,
  type BranchKeyItemType,
  type BranchKeyStorage,
  type BranchKeyWriteConflict,
} from '../keyrings/hierarchy/storage.js';
export { BranchKeyStoreError, type BranchKeyStoreFailure } from '../errors.js';
