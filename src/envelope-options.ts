/**
 * The Envelope's options: their types and documentation (unit, default, limits, security effect),
 * their validation at construction, and the option names each call accepts.
 */
import type { CacheOptions } from './cache/index.js';
import { resolveCacheOptions, type ResolvedCacheOptions } from './cache/options.js';
import { checkDecryptContext } from './format/context.js';
import { DEFAULT_MAX_FRAME_LENGTH } from './format/decryptor.js';
import { DEFAULT_SUITE, suiteFromOption, type Suite } from './format/suites.js';
import { createDefaultKmsClient } from './keyrings/kms-client.js';
import { parseKmsArn } from './keyrings/kms-arn.js';
import { KmsKeyring, type KmsKeyringOptions } from './keyrings/kms.js';
import { FRESH_DATA_KEYS } from './keyrings/hierarchy/keyring.js';
import { checkOptionNames } from './options.js';
import type { EncryptionContext, Keyring } from './types.js';

/** Commitment policies, named as in the AWS Encryption SDK (framework/commitment-policy.md). */
export type CommitmentPolicy = 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' | 'REQUIRE_ENCRYPT_ALLOW_DECRYPT';

const COMMITMENT_POLICIES: readonly CommitmentPolicy[] = [
  'REQUIRE_ENCRYPT_REQUIRE_DECRYPT',
  'REQUIRE_ENCRYPT_ALLOW_DECRYPT',
];

/**
 * Signature policies, named as in the AWS Encryption SDK (its `SignaturePolicy` of the ESDKs for
 * JavaScript, Java and Python). Only the decrypt half applies to a decrypt call.
 */
export type SignaturePolicy = 'ALLOW_ENCRYPT_ALLOW_DECRYPT' | 'ALLOW_ENCRYPT_FORBID_DECRYPT';

const SIGNATURE_POLICIES: readonly SignaturePolicy[] = ['ALLOW_ENCRYPT_ALLOW_DECRYPT', 'ALLOW_ENCRYPT_FORBID_DECRYPT'];

/**
 * Shorthand for a KMS keyring: `kms: { keyId: 'arn:aws:kms:...:key/...' }`. Decrypting takes key
 * ARNs; an alias or key id encrypts but decrypts only with `resolveOnDecrypt: true` (see
 * KmsKeyringOptions).
 */
export interface EnvelopeKmsOptions extends Omit<KmsKeyringOptions, 'client'> {
  /**
   * An `@aws-sdk/client-kms` KMSClient or a `KmsClient` (e.g. the local KMS in-process client),
   * used for every key unless `clientForRegion` is given. Default: KMSClients built from the AWS
   * environment, loaded on first use, one per Region: a key ARN is called in the Region it names
   * (as the ESDK's default client supplier does), other identifiers in `region`.
   */
  client?: unknown;
  /**
   * Region of the default client for identifiers that are not key ARNs (aliases, key ids). Default:
   * the Region the key ARNs name when they all name one, else the AWS environment (AWS_REGION,
   * profile). Key ARNs always go to their own Region.
   */
  region?: string;
  /** Endpoint for the default client, e.g. `http://127.0.0.1:4599` for the local KMS. */
  endpoint?: string;
}

export interface EnvelopeOptions {
  /** Where data keys come from. Exactly one of `keyring` and `kms`. */
  keyring?: Keyring;
  /** Builds a `KmsKeyring` from these options. Exactly one of `keyring` and `kms`. */
  kms?: EnvelopeKmsOptions;
  /**
   * Data-key cache, always bounded (see README "Cache limits and why"). `false` disables it: every
   * encrypt then calls the keyring (one KMS `GenerateDataKey`) and every decrypt unwraps its key.
   * Default: `{ maxEntries: 100, maxAgeMs: 300_000, maxMessagesPerKey: 10_000, maxBytesPerKey: 2 ** 40 }`
   * (see src/cache/options.ts for ranges); with a HierarchicalKeyring, or a MultiKeyring whose
   * generator is one, the default is `false`: that keyring's promise is a fresh data key for every
   * message (it caches branch keys itself), which a data-key cache would break. Given explicitly,
   * the cache is used with any keyring.
   */
  cache?: CacheOptions | false;
  /**
   * Algorithm suite for encryption: `0x0478` (AES-256-GCM, HKDF-SHA512, key commitment; default) or
   * `0x0578` (the same plus an ECDSA P-384 signature, so readers who can decrypt cannot forge).
   */
  suite?: number;
  /**
   * Plaintext bytes per frame, 1 .. 2^31-1. The format allows up to 2^32-1, but the ESDK for
   * Python refuses frames over 2^31-1 bytes (its MAX_FRAME_SIZE) and the ESDK for Java keeps frame
   * lengths in a signed 32-bit int, so larger frames would not be readable by every ESDK.
   * Default 262,144 (256 KiB), chosen by
   * measurement (`npm run bench`, 8 MiB buffers on 2 cores): 64 KiB frames reach about 70% of one-shot
   * AES-256-GCM, 256 KiB about 86-88%, 1 MiB no more; a stream decrypt holds one frame, so 256 KiB
   * keeps its memory small and releases verified plaintext early. Messages smaller than a frame
   * are one frame whatever the setting. When only `maxFrameLength` is given and it is below
   * 262,144, the default is `maxFrameLength` instead, so the Envelope reads what it writes.
   * Frames over 16 MiB (the default `maxFrameLength` of every reader) need readers that raised it.
   */
  frameLength?: number;
  /**
   * Default `REQUIRE_ENCRYPT_REQUIRE_DECRYPT`: only key-committing (v2) messages decrypt.
   * `REQUIRE_ENCRYPT_ALLOW_DECRYPT` also reads legacy v1 messages (suites 0x0014..0x0378), which do
   * not commit to their data key. Encryption always uses a committing suite.
   */
  commitmentPolicy?: CommitmentPolicy;
  /**
   * Most encrypted data keys a message may carry, 1 .. 65,535, default 10. Decrypt rejects messages
   * with more (ERR_LIMIT_EXCEEDED) before calling any keyring, so a hostile header cannot make us call
   * KMS thousands of times; encrypt refuses to write more. A KMS keyring (`kms` or a KmsKeyring)
   * with more configured keys is a RangeError at construction, before any KMS call; another keyring
   * that returns more fails that encrypt with ERR_LIMIT_EXCEEDED, its data key zeroed.
   */
  maxEncryptedDataKeys?: number;
  /** Largest header accepted on decrypt, in bytes, 64 .. 16 MiB, default 1 MiB (headers are usually < 1 KiB). */
  maxHeaderBytes?: number;
  /**
   * Stream decrypt only: largest frame length accepted, in bytes, 1 .. 2^32-1. Default: 16 MiB, or
   * this Envelope's `frameLength` when that is larger, so an Envelope always reads the messages it
   * writes. A value below `frameLength` is a RangeError naming both options: such an Envelope
   * could not decrypt its own messages. A stream holds one frame of plaintext until its tag
   * verifies, so this bounds its memory (security effect: a hostile message cannot make a stream
   * buffer more); a message announcing bigger frames fails with ERR_LIMIT_EXCEEDED, naming this
   * option, before any keyring call. Messages written with frames over 16 MiB need readers that
   * raised their limit too (`kms-envelope decrypt --max-frame-length`). (Buffer decrypt needs no
   * such bound: it only ever holds the message you pass in.)
   */
  maxFrameLength?: number;
  /**
   * Stream decrypt only: largest non-framed (legacy single-block) body accepted, in bytes,
   * 1 .. 2^36, default 64 MiB. Such a body has one tag at its end, so a stream must hold all of it.
   */
  maxBodyBytes?: number;
  /**
   * Longest one keyring call may take, in milliseconds, 1 .. 600,000 (10 minutes), default 30,000.
   * A call is one `onEncrypt` or `onDecrypt`: with a KMS keyring, every KMS request it makes
   * (GenerateDataKey and Encrypts on encrypt, Decrypts of the EDKs it tries on decrypt), retries
   * included. Applies to every keyring call: encrypt and decrypt, buffers and streams, cached or not.
   * When it passes, every caller waiting on that call fails with KeyringTimeoutError
   * (ERR_KEYRING_TIMEOUT) and the next caller starts a fresh call, so a call that never settles
   * cannot wedge a cache partition. Keyrings take no cancellation signal, so the call itself runs on,
   * detached: if it answers later, its data key is zeroed and never cached or used.
   * The default leaves a healthy KMS call plenty of room: the AWS SDK retries a failed request
   * (three attempts by default, with jittered exponential backoff, longer when throttled) and its
   * HTTP handler sets no request timeout of its own, so a slow but working call can take seconds.
   * Lower it when a caller must fail fast (a Lambda with a short timeout); raise it for keyrings that
   * wait on slow devices. A value below the keyring's real latency fails every call. Security
   * effect: none on confidentiality (a late key is wiped, nothing is retried with it); it trades
   * waiting forever for a typed failure.
   */
  keyringTimeoutMs?: number;
}

export interface EncryptOptions {
  /** Encryption context: authenticated, not secret, stored in the message in the clear. */
  context?: EncryptionContext;
}

export interface DecryptOptions {
  /** Pairs that must be present in the message's context with these exact values. */
  context?: EncryptionContext;
  /**
   * Which messages this call accepts, by whether their suite is signed. Default
   * `'ALLOW_ENCRYPT_ALLOW_DECRYPT'`: signed (0x0578 and legacy 0x0214, 0x0346, 0x0378) and unsigned.
   *
   * `'ALLOW_ENCRYPT_FORBID_DECRYPT'` (the ESDK's `decryptUnsignedMessageStream`, the ESDK CLI's
   * `--decrypt-unsigned`): a signed message fails with `ERR_SIGNATURE_POLICY` as soon as its header
   * is parsed, before the cache or the keyring (KMS) is asked for its key (client-apis/decrypt.md,
   * "Behavior"). Use it for streams whose consumer must act on every byte as soon as it arrives: a
   * stream releases each frame of an unsigned message, the final one included, as soon as its tag
   * verified, whereas the final frame of a signed message always waits for the signature and the
   * end of the input. Security effect: none on what is authenticated (every byte released has
   * verified under the data key); it states that the caller does not rely on a signature, so
   * anyone who can decrypt these messages could also have written them.
   */
  signaturePolicy?: SignaturePolicy;
}

export interface EncryptStreamOptions extends EncryptOptions {
  /**
   * Total plaintext length in bytes, when known. Only then can the stream use a cached data key
   * (the cache's byte limit must be checked before the first byte is written, as in the ESDK's
   * caching CMM); without it every stream gets a fresh data key (one KMS call per stream).
   */
  plaintextLength?: number;
}

/**
 * Stream decrypt options: those of `decrypt`. The final frame of a signed message is always held
 * until the signature verified and the input ended (client-apis/decrypt.md: a final frame's
 * plaintext MUST NOT be released before); earlier frames are released as their tags verify (they
 * are authentic under the data key, but a holder of the data key could have written them: the
 * signature proves the writer only once the stream ended without error). The former
 * `holdFinalFrame` option is refused with a TypeError.
 */
export type DecryptStreamOptions = DecryptOptions;

export interface FileOptions {
  /**
   * Aborts the work: the streams are destroyed, the temporary file is removed, `dst` is left as it
   * was, and the promise rejects with the signal's reason (an `AbortError` by default).
   */
  signal?: AbortSignal;
}

const UINT32_MAX = 0xffff_ffff;
/** Largest frame length every ESDK reads (see EnvelopeOptions.frameLength). */
const MAX_PORTABLE_FRAME_LENGTH = 0x7fff_ffff;

/** Default frame length in bytes; see EnvelopeOptions.frameLength for the measurement behind it. */
export const DEFAULT_FRAME_LENGTH = 262_144;

/** Default and largest keyringTimeoutMs, in milliseconds; see EnvelopeOptions.keyringTimeoutMs. */
export const DEFAULT_KEYRING_TIMEOUT_MS = 30_000;
const MAX_KEYRING_TIMEOUT_MS = 600_000;

/** EnvelopeOptions after validation, with every default applied. */
export interface ResolvedEnvelopeOptions {
  keyring: Keyring;
  suite: Suite;
  commitmentPolicy: CommitmentPolicy;
  maxEncryptedDataKeys: number;
  maxHeaderBytes: number;
  frameLength: number;
  maxFrameLength: number;
  maxBodyBytes: number;
  keyringTimeoutMs: number;
  cache: ResolvedCacheOptions | false;
}

const ENVELOPE_OPTIONS: ReadonlySet<string> = new Set([
  'keyring',
  'kms',
  'cache',
  'suite',
  'frameLength',
  'commitmentPolicy',
  'maxEncryptedDataKeys',
  'maxHeaderBytes',
  'maxFrameLength',
  'maxBodyBytes',
  'keyringTimeoutMs',
]);

/**
 * Validates the Envelope's options once, at construction (a TypeError or RangeError naming the
 * option, its unit and range), and applies the defaults.
 */
export function resolveEnvelopeOptions(options: EnvelopeOptions): ResolvedEnvelopeOptions {
  if (options === null || typeof options !== 'object') {
    throw new TypeError('options must be an object with `keyring` or `kms`');
  }
  checkOptionNames(options, ENVELOPE_OPTIONS, 'Envelope');
  const keyring = resolveKeyring(options);
  const suite = suiteFromOption(options.suite ?? DEFAULT_SUITE, 'suite');
  const commitmentPolicy = options.commitmentPolicy ?? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT';
  if (!COMMITMENT_POLICIES.includes(commitmentPolicy)) {
    throw new RangeError(`commitmentPolicy must be one of ${COMMITMENT_POLICIES.join(', ')}`);
  }
  const maxEncryptedDataKeys = intOption(options.maxEncryptedDataKeys, 'maxEncryptedDataKeys', 10, 1, 0xffff, 'keys');
  const maxHeaderBytes = intOption(options.maxHeaderBytes, 'maxHeaderBytes', 1 << 20, 64, 16 << 20, 'bytes');
  // An Envelope reads what it writes. Each default yields to the other option when only that one
  // is given: maxFrameLength defaults to max(16 MiB, frameLength) (whoever picks large frames
  // expects to read them back; the stream encryptor already holds one such frame, so the memory
  // bound is the one the caller chose), frameLength to min(256 KiB, maxFrameLength) (a reader
  // that bounds its memory below 256 KiB writes frames it accepts). Both given and contradictory
  // is a RangeError.
  const maxGiven = intOption(options.maxFrameLength, 'maxFrameLength', DEFAULT_MAX_FRAME_LENGTH, 1, UINT32_MAX, 'bytes');
  const frameLength = intOption(
    options.frameLength,
    'frameLength',
    Math.min(DEFAULT_FRAME_LENGTH, maxGiven),
    1,
    MAX_PORTABLE_FRAME_LENGTH,
    'bytes',
  );
  const maxFrameLength = options.maxFrameLength === undefined ? Math.max(maxGiven, frameLength) : maxGiven;
  if (maxFrameLength < frameLength) {
    throw new RangeError(
      `maxFrameLength (${maxFrameLength} bytes) is below frameLength (${frameLength} bytes): ` +
        'this Envelope could not decrypt its own messages; raise maxFrameLength or lower frameLength',
    );
  }
  const maxBodyBytes = intOption(options.maxBodyBytes, 'maxBodyBytes', 64 << 20, 1, 2 ** 36, 'bytes');
  const keyringTimeoutMs = intOption(
    options.keyringTimeoutMs,
    'keyringTimeoutMs',
    DEFAULT_KEYRING_TIMEOUT_MS,
    1,
    MAX_KEYRING_TIMEOUT_MS,
    'milliseconds',
  );
  // A HierarchicalKeyring gets a fresh data key per message unless a data-key cache is asked for.
  const cache = options.cache === undefined && generatesFreshKeys(keyring) ? false : resolveCacheOptions(options.cache, 'cache');
  checkKmsKeyCount(keyring, options.kms !== undefined ? 'kms.keyIds' : 'keyring.keyIds', maxEncryptedDataKeys);
  return {
    keyring,
    suite,
    commitmentPolicy,
    maxEncryptedDataKeys,
    maxHeaderBytes,
    frameLength,
    maxFrameLength,
    maxBodyBytes,
    keyringTimeoutMs,
    cache,
  };
}

function resolveKeyring(options: EnvelopeOptions): Keyring {
  const { keyring, kms } = options;
  if ((keyring === undefined) === (kms === undefined)) {
    throw new TypeError('exactly one of options.keyring and options.kms is required');
  }
  if (keyring !== undefined) {
    if (
      keyring === null ||
      typeof keyring !== 'object' ||
      typeof keyring.onEncrypt !== 'function' ||
      typeof keyring.onDecrypt !== 'function'
    ) {
      throw new TypeError('options.keyring must implement onEncrypt and onDecrypt');
    }
    return keyring;
  }
  if (kms === null || typeof kms !== 'object') throw new TypeError('options.kms must be an object');
  const { client, region, endpoint, ...rest } = kms;
  if (client === undefined && rest.clientForRegion === undefined && rest.discoveryRegions !== undefined) {
    // MRK discovery decrypts in its Regions, not the environment's: one default client per Region
    // (aws-kms-mrk-multi-keyrings.md: the default regional client supplier).
    return new KmsKeyring({ ...rest, clientForRegion: (r: string) => createDefaultKmsClient({ region: r, endpoint }) } as KmsKeyringOptions);
  }
  if (client !== undefined || rest.clientForRegion !== undefined) {
    return new KmsKeyring({ ...rest, ...(client !== undefined ? { client } : {}) } as KmsKeyringOptions);
  }
  // Default clients: a key ARN is called in its own Region (aws-kms-mrk-multi-keyrings.md: the
  // default regional client supplier makes each key's client from the Region of its ARN), so keys
  // of several Regions, and multi-Region replicas, are each called where they live; aliases and
  // key ids in `region`.
  return new KmsKeyring({
    ...rest,
    client: createDefaultKmsClient({ region: region ?? regionOfArns(rest), endpoint }),
    clientForRegion: (r: string) => createDefaultKmsClient({ region: r, endpoint }),
  } as KmsKeyringOptions);
}

/**
 * The Region the configured key ARNs name, when they all name one: the default client's Region
 * when `kms.region` is not given. A KMS key lives in one Region and is called there (the ESDK's KMS
 * keyring makes its client from the ARN's Region too), so `kms: { keyId: ARN }` needs no AWS_REGION;
 * with aliases, key ids or ARNs of several Regions the AWS environment decides, as before.
 */
function regionOfArns(kms: { keyId?: unknown; keyIds?: unknown }): string | undefined {
  const ids = [kms.keyId, ...(Array.isArray(kms.keyIds) ? kms.keyIds : [])].filter((k) => k !== undefined);
  let region: string | undefined;
  for (const id of ids) {
    const arn = typeof id === 'string' ? parseKmsArn(id) : undefined;
    if (arn === undefined || (region !== undefined && arn.region !== region)) return undefined;
    region = arn.region;
  }
  return region;
}

/**
 * A KMS keyring writes one EDK per configured key (aws-kms-keyring.md, OnEncrypt: the generator's
 * GenerateDataKey, then one Encrypt per other key), so more keys than maxEncryptedDataKeys could
 * never encrypt: each attempt would cost a data key and every KMS call before failing. Known
 * here, refused here. Other keyrings' counts are only known once they ran (#loadMaterials checks).
 */
function checkKmsKeyCount(keyring: Keyring, option: string, maxEdks: number): void {
  if (!(keyring instanceof KmsKeyring) || keyring.keyIds.length <= maxEdks) return;
  throw new RangeError(
    `${option} has ${keyring.keyIds.length} keys but maxEncryptedDataKeys is ${maxEdks}: every message would carry ` +
      `${keyring.keyIds.length} encrypted data keys; raise maxEncryptedDataKeys or configure fewer keys`,
  );
}

/**
 * The names each call's options object may hold (src/options.ts): an unknown one is a TypeError,
 * so a misnamed option (the ESDK's `encryptionContext`) cannot silently drop a check.
 */
export const ENCRYPT_OPTIONS: ReadonlySet<string> = new Set(['context']);
export const ENCRYPT_STREAM_OPTIONS: ReadonlySet<string> = new Set(['context', 'plaintextLength']);
export const ENCRYPT_FILE_OPTIONS: ReadonlySet<string> = new Set(['context', 'signal']);
export const DECRYPT_OPTIONS: ReadonlySet<string> = new Set(['context', 'signaturePolicy']);
export const DECRYPT_FILE_OPTIONS: ReadonlySet<string> = new Set(['context', 'signaturePolicy', 'signal']);

/**
 * Validates decrypt options (their names against `known`, for the call `where`) and returns the
 * required context pairs. `holdFinalFrame` was removed
 * (a signed message's final frame is always held until its signature verified) and is refused by
 * name, so no caller goes on believing it has an effect.
 */
export function checkDecryptOptions(
  options: DecryptOptions | undefined,
  known: ReadonlySet<string>,
  where: string,
): Readonly<EncryptionContext> | undefined {
  if (options === undefined) return undefined;
  if (options !== null && typeof options === 'object' && 'holdFinalFrame' in options) {
    throw new TypeError(
      'options.holdFinalFrame was removed: the final frame of a signed message is always held until its signature verified; ' +
        "to release every frame as soon as it verifies, accept only unsigned messages with signaturePolicy: 'ALLOW_ENCRYPT_FORBID_DECRYPT'",
    );
  }
  checkOptionNames(options, known, where);
  const required = options.context === undefined ? undefined : checkRequired(options.context);
  const policy = options.signaturePolicy;
  if (policy !== undefined && !SIGNATURE_POLICIES.includes(policy)) {
    throw new RangeError(`options.signaturePolicy must be one of ${SIGNATURE_POLICIES.join(', ')}`);
  }
  return required;
}

export function checkRequired(context: unknown): Readonly<EncryptionContext> {
  return checkDecryptContext(context, 'options.context');
}

export function intOption(
  value: unknown,
  name: string,
  dflt: number,
  min: number,
  max: number,
  unit: string,
): number {
  if (value === undefined) return dflt;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer number of ${unit} from ${min} to ${max}`);
  }
  return value;
}

/**
 * Whether the keyring that makes the data keys promises a fresh one per message: a
 * HierarchicalKeyring (of any copy of this package), alone or as a MultiKeyring's generator (the
 * generator makes the key; spec framework/multi-keyring.md, "OnEncrypt"), nested or not.
 */
function generatesFreshKeys(keyring: unknown): boolean {
  for (let k = keyring, depth = 0; typeof k === 'object' && k !== null && depth < 32; depth++) {
    if ((k as { [FRESH_DATA_KEYS]?: unknown })[FRESH_DATA_KEYS] === true) return true;
    k = (k as { generator?: unknown }).generator;
  }
  return false;
}
