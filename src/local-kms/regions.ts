import type { KmsCore } from './core.js';
import type { KeyRecord } from './model.js';
import { err } from './ops/util.js';

/**
 * The Regions one local KMS serves. Each Region is its own KmsCore (its keys, aliases, ARNs and
 * store), as each AWS Region is its own KMS: a request goes to the Region of its SigV4 credential
 * scope (or the default Region when it names none), and nothing is shared between Regions except
 * what multi-Region keys share (key id, key material, key spec and usage, origin, rotation), which
 * the multi-Region operations copy explicitly (ops/multi-region.ts).
 *
 * A Region is opened on first use and stays open only once it holds something: a request that
 * names an empty Region is answered by a core that is dropped afterwards (and was never written to
 * disk), so requests naming many Regions cannot use up MAX_REGIONS (LocalKmsService.call).
 */

/** Region names as AWS writes them: us-east-1, eu-central-2, us-gov-west-1, cn-north-1, ap-southeast-7. */
export const REGION_PATTERN = /^[a-z]{2,4}(-[a-z]+)+-\d{1,2}$/;

/**
 * The Regions of each partition, as the AWS SDKs' partition data defines them (regionRegex of
 * @aws-sdk's partitions.json), most specific first. A name no partition claims is not a Region.
 */
const PARTITIONS: readonly (readonly [string, RegExp])[] = [
  ['aws-us-gov', /^us-gov-[a-z]+-\d+$/],
  ['aws-iso', /^us-iso-[a-z]+-\d+$/],
  ['aws-iso-b', /^us-isob-[a-z]+-\d+$/],
  ['aws-iso-e', /^eu-isoe-[a-z]+-\d+$/],
  ['aws-iso-f', /^us-isof-[a-z]+-\d+$/],
  ['aws-eusc', /^eusc-de-[a-z]+-\d+$/],
  ['aws-cn', /^cn-[a-z]+-\d+$/],
  ['aws', /^(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d+$/],
];

/**
 * Most Regions one local KMS serves. AWS has about 40 (all partitions); the bound keeps requests
 * that name made-up Regions from growing the heap without limit.
 */
export const MAX_REGIONS = 64;

/** The partition a Region belongs to (ARNs, and which Regions one account may use); undefined for a name no partition claims. */
export function partitionOfRegion(region: string): string | undefined {
  for (const [partition, re] of PARTITIONS) if (re.test(region)) return partition;
  return undefined;
}

export function checkRegionName(region: unknown, name = 'region'): string {
  if (typeof region !== 'string' || !REGION_PATTERN.test(region) || partitionOfRegion(region) === undefined) {
    throw new RangeError(`${name} must be an AWS Region name such as us-east-1, got '${String(region).slice(0, 64)}'`);
  }
  return region;
}

/** One copy of a multi-Region key: where it is and its record there. */
export interface RegionalCopy {
  region: string;
  core: KmsCore;
  key: KeyRecord;
}

export class RegionSet {
  readonly #cores = new Map<string, KmsCore>();
  readonly #open: (region: string) => KmsCore;
  readonly #home: KmsCore;
  readonly partition: string;

  /** `home` is already open; `open` makes the core of another Region of the same partition. */
  constructor(home: KmsCore, open: (region: string) => KmsCore) {
    this.#home = home;
    this.#cores.set(home.region, home);
    this.#open = open;
    this.partition = home.partition;
  }

  /** Whether `region` is one this KMS may serve: well formed and in the partition of its home Region. */
  serves(region: string): boolean {
    return REGION_PATTERN.test(region) && region.length <= 32 && partitionOfRegion(region) === this.partition;
  }

  /**
   * The core of `region`, opened on first use. A newly opened core that still holds nothing when
   * the request is done is dropped again (release).
   */
  core(region: string): KmsCore {
    const open = this.#cores.get(region);
    if (open) return open;
    if (!this.serves(region)) {
      // What AWS answers a request whose credential scope names a Region outside the partition of
      // the account's credentials.
      throw err('UnrecognizedClientException', 'The security token included in the request is invalid.');
    }
    // A Region emptied while another Region's request ran (its keys' deletions run in every
    // Region's tick) was not released: drop the idle empty ones before counting.
    if (this.#cores.size >= MAX_REGIONS) for (const c of [...this.#cores.values()]) this.release(c, c.inflight > 0);
    if (this.#cores.size >= MAX_REGIONS) {
      throw err('LimitExceededException', `The local KMS serves at most ${MAX_REGIONS} Regions; ${region} would be one more.`);
    }
    const core = this.#open(region);
    this.#cores.set(region, core);
    return core;
  }

  /**
   * Drops the core of `region` if it holds no key or alias and no request is using it (`busy`):
   * an empty Region costs nothing, so made-up Region names cannot fill MAX_REGIONS.
   */
  release(core: KmsCore, busy: boolean): void {
    if (busy || core === this.#home || core.keys.size > 0 || core.aliases.size > 0) return;
    if (this.#cores.get(core.region) === core) this.#cores.delete(core.region);
  }

  get(region: string): KmsCore | undefined {
    return this.#cores.get(region);
  }

  all(): KmsCore[] {
    return [...this.#cores.values()];
  }

  /** Every copy of the multi-Region key `keyId` (primary and replicas), in Region name order. */
  copies(keyId: string): RegionalCopy[] {
    const out: RegionalCopy[] = [];
    for (const core of this.#cores.values()) {
      const key = core.keys.get(keyId);
      if (key?.multiRegion) out.push({ region: core.region, core, key });
    }
    return out.sort((a, b) => (a.region < b.region ? -1 : a.region > b.region ? 1 : 0));
  }
}
