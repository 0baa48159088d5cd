import type { KeyObject } from 'node:crypto';
import type { EncryptedDataKey, EncryptionContext } from '../types.js';
import type { Suite } from './suites.js';

/**
 * Everything the message format needs to write a message, as produced by the keyrings (and kept
 * in the data-key cache). The format layer never generates or wraps data keys itself.
 */
export interface EncryptionMaterials {
  /** A committing suite (0x0478 or 0x0578); encryption only writes message format v2. */
  suite: Suite;
  /** Plaintext data key, `suite.keyLength` bytes. Only referenced, never copied by prepareEncryption. */
  dataKey: Buffer;
  /** At least one encrypted copy of the data key (message-header.md: the count MUST be > 0). */
  encryptedDataKeys: EncryptedDataKey[];
  /**
   * The full encryption context written to the header. For signed suites it already contains
   * `aws-crypto-public-key` (see generateSigningKey), because keyrings must see it too.
   */
  context: Readonly<EncryptionContext>;
  /** ECDSA private key matching the context's `aws-crypto-public-key` (signed suites only). */
  signingKey?: KeyObject;
}
