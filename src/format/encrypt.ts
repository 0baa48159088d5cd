import { createCipheriv, sign, type CipherGCM, type CipherGCMTypes, type KeyObject, type Sign } from 'node:crypto';
import { keyCurveMatches, publicKeyStringFor } from '../crypto/ecdsa.js';
import { deriveCommittedKey } from '../crypto/hkdf.js';
import { randomFillPooled } from '../crypto/random.js';
import { LimitExceededError, StreamError } from '../errors.js';
import { PUBLIC_KEY_CONTEXT_KEY } from './context.js';
import {
  bodyAad,
  FINAL_FRAME_HEADER_LENGTH,
  FRAME_HEADER_LENGTH,
  frameCount,
  framedBodyLength,
  gcmAlgorithm,
  IV_LENGTH,
  LABEL_FINAL_FRAME,
  LABEL_FRAME,
  MAX_FRAME_LENGTH,
  MAX_FRAMES,
  SEQUENCE_NUMBER_END,
  setAadCounters,
  TAG_LENGTH,
  writeFrameIv,
} from './body.js';
import { createSigner, maxSignatureLength, serializeFooter, writeFooter } from './footer.js';
import { serializeHeaderTemplate, type HeaderTemplate } from './header.js';
import type { EncryptionMaterials } from './materials.js';
import type { Suite } from './suites.js';

/**
 * Encryption: message format v2, framed (the only form the ESDK writes, client-apis/encrypt.md).
 *
 * Work that does not depend on the message id is done once per set of materials in
 * prepareEncryption; per message only the message id (pooled randomness), one HKDF extract, two
 * single-block expands, the header tag and one AES-GCM operation per frame remain.
 */

const MESSAGE_ID_LENGTH = 32;
const ZERO_IV = Buffer.alloc(IV_LENGTH);

/** Everything about a message that does not depend on its message id. Holds no key bytes itself. */
export interface PreparedEncryption {
  readonly suite: Suite;
  readonly frameLength: number;
  /** The materials this was prepared from (the data key is passed separately to each encrypt). */
  readonly materials: EncryptionMaterials;
  readonly template: HeaderTemplate;
  readonly algorithm: CipherGCMTypes;
  readonly signingKey: KeyObject | undefined;
  /** Upper bound of the footer length (0 for unsigned suites). */
  readonly maxFooterLength: number;
}

/**
 * Validates materials and serializes everything independent of the message id.
 * `frameLength` is the plaintext bytes per regular frame: an integer from 1 to 2^32 - 1, the
 * range the ESDK accepts (`0 < frameLength <= Maximum.FRAME_SIZE`). `lifetime`: 'message' only
 * when the result is used for one message and dropped (serializeHeaderTemplate).
 */
export function prepareEncryption(
  m: EncryptionMaterials,
  frameLength: number,
  lifetime: 'long' | 'message' = 'long',
): PreparedEncryption {
  if (m === null || typeof m !== 'object') throw new TypeError('materials must be an object');
  const { suite } = m;
  if (suite === undefined || suite === null || !suite.committing) {
    throw new RangeError('materials.suite must be a committing suite (0x0478 or 0x0578)');
  }
  if (!Number.isInteger(frameLength) || frameLength < 1 || frameLength > MAX_FRAME_LENGTH) {
    throw new RangeError(`frameLength must be an integer from 1 to ${MAX_FRAME_LENGTH} (bytes)`);
  }
  checkDataKey(suite, m.dataKey, 'materials.dataKey');
  const context = m.context;
  if (context === null || typeof context !== 'object') throw new TypeError('materials.context must be an object');
  const hasPublicKey = Object.prototype.hasOwnProperty.call(context, PUBLIC_KEY_CONTEXT_KEY);
  let signingKey: KeyObject | undefined;
  if (suite.signatureCurve !== undefined) {
    signingKey = m.signingKey;
    if (signingKey === undefined || signingKey.type !== 'private' || !keyCurveMatches(signingKey, suite)) {
      throw new TypeError(`materials.signingKey must be a ${suite.signatureCurve} ECDSA private KeyObject for this suite`);
    }
    // A message whose context names another public key could never be verified; refuse to write it.
    if (!hasPublicKey || context[PUBLIC_KEY_CONTEXT_KEY] !== publicKeyStringFor(signingKey)) {
      throw new TypeError(`materials.context["${PUBLIC_KEY_CONTEXT_KEY}"] must hold the signing key's public key`);
    }
  } else {
    // framework/structures.md, "Signing Key": materials whose suite has no signature algorithm
    // carry no signing key (and so no public key in their context).
    if (m.signingKey !== undefined) throw new TypeError('materials.signingKey must be absent for an unsigned suite');
    if (hasPublicKey) throw new TypeError(`materials.context must not contain "${PUBLIC_KEY_CONTEXT_KEY}" for an unsigned suite`);
  }
  const template = serializeHeaderTemplate(suite, context, m.encryptedDataKeys, frameLength, lifetime);
  return Object.freeze({
    suite,
    frameLength,
    materials: m,
    template,
    algorithm: gcmAlgorithm(suite.keyLength),
    signingKey,
    maxFooterLength: signingKey === undefined ? 0 : 2 + maxSignatureLength(suite),
  });
}

function checkDataKey(suite: Suite, dataKey: unknown, name: string): asserts dataKey is Uint8Array {
  if (!(dataKey instanceof Uint8Array) || dataKey.length !== suite.keyLength) {
    throw new RangeError(`${name} must be a ${suite.keyLength}-byte Uint8Array`);
  }
}

function checkFrames(plaintextLength: number, frameLength: number): void {
  if (frameCount(plaintextLength, frameLength) > MAX_FRAMES) {
    throw new LimitExceededError('plaintext needs more than 2^32 - 1 frames at this frame length');
  }
}

/**
 * Writes the header into `out` (which must start with room for it): template, fresh message id,
 * commitment and header tag. Returns the derived per-message key; the caller zeroes it.
 */
function writeHeader(p: PreparedEncryption, dataKey: Uint8Array, out: Buffer): { key: Buffer; messageId: Buffer } {
  const t = p.template;
  out.set(t.bytes, 0);
  randomFillPooled(out, t.messageIdOffset, MESSAGE_ID_LENGTH);
  const messageId = out.subarray(t.messageIdOffset, t.messageIdOffset + MESSAGE_ID_LENGTH);
  const { key, commitment } = deriveCommittedKey(p.suite, dataKey, messageId);
  try {
    out.set(commitment, t.commitmentOffset);
    // message-header.md "Header Authentication" (v2): AES-GCM, IV of zeros, AAD = header body,
    // empty plaintext; only the tag is serialized.
    const c = createCipheriv(p.algorithm, key, ZERO_IV);
    c.setAAD(out.subarray(0, t.authenticatedLength));
    c.final();
    out.set(c.getAuthTag(), t.authenticatedLength);
  } catch (err) {
    key.fill(0); // the caller never sees this key, so it could not wipe it
    throw err;
  }
  return { key, messageId };
}

/**
 * Writes a frame header into `out` at `at` (end marker and content length for the final frame,
 * sequence number, IV) and returns a cipher for the frame, its AAD set, and the offset past the
 * header. `aad` is a body AAD buffer with the right label; its counters are rewritten here.
 */
function startFrame(
  out: Buffer,
  at: number,
  algorithm: CipherGCMTypes,
  key: Buffer,
  aad: Buffer,
  sequenceNumber: number,
  final: boolean,
  contentLength: number,
): { cipher: CipherGCM; end: number } {
  let o = at;
  if (final) o = out.writeUInt32BE(SEQUENCE_NUMBER_END, o);
  o = out.writeUInt32BE(sequenceNumber, o);
  writeFrameIv(out, o, sequenceNumber);
  const cipher = createCipheriv(algorithm, key, out.subarray(o, o + IV_LENGTH));
  o += IV_LENGTH;
  if (final) o = out.writeUInt32BE(contentLength, o);
  setAadCounters(aad, sequenceNumber, contentLength);
  cipher.setAAD(aad);
  return { cipher, end: o };
}

/** Encrypts one frame, `content`, into `out` at `at` and returns the offset past it. */
function sealFrame(
  out: Buffer,
  at: number,
  algorithm: CipherGCMTypes,
  key: Buffer,
  aad: Buffer,
  sequenceNumber: number,
  final: boolean,
  content: Uint8Array,
): number {
  const { cipher, end } = startFrame(out, at, algorithm, key, aad, sequenceNumber, final, content.length);
  const ct = cipher.update(content);
  out.set(ct, end);
  const o = end + ct.length;
  cipher.final();
  out.set(cipher.getAuthTag(), o);
  return o + TAG_LENGTH;
}

/**
 * Encrypts a whole plaintext into one message buffer, allocated once at its final size (up to the
 * signature's DER length variation, which is trimmed with a view). Regular frames carry
 * `frameLength` bytes; the final frame the rest, and it is empty when the plaintext length is
 * a multiple of the frame length, exactly as the ESDK writes it.
 */
export function encryptBuffer(p: PreparedEncryption, dataKey: Buffer, plaintext: Uint8Array): Buffer {
  checkDataKey(p.suite, dataKey, 'dataKey');
  if (!(plaintext instanceof Uint8Array)) throw new TypeError('plaintext must be a Uint8Array');
  const n = plaintext.length;
  const F = p.frameLength;
  checkFrames(n, F);
  const headerLength = p.template.length;
  const bodyEnd = headerLength + framedBodyLength(n, F);
  const out = Buffer.allocUnsafe(bodyEnd + p.maxFooterLength);
  const { key, messageId } = writeHeader(p, dataKey, out);
  try {
    const full = Math.floor(n / F);
    let o = headerLength;
    let pos = 0;
    if (full > 0) {
      const aad = bodyAad(messageId, LABEL_FRAME, 1, F);
      for (let seq = 1; seq <= full; seq++) {
        o = sealFrame(out, o, p.algorithm, key, aad, seq, false, plaintext.subarray(pos, pos + F));
        pos += F;
      }
    }
    const aad = bodyAad(messageId, LABEL_FINAL_FRAME, full + 1, n - pos);
    // A message of one frame (the common small message) seals the plaintext itself, no view of it.
    o = sealFrame(out, o, p.algorithm, key, aad, full + 1, true, pos === 0 ? plaintext : plaintext.subarray(pos));
    if (p.signingKey === undefined) return out;
    // message-footer.md: the signature covers the header and the body.
    const signature = sign(p.suite.signatureHash!, out.subarray(0, bodyEnd), { key: p.signingKey, dsaEncoding: 'der' });
    const end = writeFooter(out, bodyEnd, signature);
    out.fill(0, end); // the few unused bytes reserved for a longer DER signature
    return out.subarray(0, end);
  } finally {
    key.fill(0);
  }
}

/**
 * Incremental encryption with bounded memory: at most one frame of plaintext is buffered
 * (copied, never retained by reference) and every complete frame is returned as soon as it fills.
 *
 *   const enc = new MessageEncryptor(prepared, dataKey);
 *   out(enc.header());
 *   for (const chunk of input) out(...enc.update(chunk));
 *   out(...enc.final());          // final frame (+ footer for signed suites)
 *
 * The output is byte-for-byte the layout encryptBuffer produces for the same total plaintext.
 */
export class MessageEncryptor {
  readonly #p: PreparedEncryption;
  readonly #header: Buffer;
  readonly #messageId: Buffer;
  #key: Buffer;
  #aad: Buffer | undefined;
  #sequenceNumber = 1;
  #pending: Buffer | undefined;
  #pendingLength = 0;
  #signer: Sign | undefined;
  #finished = false;

  constructor(p: PreparedEncryption, dataKey: Buffer) {
    checkDataKey(p.suite, dataKey, 'dataKey');
    this.#p = p;
    this.#header = Buffer.allocUnsafe(p.template.length);
    const { key, messageId } = writeHeader(p, dataKey, this.#header);
    this.#key = key;
    this.#messageId = messageId;
    if (p.signingKey !== undefined) {
      try {
        this.#signer = createSigner(p.suite);
        this.#signer.update(this.#header);
      } catch (err) {
        key.fill(0); // a constructor that throws leaves no object whose destroy() would wipe it
        throw err;
      }
    }
  }

  /** The serialized header (emit it first). */
  header(): Buffer {
    return this.#header;
  }

  /** This message's 32-byte id. */
  get messageId(): Buffer {
    return this.#messageId;
  }

  /** Adds plaintext; returns the output of the frames completed by it, in pieces (possibly none). */
  update(chunk: Uint8Array): Buffer[] {
    if (this.#finished) throw new StreamError('update() after final()');
    if (!(chunk instanceof Uint8Array)) throw new TypeError('chunk must be a Uint8Array');
    const F = this.#p.frameLength;
    const frames: Buffer[] = [];
    let pos = 0;
    if (this.#pendingLength > 0) {
      const need = F - this.#pendingLength;
      if (chunk.length < need) {
        this.#append(chunk);
        return frames;
      }
      frames.push(...this.#frame(false, [this.#pending!.subarray(0, this.#pendingLength), chunk.subarray(0, need)], F));
      this.#pendingLength = 0;
      pos = need;
    }
    while (chunk.length - pos >= F) {
      frames.push(...this.#frame(false, [chunk.subarray(pos, pos + F)], F));
      pos += F;
    }
    if (pos < chunk.length) this.#append(chunk.subarray(pos));
    return frames;
  }

  /** Emits the final frame (possibly empty, in pieces) and, for signed suites, the footer. */
  final(): Buffer[] {
    if (this.#finished) throw new StreamError('final() called twice');
    const n = this.#pendingLength;
    const parts = n > 0 ? [this.#pending!.subarray(0, n)] : [];
    const out = this.#frame(true, parts, n);
    if (this.#signer !== undefined) {
      const signature = this.#signer.sign({ key: this.#p.signingKey!, dsaEncoding: 'der' });
      out.push(serializeFooter(signature));
    }
    this.#destroy();
    return out;
  }

  /** Abandons the message and zeroes the key and buffered plaintext. */
  destroy(): void {
    this.#destroy();
  }

  #destroy(): void {
    this.#finished = true;
    this.#key.fill(0);
    this.#pending?.fill(0);
    this.#pending = undefined;
    this.#pendingLength = 0;
    this.#signer = undefined;
  }

  #append(src: Uint8Array): void {
    const need = this.#pendingLength + src.length;
    let buf = this.#pending;
    if (buf === undefined || buf.length < need) {
      // Grow geometrically up to one frame, so tiny writes do not cost a copy each.
      const cap = Math.min(this.#p.frameLength, Math.max(need, buf === undefined ? 16 * 1024 : buf.length * 2));
      const next = Buffer.allocUnsafe(cap);
      if (buf !== undefined) {
        next.set(buf.subarray(0, this.#pendingLength), 0);
        buf.fill(0);
      }
      this.#pending = buf = next;
    }
    buf.set(src, this.#pendingLength);
    this.#pendingLength = need;
  }

  /**
   * Seals one frame and returns it as pieces, in order: the frame header (sequence number, IV and,
   * for the final frame, its end marker and content length), the ciphertext as the cipher produced
   * it, and the tag. The ciphertext is not copied into a frame-sized buffer: for large frames that
   * copy (and the fresh frame-sized allocation behind it) cost more than the cipher.
   */
  #frame(final: boolean, parts: readonly Uint8Array[], contentLength: number): Buffer[] {
    const seq = this.#sequenceNumber;
    // The final frame must still get a sequence number <= 2^32 - 1 (message-body.md).
    if (!final && seq >= MAX_FRAMES) throw new LimitExceededError('message exceeds 2^32 - 1 frames');
    const head = Buffer.allocUnsafe(final ? FINAL_FRAME_HEADER_LENGTH : FRAME_HEADER_LENGTH);
    const aad = final
      ? bodyAad(this.#messageId, LABEL_FINAL_FRAME, seq, contentLength)
      : (this.#aad ??= bodyAad(this.#messageId, LABEL_FRAME, seq, contentLength));
    const { cipher } = startFrame(head, 0, this.#p.algorithm, this.#key, aad, seq, final, contentLength);
    const out = [head];
    for (const part of parts) {
      const ct = cipher.update(part);
      if (ct.length > 0) out.push(ct);
    }
    cipher.final();
    out.push(cipher.getAuthTag());
    this.#sequenceNumber = seq + 1;
    if (this.#signer !== undefined) for (const b of out) this.#signer.update(b);
    return out;
  }
}
