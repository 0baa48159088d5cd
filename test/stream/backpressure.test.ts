/**
 * Backpressure and bounded buffering: with a slow consumer the streams do not read ahead, and a
 * single huge write is not turned into a huge queue of output (counts of buffered bytes, no timing).
 */
import { describe, expect, it } from 'vitest';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
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
    // At most two frames (a piece of 64 KiB is one frame) beyond the 16 KiB high-water mark on the
    // readable side: a frame goes out as pieces (header, ciphertext, tag), and Node asks for more
    // as soon as the consumer took the small header piece; one 256 KiB source chunk in progress on
    // the writable side. 32 MiB went through.
    expect(max.readable).toBeLessThanOrEqual(16 * 1024 + 2 * (65_536 + 32));
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

describe('parked chunks whose tail produces no output', () => {
  // Regression: a chunk parked on backpressure whose last piece only filled the engine's frame
  // buffer finished without a push, leaving Readable in its `reading` state with the write
  // callback parked by Transform: the pipeline stalled. Sizes chosen so every chunk is cut into
  // several pieces and the last chunk ends mid-frame.
  const cases = [
    ...[100_000, 150_000, 200_000, 262_144, 300_001].map((chunk) => ({ frameLength: 65_536, chunk, total: 3_000_017 })),
    { frameLength: 65_536, chunk: 262_144, total: 1_000_001 },
    { frameLength: 4096, chunk: 1 << 20, total: (3 << 20) + 100 },
    { frameLength: 1 << 20, chunk: 65_536, total: (5 << 20) + 1 },
  ];
  for (const c of cases) {
    it(`frame ${c.frameLength}, chunks of ${c.chunk}, ${c.total} bytes`, async () => {
      const data = prng(c.total, c.chunk);
      const sinkOptions = { highWaterMark: 262_144 };
      const ct = await new Promise<Buffer>((resolve, reject) => {
        const parts: Buffer[] = [];
        pipeline(
          source(data, c.chunk),
          encryptStream({ frameLength: c.frameLength }),
          new Writable({ ...sinkOptions, write: (b: Buffer, _e, cb) => (parts.push(b), setImmediate(cb)) }),
        ).then(() => resolve(Buffer.concat(parts)), reject);
      });
      const parts: Buffer[] = [];
      await pipeline(
        source(ct, c.chunk),
        decryptStream(),
        new Writable({ ...sinkOptions, write: (b: Buffer, _e, cb) => (parts.push(b), setImmediate(cb)) }),
      );
      expect(sha256(Buffer.concat(parts))).toBe(sha256(data));
    }, 5_000);
  }
});

/** A file-like source: `size`-byte chunks, read ahead up to one chunk (as fs.createReadStream). */
function source(b: Buffer, size: number): Readable {
  let o = 0;
  return new Readable({
    highWaterMark: size,
    read() {
      setImmediate(() => {
        this.push(o < b.length ? b.subarray(o, (o += size)) : null);
      });
    },
  });
}

describe('randomized pipelines never stall', () => {
  // Seeded configurations of frame length, source chunking and read-ahead, and sink speed and
  // buffering; each must complete with the right bytes (a stall shows up as a timeout).
  const r = prng(4 * 8 * 40, 1234);
  let k = 0;
  const next = (n: number) => r.readUInt32BE((k++ % (r.length / 4)) * 4) % n;
  const configs = Array.from({ length: 40 }, () => {
    const frameLength = [1, 13, 4096, 65_536, 1 << 20][next(5)]!;
    const total = Math.min(next(3_000_000), frameLength * 5_000);
    // At most ~5,000 source chunks per case (1-byte chunks are covered in roundtrip.test.ts).
    const chunk = Math.max(1 + next([1, 1000, 70_000, 300_000, 2_000_000][next(5)]!), Math.ceil(total / 5000));
    return {
      frameLength,
      total,
      chunk,
      sinkHwm: [1, 16_384, 262_144][next(3)]!,
      asyncSink: next(2) === 1,
      asyncSource: next(2) === 1,
    };
  });
  for (const c of configs) {
    it(JSON.stringify(c), async () => {
      const data = prng(c.total, c.total + 1);
      let o = 0;
      const src = new Readable({
        highWaterMark: c.chunk,
        read() {
          const push = () => this.push(o < data.length ? data.subarray(o, (o += c.chunk)) : null);
          if (c.asyncSource) setImmediate(push);
          else push();
        },
      });
      const hash = createHash('sha256');
      await pipeline(
        src,
        encryptStream({ frameLength: c.frameLength }),
        decryptStream(),
        new Writable({
          highWaterMark: c.sinkHwm,
          write(b: Buffer, _e, cb) {
            hash.update(b);
            if (c.asyncSink) setImmediate(cb);
            else cb();
          },
        }),
      );
      expect(hash.digest('hex')).toBe(sha256(data));
    }, 10_000);
  }
});
