/**
 * The two TransactWriteItems requests of the specification (framework/branch-key-store.md,
 * "Writing Branch Key and Beacon Key to Keystore" and "VersionKey"), built as plain inputs so
 * their shape is testable without a server.
 *
 * The specification writes the conditions as `attribute_not_exists(branch-key-id)` and
 * `attribute_exists(branch-key-id) AND enc = :encOld`. In DynamoDB's expression grammar a bare
 * `branch-key-id` is a syntax error (the dash is not a name character; DynamoDB Developer Guide,
 * "Expression attribute names": names with special characters need a `#` placeholder), so the
 * hyphenated name goes through ExpressionAttributeNames; with the placeholder resolved the
 * expressions are the specification's text. `enc` is a plain name and stays as written.
 */
import type { TransactWriteItemsCommandInput } from '@aws-sdk/client-dynamodb';
import type { BranchKeyItem } from '../keyrings/hierarchy/storage.js';
import { encodeItem } from './codec.js';
import { ACTIVE_TYPE, BEACON_TYPE, PARTITION_KEY, VERSION_TYPE_PREFIX } from './schema.js';

export const BRANCH_KEY_ID_NAME = '#bkid';
/** CreateKey's three Puts and VersionKey's version Put. */
export const NOT_EXISTS = `attribute_not_exists(${BRANCH_KEY_ID_NAME})`;
/** VersionKey's ACTIVE Put: the ACTIVE item is still the one read before. */
export const ACTIVE_UNCHANGED = `attribute_exists(${BRANCH_KEY_ID_NAME}) AND enc = :encOld`;
const NAMES = { [BRANCH_KEY_ID_NAME]: PARTITION_KEY };

function checkVersionAndActive(version: BranchKeyItem, active: BranchKeyItem, where: string): void {
  if (typeof version?.type !== 'string' || !version.type.startsWith(VERSION_TYPE_PREFIX)) {
    throw new TypeError(`${where}.version.type must be branch:version:<version>`);
  }
  if (active?.type !== ACTIVE_TYPE) throw new TypeError(`${where}.active.type must be branch:ACTIVE`);
  // The ACTIVE item names the version written with it ("Active Encryption Context").
  if (active.version !== version.type) throw new TypeError(`${where}.active.version must equal ${where}.version.type`);
  if (active['branch-key-id'] !== version['branch-key-id']) {
    throw new TypeError(`${where}.active and ${where}.version must have the same branch-key-id`);
  }
}

/** CreateKey: the version, ACTIVE and beacon items, each only if no item with its key exists. */
export function createKeyRequest(
  tableName: string,
  items: { version: BranchKeyItem; active: BranchKeyItem; beacon: BranchKeyItem },
): TransactWriteItemsCommandInput {
  if (typeof items !== 'object' || items === null) throw new TypeError('items must be { version, active, beacon }');
  checkVersionAndActive(items.version, items.active, 'items');
  if (items.beacon?.type !== BEACON_TYPE) throw new TypeError('items.beacon.type must be beacon:ACTIVE');
  if (items.beacon['branch-key-id'] !== items.version['branch-key-id']) {
    throw new TypeError('items.beacon and items.version must have the same branch-key-id');
  }
  const put = (item: BranchKeyItem, where: string) => ({
    Put: { TableName: tableName, Item: encodeItem(item, where), ConditionExpression: NOT_EXISTS, ExpressionAttributeNames: { ...NAMES } },
  });
  return { TransactItems: [put(items.version, 'items.version'), put(items.active, 'items.active'), put(items.beacon, 'items.beacon')] };
}

/**
 * VersionKey: the new version item (only if new) and the new ACTIVE item (only while the stored
 * ACTIVE item's `enc` is `expectedActiveEnc`). DynamoDB compares B values byte for byte.
 */
export function versionKeyRequest(
  tableName: string,
  items: { version: BranchKeyItem; active: BranchKeyItem; expectedActiveEnc: Uint8Array },
): TransactWriteItemsCommandInput {
  if (typeof items !== 'object' || items === null) throw new TypeError('items must be { version, active, expectedActiveEnc }');
  checkVersionAndActive(items.version, items.active, 'items');
  if (!(items.expectedActiveEnc instanceof Uint8Array) || items.expectedActiveEnc.length === 0) {
    throw new TypeError('items.expectedActiveEnc must be a non-empty Uint8Array');
  }
  return {
    TransactItems: [
      {
        Put: {
          TableName: tableName,
          Item: encodeItem(items.version, 'items.version'),
          ConditionExpression: NOT_EXISTS,
          ExpressionAttributeNames: { ...NAMES },
        },
      },
      {
        Put: {
          TableName: tableName,
          Item: encodeItem(items.active, 'items.active'),
          ConditionExpression: ACTIVE_UNCHANGED,
          ExpressionAttributeNames: { ...NAMES },
          ExpressionAttributeValues: { ':encOld': { B: items.expectedActiveEnc } },
        },
      },
    ],
  };
}
