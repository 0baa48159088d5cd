/**
 * Errors raised by kms-envelope. Every failure kind has its own class and a stable `code`
 * that callers can switch on; messages never contain key bytes, plaintext or ciphertext.
 *
 * Decryption failures are deliberately uniform: a wrong key, a flipped bit in a frame, a bad
 * header tag or a bad signature all surface as `DecryptionError` with the same message, so an
 * attacker probing with modified messages learns nothing about which check failed.
 */

export type EnvelopeErrorCode =
  | 'ERR_DECRYPTION_FAILED'
  | 'ERR_MALFORMED_MESSAGE'
  | 'ERR_COMMITMENT_MISMATCH'
  | 'ERR_COMMITMENT_POLICY'
  | 'ERR_SIGNATURE_POLICY'
  | 'ERR_CONTEXT_MISMATCH'
  | 'ERR_NO_DECRYPTABLE_KEY'
  | 'ERR_KMS'
  | 'ERR_KEYRING'
  | 'ERR_KEYRING_TIMEOUT'
  | 'ERR_LIMIT_EXCEEDED'
  | 'ERR_STREAM'
  | 'ERR_BRANCH_KEY_STORE';

/**
 * The `name` of each class below, spelled out: a minifying bundler renames classes, and
 * `error.name` must stay what the docs and logs say. A caller's own subclass keeps its class name.
 */
const NAMES = new Map<abstract new (...args: never[]) => EnvelopeError, string>();

export class EnvelopeError extends Error {
  readonly code: EnvelopeErrorCode;
  constructor(code: EnvelopeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = NAMES.get(new.target) ?? new.target.name;
  }
}

/** Authentication failed somewhere in the message (header tag, frame tag, signature, wrong key). */
export class DecryptionError extends EnvelopeError {
  static readonly MESSAGE = 'unable to decrypt message';
  constructor() {
    super('ERR_DECRYPTION_FAILED', DecryptionError.MESSAGE);
  }
}

/** The bytes are not a message this library can parse (bad version, unknown suite, bad lengths, truncated). */
export class MalformedMessageError extends EnvelopeError {
  constructor(message = 'malformed message') {
    super('ERR_MALFORMED_MESSAGE', message);
  }
}

/** The key commitment in a v2 header does not match the data key (ESDK spec: "Key Commitment"). */
export class CommitmentMismatchError extends EnvelopeError {
  constructor() {
    super('ERR_COMMITMENT_MISMATCH', 'key commitment does not match the data key');
  }
}

/** The commitment policy forbids this suite (e.g. a v1, non-committing message under REQUIRE_ENCRYPT_REQUIRE_DECRYPT). */
export class CommitmentPolicyError extends EnvelopeError {
  constructor(message: string) {
    super('ERR_COMMITMENT_POLICY', message);
  }
}

/**
 * The caller's signature policy forbids this suite: a signed message decrypted with
 * `signaturePolicy: 'ALLOW_ENCRYPT_FORBID_DECRYPT'` (client-apis/decrypt.md, "Behavior").
 */
export class SignaturePolicyError extends EnvelopeError {
  constructor(message: string) {
    super('ERR_SIGNATURE_POLICY', message);
  }
}

/** A required encryption context pair is missing or has another value. Names the key, never the values. */
export class ContextMismatchError extends EnvelopeError {
  constructor(message = 'encryption context does not match') {
    super('ERR_CONTEXT_MISMATCH', message);
  }
}

/** No keyring could decrypt any of the message's encrypted data keys. */
export class NoDecryptableKeyError extends EnvelopeError {
  constructor(message = 'no encrypted data key could be decrypted', options?: { cause?: unknown }) {
    super('ERR_NO_DECRYPTABLE_KEY', message, options);
  }
}

/** KMS refused or failed a request. `kmsErrorName` carries the AWS error name (e.g. `AccessDeniedException`). */
export class KmsError extends EnvelopeError {
  readonly kmsErrorName: string | undefined;
  constructor(message: string, kmsErrorName?: string, options?: { cause?: unknown }) {
    super('ERR_KMS', message, options);
    this.kmsErrorName = kmsErrorName;
  }
}

/** A keyring returned something unusable (wrong data key length, no encrypted data key, ...). */
export class KeyringError extends EnvelopeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_KEYRING', message, options);
  }
}

/**
 * A keyring call did not settle within the Envelope's `keyringTimeoutMs`. Every caller waiting on
 * that call gets this error; the next caller starts a fresh call. The timed-out call is abandoned:
 * if it answers later, its data key is zeroed and never used.
 */
export class KeyringTimeoutError extends EnvelopeError {
  /** The limit that was reached, in milliseconds. */
  readonly timeoutMs: number;
  constructor(timeoutMs: number) {
    super('ERR_KEYRING_TIMEOUT', `keyring call did not settle within ${timeoutMs} ms (keyringTimeoutMs)`);
    this.timeoutMs = timeoutMs;
  }
}

/**
 * A configured limit was exceeded (encrypted data keys, header size, frame length, body size, ...).
 * `option` names the Envelope option that sets the limit, when one does (e.g. `maxFrameLength`),
 * so a caller (the CLI) can say which of its own settings raises it.
 */
export class LimitExceededError extends EnvelopeError {
  readonly option: string | undefined;
  constructor(message: string, option?: string) {
    super('ERR_LIMIT_EXCEEDED', message);
    this.option = option;
  }
}

/** A stream ended early, was used after an error, or was written in the wrong state. */
export class StreamError extends EnvelopeError {
  constructor(message: string) {
    super('ERR_STREAM', message);
  }
}

/**
 * Why a branch key store operation failed (framework/branch-key-store.md):
 * - `NOT_FOUND`: no item with that branch key id (and version) in the storage;
 * - `MALFORMED_ITEM`: a stored item is not in the specification's record format (an attribute
 *   missing, of another type, or outside the format; or not the item asked for);
 * - `KMS_ARN_MISMATCH`: the item's `kms-arn` is not compatible with the store's KMS configuration;
 * - `BRANCH_KEY_EXISTS`: CreateKey for an id that exists;
 * - `ACTIVE_CHANGED`: VersionKey lost a race (the ACTIVE item changed since it was read): retry;
 * - `UNSUPPORTED`: CreateKey/VersionKey with a discovery configuration;
 * - `TRANSACTIONS_UNSUPPORTED`: the storage server does not implement the atomic write the
 *   specification requires (DynamoDB TransactWriteItems), e.g. a DynamoDB emulator without them;
 * - `TABLE_SCHEMA`: the DynamoDB table exists with another key schema than the specification's;
 * - `REQUEST_FAILED`: the storage service refused or failed the request (throttling, missing
 *   table, no network, a transaction cancelled for a reason other than its conditions, ...);
 * - `FAILED`: anything else (see `cause`).
 * KMS refusals stay KmsError (ERR_KMS).
 */
export type BranchKeyStoreFailure =
  | 'NOT_FOUND'
  | 'MALFORMED_ITEM'
  | 'KMS_ARN_MISMATCH'
  | 'BRANCH_KEY_EXISTS'
  | 'ACTIVE_CHANGED'
  | 'UNSUPPORTED'
  | 'TRANSACTIONS_UNSUPPORTED'
  | 'TABLE_SCHEMA'
  | 'REQUEST_FAILED'
  | 'FAILED';

/**
 * A branch key store operation or its storage failed; `reason` says why, `awsErrorName` carries
 * the AWS error name when a storage service answered with one (e.g. `ResourceNotFoundException`).
 * Messages name ids, attributes and operations, never key material or item contents.
 */
export class BranchKeyStoreError extends EnvelopeError {
  readonly reason: BranchKeyStoreFailure;
  readonly awsErrorName: string | undefined;
  constructor(
    reason: BranchKeyStoreFailure = 'FAILED',
    message = 'branch key store operation failed',
    options?: { cause?: unknown; awsErrorName?: string },
  ) {
    super('ERR_BRANCH_KEY_STORE', message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.reason = reason;
    this.awsErrorName = options?.awsErrorName;
  }
}

for (const [cls, name] of [
  [EnvelopeError, 'EnvelopeError'],
  [DecryptionError, 'DecryptionError'],
  [MalformedMessageError, 'MalformedMessageError'],
  [CommitmentMismatchError, 'CommitmentMismatchError'],
  [CommitmentPolicyError, 'CommitmentPolicyError'],
  [SignaturePolicyError, 'SignaturePolicyError'],
  [ContextMismatchError, 'ContextMismatchError'],
  [NoDecryptableKeyError, 'NoDecryptableKeyError'],
  [KmsError, 'KmsError'],
  [KeyringError, 'KeyringError'],
  [KeyringTimeoutError, 'KeyringTimeoutError'],
  [LimitExceededError, 'LimitExceededError'],
  [StreamError, 'StreamError'],
  [BranchKeyStoreError, 'BranchKeyStoreError'],
] as const) {
  NAMES.set(cls, name);
}
