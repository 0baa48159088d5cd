/**
 * The incremental decryptor behind decryptStream (client-apis/decrypt.md, streaming): header,
 * then frame by frame, releasing each frame's plaintext only after its tag verified and, for
 * signed suites, the final frame only after the signature. The one-shot path for a whole message
 * is in decrypt.ts, which also derives and verifies the key (DecryptionKey) both paths use.
 */
import { createDecipheriv, type DecipherGCM, type Verify } from 'node:crypto';
import { DecryptionError, LimitExceededError, MalformedMessageError, StreamError } from '../errors.js';
import {
  bodyAad,
  FINAL_FRAME_HEADER_LENGTH,
  FRAME_HEADER_LENGTH,
  gcmAlgorithm,
  IV_LENGTH,
  LABEL_FINAL_FRAME,
  LABEL_FRAME,
  LABEL_SINGLE_BLOCK,
  MAX_NON_FRAMED_CONTENT,
  NON_FRAMED_HEADER_LENGTH,
  readUInt64,
  SEQUENCE_NUMBER_END,
  setAadCounters,
  TAG_LENGTH,
} from './body.js';
import { createVerifier, finishVerify } from './footer.js';
import { CONTENT_TYPE_NON_FRAMED, tryParseHeader, type HeaderScan, type MessageHeader, type ParseLimits } from './header.js';
import { asBuffer, checkKey, deriveAndVerifyHeader, DecryptionKey, EMPTY } from './decrypt.js';

/**
 * Ciphertext pieces smaller than this are gathered and decrypted together, so a part's held
 * plaintext has at most about 2 * partLength / STAGE_BYTES buffers (their per-object overhead is
 * then under 2% of the part); larger pieces are decrypted without a copy.
 */
const STAGE_BYTES = 16 * 1024;

/** Limits of the incremental decryptor. */
export interface DecryptorLimits extends ParseLimits {
  /**
   * Largest regular frame length accepted from a header, in bytes (default 16 MiB). A frame's
   * plaintext is held until its tag verifies, so this bounds the decryptor's memory; a header
   * announcing more is rejected with LimitExceededError before any key is requested.
   */
  maxFrameLength?: number;
  /**
   * Largest non-framed body accepted, in bytes (default 64 MiB). A non-framed body has one tag,
   * so all of its plaintext must be held until the end; larger bodies are LimitExceededError,
   * raised before any key is requested (the length is read from the 20 bytes after the header).
   */
  maxBodyBytes?: number;
}

export const DEFAULT_MAX_FRAME_LENGTH = 16 * 1024 * 1024;
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;

const enum Phase {
  Header,
  /** Non-framed body: reading its IV and content length, to check maxBodyBytes before the key. */
  BodyLength,
  Key,
  FrameStart,
  FrameHeader,
  FinalFrameHeader,
  NonFramedHeader,
  Content,
  Tag,
  FooterLength,
  Footer,
  Complete,
  Done,
  Failed,
}

function checkPositiveInt(value: unknown, name: string, unit: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer (${unit})`);
  }
  return value;
}

/**
 * Incremental, push-based, synchronous decryptor with bounded memory, for wrapping in a Node
 * Transform. Life cycle:
 *
 *   const dec = new MessageDecryptor({ maxEncryptedDataKeys: 10 });
 *   dec.push(chunk);                 // 1. feed bytes until dec.needsKey
 *   if (dec.needsKey) {              // 2. header parsed: get the data key (async, keyrings) ...
 *     dec.setDataKey(dataKey);       //    ... then supply it (verifies commitment + header tag)
 *   }
 *   out(dec.read());                 // 3. verified plaintext, frame by frame
 *   dec.push(more); out(dec.read()); //    ... repeat for every chunk
 *   out(dec.end());                  // 4. input ended: throws if truncated, returns held plaintext
 *
 * - `push` never returns plaintext and never throws for an incomplete message; it throws typed
 *   errors as soon as the bytes seen prove the message bad (MalformedMessageError,
 *   LimitExceededError, DecryptionError for a failed tag or signature), including for any byte
 *   after the end of the message. After an error every call rethrows it.
 * - Bytes pushed while the key is awaited are copied and kept; a Transform naturally does not push
 *   then (it has not called back yet).
 * - `read` returns only plaintext whose frame tag verified (for non-framed bodies: the whole
 *   body, after its one tag). For a signed suite the final frame (or the non-framed body) waits
 *   for end(), which follows the signature check and sees that nothing followed the footer:
 *   client-apis/decrypt.md requires that such plaintext is not released before the signature
 *   verified, and there is no option to release it earlier.
 * - Memory: the header (<= maxHeaderBytes), one frame of plaintext (<= maxFrameLength) or one
 *   non-framed body (<= maxBodyBytes), the footer, and unread output, whatever the chunking: small
 *   pieces of a frame are gathered and decrypted STAGE_BYTES at a time (see #stage).
 */
export class MessageDecryptor {
  readonly #limits: ParseLimits;
  readonly #maxFrameLength: number;
  readonly #maxBodyBytes: number;

  #phase = Phase.Header;
  #error: unknown;
  // Header phase
  // Header bytes received so far live in #headerBuf[0, #headerBytes), a buffer grown by doubling,
  // so a header that arrives in many small pieces is copied O(n) times in total, not O(n^2).
  #headerBuf: Buffer = EMPTY;
  #headerBytes = 0;
  #headerNeed = 1;
  #headerScan: HeaderScan = {};
  #header: MessageHeader | undefined;
  // Key phase: input received before the key
  #pendingInput: Buffer[] = [];
  // Body phase
  #key: DecryptionKey | undefined;
  #ownsKey = false;
  #algorithm: ReturnType<typeof gcmAlgorithm> = 'aes-256-gcm';
  #verifier: Verify | undefined;
  #scratch = Buffer.alloc(FINAL_FRAME_HEADER_LENGTH);
  #scratchFill = 0;
  #scratchNeed = 0;
  #expectedSequence = 1;
  #decipher: DecipherGCM | undefined;
  #contentRemaining = 0;
  #finalPart = false;
  #regularAad: Buffer | undefined;
  // Small pieces of ciphertext are gathered here, #stage[0, #staged), and decrypted STAGE_BYTES at
  // a time, so the plaintext held for a frame is a few large buffers whatever the sender's chunking
  // (one Buffer per 1-byte chunk made a 256 KiB frame cost over 100 MiB). Large pieces are
  // decrypted where they are, without a copy.
  #stage: Buffer = EMPTY;
  #staged = 0;
  /** Plaintext of the current part, held until its tag verified: buffers of >= STAGE_BYTES, or a piece's tail. */
  #held: Buffer[] = [];
  #withheld: Buffer[] = [];
  #footerRemaining = 0;
  #footerParts: Buffer[] = [];
  #output: Buffer[] = [];

  constructor(limits: DecryptorLimits) {
    if (limits === null || typeof limits !== 'object') throw new TypeError('limits must be an object');
    checkPositiveInt(limits.maxEncryptedDataKeys, 'maxEncryptedDataKeys', 'count of keys');
    const parse: ParseLimits = { maxEncryptedDataKeys: limits.maxEncryptedDataKeys };
    if (limits.maxHeaderBytes !== undefined) parse.maxHeaderBytes = checkPositiveInt(limits.maxHeaderBytes, 'maxHeaderBytes', 'bytes');
    this.#limits = parse;
    this.#maxFrameLength =
      limits.maxFrameLength === undefined ? DEFAULT_MAX_FRAME_LENGTH : checkPositiveInt(limits.maxFrameLength, 'maxFrameLength', 'bytes');
    this.#maxBodyBytes =
      limits.maxBodyBytes === undefined ? DEFAULT_MAX_BODY_BYTES : checkPositiveInt(limits.maxBodyBytes, 'maxBodyBytes', 'bytes');
    if ('holdFinalFrame' in limits) {
      throw new TypeError('holdFinalFrame was removed: signed suites always hold the final frame until end()');
    }
  }

  /** The parsed header once it is complete (not yet authenticated until a key was set). */
  get header(): MessageHeader | undefined {
    return this.#header;
  }

  /** True when the header is parsed and setDataKey/setKey is expected. */
  get needsKey(): boolean {
    return this.#phase === Phase.Key;
  }

  /** True after end() succeeded. */
  get done(): boolean {
    return this.#phase === Phase.Done;
  }

  /** Feeds message bytes. The chunk is not retained (bytes kept are copied). */
  push(chunk: Uint8Array): void {
    this.#guard();
    if (!(chunk instanceof Uint8Array)) throw new TypeError('chunk must be a Uint8Array');
    if (chunk.length === 0) return;
    try {
      const buf = asBuffer(chunk);
      if (this.#phase === Phase.Header) this.#pushHeader(buf);
      else if (this.#phase === Phase.BodyLength) this.#pushBodyLength(buf, false);
      else if (this.#phase === Phase.Key) this.#keepPending(buf, false);
      else this.#consume(buf);
    } catch (e) {
      this.#fail(e);
    }
  }

  /** Supplies the plaintext data key: derives the message key, checks commitment and header tag. */
  setDataKey(dataKey: Uint8Array): void {
    this.#guard();
    if (this.#phase !== Phase.Key) throw new StreamError('setDataKey() is only valid once the header is parsed and before a key is set');
    let key: DecryptionKey;
    try {
      key = deriveAndVerifyHeader(this.#header!, dataKey);
    } catch (e) {
      if (e instanceof RangeError) throw e;
      this.#fail(e);
    }
    this.#start(key, true);
  }

  /** Supplies a key already derived with deriveAndVerifyHeader(decryptor.header, dataKey). */
  setKey(key: DecryptionKey): void {
    this.#guard();
    if (this.#phase !== Phase.Key) throw new StreamError('setKey() is only valid once the header is parsed and before a key is set');
    checkKey(this.#header!, key);
    this.#start(key, false);
  }

  /** Returns (and forgets) the verified plaintext produced so far. */
  read(): Buffer[] {
    const out = this.#output;
    this.#output = [];
    return out;
  }

  /**
   * Signals the end of the input. Throws MalformedMessageError if the message is incomplete
   * (a truncated stream is never a silently short plaintext), StreamError if no key was
   * supplied. Returns the remaining verified plaintext, including a withheld final frame.
   */
  end(): Buffer[] {
    this.#guard();
    if (this.#phase === Phase.Key) throw new StreamError('end() before a key was supplied');
    if (this.#phase !== Phase.Complete) {
      this.#fail(new MalformedMessageError('message is truncated'));
    }
    this.#phase = Phase.Done;
    const out = this.read();
    for (const b of this.#withheld) out.push(b);
    this.#withheld = [];
    this.#releaseKey();
    return out;
  }

  /** Abandons decryption: zeroes held plaintext and an owned key. */
  destroy(): void {
    if (this.#phase !== Phase.Done) this.#fail(new StreamError('decryptor destroyed'), false);
  }

  #guard(): void {
    if (this.#phase === Phase.Failed) throw this.#error;
    if (this.#phase === Phase.Done) throw new StreamError('decryptor already ended');
  }

  #fail(e: unknown, rethrow = true): never {
    this.#phase = Phase.Failed;
    this.#error = e;
    for (const b of this.#held) b.fill(0);
    for (const b of this.#withheld) b.fill(0);
    for (const b of this.#output) b.fill(0);
    this.#held = [];
    this.#withheld = [];
    this.#output = [];
    this.#pendingInput = [];
    this.#headerBuf = EMPTY;
    this.#stage = EMPTY;
    this.#decipher = undefined;
    this.#releaseKey();
    if (rethrow) throw e;
    return undefined as never;
  }

  #releaseKey(): void {
    if (this.#ownsKey) this.#key?.destroy();
    this.#key = undefined;
  }

  #pushHeader(chunk: Buffer): void {
    let buf: Buffer;
    if (this.#headerBytes === 0 && chunk.length >= this.#headerNeed) {
      // Common case: the first chunk holds the whole header. Parse it in place (tryParseHeader
      // copies the header bytes it keeps) rather than copying the chunk first.
      buf = chunk;
    } else {
      this.#appendHeader(chunk);
      if (this.#headerBytes < this.#headerNeed) return;
      buf = this.#headerBuf.subarray(0, this.#headerBytes);
    }
    const r = tryParseHeader(buf, this.#limits, this.#headerScan);
    if (typeof r === 'number') {
      if (buf === chunk) this.#appendHeader(chunk);
      this.#headerNeed = r;
      return;
    }
    if (r.contentType !== CONTENT_TYPE_NON_FRAMED && r.frameLength > this.#maxFrameLength) {
      throw new LimitExceededError(
        `message frame length (${r.frameLength} bytes) exceeds maxFrameLength (${this.#maxFrameLength} bytes); ` +
          'raise the maxFrameLength option to decrypt it (a stream holds one frame of plaintext)',
        'maxFrameLength',
      );
    }
    this.#header = r;
    this.#headerBuf = EMPTY;
    // Bytes after the header: ours when they came from #headerBuf, the caller's chunk otherwise.
    const rest = buf.length > r.length ? buf.subarray(r.length) : EMPTY;
    if (r.contentType === CONTENT_TYPE_NON_FRAMED) {
      // A non-framed body's length follows the header in the clear: read it and check it against
      // maxBodyBytes before asking for a key, as the frame length above, so a hostile message
      // costs no keyring (KMS) call.
      this.#expect(Phase.BodyLength, NON_FRAMED_HEADER_LENGTH);
      if (rest.length > 0) this.#pushBodyLength(rest, buf !== chunk);
      return;
    }
    this.#phase = Phase.Key;
    if (rest.length > 0) this.#keepPending(rest, buf !== chunk);
  }

  /** Keeps input that arrived before the key: a copy, unless `owned` (the caller may reuse its chunk). */
  #keepPending(bytes: Buffer, owned: boolean): void {
    this.#pendingInput.push(owned ? bytes : Buffer.from(bytes));
  }

  /**
   * Gathers a non-framed body's IV and content length (data-format/message-body.md, "Un-Framed
   * Data") in the scratch buffer; once complete, checks the length and waits for the key. The
   * gathered bytes stay in the input, to be read again by the body state machine.
   */
  #pushBodyLength(chunk: Buffer, owned: boolean): void {
    const take = Math.min(this.#scratchNeed - this.#scratchFill, chunk.length);
    chunk.copy(this.#scratch, this.#scratchFill, 0, take);
    this.#scratchFill += take;
    if (this.#scratchFill < this.#scratchNeed) return;
    this.#checkBodyLength(readUInt64(this.#scratch, IV_LENGTH));
    this.#scratchFill = 0;
    this.#pendingInput.push(Buffer.from(this.#scratch.subarray(0, NON_FRAMED_HEADER_LENGTH)));
    if (take < chunk.length) this.#keepPending(chunk.subarray(take), owned);
    this.#phase = Phase.Key;
  }

  #checkBodyLength(length: number): void {
    if (length > MAX_NON_FRAMED_CONTENT) throw new MalformedMessageError('non-framed content length exceeds the AES-GCM limit');
    if (length > this.#maxBodyBytes) throw new LimitExceededError(`non-framed body exceeds maxBodyBytes (${this.#maxBodyBytes} bytes)`, 'maxBodyBytes');
  }

  #appendHeader(chunk: Buffer): void {
    const end = this.#headerBytes + chunk.length;
    if (end > this.#headerBuf.length) {
      const grown = Buffer.allocUnsafe(Math.max(end, 2 * this.#headerBuf.length, 256));
      this.#headerBuf.copy(grown, 0, 0, this.#headerBytes);
      this.#headerBuf = grown;
    }
    chunk.copy(this.#headerBuf, this.#headerBytes);
    this.#headerBytes = end;
  }

  #start(key: DecryptionKey, owned: boolean): void {
    const header = this.#header!;
    this.#key = key;
    this.#ownsKey = owned;
    this.#algorithm = gcmAlgorithm(header.suite.keyLength);
    if (header.suite.signatureCurve !== undefined) {
      this.#verifier = createVerifier(header.suite);
      this.#verifier.update(header.bytes);
    }
    if (header.contentType === CONTENT_TYPE_NON_FRAMED) this.#expect(Phase.NonFramedHeader, NON_FRAMED_HEADER_LENGTH);
    else this.#expect(Phase.FrameStart, 4);
    const pending = this.#pendingInput;
    this.#pendingInput = [];
    try {
      for (const b of pending) this.#consume(b);
    } catch (e) {
      this.#fail(e);
    }
  }

  #expect(phase: Phase, bytes: number): void {
    this.#phase = phase;
    this.#scratchNeed = bytes;
  }

  /** Runs the body state machine over one chunk; the chunk is not retained. */
  #consume(chunk: Buffer): void {
    let pos = 0;
    const n = chunk.length;
    for (;;) {
      switch (this.#phase) {
        case Phase.Content: {
          const take = Math.min(this.#contentRemaining, n - pos);
          if (take > 0) {
            // Decrypted in place when large, or when it is the whole rest of a part not begun yet
            // (a small frame in one chunk); gathered in the stage otherwise.
            if (take >= STAGE_BYTES || (this.#staged === 0 && take === this.#contentRemaining)) {
              this.#flushStage();
              this.#decryptPiece(chunk.subarray(pos, pos + take));
            } else {
              this.#stageContent(chunk, pos, take);
            }
            this.#contentRemaining -= take;
            pos += take;
          }
          if (this.#contentRemaining > 0) return;
          this.#flushStage();
          this.#expect(Phase.Tag, TAG_LENGTH);
          continue;
        }
        case Phase.Footer: {
          const take = Math.min(this.#footerRemaining, n - pos);
          if (take > 0) {
            this.#footerParts.push(Buffer.from(chunk.subarray(pos, pos + take)));
            this.#footerRemaining -= take;
            pos += take;
          }
          if (this.#footerRemaining > 0) return;
          const signature = Buffer.concat(this.#footerParts);
          this.#footerParts = [];
          finishVerify(this.#verifier!, this.#key!.publicKey!, signature);
          this.#phase = Phase.Complete;
          continue;
        }
        case Phase.Complete:
          if (pos < n) throw new MalformedMessageError('unexpected bytes after the end of the message');
          return;
        default: {
          // Fixed-size fields are gathered in the scratch buffer, possibly across chunks.
          const take = Math.min(this.#scratchNeed - this.#scratchFill, n - pos);
          chunk.copy(this.#scratch, this.#scratchFill, pos, pos + take);
          this.#scratchFill += take;
          pos += take;
          if (this.#scratchFill < this.#scratchNeed) return;
          this.#field();
        }
      }
    }
  }

  /** Handles a completed fixed-size field in the scratch buffer. */
  #field(): void {
    const s = this.#scratch;
    const header = this.#header!;
    const fieldLength = this.#scratchNeed;
    this.#scratchFill = 0;
    switch (this.#phase) {
      case Phase.FrameStart: {
        // Only the first 4 bytes: a sequence number, or the final frame's end marker.
        if (s.readUInt32BE(0) === SEQUENCE_NUMBER_END) this.#expect(Phase.FinalFrameHeader, FINAL_FRAME_HEADER_LENGTH);
        else this.#expect(Phase.FrameHeader, FRAME_HEADER_LENGTH);
        this.#scratchFill = 4; // keep the 4 bytes just read in place
        return;
      }
      case Phase.FrameHeader: {
        if (s.readUInt32BE(0) !== this.#expectedSequence) throw new MalformedMessageError('frame sequence number out of order');
        this.#verifier?.update(s.subarray(0, fieldLength));
        const aad = (this.#regularAad ??= bodyAad(header.messageId, LABEL_FRAME, 1, header.frameLength));
        setAadCounters(aad, this.#expectedSequence, header.frameLength);
        this.#begin(s.subarray(4, 4 + IV_LENGTH), aad, header.frameLength, false);
        return;
      }
      case Phase.FinalFrameHeader: {
        if (s.readUInt32BE(4) !== this.#expectedSequence) throw new MalformedMessageError('frame sequence number out of order');
        const length = s.readUInt32BE(8 + IV_LENGTH);
        if (length > header.frameLength) throw new MalformedMessageError('final frame is longer than the frame length');
        this.#verifier?.update(s.subarray(0, fieldLength));
        const aad = bodyAad(header.messageId, LABEL_FINAL_FRAME, this.#expectedSequence, length);
        this.#begin(s.subarray(8, 8 + IV_LENGTH), aad, length, true);
        return;
      }
      case Phase.NonFramedHeader: {
        const length = readUInt64(s, IV_LENGTH);
        this.#checkBodyLength(length); // checked before the key already; these are the same bytes
        this.#verifier?.update(s.subarray(0, fieldLength));
        this.#begin(s.subarray(0, IV_LENGTH), bodyAad(header.messageId, LABEL_SINGLE_BLOCK, 1, length), length, true);
        return;
      }
      case Phase.Tag: {
        const tag = s.subarray(0, TAG_LENGTH);
        const d = this.#decipher!;
        this.#decipher = undefined;
        try {
          d.setAuthTag(tag);
          d.final();
        } catch {
          throw new DecryptionError();
        }
        this.#verifier?.update(tag);
        const held = this.#held;
        this.#held = [];
        // client-apis/decrypt.md, "Decrypt the message body": plaintext of a final frame or of
        // unframed data MUST NOT be released until the signature verified.
        if (this.#finalPart && this.#verifier !== undefined) this.#withheld = held;
        else for (const b of held) if (b.length > 0) this.#output.push(b);
        if (!this.#finalPart) {
          this.#expectedSequence++;
          this.#expect(Phase.FrameStart, 4);
        } else if (this.#verifier !== undefined) {
          this.#expect(Phase.FooterLength, 2);
        } else {
          this.#phase = Phase.Complete;
        }
        return;
      }
      case Phase.FooterLength: {
        this.#footerRemaining = s.readUInt16BE(0);
        this.#phase = Phase.Footer;
        return;
      }
      default:
        throw new Error('unreachable decryptor state');
    }
  }

  /** Gathers `take` (< STAGE_BYTES) ciphertext bytes, decrypting the stage each time it fills. */
  #stageContent(chunk: Buffer, pos: number, take: number): void {
    if (this.#stage.length === 0) this.#stage = Buffer.allocUnsafe(STAGE_BYTES);
    const end = pos + take;
    while (pos < end) {
      const n = Math.min(STAGE_BYTES - this.#staged, end - pos);
      chunk.copy(this.#stage, this.#staged, pos, pos + n);
      this.#staged += n;
      pos += n;
      if (this.#staged === STAGE_BYTES) this.#flushStage();
    }
  }

  #flushStage(): void {
    if (this.#staged === 0) return;
    // update() returns a new buffer, so the stage can be reused at once.
    this.#decryptPiece(this.#stage.subarray(0, this.#staged));
    this.#staged = 0;
  }

  #decryptPiece(ciphertext: Buffer): void {
    this.#verifier?.update(ciphertext);
    this.#held.push(this.#decipher!.update(ciphertext));
  }

  #begin(iv: Buffer, aad: Buffer, contentLength: number, final: boolean): void {
    const d = createDecipheriv(this.#algorithm, this.#key!.bytes, iv);
    d.setAAD(aad);
    this.#decipher = d;
    this.#contentRemaining = contentLength;
    this.#finalPart = final;
    this.#phase = Phase.Content;
  }
}
