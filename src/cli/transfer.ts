/**
 * Moves bytes from the input through an encrypt or decrypt step to the output, the same way for
 * both commands: file to file through `Envelope.encryptFile`/`decryptFile` (temp + rename), every
 * other combination through the stream Transforms with `pipeline`, a file output again through a
 * temporary file. Draws the progress bar when stderr is a terminal.
 */
import type { Transform } from 'node:stream';
import { CliError } from './errors.js';
import { abortOnSignal, inputStream, isReplaceableFile, pollTempFile, runPipeline, type Endpoint, type Io } from './io.js';
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
  const progress = plan.quiet ? undefined : new Progress({ label: plan.label, total, out: io.stderr });
  const showing = progress?.enabled === true;
  const interrupt = abortOnSignal();
  try {
    if (input.kind === 'file' && input.stats?.isFile() && output.kind === 'file' && isReplaceableFile(output)) {
      const stop = showing ? pollTempFile(output.path, (n) => progress!.set(n)) : () => {};
      try {
        await plan.file(input.path, output.path, interrupt.signal);
      } finally {
        stop();
      }
      return;
    }
    const source = inputStream(input, io);
    const transforms = [plan.stream(total)];
    if (showing) transforms.unshift(progress!.meter());
    await runPipeline(source, transforms, output, io, plan.mode, interrupt.signal);
  } catch (err) {
    const signal = interrupt.received();
    if (signal !== undefined) {
      throw new CliError('ERR_INTERRUPTED', `interrupted by ${signal}; no output was written`, {
        exit: signal === 'SIGINT' ? 130 : 143,
      });
    }
    throw err;
  } finally {
    interrupt.uninstall();
    progress?.done();
  }
}
