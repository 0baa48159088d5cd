import { LimitExceededError, MalformedMessageError } from '../errors.js';
import type { EncryptedDataKey, EncryptionContext } from '../types.js';
import { markLibraryContext, parseContext, serializeContext } from './context.js';
import { suiteFromMessage, type Suite } from './suites.js';
import { lengthOf } from './typed-array.js';

/**
 * Message header (aws-encryption-sdk-specification data-format/message-header.md).
 *
 * v2 (committing suites):
 *   version 0x02 | suite id u16 | message id (32) | AAD length u16 | AAD | EDK count u16 | EDKs |
 *   content type u8 | frame length u32 | suite data (32-byte commitment) || auth tag (16)
 *   The header IV is not serialized: it is 12 zero bytes.
 * v1 (legacy suites):
 *   version 0x01 | type 0x80 | suite id u16 | message id (16) | AAD length u16 | AAD | EDK count |
 *   EDKs | content type u8 | reserved u32 = 0 | IV length u8 = 12 | frame length u32 ||
 *   header IV (12) | auth tag (16)
 * The auth tag is AES-GCM with the derived key over the header body (everything before the IV /
 * tag) as AAD and an empty plaintext.
 */

export const CONTENT_TYPE_NON_FRAMED = 1;
export const CONTENT_TYPE_FRAMED = 2;
const V1_TYPE_CUSTOMER_AE_DATA = 0x80;
const IV_LENGTH = 12;
const TAG_LENGTH = 16;
const V2_MESSAGE_ID_LENGTH = 32;
const V1_MESSAGE_ID_LENGTH = 16;
/** Default cap on the size of a header we are willing to buffer (see ParseLimits.maxHeaderBytes). */
export const DEFAULT_MAX_HEADER_BYTES = 1024 * 1024;

export interface MessageHeader {
  version: 1 | 2;
  suite: Suite;
  /** 32 bytes (v2) or 16 bytes (v1). */
  messageId: Buffer;
  context: Readonly<EncryptionContext>;
  encryptedDataKeys: EncryptedDataKey[];
  /** 1 = non-framed, 2 = framed. */
  contentType: 1 | 2;
  /** Regular frame content length; 0 for non-framed messages. */
  frameLength: number;
  /** v2 only: the 32-byte key commitment from the suite data field. */
  commitment?: Buffer;
  /** IV of the header auth tag: from the message in v1, 12 zero bytes in v2. */
  headerIv: Buffer;
  authTag: Buffer;
  /** header bytes covered by the tag */
  authenticated: Buffer;
  /** total header length in bytes incl. IV/tag */
  length: number;
  /** The complete serialized header (authenticated bytes + IV (v1) + tag), a private copy. */
  bytes: Buffer;
}

export interface ParseLimits {
  /** Largest accepted encrypted data key count (ESDK `maxEncryptedDataKeys`); more is LimitExceededError. */
  maxEncryptedDataKeys: number;
  /**
   * Largest accepted header in bytes, including IV and tag. Default 1 MiB: a context is at most
   * 64 KiB and real headers are a few KiB, while a hostile header could otherwise claim up to
   * maxEncryptedDataKeys x 192 KiB that a streaming reader would have to buffer.
   */
  maxHeaderBytes?: number;
}

function checkLimits(limits: ParseLimits): number {
  const { maxEncryptedDataKeys, maxHeaderBytes = DEFAULT_MAX_HEADER_BYTES } = limits;
  if (!Number.isSafeInteger(maxEncryptedDataKeys) || maxEncryptedDataKeys < 1) {
    throw new RangeError('maxEncryptedDataKeys must be an integer of at least 1 (count of keys)');
  }
  if (!Number.isSafeInteger(maxHeaderBytes) || maxHeaderBytes < 1) {
    throw new RangeError('maxHeaderBytes must be a positive integer (bytes)');
  }
  return maxHeaderBytes;
}

/**
 * Parses a header from the start of `buf`.
 * Returns undefined when `buf` holds only a prefix of a header (incremental parsing: call again
 * with more bytes); throws MalformedMessageError for bytes that cannot start a valid header and
 * LimitExceededError when a limit is exceeded, as early as the prefix allows.
 *
 * The result does not alias `buf`: the header bytes are copied once and every field is a view
 * of (or decoded from) that private copy, so a caller changing its buffer while keys are being
 * fetched cannot make the parsed header disagree with the authenticated bytes.
 */
export function parseHeader(buf: Uint8Array, limits: ParseLimits): MessageHeader | undefined {
  const r = tryParseHeader(buf, limits);
  return typeof r === 'number' ? undefined : r;
}

/**
 * parseHeader for a buffer that holds a whole message: a header that does not fit in it means
 * the message is truncated (MalformedMessageError).
 */
export function parseMessageHeader(message: Uint8Array, limits: ParseLimits): MessageHeader {
  const r = tryParseHeader(message, limits);
  if (typeof r === 'number') throw new MalformedMessageError('message is truncated');
  return r;
}

/**
 * Where an incremental parse stopped inside the encrypted data key list, so the next attempt on a
 * longer prefix of the same bytes resumes there instead of walking every field again (a header
 * trickled in small pieces would otherwise cost time quadratic in its number of fields).
 * Create one empty object per message and pass it to every tryParseHeader call for that message.
 */
export interface HeaderScan {
  /** Offset of the first EDK field the scan belongs to. */
  edkStart?: number;
  /** Offsets of the EDK fields walked so far. */
  fields?: number[];
  /** Offset of the next field to read. */
  next?: number;
}

/**
 * As parseHeader, but when the header is incomplete returns the number of bytes (from the start
 * of the message) that must be available before parsing can make progress. Streaming readers use
 * it to avoid re-parsing on every small chunk, and pass `scan` so each call walks only new fields.
 * Between calls with the same `scan` the input may only grow (the same message, more of it).
 */
export function tryParseHeader(input: Uint8Array, limits: ParseLimits, scan?: HeaderScan): MessageHeader | number {
  const maxHeaderBytes = checkLimits(limits);
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const need = (n: number): boolean => {
    if (n > maxHeaderBytes) throw new LimitExceededError(`message header exceeds maxHeaderBytes (${maxHeaderBytes} bytes)`, 'maxHeaderBytes');
    return buf.length < n;
  };

  if (need(1)) return 1;
  const version = buf[0]!;
  let idStart: number;
  let idLength: number;
  let o: number;
  if (version === 2) {
    if (need(37)) return 37;
    idStart = 3;
    idLength = V2_MESSAGE_ID_LENGTH;
    o = 35;
  } else if (version === 1) {
    if (need(2)) return 2;
    if (buf[1] !== V1_TYPE_CUSTOMER_AE_DATA) throw new MalformedMessageError('malformed message header');
    if (need(22)) return 22;
    idStart = 4;
    idLength = V1_MESSAGE_ID_LENGTH;
    o = 20;
  } else {
    // 0x41 is 'A', the first base64 character of both versions' first bytes.
    throw new MalformedMessageError(
      version === 0x41 ? 'not a message (it may be base64 encoded)' : 'unsupported message format version',
    );
  }
  const suite = suiteFromMessage(buf.readUInt16BE(idStart - 2));
  if (suite.messageFormat !== version) throw new MalformedMessageError('algorithm suite does not match message format version');

  const aadLength = buf.readUInt16BE(o);
  const aadStart = o + 2;
  o = aadStart + aadLength;

  if (need(o + 2)) return o + 2;
  const edkCount = buf.readUInt16BE(o);
  o += 2;
  // message-header.md: the encrypted data key count MUST be greater than 0.
  if (edkCount === 0) throw new MalformedMessageError('message has no encrypted data keys');
  if (edkCount > limits.maxEncryptedDataKeys) {
    throw new LimitExceededError(
      `message has ${edkCount} encrypted data keys, more than maxEncryptedDataKeys (${limits.maxEncryptedDataKeys})`,
      'maxEncryptedDataKeys',
    );
  }
  // Each EDK is three length-prefixed fields: provider id, provider info, ciphertext.
  const resume = scan !== undefined && scan.edkStart === o && scan.fields !== undefined;
  const edkOffsets: number[] = resume ? scan.fields! : [];
  if (resume) o = scan.next!;
  for (let k = edkOffsets.length; k < edkCount * 3; k++) {
    if (need(o + 2)) {
      if (scan !== undefined) {
        scan.edkStart = aadStart + aadLength + 2;
        scan.fields = edkOffsets;
        scan.next = o;
      }
      return o + 2;
    }
    edkOffsets.push(o);
    o += 2 + buf.readUInt16BE(o);
  }
  if (scan !== undefined) {
    // The walk is complete: remember its end too, so a retry (tail not yet here) does not redo it.
    scan.edkStart = aadStart + aadLength + 2;
    scan.fields = edkOffsets;
    scan.next = o;
  }

  const tailStart = o;
  const authenticatedLength = version === 2 ? o + 1 + 4 + suite.suiteDataLength : o + 1 + 4 + 1 + 4;
  const total = authenticatedLength + (version === 2 ? 0 : IV_LENGTH) + TAG_LENGTH;
  if (need(total)) return total;

  // The whole header is present: copy it once and build every field from the copy.
  const h = Buffer.allocUnsafe(total);
  h.set(buf.subarray(0, total), 0);

  const contentType = h[tailStart]!;
  if (contentType !== CONTENT_TYPE_FRAMED && contentType !== CONTENT_TYPE_NON_FRAMED) {
    throw new MalformedMessageError('unsupported content type');
  }
  let frameLength: number;
  let commitment: Buffer | undefined;
  let headerIv: Buffer;
  if (version === 2) {
    frameLength = h.readUInt32BE(tailStart + 1);
    commitment = h.subarray(tailStart + 5, authenticatedLength);
    // From Node's buffer pool, then zeroed: Buffer.alloc makes a new ArrayBuffer, which costs
    // microseconds per message (issue 14's profile). The IV is not secret.
    headerIv = Buffer.allocUnsafe(IV_LENGTH).fill(0);
  } else {
    // message-header.md: reserved MUST be 00 00 00 00; IV length MUST equal the suite's.
    if (h.readUInt32BE(tailStart + 1) !== 0) throw new MalformedMessageError('malformed message header');
    if (h[tailStart + 5] !== suite.ivLength) throw new MalformedMessageError('malformed message header');
    frameLength = h.readUInt32BE(tailStart + 6);
    headerIv = h.subarray(authenticatedLength, authenticatedLength + IV_LENGTH);
  }
  // message-header.md: non-framed content MUST have frame length 0. A framed message with frame
  // length 0 cannot be written by any ESDK (frame lengths start at 1), so it is malformed too.
  if ((contentType === CONTENT_TYPE_NON_FRAMED) !== (frameLength === 0)) {
    throw new MalformedMessageError('frame length does not match content type');
  }

  const context = contextFor(h, aadStart, aadLength);
  const encryptedDataKeys: EncryptedDataKey[] = new Array(edkCount);
  for (let i = 0; i < edkCount; i++) {
    encryptedDataKeys[i] = {
      providerId: decodeUtf8(field(h, edkOffsets[i * 3]!)),
      providerInfo: field(h, edkOffsets[i * 3 + 1]!),
      ciphertext: field(h, edkOffsets[i * 3 + 2]!),
    };
  }

  const header: MessageHeader = {
    version,
    suite,
    messageId: h.subarray(idStart, idStart + idLength),
    context,
    encryptedDataKeys,
    contentType,
    frameLength,
    headerIv,
    authTag: h.subarray(total - TAG_LENGTH, total),
    authenticated: h.subarray(0, authenticatedLength),
    length: total,
    bytes: h,
  };
  if (commitment !== undefined) header.commitment = commitment;
  return header;
}

/**
 * Messages written under one set of cached materials share their context bytes, so a reader that
 * decrypts many of them (a service, a warm Lambda) would decode the same pairs again and again.
 * Small contexts are decoded once and the frozen result is shared; the memo holds at most
 * CONTEXT_MEMO_ENTRIES contexts of at most CONTEXT_MEMO_BYTES bytes each (a few hundred KiB at
 * most), oldest dropped first. Contexts are not secret (they travel in the clear in every header).
 */
const CONTEXT_MEMO_ENTRIES = 64;
const CONTEXT_MEMO_BYTES = 2048;
const contextMemo = new Map<string, Readonly<EncryptionContext>>();

function contextFor(h: Buffer, start: number, length: number): Readonly<EncryptionContext> {
  // Marked as the library's (context.ts): the keyring's AAD serialization of a memoized context is
  // computed once, not per message.
  if (length > CONTEXT_MEMO_BYTES) return markLibraryContext(Object.freeze(parseContext(h.subarray(start, start + length))));
  const key = h.toString('latin1', start, start + length);
  let context = contextMemo.get(key);
  if (context === undefined) {
    context = markLibraryContext(Object.freeze(parseContext(h.subarray(start, start + length))));
    if (contextMemo.size >= CONTEXT_MEMO_ENTRIES) contextMemo.delete(contextMemo.keys().next().value!);
    contextMemo.set(key, context);
  }
  return context;
}

function field(h: Buffer, at: number): Buffer {
  return h.subarray(at + 2, at + 2 + h.readUInt16BE(at));
}

// ignoreBOM: a provider id starting with U+FEFF is read back as written (the default strips it).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
function decodeUtf8(b: Uint8Array): string {
  try {
    return utf8.decode(b);
  } catch {
    throw new MalformedMessageError('malformed key provider id');
  }
}

function edkBytes(b: unknown, i: number, name: string): Uint8Array {
  if (!(b instanceof Uint8Array)) throw new TypeError(`encryptedDataKeys[${i}].${name} must be a Uint8Array`);
  return b;
}

function edkFieldLength(n: number, i: number, name: string): number {
  if (n > 0xffff) throw new RangeError(`encryptedDataKeys[${i}].${name} must be at most 65535 bytes`);
  return n;
}

/** A serialized v2 header with blanks for the per-message fields (see serializeHeaderTemplate). */
export interface HeaderTemplate {
  /** Header body + room for the tag; message id, commitment and tag are zero placeholders. */
  bytes: Buffer;
  messageIdOffset: number;
  commitmentOffset: number;
  /** Length of the authenticated header body (everything before the tag). */
  authenticatedLength: number;
  /** Total header length including the 16-byte tag. */
  length: number;
}

/**
 * Serializes a framed v2 header once for a set of materials; only the message id, commitment and
 * tag differ between messages, so encrypt copies this template and splices those three in.
 * Throws TypeError/RangeError for materials that cannot be represented in the format.
 *
 * `lifetime` says where its bytes live. `'long'` (materials kept in a cache): a buffer of its own.
 * `'message'` (materials used for one message and dropped): a slice of Node's buffer pool, which
 * is much cheaper than a new ArrayBuffer per message, but keeps the pool's 8 KiB slab alive as
 * long as the template lives, so it is only for templates that die with their message. Header
 * bytes are not secret, so sharing a slab with other pooled buffers exposes nothing.
 */
export function serializeHeaderTemplate(
  suite: Suite,
  context: Readonly<EncryptionContext>,
  encryptedDataKeys: readonly EncryptedDataKey[],
  frameLength: number,
  lifetime: 'long' | 'message' = 'long',
): HeaderTemplate {
  if (suite.messageFormat !== 2) throw new RangeError('only message format v2 suites can be written');
  const aad = serializeContext(context);
  if (!Array.isArray(encryptedDataKeys) || encryptedDataKeys.length < 1 || encryptedDataKeys.length > 0xffff) {
    throw new RangeError('encryptedDataKeys must hold from 1 to 65535 keys');
  }
  // Two passes over the EDKs (check and size, then write), with no per-EDK arrays or copies:
  // with a fresh data key per message (hierarchical keyring, no cache) this runs per message.
  let size = 1 + 2 + V2_MESSAGE_ID_LENGTH + 2 + aad.length + 2;
  for (let i = 0; i < encryptedDataKeys.length; i++) {
    const k = encryptedDataKeys[i];
    if (k === null || typeof k !== 'object' || typeof k.providerId !== 'string') {
      throw new TypeError(`encryptedDataKeys[${i}].providerId must be a string`);
    }
    size += 6 + edkFieldLength(Buffer.byteLength(k.providerId, 'utf8'), i, 'providerId');
    size += edkFieldLength(lengthOf(edkBytes(k.providerInfo, i, 'providerInfo')), i, 'providerInfo');
    size += edkFieldLength(lengthOf(edkBytes(k.ciphertext, i, 'ciphertext')), i, 'ciphertext');
  }
  const authenticatedLength = size + 1 + 4 + suite.suiteDataLength;
  const length = authenticatedLength + TAG_LENGTH;

  const out = lifetime === 'message' ? Buffer.allocUnsafe(length) : Buffer.allocUnsafeSlow(length);
  let o = out.writeUInt8(2, 0);
  o = out.writeUInt16BE(suite.id, o);
  const messageIdOffset = o;
  out.fill(0, o, o + V2_MESSAGE_ID_LENGTH); // placeholder, as the commitment and tag below
  o += V2_MESSAGE_ID_LENGTH;
  o = out.writeUInt16BE(aad.length, o);
  o += aad.copy(out, o);
  o = out.writeUInt16BE(encryptedDataKeys.length, o);
  for (const k of encryptedDataKeys) {
    // Written as Buffer.from(providerId, 'utf8') would encode it (its length was counted the same
    // way). Field lengths through lengthOf in both passes (format/typed-array.ts), so the sizes
    // counted are the sizes written.
    const idLength = out.write(k.providerId, o + 2, 'utf8');
    o = out.writeUInt16BE(idLength, o) + idLength;
    const info = lengthOf(k.providerInfo);
    o = out.writeUInt16BE(info, o);
    out.set(k.providerInfo, o);
    o += info;
    const ciphertext = lengthOf(k.ciphertext);
    o = out.writeUInt16BE(ciphertext, o);
    out.set(k.ciphertext, o);
    o += ciphertext;
  }
  o = out.writeUInt8(CONTENT_TYPE_FRAMED, o);
  o = out.writeUInt32BE(frameLength, o);
  out.fill(0, o); // commitment and tag placeholders: every byte of the template is written
  return { bytes: out, messageIdOffset, commitmentOffset: o, authenticatedLength, length };
}
