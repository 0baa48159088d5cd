import { isMultiRegionKeyId, keyIdBytes, keyIdFromBytes } from './key-id.js';
import {
  constants,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  privateDecrypt,
  randomBytes,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { KEY_SPECS, type KeySpec } from './specs.js';
import { generateKeyPairFor } from './asym.js';

/**
 * Imported key material (AWS KMS Developer Guide, "Importing key material"):
 * GetParametersForImport hands out an RSA wrapping public key (DER SubjectPublicKeyInfo) and an
 * import token, both valid 24 hours; the user encrypts the material with one of the wrapping
 * algorithms and sends it with the token to ImportKeyMaterial.
 *
 * Wrapping algorithms:
 *   RSAES_OAEP_SHA_1 / _256       the material is RSA-OAEP encrypted directly (MGF1 uses the same hash);
 *   RSA_AES_KEY_WRAP_SHA_1 / _256 an ephemeral 256-bit AES key is RSA-OAEP encrypted and the
 *                                 material is wrapped under it with AES key wrap with padding
 *                                 (RFC 5649, OpenSSL `id-aes256-wrap-pad`); the upload is the
 *                                 RSA ciphertext (modulus length) followed by the wrapped material.
 */
export const WRAPPING_ALGORITHMS = [
  'RSAES_OAEP_SHA_1',
  'RSAES_OAEP_SHA_256',
  'RSA_AES_KEY_WRAP_SHA_1',
  'RSA_AES_KEY_WRAP_SHA_256',
] as const;
export const WRAPPING_KEY_SPECS = ['RSA_2048', 'RSA_3072', 'RSA_4096'] as const;

export const IMPORT_PARAMETERS_TTL_MS = 24 * 60 * 60 * 1000;

export async function createWrappingKey(spec: string): Promise<{ publicKey: Buffer; privateKey: Buffer }> {
  return generateKeyPairFor(spec);
}

/** RFC 5649 §3: the alternative initial value for AES key wrap with padding. */
const KWP_AIV = Buffer.from('a65959a6', 'hex');

/** Returns the plaintext key material, or undefined when the upload cannot be unwrapped. */
export function unwrapKeyMaterial(algorithm: string, privateDer: Buffer, encrypted: Buffer): Buffer | undefined {
  const key = createPrivateKey({ key: privateDer, format: 'der', type: 'pkcs8' });
  const hash = algorithm.endsWith('SHA_1') ? 'sha1' : 'sha256';
  const oaep = (data: Buffer): Buffer | undefined => {
    try {
      return privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, data);
    } catch {
      return undefined;
    }
  };
  if (algorithm.startsWith('RSAES_OAEP')) return oaep(encrypted);
  const k = (key.asymmetricKeyDetails?.modulusLength ?? 0) / 8;
  if (encrypted.length <= k) return undefined;
  const aesKey = oaep(encrypted.subarray(0, k));
  if (!aesKey || aesKey.length !== 32) return undefined;
  try {
    const d = createDecipheriv('id-aes256-wrap-pad', aesKey, KWP_AIV);
    return Buffer.concat([d.update(encrypted.subarray(k)), d.final()]);
  } catch {
    return undefined;
  }
}

/**
 * Import token: opaque to the caller, bound to the key and to one wrapping key pair, carrying
 * its own expiry, and MACed under a key derived from the root key so it cannot be forged or
 * moved to another key.
 *   version u8 | keyId 16 B | tokenId 16 B | expiresAt u64 ms | padding 32 B | mac 32 B
 * Version 1 names a key by its UUID, version 2 a multi-Region key (`mrk-` + those 16 bytes in hex).
 * The random padding only makes tokens look less structured; AWS tokens are opaque too.
 */
const TOKEN_VERSION = 1;
const MRK_TOKEN_VERSION = 2;
const TOKEN_BODY = 1 + 16 + 16 + 8 + 32;

export interface TokenContents {
  keyId: string;
  tokenId: string;
  expiresAt: number;
}

export function makeImportToken(c: TokenContents, mac: (b: Buffer) => Buffer): Buffer {
  const body = Buffer.alloc(TOKEN_BODY);
  body[0] = isMultiRegionKeyId(c.keyId) ? MRK_TOKEN_VERSION : TOKEN_VERSION;
  keyIdBytes(c.keyId).copy(body, 1);
  Buffer.from(c.tokenId, 'hex').copy(body, 17);
  body.writeBigUInt64BE(BigInt(c.expiresAt), 33);
  randomBytes(32).copy(body, 41);
  return Buffer.concat([body, mac(body)]);
}

export function readImportToken(token: Buffer, mac: (b: Buffer) => Buffer): TokenContents | undefined {
  if (token.length !== TOKEN_BODY + 32 || (token[0] !== TOKEN_VERSION && token[0] !== MRK_TOKEN_VERSION)) return undefined;
  const body = token.subarray(0, TOKEN_BODY);
  if (!timingSafeEqual(mac(body), token.subarray(TOKEN_BODY))) return undefined;
  return {
    keyId: keyIdFromBytes(body.subarray(1, 17), token[0] === MRK_TOKEN_VERSION),
    tokenId: body.subarray(17, 33).toString('hex'),
    expiresAt: Number(body.readBigUInt64BE(33)),
  };
}

/**
 * Checks unwrapped key material against the key spec and returns it in canonical form
 * (AWS KMS Developer Guide, "Requirements for imported key material"):
 *   SYMMETRIC_DEFAULT  exactly 256 bits;
 *   HMAC_224/256/384/512  28-64, 32-64, 48-128, 64-128 bytes;
 *   RSA / ECC  a PKCS#8 DER private key of the key's size or curve (re-encoded, so the same key
 *              in another valid encoding counts as the same material).
 * Returns an error text (no secret in it) when the material does not fit.
 */
export function canonicalMaterial(
  spec: KeySpec,
  material: Buffer,
): { secret: Buffer; publicKey?: Buffer } | { error: string } {
  const info = KEY_SPECS[spec];
  if (info.family === 'symmetric') {
    return material.length === 32 ? { secret: material } : { error: 'Key material for a SYMMETRIC_DEFAULT key must be 256 bits (32 bytes).' };
  }
  if (info.family === 'hmac') {
    const min = info.hmacBytes!;
    const max = min <= 32 ? 64 : 128;
    return material.length >= min && material.length <= max
      ? { secret: material }
      : { error: `Key material for a ${spec} key must be ${min} to ${max} bytes.` };
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: material, format: 'der', type: 'pkcs8' });
  } catch {
    return { error: `Key material for a ${spec} key must be a DER-encoded PKCS #8 private key.` };
  }
  const d = key.asymmetricKeyDetails ?? {};
  const fits =
    info.family === 'rsa'
      ? key.asymmetricKeyType === 'rsa' && d.modulusLength === info.rsaBits
      : key.asymmetricKeyType === 'ec' && d.namedCurve === info.curve;
  if (!fits) return { error: `The private key in the key material does not match key spec ${spec}.` };
  return {
    secret: key.export({ type: 'pkcs8', format: 'der' }),
    publicKey: createPublicKey(key).export({ type: 'spki', format: 'der' }),
  };
}
