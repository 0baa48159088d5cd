/**
 * Multipart part size, from the size of the encrypted object.
 *
 * S3's limits (Amazon S3 User Guide, "Amazon S3 multipart upload limits"): at most 10,000 parts;
 * every part but the last 5 MiB .. 5 GiB; an object at most 5 TiB.
 *
 * The encrypted size is exact, not estimated: a message is its header, then the framed body, then
 * (signed suites only) the footer (data-format/message.md). Framing costs 32 bytes per frame
 * (4-byte sequence number, 12-byte IV, 16-byte tag) plus 8 more on the final frame (end marker and
 * content length), so small frames cost far more than any fixed percentage: 25% at 128-byte frames,
 * 3% at 1 KiB, 0.05% at 64 KiB.
 */
import { framedBodyLength } from '../format/body.js';
import { maxSignatureLength } from '../format/footer.js';
import type { Suite } from '../format/suites.js';

export const MiB = 1024 * 1024;
export const MIN_PART = 5 * MiB;
export const MAX_PART = 5 * 1024 * MiB;
export const DEFAULT_PART = 8 * MiB;
export const MAX_PARTS = 10_000;
/** Largest object S3 stores: 5 TiB. */
export const MAX_OBJECT = 5 * 1024 * 1024 * MiB;

/**
 * Bytes of the message this library writes for `plaintextLength` bytes, given its header's length,
 * frame length and suite. For signed suites the footer is counted at its largest (2-byte length +
 * the longest DER signature; a real signature may be a byte or two shorter), so the result is
 * never below the real size.
 */
export function encryptedLength(p: { plaintextLength: number; headerLength: number; frameLength: number; suite: Suite }): number {
  const footer = p.suite.signatureCurve === undefined ? 0 : 2 + maxSignatureLength(p.suite);
  return p.headerLength + framedBodyLength(p.plaintextLength, p.frameLength) + footer;
}

/**
 * Default part size for an object of `objectLength` bytes: 8 MiB, or the smallest whole number of
 * MiB that keeps the upload within 10,000 parts. RangeError when the object exceeds S3's 5 TiB.
 * (5 TiB / 10,000 is about 525 MiB, so the result never approaches the 5 GiB part limit.)
 */
export function partSizeFor(objectLength: number): number {
  checkObjectLength(objectLength);
  const needed = Math.ceil(objectLength / MAX_PARTS);
  return Math.max(DEFAULT_PART, Math.ceil(needed / MiB) * MiB);
}

/** An explicit part size must still fit the object in 10,000 parts; checked before any request. */
export function checkPartSize(partSize: number, objectLength: number): void {
  checkObjectLength(objectLength);
  if (Math.ceil(objectLength / partSize) > MAX_PARTS) {
    throw new RangeError(
      `options.partSize ${partSize} is too small: the encrypted object is ${objectLength} bytes and S3 allows at most ` +
        `${MAX_PARTS} parts (use at least ${Math.ceil(objectLength / MAX_PARTS)}, or leave partSize unset)`,
    );
  }
}

function checkObjectLength(objectLength: number): void {
  if (objectLength > MAX_OBJECT) {
    throw new RangeError(
      `options.body: the encrypted object would be ${objectLength} bytes, more than S3's largest object (5 TiB = ${MAX_OBJECT} bytes)`,
    );
  }
}
