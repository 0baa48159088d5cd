/**
 * Stream round trips: sizes around frame boundaries, both suites, several frame lengths, and
 * chunkings (1-byte writes, random chunk sizes, one huge write) that must all give the same result.
 */
import { describe, expect, it } from 'vitest';
import { parseHeader } from '../../src/format/header.js';
import { framedBodyLength } from '../../src/format/body.js';
import { maxSignatureLength } from '../../src/format/footer.js';
import { SUITES } from '../../src/format/suites.js';
import { chunked, decryptStream, encrypt, encryptStream, prng, run, sha256 } from './helpers.js';

/** Random chunk sizes from a seeded generator (1 .. max). */
function randomSizes(seed: number, count: number, max: number): number[] {
  const r = prng(count * 4, seed);
  return Array.from({ length: count }, (_, i) => 1 + (r.readUInt32BE(i * 4) % max));
}

describe('encryptStream -> decryptStream', () => {
  for (const suiteId of [0x0478, 0x0578]) {
    for (const frameLength of [1, 100, 4096]) {
      const sizes = [0, 1, frameLength - 1, frameLength, frameLength + 1, 3 * frameLength, 10_007].filter(
        (n, i, a) => n >= 0 && a.indexOf(n) === i,
      );
      for (const size of sizes) {
        it(`suite 0x0${suiteId.toString(16)} frame ${frameLength} size ${size}`, async () => {
          const data = prng(size, size + frameLength);
          const ct = await encrypt(data, { suiteId, frameLength, context: { purpose: 'test', size: String(size) } });
          // The message has exactly the ESDK layout: header + framed body (+ footer).
          const header = parseHeader(ct, { maxEncryptedDataKeys: 10 })!;
          expect(header.frameLength).toBe(frameLength);
          expect(header.suite.id).toBe(suiteId);
          expect(header.context.purpose).toBe('test');
          const body = framedBodyLength(size, frameLength);
          if (suiteId === 0x0478) expect(ct.length).toBe(header.length + body);
          else {
            expect(ct.length).toBeGreaterThan(header.length + body + 2);
            expect(ct.length).toBeLessThanOrEqual(header.length + body + 2 + maxSignatureLength(SUITES.get(suiteId)!));
          }
          const dec = decryptStream();
          let seenHeader: unknown;
          dec.on('header', (h) => (seenHeader = h));
          const pt = await run(dec, chunked(ct, [frameLength + 3, 5]));
          expect(pt.equals(data)).toBe(true);
          expect((seenHeader as { suite: { id: number } }).suite.id).toBe(suiteId);
          expect(dec.header).toBe(seenHeader);
        });
      }
    }
  }
});

describe('chunking does not change results', () => {
  const data = prng(200_003, 42);
  const digest = sha256(data);
  const chunkings: Record<string, (b: Buffer) => Buffer[]> = {
    'one write': (b) => [b],
    '1-byte writes': (b) => chunked(b, [1]),
    'random sizes up to 100 KiB': (b) => chunked(b, randomSizes(7, 500, 100_000)),
    'random sizes up to 50 bytes': (b) => chunked(b, randomSizes(9, 500, 50)),
    'frame-sized writes': (b) => chunked(b, [4096]),
  };
  for (const suiteId of [0x0478, 0x0578]) {
    for (const [name, split] of Object.entries(chunkings)) {
      it(`suite 0x0${suiteId.toString(16)}: encrypt and decrypt with ${name}`, async () => {
        const ct = await run(encryptStream({ suiteId, frameLength: 4096 }), split(data));
        // Same plaintext -> same message length whatever the write sizes (only the id, keys differ).
        const ref = await encrypt(data, { suiteId, frameLength: 4096 });
        if (suiteId === 0x0478) expect(ct.length).toBe(ref.length);
        const pt = await run(decryptStream(), split(ct));
        expect(sha256(pt)).toBe(digest);
      });
    }
  }

  it('an encrypted message decrypts identically under many chunkings', async () => {
    const ct = await encrypt(data, { frameLength: 1000 });
    for (let seed = 1; seed <= 10; seed++) {
      const pt = await run(decryptStream(), chunked(ct, randomSizes(seed, 1000, seed * 997)));
      expect(sha256(pt)).toBe(digest);
    }
  });

  it('a single 16 MiB write is cut into frames', async () => {
    const big = prng(16 << 20, 3);
    const ct = await run(encryptStream({ frameLength: 65_536 }), [big]);
    const pt = await run(decryptStream(), [ct]);
    expect(pt.equals(big)).toBe(true);
  });
});

describe('stream contract', () => {
  it('accepts string and Uint8Array writes', async () => {
    const enc = encryptStream();
    const out: Buffer[] = [];
    enc.on('data', (b: Buffer) => out.push(b));
    const done = new Promise((r) => enc.on('end', r));
    enc.write('héllo ');
    enc.write(new Uint8Array([119, 111, 114, 108, 100]));
    enc.end();
    await done;
    const pt = await run(decryptStream(), [Buffer.concat(out)]);
    expect(pt.toString('utf8')).toBe('héllo world');
  });

  it('declared plaintextLength: exact length succeeds; longer and shorter inputs fail with ERR_STREAM', async () => {
    const data = prng(10_000, 5);
    const ct = await run(encryptStream({ plaintextLength: 10_000 }), chunked(data, [3000]));
    expect((await run(decryptStream(), [ct])).equals(data)).toBe(true);
    await expect(run(encryptStream({ plaintextLength: 9_999 }), chunked(data, [3000]))).rejects.toMatchObject({
      code: 'ERR_STREAM',
      message: expect.stringContaining('longer'),
    });
    await expect(run(encryptStream({ plaintextLength: 10_001 }), chunked(data, [3000]))).rejects.toMatchObject({
      code: 'ERR_STREAM',
      message: expect.stringContaining('shorter'),
    });
    await expect(run(encryptStream({ plaintextLength: 1 }), [])).rejects.toMatchObject({ code: 'ERR_STREAM' });
    // Zero declared, zero given: a valid empty message.
    const empty = await run(encryptStream({ plaintextLength: 0 }), []);
    expect((await run(decryptStream(), [empty])).length).toBe(0);
  });

  it('rejects bad deps', () => {
    expect(() => encryptStream({ plaintextLength: -1 })).toThrow(RangeError);
    expect(() => encryptStream({ plaintextLength: 1.5 })).toThrow(RangeError);
  });
});
