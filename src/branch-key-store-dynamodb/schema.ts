/**
 * The table layout of the ESDK specification (framework/branch-key-store.md): "CreateKeyStore",
 * "KeySchema" and "Record Format". Attribute names are the specification's; the storage maps items
 * attribute for attribute and leaves their meaning to the branch key store.
 */
import type { BranchKeyItemType } from '../keyrings/hierarchy/storage.js';

/** Partition key, DynamoDB type S ("KeySchema"). */
export const PARTITION_KEY = 'branch-key-id';
/** Sort key, DynamoDB type S ("KeySchema"). */
export const SORT_KEY = 'type';

export const ACTIVE_TYPE = 'branch:ACTIVE';
export const BEACON_TYPE = 'beacon:ACTIVE';
export const VERSION_TYPE_PREFIX = 'branch:version:';
/** Custom encryption context attributes: `aws-crypto-ec:<key>` (S) ("Record Format"). */
export const CUSTOM_CONTEXT_PREFIX = 'aws-crypto-ec:';

/** The DynamoDB type of each attribute of the record format other than custom encryption context (always S). */
export const ATTRIBUTE_TYPES: Readonly<Record<string, 'S' | 'B' | 'N'>> = {
  'branch-key-id': 'S',
  type: 'S',
  version: 'S',
  enc: 'B',
  'kms-arn': 'S',
  'create-time': 'S',
  'hierarchy-version': 'N',
};

/** Attributes every item has; `version` is required on the ACTIVE item only. */
export const REQUIRED_ATTRIBUTES = ['branch-key-id', 'type', 'enc', 'kms-arn', 'create-time', 'hierarchy-version'] as const;

export function isItemType(type: unknown): type is BranchKeyItemType {
  return (
    typeof type === 'string' &&
    (type === ACTIVE_TYPE || type === BEACON_TYPE || (type.startsWith(VERSION_TYPE_PREFIX) && type.length > VERSION_TYPE_PREFIX.length))
  );
}

/** DynamoDB table names: 3-255 characters of [a-zA-Z0-9_.-] (DynamoDB Developer Guide, "Naming rules"). */
export const TABLE_NAME = /^[a-zA-Z0-9_.-]{3,255}$/;
