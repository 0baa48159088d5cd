/**
 * Backpressure and bounded buffering: with a slow consumer the streams do not read ahead, and a
 * single huge write is not turned into a huge queue of output (counts of buffered bytes, no timing).
 */
import { describe, expect, it } from 'vitest';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decryptStream, encrypt, encryptStream, prng, sha256 } from './helpers.js';

interface Sample {
  readable: number;
  writable: number;
  inFlight: number;
}

/**
 * Pipes `total` bytes from a fast source through `t` into a consumer that takes one macrotask per
 * chunk; samples the transform's buffered bytes and the bytes produced by the source but not yet
 * matched by the consumer. Returns the maxima and the SHA-256 of what the consumer received.
 */
async function slowPipeline(t: Transform, source: Buffer, chunkSize: number, outputRatio: number) {
  let produced = 0;
  let consumed = 0;
  const max: Sample = { readable: 0, writable: 0, inFlight: 0 };
  const out: Buffer[] = [];
  let offset = 0;
  const src = new Readable({
    highWaterMark: chunkSize,
    read() {
      if (offset >= source.length) {
        this.push(null);
        return;
      }
      const c = source.subarray(offset, offset + chunkSize);
      offset += c.length;
      produced += c.length;
      this.push(c);
    },
  });
  const sink = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _e, cb) {
      out.push(chunk);
      consumed += chunk.length;
      max.readable = Math.max(max.readable, t.readableLength);
      max.writable = Math.max(max.writable, t.writableLength);
      max.inFlight = Math.max(max.inFlight, produced - consumed / outputRatio);
      setImmediate(cb);
    },
  });
  await pipeline(src, t, sink);
  return { max, digest: sha256(Buffer.concat(out)) };
}

describe('backpressure with a slow consumer', () => {
  const data = prng(32 << 20, 21);

  it('encryptStream reads ahead a bounded amount', async () => {
    const { max } = await slowPipeline(encryptStream({ frameLength: 65_536 }), data, 256 * 1024, 1);
    // One piece (64 KiB -> one frame) beyond the 16 KiB high-water mark on the readable side; one
    // 256 KiB source chunk in progress on the writable side. 32 MiB went through.
    expect(max.readable).toBeLessThanOrEqual(16 * 1024 + 65_536 + 64);
    expect(max.writable).toBeLessThanOrEqual(256 * 1024);
    expect(max.inFlight).toBeLessThan(1 << 20);
  });

  it('decryptStream reads ahead a bounded amount', async () => {
    const ct = await encrypt(data, { frameLength: 65_536 });
    const { max, digest } = await slowPipeline(decryptStream(), ct, 256 * 1024, 1);
    expect(digest).toBe(sha256(data));
    expect(max.readable).toBeLessThanOrEqual(16 * 1024 + 2 * 65_536);
    expect(max.writable).toBeLessThanOrEqual(256 * 1024);
    expect(max.inFlight).toBeLessThan(1 << 20);
  });
});

/** Writes one huge chunk and reads slowly via 'readable'; returns the largest readable buffer seen. */
async function hugeWrite(t: Transform, chunk: Buffer): Promise<{ maxReadable: number; out: Buffer }> {
  let maxReadable = 0;
  const out: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    t.on('error', reject);
    t.on('end', resolve);
  });
  t.end(chunk);
  // A slow consumer: one read per macrotask. Bytes pushed synchronously inside read() are counted
  // too (they are either returned by that read or left in the buffer).
  const take = (): boolean => {
    const before = t.readableLength;
    const c = t.read() as Buffer | null;
    maxReadable = Math.max(maxReadable, before, t.readableLength + (c?.length ?? 0));
    if (c === null) return false;
    out.push(c);
    return true;
  };
  t.on('readable', () => {
    setImmediate(take);
  });
  await done;
  return { maxReadable, out: Buffer.concat(out) };
}

describe('a single huge write is paced', () => {
  const big = prng(24 << 20, 33);

  it('encrypt: 24 MiB in one write never has more than ~2 frames queued', async () => {
    const { maxReadable, out } = await hugeWrite(encryptStream({ frameLength: 65_536 }), big);
    expect(maxReadable).toBeLessThanOrEqual(2 * (65_536 + 64) + 16 * 1024 + 1024);
    // Round trip of the paced output.
    const back: Buffer[] = [];
    await pipeline(Readable.from([out]), decryptStream(), new Writable({ write: (c, _e, cb) => (back.push(c), cb()) }));
    expect(Buffer.concat(back).equals(big)).toBe(true);
  });

  it('decrypt: a 24 MiB message in one write never has more than ~2 frames of plaintext queued', async () => {
    const ct = await encrypt(big, { frameLength: 65_536 });
    const { maxReadable, out } = await hugeWrite(decryptStream(), ct);
    expect(out.equals(big)).toBe(true);
    expect(maxReadable).toBeLessThanOrEqual(2 * 65_536 + 16 * 1024);
  });
});
