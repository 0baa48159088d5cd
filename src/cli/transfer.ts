/**
 * Moves bytes from the input through an encrypt or decrypt step to the output, the same way for
 * both commands and every combination of ends: the stream Transform with `pipeline`, a file output
 * through a temporary file put in place at the end (io.ts runPipeline). Draws the progress bar
 * when stderr is a terminal.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { CliError } from './errors.js';
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
  const progress = plan.quiet ? undefined : new Progress({ label: plan.label, total, out: io.stderr });
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
  } catch (err) {
    const signal = interrupt.received();
    if (signal !== undefined) {
      throw new CliError('ERR_INTERRUPTED', `interrupted by ${signal}; ${whatWasWritten(output, tally?.bytes ?? 0)}`, {
        exit: signalExitCode(signal),
      });
    }
    throw err;
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
