import { createHash, type KeyObject } from 'node:crypto';
import {
  CommitmentPolicyError,
  KeyringError,
  LimitExceededError,
  MalformedMessageError,
  NoDecryptableKeyError,
  SignaturePolicyError,
} from './errors.js';
import type { EncryptedDataKey, EncryptionContext, Keyring } from './types.js';
import { DEFAULT_SUITE, suiteFromOption, type Suite } from './format/suites.js';
import {
  checkDecryptContext,
  checkEncryptContext,
  checkRequiredContext,
  isWellFormedUtf16,
  PUBLIC_KEY_CONTEXT_KEY,
} from './format/context.js';
import { parseHeader, type MessageHeader } from './format/header.js';
import { stringPlaintextBytes } from './format/plaintext.js';
import { encryptBuffer, prepareEncryption, type PreparedEncryption } from './format/encrypt.js';
import { decryptBody, DEFAULT_MAX_FRAME_LENGTH, deriveAndVerifyHeader, type DecryptionKey } from './format/decrypt.js';
import { generateSigningKey } from './crypto/ecdsa.js';
import { DataKeyCache } from './cache/cache.js';
import { resolveCacheOptions, type CacheOptions, type CacheStats } from './cache/index.js';
import { pairsToObject, partitionOf, readContextPairs } from './cache/partition.js';
import { callKeyring, takeDataKey, wipe } from './keyring-call.js';
import { KmsKeyring, type KmsKeyringOptions } from './keyrings/kms.js';
import {
  createDecryptStream,
  createEncryptStream,
  decryptFile,
  encryptFile,
  type DecryptStream,
  type EncryptStream,
} from './stream/index.js';
import { createDefaultKmsClient } from './keyrings/kms-client.js';
import { checkOptionNames } from './options.js';

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
  /** An `@aws-sdk/client-kms` KMSClient or a `KmsClient` (e.g. the local KMS in-process client). Default: a KMSClient built from the AWS environment, loaded on first use. */
  client?: unknown;
  /** Region for the default client. Default: the AWS environment. */
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
   * (see src/cache/options.ts for ranges).
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

/** What `encryptDetailed` returns (client-apis/encrypt.md "Output"). */
export interface EncryptResult {
  /** The ESDK message, exactly what `encrypt` returns. */
  message: Buffer;
  /** The encryption context written into the message (with `aws-crypto-public-key` for signed suites). */
  context: EncryptionContext;
  suiteId: number;
  /** The message header as written, parsed. */
  header: MessageHeader;
}

export interface DecryptResult {
  plaintext: Buffer;
  /** The message's full encryption context (including `aws-crypto-public-key` for signed suites). */
  context: EncryptionContext;
  suiteId: number;
}

export interface EnvelopeStats extends CacheStats {
  /** Calls made to the keyring (onEncrypt + onDecrypt). */
  keyringCalls: number;
  /** Requests sent to KMS by KMS keyrings, when the keyring reports them. */
  kmsCalls: number;
}

/** Encryption materials as cached: the data key, and everything derived from it that is message-independent. */
interface CachedMaterials {
  dataKey: Buffer;
  prepared: PreparedEncryption;
}

const UINT32_MAX = 0xffff_ffff;
/** Largest frame length every ESDK reads (see EnvelopeOptions.frameLength). */
const MAX_PORTABLE_FRAME_LENGTH = 0x7fff_ffff;

/** Default frame length in bytes; see EnvelopeOptions.frameLength for the measurement behind it. */
export const DEFAULT_FRAME_LENGTH = 262_144;

/** Default and largest keyringTimeoutMs, in milliseconds; see EnvelopeOptions.keyringTimeoutMs. */
export const DEFAULT_KEYRING_TIMEOUT_MS = 30_000;
const MAX_KEYRING_TIMEOUT_MS = 600_000;

/**
 * Envelope encryption with AWS KMS data keys in the AWS Encryption SDK message format.
 *
 * ```ts
 * const envelope = new Envelope({ kms: { keyId: 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab' } });
 * const message = await envelope.encrypt('hello', { context: { tenant: 'a' } });
 * const { plaintext } = await envelope.decrypt(message, { context: { tenant: 'a' } });
 * ```
 */
export class Envelope {
  readonly #keyring: Keyring;
  readonly #suite: Suite;
  readonly #frameLength: number;
  readonly #policy: CommitmentPolicy;
  readonly #maxEdks: number;
  readonly #maxHeaderBytes: number;
  readonly #maxFrameLength: number;
  readonly #maxBodyBytes: number;
  readonly #keyringTimeoutMs: number;
  readonly #cache: DataKeyCache<CachedMaterials> | undefined;
  /** Serialized bytes the library adds to the caller's context (the public key pair of signed suites). */
  readonly #contextReserve: number;
  #keyringCalls = 0;

  constructor(options: EnvelopeOptions) {
    if (options === null || typeof options !== 'object') {
      throw new TypeError('options must be an object with `keyring` or `kms`');
    }
    const known = new Set([
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
    checkOptionNames(options, known, 'Envelope');
    this.#keyring = resolveKeyring(options);
    this.#suite = suiteFromOption(options.suite ?? DEFAULT_SUITE, 'suite');
    this.#contextReserve = publicKeyPairBytes(this.#suite);
    const policy = options.commitmentPolicy ?? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT';
    if (!COMMITMENT_POLICIES.includes(policy)) {
      throw new RangeError(`commitmentPolicy must be one of ${COMMITMENT_POLICIES.join(', ')}`);
    }
    this.#policy = policy;
    this.#maxEdks = intOption(options.maxEncryptedDataKeys, 'maxEncryptedDataKeys', 10, 1, 0xffff, 'keys');
    this.#maxHeaderBytes = intOption(options.maxHeaderBytes, 'maxHeaderBytes', 1 << 20, 64, 16 << 20, 'bytes');
    // An Envelope reads what it writes. Each default yields to the other option when only that one
    // is given: maxFrameLength defaults to max(16 MiB, frameLength) (whoever picks large frames
    // expects to read them back; the stream encryptor already holds one such frame, so the memory
    // bound is the one the caller chose), frameLength to min(256 KiB, maxFrameLength) (a reader
    // that bounds its memory below 256 KiB writes frames it accepts). Both given and contradictory
    // is a RangeError.
    const maxGiven = intOption(options.maxFrameLength, 'maxFrameLength', DEFAULT_MAX_FRAME_LENGTH, 1, UINT32_MAX, 'bytes');
    this.#frameLength = intOption(
      options.frameLength,
      'frameLength',
      Math.min(DEFAULT_FRAME_LENGTH, maxGiven),
      1,
      MAX_PORTABLE_FRAME_LENGTH,
      'bytes',
    );
    this.#maxFrameLength = options.maxFrameLength === undefined ? Math.max(maxGiven, this.#frameLength) : maxGiven;
    if (this.#maxFrameLength < this.#frameLength) {
      throw new RangeError(
        `maxFrameLength (${this.#maxFrameLength} bytes) is below frameLength (${this.#frameLength} bytes): ` +
          'this Envelope could not decrypt its own messages; raise maxFrameLength or lower frameLength',
      );
    }
    this.#maxBodyBytes = intOption(options.maxBodyBytes, 'maxBodyBytes', 64 << 20, 1, 2 ** 36, 'bytes');
    this.#keyringTimeoutMs = intOption(
      options.keyringTimeoutMs,
      'keyringTimeoutMs',
      DEFAULT_KEYRING_TIMEOUT_MS,
      1,
      MAX_KEYRING_TIMEOUT_MS,
      'milliseconds',
    );
    const cacheOptions = resolveCacheOptions(options.cache, 'cache');
    this.#cache = cacheOptions === false ? undefined : new DataKeyCache<CachedMaterials>(cacheOptions);
    checkKmsKeyCount(this.#keyring, options.kms !== undefined ? 'kms.keyIds' : 'keyring.keyIds', this.#maxEdks);
  }

  /** The suite id messages are encrypted with. */
  get suiteId(): number {
    return this.#suite.id;
  }

  /** The frame length messages are encrypted with, in bytes. */
  get frameLength(): number {
    return this.#frameLength;
  }

  /**
   * Encrypts `plaintext` (bytes, or a string taken as UTF-8) into one ESDK message. A string must
   * be well-formed UTF-16 (no unpaired surrogate, which has no UTF-8 form): otherwise TypeError
   * naming `plaintext`, before any keyring call.
   * With a warm cache this makes no KMS call and does its work synchronously after the lookup.
   * `encryptDetailed` returns the context written and the parsed header as well.
   */
  async encrypt(plaintext: Uint8Array | string, options?: EncryptOptions): Promise<Buffer> {
    checkOptionNames(options, ENCRYPT_OPTIONS, 'encrypt');
    const data = toBytes(plaintext, 'plaintext');
    const cache = this.#cache;
    if (cache === undefined) {
      const m = await this.#loadMaterials(checkEncryptContext(options?.context, 'options.context', this.#contextReserve));
      try {
        return encryptBuffer(m.prepared, m.dataKey, data);
      } finally {
        m.dataKey.fill(0);
      }
    }
    // Hit path: one read of the caller's context gives its partition; a hit needs no other check
    // (src/cache/partition.ts explains why). Nothing reads the caller's object again: on a miss the
    // validated copy is made from this same read, and the entry is stored under its partition.
    const pairs = readCallerContext(options?.context);
    const partition = partitionOf(pairs);
    if (partition !== undefined) {
      const hit = cache.takeEncrypt(partition, data.length);
      if (hit !== undefined) return encryptBuffer(hit.prepared, hit.dataKey, data);
    }
    const context = checkEncryptContext(pairsToObject(pairs), 'options.context', this.#contextReserve);
    const { materials, cached } = await cache.loadEncrypt(validatedPartition(context), data.length, () =>
      this.#loadMaterials(context),
    );
    try {
      return encryptBuffer(materials.prepared, materials.dataKey, data);
    } finally {
      if (!cached) materials.dataKey.fill(0);
    }
  }

  /**
   * `encrypt`, also returning what the message holds besides the ciphertext (client-apis/encrypt.md
   * "Output"): the encryption context written (for signed suites it includes the
   * `aws-crypto-public-key` the library added), the suite and the parsed header. Costs one header
   * parse on top of `encrypt`.
   */
  async encryptDetailed(plaintext: Uint8Array | string, options?: EncryptOptions): Promise<EncryptResult> {
    const message = await this.encrypt(plaintext, options);
    // Our own header: within our limits by construction (the keyring's EDKs were counted).
    const header = parseHeader(message, { maxEncryptedDataKeys: this.#maxEdks, maxHeaderBytes: message.length })!;
    return { message, context: { ...header.context }, suiteId: header.suite.id, header };
  }

  /**
   * Decrypts one ESDK message. Throws `EnvelopeError`s only: ERR_DECRYPTION_FAILED for anything that
   * fails authentication, ERR_MALFORMED_MESSAGE for what cannot be parsed, and so on. Plaintext is
   * returned only after every tag (and the signature, for signed suites) verified.
   */
  async decrypt(message: Uint8Array, options?: DecryptOptions): Promise<DecryptResult> {
    if (!(message instanceof Uint8Array)) throw new TypeError('message must be a Uint8Array');
    const required = checkDecryptOptions(options, DECRYPT_OPTIONS, 'decrypt');
    const forbidSigned = options?.signaturePolicy === 'ALLOW_ENCRYPT_FORBID_DECRYPT';
    const buf = Buffer.isBuffer(message) ? message : Buffer.from(message.buffer, message.byteOffset, message.length);
    const header = parseHeader(buf, { maxEncryptedDataKeys: this.#maxEdks, maxHeaderBytes: this.#maxHeaderBytes });
    if (header === undefined) throw new MalformedMessageError('message is truncated');
    this.#checkHeader(header, required, forbidSigned);
    const found = this.#dataKeyFor(header);
    // A cache hit is a Buffer: no await, so the rest of the decrypt runs in this same turn.
    const dataKey = found instanceof Uint8Array ? found : await found;
    let key: DecryptionKey;
    try {
      key = deriveAndVerifyHeader(header, dataKey);
    } finally {
      // Uncached, the unwrapped key is ours alone and done with; a cached one the cache zeroes.
      if (!this.#cachesDecrypt(header)) dataKey.fill(0);
    }
    try {
      const plaintext = decryptBody(header, key, buf);
      return { plaintext, context: { ...header.context }, suiteId: header.suite.id };
    } finally {
      // The derived message key is a plain Buffer (HKDF output), not a KeyObject, so it can be
      // wiped here at the cost of one 32-byte fill. The copies node:crypto's cipher and HMAC
      // contexts made of it live in OpenSSL memory until those objects are collected: out of reach.
      key.destroy();
    }
  }

  /**
   * A Node Transform that turns plaintext bytes into one ESDK message, frame by frame, with
   * constant memory and backpressure. `Readable.toWeb`/`Writable.toWeb` adapt it to web streams.
   */
  encryptStream(options?: EncryptStreamOptions): EncryptStream {
    checkOptionNames(options, ENCRYPT_STREAM_OPTIONS, 'encryptStream');
    const context = checkEncryptContext(options?.context, 'options.context', this.#contextReserve);
    const length = options?.plaintextLength;
    if (length !== undefined && (!Number.isSafeInteger(length) || length < 0)) {
      throw new RangeError('options.plaintextLength must be a non-negative integer number of bytes');
    }
    return createEncryptStream({ materials: () => this.#streamMaterials(context, length), plaintextLength: length });
  }

  /**
   * A Node Transform that turns one ESDK message into plaintext. A frame's plaintext is emitted only
   * after its tag verifies, and the final frame of a signed message only after the signature
   * verified and the input ended; a truncated, reordered or extended message ends in an `error`
   * event, never in a silently short output. Emits `header` with the parsed message header.
   */
  decryptStream(options?: DecryptStreamOptions): DecryptStream {
    const required = checkDecryptOptions(options, DECRYPT_OPTIONS, 'decryptStream');
    const forbidSigned = options?.signaturePolicy === 'ALLOW_ENCRYPT_FORBID_DECRYPT';
    return createDecryptStream({
      limits: {
        maxEncryptedDataKeys: this.#maxEdks,
        maxHeaderBytes: this.#maxHeaderBytes,
        maxFrameLength: this.#maxFrameLength,
        maxBodyBytes: this.#maxBodyBytes,
      },
      // Runs as soon as the header is parsed, before anything after it is read.
      checkHeader: (header) => this.#checkHeader(header, required, forbidSigned),
      dataKey: async (header) => {
        const dataKey = await this.#dataKeyFor(header);
        // The stream keeps the key across I/O turns and zeroes it when done: a cached key is copied
        // for it (the cache zeroes its own later); an uncached one is handed over as is.
        return this.#cachesDecrypt(header) ? Buffer.from(dataKey) : dataKey;
      },
    });
  }

  /**
   * Encrypts the file `src` into `dst`. Writes a temporary file next to `dst` and renames it into
   * place only after the whole message is written and flushed, so `dst` is never partial.
   */
  async encryptFile(src: string, dst: string, options?: EncryptOptions & FileOptions): Promise<void> {
    checkOptionNames(options, ENCRYPT_FILE_OPTIONS, 'encryptFile');
    const context = checkEncryptContext(options?.context, 'options.context', this.#contextReserve);
    await encryptFile(
      src,
      dst,
      (plaintextLength) =>
        createEncryptStream({ materials: () => this.#streamMaterials(context, plaintextLength), plaintextLength }),
      options?.signal,
    );
  }

  /**
   * Decrypts the file `src` into `dst` through a temporary file that is renamed into place only when
   * the whole message (every tag, the signature) verified; on any failure the temporary file is
   * removed and `dst` is left untouched.
   */
  async decryptFile(src: string, dst: string, options?: DecryptOptions & FileOptions): Promise<void> {
    const streamOptions: DecryptOptions = {};
    if (options !== undefined) {
      checkDecryptOptions(options, DECRYPT_FILE_OPTIONS, 'decryptFile'); // here too, so a bad option fails before any file is touched
      if (options.context !== undefined) streamOptions.context = options.context;
      if (options.signaturePolicy !== undefined) streamOptions.signaturePolicy = options.signaturePolicy;
    }
    await decryptFile(src, dst, () => this.decryptStream(streamOptions), options?.signal);
  }

  /** Cache and KMS counters. */
  stats(): EnvelopeStats {
    const base: CacheStats =
      this.#cache?.stats() ?? emptyStats();
    const kmsCalls = (this.#keyring as { kmsCalls?: unknown }).kmsCalls;
    return { ...base, keyringCalls: this.#keyringCalls, kmsCalls: typeof kmsCalls === 'number' ? kmsCalls : 0 };
  }

  /**
   * Drops every cached data key (zeroing it). A KMS call already in flight still answers the
   * callers waiting for it, but its key is not cached and is zeroed after use.
   */
  clearCache(): void {
    this.#cache?.clear();
  }

  // Checks that need no key, run before the data-key cache or the keyring is asked for a key (the
  // ESDK's default CMM refuses these requests without returning decryption materials): commitment
  // policy, signature policy, the suite's public verification key, then the caller's required
  // context pairs.
  #checkHeader(header: MessageHeader, required: Readonly<EncryptionContext> | undefined, forbidSigned: boolean): void {
    const suite = header.suite;
    if (!suite.committing && this.#policy === 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT') {
      throw new CommitmentPolicyError(
        'message uses a suite without key commitment; set commitmentPolicy to REQUIRE_ENCRYPT_ALLOW_DECRYPT to read it',
      );
    }
    if (forbidSigned && suite.signatureCurve !== undefined) {
      throw new SignaturePolicyError(
        'message uses a signed algorithm suite, which signaturePolicy ALLOW_ENCRYPT_FORBID_DECRYPT refuses',
      );
    }
    // framework/default-cmm.md, "Decrypt Materials": a signed suite needs `aws-crypto-public-key`
    // in the context, and an unsigned suite must not carry it. Without the second rule, anyone who
    // can unwrap a signed message's data key could keep its EDKs and context and re-encrypt new
    // content under an unsigned suite that passes for the signer's. Both sides are visible in the
    // clear header, so saying which rule failed tells an attacker nothing.
    if ((header.context[PUBLIC_KEY_CONTEXT_KEY] !== undefined) !== (suite.signatureCurve !== undefined)) {
      throw new MalformedMessageError(
        suite.signatureCurve === undefined
          ? `encryption context holds the public verification key (${PUBLIC_KEY_CONTEXT_KEY}) for an unsigned algorithm suite`
          : `encryption context lacks the public verification key (${PUBLIC_KEY_CONTEXT_KEY}) of a signed algorithm suite`,
      );
    }
    checkRequiredContext(header.context, required);
  }

  // Materials for a stream, which holds them across I/O: always a private copy of the data key.
  async #streamMaterials(
    context: Readonly<EncryptionContext>,
    plaintextLength: number | undefined,
  ): Promise<{ prepared: PreparedEncryption; dataKey: Buffer }> {
    const cache = this.#cache;
    if (cache === undefined || plaintextLength === undefined) {
      const m = await this.#loadMaterials(context);
      return m; // fresh and uncached: the stream owns it and zeroes it
    }
    const partition = validatedPartition(context);
    const hit = cache.takeEncrypt(partition, plaintextLength);
    if (hit !== undefined) return { prepared: hit.prepared, dataKey: Buffer.from(hit.dataKey) };
    const { materials, cached } = await cache.loadEncrypt(partition, plaintextLength, () =>
      this.#loadMaterials(context),
    );
    return cached ? { prepared: materials.prepared, dataKey: Buffer.from(materials.dataKey) } : materials;
  }

  /**
   * Whether a header's data key goes through the cache. Legacy suites without a KDF (0x0014,
   * 0x0046, 0x0078) use the data key itself as the content key, so it is never cached
   * (caching-cmm.md, "Decrypt Materials": such materials always come from the underlying keyring).
   */
  #cachesDecrypt(header: MessageHeader): boolean {
    return this.#cache !== undefined && header.suite.kdfHash !== undefined;
  }

  // The data key for a header: synchronously from the cache when it is there, else a promise.
  // Uncached (#cachesDecrypt false) the key is the caller's to zero; cached, the cache's.
  #dataKeyFor(header: MessageHeader): Buffer | Promise<Buffer> {
    const cache = this.#cache;
    if (cache === undefined || header.suite.kdfHash === undefined) return this.#unwrap(header);
    const key = decryptCacheKey(header);
    return cache.getDecrypt(key) ?? cache.loadDecrypt(key, () => this.#unwrap(header));
  }

  // The unwrapped data key, owned by the caller (keyring-call.ts): the keyring's own buffer.
  async #unwrap(header: MessageHeader): Promise<Buffer> {
    this.#keyringCalls++;
    const dataKey = await callKeyring(
      () =>
        this.#keyring.onDecrypt({
          suiteId: header.suite.id,
          context: header.context,
          encryptedDataKeys: header.encryptedDataKeys,
        }),
      this.#keyringTimeoutMs,
      wipe,
    );
    if (dataKey === undefined) throw new NoDecryptableKeyError();
    return takeDataKey(dataKey, header.suite.keyLength);
  }

  async #loadMaterials(context: Readonly<EncryptionContext>): Promise<CachedMaterials> {
    const suite = this.#suite;
    let fullContext: Readonly<EncryptionContext> = context;
    let signingKey: KeyObject | undefined;
    if (suite.signatureCurve !== undefined) {
      // ESDK spec (framework/default-cmm.md): the public verification key goes into the context
      // before any keyring runs, so keyrings bind it as AAD.
      const pair = generateSigningKey(suite);
      signingKey = pair.privateKey;
      fullContext = Object.freeze({ ...context, [PUBLIC_KEY_CONTEXT_KEY]: pair.publicKey });
    }
    this.#keyringCalls++;
    const out = await callKeyring(
      () => this.#keyring.onEncrypt({ suiteId: suite.id, context: fullContext }),
      this.#keyringTimeoutMs,
      (late) => wipe(late?.dataKey),
    );
    // Ours from here on (keyring-call.ts): the keyring's buffer itself, zeroed when its life ends.
    const dataKey = takeDataKey(out?.dataKey, suite.keyLength);
    try {
      const edks = out.encryptedDataKeys;
      if (!Array.isArray(edks) || edks.length === 0) {
        throw new KeyringError('keyring returned no encrypted data key');
      }
      if (edks.length > this.#maxEdks) {
        throw new LimitExceededError(`keyring returned more than maxEncryptedDataKeys (${this.#maxEdks}) encrypted data keys`);
      }
      const encryptedDataKeys: EncryptedDataKey[] = edks.map(checkKeyringEdk);
      const prepared = prepareEncryption(
        { suite, dataKey, encryptedDataKeys, context: fullContext, signingKey },
        this.#frameLength,
      );
      return { dataKey, prepared };
    } catch (err) {
      dataKey.fill(0);
      throw err;
    }
  }
}

/**
 * The one read of a caller's encrypt context (src/cache/partition.ts), after the checks that need
 * no read: `undefined` is the empty context, anything but a non-array object is refused here.
 */
function readCallerContext(context: unknown): readonly unknown[] {
  if (context !== undefined && (context === null || typeof context !== 'object' || Array.isArray(context))) {
    checkEncryptContext(context, 'options.context'); // throws the TypeError naming the option
  }
  return readContextPairs(context as object | undefined);
}

/** The cache partition of a context checkEncryptContext returned (frozen, string values only). */
function validatedPartition(context: Readonly<EncryptionContext>): string {
  const partition = partitionOf(readContextPairs(context));
  if (partition === undefined) throw new TypeError('options.context values must be strings');
  return partition;
}

/**
 * Decrypt-side cache key: version, suite, serialized context and the encrypted data keys, taken
 * straight from the authenticated header bytes (everything but the message id and the per-message
 * fields). Two messages share an entry only if they carry the very same wrapped keys under the same
 * context, which is exactly when the keyring would return the same data key.
 */
function decryptCacheKey(h: MessageHeader): string {
  const a = h.authenticated;
  // v2: version(1) suite(2) messageId(32) | context, EDKs | contentType(1) frameLength(4) suiteData(32)
  // v1: version(1) type(1) suite(2) messageId(16) | context, EDKs | contentType(1) reserved(4) ivLength(1) frameLength(4)
  const [prefix, start, end] = h.version === 2 ? [3, 35, a.length - 37] : [4, 20, a.length - 10];
  // Typical headers (a few KMS EDKs) are a few hundred bytes: the bytes themselves are the key. A
  // large header would make a large resident key; a SHA-256 digest stands in for it then.
  if (prefix + end - start <= MAX_RAW_CACHE_KEY) return a.toString('latin1', 0, prefix) + a.toString('latin1', start, end);
  const digest = createHash('sha256').update(a.subarray(0, prefix)).update(a.subarray(start, end)).digest('base64');
  return '#' + digest; // '#' never starts a raw key, whose first byte is the version (1 or 2)
}

/** Longest decrypt cache key kept as raw header bytes; longer ones are hashed. */
const MAX_RAW_CACHE_KEY = 4096;

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
  return new KmsKeyring({
    ...rest,
    client: client ?? createDefaultKmsClient({ region, endpoint }),
  } as KmsKeyringOptions);
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
 * Serialized size of the `aws-crypto-public-key` pair a signed suite adds to the context: two
 * 2-byte lengths, the key, and the base64 of the compressed point (1 + coordinate bytes).
 */
function publicKeyPairBytes(suite: Suite): number {
  if (suite.signatureCurve === undefined) return 0;
  const point = 1 + (suite.signatureCurve === 'P-256' ? 32 : 48);
  return 4 + PUBLIC_KEY_CONTEXT_KEY.length + 4 * Math.ceil(point / 3);
}

/**
 * An EDK from the keyring, copied, if the header can hold it (message-header.md: provider id,
 * provider info and ciphertext are each at most 65,535 bytes); otherwise a KeyringError.
 */
function checkKeyringEdk(e: unknown, i: number): EncryptedDataKey {
  const edk = e as Partial<EncryptedDataKey> | null;
  if (
    edk === null ||
    typeof edk !== 'object' ||
    typeof edk.providerId !== 'string' ||
    !(edk.providerInfo instanceof Uint8Array) ||
    !(edk.ciphertext instanceof Uint8Array)
  ) {
    throw new KeyringError(
      `keyring returned a malformed encrypted data key (${i}): needs providerId string, providerInfo and ciphertext Uint8Arrays`,
    );
  }
  // An unpaired surrogate would be written as U+FFFD: the keyring could never find its EDK again.
  if (!isWellFormedUtf16(edk.providerId)) {
    throw new KeyringError(`keyring returned an encrypted data key (${i}) whose providerId is not well-formed UTF-16`);
  }
  if (Buffer.byteLength(edk.providerId, 'utf8') > 0xffff || edk.providerInfo.length > 0xffff || edk.ciphertext.length > 0xffff) {
    throw new KeyringError(`keyring returned an encrypted data key (${i}) with a field over 65535 bytes`);
  }
  return { providerId: edk.providerId, providerInfo: edk.providerInfo, ciphertext: edk.ciphertext };
}

/**
 * The names each call's options object may hold (src/options.ts): an unknown one is a TypeError,
 * so a misnamed option (the ESDK's `encryptionContext`) cannot silently drop a check.
 */
const ENCRYPT_OPTIONS: ReadonlySet<string> = new Set(['context']);
const ENCRYPT_STREAM_OPTIONS: ReadonlySet<string> = new Set(['context', 'plaintextLength']);
const ENCRYPT_FILE_OPTIONS: ReadonlySet<string> = new Set(['context', 'signal']);
const DECRYPT_OPTIONS: ReadonlySet<string> = new Set(['context', 'signaturePolicy']);
const DECRYPT_FILE_OPTIONS: ReadonlySet<string> = new Set(['context', 'signaturePolicy', 'signal']);

/**
 * Validates decrypt options (their names against `known`, for the call `where`) and returns the
 * required context pairs. `holdFinalFrame` was removed
 * (a signed message's final frame is always held until its signature verified) and is refused by
 * name, so no caller goes on believing it has an effect.
 */
function checkDecryptOptions(
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

function checkRequired(context: unknown): Readonly<EncryptionContext> {
  return checkDecryptContext(context, 'options.context');
}

function toBytes(input: Uint8Array | string, name: string): Uint8Array {
  if (input instanceof Uint8Array) return input;
  // A string must be well-formed UTF-16, else it would be encrypted as something else (U+FFFD).
  if (typeof input === 'string') return stringPlaintextBytes(input, name);
  throw new TypeError(`${name} must be a Uint8Array or a string`);
}

function intOption(
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

function emptyStats(): CacheStats {
  return {
    hits: 0,
    misses: 0,
    encryptHits: 0,
    encryptMisses: 0,
    decryptHits: 0,
    decryptMisses: 0,
    loads: 0,
    evictions: { capacity: 0, expired: 0, usage: 0, cleared: 0 },
    entries: 0,
  };
}
