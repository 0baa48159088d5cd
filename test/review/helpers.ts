/** Helpers shared by the review regression tests. */
import { pipeline } from 'node:stream/promises';
import { Readable, Writable } from 'node:stream';
import type { Envelope } from '../../src/index.js';

/**
 * Decrypts `message` through `envelope.decryptStream()`, fed in `chunk`-byte pieces; returns what
 * came out (also when it failed) and the error, if any.
 */
export async function streamThrough(envelope: Envelope, message: Buffer, chunk: number): Promise<{ out: Buffer; error: unknown }> {
  const out: Buffer[] = [];
  const chunks: Buffer[] = [];
  for (let o = 0; o < message.length; o += chunk) chunks.push(message.subarray(o, o + chunk));
  try {
    await pipeline(
      Readable.from(chunks),
      envelope.decryptStream(),
      new Writable({
        write(c: Buffer, _e, cb) {
          out.push(c);
          cb();
        },
      }),
    );
    return { out: Buffer.concat(out), error: undefined };
  } catch (error) {
    return { out: Buffer.concat(out), error };
  }
}
