/**
 * Branch key items and their AWS KMS encryption contexts (framework/branch-key-store.md,
 * "Encryption Context", "Record Format", "Branch Key Materials From Authenticated Encryption
 * Context"). Pure functions: no KMS, no storage.
 *
 * The KMS encryption context of an item is every attribute of the item except `enc`, plus
 * `tablename` = the logical key store name (which is never stored: it binds every key to the
 * logical store, so items copied into another logical store do not decrypt).
 */
import { BranchKeyStoreError } from '../../errors.js';
import type { EncryptionContext } from '../../types.js';
import type { BranchKeyItem, BranchKeyItemType } from './storage.js';

export const BRANCH_KEY_ID = 'branch-key-id';
export const TYPE = 'type';
export const VERSION = 'version';
export const ENC = 'enc';
export const KMS_ARN = 'kms-arn';
export const CREATE_TIME = 'create-time';
export const HIERARCHY_VERSION = 'hierarchy-version';
export const TABLE_NAME = 'tablename';
export const CUSTOM_PREFIX = 'aws-crypto-ec:';
export const ACTIVE_TYPE = 'branch:ACTIVE';
export const BEACON_TYPE = 'beacon:ACTIVE';
export const VERSION_PREFIX = 'branch:version:';

/** Branch key materials (framework/structures.md, "Branch Key Materials"). */
export interface BranchKeyMaterials {
  readonly branchKeyId: string;
  /** The version, a UUID string. */
  readonly branchKeyVersion: string;
  /** The 32-byte plaintext branch key. The receiver owns this buffer (zero it when done). */
  readonly branchKey: Uint8Array;
  /** The custom encryption context the key was created with (without the `aws-crypto-ec:` prefix). */
  readonly encryptionContext: Readonly<EncryptionContext>;
}

/**
 * ISO 8601 UTC to the microsecond ("Branch Key and Beacon Key Creation": YYYY-MM-DDTHH:mm:ss.ssssssZ).
 * Milliseconds come from the clock; the three microsecond digits are 0, as the ESDK for JavaScript writes them.
 */
export function createTime(ms: number): string {
  return new Date(ms).toISOString().replace('Z', '000Z');
}

/** The DECRYPT_ONLY context of a new version ("DECRYPT_ONLY Encryption Context"). */
export function decryptOnlyContext(input: {
  branchKeyId: string;
  version: string;
  createTime: string;
  logicalKeyStoreName: string;
  kmsArn: string;
  custom: Readonly<EncryptionContext>;
}): EncryptionContext {
  const ctx: EncryptionContext = Object.create(null);
  ctx[BRANCH_KEY_ID] = input.branchKeyId;
  ctx[TYPE] = VERSION_PREFIX + input.version;
  ctx[CREATE_TIME] = input.createTime;
  ctx[TABLE_NAME] = input.logicalKeyStoreName;
  ctx[KMS_ARN] = input.kmsArn;
  ctx[HIERARCHY_VERSION] = '1';
  for (const k of Object.keys(input.custom)) ctx[CUSTOM_PREFIX + k] = input.custom[k]!;
  return ctx;
}

/** ACTIVE context: the DECRYPT_ONLY one with `type` = branch:ACTIVE and `version` = its former type. */
export function activeContext(decryptOnly: Readonly<EncryptionContext>): EncryptionContext {
  const ctx: EncryptionContext = Object.assign(Object.create(null), decryptOnly);
  ctx[VERSION] = decryptOnly[TYPE]!;
  ctx[TYPE] = ACTIVE_TYPE;
  return ctx;
}

/** Beacon context: the DECRYPT_ONLY one with `type` = beacon:ACTIVE (no `version`). */
export function beaconContext(decryptOnly: Readonly<EncryptionContext>): EncryptionContext {
  const ctx: EncryptionContext = Object.assign(Object.create(null), decryptOnly);
  ctx[TYPE] = BEACON_TYPE;
  delete ctx[VERSION];
  return ctx;
}

/** The item to store for a KMS context and ciphertext: every pair but `tablename`, plus `enc`. */
export function itemFromContext(ctx: Readonly<EncryptionContext>, enc: Uint8Array): BranchKeyItem {
  const item: Record<string, unknown> = {};
  for (const k of Object.keys(ctx)) if (k !== TABLE_NAME) item[k] = ctx[k];
  item[ENC] = new Uint8Array(enc);
  return item as unknown as BranchKeyItem;
}

const malformed = (what: string): BranchKeyStoreError =>
  new BranchKeyStoreError('MALFORMED_ITEM', `branch key item ${what}`);

/**
 * Checks an item read from storage against the record format and the request, and returns its
 * authenticated encryption context (spec "Encryption Context": every attribute but `enc`, plus
 * `tablename`). Throws BranchKeyStoreError('MALFORMED_ITEM') naming the field, never values.
 */
export function checkItem(
  item: unknown,
  expected: { branchKeyId: string; type: BranchKeyItemType },
  logicalKeyStoreName: string,
): { item: BranchKeyItem; context: EncryptionContext } {
  if (item === null || typeof item !== 'object') throw malformed('is not an object');
  const it = item as Record<string, unknown>;
  if (!(it[ENC] instanceof Uint8Array) || it[ENC].length === 0) throw malformed(`lacks ${ENC} (binary)`);
  for (const f of [BRANCH_KEY_ID, TYPE, KMS_ARN, CREATE_TIME, HIERARCHY_VERSION]) {
    if (typeof it[f] !== 'string' || (it[f] as string).length === 0) throw malformed(`lacks ${f} (string)`);
  }
  if (!/^[0-9]+$/.test(it[HIERARCHY_VERSION] as string)) throw malformed(`has a ${HIERARCHY_VERSION} that is not a number`);
  if (it[BRANCH_KEY_ID] !== expected.branchKeyId) throw malformed(`names another ${BRANCH_KEY_ID}`);
  if (it[TYPE] !== expected.type) throw malformed(`has another ${TYPE}`);
  const type = it[TYPE] as string;
  if (type === ACTIVE_TYPE) {
    if (typeof it[VERSION] !== 'string' || !(it[VERSION] as string).startsWith(VERSION_PREFIX)) {
      throw malformed(`of type ${ACTIVE_TYPE} lacks ${VERSION} (${VERSION_PREFIX}<version>)`);
    }
  } else if (it[VERSION] !== undefined) {
    throw malformed(`of type ${type} has a ${VERSION}`);
  }
  if (Object.hasOwn(it, TABLE_NAME)) throw malformed(`has a ${TABLE_NAME} attribute`);
  const context: EncryptionContext = Object.create(null);
  for (const k of Object.keys(it)) {
    if (k === ENC) continue;
    const v = it[k];
    if (typeof v !== 'string') throw malformed(`has a non-string attribute ${JSON.stringify(k)}`);
    context[k] = v;
  }
  context[TABLE_NAME] = logicalKeyStoreName;
  return { item: it as unknown as BranchKeyItem, context };
}

/** The version a branch key item holds: `version` of an ACTIVE item, else the rest of `type`. */
export function versionOf(context: Readonly<EncryptionContext>): string {
  const v = context[TYPE] === ACTIVE_TYPE ? context[VERSION]! : context[TYPE]!;
  if (!v.startsWith(VERSION_PREFIX)) throw malformed(`has no ${VERSION_PREFIX} version`);
  return v.slice(VERSION_PREFIX.length);
}

/** "Custom Encryption Context From Authenticated Encryption Context": the `aws-crypto-ec:` pairs, unprefixed. */
export function customContextOf(context: Readonly<EncryptionContext>): EncryptionContext {
  // Object.fromEntries defines properties: a "__proto__" key stays a key.
  return Object.fromEntries(
    Object.keys(context)
      .filter((k) => k.startsWith(CUSTOM_PREFIX))
      .map((k) => [k.slice(CUSTOM_PREFIX.length), context[k]!]),
  );
}
