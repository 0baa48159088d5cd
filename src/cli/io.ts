/**
 * Input and output endpoints of the CLI: files, stdin/stdout, and the temp+rename discipline for
 * files written from a stream (the same one `Envelope.encryptFile` uses: a hidden temporary file
 * next to the target, fsync, rename), so an interrupted or failed run never leaves a partial file,
 * and a failed decryption never leaves unauthenticated plaintext, under the target name.
 */
import { createReadStream, createWriteStream, realpathSync, type Stats } from 'node:fs';
import { readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { syncFile, syncPath, tempPathFor } from '../stream/files.js';
import { usage } from './errors.js';

export interface Io {
  stdin: Readable & { isTTY?: boolean };
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean; columns?: number };
  env: NodeJS.ProcessEnv;
}

export type Endpoint = { kind: 'std' } | { kind: 'file'; path: string; stats: Stats | undefined };

/** `-` (or nothing) is stdin/stdout; anything else is a path. */
export async function resolveEndpoint(spec: string | undefined, flag: '-i' | '-o'): Promise<Endpoint> {
  if (spec === undefined || spec === '-') return { kind: 'std' };
  if (spec.length === 0) throw usage(`${flag} needs a file name or -`);
  const path = resolve(spec);
  let stats: Stats | undefined;
  try {
    stats = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || flag === '-i') throw err;
  }
  if (stats?.isDirectory()) throw usage(`${flag} ${JSON.stringify(spec)} is a directory`);
  return { kind: 'file', path, stats };
}

/** True when the output is a path we replace by rename (a regular file, or nothing there yet). */
export function isReplaceableFile(e: Endpoint): boolean {
  return e.kind === 'file' && (e.stats === undefined || e.stats.isFile());
}

/** Refuses `-i x -o x` (the rename would replace the input with its own transformation midway). */
export function checkDistinct(input: Endpoint, output: Endpoint): void {
  if (input.kind !== 'file' || output.kind !== 'file' || output.stats === undefined) return;
  let a: string;
  let b: string;
  try {
    a = realpathSync(input.path);
    b = realpathSync(output.path);
  } catch {
    return;
  }
  if (a === b) throw usage('-i and -o name the same file');
}

export function inputStream(e: Endpoint, io: Io): Readable {
  return e.kind === 'std' ? io.stdin : createReadStream(e.path, { highWaterMark: 256 * 1024 });
}

/**
 * Runs `source -> ...transforms -> output`. A replaceable file output is written through a
 * temporary file (mode `mode`) renamed into place only after the whole pipeline succeeded.
 * Devices and FIFOs (e.g. /dev/null) are written directly: they cannot be renamed over.
 */
export async function runPipeline(
  source: Readable,
  transforms: Transform[],
  output: Endpoint,
  io: Io,
  mode: number,
  signal?: AbortSignal,
): Promise<void> {
  const options = signal === undefined ? {} : { signal };
  if (output.kind === 'std') {
    // stdout stays open after the pipeline (end() on process.stdout does not close fd 1).
    await pipeline([source, ...transforms, io.stdout], options);
    return;
  }
  if (output.stats !== undefined && !output.stats.isFile()) {
    await pipeline([source, ...transforms, createWriteStream(output.path, { flags: 'w' })], options);
    return;
  }
  const tmp = tempPathFor(output.path);
  let renamed = false;
  try {
    // 'wx': never follow or clobber anything at the (random) temp path.
    const sink = createWriteStream(tmp, { flags: 'wx', mode, highWaterMark: 256 * 1024 });
    await pipeline([source, ...transforms, sink], options);
    // The same steps as the library's file helpers (src/stream/files.ts): the data is on disk
    // before the rename makes it visible under the target name (fsync reaches the file's data
    // through any descriptor; the stream's own `flush` option needs Node >= 20.10, and we support
    // every Node 20), then the rename itself is made durable by syncing the directory that holds
    // the entry. Some platforms cannot fsync a directory; the file's data is synced already.
    await syncFile(tmp);
    await rename(tmp, output.path);
    renamed = true;
    await syncPath(dirname(output.path), 'r').catch(() => undefined);
  } finally {
    if (!renamed) await unlink(tmp).catch(() => undefined);
  }
}

/**
 * For file-to-file work done by `Envelope.encryptFile`/`decryptFile`, which do not report
 * progress: polls the size of their temporary file (named by `tempPathFor`) next to `dst`.
 * Purely cosmetic; if the temporary file cannot be found the bar just does not move.
 */
export function pollTempFile(dst: string, onSize: (bytes: number) => void, intervalMs = 250): () => void {
  const dir = dirname(dst);
  const prefix = `.${basename(dst)}.`;
  let stopped = false;
  const tick = async (): Promise<void> => {
    try {
      const names = (await readdir(dir)).filter((n) => n.startsWith(prefix) && n.endsWith('.tmp'));
      let size = 0;
      for (const n of names) size = Math.max(size, (await stat(resolve(dir, n)).catch(() => undefined))?.size ?? 0);
      if (!stopped && size > 0) onSize(size);
    } catch {
      // directory vanished or unreadable: nothing to show
    }
  };
  const timer = setInterval(() => void tick(), intervalMs);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

/**
 * Ctrl-C (SIGINT) or SIGTERM while working: abort the work through `signal` and remember which
 * signal came, so the command can exit with 128 + its number as shells expect. Aborting destroys
 * the pipeline, and whoever owns the temporary file (runPipeline, Envelope.encryptFile/decryptFile)
 * removes exactly that file: never `dst` (it appears only by rename), never another run's file.
 */
export function abortOnSignal(): { signal: AbortSignal; received(): NodeJS.Signals | undefined; uninstall(): void } {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const handler = (signal: NodeJS.Signals) => {
    received = signal;
    controller.abort();
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
  return {
    signal: controller.signal,
    received: () => received,
    uninstall: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
