/**
 * Raw RSA keyring (aws-encryption-sdk-specification, framework/raw-rsa-keyring.md): wraps data
 * keys with an RSA public key, unwraps with the private key. Byte-compatible with the ESDK's
 * RawRsaKeyringNode: providerId = key namespace, providerInfo = key name, ciphertext = the RSA
 * ciphertext of the data key.
 *
 * PKCS#1 v1.5 decryption: Node.js refuses it (CVE-2023-46809, Marvin attack) unless its OpenSSL
 * offers implicit rejection. We do not work around that with hand-written unpadding, which would
 * reopen the timing oracle; where Node refuses, a keyring that would need it fails at
 * construction, and PKCS1 remains usable for encrypting to a key whose owner decrypts elsewhere.
 */
import {
  constants,
  createPrivateKey,
  createPublicKey,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { KeyringError } from '../errors.js';
import type {
  EncryptedDataKey,
  Keyring,
  KeyringDecryptInput,
  KeyringEncryptInput,
  KeyringEncryptOutput,
} from '../types.js';
import { checkGivenDataKey, keyringSuite, rawKeyNamespaceOption, stringOption } from './common.js';

export type RsaPadding = 'OAEP_SHA1' | 'OAEP_SHA256' | 'OAEP_SHA384' | 'OAEP_SHA512' | 'PKCS1';

export interface RawRsaKeyringOptions {
  /** Provider id written to the message. Must not be or start with `aws-kms` (reserved for the KMS keyrings). */
  keyNamespace: string;
  /** Provider info written to the message: names the key pair. */
  keyName: string;
  /** RSA public key (PEM SubjectPublicKeyInfo or PKCS#1, or a public KeyObject; a private key is refused). Needed to encrypt. Parsed at construction: the keyring keeps no reference to a Buffer given here. */
  publicKey?: string | Buffer | KeyObject;
  /**
   * RSA private key (PEM PKCS#8 or PKCS#1, or a KeyObject). Needed to decrypt: without it onDecrypt
   * fails (ERR_KEYRING). PEM is parsed at construction into the keyring's own KeyObject: zeroing or
   * reusing your Buffer afterwards does not affect the keyring, so you may wipe it once built.
   */
  privateKey?: string | Buffer | KeyObject;
  /**
   * Padding scheme, required (no default). OAEP uses the same hash for MGF1, as the spec requires.
   * Not written to the message: reader and writer must agree (the ESDK's RawRsaKeyringNode
   * `{ padding: RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }` is `OAEP_SHA256`). Prefer OAEP:
   * `PKCS1` with a `privateKey` throws a RangeError where Node.js refuses PKCS#1 v1.5 decryption
   * (CVE-2023-46809). A modulus too small for the padding and a 32-byte data key is a RangeError.
   */
  padding: RsaPadding;
}

const PADDINGS: Readonly<Record<RsaPadding, { padding: number; oaepHash?: string; hashBytes: number }>> = {
  OAEP_SHA1: { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1', hashBytes: 20 },
  OAEP_SHA256: { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', hashBytes: 32 },
  OAEP_SHA384: { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha384', hashBytes: 48 },
  OAEP_SHA512: { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha512', hashBytes: 64 },
  PKCS1: { padding: constants.RSA_PKCS1_PADDING, hashBytes: 0 },
};

/** Largest data key the suites use (AES-256). */
const MAX_DATA_KEY = 32;

export class RawRsaKeyring implements Keyring {
  readonly keyNamespace: string;
  readonly keyName: string;
  readonly padding: RsaPadding;
  readonly #publicKey: KeyObject | undefined;
  readonly #privateKey: KeyObject | undefined;
  readonly #nameBytes: Buffer;
  readonly #rsa: { padding: number; oaepHash?: string };

  constructor(options: RawRsaKeyringOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('RawRsaKeyring options must be an object');
    const { keyNamespace, keyName, publicKey, privateKey, padding } = options;
    this.keyNamespace = rawKeyNamespaceOption(keyNamespace, 'options.keyNamespace');
    this.keyName = stringOption(keyName, 'options.keyName');
    this.#nameBytes = Buffer.from(keyName, 'utf8');
    if (typeof padding !== 'string' || !Object.prototype.hasOwnProperty.call(PADDINGS, padding)) {
      throw new TypeError(`options.padding must be one of ${Object.keys(PADDINGS).join(', ')}`);
    }
    this.padding = padding;
    const p = PADDINGS[padding];
    this.#rsa = p.oaepHash === undefined ? { padding: p.padding } : { padding: p.padding, oaepHash: p.oaepHash };

    if (publicKey === undefined && privateKey === undefined) {
      throw new TypeError('RawRsaKeyring needs options.publicKey (to encrypt) and/or options.privateKey (to decrypt)');
    }
    if (publicKey !== undefined) this.#publicKey = loadKey(publicKey, 'public', 'options.publicKey');
    if (privateKey !== undefined) this.#privateKey = loadKey(privateKey, 'private', 'options.privateKey');

    for (const [k, option] of [
      [this.#publicKey, 'options.publicKey'],
      [this.#privateKey, 'options.privateKey'],
    ] as const) {
      if (k === undefined) continue;
      // RFC 8017: OAEP carries at most k - 2*hLen - 2 bytes, PKCS#1 v1.5 at most k - 11.
      const modulusBytes = Math.ceil((k.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
      const room = p.hashBytes > 0 ? modulusBytes - 2 * p.hashBytes - 2 : modulusBytes - 11;
      if (room < MAX_DATA_KEY) {
        throw new RangeError(
          `${option} is too small for padding ${padding}: a ${modulusBytes * 8}-bit modulus fits ${Math.max(room, 0)} bytes, data keys need up to ${MAX_DATA_KEY}`,
        );
      }
    }
    if (this.#privateKey !== undefined && padding === 'PKCS1' && !pkcs1DecryptAvailable(this.#privateKey)) {
      throw new RangeError(
        'options.padding "PKCS1" cannot decrypt on this Node.js (PKCS#1 v1.5 decryption disabled for CVE-2023-46809); ' +
          'use an OAEP padding, or give only options.publicKey to encrypt for a reader elsewhere',
      );
    }
  }

  async onEncrypt(input: KeyringEncryptInput): Promise<KeyringEncryptOutput> {
    // Spec "OnEncrypt": must not succeed without a public key.
    if (this.#publicKey === undefined) throw new KeyringError('RawRsaKeyring has no public key: it can only decrypt');
    const suite = keyringSuite(input.suiteId);
    const dataKey = input.dataKey === undefined ? randomBytes(suite.keyLength) : checkGivenDataKey(input.dataKey, suite);
    const ciphertext = publicEncrypt({ key: this.#publicKey, ...this.#rsa }, dataKey);
    const edk: EncryptedDataKey = {
      providerId: this.keyNamespace,
      providerInfo: Buffer.from(this.#nameBytes),
      ciphertext,
    };
    return { dataKey, encryptedDataKeys: [edk] };
  }

  async onDecrypt(input: KeyringDecryptInput): Promise<Uint8Array | undefined> {
    const suite = keyringSuite(input.suiteId);
    // Spec "OnDecrypt": fails without a private key. An error, not "no key found", so that a
    // multi-keyring reports it among the failures of its children.
    if (this.#privateKey === undefined) throw new KeyringError('RawRsaKeyring has no private key: it can only encrypt');
    for (const edk of input.encryptedDataKeys) {
      if (edk.providerId !== this.keyNamespace) continue;
      if (Buffer.compare(Buffer.from(edk.providerInfo), this.#nameBytes) !== 0) continue;
      let key: Buffer;
      try {
        key = privateDecrypt({ key: this.#privateKey, ...this.#rsa }, edk.ciphertext);
      } catch {
        continue; // Not decryptable with our key (another key pair under this name, or corrupted).
      }
      if (key.length !== suite.keyLength) {
        key.fill(0);
        continue;
      }
      return key;
    }
    return undefined;
  }
}

function loadKey(value: unknown, type: 'public' | 'private', option: string): KeyObject {
  // Spec "OnEncrypt": the keyring never derives a public key from a private key, so a private key
  // given as the public key is refused rather than reduced to its public half.
  if (type === 'public' && (isKeyObject(value) ? value.type === 'private' : isPrivateKeyPem(value))) {
    throw new TypeError(`${option} must be the RSA public key itself; got a private key, from which the keyring does not derive one`);
  }
  let key: KeyObject;
  try {
    if (type === 'public') {
      key = isKeyObject(value) ? value : createPublicKey(value as string | Buffer);
    } else {
      if (isKeyObject(value)) {
        if (value.type !== 'private') throw new TypeError('not a private key');
        key = value;
      } else {
        key = createPrivateKey(value as string | Buffer);
      }
    }
  } catch {
    throw new TypeError(`${option} must be an RSA ${type} key as PEM or KeyObject`);
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new TypeError(`${option} must be an RSA key (rsaEncryption); got ${key.asymmetricKeyType ?? 'unknown'}`);
  }
  return key;
}

/** Whether `value` parses as a private key (PEM text). */
function isPrivateKeyPem(value: unknown): boolean {
  try {
    createPrivateKey(value as string | Buffer);
    return true;
  } catch {
    return false;
  }
}

function isKeyObject(v: unknown): v is KeyObject {
  return v !== null && typeof v === 'object' && typeof (v as KeyObject).type === 'string' && typeof (v as KeyObject).export === 'function';
}

let pkcs1Available: boolean | undefined;

/**
 * Whether this Node.js performs PKCS#1 v1.5 private decryption (it does only with OpenSSL's
 * implicit rejection, or under --security-revert=CVE-2023-46809). Node refuses before doing any
 * RSA work, so probing with a zero block is cheap; any other outcome means it is available.
 */
function pkcs1DecryptAvailable(privateKey: KeyObject): boolean {
  if (pkcs1Available !== undefined) return pkcs1Available;
  const size = Math.ceil((privateKey.asymmetricKeyDetails?.modulusLength ?? 2048) / 8);
  try {
    privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.alloc(size));
    pkcs1Available = true;
  } catch (err) {
    pkcs1Available = !/CVE-2023-46809|no longer supported/i.test(String((err as Error)?.message));
  }
  return pkcs1Available;
}
