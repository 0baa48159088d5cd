import { Transform, type TransformCallback, type TransformOptions } from 'node:stream';

/** Output of one step: buffers to push now, or a promise of them when a step must wait (keys). */
export type StepResult = Buffer[] | Promise<Buffer[]>;

/**
 * A Transform that cuts each written chunk into pieces and stops between pieces while the readable
 * side is full, instead of pushing a whole chunk's worth of output at once.
 *
 * Node's Transform already holds the *next* write until the consumer reads, but everything one
 * `_transform` call pushes is buffered: a single 1 GiB write would become 1 GiB of queued frames.
 * Here, when `push()` returns false with input left over, the work is parked until Node asks for
 * more data through `_read`, so the output the stream holds stays near one piece plus the
 * readable high-water mark, whatever the chunk sizes. Pieces are processed synchronously; a step
 * returns a promise only when it has to wait for key material (once per stream).
 *
 * Subclasses implement:
 * - `pieceLength()`: how many input bytes to hand to `processPiece` at a time;
 * - `processPiece(piece)`: output for one piece (may be empty), may throw;
 * - `finish()`: output at the end of the input, may throw;
 * - `release()`: wipes secrets; called exactly once, when the stream ends, fails or is destroyed.
 *   Anything a pending promise delivers after that must be wiped by the subclass (see `released`).
 */
export abstract class PacedTransform extends Transform {
  #resume: (() => void) | null = null;
  #released = false;

  constructor(options?: TransformOptions) {
    super(options);
  }

  protected abstract pieceLength(): number;
  protected abstract processPiece(piece: Buffer): StepResult;
  protected abstract finish(): StepResult;
  protected abstract release(): void;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#drive(chunk, 0, callback);
  }

  override _flush(callback: TransformCallback): void {
    let out: StepResult;
    try {
      out = this.finish();
    } catch (err) {
      callback(toError(err));
      return;
    }
    const done = (bufs: Buffer[]): void => {
      if (this.destroyed) return;
      for (const b of bufs) this.push(b);
      this.#releaseOnce();
      callback();
    };
    if (Array.isArray(out)) done(out);
    else out.then(done, (err: unknown) => this.#fail(err, callback));
  }

  override _read(size: number): void {
    const resume = this.#resume;
    if (resume !== null) {
      this.#resume = null;
      resume();
      // Parked again, or waiting on a promise: the next push or _read continues from there.
      if (this.#resume !== null) return;
    }
    // The parked chunk may have finished without pushing anything (its tail was buffered inside
    // the engine). Readable then stays in its `reading` state and will not call _read again, while
    // Transform may have parked the write callback until the next _read: release it now, as
    // Transform's own _read does.
    super._read(size);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#resume = null;
    this.#releaseOnce();
    callback(error);
  }

  /** True once the stream will produce no more output: late key material must be wiped, not used. */
  protected get released(): boolean {
    return this.destroyed || this.#released;
  }

  // Processes `chunk` from `offset` piece by piece; parks when the readable side is full or when a
  // step has to wait, and calls back when the whole chunk is consumed.
  #drive(chunk: Buffer, offset: number, callback: TransformCallback): void {
    const n = chunk.length;
    let o = offset;
    while (o < n) {
      if (this.destroyed) return;
      const len = Math.min(this.pieceLength(), n - o);
      const piece = o === 0 && len === n ? chunk : chunk.subarray(o, o + len);
      let out: StepResult;
      try {
        out = this.processPiece(piece);
      } catch (err) {
        callback(toError(err));
        return;
      }
      o += len;
      if (!Array.isArray(out)) {
        const at = o;
        out.then(
          (bufs) => {
            if (this.destroyed) return;
            if (!this.#pushAll(bufs) && at < n) this.#park(chunk, at, callback);
            else this.#drive(chunk, at, callback);
          },
          (err: unknown) => this.#fail(err, callback),
        );
        return;
      }
      if (!this.#pushAll(out) && o < n) {
        this.#park(chunk, o, callback);
        return;
      }
    }
    callback();
  }

  #park(chunk: Buffer, at: number, callback: TransformCallback): void {
    this.#resume = () => this.#drive(chunk, at, callback);
  }

  /** Pushes every buffer; false when the readable side is at or over its high-water mark. */
  #pushAll(bufs: Buffer[]): boolean {
    let more = true;
    for (const b of bufs) more = this.push(b);
    return more;
  }

  #fail(err: unknown, callback: TransformCallback): void {
    if (!this.destroyed) callback(toError(err));
  }

  #releaseOnce(): void {
    if (this.#released) return;
    this.#released = true;
    this.release();
  }
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
