/**
 * AWS KMS keyring (aws-encryption-sdk-specification, framework/aws-kms/aws-kms-keyring.md, and
 * aws-kms-discovery-keyring.md for discovery mode).
 *
 * Encrypt: the first key id is the generator (KMS GenerateDataKey); every further key id wraps
 * the same data key with KMS Encrypt, so any one of the keys (e.g. in another region) can decrypt.
 * Each EDK is `aws-kms` / key ARN returned by KMS / CiphertextBlob.
 *
 * Decrypt: KMS Decrypt with the configured key id and the message's encryption context; the key
 * ARN KMS answers with must equal the EDK's provider info, so a ciphertext blob that names another
 * key can never be passed off as ours.
 */
import { KeyringError, KmsError, NoDecryptableKeyError } from '../errors.js';
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
  /** With `discovery`: only keys of these accounts in this partition. */
  discoveryFilter?: KmsDiscoveryFilter;
}

interface ConfiguredKey {
  id: string;
  kind: KmsIdentifierKind;
  arn: KmsArn | undefined;
}

/** One KMS Decrypt we intend to send for one EDK. */
interface Attempt {
  edk: EncryptedDataKey;
  /** The EDK's provider info: the key ARN that wrapped it. */
  edkArn: string;
  /** KeyId sent to KMS. */
  keyId: string;
  client: CountedKmsClient;
  /** True when we cannot tell from the ARN whether the EDK is ours (alias names and alias ARNs). */
  speculative: boolean;
}

export class KmsKeyring implements Keyring, KmsCallCounter {
  /** Configured key identifiers, generator first. Empty in discovery mode. */
  readonly keyIds: readonly string[];
  readonly discovery: boolean;
  readonly discoveryFilter: Readonly<{ accountIds: readonly string[]; partition: string }> | undefined;

  readonly #keys: readonly ConfiguredKey[];
  readonly #grantTokens: string[] | undefined;
  readonly #client: CountedKmsClient | undefined;
  readonly #clientForRegion: ((region: string) => unknown) | undefined;
  readonly #regionClients = new Map<string, CountedKmsClient>();

  constructor(options: KmsKeyringOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('KmsKeyring options must be an object');
    const { keyId, keyIds, client, clientForRegion, grantTokens, discovery, discoveryFilter } = options;

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
  }

  /** Requests this keyring sent to KMS, successful or not. */
  get kmsCalls(): number {
    const seen = new Set<CountedKmsClient>();
    if (this.#client !== undefined) seen.add(this.#client);
    for (const c of this.#regionClients.values()) seen.add(c);
    let n = 0;
    for (const c of seen) n += c.kmsCalls;
    return n;
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
      const out = await this.#clientFor(generator).generateDataKey({
        keyId: generator.id,
        numberOfBytes: suite.keyLength,
        encryptionContext: context,
        grantTokens,
      });
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
          const out = await this.#clientFor(k).encrypt({
            keyId: k.id,
            plaintext: dataKey,
            encryptionContext: context,
            grantTokens,
          });
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
    const attempts = this.#attempts(input.encryptedDataKeys);
    const errors: Error[] = [];

    for (const a of attempts) {
      let out: { keyId: string; plaintext: Uint8Array };
      try {
        out = await a.client.decrypt({
          keyId: a.keyId,
          ciphertextBlob: a.edk.ciphertext,
          encryptionContext: context,
          grantTokens: this.#grantTokens,
        });
      } catch (err) {
        // With an alias we could not tell from the ARN whether the EDK was ours; KMS answers
        // IncorrectKeyException when the alias points at another key: not ours, not a failure.
        if (a.speculative && err instanceof KmsError && err.kmsErrorName === 'IncorrectKeyException') continue;
        errors.push(err instanceof Error ? err : new KmsError('KMS Decrypt failed'));
        continue;
      }
      // Spec: KeyId in the response must be the key the EDK names, and the plaintext must have the suite's length.
      if (out.keyId !== a.edkArn) {
        out.plaintext.fill(0);
        errors.push(new KeyringError('KMS Decrypt answered with a key other than the one named by the encrypted data key'));
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
   * The KMS Decrypt requests worth sending, in EDK order (spec: filter the EDKs to this keyring's
   * configuration, then try them one at a time). EDKs whose provider info is not a key ARN cannot
   * have been written by a KMS keyring and are skipped.
   */
  #attempts(edks: readonly EncryptedDataKey[]): Attempt[] {
    const out: Attempt[] = [];
    for (const edk of edks) {
      if (edk.providerId !== KMS_PROVIDER_ID) continue;
      const info = decodeUtf8(edk.providerInfo);
      if (info === undefined) continue;
      const arn = parseKeyArn(info);
      if (arn === undefined) continue;

      if (this.discovery) {
        const f = this.discoveryFilter;
        if (f !== undefined && (arn.partition !== f.partition || !f.accountIds.includes(arn.account))) continue;
        const client = this.#clientForArn(arn);
        out.push({ edk, edkArn: info, keyId: info, client, speculative: false });
        continue;
      }

      for (const k of this.#keys) {
        const m = matches(k, info, arn);
        if (m === 'no') continue;
        out.push({ edk, edkArn: info, keyId: k.id, client: this.#clientFor(k), speculative: m === 'maybe' });
      }
    }
    return out;
  }

  #clientFor(k: ConfiguredKey): CountedKmsClient {
    if (k.arn !== undefined && this.#clientForRegion !== undefined) return this.#regionClient(k.arn.region);
    return this.#client!;
  }

  #clientForArn(arn: KmsArn): CountedKmsClient {
    if (this.#clientForRegion !== undefined) return this.#regionClient(arn.region);
    return this.#client!;
  }

  #regionClient(region: string): CountedKmsClient {
    let c = this.#regionClients.get(region);
    if (c === undefined) {
      c = toKmsClient(this.#clientForRegion!(region), `options.clientForRegion(${JSON.stringify(region)})`);
      this.#regionClients.set(region, c);
    }
    return c;
  }
}

/**
 * Can configured key `k` have written the EDK whose provider info is `info` (a key ARN)?
 * - key ARN: only if identical (spec: provider info must match the configured identifier);
 * - bare key id: only if it is the ARN's key id (KMS then confirms the full ARN);
 * - alias ARN: perhaps, if partition, region and account agree; alias name: perhaps. Only KMS
 *   knows which key an alias points at now, so we ask it to decrypt with the alias as KeyId.
 */
function matches(k: ConfiguredKey, info: string, arn: KmsArn): 'yes' | 'no' | 'maybe' {
  switch (k.kind) {
    case 'key-arn':
      return k.id === info ? 'yes' : 'no';
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
