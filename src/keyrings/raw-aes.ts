/**
 * Raw AES keyring (aws-encryption-sdk-specification, framework/raw-aes-keyring.md): wraps data
 * keys locally with AES-GCM under a caller-held 128/192/256-bit key. Byte-compatible with the
 * ESDK's RawAesKeyringNode created with `utf8Sorting: true`.
 *
 *   providerId   = key namespace
 *   providerInfo = key name (UTF-8) || tag length in bits (u32 BE, 128) || IV length (u32 BE, 12) || IV
 *   ciphertext   = AES-GCM(wrapping key, IV, AAD = serialized context)(data key) || 16-byte tag
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { serializeContext } from '../format/context.js';
import type {
  EncryptedDataKey,
  Keyring,
  KeyringDecryptInput,
  KeyringEncryptInput,
  KeyringEncryptOutput,
} from '../types.js';
import { checkGivenDataKey, keyringSuite, rawKeyNamespaceOption, stringOption } from './common.js';
import { DECRYPT_NOW, ENCRYPT_NOW, registerImmediate, type ImmediateKeyring } from './immediate.js';

export interface RawAesKeyringOptions {
  /** Provider id written to the message, e.g. `my-app`. Must not be or start with `aws-kms` (reserved for the KMS keyrings). */
  keyNamespace: string;
  /** Names the wrapping key inside its namespace; written to the message. */
  keyName: string;
  /**
   * Wrapping key: 16, 24 or 32 random bytes (AES-128/192/256), or a secret KeyObject of that size.
   * Copied at construction into the keyring's own KeyObject: zeroing or reusing your buffer
   * afterwards does not change the keyring's key, so you may (and should) wipe your copy once the
   * keyring is built.
   */
  key: Uint8Array | KeyObject;
}

const TAG_BYTES = 16;
const TAG_BITS = TAG_BYTES * 8;
const IV_BYTES = 12;

export class RawAesKeyring implements Keyring, ImmediateKeyring {
  readonly keyNamespace: string;
  readonly keyName: string;
  readonly #key: KeyObject;
  readonly #cipher: 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm';
  readonly #nameBytes: Buffer;

  constructor(options: RawAesKeyringOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('RawAesKeyring options must be an object');
    const { keyNamespace, keyName, key } = options;
    this.keyNamespace = rawKeyNamespaceOption(keyNamespace, 'options.keyNamespace');
    // Provider info is key name + 8 bytes of lengths + 12-byte IV, in a field of at most 65,535 bytes.
    this.keyName = stringOption(keyName, 'options.keyName', 0xffff - 8 - IV_BYTES);
    this.#nameBytes = Buffer.from(keyName, 'utf8');

    let bytes: Buffer;
    if (key instanceof Uint8Array) bytes = Buffer.from(key);
    else if (isSecretKeyObject(key)) bytes = key.export();
    else throw new TypeError('options.key must be a Uint8Array or a secret KeyObject of 16, 24 or 32 bytes');
    const size = bytes.length;
    if (size !== 16 && size !== 24 && size !== 32) {
      bytes.fill(0);
      throw new RangeError(`options.key must be 16, 24 or 32 bytes (AES-128, -192 or -256); got ${size} bytes`);
    }
    // Our own copy: later changes to the caller's buffer do not affect this keyring. createSecretKey
    // copies again into a KeyObject, so the temporary buffer is wiped.
    this.#key = createSecretKey(bytes);
    bytes.fill(0);
    this.#cipher = `aes-${size * 8}-gcm` as 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm';
  }

  async onEncrypt(input: KeyringEncryptInput): Promise<KeyringEncryptOutput> {
    return this[ENCRYPT_NOW](input);
  }

  async onDecrypt(input: KeyringDecryptInput): Promise<Uint8Array | undefined> {
    return this[DECRYPT_NOW](input);
  }

  /** onEncrypt without the promise (keyrings/immediate.ts): a raw key needs no I/O. */
  [ENCRYPT_NOW](input: KeyringEncryptInput): KeyringEncryptOutput {
    const suite = keyringSuite(input.suiteId);
    // Serialized first (spec "OnEncrypt": a context that cannot be serialized fails), so such a
    // failure leaves no freshly generated data key behind.
    const aad = serializeContext(input.context);
    const dataKey = input.dataKey === undefined ? randomBytes(suite.keyLength) : checkGivenDataKey(input.dataKey, suite);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv(this.#cipher, this.#key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad);
    const ct = Buffer.concat([cipher.update(dataKey), cipher.final(), cipher.getAuthTag()]);

    const info = Buffer.alloc(this.#nameBytes.length + 8 + IV_BYTES);
    let o = this.#nameBytes.copy(info, 0);
    o = info.writeUInt32BE(TAG_BITS, o);
    o = info.writeUInt32BE(IV_BYTES, o);
    iv.copy(info, o);

    const edk: EncryptedDataKey = { providerId: this.keyNamespace, providerInfo: info, ciphertext: ct };
    return { dataKey, encryptedDataKeys: [edk] };
  }

  /** onDecrypt without the promise (keyrings/immediate.ts). */
  [DECRYPT_NOW](input: KeyringDecryptInput): Uint8Array | undefined {
    const suite = keyringSuite(input.suiteId);
    const aad = serializeContext(input.context);
    const nameLen = this.#nameBytes.length;
    for (const edk of input.encryptedDataKeys) {
      // Spec "On Decrypt": only EDKs of our namespace and key name, with tag 128 bits and IV 12 bytes.
      if (edk.providerId !== this.keyNamespace) continue;
      const info = edk.providerInfo;
      if (info.length !== nameLen + 8 + IV_BYTES) continue;
      if (Buffer.compare(info.subarray(0, nameLen), this.#nameBytes) !== 0) continue;
      const view = new DataView(info.buffer, info.byteOffset, info.byteLength);
      if (view.getUint32(nameLen) !== TAG_BITS || view.getUint32(nameLen + 4) !== IV_BYTES) continue;
      if (edk.ciphertext.length !== suite.keyLength + TAG_BYTES) continue;

      const iv = info.subarray(nameLen + 8);
      const ct = edk.ciphertext.subarray(0, suite.keyLength);
      const tag = edk.ciphertext.subarray(suite.keyLength);
      // The decipher's output is the data key itself, returned as is (a fresh buffer of exactly the
      // key length: GCM's final() adds no bytes), so no copy of it is left behind. When the tag
      // fails, that output is still the data key whenever only the AAD (the context) differs:
      // it is wiped before trying the next EDK.
      let key: Buffer | undefined;
      try {
        const decipher = createDecipheriv(this.#cipher, this.#key, iv, { authTagLength: TAG_BYTES });
        decipher.setAAD(aad);
        decipher.setAuthTag(tag);
        key = decipher.update(ct);
        decipher.final();
        return key;
      } catch {
        // Authentication failed: another key under the same name, another context, or tampering.
        // Not this one; the spec says keep trying the remaining EDKs.
        key?.fill(0);
        continue;
      }
    }
    return undefined;
  }
}
registerImmediate(RawAesKeyring.prototype);

function isSecretKeyObject(k: unknown): k is KeyObject {
  return (
    k !== null &&
    typeof k === 'object' &&
    (k as KeyObject).type === 'secret' &&
    typeof (k as KeyObject).export === 'function'
  );
}
