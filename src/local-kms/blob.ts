import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { isMultiRegionKeyId, keyIdBytes, keyIdFromBytes } from './key-id.js';

/**
 * The local KMS's symmetric ciphertext blob (its own format; AWS's is undocumented, so only its
 * role is copied: the blob names the key and the key-material version, which is why Decrypt
 * needs no KeyId and why ciphertext made before a rotation still decrypts).
 *
 *   version   u8     = 1 (key id is a UUID) or 2 (a multi-Region key id, `mrk-` + these 16 bytes in hex)
 *   keyId     16 B   the key's UUID, or the hex digits of its multi-Region id
 *   material  32 B   key material id (hex in KeyMaterialId)
 *   iv        12 B
 *   ct        n  B   AES-256-GCM ciphertext
 *   tag       16 B
 *
 * AAD = version || keyId || material || canonical(encryptionContext). Binding the header and
 * the context in the AAD is what makes a wrong context or a spliced header fail the tag check,
 * which surfaces only as InvalidCiphertextException (AWS reveals nothing more either).
 */
export const BLOB_VERSION = 1;
/** Blobs of multi-Region keys: the same layout; any copy of the key (any Region) opens them. */
export const MRK_BLOB_VERSION = 2;
const HEADER = 1 + 16 + 32;
const IV = 12;
const TAG = 16;
export const BLOB_OVERHEAD = HEADER + IV + TAG;

export interface ParsedBlob {
  keyId: string;
  materialId: string;
  header: Buffer;
  iv: Buffer;
  ct: Buffer;
  tag: Buffer;
}

/**
 * Canonical encryption context bytes: pair count (u32) then each pair as u32 length + UTF-8,
 * sorted by the UTF-8 bytes of the key. Unambiguous, so two different contexts never produce the
 * same AAD, and key order in the request does not matter (KMS treats the context as a map).
 */
export function canonicalContext(context: Readonly<Record<string, string>> | undefined): Buffer {
  const entries = Object.entries(context ?? {}).map(
    ([k, v]) => [Buffer.from(k, 'utf8'), Buffer.from(v, 'utf8')] as const,
  );
  entries.sort((a, b) => Buffer.compare(a[0], b[0]));
  const parts: Buffer[] = [u32(entries.length)];
  for (const [k, v] of entries) parts.push(u32(k.length), k, u32(v.length), v);
  return Buffer.concat(parts);
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n, 0);
  return b;
}

/** The blob header (version, key id, material id), also the start of the AAD. */
export function blobHeader(keyId: string, materialId: string): Buffer {
  const version = isMultiRegionKeyId(keyId) ? MRK_BLOB_VERSION : BLOB_VERSION;
  return Buffer.concat([Buffer.from([version]), keyIdBytes(keyId), Buffer.from(materialId, 'hex')]);
}

export function sealBlob(
  keyId: string,
  materialId: string,
  material: Buffer,
  plaintext: Uint8Array,
  context: Readonly<Record<string, string>> | undefined,
): Buffer {
  const header = blobHeader(keyId, materialId);
  const iv = randomBytes(IV);
  const cipher = createCipheriv('aes-256-gcm', material, iv);
  cipher.setAAD(Buffer.concat([header, canonicalContext(context)]));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([header, iv, ct, cipher.getAuthTag()]);
}

/** Structural parse only; undefined when the bytes are not a blob of this format. */
export function parseBlob(blob: Uint8Array): ParsedBlob | undefined {
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.length);
  if (b.length < BLOB_OVERHEAD || (b[0] !== BLOB_VERSION && b[0] !== MRK_BLOB_VERSION)) return undefined;
  return {
    keyId: keyIdFromBytes(b.subarray(1, 17), b[0] === MRK_BLOB_VERSION),
    materialId: b.subarray(17, HEADER).toString('hex'),
    header: b.subarray(0, HEADER),
    iv: b.subarray(HEADER, HEADER + IV),
    ct: b.subarray(HEADER + IV, b.length - TAG),
    tag: b.subarray(b.length - TAG),
  };
}

/** Decrypts a parsed blob; undefined when authentication fails (wrong material or context). */
export function openBlob(
  parsed: ParsedBlob,
  material: Buffer,
  context: Readonly<Record<string, string>> | undefined,
): Buffer | undefined {
  try {
    const d = createDecipheriv('aes-256-gcm', material, parsed.iv);
    d.setAAD(Buffer.concat([parsed.header, canonicalContext(context)]));
    d.setAuthTag(parsed.tag);
    return Buffer.concat([d.update(parsed.ct), d.final()]);
  } catch {
    return undefined;
  }
}
