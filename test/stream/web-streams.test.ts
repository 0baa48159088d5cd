/**
 * Web streams: `Duplex.toWeb()` turns both Transforms into `{ readable, writable }` pairs for
 * `ReadableStream.pipeThrough`. Documented in src/stream/index.ts and the README.
 */
import { describe, expect, it } from 'vitest';
import { Duplex, Readable } from 'node:stream';
import type { ReadableStream } from 'node:stream/web';
import { EnvelopeError } from '../../src/errors.js';
import { chunked, decryptStream, encrypt, encryptStream, prng, sha256 } from './helpers.js';

async function collect(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c);
  return Buffer.concat(parts);
}

describe('web streams', () => {
  it('round trip: ReadableStream -> encrypt -> decrypt via Duplex.toWeb', async () => {
    const data = prng(3_000_017, 77);
    const source = Readable.toWeb(Readable.from(chunked(data, [100_000, 7, 65_536]))) as ReadableStream<Uint8Array>;
    const encrypted = source.pipeThrough(Duplex.toWeb(encryptStream({ suiteId: 0x0578, frameLength: 65_536 })));
    const decrypted = encrypted.pipeThrough(Duplex.toWeb(decryptStream()));
    const out = await collect(decrypted as ReadableStream<Uint8Array>);
    expect(sha256(out)).toBe(sha256(data));
  });

  it('a truncated message errors the web stream with an EnvelopeError', async () => {
    const message = await encrypt(prng(100_000, 5), { frameLength: 4096 });
    const source = Readable.toWeb(Readable.from([message.subarray(0, message.length - 10)])) as ReadableStream<Uint8Array>;
    const decrypted = source.pipeThrough(Duplex.toWeb(decryptStream())) as ReadableStream<Uint8Array>;
    const error = await collect(decrypted).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(EnvelopeError);
    expect(error).toMatchObject({ code: 'ERR_MALFORMED_MESSAGE' });
  });
});
