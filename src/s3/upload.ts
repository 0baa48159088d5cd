/**
 * Encrypt while uploading: the body flows through `envelope.encryptStream` into a lib-storage
 * `Upload`, which sends one PutObject for small objects and a multipart upload otherwise. Memory
 * stays bounded by lib-storage's buffering (about queueSize x partSize) whatever the object size,
 * and the length need not be known in advance. A failure anywhere (the body, encryption, S3)
 * aborts the multipart upload, so no partial object ever becomes visible.
 */
import { pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import type { Envelope } from '../envelope.js';
import type { EncryptionContext } from '../types.js';
import { ENCRYPTED_CONTENT_TYPE, uploadMetadata } from './metadata.js';
import { loadStorage } from './sdk.js';
import { stringPlaintextBytes } from '../format/plaintext.js';

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
  /** Extra user metadata (keys `kms-envelope*` are reserved). */
  metadata?: Record<string, string>;
  /**
   * Multipart part size in bytes, 5 MiB .. 5 GiB (S3's limits). Default 8 MiB, or larger when
   * `plaintextLength` is known and would need more than S3's 10,000 parts. For streams of unknown
   * length the largest object is partSize x 10,000 (80 GB at the default).
   */
  partSize?: number;
  /** Parts uploaded in parallel, 1 .. 64, default 4. Memory is about queueSize x partSize. */
  queueSize?: number;
  /**
   * Plaintext length of a Readable body in bytes, when known: lets the data-key cache serve the
   * stream and is recorded as metadata. Ignored for byte and string bodies (their length is known).
   */
  plaintextLength?: number;
  /** Aborts the upload (and the multipart upload on S3). */
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

const MiB = 1024 * 1024;
const MIN_PART = 5 * MiB;
const MAX_PART = 5 * 1024 * MiB;
const DEFAULT_PART = 8 * MiB;
const MAX_PARTS = 10_000;

export async function uploadEncrypted(options: UploadEncryptedOptions): Promise<UploadEncryptedResult> {
  const o = checkOptions(options);
  const { Upload } = await loadStorage();

  let source: Buffer | Readable;
  const plainCount = new ByteCounter(true);
  const cipherCount = new ByteCounter();
  let failure: unknown;
  const bytes =
    o.body instanceof Readable ? undefined : typeof o.body === 'string' ? stringPlaintextBytes(o.body, 'options.body') : o.body;
  const plaintextLength = bytes === undefined ? o.plaintextLength : bytes.length;
  // Validated before anything starts: a bad option must not cost a KMS call or consume the body.
  const metadata = uploadMetadata(o.metadata, o.contentType, plaintextLength);

  if (bytes === undefined) {
    const encrypt = o.envelope.encryptStream({ context: o.context, plaintextLength });
    // pipeline destroys every stage with the first error, so the Upload's reader sees it and aborts.
    pipeline(o.body, plainCount, encrypt, cipherCount, (err) => {
      if (err) failure ??= err;
    });
    source = cipherCount;
  } else {
    source = await o.envelope.encrypt(bytes, { context: o.context });
    plainCount.count = bytes.length;
    cipherCount.count = source.length;
  }

  const upload = new Upload({
    client: o.client as never,
    params: {
      Bucket: o.bucket,
      Key: o.key,
      Body: source,
      ContentType: ENCRYPTED_CONTENT_TYPE,
      Metadata: metadata,
    },
    partSize: o.partSize ?? partSizeFor(plaintextLength),
    queueSize: o.queueSize ?? 4,
    leavePartsOnError: false,
  });
  // Abort by failing the body rather than with upload.abort(): lib-storage then settles done() only
  // after it has sent AbortMultipartUpload, so no incomplete multipart upload outlives the call.
  // (A part already in flight finishes first.)
  const onAbort = () => {
    failure ??= abortError();
    if (source instanceof Readable) source.destroy(failure as Error);
    else void upload.abort(); // a single buffered PutObject: nothing to clean up
  };
  if (o.signal?.aborted) onAbort();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const out = (await upload.done()) as { ETag?: string; VersionId?: string };
    if (failure !== undefined) throw failure; // defensive: an error after the last byte was read
    return { etag: out.ETag, bytes: cipherCount.count, plaintextBytes: plainCount.count, versionId: out.VersionId };
  } catch (err) {
    // The stream error is the cause; lib-storage may report it second-hand.
    throw failure ?? err;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    if (source instanceof Readable && !source.destroyed) source.destroy();
  }
}

/** Default part size: 8 MiB, raised when a known length would otherwise need more than 10,000 parts. */
function partSizeFor(plaintextLength: number | undefined): number {
  if (plaintextLength === undefined) return DEFAULT_PART;
  // Ciphertext is plaintext + under 1% framing (28 bytes per frame of >= 1 KiB in practice) + header.
  const estimate = Math.ceil(plaintextLength * 1.01) + MiB;
  return Math.min(MAX_PART, Math.max(DEFAULT_PART, Math.ceil(estimate / MAX_PARTS)));
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

function abortError(): Error {
  const e = new Error('upload aborted');
  e.name = 'AbortError';
  return e;
}

function checkOptions(options: UploadEncryptedOptions): UploadEncryptedOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('uploadEncrypted options must be an object');
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
