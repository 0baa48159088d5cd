import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { open, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StreamError } from '../errors.js';
import { tempPathFor } from './temp-name.js';

/**
 * File helpers: encrypt or decrypt a whole file through a stream, writing to a temporary file in
 * the destination's directory and renaming it into place only after every byte is written and
 * flushed to disk. rename(2) within one directory is atomic, so `dst` is either untouched or
 * complete; a failed decryption never leaves partial (unauthenticated) plaintext behind.
 */

/** Read size for the source file: large enough to amortize per-chunk stream overhead, still small. */
const READ_CHUNK_BYTES = 256 * 1024;

/**
 * Encrypts `src` into `dst`. `makeStream` receives the source's size in bytes so the caller can
 * declare the plaintext length up front (the data-key cache accounts for it before the first byte).
 * If the file changes size while it is read, the encryption fails and `dst` is left untouched.
 */
export async function encryptFile(
  src: string,
  dst: string,
  makeStream: (plaintextLength: number) => Transform,
  signal?: AbortSignal,
): Promise<void> {
  checkPath(src, 'src');
  checkPath(dst, 'dst');
  if (typeof makeStream !== 'function') throw new TypeError('makeStream must be a function');
  const info = await stat(src);
  if (!info.isFile()) throw new TypeError('src must be a regular file (its size is the plaintext length)');
  const size = info.size;
  // Ciphertext is not secret: the temp file gets the usual mode (0666 less the umask).
  await throughTempFile(src, dst, 0o666, () => makeStream(size), signal, (bytesRead) => {
    if (bytesRead !== size) throw new StreamError('source file changed size while it was encrypted');
  });
}

/**
 * Decrypts `src` into `dst` through a temporary file (mode 0600: it holds plaintext) that is renamed
 * into place only after the stream ended without error, i.e. after every frame tag and the
 * signature verified. On any failure the temporary file is removed and `dst` is left untouched.
 */
export async function decryptFile(
  src: string,
  dst: string,
  makeStream: () => Transform,
  signal?: AbortSignal,
): Promise<void> {
  checkPath(src, 'src');
  checkPath(dst, 'dst');
  if (typeof makeStream !== 'function') throw new TypeError('makeStream must be a function');
  await throughTempFile(src, dst, 0o600, makeStream, signal, undefined);
}

async function throughTempFile(
  src: string,
  dst: string,
  mode: number,
  makeStream: () => Transform,
  signal: AbortSignal | undefined,
  checkRead: ((bytesRead: number) => void) | undefined,
): Promise<void> {
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('options.signal must be an AbortSignal');
  signal?.throwIfAborted();
  const tmp = tempPathFor(dst);
  let renamed = false;
  let output: WriteStream | undefined;
  try {
    // The transform first: its factory validates options and may throw, and must not leave the
    // source's descriptor open behind it.
    const transform = makeStream();
    const input = createReadStream(src, { highWaterMark: READ_CHUNK_BYTES });
    // 'wx': fail rather than follow or clobber anything already at the (random) temp path.
    output = createWriteStream(tmp, { flags: 'wx', mode, highWaterMark: READ_CHUNK_BYTES });
    // Resolves once the output stream flushed and closed its descriptor.
    // An abort (e.g. Ctrl-C in the CLI) destroys the streams and lands in `finally` below, which
    // removes exactly this run's temporary file.
    await pipeline(input, transform, output, signal === undefined ? {} : { signal });
    checkRead?.(input.bytesRead);
    // Data must be on disk before the rename makes it visible under the final name; otherwise a
    // crash could leave `dst` naming an empty or partial file. fsync(2) flushes the file's data
    // whichever descriptor it is called on.
    await syncFile(tmp);
    await rename(tmp, dst);
    renamed = true;
    // Make the rename itself durable (the directory entry lives in the directory's data). Some
    // platforms and file systems cannot fsync a directory; the file data is synced already.
    await syncPath(dirname(dst), 'r').catch(() => undefined);
  } finally {
    if (!renamed) {
      // A pipeline that failed early (the source could not be opened) may reject while the
      // temporary file's open is still pending: the destroyed stream opens it, then closes it.
      // Unlinking before that 'close' would run ahead of the open and leave the file behind.
      if (output !== undefined && !output.closed) await new Promise<void>((resolve) => output!.once('close', () => resolve()));
      await unlink(tmp).catch(() => undefined);
    }
  }
}

/** fsync a file (`r+`) or a directory (`r`) by path. */
export async function syncPath(path: string, flags: string): Promise<void> {
  const handle = await open(path, flags);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * fsync a file we just wrote, by path. The file may be read-only by now: it was created with the
 * caller's mode under the process umask (0o600 at most for plaintext, and a umask such as 0o222
 * leaves no write bit), and opening it for writing again would fail with EACCES. fsync(2) flushes
 * the file whichever descriptor it is called on, and POSIX systems accept it on a read-only one;
 * Windows needs write access, which a writable file still gets from the first attempt.
 */
export async function syncFile(path: string): Promise<void> {
  try {
    await syncPath(path, 'r+');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw e;
    await syncPath(path, 'r');
  }
}

function checkPath(p: unknown, name: string): void {
  if (typeof p !== 'string' || p.length === 0) throw new TypeError(`${name} must be a non-empty file path string`);
}
