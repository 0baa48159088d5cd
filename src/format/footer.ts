import { createSign, createVerify, type KeyObject, type Sign, type Verify } from 'node:crypto';
import { DecryptionError, MalformedMessageError } from '../errors.js';
import type { Suite } from './suites.js';

/**
 * Message footer (data-format/message-footer.md): present only for signed suites.
 *   signature length u16 | signature (DER-encoded ECDSA over header + body)
 */

/** Longest DER ECDSA signature: SEQUENCE of two INTEGERs of at most coordinate length + 1 bytes. */
export function maxSignatureLength(suite: Suite): number {
  if (suite.signatureCurve === undefined) return 0;
  const n = suite.signatureCurve === 'P-256' ? 32 : 48;
  return 2 + 2 * (2 + n + 1);
}

/** Footer bytes for a finished signer, written into `out` at `at`; returns the end offset. */
export function writeFooter(out: Buffer, at: number, signature: Buffer): number {
  if (signature.length > 0xffff) throw new RangeError('signature too long');
  out.writeUInt16BE(signature.length, at);
  out.set(signature, at + 2);
  return at + 2 + signature.length;
}

export function serializeFooter(signature: Buffer): Buffer {
  const out = Buffer.allocUnsafe(2 + signature.length);
  writeFooter(out, 0, signature);
  return out;
}

/** Reads the footer at `offset` of a complete message; returns the signature and the offset past it. */
export function readFooter(message: Buffer, offset: number): { signature: Buffer; end: number } {
  if (offset + 2 > message.length) throw new MalformedMessageError('message is truncated');
  const len = message.readUInt16BE(offset);
  const end = offset + 2 + len;
  if (end > message.length) throw new MalformedMessageError('message is truncated');
  return { signature: message.subarray(offset + 2, end), end };
}

export function createSigner(suite: Suite): Sign {
  if (suite.signatureHash === undefined) throw new RangeError('suite does not use signatures');
  return createSign(suite.signatureHash);
}

export function createVerifier(suite: Suite): Verify {
  if (suite.signatureHash === undefined) throw new RangeError('suite does not use signatures');
  return createVerify(suite.signatureHash);
}

/**
 * Finishes a verifier: a bad or malformed signature is a DecryptionError, the same uniform error
 * as a failed tag (errors.ts: decryption failures must not say which check failed).
 */
export function finishVerify(verifier: Verify, publicKey: KeyObject, signature: Uint8Array): void {
  let ok = false;
  try {
    ok = verifier.verify({ key: publicKey, dsaEncoding: 'der' }, signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new DecryptionError();
}
