/**
 * A one-line progress bar on stderr for long runs. It appears only when stderr is a terminal (a
 * pipe or a log file gets nothing), only after the work has taken a while (short runs stay
 * silent), and redraws at most a few times a second. It counts input bytes against the input's
 * size (a message grows or shrinks on the way, the input is what the user knows), and on success
 * it stays as a last line at 100% (`finish`); on failure it is erased so the error stands alone.
 * Every line fits the terminal: a line as wide as the terminal or wider wraps, and then each
 * `\r` redraw leaves the wrapped part behind as a stale line. The width is read at every draw and
 * a resize redraws at once. (A terminal that reflows the line already drawn when it narrows may
 * still keep one stale row: where the cursor ended up after a reflow cannot be known.)
 * It shows byte counts and rates only: never names, keys or content.
 */
import { Transform, type TransformCallback } from 'node:stream';

export interface ProgressSink {
  isTTY?: boolean;
  /** Terminal width; read at every draw (a tty.WriteStream updates it on SIGWINCH). */
  columns?: number;
  write(chunk: string): unknown;
  /** tty.WriteStream emits 'resize' when the terminal changes size. */
  on?(event: 'resize', listener: () => void): unknown;
  off?(event: 'resize', listener: () => void): unknown;
}

export interface ProgressOptions {
  label: string;
  /** Total bytes when known (a file), for a percentage; undefined for pipes. */
  total?: number | undefined;
  /** Where to draw; default process.stderr. Drawing happens only if `isTTY` is true. */
  out?: ProgressSink;
  /** Milliseconds of work before the bar first appears. */
  delayMs?: number;
  /** Minimum milliseconds between redraws. */
  intervalMs?: number;
  now?: () => number;
}

export class Progress {
  readonly #label: string;
  readonly #total: number | undefined;
  readonly #out: ProgressSink;
  readonly #enabled: boolean;
  readonly #delayMs: number;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #start: number;
  #bytes = 0;
  #lastDraw = 0;
  #drawn = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #onResize = (): void => {
    if (this.#drawn) this.#draw(true);
  };

  constructor(opts: ProgressOptions) {
    this.#label = opts.label;
    this.#total = opts.total;
    this.#out = opts.out ?? process.stderr;
    this.#enabled = this.#out.isTTY === true;
    this.#delayMs = opts.delayMs ?? 1000;
    this.#intervalMs = opts.intervalMs ?? 200;
    this.#now = opts.now ?? Date.now;
    this.#start = this.#now();
    if (this.#enabled) {
      // Redraw on a timer as well, so a stalled stream (waiting on KMS, a slow pipe) still shows
      // that it is alive. unref: the bar never keeps the process running.
      this.#timer = setInterval(() => this.#draw(false), this.#intervalMs);
      this.#timer.unref();
      this.#out.on?.('resize', this.#onResize);
    }
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Sets the absolute byte count (for sources polled rather than streamed). */
  set(bytes: number): void {
    this.#bytes = bytes;
    this.#draw(false);
  }

  add(n: number): void {
    this.#bytes += n;
    this.#draw(false);
  }

  /**
   * The work succeeded: if the bar is showing, draws it one last time (all input counted: 100% of
   * a known size) and leaves it, ending the line. Short runs that never showed it stay silent.
   */
  finish(): void {
    if (this.#enabled && this.#timer !== undefined && this.#drawn) {
      this.#draw(true);
      this.#out.write('\n');
      this.#drawn = false;
    }
    this.done();
  }

  /** Erases the bar (if it is on screen) and stops the timer. */
  done(): void {
    if (this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#out.off?.('resize', this.#onResize);
    }
    this.#timer = undefined;
    if (this.#drawn) this.#out.write('\r\x1b[2K');
    this.#drawn = false;
  }

  /** A pass-through Transform that counts the bytes flowing through it. */
  meter(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) => {
        this.add(chunk.length);
        cb(null, chunk);
      },
    });
  }

  #draw(force: boolean): void {
    if (!this.#enabled || this.#timer === undefined) return;
    const t = this.#now();
    if (t - this.#start < this.#delayMs) return;
    if (!force && this.#drawn && t - this.#lastDraw < this.#intervalMs) return;
    this.#lastDraw = t;
    this.#drawn = true;
    this.#out.write('\r\x1b[2K' + this.line(t));
  }

  /**
   * The text of the bar at time `t` (exported for tests), at most `columns - 1` characters: the
   * last column stays free, so the cursor never reaches the edge where a terminal wraps. What
   * does not fit is dropped in this order: the bar, the rate, the label, the sizes.
   */
  line(t = this.#now()): string {
    const columns = this.#out.columns;
    const max = Math.max(1, (columns !== undefined && columns > 0 ? columns : 80) - 1);
    const secs = Math.max((t - this.#start) / 1000, 0.001);
    const rate = `${formatBytes(this.#bytes / secs)}/s`;
    const label = this.#label;
    let candidates: string[];
    if (this.#total !== undefined && this.#total > 0) {
      const frac = Math.min(1, this.#bytes / this.#total);
      const pct = `${`${Math.floor(frac * 100)}`.padStart(3)}%`;
      const sizes = `${formatBytes(this.#bytes)} / ${formatBytes(this.#total)}`;
      // The bar gets what is left, 10 to 40 cells (below 10 it says nothing a percentage does not),
      // sized for the widest text it will sit next to, so it does not jitter as the numbers change.
      const totalText = formatBytes(this.#total);
      const barWidth = Math.min(40, max - `${label} [] 100% ${totalText} / ${totalText} 1023.9 MiB/s`.length);
      const fill = Math.round(frac * barWidth);
      candidates = [
        ...(barWidth >= 10 ? [`${label} [${'#'.repeat(fill)}${'.'.repeat(barWidth - fill)}] ${pct} ${sizes} ${rate}`] : []),
        `${label} ${pct} ${sizes} ${rate}`,
        `${label} ${pct} ${sizes}`,
        `${pct.trimStart()} ${sizes}`,
        pct.trimStart(),
      ];
    } else {
      const bytes = formatBytes(this.#bytes);
      candidates = [`${label} ${bytes} ${rate}`, `${label} ${bytes}`, bytes];
    }
    return candidates.find((c) => c.length <= max) ?? candidates.at(-1)!.slice(0, max);
  }
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${Math.round(v)} ${UNITS[u]}` : `${v.toFixed(1)} ${UNITS[u]}`;
}
