/**
 * Key ids in the local KMS's own binary formats (ciphertext blobs, import tokens, grant tokens):
 * 16 bytes, read back as a UUID or, for multi-Region keys, as `mrk-` + 32 hex digits (Developer
 * Guide, "Key identifiers"). The formats carry which of the two it is in their version byte.
 */
export function isMultiRegionKeyId(keyId: string): boolean {
  return keyId.startsWith('mrk-');
}

export function keyIdBytes(keyId: string): Buffer {
  const hex = isMultiRegionKeyId(keyId) ? keyId.slice(4) : keyId.replace(/-/g, '');
  const b = Buffer.from(hex, 'hex');
  if (b.length !== 16) throw new Error(`not a key id: ${keyId.slice(0, 64)}`);
  return b;
}

export function keyIdFromBytes(b: Buffer, multiRegion: boolean): string {
  const h = b.toString('hex');
  return multiRegion ? `mrk-${h}` : `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
