/**
 * Moves bytes from the input through an encrypt or decrypt step to the output, the same way for
 * both commands and every combination of ends: the stream Transform with `pipeline`, a file output
 * through a temporary file put in place at the end (io.ts runPipeline). Draws the progress bar
 * when stderr is a terminal.
 */
import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { CliError } from './errors.js';
import { TEMP_MARK } from '../stream/temp-name.js';
import { abortOnSignal, inputStream, isReplaceableFile, runPipeline, signalExitCode, type Endpoint, type Io } from './io.js';
import { Progress } from './progress.js';

export interface TransferPlan {
  label: 'encrypt' | 'decrypt';
  input: Endpoint;
  output: Endpoint;
  quiet: boolean;
  /** Output file mode for the temporary file: plaintext is private (0600), ciphertext is not. */
  mode: number;
  /** Replace an existing output file (--force); checked before any KMS call by checkOverwrite. */
  force: boolean;
  /** The Transform; `length` is the input size when known (a file: encrypt checks it did not change). */
  stream(length: number | undefined): Transform;
}

/** Counts the bytes handed to an output written in place (stdout, a device, a FIFO). */
class Tally extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

export async function transfer(plan: TransferPlan, io: Io): Promise<void> {
  const { input, output } = plan;
  const total = input.kind === 'file' && input.stats?.isFile() ? input.stats.size : undefined;
  const progress = plan.quiet ? undefined : new Progress({ label: plan.label, total, out: io.stderr, delayMs: progressDelay(io.env) });
  const transforms = [plan.stream(total)];
  if (progress?.enabled === true) transforms.unshift(progress.meter());
  // Outputs written in place may hold part of the result when the run stops; temp+rename ones never do.
  const tally = isReplaceableFile(output) ? undefined : new Tally();
  if (tally !== undefined) transforms.push(tally);
  const interrupt = abortOnSignal();
  try {
    await runPipeline(inputStream(input, io), transforms, output, io, {
      mode: plan.mode,
      signal: interrupt.signal,
      replace: plan.force,
    });
    progress?.finish();
  } catch (err) {
    const signal = interrupt.received();
    if (signal !== undefined) {
      throw new CliError('ERR_INTERRUPTED', `interrupted by ${signal}; ${whatWasWritten(output, tally?.bytes ?? 0)}`, {
        exit: signalExitCode(signal),
      });
    }
    throw explainTempFileError(err, output);
  } finally {
    interrupt.uninstall();
    progress?.done();
  }
}

/** What an interrupted run leaves at its output, said truthfully. */
function whatWasWritten(output: Endpoint, bytes: number): string {
  if (output.kind === 'file' && isReplaceableFile(output)) return 'no output was written';
  const where = output.kind === 'std' ? 'stdout' : JSON.stringify(output.path);
  return bytes === 0 ? `nothing was written to ${where}` : `output on ${where} is incomplete (${bytes} bytes written)`;
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
 * A file-system error on the temporary file next to `-o FILE` (named by src/stream/temp-name.ts tempPathFor), said
 * about FILE: the user never named the temporary file.
 */
function explainTempFileError(err: unknown, output: Endpoint): unknown {
  if (output.kind !== 'file') return err;
  const e = err as NodeJS.ErrnoException;
  if (!(err instanceof Error) || typeof e.code !== 'string' || typeof e.path !== 'string') return err;
  const name = basename(e.path);
  if (dirname(e.path) !== dirname(output.path) || !name.startsWith('.') || !name.includes(`.${TEMP_MARK}-`) || !name.endsWith('.tmp')) {
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
