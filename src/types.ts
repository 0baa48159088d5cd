/** Encryption context: non-secret, authenticated key/value pairs bound to a message. */
export type EncryptionContext = Record<string, string>;

/** One encrypted copy of a message's data key, as stored in the message header. */
export interface EncryptedDataKey {
  /** Key provider id, e.g. `aws-kms` or a raw keyring's namespace. */
  providerId: string;
  /** Key provider info, e.g. the KMS key ARN, or a raw keyring's name + IV. */
  providerInfo: Uint8Array;
  /** The wrapped data key. */
  ciphertext: Uint8Array;
}

export interface KeyringEncryptInput {
  suiteId: number;
  context: Readonly<EncryptionContext>;
  /** Present when an earlier keyring (e.g. a multi-keyring generator) already made the data key. */
  dataKey?: Uint8Array;
}

export interface KeyringEncryptOutput {
  dataKey: Uint8Array;
  encryptedDataKeys: EncryptedDataKey[];
}

export interface KeyringDecryptInput {
  suiteId: number;
  context: Readonly<EncryptionContext>;
  encryptedDataKeys: readonly EncryptedDataKey[];
}

/**
 * A keyring generates, wraps and unwraps data keys. Implement it to plug in any key source.
 * `onDecrypt` returns `undefined` when none of the encrypted data keys belongs to this keyring.
 *
 * Ownership of the data key: the Envelope takes ownership of the data key buffer a keyring returns
 * (from `onEncrypt` or `onDecrypt`): it copies the key into memory of its own (never Node's shared
 * Buffer pool) and zeroes the returned buffer at once; its copy is zeroed when done with it, as the
 * ESDK's materials do: at once when the cache is off, when the key leaves the cache otherwise
 * (eviction, expiry, usage limit, `clearCache()`). Return a fresh buffer, never one you keep or hand
 * out twice. An all-zero key is refused (ERR_KEYRING), so a keyring that hands out a buffer it
 * keeps fails loudly on its second use instead of encrypting under zeros. The keyrings in this
 * package all return fresh buffers.
 *
 * Every call is bounded by the Envelope's `keyringTimeoutMs`; a call that answers after it has its
 * data key zeroed and unused.
 *
 * Failures: an EnvelopeError a keyring throws (KmsError, NoDecryptableKeyError, KeyringError, ...)
 * reaches the Envelope's caller as it is. Anything else (a plain Error, a string, a non-Error
 * rejection, a synchronous throw) reaches it as KeyringError (ERR_KEYRING) with the original as
 * `cause`; the original's message is not copied into the KeyringError's, which may be logged.
 */
export interface Keyring {
  /**
   * Returns the data key (generated here when `input.dataKey` is absent; otherwise that same key,
   * which belongs to the caller) and its encrypted copies. The returned `dataKey` becomes the
   * caller's: see the interface notes.
   */
  onEncrypt(input: KeyringEncryptInput): Promise<KeyringEncryptOutput>;
  /** The unwrapped data key, a fresh buffer that becomes the caller's, or `undefined` when no EDK is ours. */
  onDecrypt(input: KeyringDecryptInput): Promise<Uint8Array | undefined>;
}

/**
 * The small slice of KMS this library needs. `@aws-sdk/client-kms` clients are adapted to it
 * (src/keyrings/kms-client.ts); the local KMS provides it in-process.
 */
export interface KmsClient {
  generateDataKey(input: {
    keyId: string;
    numberOfBytes: number;
    encryptionContext?: EncryptionContext;
    grantTokens?: string[];
  }): Promise<{ keyId: string; plaintext: Uint8Array; ciphertextBlob: Uint8Array }>;
  encrypt(input: {
    keyId: string;
    plaintext: Uint8Array;
    encryptionContext?: EncryptionContext;
    grantTokens?: string[];
  }): Promise<{ keyId: string; ciphertextBlob: Uint8Array }>;
  decrypt(input: {
    keyId?: string;
    ciphertextBlob: Uint8Array;
    encryptionContext?: EncryptionContext;
    grantTokens?: string[];
  }): Promise<{ keyId: string; plaintext: Uint8Array }>;
  /**
   * Optional: only the branch key store (hierarchical keyring) needs it, to create branch keys
   * (framework/branch-key-store.md, "Wrapped Branch Key Creation").
   */
  generateDataKeyWithoutPlaintext?(input: {
    keyId: string;
    numberOfBytes: number;
    encryptionContext?: EncryptionContext;
    grantTokens?: string[];
  }): Promise<{ keyId: string; ciphertextBlob: Uint8Array }>;
  /**
   * Optional: only the branch key store needs it, to make the ACTIVE copy of a branch key and to
   * authenticate the ACTIVE item before VersionKey (framework/branch-key-store.md).
   */
  reEncrypt?(input: {
    ciphertextBlob: Uint8Array;
    sourceKeyId?: string;
    sourceEncryptionContext?: EncryptionContext;
    destinationKeyId: string;
    destinationEncryptionContext?: EncryptionContext;
    grantTokens?: string[];
  }): Promise<{ keyId: string; sourceKeyId: string; ciphertextBlob: Uint8Array }>;
}
