/**
 * Moves bytes from the input through an encrypt or decrypt step to the output, the same way for
 * both commands: file to file through `Envelope.encryptFile`/`decryptFile` (temp + rename), every
 * other combination through the stream Transforms with `pipeline`, a file output again through a
 * temporary file. Draws the progress bar when stderr is a terminal.
 */
import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Transform } from 'node:stream';
import { CliError } from './errors.js';
import { abortOnSignal, inputStream, isReplaceableFile, runPipeline, type Endpoint, type Io } from './io.js';
import { Progress } from './progress.js';

export interface TransferPlan {
  label: 'encrypt' | 'decrypt';
  input: Endpoint;
  output: Endpoint;
  quiet: boolean;
  /** Output file mode for the temporary file: plaintext is private (0600), ciphertext is not. */
  mode: number;
  /** File to file, atomically; `signal` aborts it (the temporary file is removed). */
  file(src: string, dst: string, signal: AbortSignal): Promise<void>;
  /** The Transform for the streamed path; `length` is the input size when known. */
  stream(length: number | undefined): Transform;
}

export async function transfer(plan: TransferPlan, io: Io): Promise<void> {
  const { input, output } = plan;
  const total = input.kind === 'file' && input.stats?.isFile() ? input.stats.size : undefined;
  const progress = plan.quiet ? undefined : new Progress({ label: plan.label, total, out: io.stderr, delayMs: progressDelay(io.env) });
  const showing = progress?.enabled === true;
  const interrupt = abortOnSignal();
  try {
    // With the bar showing, file to file runs through the streamed path as well, whose input the
    // bar can meter: the library's file helpers do not report progress, and the size of their
    // output counts the wrong bytes (a message is larger than its plaintext, smaller on decrypt).
    // The streamed path keeps the same guarantees: temporary file, fsync, rename; the input size
    // declared to the encryptor (a file that changes size fails, as in encryptFile).
    if (!showing && input.kind === 'file' && input.stats?.isFile() && output.kind === 'file' && isReplaceableFile(output)) {
      await plan.file(input.path, output.path, interrupt.signal);
      return;
    }
    const source = inputStream(input, io);
    const transforms = [plan.stream(total)];
    if (showing) transforms.unshift(progress!.meter());
    await runPipeline(source, transforms, output, io, plan.mode, interrupt.signal);
    progress?.finish();
  } catch (err) {
    const signal = interrupt.received();
    if (signal !== undefined) {
      throw new CliError('ERR_INTERRUPTED', `interrupted by ${signal}; no output was written`, {
        exit: signal === 'SIGINT' ? 130 : 143,
      });
    }
    throw explainTempFileError(err, output);
  } finally {
    interrupt.uninstall();
    progress?.done();
  }
}

/**
 * `-o DIR/NAME` whose DIR does not exist (or is not a directory): said about the path the user
 * gave, before any KMS call, rather than as an error on the hidden temporary file that would be
 * created next to it.
 */
export async function checkOutputDirectory(spec: string | undefined, output: Endpoint): Promise<void> {
  if (output.kind !== 'file' || output.stats !== undefined) return;
  const parent = dirname(output.path);
  let info: Stats;
  try {
    info = await stat(parent);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const why = code === 'ENOENT' ? 'does not exist' : code === 'ENOTDIR' ? 'is not a directory' : `cannot be read (${code})`;
    throw new CliError('ERR_IO', `-o ${JSON.stringify(spec)}: the directory ${JSON.stringify(parent)} ${why}`, { cause: err });
  }
  if (!info.isDirectory()) {
    throw new CliError('ERR_IO', `-o ${JSON.stringify(spec)}: ${JSON.stringify(parent)} is not a directory`);
  }
}

/**
 * A file-system error on the temporary file next to `-o FILE` (`.FILE.<random>.tmp`, see
 * tempPathFor), said about FILE: the user never named the temporary file.
 */
function explainTempFileError(err: unknown, output: Endpoint): unknown {
  if (output.kind !== 'file') return err;
  const e = err as NodeJS.ErrnoException;
  if (!(err instanceof Error) || typeof e.code !== 'string' || typeof e.path !== 'string') return err;
  const name = basename(e.path);
  if (dirname(e.path) !== dirname(output.path) || !name.startsWith(`.${basename(output.path)}.`) || !name.endsWith('.tmp')) {
    return err;
  }
  return new CliError(
    'ERR_IO',
    `-o ${JSON.stringify(output.path)}: cannot write the temporary file in its directory (${e.syscall ?? 'write'}: ${e.code})`,
    { cause: err },
  );
}

/**
 * KMS_ENVELOPE_PROGRESS_DELAY_MS: test-only (src/cli/README.md). Milliseconds of work before the
 * bar appears, default 1000, so tests on a pseudo-terminal see it without a large input.
 */
function progressDelay(env: NodeJS.ProcessEnv): number | undefined {
  const v = env.KMS_ENVELOPE_PROGRESS_DELAY_MS;
  return v !== undefined && /^[0-9]{1,7}$/.test(v) ? Number(v) : undefined;
}
