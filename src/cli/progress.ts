/**
 * A one-line progress bar on stderr for long runs. It appears only when stderr is a terminal (a
 * pipe or a log file gets nothing), only after the work has taken a while (short runs stay
 * silent), redraws at most a few times a second, and erases itself when done. It shows byte
 * counts and rates only: never names, keys or content.
 */
import { Transform, type TransformCallback } from 'node:stream';

export interface ProgressSink {
  isTTY?: boolean;
  columns?: number;
  write(chunk: string): unknown;
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

  /** Erases the bar (if it was ever drawn) and stops the timer. */
  done(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
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

  /** The text of the bar at time `t` (exported for tests). */
  line(t = this.#now()): string {
    const secs = Math.max((t - this.#start) / 1000, 0.001);
    const rate = `${formatBytes(this.#bytes / secs)}/s`;
    const width = Math.max(10, Math.min(40, (this.#out.columns ?? 80) - 60));
    if (this.#total !== undefined && this.#total > 0) {
      const frac = Math.min(1, this.#bytes / this.#total);
      const fill = Math.round(frac * width);
      const pct = `${Math.floor(frac * 100)}`.padStart(3);
      return `${this.#label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${pct}% ${formatBytes(this.#bytes)} / ${formatBytes(this.#total)} ${rate}`;
    }
    return `${this.#label} ${formatBytes(this.#bytes)} ${rate}`;
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
