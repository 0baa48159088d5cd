import {
  constants,
  createECDH,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  privateDecrypt,
  privateEncrypt,
  publicDecrypt,
  publicEncrypt,
  randomBytes,
  sign as nodeSign,
  timingSafeEqual,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import { KEY_SPECS, hashOf, type KeySpec } from './specs.js';
import { generatePqKeyPair } from './pq.js';

/**
 * Asymmetric cryptography of the local KMS: key pairs, RSAES-OAEP, and Sign/Verify for both
 * AWS message types. MessageType RAW hashes the message (node:crypto does it); MessageType
 * DIGEST means the caller already hashed it, which node:crypto has no API for, so the padding is
 * built here (RSA: RFC 8017 EMSA-PKCS1-v1_5 / EMSA-PSS over the raw RSA primitive; ECDSA: the
 * FIPS 186 equations with the scalar multiplication done by node's ECDH, which computes k·G).
 */

function generateDer(type: 'rsa' | 'ec' | 'ed25519', options: { modulusLength?: number; namedCurve?: string }): Promise<KeyPairDer> {
  return new Promise((resolve, reject) => {
    const opts = {
      ...options,
      ...(type === 'rsa' ? { publicExponent: 65537 } : {}),
      publicKeyEncoding: { type: 'spki', format: 'der' },
      privateKeyEncoding: { type: 'pkcs8', format: 'der' },
    } as const;
    generateKeyPair(type as 'rsa', opts as never, (e: Error | null, publicKey: Buffer, privateKey: Buffer) =>
      e ? reject(e) : resolve({ publicKey, privateKey }),
    );
  });
}

export interface KeyPairDer {
  privateKey: Buffer; // PKCS#8 DER
  publicKey: Buffer; // SubjectPublicKeyInfo DER
}

export async function generateKeyPairFor(spec: KeySpec | string): Promise<KeyPairDer> {
  const info = KEY_SPECS[spec as KeySpec];
  if (info?.family === 'rsa') return generateDer('rsa', { modulusLength: info.rsaBits! });
  if (info?.family === 'ecc') return generateDer('ec', { namedCurve: info.curve! });
  if (info?.family === 'ed25519') return generateDer('ed25519', {});
  // ML-DSA / ML-KEM: pq.ts, which loads its implementation on this first use.
  if (info?.family === 'mldsa' || info?.family === 'mlkem') return generatePqKeyPair(info.parameterSet!);
  throw new Error(`not an asymmetric key spec: ${spec}`);
}

const privKey = (der: Buffer): KeyObject => createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
const pubKey = (der: Buffer): KeyObject => createPublicKey({ key: der, format: 'der', type: 'spki' });

export function publicKeyOf(privateDer: Buffer): Buffer {
  return createPublicKey(privKey(privateDer)).export({ type: 'spki', format: 'der' });
}

export function rsaOaepEncrypt(publicDer: Buffer, algorithm: string, plaintext: Uint8Array): Buffer {
  return publicEncrypt(
    { key: pubKey(publicDer), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hashOf(algorithm).hash },
    plaintext,
  );
}

/** undefined when the ciphertext does not decrypt (wrong key, algorithm or bytes). */
export function rsaOaepDecrypt(privateDer: Buffer, algorithm: string, ciphertext: Uint8Array): Buffer | undefined {
  try {
    return privateDecrypt(
      { key: privKey(privateDer), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hashOf(algorithm).hash },
      ciphertext,
    );
  } catch {
    return undefined;
  }
}

// ---- signatures ------------------------------------------------------------------------

/** DER DigestInfo prefixes (RFC 8017 §9.2 note 1). */
const DIGEST_INFO: Record<string, string> = {
  sha256: '3031300d060960864801650304020105000420',
  sha384: '3041300d060960864801650304020205000430',
  sha512: '3051300d060960864801650304020305000440',
};

export function signMessage(
  privateDer: Buffer,
  algorithm: string,
  messageType: 'RAW' | 'DIGEST',
  message: Uint8Array,
): Buffer {
  const { hash } = hashOf(algorithm);
  const key = privKey(privateDer);
  if (messageType === 'RAW') {
    if (algorithm.startsWith('RSASSA_PSS')) {
      return nodeSign(hash, message, {
        key,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: hashOf(algorithm).bytes,
      });
    }
    if (algorithm.startsWith('RSASSA_PKCS1')) return nodeSign(hash, message, { key, padding: constants.RSA_PKCS1_PADDING });
    return nodeSign(hash, message, { key, dsaEncoding: 'der' });
  }
  const digest = Buffer.from(message);
  if (algorithm.startsWith('RSASSA_PKCS1')) {
    return privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([Buffer.from(DIGEST_INFO[hash]!, 'hex'), digest]));
  }
  if (algorithm.startsWith('RSASSA_PSS')) {
    const bits = rsaModulusBits(key);
    const em = emsaPssEncode(digest, bits - 1, hash);
    const k = Math.ceil(bits / 8);
    const padded = Buffer.concat([Buffer.alloc(k - em.length), em]);
    return privateEncrypt({ key, padding: constants.RSA_NO_PADDING }, padded);
  }
  return ecdsaSignDigest(key, digest);
}

export function verifyMessage(
  privateDer: Buffer,
  publicDer: Buffer,
  algorithm: string,
  messageType: 'RAW' | 'DIGEST',
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  const { hash, bytes } = hashOf(algorithm);
  const key = pubKey(publicDer);
  try {
    if (messageType === 'RAW') {
      if (algorithm.startsWith('RSASSA_PSS')) {
        return nodeVerify(hash, message, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: bytes }, signature);
      }
      if (algorithm.startsWith('RSASSA_PKCS1')) {
        return nodeVerify(hash, message, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
      }
      return nodeVerify(hash, message, { key, dsaEncoding: 'der' }, signature);
    }
    const digest = Buffer.from(message);
    if (algorithm.startsWith('RSASSA_PKCS1')) {
      const expected = Buffer.concat([Buffer.from(DIGEST_INFO[hash]!, 'hex'), digest]);
      const got = publicDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, signature);
      return got.length === expected.length && timingSafeEqual(got, expected);
    }
    if (algorithm.startsWith('RSASSA_PSS')) {
      const bits = rsaModulusBits(key);
      const k = Math.ceil(bits / 8);
      if (signature.length !== k) return false;
      const raw = publicDecrypt({ key, padding: constants.RSA_NO_PADDING }, signature);
      const emLen = Math.ceil((bits - 1) / 8);
      if (raw.subarray(0, raw.length - emLen).some((b) => b !== 0)) return false;
      return emsaPssVerify(digest, raw.subarray(raw.length - emLen), bits - 1, hash, bytes);
    }
    return ecdsaVerifyDigest(privKey(privateDer), digest, Buffer.from(signature));
  } catch {
    return false;
  }
}

function rsaModulusBits(key: KeyObject): number {
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (!bits) throw new Error('not an RSA key');
  return bits;
}

function mgf1(seed: Buffer, length: number, hash: string): Buffer {
  const out: Buffer[] = [];
  let total = 0;
  for (let counter = 0; total < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter, 0);
    const block = createHash(hash).update(seed).update(c).digest();
    out.push(block);
    total += block.length;
  }
  return Buffer.concat(out).subarray(0, length);
}

/** RFC 8017 §9.1.1 with sLen = hLen (what AWS KMS uses for RSASSA_PSS_*). */
function emsaPssEncode(mHash: Buffer, emBits: number, hash: string): Buffer {
  const hLen = mHash.length;
  const emLen = Math.ceil(emBits / 8);
  const salt = randomBytes(hLen);
  const h = createHash(hash).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  const db = Buffer.concat([Buffer.alloc(emLen - 2 * hLen - 2), Buffer.from([1]), salt]);
  const mask = mgf1(h, emLen - hLen - 1, hash);
  for (let i = 0; i < db.length; i++) db[i]! ^= mask[i]!;
  db[0]! &= 0xff >> (8 * emLen - emBits);
  return Buffer.concat([db, h, Buffer.from([0xbc])]);
}

/** RFC 8017 §9.1.2 with sLen = hLen. */
function emsaPssVerify(mHash: Buffer, em: Buffer, emBits: number, hash: string, hLen: number): boolean {
  const emLen = Math.ceil(emBits / 8);
  if (mHash.length !== hLen || em.length !== emLen || emLen < 2 * hLen + 2) return false;
  if (em[emLen - 1] !== 0xbc) return false;
  const maskedDb = em.subarray(0, emLen - hLen - 1);
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  const topMask = 0xff >> (8 * emLen - emBits);
  if ((maskedDb[0]! & ~topMask) !== 0) return false;
  const mask = mgf1(h, maskedDb.length, hash);
  const db = Buffer.alloc(maskedDb.length);
  for (let i = 0; i < db.length; i++) db[i] = maskedDb[i]! ^ mask[i]!;
  db[0]! &= topMask;
  const psLen = emLen - 2 * hLen - 2;
  for (let i = 0; i < psLen; i++) if (db[i] !== 0) return false;
  if (db[psLen] !== 1) return false;
  const salt = db.subarray(db.length - hLen);
  const h2 = createHash(hash).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  return timingSafeEqual(h, h2);
}

// ---- ECDSA over a precomputed digest ----------------------------------------------------

/** Group orders of the supported curves (SEC 2 / FIPS 186-4 D.1.2). */
const CURVE_ORDER: Record<string, bigint> = {
  prime256v1: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  secp384r1:
    0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  secp521r1:
    0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
  secp256k1: 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n,
};

const CURVE_OF_JWK: Record<string, string> = {
  'P-256': 'prime256v1',
  'P-384': 'secp384r1',
  'P-521': 'secp521r1',
  secp256k1: 'secp256k1',
};

interface EcParams {
  curve: string;
  n: bigint;
  nBytes: number;
  nBits: number;
  d: bigint;
}

function ecParams(key: KeyObject): EcParams {
  const jwk = key.export({ format: 'jwk' });
  const curve = CURVE_OF_JWK[jwk.crv ?? ''];
  if (!curve || !jwk.d) throw new Error('unsupported EC key');
  const n = CURVE_ORDER[curve]!;
  const nBits = n.toString(2).length;
  return { curve, n, nBits, nBytes: Math.ceil(nBits / 8), d: toBig(Buffer.from(jwk.d, 'base64url')) };
}

const toBig = (b: Uint8Array): bigint => (b.length === 0 ? 0n : BigInt(`0x${Buffer.from(b).toString('hex')}`));

function toBytes(v: bigint, len: number): Buffer {
  return Buffer.from(v.toString(16).padStart(len * 2, '0'), 'hex');
}

const mod = (a: bigint, n: bigint): bigint => ((a % n) + n) % n;

function modInverse(a: bigint, n: bigint): bigint {
  let [r0, r1] = [mod(a, n), n];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return mod(s0, n);
}

/** FIPS 186-4 §6.4: the leftmost nBits of the digest, as an integer. */
function digestToInt(digest: Buffer, nBits: number): bigint {
  let e = toBig(digest);
  const excess = digest.length * 8 - nBits;
  if (excess > 0) e >>= BigInt(excess);
  return e;
}

/** x coordinate of k·G, computed by node:crypto's ECDH (public key = private scalar · G). */
function baseMultX(p: EcParams, k: bigint): bigint {
  const ecdh = createECDH(p.curve);
  ecdh.setPrivateKey(toBytes(k, p.nBytes));
  const point = ecdh.getPublicKey(); // 0x04 || X || Y
  const coord = (point.length - 1) / 2;
  return toBig(point.subarray(1, 1 + coord));
}

function ecdsaSignDigest(key: KeyObject, digest: Buffer): Buffer {
  const p = ecParams(key);
  const e = digestToInt(digest, p.nBits);
  for (;;) {
    const k = mod(toBig(randomBytes(p.nBytes + 16)), p.n - 1n) + 1n;
    const r = mod(baseMultX(p, k), p.n);
    if (r === 0n) continue;
    const s = mod(modInverse(k, p.n) * (e + r * p.d), p.n);
    if (s === 0n) continue;
    return derSignature(r, s);
  }
}

/**
 * Verification holds the private key (KMS verifies with the key it owns), so
 * u1·G + u2·Q = (u1 + u2·d)·G is one base-point multiplication.
 */
function ecdsaVerifyDigest(key: KeyObject, digest: Buffer, signature: Buffer): boolean {
  const p = ecParams(key);
  const rs = parseDerSignature(signature);
  if (!rs) return false;
  const [r, s] = rs;
  if (r <= 0n || r >= p.n || s <= 0n || s >= p.n) return false;
  const e = digestToInt(digest, p.nBits);
  const w = modInverse(s, p.n);
  const scalar = mod(e * w + r * w * p.d, p.n);
  if (scalar === 0n) return false;
  return mod(baseMultX(p, scalar), p.n) === r;
}

function derInt(v: bigint): Buffer {
  let hex = v.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let b = Buffer.from(hex, 'hex');
  if (b[0]! >= 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return Buffer.concat([Buffer.from([0x02]), derLen(b.length), b]);
}

function derLen(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x100) return Buffer.from([0x81, n]);
  return Buffer.from([0x82, n >> 8, n & 0xff]);
}

function derSignature(r: bigint, s: bigint): Buffer {
  const body = Buffer.concat([derInt(r), derInt(s)]);
  return Buffer.concat([Buffer.from([0x30]), derLen(body.length), body]);
}

function parseDerSignature(sig: Buffer): [bigint, bigint] | undefined {
  let o = 0;
  const readLen = (): number | undefined => {
    const first = sig[o++];
    if (first === undefined) return undefined;
    if (first < 0x80) return first;
    const n = first & 0x7f;
    if (n < 1 || n > 2) return undefined;
    let len = 0;
    for (let i = 0; i < n; i++) {
      const b = sig[o++];
      if (b === undefined) return undefined;
      len = (len << 8) | b;
    }
    return len;
  };
  if (sig[o++] !== 0x30) return undefined;
  const total = readLen();
  if (total === undefined || o + total !== sig.length) return undefined;
  const ints: bigint[] = [];
  for (let i = 0; i < 2; i++) {
    if (sig[o++] !== 0x02) return undefined;
    const len = readLen();
    if (len === undefined || len === 0 || o + len > sig.length) return undefined;
    ints.push(toBig(sig.subarray(o, o + len)));
    o += len;
  }
  if (o !== sig.length) return undefined;
  return [ints[0]!, ints[1]!];
}
