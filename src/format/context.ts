import { ContextMismatchError, MalformedMessageError } from '../errors.js';
import type { EncryptionContext } from '../types.js';

/** Prefix reserved for context keys the library itself writes (ESDK spec: "aws-crypto-public-key"). */
export const RESERVED_CONTEXT_PREFIX = 'aws-crypto-';
/** Context key that carries the base64 compressed ECDSA public key of signed suites. */
export const PUBLIC_KEY_CONTEXT_KEY = 'aws-crypto-public-key';

const EMPTY = Buffer.alloc(0);

/**
 * Contexts the library built or parsed itself (frozen, null-prototype, own string data properties
 * only, so their serialization can never change), with their serialization once computed (null
 * until then). One message's context is serialized by the keyring (its AAD: raw AES, hierarchy)
 * and again by the header; with this it is serialized once (issue 14's profile). Weak: an entry
 * lives as long as its context object.
 */
const libraryContexts = new WeakMap<object, Buffer | null>();

/**
 * Marks a context the library made (see libraryContexts): frozen, null-prototype, every value a
 * string, no accessor. Returns it.
 */
export function markLibraryContext(context: Readonly<EncryptionContext>): Readonly<EncryptionContext> {
  libraryContexts.set(context, null);
  return context;
}

/**
 * True for a context markLibraryContext marked: a keyring may read it as is, without the
 * defensive copy it makes of a context from elsewhere (keyrings/common.ts plainContext).
 */
export function isLibraryContext(context: object): boolean {
  return libraryContexts.has(context);
}

/**
 * Serializes an encryption context the way the ESDK does (data-format/message-header.md,
 * "Encryption Context"): a 2-byte pair count, then each pair as 2-byte length + UTF-8 bytes for
 * key and value, pairs sorted by the raw UTF-8 bytes of the key. An empty context serializes to
 * zero bytes: the count is omitted, not written as 0.
 *
 * Throws RangeError when the result cannot be represented (a key or value over 65,535 bytes,
 * more than 65,535 pairs, or a total over 65,535 bytes).
 *
 * For a library context (markLibraryContext) the bytes are computed once and the same Buffer is
 * returned every time: callers only read it (as AAD, or copied into a header), never write it.
 */
export function serializeContext(context: Readonly<EncryptionContext>): Buffer {
  const known = libraryContexts.get(context);
  if (known) return known;
  const out = serializePairs(context);
  if (known === null) libraryContexts.set(context, out);
  return out;
}

function serializePairs(context: Readonly<EncryptionContext>): Buffer {
  const keys = Object.keys(context);
  if (keys.length === 0) return EMPTY;
  if (keys.length > 0xffff) throw new RangeError('context must have at most 65535 pairs');
  const pairs: [Buffer, Buffer][] = new Array(keys.length);
  let size = 2;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = context[k];
    if (typeof v !== 'string') throw new TypeError('context values must be strings');
    const kb = Buffer.from(k, 'utf8');
    const vb = Buffer.from(v, 'utf8');
    if (kb.length > 0xffff || vb.length > 0xffff) {
      throw new RangeError('context keys and values must be at most 65535 UTF-8 bytes');
    }
    size += 4 + kb.length + vb.length;
    pairs[i] = [kb, vb];
  }
  if (size > 0xffff) throw new RangeError('serialized context must be at most 65535 bytes');
  pairs.sort((a, b) => Buffer.compare(a[0], b[0]));
  const out = Buffer.allocUnsafe(size);
  let o = out.writeUInt16BE(pairs.length, 0);
  for (const [kb, vb] of pairs) {
    o = out.writeUInt16BE(kb.length, o);
    o += kb.copy(out, o);
    o = out.writeUInt16BE(vb.length, o);
    o += vb.copy(out, o);
  }
  return out;
}

/**
 * Parses serialized context bytes (count + pairs, as written by serializeContext). Zero bytes is
 * the empty context. Duplicate keys, trailing bytes, invalid UTF-8 or short reads are malformed. An
 * empty key is a key like any other: structures.md allows arbitrary UTF-8 strings, and the ESDK
 * for JavaScript writes and reads such contexts.
 */
export function parseContext(bytes: Uint8Array): EncryptionContext {
  const out: EncryptionContext = Object.create(null);
  if (bytes.length === 0) return out;
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (buf.length < 2) throw new MalformedMessageError('malformed encryption context');
  const count = buf.readUInt16BE(0);
  // ESDK spec: a present context has at least one pair; a count of 0 with a non-zero length is invalid.
  if (count === 0) throw new MalformedMessageError('malformed encryption context');
  let o = 2;
  for (let i = 0; i < count; i++) {
    const k = readString(buf, o);
    o = k.next;
    const v = readString(buf, o);
    o = v.next;
    if (Object.prototype.hasOwnProperty.call(out, k.value)) {
      throw new MalformedMessageError('duplicate encryption context key');
    }
    out[k.value] = v.value;
  }
  if (o !== buf.length) throw new MalformedMessageError('malformed encryption context');
  return out;
}

// ignoreBOM: without it the decoder drops a leading U+FEFF (WHATWG Encoding, "decode"), and a key or
// value starting with U+FEFF would read back as another string than the one written.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function readString(buf: Buffer, o: number): { value: string; next: number } {
  if (o + 2 > buf.length) throw new MalformedMessageError('malformed encryption context');
  const len = buf.readUInt16BE(o);
  const end = o + 2 + len;
  if (end > buf.length) throw new MalformedMessageError('malformed encryption context');
  let value: string;
  try {
    value = decoder.decode(buf.subarray(o + 2, end));
  } catch {
    throw new MalformedMessageError('malformed encryption context');
  }
  return { value, next: end };
}

/**
 * True when `s` is well-formed UTF-16: no unpaired surrogate. Only such strings have a UTF-8 form;
 * `Buffer.from(s, 'utf8')` silently writes U+FFFD for each unpaired surrogate, so an ill-formed
 * context key or value would be stored as something other than what the caller passed (two keys
 * may even collapse into one, a duplicate the header format forbids). Node >= 20 has
 * String.prototype.isWellFormed (ES2024); the project's TypeScript lib is ES2022, hence the cast.
 */
export function isWellFormedUtf16(s: string): boolean {
  return (s as unknown as { isWellFormed(): boolean }).isWellFormed();
}

const KEY_LABEL_MAX = 32;

/**
 * A context key as error messages name it: JSON-escaped (so an unpaired surrogate shows as
 * `\ud800` and control characters stay on one line), cut to 32 UTF-16 code units. Values are
 * never named: they may be sensitive.
 */
export function contextKeyLabel(k: string): string {
  return k.length > KEY_LABEL_MAX ? `${JSON.stringify(k.slice(0, KEY_LABEL_MAX))}...` : JSON.stringify(k);
}

/**
 * Throws a TypeError naming `option` and the key when the key or the value of a context pair is
 * not well-formed UTF-16 (structures.md, "Encryption Context": keys and values are UTF-8 strings).
 */
export function checkContextPairText(k: string, v: string, option: string): void {
  if (!isWellFormedUtf16(k)) {
    throw new TypeError(
      `${option} key ${contextKeyLabel(k)} is not well-formed UTF-16 (it has an unpaired surrogate), so it has no UTF-8 form`,
    );
  }
  if (!isWellFormedUtf16(v)) {
    throw new TypeError(
      `${option}[${contextKeyLabel(k)}]: the value is not well-formed UTF-16 (it has an unpaired surrogate, e.g. half an emoji), so it has no UTF-8 form`,
    );
  }
}

/** The context of an encrypt without one: frozen, so one object serves every call. */
const EMPTY_CONTEXT: Readonly<EncryptionContext> = markLibraryContext(Object.freeze(Object.create(null)));

/**
 * Validates a caller-supplied context for encryption: a plain object of string values whose keys
 * do not use the reserved `aws-crypto-` prefix, whose keys and values are well-formed UTF-16 (else
 * the header would store U+FFFD instead: a context that no longer matches the caller's, or a
 * duplicate key, i.e. a message nobody can read), and that the header can hold (keys and values of
 * at most 65,535 UTF-8 bytes, at most 65,535 bytes serialized including
 * `reserveBytes` for pairs the library adds, e.g. the public key of signed suites). Checked here,
 * before any keyring runs, so a context that cannot be written never costs a KMS call.
 * Returns a frozen null-prototype copy.
 */
export function checkEncryptContext(context: unknown, option = 'context', reserveBytes = 0): Readonly<EncryptionContext> {
  if (context === undefined) return EMPTY_CONTEXT;
  if (context === null || typeof context !== 'object' || Array.isArray(context)) {
    throw new TypeError(`${option} must be an object of string keys and string values`);
  }
  const copy: EncryptionContext = Object.create(null);
  let size = 2 + reserveBytes;
  for (const [k, v] of Object.entries(context as Record<string, unknown>)) {
    if (typeof v !== 'string') throw new TypeError(`${option}[${contextKeyLabel(k)}] must be a string`);
    checkContextPairText(k, v, option);
    if (k.startsWith(RESERVED_CONTEXT_PREFIX)) {
      throw new TypeError(`${option} keys starting with "${RESERVED_CONTEXT_PREFIX}" are reserved`);
    }
    const kb = Buffer.byteLength(k, 'utf8');
    const vb = Buffer.byteLength(v, 'utf8');
    if (kb > 0xffff || vb > 0xffff) {
      throw new RangeError(`${option}[${contextKeyLabel(k)}]: keys and values must be at most 65535 UTF-8 bytes`);
    }
    size += 4 + kb + vb;
    copy[k] = v;
  }
  if (size > 0xffff) {
    throw new RangeError(`${option} must serialize to at most 65535 bytes (message-header.md); it needs ${size}`);
  }
  return markLibraryContext(Object.freeze(copy));
}

/**
 * Validates the pairs a caller requires on decrypt: an object of string values whose keys and
 * values are well-formed UTF-16 (a message's context is strict UTF-8, so an ill-formed pair could
 * never match: a caller bug, reported as such instead of as a context mismatch). Reserved
 * `aws-crypto-` keys are allowed: a caller may require the public key of a signed message.
 * Returns a frozen null-prototype copy, so later changes to the caller's object change nothing.
 */
export function checkDecryptContext(context: unknown, option = 'context'): Readonly<EncryptionContext> {
  if (context === null || typeof context !== 'object' || Array.isArray(context)) {
    throw new TypeError(`${option} must be an object of string keys and string values`);
  }
  const copy: EncryptionContext = Object.create(null);
  for (const [k, v] of Object.entries(context as Record<string, unknown>)) {
    if (typeof v !== 'string') throw new TypeError(`${option}[${contextKeyLabel(k)}] must be a string`);
    checkContextPairText(k, v, option);
    copy[k] = v;
  }
  return Object.freeze(copy);
}

/**
 * Checks that every pair the caller requires is present in the message's context with the same
 * value. The error names the missing key but never a value.
 */
export function checkRequiredContext(
  actual: Readonly<EncryptionContext>,
  required: Readonly<EncryptionContext> | undefined,
): void {
  if (required === undefined) return;
  for (const k of Object.keys(required)) {
    if (!Object.prototype.hasOwnProperty.call(actual, k) || actual[k] !== required[k]) {
      throw new ContextMismatchError(
        `encryption context does not contain the required pair for key ${contextKeyLabel(k)}`,
      );
    }
  }
}

