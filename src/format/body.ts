import type { CipherGCMTypes } from 'node:crypto';
import { MalformedMessageError } from '../errors.js';

/**
 * Message body (data-format/message-body.md) and body AAD (data-format/message-body-aad.md).
 *
 * Regular frame: sequence number u32 | IV (12) | content (frame length) | tag (16)
 * Final frame:   0xFFFFFFFF | sequence number u32 | IV (12) | content length u32 | content | tag
 * Non-framed:    IV (12) | content length u64 | content | tag
 * Body AAD:      message id | content label | sequence number u32 | content length u64
 *
 * Writers use IV = 8 zero bytes || sequence number (the ESDK's deterministic frame IVs; the
 * header tag uses the all-zero IV, i.e. sequence number 0). Readers use the IV from the message:
 * older writers used random IVs, and the spec only requires uniqueness within a message.
 */

export const IV_LENGTH = 12;
export const TAG_LENGTH = 16;
export const SEQUENCE_NUMBER_END = 0xffffffff;
/** Largest number of frames in a message (message-body.md: at most 2^32 - 1). */
export const MAX_FRAMES = 0xffffffff;
/** Largest frame length (message-body.md: at most 2^32 - 1 bytes). */
export const MAX_FRAME_LENGTH = 0xffffffff;
/** Largest non-framed content (message-body.md: at most 2^36 - 32 bytes, the AES-GCM limit). */
export const MAX_NON_FRAMED_CONTENT = 2 ** 36 - 32;

/** Bytes before a regular frame's content: sequence number + IV. */
export const FRAME_HEADER_LENGTH = 4 + IV_LENGTH;
/** Bytes before a final frame's content: end marker + sequence number + IV + content length. */
export const FINAL_FRAME_HEADER_LENGTH = 4 + 4 + IV_LENGTH + 4;
/** Bytes before non-framed content: IV + 8-byte content length. */
export const NON_FRAMED_HEADER_LENGTH = IV_LENGTH + 8;

export const LABEL_FRAME = Buffer.from('AWSKMSEncryptionClient Frame', 'ascii');
export const LABEL_FINAL_FRAME = Buffer.from('AWSKMSEncryptionClient Final Frame', 'ascii');
export const LABEL_SINGLE_BLOCK = Buffer.from('AWSKMSEncryptionClient Single Block', 'ascii');

export function gcmAlgorithm(keyLength: number): CipherGCMTypes {
  switch (keyLength) {
    case 16:
      return 'aes-128-gcm';
    case 24:
      return 'aes-192-gcm';
    case 32:
      return 'aes-256-gcm';
    default:
      throw new RangeError('AES key must be 16, 24 or 32 bytes');
  }
}

/**
 * Builds the body AAD for one frame. The sequence number and content length sit at the end, so a
 * writer can reuse one buffer per label and rewrite them with `setAadCounters`.
 */
export function bodyAad(messageId: Uint8Array, label: Uint8Array, sequenceNumber: number, contentLength: number): Buffer {
  const aad = Buffer.allocUnsafe(messageId.length + label.length + 12);
  aad.set(messageId, 0);
  aad.set(label, messageId.length);
  setAadCounters(aad, sequenceNumber, contentLength);
  return aad;
}

/** Rewrites the sequence number and the u64 content length at the end of a body AAD. */
export function setAadCounters(aad: Buffer, sequenceNumber: number, contentLength: number): void {
  const at = aad.length - 12;
  aad.writeUInt32BE(sequenceNumber, at);
  // u64 big-endian from a safe integer: high and low 32-bit halves.
  aad.writeUInt32BE(Math.floor(contentLength / 0x100000000), at + 4);
  aad.writeUInt32BE(contentLength >>> 0, at + 8);
}

/** Writes the deterministic frame IV (8 zero bytes || sequence number) at `at`. */
export function writeFrameIv(out: Buffer, at: number, sequenceNumber: number): void {
  out.writeUInt32BE(0, at);
  out.writeUInt32BE(0, at + 4);
  out.writeUInt32BE(sequenceNumber, at + 8);
}

/** Size of a framed body for `plaintextLength` bytes (last frame empty on exact multiples, as the ESDK writes). */
export function framedBodyLength(plaintextLength: number, frameLength: number): number {
  const full = Math.floor(plaintextLength / frameLength);
  const rest = plaintextLength - full * frameLength;
  return full * (FRAME_HEADER_LENGTH + frameLength + TAG_LENGTH) + FINAL_FRAME_HEADER_LENGTH + rest + TAG_LENGTH;
}

/** Number of frames (including the final one) for `plaintextLength` bytes. */
export function frameCount(plaintextLength: number, frameLength: number): number {
  return Math.floor(plaintextLength / frameLength) + 1;
}

/** One frame or the single non-framed block, located inside a message buffer. */
export interface BodyPart {
  sequenceNumber: number;
  final: boolean;
  ivOffset: number;
  contentOffset: number;
  contentLength: number;
  /** Offset of the tag; the part ends at tagOffset + 16. */
  tagOffset: number;
}

/** Reads a u64 length; values beyond 2^53 are rejected before they can lose precision. */
export function readUInt64(buf: Buffer, at: number): number {
  const hi = buf.readUInt32BE(at);
  const lo = buf.readUInt32BE(at + 4);
  if (hi > 0x1fffff) return Number.POSITIVE_INFINITY;
  return hi * 0x100000000 + lo;
}

const truncated = (): MalformedMessageError => new MalformedMessageError('message is truncated');

/**
 * Walks the body of a complete message starting at `offset`, validating its structure (sequence
 * numbers consecutive from 1, final frame present and no longer than the frame length, every
 * part fully present) without any cryptography. Calls `visit` for each part in order and returns
 * the offset just past the body. No allocation depends on a length read from the message.
 */
export function walkBody(
  message: Buffer,
  offset: number,
  contentType: 1 | 2,
  frameLength: number,
  visit: (part: BodyPart) => void,
): number {
  const end = message.length;
  if (contentType === 1) {
    if (offset + NON_FRAMED_HEADER_LENGTH > end) throw truncated();
    const contentLength = readUInt64(message, offset + IV_LENGTH);
    if (contentLength > MAX_NON_FRAMED_CONTENT) throw new MalformedMessageError('non-framed content length exceeds the AES-GCM limit');
    const contentOffset = offset + NON_FRAMED_HEADER_LENGTH;
    const tagOffset = contentOffset + contentLength;
    if (tagOffset + TAG_LENGTH > end) throw truncated();
    visit({ sequenceNumber: 1, final: true, ivOffset: offset, contentOffset, contentLength, tagOffset });
    return tagOffset + TAG_LENGTH;
  }
  let o = offset;
  for (let expected = 1; ; expected++) {
    if (o + 4 > end) throw truncated();
    const first = message.readUInt32BE(o);
    if (first === SEQUENCE_NUMBER_END) {
      if (o + FINAL_FRAME_HEADER_LENGTH > end) throw truncated();
      if (message.readUInt32BE(o + 4) !== expected) throw new MalformedMessageError('frame sequence number out of order');
      const contentLength = message.readUInt32BE(o + 4 + 4 + IV_LENGTH);
      if (contentLength > frameLength) throw new MalformedMessageError('final frame is longer than the frame length');
      const contentOffset = o + FINAL_FRAME_HEADER_LENGTH;
      const tagOffset = contentOffset + contentLength;
      if (tagOffset + TAG_LENGTH > end) throw truncated();
      visit({ sequenceNumber: expected, final: true, ivOffset: o + 8, contentOffset, contentLength, tagOffset });
      return tagOffset + TAG_LENGTH;
    }
    if (first !== expected) throw new MalformedMessageError('frame sequence number out of order');
    const contentOffset = o + FRAME_HEADER_LENGTH;
    const tagOffset = contentOffset + frameLength;
    if (tagOffset + TAG_LENGTH > end) throw truncated();
    visit({ sequenceNumber: expected, final: false, ivOffset: o + 4, contentOffset, contentLength: frameLength, tagOffset });
    o = tagOffset + TAG_LENGTH;
  }
}
