/**
 * Internal entry point of the message-format engine (pure, synchronous): the Envelope, the
 * streams and the tests import from here. Not part of the public package API.
 */
export { SUITES, ENCRYPT_SUITES, DEFAULT_SUITE, suiteFromMessage, suiteFromOption, type Suite } from './suites.js';
export {
  serializeContext,
  parseContext,
  checkEncryptContext,
  checkRequiredContext,
  PUBLIC_KEY_CONTEXT_KEY,
  RESERVED_CONTEXT_PREFIX,
} from './context.js';
export type { EncryptionMaterials } from './materials.js';
export {
  parseHeader,
  parseMessageHeader,
  tryParseHeader,
  serializeHeaderTemplate,
  DEFAULT_MAX_HEADER_BYTES,
  type MessageHeader,
  type ParseLimits,
  type HeaderTemplate,
} from './header.js';
export { framedBodyLength, frameCount, MAX_FRAME_LENGTH, MAX_FRAMES, MAX_NON_FRAMED_CONTENT } from './body.js';
export { prepareEncryption, encryptBuffer, MessageEncryptor, type PreparedEncryption } from './encrypt.js';
export { deriveAndVerifyHeader, decryptBody, DecryptionKey } from './decrypt.js';
export { MessageDecryptor, DEFAULT_MAX_FRAME_LENGTH, DEFAULT_MAX_BODY_BYTES, type DecryptorLimits } from './decryptor.js';
export { generateSigningKey, parsePublicKey, publicKeyStringFor } from '../crypto/ecdsa.js';
export { deriveCommittedKey, deriveLegacyKey } from '../crypto/hkdf.js';
