/**
 * Hostile and damaged input to decryptStream: truncation at many offsets, extension, flipped bits,
 * reordered / duplicated / dropped frames, the final-frame hold for signed suites, errors from
 * dataKey(), and zeroing of the data key copies in every way a stream can end.
 */
import { describe, expect, it } from 'vitest';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EnvelopeError, KmsError } from '../../src/errors.js';
import { parseHeader } from '../../src/format/header.js';
import { createDecryptStream } from '../../src/stream/index.js';
import { chunked, decryptStream, encrypt, encryptStream, prng, runCollect } from './helpers.js';

const FRAME = 1000;
const PLAINTEXT = prng(20_500, 11); // 20 full frames + a 500-byte final frame
const FRAME_BYTES = 4 + 12 + FRAME + 16;

function isPrefix(out: Buffer, of: Buffer): boolean {
  return out.length <= of.length && out.equals(of.subarray(0, out.length));
}

/** Offsets from a seeded generator in [1, max). */
function offsets(count: number, max: number, seed: number): number[] {
  const r = prng(count * 4, seed);
  return Array.from({ length: count }, (_, i) => 1 + (r.readUInt32BE(i * 4) % (max - 1)));
}

async function expectRejected(message: Buffer, options: Parameters<typeof decryptStream>[0] = {}, sizes = [4096]) {
  const { out, error } = await runCollect(decryptStream(options), chunked(message, sizes));
  expect(error).toBeInstanceOf(EnvelopeError);
  expect(isPrefix(out, PLAINTEXT)).toBe(true);
  return { out, error: error as EnvelopeError };
}

describe.each([
  { suiteId: 0x0478, name: '0x0478' },
  { suiteId: 0x0578, name: '0x0578' },
])('suite $name', ({ suiteId }) => {
  let message: Buffer;
  let headerLength: number;

  it('setup: encrypts the reference message', async () => {
    message = await encrypt(PLAINTEXT, { suiteId, frameLength: FRAME });
    headerLength = parseHeader(message, { maxEncryptedDataKeys: 10 })!.length;
    const { out, error } = await runCollect(decryptStream(), chunked(message, [777]));
    expect(error).toBeUndefined();
    expect(out.equals(PLAINTEXT)).toBe(true);
  });

  it('truncation at 300 random offsets (and every structural boundary) always ends in an error', async () => {
    const cuts = new Set(offsets(300, message.length, suiteId));
    for (let f = 0; f <= 21; f++) {
      const boundary = headerLength + f * FRAME_BYTES;
      for (const d of [-1, 0, 1, 4, 16]) if (boundary + d > 0 && boundary + d < message.length) cuts.add(boundary + d);
    }
    cuts.add(message.length - 1);
    cuts.add(1);
    for (const cut of cuts) {
      for (const sizes of [[65_536], [333]]) {
        const { error } = await expectRejected(message.subarray(0, cut), {}, sizes);
        expect(['ERR_MALFORMED_MESSAGE', 'ERR_DECRYPTION_FAILED']).toContain(error.code);
      }
    }
  });

  it('empty input is an error, not an empty plaintext', async () => {
    const { out, error } = await runCollect(decryptStream(), []);
    expect(error).toMatchObject({ code: 'ERR_MALFORMED_MESSAGE' });
    expect(out.length).toBe(0);
  });

  it('extension: any bytes after the message end in an error', async () => {
    for (const extra of [Buffer.from([0]), Buffer.from('trailing data'), prng(5000, 1)]) {
      const { error } = await expectRejected(Buffer.concat([message, extra]));
      expect(error.code).toBe('ERR_MALFORMED_MESSAGE');
    }
    // Two complete messages back to back are not one message.
    await expectRejected(Buffer.concat([message, message]));
  });

  it('flipped bits anywhere end in an error, and output is only a verified prefix', async () => {
    const positions = new Set(offsets(150, message.length * 8, suiteId + 1));
    for (let i = 0; i < headerLength * 8; i += 37) positions.add(i); // denser in the header
    for (const bit of positions) {
      const bad = Buffer.from(message);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      const { out } = await expectRejected(bad);
      // A flip in frame k releases at most frames before k.
      const byte = bit >> 3;
      if (byte >= headerLength) {
        const frame = Math.floor((byte - headerLength) / FRAME_BYTES);
        expect(out.length).toBeLessThanOrEqual(frame * FRAME);
      } else {
        expect(out.length).toBe(0);
      }
    }
  });

  it('reordered, duplicated and dropped frames end in an error', async () => {
    const header = message.subarray(0, headerLength);
    const frames = Array.from({ length: 20 }, (_, i) =>
      message.subarray(headerLength + i * FRAME_BYTES, headerLength + (i + 1) * FRAME_BYTES),
    );
    const rest = message.subarray(headerLength + 20 * FRAME_BYTES);
    const build = (fs: Buffer[]) => Buffer.concat([header, ...fs, rest]);
    const swapped = [...frames];
    [swapped[3], swapped[4]] = [swapped[4]!, swapped[3]!];
    // [message, most plaintext bytes that may be released before the error]
    const variants: [Buffer, number][] = [
      [build(swapped), 3 * FRAME],
      [build([...frames.slice(0, 5), frames[4]!, ...frames.slice(5)]), 5 * FRAME], // duplicated
      [build([...frames.slice(0, 7), ...frames.slice(8)]), 7 * FRAME], // dropped
      [Buffer.concat([header, ...frames]), 20 * FRAME], // final frame (and footer) missing
    ];
    // Swapped with their sequence numbers rewritten: structure is fine, the body AAD is not.
    const renumbered = [...swapped].map((f) => Buffer.from(f));
    renumbered[3]!.writeUInt32BE(4, 0);
    renumbered[4]!.writeUInt32BE(5, 0);
    variants.push([build(renumbered), 3 * FRAME]);
    for (const [v, most] of variants) {
      for (const sizes of [[4096], [FRAME_BYTES], [100_000]]) {
        const { out } = await expectRejected(v, {}, sizes);
        expect(out.length).toBeLessThanOrEqual(most);
      }
    }
    const { error } = await expectRejected(build(renumbered));
    expect(error.code).toBe('ERR_DECRYPTION_FAILED');
  });

  it('a frame from another message with the same key ends in an error', async () => {
    const other = await encrypt(PLAINTEXT, { suiteId, frameLength: FRAME });
    const otherHeader = parseHeader(other, { maxEncryptedDataKeys: 10 })!.length;
    const spliced = Buffer.from(message);
    other.copy(spliced, headerLength + 2 * FRAME_BYTES, otherHeader + 2 * FRAME_BYTES, otherHeader + 3 * FRAME_BYTES);
    const { out, error } = await expectRejected(spliced);
    expect(error.code).toBe('ERR_DECRYPTION_FAILED');
    expect(out.length).toBeLessThanOrEqual(2 * FRAME);
  });
});

describe('final frame hold (signed suite)', () => {
  it('the last frame is released only after the signature verified', async () => {
    const message = await encrypt(PLAINTEXT, { suiteId: 0x0578, frameLength: FRAME });
    // Cut off the footer: every frame tag verifies, the signature is missing.
    const headerLength = parseHeader(message, { maxEncryptedDataKeys: 10 })!.length;
    const bodyEnd = headerLength + 20 * FRAME_BYTES + 4 + 4 + 12 + 4 + 500 + 16;
    const noFooter = message.subarray(0, bodyEnd);
    const held = await runCollect(decryptStream(), [noFooter]);
    expect(held.error).toBeInstanceOf(EnvelopeError);
    expect(held.out.equals(PLAINTEXT.subarray(0, 20 * FRAME))).toBe(true);

    // A forged signature: same result, the final frame is withheld.
    const forged = Buffer.from(message);
    forged[forged.length - 5]! ^= 0x40;
    // (Output still buffered in the stream when it fails is discarded, so the count is "at most".)
    for (const sizes of [[100], [FRAME_BYTES], [100_000]]) {
      const f = await runCollect(decryptStream(), chunked(forged, sizes));
      expect(f.error).toMatchObject({ code: 'ERR_DECRYPTION_FAILED' });
      expect(f.out.length).toBeLessThanOrEqual(20 * FRAME);
      expect(f.out.equals(PLAINTEXT.subarray(0, f.out.length))).toBe(true);
    }

    // Written piece by piece to a flowing consumer, everything pushed is seen: exactly the 20
    // regular frames, never the final one.
    const slow = await writeSlowly(decryptStream(), forged, 100);
    expect(slow.error).toMatchObject({ code: 'ERR_DECRYPTION_FAILED' });
    expect(slow.out.equals(PLAINTEXT.subarray(0, 20 * FRAME))).toBe(true);

    // And the intact message releases everything.
    const ok = await runCollect(decryptStream(), chunked(message, [100]));
    expect(ok.error).toBeUndefined();
    expect(ok.out.equals(PLAINTEXT)).toBe(true);
  });

  it('the stream dependencies refuse a holdFinalFrame setting', () => {
    expect(() =>
      createDecryptStream({ limits: { maxEncryptedDataKeys: 1, maxHeaderBytes: 1024 }, holdFinalFrame: false, dataKey: async () => Buffer.alloc(32) } as never),
    ).toThrow(/holdFinalFrame/);
  });
});

/** Writes `message` in `size`-byte chunks, each after the previous one was processed; collects 'data'. */
async function writeSlowly(t: ReturnType<typeof decryptStream>, message: Buffer, size: number) {
  const out: Buffer[] = [];
  let error: unknown;
  t.on('data', (b: Buffer) => out.push(b));
  t.on('error', (e) => (error = e));
  for (let o = 0; o < message.length && error === undefined; o += size) {
    await new Promise<void>((resolve) => t.write(message.subarray(o, o + size), () => resolve()));
  }
  if (error === undefined) {
    t.end();
    await new Promise<void>((resolve) => {
      t.on('end', resolve);
      t.on('error', () => resolve());
    });
  }
  return { out: Buffer.concat(out), error };
}

describe('dataKey() errors and key zeroing', () => {
  it('an error from dataKey() is the stream error', async () => {
    const message = await encrypt(PLAINTEXT, { frameLength: FRAME });
    const kmsError = new KmsError('access denied', 'AccessDeniedException');
    const { out, error } = await runCollect(decryptStream({ reject: kmsError }), chunked(message, [100]));
    expect(error).toBe(kmsError);
    expect(out.length).toBe(0);
  });

  it('data key copies are zeroed after success and after failure', async () => {
    for (const suiteId of [0x0478, 0x0578]) {
      const encKeys: Buffer[] = [];
      const message = await encrypt(PLAINTEXT, { suiteId, frameLength: FRAME, keys: encKeys });
      expect(encKeys).toHaveLength(1);
      expect(encKeys[0]!.every((b) => b === 0)).toBe(true);

      const decKeys: Buffer[] = [];
      const ok = await runCollect(decryptStream({ keys: decKeys }), [message]);
      expect(ok.error).toBeUndefined();
      expect(decKeys).toHaveLength(1);
      expect(decKeys[0]!.every((b) => b === 0)).toBe(true);

      const bad = Buffer.from(message);
      bad[bad.length - 30]! ^= 1;
      const failedKeys: Buffer[] = [];
      const failed = await runCollect(decryptStream({ keys: failedKeys }), [bad]);
      expect(failed.error).toBeInstanceOf(EnvelopeError);
      expect(failedKeys[0]!.every((b) => b === 0)).toBe(true);
    }
  });

  it('destroy() mid-stream zeroes the key; destroy() while the key is awaited zeroes it on arrival', async () => {
    const message = await encrypt(PLAINTEXT, { frameLength: FRAME });
    // Mid-stream: header and some frames consumed, then destroyed.
    const keys: Buffer[] = [];
    const dec = decryptStream({ keys });
    dec.on('error', () => undefined);
    dec.on('data', () => undefined);
    await new Promise<void>((resolve) => {
      dec.write(message.subarray(0, 5000), () => resolve());
    });
    expect(keys).toHaveLength(1);
    dec.destroy();
    expect(keys[0]!.every((b) => b === 0)).toBe(true);

    // While dataKey() is pending.
    const late: Buffer[] = [];
    const dec2 = decryptStream({ keys: late, delayMs: 30 });
    dec2.on('error', () => undefined);
    dec2.write(message.subarray(0, 3000));
    await new Promise((r) => setTimeout(r, 5));
    dec2.destroy();
    await new Promise((r) => setTimeout(r, 60));
    expect(late).toHaveLength(1);
    expect(late[0]!.every((b) => b === 0)).toBe(true);
    expect(dec2.readableLength).toBe(0);

    // Encrypt side: destroyed while materials are pending.
    const encKeys: Buffer[] = [];
    const enc = encryptStream({ keys: encKeys, delayMs: 30 });
    enc.on('error', () => undefined);
    enc.write(PLAINTEXT);
    await new Promise((r) => setTimeout(r, 5));
    enc.destroy();
    await new Promise((r) => setTimeout(r, 60));
    expect(encKeys).toHaveLength(1);
    expect(encKeys[0]!.every((b) => b === 0)).toBe(true);
    expect(enc.readableLength).toBe(0);
  });

  it('an upstream error destroys the pipeline and zeroes the key', async () => {
    const message = await encrypt(PLAINTEXT, { frameLength: FRAME });
    const keys: Buffer[] = [];
    const src = new Readable({ read() {} });
    src.push(message.subarray(0, 6000));
    setTimeout(() => src.destroy(new Error('network reset')), 20);
    const error = await pipeline(src, decryptStream({ keys }), new Writable({ write: (_c, _e, cb) => cb() })).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as Error).message).toBe('network reset');
    expect(keys).toHaveLength(1);
    for (const k of keys) expect(k.every((b) => b === 0)).toBe(true);
  });
});
