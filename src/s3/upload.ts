/**
 * Encrypt while uploading: the body flows through `envelope.encryptStream` into a lib-storage
 * `Upload`, which sends one PutObject for small objects and a multipart upload otherwise. Memory
 * stays bounded by lib-storage's buffering (about queueSize x partSize) whatever the object size,
 * and the length need not be known in advance.
 *
 * What a settled call means (the contract the README states):
 * - resolved: the final request (PutObject, or CompleteMultipartUpload) succeeded; the object exists.
 * - rejected: this call wrote no object, no request of it is still running, and a multipart
 *   upload it created was aborted (AbortMultipartUpload sent and answered) before the rejection.
 *   The error is the first failure: the S3 error (as the SDK reports it), the body's or the
 *   encryption's error, or an AbortError for the caller's abort.
 * The one case S3 leaves open: if the final request fails without an answer (connection reset),
 * S3 may still have stored the object; the call rejects with the network error.
 */
import { once } from 'node:events';
import { PassThrough, pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import type { Envelope } from '../envelope.js';
import type { MessageHeader } from '../format/header.js';
import { SUITES } from '../format/suites.js';
import type { EncryptionContext } from '../types.js';
import { ENCRYPTED_CONTENT_TYPE, uploadMetadata } from './metadata.js';
import { checkPartSize, DEFAULT_PART, encryptedLength, MAX_PART, MIN_PART, partSizeFor } from './part-size.js';
import { loadS3, loadStorage, type S3Module } from './sdk.js';
import { stringPlaintextBytes } from '../format/plaintext.js';
import { checkOptionNames } from '../options.js';

/** Anything with an AWS SDK v3 `send(command)`: an `S3Client` from `@aws-sdk/client-s3`. */
export interface S3ClientLike {
  send(command: unknown, options?: unknown): Promise<unknown>;
}

export interface UploadEncryptedOptions {
  /** An `S3Client` (typed structurally so this package's types do not require `@aws-sdk/client-s3`). */
  client: S3ClientLike;
  bucket: string;
  key: string;
  /** The plaintext: bytes, a string (encrypted as UTF-8; it must be well-formed UTF-16, else TypeError), or a Node Readable of any (even unknown) length. */
  body: Uint8Array | string | Readable;
  envelope: Envelope;
  /** Encryption context, stored authenticated in the message header (not in S3 metadata). */
  context?: EncryptionContext;
  /** The plaintext's media type, recorded as `x-amz-meta-kms-envelope-content-type`. */
  contentType?: string;
  /**
   * Extra user metadata. Every key starting with `kms-envelope` (any case) is reserved, not only
   * the three this version writes: TypeError naming the key, before any request.
   */
  metadata?: Record<string, string>;
  /**
   * Multipart part size in bytes, 5 MiB .. 5 GiB (S3's limits). Default 8 MiB, or the smallest
   * whole MiB that fits the object in S3's 10,000 parts when the length is known (byte and string
   * bodies, or `plaintextLength`). The encrypted size is computed exactly from the header and the
   * framing (32 bytes per frame: 25% at 128-byte frames), see part-size.ts. With a known length an
   * explicit partSize that would need more than 10,000 parts, or an object over S3's 5 TiB, is a
   * RangeError before any request. For streams of unknown length the largest object is
   * partSize x 10,000 (80 GiB at the default).
   */
  partSize?: number;
  /** Parts uploaded in parallel, 1 .. 64, default 4. Memory is about queueSize x partSize. */
  queueSize?: number;
  /**
   * Plaintext length of a Readable body in bytes, when known: lets the data-key cache serve the
   * stream and is recorded as metadata. Ignored for byte and string bodies (their length is known).
   */
  plaintextLength?: number;
  /**
   * Aborts the upload until its final request (PutObject or CompleteMultipartUpload) is sent: no
   * new request starts, parts already in flight finish (S3 cannot recall them), the multipart
   * upload is aborted, then the call rejects with an `AbortError` whose `cause` is
   * `signal.reason`. An abort that arrives while the final request is in flight changes nothing:
   * the call settles on that request's outcome (resolves if S3 stored the object), so a
   * resolved call always means the object exists.
   */
  signal?: AbortSignal;
}

export interface UploadEncryptedResult {
  /** ETag S3 returned (quoted, as S3 sends it). */
  etag: string | undefined;
  /** Bytes stored: the size of the encrypted message. */
  bytes: number;
  /** Plaintext bytes read from the body. */
  plaintextBytes: number;
  versionId: string | undefined;
}

export async function uploadEncrypted(options: UploadEncryptedOptions): Promise<UploadEncryptedResult> {
  const o = checkOptions(options);
  const { Upload } = await loadStorage();
  const sdk = await loadS3();
  const stream = o.body instanceof Readable ? o.body : undefined;
  const bytes = stream !== undefined ? undefined : typeof o.body === 'string' ? stringPlaintextBytes(o.body, 'options.body') : (o.body as Uint8Array);
  const plaintextLength = bytes === undefined ? o.plaintextLength : bytes.length;
  // Validated before anything starts: a bad option must not cost a KMS call or consume the body.
  const metadata = uploadMetadata(o.metadata, o.contentType, plaintextLength);
  if (plaintextLength !== undefined) checkLength(o, lowerBound(o.envelope, plaintextLength));
  if (o.signal?.aborted) {
    stream?.destroy();
    throw abortError(o.signal.reason);
  }

  const gate = new RequestGate(o.client, sdk);
  // An abort stops the upload only until its final request is sent (see UploadEncryptedOptions.signal).
  const onAbort = () => gate.abort(abortError(o.signal?.reason));
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const plainCount = new ByteCounter(true);
  const cipherCount = new ByteCounter();
  try {
    let source: Buffer | Readable;
    let partSize = o.partSize;
    if (stream !== undefined) {
      const encrypt = o.envelope.encryptStream({ context: o.context, plaintextLength });
      const header =
        plaintextLength === undefined ? undefined : once(encrypt, 'header', { signal: gate.stopped }).then(([h]) => h as MessageHeader);
      header?.catch(() => undefined); // awaited below; a failure before then must not be unhandled
      // pipeline destroys every stage with the first error. That error is the body's or the
      // encryption's own: lib-storage reads `feed`, outside the pipeline, so when it stops reading
      // early (after a failed part) no teardown "AbortError" can take the place of the S3 error.
      pipeline(stream, plainCount, encrypt, cipherCount, (err) => {
        if (err) gate.fail(err);
      });
      const feed = new PassThrough();
      cipherCount.pipe(feed);
      gate.stopped.addEventListener('abort', () => {
        cipherCount.destroy(gate.failure as Error);
        // Destroyed with an error, never ended: lib-storage must not take a stop for the end of the body.
        feed.destroy(gate.failure as Error);
      });
      source = feed;
      if (header !== undefined) {
        // Known length: the exact encrypted size needs the header (its data keys and context).
        const h = await header;
        partSize = checkLength(o, encryptedLength({ plaintextLength: plaintextLength!, headerLength: h.length, frameLength: h.frameLength, suite: h.suite }));
      }
    } else {
      source = await o.envelope.encrypt(bytes!, { context: o.context });
      plainCount.count = bytes!.length;
      cipherCount.count = source.length;
      if (gate.failure !== undefined) throw gate.failure; // aborted while encrypting
      partSize = checkLength(o, source.length);
    }

    const upload = new Upload({
      client: gate.client as never,
      params: {
        Bucket: o.bucket,
        Key: o.key,
        Body: source,
        ContentType: ENCRYPTED_CONTENT_TYPE,
        Metadata: metadata,
      },
      partSize: partSize ?? DEFAULT_PART,
      queueSize: o.queueSize ?? 4,
      leavePartsOnError: false,
    });
    // upload.abort() is never called: it would settle done() at once, with parts and the final
    // request still running. The gate refuses new requests instead, so done() settles only after
    // lib-storage has seen every request it started finish.
    const out = (await upload.done()) as { ETag?: string; VersionId?: string };
    // Resolved: the final PutObject / CompleteMultipartUpload succeeded, so the object exists,
    // even if an abort arrived while that request was in flight.
    return { etag: out.ETag, bytes: cipherCount.count, plaintextBytes: plainCount.count, versionId: out.VersionId };
  } catch (err) {
    gate.fail(err);
    await gate.abortMultipartUpload(o.bucket, o.key);
    // The first failure is the cause; what lib-storage reports may be a consequence of it.
    throw gate.failure;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Stands between lib-storage and the caller's client. It records the first failure (the one the
 * call reports), the multipart upload id, and whether the final request (PutObject or
 * CompleteMultipartUpload: the one that makes the object visible) was sent. Once stopped, it
 * refuses every new request but AbortMultipartUpload, so after an abort or a failure no part,
 * and no final request, can start.
 */
class RequestGate {
  failure: unknown = undefined;
  /** Aborted on the first failure; its listeners stop the body. */
  readonly #stop = new AbortController();
  #committing = false;
  #uploadId: string | undefined;
  #abortSent = false;
  readonly client: S3ClientLike;

  constructor(
    private readonly real: S3ClientLike,
    private readonly sdk: S3Module,
  ) {
    // lib-storage also reads client.config (endpoint, checksum settings): inherit everything, wrap send.
    this.client = Object.create(real, { send: { value: (c: unknown, opts?: unknown) => this.#send(c, opts) } }) as S3ClientLike;
  }

  get stopped(): AbortSignal {
    return this.#stop.signal;
  }

  /** Records `err` if it is the first failure, and stops everything. */
  fail(err: unknown): void {
    if (this.#stop.signal.aborted) return;
    this.failure = err;
    this.#stop.abort(err);
  }

  /** The caller's abort: effective until the final request is sent; after that its outcome decides. */
  abort(err: Error): void {
    if (!this.#committing) this.fail(err);
  }

  /**
   * Makes sure no incomplete multipart upload of this call stays on S3 (where its parts would be
   * stored and billed until aborted). lib-storage sends AbortMultipartUpload itself when a part
   * fails, but not when the final request fails or is refused. Sent at most once; if it fails the
   * call still reports the original failure (a bucket lifecycle rule AbortIncompleteMultipartUpload
   * is the backstop).
   */
  async abortMultipartUpload(bucket: string, key: string): Promise<void> {
    if (this.#uploadId === undefined || this.#abortSent) return;
    this.#abortSent = true;
    const command = new this.sdk.AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: this.#uploadId });
    await this.real.send(command).catch(() => undefined);
  }

  async #send(command: unknown, options?: unknown): Promise<unknown> {
    const kind = this.#kind(command);
    if (kind === 'abort') {
      this.#abortSent = true;
      return this.real.send(command, options);
    }
    if (this.#stop.signal.aborted) throw this.failure;
    if (kind === 'final') this.#committing = true;
    try {
      const out = await this.real.send(command, options);
      if (kind === 'create') this.#uploadId = (out as { UploadId?: string }).UploadId;
      return out;
    } catch (err) {
      this.fail(err);
      throw err;
    }
  }

  #kind(command: unknown): 'abort' | 'final' | 'create' | 'other' {
    const is = (c: new (...args: never[]) => unknown) =>
      command instanceof c || (command as { constructor?: { name?: string } })?.constructor?.name === c.name;
    if (is(this.sdk.AbortMultipartUploadCommand)) return 'abort';
    if (is(this.sdk.PutObjectCommand) || is(this.sdk.CompleteMultipartUploadCommand)) return 'final';
    if (is(this.sdk.CreateMultipartUploadCommand)) return 'create';
    return 'other';
  }
}

/**
 * Checks the encrypted size against S3's limits; returns the part size to use: the caller's
 * (checked to fit in 10,000 parts) or the computed one.
 */
function checkLength(o: UploadEncryptedOptions, encryptedBytes: number | undefined): number | undefined {
  if (encryptedBytes === undefined) return o.partSize;
  if (o.partSize === undefined) return partSizeFor(encryptedBytes);
  checkPartSize(o.partSize, encryptedBytes);
  return o.partSize;
}

/**
 * A lower bound of the encrypted size, known before any KMS call: the body and footer without the
 * header (which is longer than the 2 bytes the footer may be overcounted by). Lets an upload that
 * cannot fit S3's limits fail before it starts.
 */
function lowerBound(envelope: Envelope, plaintextLength: number): number | undefined {
  const suite = SUITES.get(envelope.suiteId);
  const frameLength = envelope.frameLength;
  if (suite === undefined || !Number.isSafeInteger(frameLength) || frameLength < 1) return undefined;
  return encryptedLength({ plaintextLength, headerLength: 0, frameLength, suite });
}

/**
 * Counts the bytes passing through. As the plaintext counter (`plaintext` true) it is the first
 * stage after a Readable body, so it decodes string chunks itself (decodeStrings: false): the
 * Writable's own Buffer.from would turn an unpaired surrogate into U+FFFD, which is refused
 * instead (see stringPlaintextBytes).
 */
class ByteCounter extends Transform {
  count = 0;
  constructor(plaintext = false) {
    super(plaintext ? { decodeStrings: false } : undefined);
  }
  override _transform(chunk: Buffer | string, enc: BufferEncoding, cb: TransformCallback): void {
    if (typeof chunk === 'string') {
      try {
        chunk = stringPlaintextBytes(chunk, 'plaintext (a string chunk of options.body)', enc);
      } catch (err) {
        cb(err as Error);
        return;
      }
    }
    this.count += chunk.length;
    cb(null, chunk);
  }
}

function abortError(reason: unknown): Error {
  const e = new Error('upload aborted', { cause: reason });
  e.name = 'AbortError';
  return e;
}

/** Option names of uploadEncrypted (src/options.ts): a misnamed `context` must not write an empty context. */
const UPLOAD_OPTIONS: ReadonlySet<string> = new Set([
  'client',
  'bucket',
  'key',
  'body',
  'envelope',
  'context',
  'contentType',
  'metadata',
  'partSize',
  'queueSize',
  'plaintextLength',
  'signal',
]);

function checkOptions(options: UploadEncryptedOptions): UploadEncryptedOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('uploadEncrypted options must be an object');
  checkOptionNames(options, UPLOAD_OPTIONS, 'uploadEncrypted');
  const o = options;
  if (o.client === null || typeof o.client !== 'object' || typeof o.client.send !== 'function') {
    throw new TypeError('options.client must be an S3Client from @aws-sdk/client-s3');
  }
  checkName(o.bucket, 'options.bucket');
  checkName(o.key, 'options.key');
  if (
    o.envelope === null ||
    typeof o.envelope !== 'object' ||
    typeof o.envelope.encrypt !== 'function' ||
    typeof o.envelope.encryptStream !== 'function'
  ) {
    throw new TypeError('options.envelope must be an Envelope');
  }
  if (!(o.body instanceof Readable) && !(o.body instanceof Uint8Array) && typeof o.body !== 'string') {
    throw new TypeError('options.body must be a Uint8Array, a string or a Readable');
  }
  if (o.contentType !== undefined && (typeof o.contentType !== 'string' || o.contentType.length === 0)) {
    throw new TypeError('options.contentType must be a non-empty string');
  }
  if (o.partSize !== undefined && (!Number.isInteger(o.partSize) || o.partSize < MIN_PART || o.partSize > MAX_PART)) {
    throw new RangeError(`options.partSize must be an integer number of bytes from ${MIN_PART} (5 MiB) to ${MAX_PART} (5 GiB)`);
  }
  if (o.queueSize !== undefined && (!Number.isInteger(o.queueSize) || o.queueSize < 1 || o.queueSize > 64)) {
    throw new RangeError('options.queueSize must be an integer number of parallel part uploads from 1 to 64');
  }
  if (o.plaintextLength !== undefined && (!Number.isSafeInteger(o.plaintextLength) || o.plaintextLength < 0)) {
    throw new RangeError('options.plaintextLength must be a non-negative integer number of bytes');
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new TypeError('options.signal must be an AbortSignal');
  return o;
}

export function checkName(v: unknown, option: string): void {
  if (typeof v !== 'string' || v.length === 0) throw new TypeError(`${option} must be a non-empty string`);
  if (Buffer.byteLength(v, 'utf8') > 1024) throw new RangeError(`${option} must be at most 1024 UTF-8 bytes`);
}
