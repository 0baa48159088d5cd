/**
 * Items to and from DynamoDB attribute maps, with the attribute types of the specification's
 * "Record Format" (framework/branch-key-store.md): `enc` B, `hierarchy-version` N, everything else
 * S. Facts checked against @aws-crypto/branch-keystore-node 5.0.2, which writes `hierarchy-version`
 * as N "1" and `enc` as B, and reads them back through the SDK's unmarshalling (N as a number).
 *
 * Reading: a stored item that does not fit is refused with BranchKeyStoreError('MALFORMED_ITEM')
 * naming the attribute and the type expected, never a value (items hold wrapped keys and
 * encryption context). Writing: an item the store built wrong is a programming error, TypeError.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { BranchKeyStoreError } from '../errors.js';
import type { BranchKeyItem, BranchKeyItemType } from '../keyrings/hierarchy/storage.js';
import { ACTIVE_TYPE, ATTRIBUTE_TYPES, CUSTOM_CONTEXT_PREFIX, REQUIRED_ATTRIBUTES, isItemType } from './schema.js';

export type AttributeMap = Record<string, AttributeValue>;

/** DynamoDB N for `hierarchy-version`: a non-negative integer in canonical decimal text (DynamoDB normalizes numbers). */
const DECIMAL = /^(0|[1-9][0-9]{0,37})$/;

function typeOf(name: string): 'S' | 'B' | 'N' | undefined {
  if (Object.hasOwn(ATTRIBUTE_TYPES, name)) return ATTRIBUTE_TYPES[name];
  return name.startsWith(CUSTOM_CONTEXT_PREFIX) && name.length > CUSTOM_CONTEXT_PREFIX.length ? 'S' : undefined;
}

/** An attribute name for a message: names are schema (encryption context keys), but bounded. */
function shown(name: string): string {
  return JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}...` : name);
}

/** The attribute map of `item` (PutItem / TransactWriteItems Put). `where` names the argument in errors. */
export function encodeItem(item: BranchKeyItem, where: string): AttributeMap {
  if (typeof item !== 'object' || item === null) throw new TypeError(`${where} must be a branch key item`);
  const out: AttributeMap = {};
  for (const name of REQUIRED_ATTRIBUTES) {
    if (!Object.hasOwn(item, name)) throw new TypeError(`${where} has no ${shown(name)} attribute`);
  }
  if (!isItemType(item.type)) throw new TypeError(`${where}.type must be branch:ACTIVE, beacon:ACTIVE or branch:version:<version>`);
  if ((item.type === ACTIVE_TYPE) !== Object.hasOwn(item, 'version')) {
    throw new TypeError(`${where}.version must be present on the branch:ACTIVE item and only there`);
  }
  for (const [name, value] of Object.entries(item)) {
    const type = typeOf(name);
    if (type === undefined) throw new TypeError(`${where} has an attribute outside the record format: ${shown(name)}`);
    if (type === 'B') {
      if (!(value instanceof Uint8Array) || value.length === 0) throw new TypeError(`${where}[${shown(name)}] must be a non-empty Uint8Array`);
      out[name] = { B: value };
    } else if (type === 'N') {
      if (typeof value !== 'string' || !DECIMAL.test(value)) throw new TypeError(`${where}[${shown(name)}] must be a non-negative integer as decimal text`);
      out[name] = { N: value };
    } else {
      if (typeof value !== 'string') throw new TypeError(`${where}[${shown(name)}] must be a string`);
      // DynamoDB refuses empty strings in key attributes (and `type` is checked above).
      if (name === 'branch-key-id' && value.length === 0) throw new TypeError(`${where}["branch-key-id"] must be a non-empty string`);
      out[name] = { S: value };
    }
  }
  return out;
}

function malformed(type: BranchKeyItemType, what: string): BranchKeyStoreError {
  return new BranchKeyStoreError('MALFORMED_ITEM', `the stored ${type} item is not in the branch key record format: ${what}`);
}

/** The one member of a DynamoDB AttributeValue union, or undefined when it has none or several. */
function member(value: unknown): [string, unknown] | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const set = Object.entries(value).filter(([, v]) => v !== undefined);
  return set.length === 1 ? set[0] : undefined;
}

/**
 * The item of a GetItem answer asked for with `branchKeyId` and `type`. Every attribute must be
 * of the record format with its type; the key attributes must be the ones asked for (a server
 * answering with another item is refused, not trusted).
 */
export function decodeItem(map: Record<string, unknown>, branchKeyId: string, type: BranchKeyItemType): BranchKeyItem {
  const out: Record<string, string | Uint8Array> = {};
  for (const [name, value] of Object.entries(map)) {
    const expected = typeOf(name);
    if (expected === undefined) throw malformed(type, `attribute ${shown(name)} is outside the record format`);
    const m = member(value);
    if (!m || m[0] !== expected) throw malformed(type, `attribute ${shown(name)} is not of DynamoDB type ${expected}`);
    const v = m[1];
    if (expected === 'B') {
      if (!(v instanceof Uint8Array) || v.length === 0) throw malformed(type, `attribute ${shown(name)} is not a non-empty binary`);
      out[name] = new Uint8Array(v); // our own copy: the SDK's buffer may be a view of its response
    } else if (expected === 'N') {
      if (typeof v !== 'string' || !DECIMAL.test(v)) throw malformed(type, `attribute ${shown(name)} is not a non-negative integer`);
      out[name] = v;
    } else {
      if (typeof v !== 'string') throw malformed(type, `attribute ${shown(name)} is not a string`);
      out[name] = v;
    }
  }
  for (const name of REQUIRED_ATTRIBUTES) {
    if (!Object.hasOwn(out, name)) throw malformed(type, `attribute ${shown(name)} is missing`);
  }
  if (out['branch-key-id'] !== branchKeyId || out.type !== type) throw malformed(type, 'its key attributes are not the ones asked for');
  if (type === ACTIVE_TYPE) {
    if (!Object.hasOwn(out, 'version')) throw malformed(type, 'attribute "version" is missing');
  } else if (Object.hasOwn(out, 'version')) {
    // "Record Format": `version` "Only exists if `type` is the string literal "branch:ACTIVE"".
    throw malformed(type, 'attribute "version" exists on an item other than branch:ACTIVE');
  }
  return out as unknown as BranchKeyItem;
}
