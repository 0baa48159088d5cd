/**
 * How the hierarchical keyring wraps one data key under a branch key
 * (framework/aws-kms/aws-kms-hierarchical-keyring.md, "Branch Key Wrapping", "Branch Key
 * Unwrapping", "Ciphertext", "Branch Key Wrapping and Unwrapping AAD").
 *
 * Per data key: a fresh 16-byte salt and 12-byte IV; the wrapping key is derived from the branch key
 * with the NIST SP 800-108 KDF in counter mode (PRF HMAC-SHA256, label "aws-kms-hierarchy", the salt
 * as context), and the data key is sealed with AES-256-GCM under it. 28 random bytes per data key is
 * the AWS KMS construction (spec Appendix B): about 2^96 wraps before a key/IV collision matters.
 *
 * EDK ciphertext: salt (16) || IV (12) || branch key version (16: the UUID's bytes) || encrypted data
 * key (suite key length) || GCM tag (16).
 * AAD: "aws-kms-hierarchy" || branch key id (UTF-8) || version (16 bytes) || serialized encryption
 * context (count + pairs sorted by UTF-8 key bytes; empty context = no bytes).
 */
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import { randomFillPooled } from '../../crypto/random.js';
import { serializeContext } from '../../format/context.js';
import type { EncryptionContext } from '../../types.js';

/** EDK provider id of the hierarchical keyring, and the KDF label. */
export const HIERARCHY_PROVIDER_ID = 'aws-kms-hierarchy';
const PROVIDER_ID_BYTES = Buffer.from(HIERARCHY_PROVIDER_ID, 'utf8');

export const SALT_LENGTH = 16;
export const IV_LENGTH = 12;
export const VERSION_LENGTH = 16;
export const TAG_LENGTH = 16;
/** Bytes of an EDK ciphertext besides the encrypted data key. */
export const CIPHERTEXT_OVERHEAD = SALT_LENGTH + IV_LENGTH + VERSION_LENGTH + TAG_LENGTH;
const DERIVED_KEY_LENGTH = 32;

/**
 * NIST SP 800-108r1 KDF in counter mode, PRF = HMAC-SHA256, for one 32-byte output block:
 * K(1) = HMAC(key, [i]_32 || Label || 0x00 || Context || [L]_32) with i = 1, L = 256 bits.
 * The specification names the salt "salt"; in SP 800-108 terms it is the Context.
 */
export function deriveWrappingKey(branchKey: Uint8Array, salt: Uint8Array): Buffer {
  // The fixed input is not secret (label and salt, both in the message): one scratch buffer serves
  // every call (createHmac's update reads it synchronously), instead of an allocation per message.
  const fixed = salt.length === SALT_LENGTH ? KDF_INPUT : kdfInput(salt.length);
  fixed.set(salt, KDF_SALT_OFFSET);
  return createHmac('sha256', branchKey).update(fixed).digest();
}

/** [1]_32 || label || 0x00 || (salt placeholder) || [256]_32, for a salt of `saltLength` bytes. */
function kdfInput(saltLength: number): Buffer {
  const fixed = Buffer.alloc(KDF_SALT_OFFSET + saltLength + 4);
  let o = fixed.writeUInt32BE(1, 0);
  o += PROVIDER_ID_BYTES.copy(fixed, o);
  fixed.writeUInt8(0, o);
  fixed.writeUInt32BE(DERIVED_KEY_LENGTH * 8, KDF_SALT_OFFSET + saltLength);
  return fixed;
}
const KDF_SALT_OFFSET = 4 + PROVIDER_ID_BYTES.length + 1;
const KDF_INPUT = kdfInput(SALT_LENGTH);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The 16 bytes of a canonical (lowercase) UUID string, or undefined for anything else. */
export function uuidToBytes(version: string): Buffer | undefined {
  if (!UUID.test(version)) return undefined;
  return Buffer.from(version.replace(/-/g, ''), 'hex');
}

/** The canonical lowercase UUID string of 16 bytes. */
export function bytesToUuid(bytes: Uint8Array): string {
  const h = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** The AAD of the wrap (spec "Branch Key Wrapping and Unwrapping AAD"). Throws RangeError for an unserializable context. */
export function wrappingAad(branchKeyId: string, version: Uint8Array, context: Readonly<EncryptionContext>): Buffer {
  const prefix = aadPrefix(branchKeyId, version);
  const ec = serializeContext(context);
  // The same prefix and context bytes (both memoized, so the same objects) give the same AAD: the
  // messages of one branch key version under one library context share it, built once.
  const last = lastAad;
  if (last !== undefined && last.prefix === prefix && last.ec === ec) return last.bytes;
  const aad = Buffer.allocUnsafe(prefix.length + ec.length);
  aad.set(prefix, 0);
  aad.set(ec, prefix.length);
  lastAad = { prefix, ec, bytes: aad };
  return aad;
}

/**
 * The last AAD built, by the identity of its two parts. Only memoized parts ever match again: a
 * context serialized afresh (not a library context) is a new Buffer each time. Not secret, and
 * only ever read (setAAD), never handed out.
 */
let lastAad: { prefix: Buffer; ec: Buffer; bytes: Buffer } | undefined;

/**
 * "aws-kms-hierarchy" || branch key id || version of the last AAD built: the same for every message
 * of one branch key version, so encoded once. Not secret (all of it is in the EDK).
 */
let lastPrefix: { branchKeyId: string; version: Buffer; bytes: Buffer } | undefined;
function aadPrefix(branchKeyId: string, version: Uint8Array): Buffer {
  const last = lastPrefix;
  if (last !== undefined && last.branchKeyId === branchKeyId && last.version.equals(version)) return last.bytes;
  const bytes = Buffer.concat([PROVIDER_ID_BYTES, Buffer.from(branchKeyId, 'utf8'), version]);
  lastPrefix = { branchKeyId, version: Buffer.from(version), bytes };
  return bytes;
}

/**
 * uuidToBytes of the last version wrapped under: every message of a cache period has the same
 * version, so the regex and hex parse run once per version, not per message. Versions are not secret.
 */
let lastVersion: { text: string; bytes: Buffer } | undefined;
function lastVersionBytes(text: string): Buffer {
  if (lastVersion !== undefined && lastVersion.text === text) return lastVersion.bytes;
  const bytes = uuidToBytes(text);
  if (bytes === undefined) throw new RangeError('branch key version must be a canonical lowercase UUID');
  lastVersion = { text, bytes };
  return bytes;
}

export interface WrapInput {
  branchKey: Uint8Array;
  branchKeyId: string;
  /** Branch key version, a canonical UUID string. */
  branchKeyVersion: string;
  dataKey: Uint8Array;
  context: Readonly<EncryptionContext>;
}

/** Wraps a data key; returns the EDK ciphertext. Throws RangeError when the version is not a UUID. */
export function wrapDataKey(input: WrapInput): Buffer {
  const version = lastVersionBytes(input.branchKeyVersion);
  // Salt and IV are not secret (they are stored in the EDK): drawn from the pooled CSPRNG buffer
  // like message ids (crypto/random.ts), which saves a CSPRNG call per message, a cost comparable
  // to the wrap itself at this size. The data key comes from the cached branch key's own pool (keyring.ts).
  // EDK ciphertext, written in place: salt || IV || version || encrypted key || tag.
  const n = input.dataKey.length;
  const out = Buffer.allocUnsafe(CIPHERTEXT_OVERHEAD + n);
  randomFillPooled(out, 0, SALT_LENGTH + IV_LENGTH);
  const salt = out.subarray(0, SALT_LENGTH);
  const iv = out.subarray(SALT_LENGTH, SALT_LENGTH + IV_LENGTH);
  out.set(version, SALT_LENGTH + IV_LENGTH);
  const key = deriveWrappingKey(input.branchKey, salt);
  try {
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_LENGTH });
    cipher.setAAD(wrappingAad(input.branchKeyId, version, input.context));
    const sealed = cipher.update(input.dataKey);
    cipher.final(); // GCM is a stream mode: update returned every byte, final none
    out.set(sealed, CIPHERTEXT_OVERHEAD - TAG_LENGTH);
    out.set(cipher.getAuthTag(), CIPHERTEXT_OVERHEAD - TAG_LENGTH + n);
    return out;
  } finally {
    key.fill(0);
  }
}

/** The parts of an EDK ciphertext, or undefined when its length is not the suite's. */
export function parseCiphertext(
  ciphertext: Uint8Array,
  keyLength: number,
): { salt: Buffer; iv: Buffer; version: string; versionBytes: Buffer; encryptedKey: Buffer; tag: Buffer } | undefined {
  if (ciphertext.length !== CIPHERTEXT_OVERHEAD + keyLength) return undefined;
  const b = Buffer.isBuffer(ciphertext) ? ciphertext : Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.byteLength);
  const ivAt = SALT_LENGTH;
  const versionAt = ivAt + IV_LENGTH;
  const keyAt = versionAt + VERSION_LENGTH;
  const tagAt = keyAt + keyLength;
  const versionBytes = b.subarray(versionAt, keyAt);
  return {
    salt: b.subarray(0, ivAt),
    iv: b.subarray(ivAt, versionAt),
    version: versionText(versionBytes),
    versionBytes,
    encryptedKey: b.subarray(keyAt, tagAt),
    tag: b.subarray(tagAt, tagAt + TAG_LENGTH),
  };
}

/**
 * bytesToUuid of the last version read: the messages of one branch key version share it, so the
 * hex formatting runs once per version, not per message. Kept as a copy (the EDK's buffer is the
 * caller's). Versions are not secret.
 */
let lastRead: { bytes: Buffer; text: string } | undefined;
function versionText(bytes: Buffer): string {
  if (lastRead !== undefined && lastRead.bytes.equals(bytes)) return lastRead.text;
  const text = bytesToUuid(bytes);
  lastRead = { bytes: Buffer.from(bytes), text };
  return text;
}

export interface UnwrapInput {
  branchKey: Uint8Array;
  branchKeyId: string;
  parts: NonNullable<ReturnType<typeof parseCiphertext>>;
  context: Readonly<EncryptionContext>;
}

/** Unwraps a data key; throws on any authentication failure (the caller reports it uniformly). */
export function unwrapDataKey(input: UnwrapInput): Buffer {
  const { parts } = input;
  const key = deriveWrappingKey(input.branchKey, parts.salt);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, parts.iv, { authTagLength: TAG_LENGTH });
    decipher.setAAD(wrappingAad(input.branchKeyId, parts.versionBytes, input.context));
    decipher.setAuthTag(parts.tag);
    const head = decipher.update(parts.encryptedKey);
    const tail = decipher.final();
    if (tail.length === 0) return head;
    const out = Buffer.concat([head, tail]);
    head.fill(0);
    return out;
  } finally {
    key.fill(0);
  }
}
