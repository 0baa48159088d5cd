/**
 * How an encrypted object is labelled in S3.
 *
 * - Content-Type `application/octet-stream`: the stored bytes are an AWS Encryption SDK message,
 *   not the original media; advertising the plaintext type would invite browsers, CDNs and proxies
 *   to sniff, transcode or decompress ciphertext. There is no registered media type for ESDK messages.
 * - User metadata (sent as `x-amz-meta-*`, returned lower-cased):
 *   - `kms-envelope: 1`: marker, "this object is one ESDK message written by kms-envelope"
 *     (the value is the version of this labelling scheme);
 *   - `kms-envelope-content-type`: the plaintext's content type, when the caller gave one;
 *   - `kms-envelope-plaintext-length`: plaintext bytes, when known before the upload.
 *   The encryption context is not copied here: it is already authenticated inside the message
 *   header, and metadata is neither authenticated nor needed to decrypt.
 */

export const MARKER_KEY = 'kms-envelope';
export const MARKER_VALUE = '1';
export const CONTENT_TYPE_KEY = 'kms-envelope-content-type';
export const PLAINTEXT_LENGTH_KEY = 'kms-envelope-plaintext-length';
export const ENCRYPTED_CONTENT_TYPE = 'application/octet-stream';

/**
 * Every key starting with `kms-envelope` (compared lower-cased, as S3 returns metadata keys) is
 * reserved, not just the three above: a label added later must not meet a caller's key of the
 * same name already stored in a bucket, and a reader must be able to trust that a `kms-envelope*`
 * key was written by this library (as far as unauthenticated metadata goes).
 */
export const RESERVED_PREFIX = 'kms-envelope';

/** The metadata object for an upload: the caller's pairs plus ours (the caller may use no `kms-envelope*` key). */
export function uploadMetadata(
  user: Record<string, string> | undefined,
  contentType: string | undefined,
  plaintextLength: number | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (user !== undefined) {
    if (user === null || typeof user !== 'object' || Array.isArray(user)) {
      throw new TypeError('options.metadata must be an object of string keys and string values');
    }
    for (const [k, v] of Object.entries(user)) {
      if (typeof v !== 'string') throw new TypeError(`options.metadata[${JSON.stringify(k)}] must be a string`);
      if (k.toLowerCase().startsWith(RESERVED_PREFIX)) {
        throw new TypeError(
          `options.metadata key ${JSON.stringify(k)} is reserved by kms-envelope (keys starting with "${RESERVED_PREFIX}")`,
        );
      }
      out[k] = v;
    }
  }
  out[MARKER_KEY] = MARKER_VALUE;
  if (contentType !== undefined) out[CONTENT_TYPE_KEY] = contentType;
  if (plaintextLength !== undefined) out[PLAINTEXT_LENGTH_KEY] = String(plaintextLength);
  return out;
}

/** What the labels say about a downloaded object. */
export interface EncryptedObjectInfo {
  /** True when the object carries the `kms-envelope: 1` marker. */
  marked: boolean;
  /** The plaintext content type recorded at upload, if any. */
  contentType: string | undefined;
  /** The plaintext length recorded at upload, if any (unauthenticated: informational only). */
  plaintextLength: number | undefined;
  /** All user metadata of the object, keys lower-cased as S3 returns them. */
  metadata: Record<string, string>;
}

export function readMetadata(metadata: Record<string, string> | undefined): EncryptedObjectInfo {
  const m: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata ?? {})) m[k.toLowerCase()] = v;
  const len = m[PLAINTEXT_LENGTH_KEY];
  const n = len !== undefined && /^[0-9]{1,16}$/.test(len) ? Number(len) : undefined;
  return {
    marked: m[MARKER_KEY] === MARKER_VALUE,
    contentType: m[CONTENT_TYPE_KEY],
    plaintextLength: n !== undefined && Number.isSafeInteger(n) ? n : undefined,
    metadata: m,
  };
}
