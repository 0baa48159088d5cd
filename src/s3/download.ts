/**
 * Decrypt while downloading: GetObject's body flows through `envelope.decryptStream`. The returned
 * stream emits a frame's plaintext only after its tag verified; if the object was modified, cut
 * short (or the connection dropped), or extended, the stream ends with an `error` event, never
 * with a silently short plaintext. For signed suites the final frame is held until the signature
 * verifies.
 */
import { pipeline, Readable } from 'node:stream';
import { LimitExceededError, MalformedMessageError } from '../errors.js';
import type { DecryptResult, Envelope, SignaturePolicy } from '../envelope.js';
import { checkDecryptContext } from '../format/context.js';
import { checkOptionNames } from '../options.js';
import type { EncryptionContext } from '../types.js';
import { readMetadata, type EncryptedObjectInfo } from './metadata.js';
import { loadS3 } from './sdk.js';
import { checkName, type S3ClientLike } from './upload.js';

export interface DownloadDecryptedOptions {
  client: S3ClientLike;
  bucket: string;
  key: string;
  envelope: Envelope;
  /** Pairs that must be in the message's encryption context with these values. */
  context?: EncryptionContext;
  versionId?: string;
  /**
   * `'ALLOW_ENCRYPT_FORBID_DECRYPT'` refuses signed objects (ERR_SIGNATURE_POLICY) right after their
   * header, before any KMS call; default `'ALLOW_ENCRYPT_ALLOW_DECRYPT'`. See `DecryptOptions.signaturePolicy`.
   */
  signaturePolicy?: SignaturePolicy;
  /**
   * Reject objects without the `kms-envelope: 1` metadata marker (ERR_MALFORMED_MESSAGE) before
   * decrypting. Default false: any ESDK message decrypts, whoever uploaded it.
   */
  requireMarker?: boolean;
  signal?: AbortSignal;
}

/** The plaintext stream, with what the object's metadata says about it. */
export type DecryptedObjectStream = Readable & {
  object: EncryptedObjectInfo & { etag: string | undefined; versionId: string | undefined; encryptedLength: number | undefined };
};

async function getObject(o: DownloadDecryptedOptions, known: ReadonlySet<string>, where: string) {
  checkOptions(o, known, where);
  const { GetObjectCommand } = await loadS3();
  const out = (await o.client.send(
    new GetObjectCommand({ Bucket: o.bucket, Key: o.key, VersionId: o.versionId }),
    o.signal !== undefined ? { abortSignal: o.signal } : undefined,
  )) as {
    Body?: unknown;
    Metadata?: Record<string, string>;
    ETag?: string;
    VersionId?: string;
    ContentLength?: number;
  };
  const body = out.Body;
  if (!(body instanceof Readable)) {
    throw new TypeError('GetObject returned a body that is not a Node Readable (is the S3Client configured for Node?)');
  }
  const info = readMetadata(out.Metadata);
  if (o.requireMarker === true && !info.marked) {
    body.destroy();
    // Not authenticated either way, but a caller who asks for it wants only objects we labelled.
    throw new MalformedMessageError('object has no kms-envelope metadata marker (requireMarker is set)');
  }
  return {
    body,
    object: { ...info, etag: out.ETag, versionId: out.VersionId, encryptedLength: out.ContentLength },
  };
}

/** Fetches an object and returns its plaintext as a stream (see the module comment for guarantees). */
export async function downloadDecrypted(options: DownloadDecryptedOptions): Promise<DecryptedObjectStream> {
  checkOptions(options, DOWNLOAD_OPTIONS, 'downloadDecrypted');
  // Before GetObject: decryptStream validates the required context, and a TypeError after the
  // request would leave the response body (and its socket) open.
  // Signed messages: the final frame always waits for the signature (client-apis/decrypt.md).
  const decrypt = options.envelope.decryptStream({ context: options.context, signaturePolicy: options.signaturePolicy });
  const { body, object } = await getObject(options, DOWNLOAD_OPTIONS, 'downloadDecrypted');
  // pipeline forwards a body error (socket reset, abort) to `decrypt` as its error; an early clean
  // end is caught by decryptStream itself as a truncated message.
  pipeline(body, decrypt, () => {});
  return Object.assign(decrypt as unknown as Readable, { object });
}

export interface DownloadDecryptedBufferOptions extends DownloadDecryptedOptions {
  /** Largest object accepted, in bytes (1 .. 2^53-1), default 256 MiB; use downloadDecrypted for larger ones. */
  maxBytes?: number;
}

/** Fetches a (small) object and decrypts it in memory. Returns the plaintext, its context and suite. */
export async function downloadDecryptedBuffer(
  options: DownloadDecryptedBufferOptions,
): Promise<DecryptResult & { object: DecryptedObjectStream['object'] }> {
  checkOptions(options, DOWNLOAD_BUFFER_OPTIONS, 'downloadDecryptedBuffer');
  const max = options.maxBytes ?? 256 * 1024 * 1024;
  if (!Number.isSafeInteger(max) || max < 1) throw new RangeError('options.maxBytes must be a positive integer number of bytes');
  const { body, object } = await getObject(options, DOWNLOAD_BUFFER_OPTIONS, 'downloadDecryptedBuffer');
  if (object.encryptedLength !== undefined && object.encryptedLength > max) {
    body.destroy();
    throw new LimitExceededError(`object is ${object.encryptedLength} bytes, over maxBytes (${max}); use downloadDecrypted`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += (chunk as Buffer).length;
    if (total > max) {
      body.destroy();
      throw new LimitExceededError(`object is over maxBytes (${max}); use downloadDecrypted`);
    }
    chunks.push(chunk as Buffer);
  }
  const result = await options.envelope.decrypt(Buffer.concat(chunks, total), {
    context: options.context,
    signaturePolicy: options.signaturePolicy,
  });
  return { ...result, object };
}

const SIGNATURE_POLICIES: readonly unknown[] = ['ALLOW_ENCRYPT_ALLOW_DECRYPT', 'ALLOW_ENCRYPT_FORBID_DECRYPT'];

/** Option names of each helper (src/options.ts): a misnamed `context` must not drop the context check. */
const DOWNLOAD_OPTIONS: ReadonlySet<string> = new Set([
  'client',
  'bucket',
  'key',
  'envelope',
  'context',
  'versionId',
  'signaturePolicy',
  'requireMarker',
  'signal',
]);
const DOWNLOAD_BUFFER_OPTIONS: ReadonlySet<string> = new Set([...DOWNLOAD_OPTIONS, 'maxBytes']);

function checkOptions(o: DownloadDecryptedOptions, known: ReadonlySet<string>, where: string): void {
  if (o === null || typeof o !== 'object') throw new TypeError('options must be an object');
  checkOptionNames(o, known, where);
  if (o.client === null || typeof o.client !== 'object' || typeof o.client.send !== 'function') {
    throw new TypeError('options.client must be an S3Client from @aws-sdk/client-s3');
  }
  checkName(o.bucket, 'options.bucket');
  checkName(o.key, 'options.key');
  if (o.envelope === null || typeof o.envelope !== 'object' || typeof o.envelope.decryptStream !== 'function') {
    throw new TypeError('options.envelope must be an Envelope');
  }
  // Before GetObject, for the buffer helper too (it decrypts only after reading the whole body).
  if (o.context !== undefined) checkDecryptContext(o.context, 'options.context');
  if (o.versionId !== undefined && (typeof o.versionId !== 'string' || o.versionId.length === 0)) {
    throw new TypeError('options.versionId must be a non-empty string');
  }
  if (o.signaturePolicy !== undefined && !SIGNATURE_POLICIES.includes(o.signaturePolicy)) {
    throw new RangeError(`options.signaturePolicy must be one of ${SIGNATURE_POLICIES.join(', ')}`);
  }
  if (o.requireMarker !== undefined && typeof o.requireMarker !== 'boolean') {
    throw new TypeError('options.requireMarker must be a boolean');
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new TypeError('options.signal must be an AbortSignal');
}
