import { createHash, type KeyObject } from 'node:crypto';
import {
  CommitmentPolicyError,
  KeyringError,
  LimitExceededError,
  MalformedMessageError,
  NoDecryptableKeyError,
  SignaturePolicyError,
} from './errors.js';
import type { EncryptedDataKey, EncryptionContext, Keyring, KeyringDecryptInput, KeyringEncryptInput, KeyringEncryptOutput } from './types.js';
import { DECRYPT_NOW, ENCRYPT_NOW, keyringMethod } from './keyrings/immediate.js';
import type { Suite } from './format/suites.js';
import {
  checkEncryptContext,
  checkRequiredContext,
  isWellFormedUtf16,
  markLibraryContext,
  PUBLIC_KEY_CONTEXT_KEY,
} from './format/context.js';
import { parseHeader, type MessageHeader } from './format/header.js';
import { stringPlaintextBytes } from './format/plaintext.js';
import { encryptBuffer, prepareEncryption, type PreparedEncryption } from './format/encrypt.js';
import { decryptBody, deriveAndVerifyHeader, type DecryptionKey } from './format/decrypt.js';
import { generateSigningKey } from './crypto/ecdsa.js';
import { secretCopy } from './crypto/secret-buffer.js';
import { DataKeyCache } from './cache/cache.js';
import type { CacheStats } from './cache/index.js';
import { pairsToObject, partitionOf, readContextPairs } from './cache/partition.js';
import { foreignKeyringError, KeyringDeadlines, takeDataKey, wipe } from './keyring-call.js';
import {
  createDecryptStream,
  createEncryptStream,
  decryptFile,
  encryptFile,
  type DecryptStream,
  type EncryptStream,
} from './stream/index.js';
import { checkOptionNames } from './options.js';
import {
  checkDecryptOptions,
  DECRYPT_FILE_OPTIONS,
  DECRYPT_OPTIONS,
  ENCRYPT_FILE_OPTIONS,
  ENCRYPT_OPTIONS,
  ENCRYPT_STREAM_OPTIONS,
  resolveEnvelopeOptions,
  type CommitmentPolicy,
  type DecryptOptions,
  type DecryptStreamOptions,
  type EncryptOptions,
  type EncryptStreamOptions,
  type EnvelopeOptions,
  type FileOptions,
} from './envelope-options.js';

// The option types are part of the Envelope's API; they live with their validation.
export type {
  CommitmentPolicy,
  DecryptOptions,
  DecryptStreamOptions,
  EncryptOptions,
  EncryptStreamOptions,
  EnvelopeKmsOptions,
  EnvelopeOptions,
  FileOptions,
  SignaturePolicy,
} from './envelope-options.js';
export { DEFAULT_FRAME_LENGTH, DEFAULT_KEYRING_TIMEOUT_MS } from './envelope-options.js';

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
  /** The keyring's calls: its immediate methods when it has them (keyrings/immediate.ts), else onEncrypt/onDecrypt. */
  readonly #onEncrypt: (input: KeyringEncryptInput) => KeyringEncryptOutput | Promise<KeyringEncryptOutput>;
  readonly #onDecrypt: (input: KeyringDecryptInput) => Uint8Array | undefined | Promise<Uint8Array | undefined>;
  readonly #suite: Suite;
  readonly #frameLength: number;
  readonly #policy: CommitmentPolicy;
  readonly #maxEdks: number;
  readonly #maxHeaderBytes: number;
  readonly #maxFrameLength: number;
  readonly #maxBodyBytes: number;
  /** Bounds every keyring call by keyringTimeoutMs, with one shared timer (keyring-call.ts). */
  readonly #deadlines: KeyringDeadlines;
  readonly #cache: DataKeyCache<CachedMaterials> | undefined;
  /**
   * Validated contexts by partition (src/cache/partition.ts), for encrypts without a data-key
   * cache: a caller that encrypts under the same few contexts gets the frozen copy validated (and
   * serialized: format/context.ts) the first time. At most CONTEXT_MEMO_ENTRIES of at most
   * CONTEXT_MEMO_CHARS each, oldest dropped first; contexts are not secret.
   */
  readonly #contexts = new Map<string, Readonly<EncryptionContext>>();
  /** Serialized bytes the library adds to the caller's context (the public key pair of signed suites). */
  readonly #contextReserve: number;
  #keyringCalls = 0;

  constructor(options: EnvelopeOptions) {
    const o = resolveEnvelopeOptions(options);
    this.#keyring = o.keyring;
    this.#onEncrypt = keyringMethod(o.keyring, 'onEncrypt', ENCRYPT_NOW);
    this.#onDecrypt = keyringMethod(o.keyring, 'onDecrypt', DECRYPT_NOW);
    this.#suite = o.suite;
    this.#contextReserve = publicKeyPairBytes(this.#suite);
    this.#policy = o.commitmentPolicy;
    this.#maxEdks = o.maxEncryptedDataKeys;
    this.#maxHeaderBytes = o.maxHeaderBytes;
    this.#frameLength = o.frameLength;
    this.#maxFrameLength = o.maxFrameLength;
    this.#maxBodyBytes = o.maxBodyBytes;
    this.#deadlines = new KeyringDeadlines(o.keyringTimeoutMs);
    this.#cache = o.cache === false ? undefined : new DataKeyCache<CachedMaterials>(o.cache);
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
      // A keyring that answers at once (keyrings/immediate.ts) costs no await here.
      const loaded = this.#loadMaterials(this.#checkedContext(options?.context), 'message');
      const m = loaded instanceof Promise ? await loaded : loaded;
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
    const { materials, cached } = await cache.loadEncrypt(validatedPartition(context), data.length, async () =>
      this.#loadMaterials(context, 'long'),
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
        return this.#cachesDecrypt(header) ? secretCopy(dataKey) : dataKey;
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

  /**
   * checkEncryptContext of a caller's context, read once (readCallerContext). A partition is a
   * prefix code of the pairs, so a remembered context is returned only for a read equal to one that
   * passed validation: the reasoning of the data-key cache's hit path (src/cache/partition.ts).
   */
  #checkedContext(context: unknown): Readonly<EncryptionContext> {
    const pairs = readCallerContext(context);
    const partition = partitionOf(pairs);
    const memo = partition !== undefined && partition.length <= CONTEXT_MEMO_CHARS;
    if (memo) {
      const known = this.#contexts.get(partition);
      if (known !== undefined) return known;
    }
    const checked = checkEncryptContext(pairsToObject(pairs), 'options.context', this.#contextReserve);
    if (memo) {
      if (this.#contexts.size >= CONTEXT_MEMO_ENTRIES) this.#contexts.delete(this.#contexts.keys().next().value!);
      this.#contexts.set(partition, checked);
    }
    return checked;
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
      const m = await this.#loadMaterials(context, 'long');
      return m; // fresh and uncached: the stream owns it and zeroes it
    }
    const partition = validatedPartition(context);
    const hit = cache.takeEncrypt(partition, plaintextLength);
    if (hit !== undefined) return { prepared: hit.prepared, dataKey: secretCopy(hit.dataKey) };
    const { materials, cached } = await cache.loadEncrypt(partition, plaintextLength, async () =>
      this.#loadMaterials(context, 'long'),
    );
    return cached ? { prepared: materials.prepared, dataKey: secretCopy(materials.dataKey) } : materials;
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
    return cache.getDecrypt(key) ?? cache.loadDecrypt(key, async () => this.#unwrap(header));
  }

  // The unwrapped data key, owned by the caller (keyring-call.ts): a copy the keyring's bytes were wiped from.
  // Synchronous when the keyring answered at once (keyrings/immediate.ts).
  #unwrap(header: MessageHeader): Buffer | Promise<Buffer> {
    this.#keyringCalls++;
    const input = { suiteId: header.suite.id, context: header.context, encryptedDataKeys: header.encryptedDataKeys };
    const keyLength = header.suite.keyLength;
    return this.#deadlines.callNow(() => this.#onDecrypt(input), wipe, (k) => unwrapped(k, keyLength));
  }

  // Materials, synchronously when the keyring answered at once. `lifetime`: 'message' when they
  // are used for one buffer encrypt and dropped, 'long' when a cache or a stream keeps them
  // (serializeHeaderTemplate says what that changes).
  #loadMaterials(context: Readonly<EncryptionContext>, lifetime: 'long' | 'message'): CachedMaterials | Promise<CachedMaterials> {
    const suite = this.#suite;
    let fullContext: Readonly<EncryptionContext> = context;
    let signingKey: KeyObject | undefined;
    if (suite.signatureCurve !== undefined) {
      // ESDK spec (framework/default-cmm.md): the public verification key goes into the context
      // before any keyring runs, so keyrings bind it as AAD.
      const pair = generateSigningKey(suite);
      signingKey = pair.privateKey;
      fullContext = markLibraryContext(
        Object.freeze(Object.assign(Object.create(null) as EncryptionContext, context, { [PUBLIC_KEY_CONTEXT_KEY]: pair.publicKey })),
      );
    }
    this.#keyringCalls++;
    const input = { suiteId: suite.id, context: fullContext };
    return this.#deadlines.callNow(
      () => this.#onEncrypt(input),
      (late) => wipe(late?.dataKey),
      (out) => this.#materialsFrom(out, fullContext, signingKey, lifetime),
    );
  }

  #materialsFrom(
    out: KeyringEncryptOutput,
    fullContext: Readonly<EncryptionContext>,
    signingKey: KeyObject | undefined,
    lifetime: 'long' | 'message',
  ): CachedMaterials {
    const suite = this.#suite;
    // The keyring's answer is read once, each field through foreignKeyringError (a getter on it
    // may throw anything).
    let given: unknown;
    let edks: unknown;
    try {
      given = out?.dataKey;
      edks = out?.encryptedDataKeys;
    } catch (err) {
      wipe(given);
      throw foreignKeyringError(err);
    }
    // Ours from here on (keyring-call.ts): copied into a buffer of our own, zeroed when its life ends.
    const dataKey = takeDataKey(given, suite.keyLength);
    try {
      let encryptedDataKeys: EncryptedDataKey[];
      try {
        // A Proxy passes Array.isArray and may throw from any trap: typed errors only.
        if (!Array.isArray(edks) || edks.length === 0) {
          throw new KeyringError('keyring returned no encrypted data key');
        }
        if (edks.length > this.#maxEdks) {
          throw new LimitExceededError(`keyring returned more than maxEncryptedDataKeys (${this.#maxEdks}) encrypted data keys`);
        }
        encryptedDataKeys = edks.map(checkKeyringEdk);
      } catch (err) {
        throw foreignKeyringError(err);
      }
      const prepared = prepareEncryption(
        { suite, dataKey, encryptedDataKeys, context: fullContext, signingKey },
        this.#frameLength,
        lifetime,
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

/** Validated encrypt contexts remembered per Envelope without a data-key cache, and their largest partition (UTF-16 code units). */
const CONTEXT_MEMO_ENTRIES = 64;
const CONTEXT_MEMO_CHARS = 2048;

/** Longest decrypt cache key kept as raw header bytes; longer ones are hashed. */
const MAX_RAW_CACHE_KEY = 4096;

/**
 * Serialized size of the `aws-crypto-public-key` pair a signed suite adds to the context: two
 * 2-byte lengths, the key, and the base64 of the compressed point (1 + coordinate bytes).
 */
function publicKeyPairBytes(suite: Suite): number {
  if (suite.signatureCurve === undefined) return 0;
  const point = 1 + (suite.signatureCurve === 'P-256' ? 32 : 48);
  return 4 + PUBLIC_KEY_CONTEXT_KEY.length + 4 * Math.ceil(point / 3);
}

/** A keyring's decrypt answer as the Envelope's data key (takeDataKey), or NoDecryptableKeyError for none. */
function unwrapped(dataKey: Uint8Array | undefined, keyLength: number): Buffer {
  if (dataKey === undefined) throw new NoDecryptableKeyError();
  return takeDataKey(dataKey, keyLength);
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

function toBytes(input: Uint8Array | string, name: string): Uint8Array {
  if (input instanceof Uint8Array) return input;
  // A string must be well-formed UTF-16, else it would be encrypted as something else (U+FFFD).
  if (typeof input === 'string') return stringPlaintextBytes(input, name);
  throw new TypeError(`${name} must be a Uint8Array or a string`);
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
