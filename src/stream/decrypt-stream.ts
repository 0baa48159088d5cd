import type { TransformOptions } from 'node:stream';
import { MessageDecryptor, type DecryptorLimits } from '../format/decryptor.js';
import type { MessageHeader } from '../format/header.js';
import { PacedTransform, type StepResult } from './paced-transform.js';

export interface DecryptStreamDeps {
  limits: {
    /** Most encrypted data keys a header may carry (checked before any keyring call). */
    maxEncryptedDataKeys: number;
    /** Largest header accepted, in bytes. */
    maxHeaderBytes: number;
    /**
     * Largest regular frame length accepted from a header, in bytes (default 16 MiB): one frame of
     * plaintext is held until its tag verifies, so this bounds the stream's memory.
     */
    maxFrameLength?: number;
    /** Largest non-framed body accepted, in bytes (default 64 MiB): it has one tag, so all of it is held. */
    maxBodyBytes?: number;
  };
  /**
   * Checks the header (policies, required context) as soon as it is parsed, before anything after
   * it is read and before `dataKey`; throws an EnvelopeError, which becomes the stream's error.
   */
  checkHeader?(header: MessageHeader): void;
  /**
   * Resolves the data key: a private copy that the stream zeroes once the message key is derived
   * (and in any case when it ends, fails or is destroyed). Rejections (EnvelopeErrors) become the
   * stream's error.
   */
  dataKey(header: MessageHeader): Promise<Buffer>;
}

/** A Transform from one ESDK message to its plaintext; emits `header` once the header is authenticated. */
export type DecryptStream = DecryptTransform;

/**
 * Input bytes handed to the decryptor at a time. The decryptor holds one frame of plaintext until
 * its tag verifies; pieces bound what a single huge write adds on top of that.
 */
const PIECE_BYTES = 64 * 1024;

/**
 * Decrypting Transform over MessageDecryptor. Plaintext leaves the stream only after the tag of
 * its frame verified (and, for a signed suite, the final frame only after the signature verified
 * and the input ended). Whatever ends the input early, adds bytes after the message, reorders or
 * repeats frames, or fails a tag ends in an `error` event with an EnvelopeError, never in a short
 * plaintext followed by a normal `end`.
 *
 * Events: `header` (MessageHeader), emitted once, after the header tag verified under the data key.
 */
export class DecryptTransform extends PacedTransform {
  readonly #deps: DecryptStreamDeps;
  readonly #decryptor: MessageDecryptor;
  #header: MessageHeader | undefined;
  #headerChecked = false;

  constructor(deps: DecryptStreamDeps, options?: TransformOptions) {
    super(options);
    if (deps === null || typeof deps !== 'object' || typeof deps.dataKey !== 'function') {
      throw new TypeError('deps.dataKey must be a function');
    }
    if ('holdFinalFrame' in deps) throw new TypeError('deps.holdFinalFrame was removed: signed suites always hold the final frame');
    if (deps.checkHeader !== undefined && typeof deps.checkHeader !== 'function') throw new TypeError('deps.checkHeader must be a function');
    const l = deps.limits;
    if (l === null || typeof l !== 'object') throw new TypeError('deps.limits must be an object');
    const limits: DecryptorLimits = {
      maxEncryptedDataKeys: l.maxEncryptedDataKeys,
      maxHeaderBytes: l.maxHeaderBytes,
    };
    if (l.maxFrameLength !== undefined) limits.maxFrameLength = l.maxFrameLength;
    if (l.maxBodyBytes !== undefined) limits.maxBodyBytes = l.maxBodyBytes;
    this.#deps = deps;
    this.#decryptor = new MessageDecryptor(limits);
  }

  /** The authenticated message header, once known. */
  get header(): MessageHeader | undefined {
    return this.#header;
  }

  protected override pieceLength(): number {
    return PIECE_BYTES;
  }

  protected override processPiece(piece: Buffer): StepResult {
    const dec = this.#decryptor;
    dec.push(piece);
    if (!this.#headerChecked && dec.header !== undefined) {
      // client-apis/decrypt.md ("Behavior"): a signature policy fails right after the header is
      // parsed; the other header checks need no more input either.
      this.#headerChecked = true;
      this.#deps.checkHeader?.(dec.header);
    }
    if (!dec.needsKey) return dec.read();
    // Header complete: bytes after it are kept (copied) by the decryptor until the key is set.
    const header = dec.header!;
    return this.#deps.dataKey(header).then((dataKey) => {
      try {
        if (this.released) return []; // destroyed while the keyring answered: wipe, use nothing
        dec.setDataKey(dataKey);
      } finally {
        // The decryptor derived (and owns) the message key; the data key copy is done with.
        if (dataKey instanceof Uint8Array) dataKey.fill(0);
      }
      this.#header = header;
      this.emit('header', header);
      return dec.read();
    });
  }

  protected override finish(): StepResult {
    return this.#decryptor.end();
  }

  protected override release(): void {
    // Zeroes the derived key and any plaintext held back (no-op after a successful end()).
    this.#decryptor.destroy();
  }
}

export function createDecryptStream(deps: DecryptStreamDeps, options?: TransformOptions): DecryptStream {
  return new DecryptTransform(deps, options);
}
