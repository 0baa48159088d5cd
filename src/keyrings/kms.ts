/**
 * AWS KMS keyring (aws-encryption-sdk-specification, framework/aws-kms/aws-kms-keyring.md, and
 * aws-kms-discovery-keyring.md for discovery mode).
 *
 * Encrypt: the first key id is the generator (KMS GenerateDataKey); every further key id wraps
 * the same data key with KMS Encrypt, so any one of the keys (e.g. in another region) can decrypt.
 * Each EDK is `aws-kms` / key ARN returned by KMS / CiphertextBlob.
 *
 * Decrypt: only EDKs whose provider info (the key ARN KMS returned on encrypt) equals a configured
 * key ARN are tried (aws-kms-keyring.md, "OnDecrypt": the provider info must match the configured
 * identifier), one at a time, with KMS Decrypt and the message's encryption context; the key ARN
 * KMS answers with must equal the EDK's provider info, so a ciphertext blob that names another key
 * can never be passed off as ours. Alias names, alias ARNs and bare key ids therefore decrypt
 * nothing unless `resolveOnDecrypt: true` lets KMS resolve them (see that option).
 *
 * Multi-Region keys (`mrkAware: true`, `discoveryRegions`): see those options and kms-mrk.ts.
 *
 * Regions: key ARNs (configured, or named by a message in discovery mode) are sent to
 * `clientForRegion(region)`. A Region's client is kept only once KMS has answered there, and at
 * most MAX_REGION_CLIENTS of them, so messages naming made-up Regions cannot grow the heap. A
 * Region without a client is an error collected for that EDK; the next EDK is tried.
 */
import { KeyringError, KmsError, MalformedMessageError, NoDecryptableKeyError } from '../errors.js';
import type {
  EncryptedDataKey,
  Keyring,
  KeyringDecryptInput,
  KeyringEncryptInput,
  KeyringEncryptOutput,
  KmsClient,
} from '../types.js';
import type { KMSClient } from '@aws-sdk/client-kms';
import { checkGivenDataKey, decodeUtf8, keyringSuite, plainContext, type KmsCallCounter } from './common.js';
import { createDefaultKmsClient, toKmsClient, type CountedKmsClient } from './kms-client.js';
import { kmsIdentifierKind, parseKeyArn, parseKmsArn, type KmsArn, type KmsIdentifierKind } from './kms-arn.js';
import {
  assertMrksAreUnique,
  checkDiscoveryRegions,
  discoveryMrkAttempts,
  strictMrkAttempts,
  type DecryptAttempt,
  type KmsEdk,
  checkClientRegion,
} from './kms-mrk.js';

export const KMS_PROVIDER_ID = 'aws-kms';

export interface KmsDiscoveryFilter {
  /** AWS account ids whose keys may be used. */
  accountIds: string[];
  /** AWS partition, e.g. `aws`, `aws-cn`, `aws-us-gov`. */
  partition: string;
}

export interface KmsKeyringOptions {
  /** One KMS key: key ARN, key id, alias name (`alias/app`) or alias ARN. */
  keyId?: string;
  /** Several KMS keys; the first generates the data key, the others each encrypt a copy of it. */
  keyIds?: string[];
  /** An `@aws-sdk/client-kms` KMSClient or a `KmsClient`. Used for ids that are not ARNs (and for all ids without `clientForRegion`). */
  client?: KMSClient | KmsClient;
  /** Client for a region, used for key ARNs (the region is read from the ARN); called once per region. */
  clientForRegion?: (region: string) => KMSClient | KmsClient;
  /** KMS grant tokens sent with every request. */
  grantTokens?: string[];
  /** Decrypt-only mode: decrypt any `aws-kms` EDK with the key ARN it names. */
  discovery?: boolean;
  /**
   * Decrypt with configured identifiers that are not key ARNs (alias names, alias ARNs, bare key
   * ids) by letting KMS resolve them at decrypt time. Default false: as the AWS Encryption SDK
   * specification requires (aws-kms-keyring.md, "OnDecrypt") and AWS documents for decrypting KMS
   * keyrings, only key ARNs decrypt: an EDK is tried only when the key ARN it names equals a
   * configured key ARN, and an alias or key id decrypts nothing (the error says so). Encrypting
   * accepts every identifier either way.
   *
   * Security effect of true: for an alias, trust follows UpdateAlias. The keyring decrypts, and so
   * accepts as authentic, any message whose data key is wrapped by whichever key the alias names
   * when the message is read, so whoever may call kms:UpdateAlias on it (in the key's account)
   * decides which messages this reader accepts, and messages written before a re-pointing stop
   * decrypting. A bare key id resolves in the client's account and Region; KMS still has to answer
   * with the exact key ARN the EDK names. Not allowed with `discovery`.
   */
  resolveOnDecrypt?: boolean;
  /** With `discovery`: only keys of these accounts in this partition. */
  discoveryFilter?: KmsDiscoveryFilter;
  /**
   * Multi-Region-key-aware decryption (AWS Encryption SDK specification, aws-kms-mrk-keyring.md;
   * the ESDK's `AwsKmsMrkAwareSymmetricKeyringNode` for `keyId`,
   * `buildAwsKmsMrkAwareStrictMultiKeyringNode` for `keyIds`). Default false.
   *
   * With `keyId`/`keyIds`: an EDK is tried with a configured key ARN when the two are equal, or
   * when both name the same multi-Region key (`key/mrk-...`: same partition, account and key id)
   * in any Regions. The Decrypt goes to the configured key's Region (its `clientForRegion`
   * client) with KeyId = the configured ARN, and KMS must answer with that ARN. So a reader
   * configured with the eu-west-1 replica decrypts what the us-east-1 primary wrapped without
   * calling us-east-1. Single-Region keys still match only their exact ARN. Encrypting is
   * unchanged. `keyIds` must then all be ARNs (key or alias ARNs, aws-kms-mrk-multi-keyrings.md),
   * and may not name one multi-Region key twice, e.g. a primary and its replica: a TypeError
   * listing them all (aws-kms-mrk-are-unique.md). `keyId` takes any identifier; as with
   * `mrkAware: false`, only a key ARN decrypts. Not allowed with `resolveOnDecrypt`.
   *
   * With `discovery: true` it needs `discoveryRegions` (which implies it).
   *
   * Security effect: a replica is the same key material under a key policy of its own Region.
   * Configuring the replica ARN accepts messages wrapped by any related replica, i.e. whatever
   * the primary's account could wrap; it never accepts another account's or another key id's.
   */
  mrkAware?: boolean;
  /**
   * Multi-Region-key-aware discovery bound to these Regions (aws-kms-mrk-discovery-keyring.md; the
   * ESDK's `AwsKmsMrkAwareSymmetricDiscoveryKeyringNode` for one Region,
   * `buildAwsKmsMrkAwareDiscoveryMultiKeyringNode` for several). Only with `discovery: true`;
   * implies `mrkAware`. Non-empty, distinct Region names, at most MAX_REGION_CLIENTS.
   *
   * For each Region in the given order, each EDK in message order: a multi-Region key
   * (`key/mrk-...`) is decrypted in this Region with its ARN rewritten to this Region (KMS must
   * answer with that rewritten ARN); a single-Region key only when its ARN names this Region.
   * `discoveryFilter` applies first. Requests go to `clientForRegion(region)`, called once per
   * Region at construction; with `client` alone, exactly one Region may be given and `client`
   * must address it: an `@aws-sdk/client-kms` client's Region (resolved asynchronously) is read
   * before the first Decrypt, and another Region fails that decrypt with a KeyringError before any
   * request; a client that does not tell its Region is taken as given. Without either, a default
   * SDK client per Region.
   *
   * Security effect: no request ever leaves these Regions, whatever Regions a message names.
   */
  discoveryRegions?: string[];
}

interface ConfiguredKey {
  id: string;
  kind: KmsIdentifierKind;
  arn: KmsArn | undefined;
}

/**
 * Most Region clients a keyring keeps. AWS has a few dozen Regions across its partitions; a client
 * is kept only after KMS answered in its Region, so this bound only matters when a clientForRegion
 * sends every Region name to one endpoint that answers them all. Past it, clients are made per use.
 */
export const MAX_REGION_CLIENTS = 64;

export class KmsKeyring implements Keyring, KmsCallCounter {
  /** Configured key identifiers, generator first. Empty in discovery mode. */
  readonly keyIds: readonly string[];
  readonly discovery: boolean;
  readonly discoveryFilter: Readonly<{ accountIds: readonly string[]; partition: string }> | undefined;
  /** Multi-Region-key-aware matching (options.mrkAware, or implied by options.discoveryRegions). */
  readonly mrkAware: boolean;
  /** MRK-aware discovery Regions, in order (options.discoveryRegions); undefined otherwise. */
  readonly discoveryRegions: readonly string[] | undefined;

  readonly #keys: readonly ConfiguredKey[];
  readonly #grantTokens: string[] | undefined;
  readonly #client: CountedKmsClient | undefined;
  readonly #clientForRegion: ((region: string) => unknown) | undefined;
  /** Region clients KMS has answered through, at most MAX_REGION_CLIENTS (see #send). */
  readonly #regionClients = new Map<string, CountedKmsClient>();
  /** The clients of options.discoveryRegions, made at construction. */
  readonly #discoveryClients = new Map<string, CountedKmsClient>();
  /**
   * MRK discovery with one options.client: that client's own Region, read once before the first
   * Decrypt (an SDK client knows it only asynchronously), must be the discovery Region.
   */
  #discoveryClientRegion: { client: unknown; checked: Promise<void> | undefined } | undefined;
  readonly #resolveOnDecrypt: boolean;
  #calls = 0;

  constructor(options: KmsKeyringOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('KmsKeyring options must be an object');
    const { keyId, keyIds, client, clientForRegion, grantTokens, discovery, discoveryFilter, resolveOnDecrypt, mrkAware, discoveryRegions } =
      options;

    const modes = [keyId !== undefined, keyIds !== undefined, discovery !== undefined && discovery !== false];
    if (modes.filter(Boolean).length !== 1) {
      throw new TypeError('KmsKeyring needs exactly one of options.keyId, options.keyIds and options.discovery: true');
    }
    if (discovery !== undefined && typeof discovery !== 'boolean') {
      throw new TypeError('options.discovery must be a boolean');
    }
    this.discovery = discovery === true;

    let ids: string[] = [];
    if (keyId !== undefined) ids = [checkKeyId(keyId, 'options.keyId')];
    if (keyIds !== undefined) {
      if (!Array.isArray(keyIds) || keyIds.length === 0) {
        throw new TypeError('options.keyIds must be a non-empty array of KMS key identifiers');
      }
      ids = keyIds.map((k, i) => checkKeyId(k, `options.keyIds[${i}]`));
      if (new Set(ids).size !== ids.length) throw new TypeError('options.keyIds must not contain duplicates');
    }
    this.keyIds = Object.freeze(ids);
    this.#keys = Object.freeze(
      ids.map((id) => ({ id, kind: kmsIdentifierKind(id)!, arn: parseKmsArn(id) })),
    );

    if (resolveOnDecrypt !== undefined && typeof resolveOnDecrypt !== 'boolean') {
      throw new TypeError('options.resolveOnDecrypt must be a boolean');
    }
    if (resolveOnDecrypt === true && this.discovery) {
      throw new TypeError('options.resolveOnDecrypt only applies to configured keys, not to options.discovery: true');
    }
    this.#resolveOnDecrypt = resolveOnDecrypt === true;

    if (mrkAware !== undefined && typeof mrkAware !== 'boolean') throw new TypeError('options.mrkAware must be a boolean');
    if (discoveryRegions !== undefined) {
      if (!this.discovery) throw new TypeError('options.discoveryRegions is only allowed with options.discovery: true');
      if (mrkAware === false) throw new TypeError('options.discoveryRegions makes discovery multi-Region aware: leave out options.mrkAware: false');
      this.discoveryRegions = checkDiscoveryRegions(discoveryRegions, MAX_REGION_CLIENTS);
    } else if (mrkAware === true && this.discovery) {
      throw new TypeError('options.mrkAware with options.discovery needs options.discoveryRegions: the Region(s) to decrypt multi-Region keys in');
    }
    this.mrkAware = mrkAware === true || this.discoveryRegions !== undefined;
    if (this.mrkAware && this.#resolveOnDecrypt) {
      throw new TypeError('options.resolveOnDecrypt cannot be combined with options.mrkAware: KMS must answer with the configured key ARN');
    }
    if (this.mrkAware && keyIds !== undefined) {
      // aws-kms-mrk-multi-keyrings.md: every identifier of the strict builder is an ARN, and the
      // multi-Region ones are unique (aws-kms-mrk-are-unique.md).
      ids.forEach((id, i) => {
        if (parseKmsArn(id) === undefined) {
          throw new TypeError(`options.keyIds[${i}] must be a key or alias ARN with options.mrkAware (it names the Region to call)`);
        }
      });
      assertMrksAreUnique(ids, 'options.keyIds');
    }

    if (discoveryFilter !== undefined) {
      if (!this.discovery) throw new TypeError('options.discoveryFilter is only allowed with options.discovery: true');
      this.discoveryFilter = checkDiscoveryFilter(discoveryFilter);
    }

    if (grantTokens !== undefined) {
      if (!Array.isArray(grantTokens) || grantTokens.some((t) => typeof t !== 'string' || t.length === 0)) {
        throw new TypeError('options.grantTokens must be an array of non-empty strings');
      }
      this.#grantTokens = [...grantTokens];
    }

    if (clientForRegion !== undefined && typeof clientForRegion !== 'function') {
      throw new TypeError('options.clientForRegion must be a function (region: string) => KMSClient | KmsClient');
    }
    if (client !== undefined) this.#client = toKmsClient(client, 'options.client');
    if (clientForRegion !== undefined) {
      this.#clientForRegion = clientForRegion;
      if (client === undefined) {
        const notArn = this.#keys.find((k) => k.arn === undefined);
        if (notArn !== undefined) {
          throw new TypeError(
            `options.client is required for ${JSON.stringify(notArn.id)}: only a key or alias ARN names its region for options.clientForRegion`,
          );
        }
      }
    } else if (client === undefined) {
      // Neither given: SDK clients from the AWS environment, per region for ARNs (like the ESDK's
      // default client supplier), built and loaded on first use.
      this.#client = createDefaultKmsClient({});
      this.#clientForRegion = (region) => createDefaultKmsClient({ region });
    }

    if (this.discoveryRegions !== undefined) {
      // aws-kms-mrk-multi-keyrings.md: one client per Region from the regional client supplier.
      if (this.#clientForRegion === undefined) {
        if (this.discoveryRegions.length > 1) {
          throw new TypeError('options.discoveryRegions with several Regions needs options.clientForRegion: one options.client addresses one Region');
        }
        this.#discoveryClients.set(this.discoveryRegions[0]!, this.#client!);
        this.#discoveryClientRegion = { client, checked: undefined };
      } else {
        for (const region of this.discoveryRegions) {
          try {
            this.#discoveryClients.set(region, this.#newRegionClient(region));
          } catch (err) {
            throw new TypeError(`options.clientForRegion gave no KMS client for options.discoveryRegions entry ${JSON.stringify(region)}`, {
              cause: err,
            });
          }
        }
      }
    }
  }

  /**
   * Requests this keyring sent to KMS, successful or not, through whichever client (counted here:
   * Region clients that were not kept count too).
   */
  get kmsCalls(): number {
    return this.#calls;
  }

  async onEncrypt(input: KeyringEncryptInput): Promise<KeyringEncryptOutput> {
    if (this.discovery) throw new KeyringError('a discovery KmsKeyring can only decrypt');
    const suite = keyringSuite(input.suiteId);
    const context = plainContext(input.context);
    const grantTokens = this.#grantTokens;
    const edks: EncryptedDataKey[] = [];
    let dataKey: Uint8Array;
    let generated = false;
    let wrappers: readonly ConfiguredKey[];

    if (input.dataKey === undefined) {
      const generator = this.#keys[0]!;
      const region = this.#regionOf(generator);
      const client = this.#clientIn(region);
      const out = await this.#send(client, region, (c) =>
        c.generateDataKey({
          keyId: generator.id,
          numberOfBytes: suite.keyLength,
          encryptionContext: context,
          grantTokens,
        }),
      );
      // Spec: the plaintext must have the suite's key derivation input length and KeyId must be a key ARN.
      if (out.plaintext.length !== suite.keyLength) {
        out.plaintext.fill(0);
        throw new KeyringError(
          `KMS GenerateDataKey returned a ${out.plaintext.length}-byte data key; suite needs ${suite.keyLength}`,
        );
      }
      if (parseKeyArn(out.keyId) === undefined) {
        out.plaintext.fill(0);
        throw new KeyringError('KMS GenerateDataKey returned a KeyId that is not a key ARN');
      }
      dataKey = out.plaintext;
      generated = true;
      edks.push(edkOf(out.keyId, out.ciphertextBlob));
      wrappers = this.#keys.slice(1);
    } else {
      dataKey = checkGivenDataKey(input.dataKey, suite);
      wrappers = this.#keys;
    }

    try {
      // Independent requests (often to different regions): send them together, keep key order.
      const wrapped = await Promise.all(
        wrappers.map(async (k) => {
          const region = this.#regionOf(k);
          const out = await this.#send(this.#clientIn(region), region, (c) =>
            c.encrypt({
              keyId: k.id,
              plaintext: dataKey,
              encryptionContext: context,
              grantTokens,
            }),
          );
          if (parseKeyArn(out.keyId) === undefined) {
            throw new KeyringError('KMS Encrypt returned a KeyId that is not a key ARN');
          }
          return edkOf(out.keyId, out.ciphertextBlob);
        }),
      );
      edks.push(...wrapped);
    } catch (err) {
      // The key we generated never leaves this function on failure: wipe it.
      if (generated) dataKey.fill(0);
      throw err;
    }
    return { dataKey, encryptedDataKeys: edks };
  }

  async onDecrypt(input: KeyringDecryptInput): Promise<Uint8Array | undefined> {
    const suite = keyringSuite(input.suiteId);
    const context = plainContext(input.context);
    const { attempts, unmatched } = this.#attempts(input.encryptedDataKeys);
    if (attempts.length === 0 && unmatched !== undefined) throw this.#notArnError(unmatched);
    const errors: Error[] = [];
    if (attempts.length > 0 && this.#discoveryClientRegion !== undefined) {
      const check = this.#discoveryClientRegion;
      check.checked ??= checkClientRegion(check.client, this.discoveryRegions![0]!);
      await check.checked;
    }

    for (const a of attempts) {
      // Spec "OnDecrypt": an attempt that fails, including one whose Region has no client, is
      // collected and the next EDK is tried.
      let client: CountedKmsClient;
      try {
        client = this.#clientIn(a.region);
      } catch (err) {
        errors.push(err instanceof Error ? err : new KeyringError('no KMS client'));
        continue;
      }
      let out: { keyId: string; plaintext: Uint8Array };
      try {
        out = await this.#send(client, a.region, (c) =>
          c.decrypt({
            keyId: a.keyId,
            ciphertextBlob: a.edk.ciphertext,
            encryptionContext: context,
            grantTokens: this.#grantTokens,
          }),
        );
      } catch (err) {
        // With an alias we could not tell from the ARN whether the EDK was ours; KMS answers
        // IncorrectKeyException when the alias points at another key: not ours, not a failure.
        if (a.speculative && err instanceof KmsError && err.kmsErrorName === 'IncorrectKeyException') continue;
        errors.push(err instanceof Error ? err : new KmsError('KMS Decrypt failed'));
        continue;
      }
      // Spec: KeyId in the response must be the key we expect (the one the EDK names; with
      // multi-Region keys the configured or rewritten ARN), and the plaintext must have the suite's length.
      if (out.keyId !== a.expectKeyId) {
        out.plaintext.fill(0);
        errors.push(
          new KeyringError(
            this.mrkAware
              ? 'KMS Decrypt answered with a key other than the multi-Region key ARN requested'
              : 'KMS Decrypt answered with a key other than the one named by the encrypted data key',
          ),
        );
        continue;
      }
      if (out.plaintext.length !== suite.keyLength) {
        out.plaintext.fill(0);
        errors.push(
          new KeyringError(`KMS Decrypt returned a ${out.plaintext.length}-byte data key; suite needs ${suite.keyLength}`),
        );
        continue;
      }
      return out.plaintext;
    }

    if (errors.length === 0) return undefined;
    const names = [...new Set(errors.map((e) => (e instanceof KmsError && e.kmsErrorName) || e.name))];
    throw new NoDecryptableKeyError(
      `KmsKeyring could not decrypt any of its ${errors.length} matching encrypted data key(s) (${names.join(', ')})`,
      { cause: new AggregateError(errors, 'KMS decrypt attempts failed') },
    );
  }

  /**
   * The KMS Decrypt requests worth sending (spec: filter the EDKs to this keyring's configuration,
   * then try them one at a time): in EDK order, or for the MRK-aware modes in the order of the
   * specification's multi-keyrings (kms-mrk.ts). An aws-kms EDK whose provider info is not a key
   * ARN fails the whole call (MalformedMessageError), before any request, as the specification
   * requires. `unmatched` is the first key ARN named by an `aws-kms` EDK when no EDK matched and
   * some configured identifier is not a key ARN (without resolveOnDecrypt): the caller then
   * explains what to configure instead of "no key".
   */
  #attempts(edks: readonly EncryptedDataKey[]): { attempts: DecryptAttempt[]; unmatched: string | undefined } {
    const kmsEdks: KmsEdk[] = [];
    for (const edk of edks) {
      if (edk.providerId !== KMS_PROVIDER_ID) continue;
      // Spec "OnDecrypt" (every KMS keyring): an aws-kms EDK must name a key ARN, or OnDecrypt
      // fails, before any KMS request. A KMS keyring only ever writes the key ARN KMS returned.
      const info = decodeUtf8(edk.providerInfo);
      const arn = info === undefined ? undefined : parseKeyArn(info);
      if (info === undefined || arn === undefined) {
        throw new MalformedMessageError('an "aws-kms" encrypted data key names no valid KMS key ARN in its provider info');
      }
      kmsEdks.push({ edk, info, arn });
    }
    const inFilter = (arn: KmsArn): boolean => {
      const f = this.discoveryFilter;
      return f === undefined || (arn.partition === f.partition && f.accountIds.includes(arn.account));
    };

    if (this.discoveryRegions !== undefined) {
      return { attempts: discoveryMrkAttempts(this.discoveryRegions, kmsEdks, inFilter), unmatched: undefined };
    }
    if (this.mrkAware) {
      const keys = this.#keys.map((k) => ({ id: k.id, region: this.#regionOf(k) }));
      return { attempts: strictMrkAttempts(keys, kmsEdks), unmatched: undefined };
    }

    const out: DecryptAttempt[] = [];
    for (const { edk, info, arn } of kmsEdks) {
      if (this.discovery) {
        if (!inFilter(arn)) continue;
        const region = this.#clientForRegion !== undefined ? arn.region : undefined;
        out.push({ edk, keyId: info, expectKeyId: info, region, speculative: false });
        continue;
      }
      for (const k of this.#keys) {
        const m = matches(k, info, arn, this.#resolveOnDecrypt);
        if (m === 'no') continue;
        out.push({ edk, keyId: k.id, expectKeyId: info, region: this.#regionOf(k), speculative: m === 'maybe' });
      }
    }
    const unresolved = !this.discovery && !this.#resolveOnDecrypt && this.#keys.some((k) => k.kind !== 'key-arn');
    return { attempts: out, unmatched: out.length === 0 && unresolved ? kmsEdks[0]?.info : undefined };
  }

  /** What to do when only non-ARN identifiers could have matched (no secrets: ARNs are public). */
  #notArnError(messageArn: string): NoDecryptableKeyError {
    const ids = this.#keys.filter((k) => k.kind !== 'key-arn').map((k) => JSON.stringify(k.id));
    const named = messageArn.length > 200 ? `${JSON.stringify(messageArn.slice(0, 200))}...` : JSON.stringify(messageArn);
    return new NoDecryptableKeyError(
      `KmsKeyring: no encrypted data key names a configured key ARN, and ${ids.slice(0, 3).join(', ')}` +
        `${ids.length > 3 ? ', ...' : ''} ${ids.length === 1 ? 'is not one' : 'are not key ARNs'}. ` +
        `Decrypting needs key ARNs: an encrypted data key names the key ARN that wrapped it (this message: ${named}) ` +
        'and is tried only with an equal configured key ARN (AWS Encryption SDK specification, aws-kms-keyring.md "OnDecrypt"). ' +
        'Configure the key ARN (KMS DescribeKey returns it as KeyMetadata.Arn for an alias or key id), ' +
        `or set resolveOnDecrypt: true to let KMS resolve ${ids[0]} at decrypt time (for an alias, trust then follows UpdateAlias).`,
    );
  }

  /** The Region whose client serves configured key `k`, or undefined for options.client. */
  #regionOf(k: ConfiguredKey): string | undefined {
    return k.arn !== undefined && this.#clientForRegion !== undefined ? k.arn.region : undefined;
  }

  /** The client for a Region (undefined: options.client). Throws a KeyringError when there is none. */
  #clientIn(region: string | undefined): CountedKmsClient {
    if (region === undefined) return this.#client!;
    return this.#discoveryClients.get(region) ?? this.#regionClients.get(region) ?? this.#newRegionClient(region);
  }

  #newRegionClient(region: string): CountedKmsClient {
    // A Region can come from a hostile message: name it JSON-escaped and short.
    const label = region.length > 64 ? `${JSON.stringify(region.slice(0, 64))}...` : JSON.stringify(region);
    let made: unknown;
    try {
      made = this.#clientForRegion!(region);
    } catch (err) {
      throw new KeyringError(`no KMS client for Region ${label}: options.clientForRegion threw`, { cause: err });
    }
    if (made === undefined || made === null || made === false) {
      throw new KeyringError(`no KMS client for Region ${label}: options.clientForRegion returned none`);
    }
    try {
      return toKmsClient(made, `options.clientForRegion(${label})`);
    } catch (err) {
      throw new KeyringError(`no KMS client for Region ${label}: options.clientForRegion returned something else`, { cause: err });
    }
  }

  /**
   * Sends one request and counts it. A Region client is kept only once KMS has answered through it
   * (a response, or an error KMS returned), as the ESDK's client cache does: a Region named by a
   * message where no KMS answers (made up, unreachable) leaves nothing behind.
   */
  async #send<T>(client: CountedKmsClient, region: string | undefined, request: (c: CountedKmsClient) => Promise<T>): Promise<T> {
    this.#calls++;
    try {
      return await request(client);
    } finally {
      if (
        region !== undefined &&
        client.answered &&
        !this.#regionClients.has(region) &&
        this.#regionClients.size < MAX_REGION_CLIENTS
      ) {
        this.#regionClients.set(region, client);
      }
    }
  }
}

/**
 * May configured key `k` decrypt the EDK whose provider info is `info` (a key ARN)?
 * - key ARN: only if identical (aws-kms-keyring.md "OnDecrypt": the provider info must match the
 *   configured identifier). Without `resolve`, that is the only match.
 * With `resolve` (options.resolveOnDecrypt):
 * - bare key id: only if it is the ARN's key id (KMS then confirms the full ARN);
 * - alias ARN: perhaps, if partition, region and account agree; alias name: perhaps. Only KMS
 *   knows which key an alias points at now, so we ask it to decrypt with the alias as KeyId.
 */
function matches(k: ConfiguredKey, info: string, arn: KmsArn, resolve: boolean): 'yes' | 'no' | 'maybe' {
  if (k.kind === 'key-arn') return k.id === info ? 'yes' : 'no';
  if (!resolve) return 'no';
  switch (k.kind) {
    case 'key-id':
      return arn.resourceId === k.id ? 'yes' : 'no';
    case 'alias-arn': {
      const a = k.arn!;
      return a.partition === arn.partition && a.region === arn.region && a.account === arn.account ? 'maybe' : 'no';
    }
    case 'alias-name':
      return 'maybe';
  }
}

function edkOf(keyArn: string, ciphertextBlob: Uint8Array): EncryptedDataKey {
  return {
    providerId: KMS_PROVIDER_ID,
    providerInfo: Buffer.from(keyArn, 'utf8'),
    ciphertext: ciphertextBlob,
  };
}

function checkKeyId(value: unknown, option: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(`${option} must be a non-empty string: a key ARN, key id, alias name (alias/...) or alias ARN`);
  }
  if (value.length > 2048) throw new RangeError(`${option} must be at most 2048 characters`);
  if (kmsIdentifierKind(value) === undefined) {
    throw new TypeError(`${option} is not a valid KMS key identifier (key ARN, key id, alias/name or alias ARN)`);
  }
  return value;
}

function checkDiscoveryFilter(f: unknown): Readonly<{ accountIds: readonly string[]; partition: string }> {
  if (f === null || typeof f !== 'object') {
    throw new TypeError('options.discoveryFilter must be { accountIds: string[], partition: string }');
  }
  const { accountIds, partition } = f as { accountIds?: unknown; partition?: unknown };
  if (typeof partition !== 'string' || partition.length === 0) {
    throw new TypeError('options.discoveryFilter.partition must be a non-empty string, e.g. "aws"');
  }
  if (
    !Array.isArray(accountIds) ||
    accountIds.length === 0 ||
    accountIds.some((a) => typeof a !== 'string' || a.length === 0)
  ) {
    throw new TypeError('options.discoveryFilter.accountIds must be a non-empty array of non-empty strings');
  }
  return Object.freeze({ accountIds: Object.freeze([...(accountIds as string[])]), partition });
}
