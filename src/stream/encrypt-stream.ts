import type { TransformCallback, TransformOptions } from 'node:stream';
import { StreamError } from '../errors.js';
import { MessageEncryptor, type PreparedEncryption } from '../format/encrypt.js';
import { parseHeader } from '../format/header.js';
import { stringPlaintextBytes } from '../format/plaintext.js';
import { PacedTransform, type StepResult } from './paced-transform.js';

export interface EncryptStreamDeps {
  /**
   * Resolves the materials for this message, awaited once, when the first byte arrives (or at the
   * end for an empty input). The stream owns `dataKey` (a private copy): it is zeroed as soon as
   * the per-message key is derived, and in any case when the stream ends, fails or is destroyed.
   */
  materials(): Promise<{ prepared: PreparedEncryption; dataKey: Buffer }>;
  /**
   * The plaintext length the caller declared, in bytes, if any. The data-key cache charged this
   * many bytes to the data key before the first byte was written, so an input that turns out
   * longer fails as soon as it passes the limit (before the excess is encrypted) and a shorter one
   * fails at the end; both with StreamError (ERR_STREAM).
   */
  plaintextLength?: number;
}

/**
 * A Transform from plaintext bytes to one ESDK message (header, frames, footer). String writes are
 * decoded with their encoding (UTF-8 by default); a UTF-8 string that is not well-formed UTF-16
 * fails the stream with a TypeError naming the plaintext.
 */
export type EncryptStream = EncryptTransform;

/** Input bytes handed to the encryptor at a time, at least one frame (see PacedTransform). */
const MIN_PIECE_BYTES = 64 * 1024;

/**
 * Encrypting Transform. Emits `header` (the parsed MessageHeader: context written, suite, EDKs)
 * once, before the header bytes are pushed (client-apis/encrypt.md "Output"). Memory: the header, at most one frame of buffered plaintext inside the
 * MessageEncryptor, and the output of at most two pieces (max(frameLength, 64 KiB) of input each)
 * beyond the readable high-water mark. Frames go out as pieces (frame header, the cipher's own
 * output, tag), never copied into a frame-sized buffer.
 */
export class EncryptTransform extends PacedTransform {
  readonly #deps: EncryptStreamDeps;
  readonly #declared: number | undefined;
  #encryptor: MessageEncryptor | undefined;
  #loading: Promise<MessageEncryptor | undefined> | undefined;
  #pieceLength = MIN_PIECE_BYTES;
  #seen = 0;

  constructor(deps: EncryptStreamDeps, options?: TransformOptions) {
    // Strings reach _transform as written, so an ill-formed one is refused instead of being turned
    // into U+FFFD by the Writable's own Buffer.from (see stringPlaintextBytes).
    super({ ...options, decodeStrings: false });
    if (deps === null || typeof deps !== 'object' || typeof deps.materials !== 'function') {
      throw new TypeError('deps.materials must be a function');
    }
    const declared = deps.plaintextLength;
    if (declared !== undefined && (!Number.isSafeInteger(declared) || declared < 0)) {
      throw new RangeError('plaintextLength must be a non-negative integer number of bytes');
    }
    this.#deps = deps;
    this.#declared = declared;
  }

  override _transform(chunk: Buffer | string, encoding: BufferEncoding, callback: TransformCallback): void {
    if (typeof chunk === 'string') {
      try {
        chunk = stringPlaintextBytes(chunk, 'plaintext (a string written to encryptStream)', encoding);
      } catch (err) {
        callback(err as Error);
        return;
      }
    }
    super._transform(chunk, encoding, callback);
  }

  /** Bytes of plaintext accepted so far. */
  get plaintextBytes(): number {
    return this.#seen;
  }

  protected override pieceLength(): number {
    return this.#pieceLength;
  }

  protected override processPiece(piece: Buffer): StepResult {
    this.#seen += piece.length;
    if (this.#declared !== undefined && this.#seen > this.#declared) {
      throw new StreamError('plaintext is longer than the declared plaintextLength');
    }
    const enc = this.#encryptor;
    if (enc !== undefined) return enc.update(piece);
    // First bytes: fetch materials, then emit the header followed by the first frames. The piece
    // is not retained by reference across the wait: it stays alive in the pending write.
    return this.#load().then((e) => (e === undefined ? [] : [this.#header(e), ...e.update(piece)]));
  }

  protected override finish(): StepResult {
    if (this.#declared !== undefined && this.#seen !== this.#declared) {
      throw new StreamError('plaintext is shorter than the declared plaintextLength');
    }
    const enc = this.#encryptor;
    if (enc !== undefined) return enc.final();
    // Empty input still makes a complete message: header and an empty final frame.
    return this.#load().then((e) => (e === undefined ? [] : [this.#header(e), ...e.final()]));
  }

  protected override release(): void {
    this.#encryptor?.destroy();
  }

  /** The header bytes to push first; `header` listeners get them parsed (only parsed when listened to). */
  #header(e: MessageEncryptor): Buffer {
    const bytes = e.header();
    if (this.listenerCount('header') > 0) {
      this.emit('header', parseHeader(bytes, { maxEncryptedDataKeys: 0xffff, maxHeaderBytes: bytes.length })!);
    }
    return bytes;
  }

  /** Resolves to the encryptor, or undefined when the stream was destroyed while waiting. */
  #load(): Promise<MessageEncryptor | undefined> {
    this.#loading ??= this.#deps.materials().then(({ prepared, dataKey }) => {
      try {
        if (this.released) return undefined; // destroyed while KMS answered: wipe, use nothing
        this.#encryptor = new MessageEncryptor(prepared, dataKey);
        this.#pieceLength = Math.max(MIN_PIECE_BYTES, prepared.frameLength);
        return this.#encryptor;
      } finally {
        // The encryptor derived its own per-message key; this copy is no longer needed.
        if (dataKey instanceof Uint8Array) dataKey.fill(0);
      }
    });
    return this.#loading;
  }
}

export function createEncryptStream(deps: EncryptStreamDeps, options?: TransformOptions): EncryptStream {
  return new EncryptTransform(deps, options);
}
