/**
 * Input and output endpoints of the CLI: files, stdin/stdout, and the temp+rename discipline for
 * files (the same steps as `Envelope.encryptFile`: a hidden temporary file next to the target,
 * fsync, rename), so an interrupted or failed run never leaves a partial file, and a failed
 * decryption never leaves unauthenticated plaintext, under the target name.
 *
 * Temporary names come from src/stream/temp-name.ts, as the library's file helpers' do: the name
 * carries the writing process's id, so a file left by a run that was killed outright (SIGKILL,
 * power loss) can be recognized, and the CLI removes it on the next run into the same target.
 */
import { createReadStream, createWriteStream, realpathSync, type Stats, type WriteStream } from 'node:fs';
import { link, lstat, rename, stat, unlink } from 'node:fs/promises';
import { once } from 'node:events';
import { constants as osConstants } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { syncFile, syncPath } from '../stream/files.js';
import { sweepStaleTemps, tempPathFor } from '../stream/temp-name.js';
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
 * Refuses an output that already exists unless `force`: `-o FILE` replaces FILE by rename, and
 * doing that silently has cost people the original of a file they meant to decrypt next to it.
 * Checked before any KMS request. A dangling symbolic link counts as existing (the rename would
 * replace the link). Devices and FIFOs (`/dev/null`, `>(cmd)`) are written in place, never
 * replaced, so they need no --force. The check is repeated atomically when the result is put in
 * place (publish), for a file that appears while the command works.
 */
export async function checkOverwrite(output: Endpoint, force: boolean): Promise<void> {
  if (force || output.kind !== 'file' || !isReplaceableFile(output)) return;
  const existing = output.stats ?? (await lstat(output.path).catch(() => undefined));
  if (existing !== undefined) throw outputExists(output.path);
}

function outputExists(path: string): Error {
  return usage(`-o ${JSON.stringify(path)} exists; add --force to replace it, or choose another output name`);
}

/**
 * Puts the finished temporary file in place. With `replace`, rename(2): atomic, replaces whatever
 * is there. Without it, link(2) + unlink(2): link never replaces an existing name (EEXIST), which
 * closes the gap between checkOverwrite and now. File systems without hard links fall back to a
 * check and a rename (a file created in between would still be replaced there).
 */
async function publish(tmp: string, dst: string, replace: boolean): Promise<void> {
  if (replace) {
    await rename(tmp, dst);
    return;
  }
  try {
    await link(tmp, dst);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw outputExists(dst);
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK'].includes(code ?? '')) throw err;
    if ((await lstat(dst).catch(() => undefined)) !== undefined) throw outputExists(dst);
    await rename(tmp, dst);
    return;
  }
  // The output is complete under its name; a temporary name that cannot be removed now is a
  // second link to it, swept by the next run (its process will be gone).
  await unlink(tmp).catch(() => undefined);
}

export interface WriteOptions {
  /** Mode of a new output file (less the umask): plaintext 0o600, ciphertext 0o666. */
  mode: number;
  /** Aborts the work (a signal); the temporary file is removed. */
  signal?: AbortSignal | undefined;
  /** Replace an existing output file (--force). Default false: an existing file is an error. */
  replace?: boolean | undefined;
}

/**
 * Runs `source -> ...transforms -> output`. A replaceable file output is written through a
 * temporary file (tempPathFor) put in place (publish) only after the whole pipeline succeeded;
 * stale temporary files of killed runs for the same target are swept first. Devices and FIFOs
 * (e.g. /dev/null) are written directly: they cannot be renamed over.
 */
export async function runPipeline(
  source: Readable,
  transforms: Transform[],
  output: Endpoint,
  io: Io,
  options: WriteOptions,
): Promise<void> {
  const pipelineOptions = options.signal === undefined ? {} : { signal: options.signal };
  if (output.kind === 'std') {
    // stdout stays open after the pipeline (end() on process.stdout does not close fd 1).
    await pipeline([source, ...transforms, io.stdout], pipelineOptions);
    return;
  }
  if (!isReplaceableFile(output)) {
    await pipeline([source, ...transforms, createWriteStream(output.path, { flags: 'w' })], pipelineOptions);
    return;
  }
  await sweepStaleTemps(output.path);
  // A signal during the sweep: create nothing.
  options.signal?.throwIfAborted();
  const tmp = tempPathFor(output.path);
  let published = false;
  let sink: WriteStream | undefined;
  try {
    // 'wx': never follow or clobber anything at the (random) temp path.
    sink = createWriteStream(tmp, { flags: 'wx', mode: options.mode, highWaterMark: 256 * 1024 });
    await pipeline([source, ...transforms, sink], pipelineOptions);
    // The same steps as the library's file helpers (src/stream/files.ts): the data is on disk
    // before the rename makes it visible under the target name (fsync reaches the file's data
    // through any descriptor; the stream's own `flush` option needs Node >= 20.10, and we support
    // every Node 20), then the rename itself is made durable by syncing the directory that holds
    // the entry. Some platforms cannot fsync a directory; the file's data is synced already.
    await syncFile(tmp);
    await publish(tmp, output.path, options.replace === true);
    published = true;
    await syncPath(dirname(output.path), 'r').catch(() => undefined);
  } finally {
    if (!published) {
      // An abort right after createWriteStream can come while its open(2) is still running: the
      // stream closes the descriptor once open returns. Remove the file after that, not before.
      if (sink !== undefined && !sink.closed) await once(sink, 'close').catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
    }
  }
}

/**
 * Signals that stop the work like Ctrl-C: SIGINT (Ctrl-C), SIGTERM (kill, service managers),
 * SIGHUP (the terminal went away), SIGQUIT (Ctrl-\). Left to their default action they would end
 * the process at once, leaving the temporary file with partial plaintext behind. SIGKILL cannot be
 * caught: what it leaves is recognizable and swept (tempPathFor, sweepStaleTemps).
 */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const;

/** The exit status shells use for death by `signal`: 128 + its number (130 SIGINT, 143 SIGTERM, 129 SIGHUP, 131 SIGQUIT). */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (osConstants.signals[signal] ?? 2);
}

/**
 * A stop signal while working: abort the work through `signal` and remember which signal came, so
 * the command can exit with 128 + its number as shells expect. Aborting destroys the pipeline, and
 * runPipeline removes exactly its own temporary file: never `dst` (it appears only by rename),
 * never another run's file. Each handler is installed once: a second signal of the same kind gets
 * the default action (ends the process at once), for a run that does not stop.
 */
export function abortOnSignal(): { signal: AbortSignal; received(): NodeJS.Signals | undefined; uninstall(): void } {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const handler = (signal: NodeJS.Signals) => {
    received ??= signal;
    controller.abort();
  };
  const installed: NodeJS.Signals[] = [];
  for (const s of STOP_SIGNALS) {
    // Windows has no SIGQUIT; a signal the platform lacks is skipped rather than an error.
    if (osConstants.signals[s] === undefined) continue;
    process.once(s, handler);
    installed.push(s);
  }
  return {
    signal: controller.signal,
    received: () => received,
    uninstall: () => {
      for (const s of installed) process.off(s, handler);
    },
  };
}
