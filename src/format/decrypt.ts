import { createDecipheriv, type KeyObject } from 'node:crypto';
import { parsePublicKey } from '../crypto/ecdsa.js';
import { deriveAndCheckCommitment, deriveLegacyKey } from '../crypto/hkdf.js';
import { DecryptionError, MalformedMessageError } from '../errors.js';
import {
  bodyAad,
  gcmAlgorithm,
  IV_LENGTH,
  LABEL_FINAL_FRAME,
  LABEL_FRAME,
  LABEL_SINGLE_BLOCK,
  setAadCounters,
  TAG_LENGTH,
  walkBody,
} from './body.js';
import { PUBLIC_KEY_CONTEXT_KEY } from './context.js';
import { createVerifier, finishVerify, readFooter } from './footer.js';
import { CONTENT_TYPE_NON_FRAMED, type MessageHeader } from './header.js';
import type { Suite } from './suites.js';

/**
 * Decryption (client-apis/decrypt.md): derive the message key from the data key, check the key
 * commitment (v2) before the header tag, check the header tag, then decrypt the body frame by
 * frame and, for signed suites, verify the footer signature. Plaintext is never returned before
 * the tags covering it verified; the buffer API also waits for the signature. This module holds the
 * key derivation and the one-shot path for a whole message; decryptor.ts the incremental one.
 */

/** Only this module can mint a DecryptionKey, so holding one proves the header was verified. */
const MINT = Symbol('DecryptionKey');

/**
 * The per-message key for one parsed header, produced by deriveAndVerifyHeader only after the
 * commitment and the header tag verified. Bound to that header object.
 */
export class DecryptionKey {
  /** The header this key was derived for and verified against. */
  readonly header: MessageHeader;
  /** ECDSA verification key from the context (signed suites only). */
  readonly publicKey: KeyObject | undefined;
  #key: Buffer;

  /** @internal use deriveAndVerifyHeader */
  constructor(mint: symbol, header: MessageHeader, key: Buffer, publicKey: KeyObject | undefined) {
    if (mint !== MINT) throw new TypeError('DecryptionKey is created by deriveAndVerifyHeader');
    this.header = header;
    this.#key = key;
    this.publicKey = publicKey;
  }

  get suite(): Suite {
    return this.header.suite;
  }

  /** @internal the derived AES key; secret. */
  get bytes(): Buffer {
    return this.#key;
  }

  /** Zeroes the derived key; the object is unusable afterwards. */
  destroy(): void {
    this.#key.fill(0);
  }
}

/**
 * Derives the message key from the plaintext data key and authenticates the header.
 * Throws CommitmentMismatchError when a v2 header's commitment does not match the data key,
 * DecryptionError when the header tag does not verify, MalformedMessageError when a signed
 * message's context lacks a valid public key, RangeError for a data key of the wrong length.
 */
export function deriveAndVerifyHeader(header: MessageHeader, dataKey: Uint8Array): DecryptionKey {
  const suite = header.suite;
  if (!(dataKey instanceof Uint8Array) || dataKey.length !== suite.keyLength) {
    throw new RangeError(`dataKey must be a ${suite.keyLength}-byte Uint8Array for suite 0x${suite.id.toString(16).padStart(4, '0')}`);
  }
  const key =
    header.version === 2
      ? deriveAndCheckCommitment(suite, dataKey, header.messageId, header.commitment!)
      : deriveLegacyKey(suite, dataKey, header.messageId);
  try {
    const d = createDecipheriv(gcmAlgorithm(suite.keyLength), key, header.headerIv);
    d.setAuthTag(header.authTag);
    d.setAAD(header.authenticated);
    d.final();
  } catch {
    key.fill(0);
    throw new DecryptionError();
  }
  let publicKey: KeyObject | undefined;
  if (suite.signatureCurve !== undefined) {
    try {
      // The context is authenticated now, so a bad key here is a bad writer, not a forgery.
      publicKey = parsePublicKey(suite, header.context[PUBLIC_KEY_CONTEXT_KEY]);
    } catch (e) {
      key.fill(0);
      throw e;
    }
  }
  return new DecryptionKey(MINT, header, key, publicKey);
}

/** An empty buffer, shared (never written to). */
export const EMPTY = Buffer.alloc(0);

export function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

export function checkKey(header: MessageHeader, key: DecryptionKey): void {
  if (!(key instanceof DecryptionKey) || key.header !== header) {
    throw new TypeError('key must be the DecryptionKey returned by deriveAndVerifyHeader for this header');
  }
}

/**
 * Decrypts the body of a complete message (`message` starts with the header that was parsed
 * into `header`). Validates the whole structure first (consecutive sequence numbers, final
 * frame, lengths, footer, no trailing bytes: MalformedMessageError), then verifies the
 * signature and every frame tag (DecryptionError) before returning any plaintext.
 */
export function decryptBody(header: MessageHeader, key: DecryptionKey, message: Uint8Array): Buffer {
  checkKey(header, key);
  const msg = asBuffer(message);
  if (msg.length < header.length) throw new MalformedMessageError('message is truncated');
  const suite = header.suite;

  // Pass 1: structure only, no cryptography, nothing allocated from lengths in the message.
  let plaintextLength = 0;
  let parts = 0;
  const bodyEnd = walkBody(msg, header.length, header.contentType, header.frameLength, (part) => {
    plaintextLength += part.contentLength;
    parts++;
  });
  let end = bodyEnd;
  let signature: Buffer | undefined;
  if (suite.signatureCurve !== undefined) ({ signature, end } = readFooter(msg, bodyEnd));
  if (end !== msg.length) throw new MalformedMessageError('unexpected bytes after the end of the message');

  if (signature !== undefined) {
    // message-footer.md: the signature covers the serialized header and body. The header bytes
    // come from the parsed copy, which is what the header tag authenticated.
    const verifier = createVerifier(suite);
    verifier.update(header.bytes);
    verifier.update(msg.subarray(header.length, bodyEnd));
    finishVerify(verifier, key.publicKey!, signature);
  }

  // Pass 2: decrypt into one exactly-sized buffer; zeroed if any tag fails. A single-part body
  // (the common small message) returns the decipher output itself instead of copying it.
  let out = parts === 1 ? EMPTY : Buffer.allocUnsafe(plaintextLength);
  const algorithm = gcmAlgorithm(suite.keyLength);
  const k = key.bytes;
  const nonFramed = header.contentType === CONTENT_TYPE_NON_FRAMED;
  let regularAad: Buffer | undefined;
  let w = 0;
  try {
    walkBody(msg, header.length, header.contentType, header.frameLength, (part) => {
      let aad: Buffer;
      if (nonFramed) aad = bodyAad(header.messageId, LABEL_SINGLE_BLOCK, 1, part.contentLength);
      else if (part.final) aad = bodyAad(header.messageId, LABEL_FINAL_FRAME, part.sequenceNumber, part.contentLength);
      else {
        aad = regularAad ??= bodyAad(header.messageId, LABEL_FRAME, 1, part.contentLength);
        setAadCounters(aad, part.sequenceNumber, part.contentLength);
      }
      const d = createDecipheriv(algorithm, k, msg.subarray(part.ivOffset, part.ivOffset + IV_LENGTH));
      d.setAuthTag(msg.subarray(part.tagOffset, part.tagOffset + TAG_LENGTH));
      d.setAAD(aad);
      const pt = d.update(msg.subarray(part.contentOffset, part.tagOffset));
      if (parts === 1) out = pt;
      else {
        out.set(pt, w);
        w += pt.length;
      }
      d.final();
    });
  } catch {
    out.fill(0);
    throw new DecryptionError();
  }
  return out;
}
