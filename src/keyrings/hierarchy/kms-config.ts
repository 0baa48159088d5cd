/**
 * The branch key store's AWS KMS configuration (framework/branch-key-store.md, "AWS KMS
 * Configuration", "AWS Key ARN Compatibility"): which KMS key wraps branch keys, and which stored
 * `kms-arn` values the store accepts when it reads items.
 */
import { parseKmsArn, type KmsArn } from '../kms-arn.js';

/**
 * - `{ kmsKeyArn }`: "KMS Key ARN", single-Region compatibility: a stored `kms-arn` must equal it exactly.
 * - `{ kmsMrkKeyArn }`: "KMS MRKey ARN": a stored multi-Region key ARN of another Region is accepted
 *   (all parts but the Region equal); requests go to the configured ARN.
 * - `'discovery'`: read-only; any stored key ARN (not an alias), requests go to the stored ARN.
 * - `{ mrDiscoveryRegion }`: read-only; like discovery, but a multi-Region key ARN is moved to this Region.
 * The ARNs must be key ARNs (`arn:<partition>:kms:<region>:<account>:key/<id>`), never aliases.
 */
export type BranchKeyStoreKmsConfiguration =
  | { kmsKeyArn: string }
  | { kmsMrkKeyArn: string }
  | 'discovery'
  | { mrDiscoveryRegion: string };

export interface ResolvedKmsConfiguration {
  readonly kind: 'kmsKeyArn' | 'kmsMrkKeyArn' | 'discovery' | 'mrDiscovery';
  /** The configured key ARN (kmsKeyArn, kmsMrkKeyArn). */
  readonly arn: string | undefined;
  /** The Region a default KMS client is built for (the ARN's Region, or the MRDiscovery Region). */
  readonly region: string | undefined;
  /** The configuration as given (a frozen copy), for GetKeyStoreInfo. */
  readonly given: BranchKeyStoreKmsConfiguration;
}

const OPTION = 'kmsConfiguration';

function keyArnOption(value: unknown, name: string): string {
  if (typeof value !== 'string' || parseKmsArn(value)?.resourceType !== 'key') {
    throw new TypeError(`${OPTION}.${name} must be a KMS key ARN (arn:<partition>:kms:<region>:<account>:key/<id>), not an alias or key id`);
  }
  return value;
}

/** Validates the configuration once, at construction. */
export function resolveKmsConfiguration(value: unknown): ResolvedKmsConfiguration {
  if (value === 'discovery') return Object.freeze({ kind: 'discovery', arn: undefined, region: undefined, given: 'discovery' });
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`${OPTION} must be { kmsKeyArn }, { kmsMrkKeyArn }, 'discovery' or { mrDiscoveryRegion }`);
  }
  const keys = Object.keys(value);
  if (keys.length !== 1) {
    throw new TypeError(`${OPTION} must have exactly one of kmsKeyArn, kmsMrkKeyArn, mrDiscoveryRegion`);
  }
  const v = value as Record<string, unknown>;
  if (keys[0] === 'kmsKeyArn' || keys[0] === 'kmsMrkKeyArn') {
    const arn = keyArnOption(v[keys[0]], keys[0]);
    const kind = keys[0];
    return Object.freeze({
      kind,
      arn,
      region: parseKmsArn(arn)!.region,
      given: Object.freeze(kind === 'kmsKeyArn' ? { kmsKeyArn: arn } : { kmsMrkKeyArn: arn }),
    });
  }
  if (keys[0] === 'mrDiscoveryRegion') {
    const region = v.mrDiscoveryRegion;
    if (typeof region !== 'string' || !/^[a-z0-9-]+$/.test(region)) {
      throw new TypeError(`${OPTION}.mrDiscoveryRegion must be a Region name such as us-east-1`);
    }
    return Object.freeze({ kind: 'mrDiscovery', arn: undefined, region, given: Object.freeze({ mrDiscoveryRegion: region }) });
  }
  throw new TypeError(`${OPTION}.${keys[0]} is not a KMS configuration (allowed: kmsKeyArn, kmsMrkKeyArn, mrDiscoveryRegion, or 'discovery')`);
}

const isMrk = (a: KmsArn): boolean => a.resourceType === 'key' && a.resourceId.startsWith('mrk-');

/**
 * framework/aws-kms/aws-kms-mrk-match-for-decrypt.md: identical identifiers match; otherwise both
 * must be multi-Region key ARNs equal in everything but the Region.
 */
export function mrkMatch(a: string, b: string): boolean {
  if (a === b) return true;
  const pa = parseKmsArn(a);
  const pb = parseKmsArn(b);
  if (pa === undefined || pb === undefined || !isMrk(pa) || !isMrk(pb)) return false;
  return pa.partition === pb.partition && pa.account === pb.account && pa.resourceId === pb.resourceId;
}

/**
 * The KeyId for requests about an item whose `kms-arn` is `stored` ("AWS KMS Branch Key
 * Decryption"), or undefined when the stored ARN is not compatible with the configuration.
 */
export function keyIdFor(config: ResolvedKmsConfiguration, stored: string): string | undefined {
  switch (config.kind) {
    case 'kmsKeyArn':
      return stored === config.arn ? config.arn : undefined;
    case 'kmsMrkKeyArn':
      return mrkMatch(config.arn!, stored) ? config.arn : undefined;
    case 'discovery':
      return parseKmsArn(stored)?.resourceType === 'key' ? stored : undefined;
    case 'mrDiscovery': {
      const p = parseKmsArn(stored);
      if (p === undefined || p.resourceType !== 'key') return undefined;
      if (!isMrk(p)) return stored;
      return `arn:${p.partition}:kms:${config.region}:${p.account}:key/${p.resourceId}`;
    }
  }
}
