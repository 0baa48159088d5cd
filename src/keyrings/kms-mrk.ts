/**
 * Multi-Region key (MRK) rules of the AWS Encryption SDK specification, for `KmsKeyring` with
 * `mrkAware: true` (framework/aws-kms/aws-kms-mrk-keyring.md and the strict builder of
 * aws-kms-mrk-multi-keyrings.md) and with `discoveryRegions` (aws-kms-mrk-discovery-keyring.md and
 * the discovery builder of aws-kms-mrk-multi-keyrings.md):
 *
 * - MRK match for decrypt (aws-kms-mrk-match-for-decrypt.md): which configured key may decrypt
 *   which encrypted data key;
 * - MRKs are unique (aws-kms-mrk-are-unique.md): two related replicas configured together would
 *   leave it open which Region to ask, so that configuration is refused;
 * - the plans of Decrypt requests both MRK-aware modes send, in the order the specification's
 *   multi-keyring would send them.
 *
 * Why MRKs need their own rules: a multi-Region key and its replicas share key id (`mrk-...`) and
 * key material, so a data key wrapped by the us-east-1 primary can be unwrapped by the eu-west-1
 * replica, but the message names the primary's ARN. Matching ARNs exactly would send the reader to
 * us-east-1; these rules let it use the Region it is configured for instead
 * (https://docs.aws.amazon.com/kms/latest/developerguide/multi-region-keys-overview.html).
 */
import type { EncryptedDataKey } from '../types.js';
import { KeyringError } from '../errors.js';
import { isMultiRegionKmsIdentifier, parseKmsArn, type KmsArn } from './kms-arn.js';

/** One KMS Decrypt a KMS keyring intends to send for one EDK. */
export interface DecryptAttempt {
  edk: EncryptedDataKey;
  /** KeyId sent to KMS. */
  keyId: string;
  /** The KeyId KMS must answer with, or the answer is refused (collected as an error). */
  expectKeyId: string;
  /** Region whose client sends it (from clientForRegion or discoveryRegions), or undefined for options.client. */
  region: string | undefined;
  /** True when we cannot tell from the ARN whether the EDK is ours (alias names and alias ARNs). */
  speculative: boolean;
}

/** An `aws-kms` EDK whose provider info is a valid key ARN. */
export interface KmsEdk {
  edk: EncryptedDataKey;
  /** Provider info as text: the key ARN that wrapped it. */
  info: string;
  arn: KmsArn;
}

/**
 * AWS KMS MRK Match for Decrypt (aws-kms-mrk-match-for-decrypt.md): true when `a` and `b` are the
 * same identifier, or both are multi-Region key ARNs that differ in their Region at most
 * (partition, service, account, resource type and key id equal). Any other pair, including a
 * single-Region key and its namesake in another Region, and a bare `mrk-` key id (it has no
 * partition or account to compare), is false. An invalid ARN matches nothing but itself.
 */
export function mrkMatchForDecrypt(a: string, b: string): boolean {
  if (a === b) return true;
  if (!isMrk(a) || !isMrk(b)) return false;
  const x = parseKmsArn(a);
  const y = parseKmsArn(b);
  // Both are MRK identifiers; bare `mrk-` ids have no ARN parts to compare (the service part of
  // both is `kms`, parseKmsArn insists on it).
  if (x === undefined || y === undefined) return false;
  return (
    x.partition === y.partition &&
    x.account === y.account &&
    x.resourceType === y.resourceType &&
    x.resourceId === y.resourceId
  );
}

function isMrk(id: string): boolean {
  try {
    return isMultiRegionKmsIdentifier(id);
  } catch {
    return false; // an invalid ARN is no multi-Region key
  }
}

/**
 * Assert AWS KMS MRK are unique (aws-kms-mrk-are-unique.md): among the multi-Region identifiers
 * in `ids` (key ARNs and bare key ids beginning with `mrk-`), no key id may occur twice, e.g. a
 * primary and its replica. Throws a TypeError naming `option` and every identifier involved, not
 * only the first pair. Single-Region keys and aliases are not checked here.
 */
export function assertMrksAreUnique(ids: readonly string[], option: string): void {
  const byKeyId = new Map<string, string[]>();
  for (const id of ids) {
    if (!isMrk(id)) continue;
    const keyId = parseKmsArn(id)?.resourceId ?? id;
    const same = byKeyId.get(keyId);
    if (same === undefined) byKeyId.set(keyId, [id]);
    else same.push(id);
  }
  const dupes = [...byKeyId.values()].filter((list) => list.length > 1).flat();
  if (dupes.length === 0) return;
  throw new TypeError(
    `${option} names the same multi-Region key more than once (${dupes.map((d) => JSON.stringify(d)).join(', ')}): ` +
      'a primary and its replicas share one key id, so it would be ambiguous which Region to call; configure one of them ' +
      '(AWS Encryption SDK specification, aws-kms-mrk-are-unique.md)',
  );
}

/** `arn` with its Region replaced by `region`, every other part kept (aws-kms-mrk-discovery-keyring.md, "OnDecrypt"). */
export function arnInRegion(arn: KmsArn, region: string): string {
  return `arn:${arn.partition}:kms:${region}:${arn.account}:${arn.resourceType}/${arn.resourceId}`;
}

/**
 * The Decrypt requests of a strict MRK-aware keyring (aws-kms-mrk-keyring.md "OnDecrypt", composed
 * as aws-kms-mrk-multi-keyrings.md composes one keyring per key: generator first, then the others,
 * each trying its matching EDKs in message order). An EDK matches a configured key when
 * mrkMatchForDecrypt holds; the request goes to the configured key's Region with KeyId = the
 * configured identifier, and KMS must answer with that same identifier.
 */
export function strictMrkAttempts(
  keys: readonly { id: string; region: string | undefined }[],
  edks: readonly KmsEdk[],
): DecryptAttempt[] {
  const out: DecryptAttempt[] = [];
  for (const k of keys) {
    for (const e of edks) {
      if (!mrkMatchForDecrypt(k.id, e.info)) continue;
      out.push({ edk: e.edk, keyId: k.id, expectKeyId: k.id, region: k.region, speculative: false });
    }
  }
  return out;
}

/**
 * The Decrypt requests of MRK-aware discovery bound to `regions` (aws-kms-mrk-discovery-keyring.md
 * "OnDecrypt", one keyring per Region as aws-kms-mrk-multi-keyrings.md composes them, in the order
 * the Regions were given). Per Region: EDKs outside the discovery filter are skipped; a
 * single-Region key is used only in its own Region; a multi-Region key is asked for in this Region,
 * its ARN rewritten to name it, and KMS must answer with the rewritten ARN.
 */
export function discoveryMrkAttempts(
  regions: readonly string[],
  edks: readonly KmsEdk[],
  inFilter: (arn: KmsArn) => boolean,
): DecryptAttempt[] {
  const out: DecryptAttempt[] = [];
  for (const region of regions) {
    for (const e of edks) {
      if (!inFilter(e.arn)) continue;
      const mrk = e.arn.resourceId.startsWith('mrk-'); // e.arn is a key ARN (KmsEdk)
      if (!mrk && e.arn.region !== region) continue;
      const keyId = mrk ? arnInRegion(e.arn, region) : e.info;
      out.push({ edk: e.edk, keyId, expectKeyId: keyId, region, speculative: false });
    }
  }
  return out;
}

/** Validates options.discoveryRegions: a non-empty list of distinct Region names. */
export function checkDiscoveryRegions(value: unknown, max: number): readonly string[] {
  const option = 'options.discoveryRegions';
  if (!Array.isArray(value) || value.length === 0) {
    throw new TypeError(`${option} must be a non-empty array of AWS Region names, e.g. ['eu-west-1']`);
  }
  if (value.length > max) throw new RangeError(`${option} must name at most ${max} Regions`);
  value.forEach((r, i) => {
    // A Region goes into an ARN (the rewritten KeyId): ':' or '/' would make another ARN.
    if (typeof r !== 'string' || r.length === 0 || r.length > 64 || /[:/\s]/.test(r)) {
      throw new TypeError(`${option}[${i}] must be an AWS Region name such as eu-west-1 (1 to 64 characters, no ':', '/' or spaces)`);
    }
  });
  if (new Set(value).size !== value.length) throw new TypeError(`${option} must not contain duplicates`);
  return Object.freeze([...(value as string[])]);
}

/**
 * aws-kms-mrk-discovery-keyring.md, "Initialization": the keyring SHOULD fail when its Region is not
 * its client's. An @aws-sdk/client-kms client tells its Region (`config.region`, a string or an
 * async provider); a client that does not (e.g. the local KMS in-process client) is taken as given.
 */
export async function checkClientRegion(client: unknown, region: string): Promise<void> {
  const provider = (client as { config?: { region?: unknown } } | null)?.config?.region;
  let actual: unknown = provider;
  if (typeof provider === 'function') {
    try {
      actual = await (provider as () => Promise<unknown>)();
    } catch {
      return; // no Region configured: the SDK itself fails the first request
    }
  }
  if (typeof actual === 'string' && actual !== region) {
    throw new KeyringError(`options.client addresses Region ${actual} but options.discoveryRegions is ["${region}"]: MRK discovery sends nothing outside its Regions`);
  }
}
