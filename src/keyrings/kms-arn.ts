/**
 * AWS KMS identifiers as the ESDK reads them (aws-encryption-sdk-specification,
 * framework/aws-kms/aws-kms-key-arn.md).
 */

export interface KmsArn {
  partition: string;
  region: string;
  account: string;
  resourceType: 'key' | 'alias';
  /** Key id (`1234abcd-...`, `mrk-...`) or alias name without the `alias/` prefix. */
  resourceId: string;
}

/**
 * Parses a KMS ARN: exactly six `:`-separated parts, `arn`, a non-empty partition, service `kms`,
 * non-empty region and account, and a resource `key/<id>` or `alias/<name>` (split at the first
 * `/`; further `/` belong to the id). Returns undefined for anything else.
 */
export function parseKmsArn(value: string): KmsArn | undefined {
  const parts = value.split(':');
  if (parts.length !== 6) return undefined;
  const [arn, partition, service, region, account, resource] = parts as [string, string, string, string, string, string];
  if (arn !== 'arn' || partition === '' || service !== 'kms' || region === '' || account === '') return undefined;
  const slash = resource.indexOf('/');
  if (slash <= 0) return undefined;
  const resourceType = resource.slice(0, slash);
  const resourceId = resource.slice(slash + 1);
  if ((resourceType !== 'key' && resourceType !== 'alias') || resourceId === '') return undefined;
  return { partition, region, account, resourceType, resourceId };
}

/** A valid KMS ARN whose resource type is `key`: the only form KMS returns as `KeyId`. */
export function parseKeyArn(value: string): KmsArn | undefined {
  const arn = parseKmsArn(value);
  return arn !== undefined && arn.resourceType === 'key' ? arn : undefined;
}

export type KmsIdentifierKind = 'key-arn' | 'alias-arn' | 'alias-name' | 'key-id';

/**
 * Classifies a configured key identifier: a key ARN, an alias ARN, an alias name (`alias/...`) or
 * a bare key id. Returns undefined for strings that look like an ARN but are not a valid KMS ARN.
 */
export function kmsIdentifierKind(id: string): KmsIdentifierKind | undefined {
  if (id.startsWith('arn:')) {
    const arn = parseKmsArn(id);
    if (arn === undefined) return undefined;
    return arn.resourceType === 'key' ? 'key-arn' : 'alias-arn';
  }
  if (id.startsWith('alias/')) return id.length > 'alias/'.length ? 'alias-name' : undefined;
  // A key id is the resource id of a key ARN; it cannot contain ':' (the ARN separator).
  return id.includes(':') ? undefined : 'key-id';
}

/**
 * Is this KMS ARN a multi-Region key (aws-kms-key-arn.md, "Identifying an AWS KMS multi-Region
 * ARN")? A key ARN whose key id begins with `mrk-`; an alias ARN never is, whatever its name (an
 * alias may be called `mrk-...`). Throws a TypeError for a string that is not a valid KMS ARN.
 */
export function isMultiRegionKmsArn(value: string): boolean {
  const arn = parseKmsArn(value);
  if (arn === undefined) throw new TypeError('not a valid AWS KMS ARN');
  return arn.resourceType === 'key' && arn.resourceId.startsWith('mrk-');
}

/**
 * Is this KMS identifier a multi-Region key (aws-kms-key-arn.md, "Identifying an AWS KMS
 * multi-Region identifier")? `arn:...` is judged as an ARN (and throws when invalid), `alias/...` is
 * never one, a bare key id is one when it begins with `mrk-`.
 */
export function isMultiRegionKmsIdentifier(value: string): boolean {
  if (value.startsWith('arn:')) return isMultiRegionKmsArn(value);
  if (value.startsWith('alias/')) return false;
  return value.startsWith('mrk-');
}
