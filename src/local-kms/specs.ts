/**
 * Key specs, key usages and the algorithms AWS KMS allows for each
 * (AWS KMS Developer Guide, "Key spec reference"). DescribeKey, GetPublicKey and the
 * cryptographic operations all read this one table so they cannot disagree.
 */

export type KeyUsage = 'ENCRYPT_DECRYPT' | 'SIGN_VERIFY' | 'GENERATE_VERIFY_MAC' | 'KEY_AGREEMENT' | 'ENCAPSULATE_DECAPSULATE';
export const KEY_USAGES: readonly KeyUsage[] = ['ENCRYPT_DECRYPT', 'SIGN_VERIFY', 'GENERATE_VERIFY_MAC', 'KEY_AGREEMENT', 'ENCAPSULATE_DECAPSULATE'];

export type KeySpec =
  | 'SYMMETRIC_DEFAULT'
  | 'RSA_2048'
  | 'RSA_3072'
  | 'RSA_4096'
  | 'ECC_NIST_P256'
  | 'ECC_NIST_P384'
  | 'ECC_NIST_P521'
  | 'ECC_SECG_P256K1'
  | 'ECC_NIST_EDWARDS25519'
  | 'ML_DSA_44'
  | 'ML_DSA_65'
  | 'ML_DSA_87'
  | 'ML_KEM_512'
  | 'ML_KEM_768'
  | 'ML_KEM_1024'
  | 'HMAC_224'
  | 'HMAC_256'
  | 'HMAC_384'
  | 'HMAC_512';

/**
 * `ed25519`: Edwards-curve keys (node:crypto, eddsa.ts); `mldsa`/`mlkem`: the post-quantum FIPS 204
 * and FIPS 203 keys (pq.ts, loaded on first use).
 */
export type KeyFamily = 'symmetric' | 'rsa' | 'ecc' | 'hmac' | 'ed25519' | 'mldsa' | 'mlkem';

export interface KeySpecInfo {
  family: KeyFamily;
  usages: readonly KeyUsage[];
  /** RSA modulus bits. */
  rsaBits?: number;
  /** node:crypto curve name (namedCurve / ECDH curve). */
  curve?: string;
  /** Byte length of the curve order (ECDSA scalars). */
  orderBytes?: number;
  /** HMAC key length in bytes and hash. */
  hmacBytes?: number;
  hmacHash?: string;
  /** ML-DSA / ML-KEM parameter set as FIPS 204 / FIPS 203 name it (`ML-DSA-65`, `ML-KEM-768`). */
  parameterSet?: string;
}

export const KEY_SPECS: Readonly<Record<KeySpec, KeySpecInfo>> = {
  SYMMETRIC_DEFAULT: { family: 'symmetric', usages: ['ENCRYPT_DECRYPT'] },
  RSA_2048: { family: 'rsa', usages: ['ENCRYPT_DECRYPT', 'SIGN_VERIFY'], rsaBits: 2048 },
  RSA_3072: { family: 'rsa', usages: ['ENCRYPT_DECRYPT', 'SIGN_VERIFY'], rsaBits: 3072 },
  RSA_4096: { family: 'rsa', usages: ['ENCRYPT_DECRYPT', 'SIGN_VERIFY'], rsaBits: 4096 },
  // NIST curves sign/verify or derive shared secrets (KEY_AGREEMENT, DeriveSharedSecret); the
  // secp256k1 curve only signs (API Reference, CreateKey `KeyUsage`; Developer Guide, "Key spec
  // reference"). A key has one usage for its whole life.
  ECC_NIST_P256: { family: 'ecc', usages: ['SIGN_VERIFY', 'KEY_AGREEMENT'], curve: 'prime256v1', orderBytes: 32 },
  ECC_NIST_P384: { family: 'ecc', usages: ['SIGN_VERIFY', 'KEY_AGREEMENT'], curve: 'secp384r1', orderBytes: 48 },
  ECC_NIST_P521: { family: 'ecc', usages: ['SIGN_VERIFY', 'KEY_AGREEMENT'], curve: 'secp521r1', orderBytes: 66 },
  ECC_SECG_P256K1: { family: 'ecc', usages: ['SIGN_VERIFY'], curve: 'secp256k1', orderBytes: 32 },
  // Ed25519 signs only (API Reference, CreateKey `KeySpec`: "ECC_NIST_EDWARDS25519 (ed25519) -
  // signing and verification only").
  ECC_NIST_EDWARDS25519: { family: 'ed25519', usages: ['SIGN_VERIFY'] },
  // ML-DSA (FIPS 204) signs; ML-KEM (FIPS 203) only encapsulates (Developer Guide, "ML-DSA keys",
  // API Reference, Encapsulate: the key usage must be ENCAPSULATE_DECAPSULATE).
  ML_DSA_44: { family: 'mldsa', usages: ['SIGN_VERIFY'], parameterSet: 'ML-DSA-44' },
  ML_DSA_65: { family: 'mldsa', usages: ['SIGN_VERIFY'], parameterSet: 'ML-DSA-65' },
  ML_DSA_87: { family: 'mldsa', usages: ['SIGN_VERIFY'], parameterSet: 'ML-DSA-87' },
  ML_KEM_512: { family: 'mlkem', usages: ['ENCAPSULATE_DECAPSULATE'], parameterSet: 'ML-KEM-512' },
  ML_KEM_768: { family: 'mlkem', usages: ['ENCAPSULATE_DECAPSULATE'], parameterSet: 'ML-KEM-768' },
  ML_KEM_1024: { family: 'mlkem', usages: ['ENCAPSULATE_DECAPSULATE'], parameterSet: 'ML-KEM-1024' },
  HMAC_224: { family: 'hmac', usages: ['GENERATE_VERIFY_MAC'], hmacBytes: 28, hmacHash: 'sha224' },
  HMAC_256: { family: 'hmac', usages: ['GENERATE_VERIFY_MAC'], hmacBytes: 32, hmacHash: 'sha256' },
  HMAC_384: { family: 'hmac', usages: ['GENERATE_VERIFY_MAC'], hmacBytes: 48, hmacHash: 'sha384' },
  HMAC_512: { family: 'hmac', usages: ['GENERATE_VERIFY_MAC'], hmacBytes: 64, hmacHash: 'sha512' },
};

export const KEY_SPEC_NAMES = Object.keys(KEY_SPECS) as KeySpec[];

export const isKeySpec = (v: string): v is KeySpec => Object.prototype.hasOwnProperty.call(KEY_SPECS, v);

/** Encryption algorithms per key spec (only for ENCRYPT_DECRYPT keys). */
export function encryptionAlgorithmsFor(spec: KeySpec): string[] {
  const info = KEY_SPECS[spec];
  if (info.family === 'symmetric') return ['SYMMETRIC_DEFAULT'];
  if (info.family === 'rsa') return ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'];
  return [];
}

/** Signing algorithms per key spec (only for SIGN_VERIFY keys), in the order DescribeKey lists them. */
export function signingAlgorithmsFor(spec: KeySpec): string[] {
  switch (spec) {
    case 'RSA_2048':
    case 'RSA_3072':
    case 'RSA_4096':
      return [
        'RSASSA_PKCS1_V1_5_SHA_256',
        'RSASSA_PKCS1_V1_5_SHA_384',
        'RSASSA_PKCS1_V1_5_SHA_512',
        'RSASSA_PSS_SHA_256',
        'RSASSA_PSS_SHA_384',
        'RSASSA_PSS_SHA_512',
      ];
    case 'ECC_NIST_P256':
    case 'ECC_SECG_P256K1':
      return ['ECDSA_SHA_256'];
    case 'ECC_NIST_P384':
      return ['ECDSA_SHA_384'];
    case 'ECC_NIST_P521':
      return ['ECDSA_SHA_512'];
    // Pure Ed25519 with MessageType RAW, Ed25519ph (RFC 8032 §5.1) with MessageType DIGEST
    // (API Reference, Sign `MessageType`).
    case 'ECC_NIST_EDWARDS25519':
      return ['ED25519_SHA_512', 'ED25519_PH_SHA_512'];
    case 'ML_DSA_44':
    case 'ML_DSA_65':
    case 'ML_DSA_87':
      return ['ML_DSA_SHAKE_256'];
    default:
      return [];
  }
}

/**
 * Key agreement algorithms of a KEY_AGREEMENT key: ECDH is the only one (API Reference,
 * DeriveSharedSecret `KeyAgreementAlgorithm`). DescribeKey and GetPublicKey list it only for keys
 * with that usage, like the other algorithm lists.
 */
export function keyAgreementAlgorithmsFor(usage: KeyUsage): string[] {
  return usage === 'KEY_AGREEMENT' ? ['ECDH'] : [];
}

/**
 * Key encapsulation algorithms of an ENCAPSULATE_DECAPSULATE key: ML_KEM is the only one (API
 * Reference, Encapsulate `EncapsulationAlgorithm`); DescribeKey and GetPublicKey list it only for
 * keys with that usage.
 */
export function encapsulationAlgorithmsFor(usage: KeyUsage): string[] {
  return usage === 'ENCAPSULATE_DECAPSULATE' ? ['ML_KEM'] : [];
}

/**
 * Key specs in the API's KeySpec enum that AWS offers only in China Regions (SM2; API Reference,
 * CreateKey `KeySpec`). The local KMS does not model them in any region: CreateKey answers
 * UnsupportedOperationException, which is what AWS answers for SM2 outside China Regions.
 */
export const CHINA_ONLY_KEY_SPECS: readonly string[] = ['SM2'];

export function macAlgorithmsFor(spec: KeySpec): string[] {
  const info = KEY_SPECS[spec];
  return info.family === 'hmac' ? [`HMAC_SHA_${spec.slice(5)}`] : [];
}

/** Hash behind a signing / MAC / OAEP algorithm name, and its output length in bytes. */
export function hashOf(algorithm: string): { hash: string; bytes: number } {
  const m = /(?:SHA_?)(1|224|256|384|512)$/.exec(algorithm);
  if (!m) throw new Error(`no hash in algorithm ${algorithm}`);
  const bits = m[1] === '1' ? 160 : Number(m[1]);
  return { hash: m[1] === '1' ? 'sha1' : `sha${m[1]}`, bytes: bits / 8 };
}

/**
 * Largest plaintext RSAES-OAEP can take for a modulus of `rsaBits` (RFC 8017 §7.1.1:
 * k - 2·hLen - 2). AWS KMS documents the same numbers: RSA_2048 214/190 bytes (SHA-1/SHA-256),
 * RSA_3072 342/318, RSA_4096 470/446.
 */
export function rsaOaepMaxPlaintext(rsaBits: number, algorithm: string): number {
  return rsaBits / 8 - 2 * hashOf(algorithm).bytes - 2;
}

/** Key pair specs for GenerateDataKeyPair. */
export const KEY_PAIR_SPECS = [
  'RSA_2048',
  'RSA_3072',
  'RSA_4096',
  'ECC_NIST_P256',
  'ECC_NIST_P384',
  'ECC_NIST_P521',
  'ECC_SECG_P256K1',
  // DataKeyPairSpec enum of the API: Ed25519 and ML-KEM pairs too (no ML-DSA pairs).
  'ECC_NIST_EDWARDS25519',
  'ML_KEM_512',
  'ML_KEM_768',
  'ML_KEM_1024',
] as const;
