/**
 * encryptFile / decryptFile: round trips through temp files, and failures that must leave neither
 * the destination nor a temporary file behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Transform } from 'node:stream';
import { writeFileSync } from 'node:fs';
import { EnvelopeError } from '../../src/errors.js';
import { decryptFile, encryptFile } from '../../src/stream/index.js';
import { decryptStream, encryptStream, prng } from './helpers.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kms-envelope-files-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const lengths: number[] = [];
const enc = (plaintextLength: number) => {
  lengths.push(plaintextLength);
  return encryptStream({ plaintextLength, frameLength: 4096 });
};
const dec = () => decryptStream();

async function entries(): Promise<string[]> {
  return (await readdir(dir)).sort();
}

describe('encryptFile / decryptFile', () => {
  it('writes targets whose names take all 255 bytes NAME_MAX allows (the temporary name is shortened, not the target)', async () => {
    for (const name of ['n'.repeat(255), 'é'.repeat(127)]) {
      const src = join(dir, 'long-src');
      const data = prng(10_000, 3);
      await writeFile(src, data);
      const sealed = join(dir, name);
      await encryptFile(src, sealed, enc);
      const back = join(dir, `${name.slice(0, 100)}-back`);
      await decryptFile(sealed, back, dec);
      expect((await readFile(back)).equals(data)).toBe(true);
      // Nothing but the outputs: no temporary file left behind.
      expect((await entries()).filter((n) => n.endsWith('.tmp'))).toEqual([]);
      await Promise.all([src, sealed, back].map((p) => rm(p)));
    }
  });

  it('round trips files of several sizes and passes the file size as plaintextLength', async () => {
    for (const size of [0, 1, 4096, 1_000_003]) {
      const src = join(dir, `plain-${size}`);
      const data = prng(size, size + 1);
      await writeFile(src, data);
      lengths.length = 0;
      await encryptFile(src, join(dir, `cipher-${size}`), enc);
      expect(lengths).toEqual([size]);
      await decryptFile(join(dir, `cipher-${size}`), join(dir, `back-${size}`), dec);
      expect((await readFile(join(dir, `back-${size}`))).equals(data)).toBe(true);
      // Plaintext written by decryptFile is private to the owner.
      expect((await stat(join(dir, `back-${size}`))).mode & 0o777).toBe(0o600);
    }
    expect((await entries()).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('replaces an existing destination only on success', async () => {
    const src = join(dir, 'replace-src');
    const dst = join(dir, 'replace-dst');
    await writeFile(src, prng(10_000, 4));
    await writeFile(dst, 'old contents');
    await encryptFile(src, dst, enc);
    expect((await readFile(dst)).length).toBeGreaterThan(10_000);
  });

  it('a tampered file leaves no destination and no temp file; an existing destination is untouched', async () => {
    const src = join(dir, 'tamper-plain');
    const data = prng(300_000, 8);
    await writeFile(src, data);
    const ct = join(dir, 'tamper-cipher');
    await encryptFile(src, ct, enc);
    const good = await readFile(ct);
    const variants = {
      'flipped bit in the last frame': (() => {
        const b = Buffer.from(good);
        b[b.length - 20]! ^= 1;
        return b;
      })(),
      'flipped bit in the middle': (() => {
        const b = Buffer.from(good);
        b[150_000]! ^= 0x80;
        return b;
      })(),
      truncated: good.subarray(0, good.length - 1),
      extended: Buffer.concat([good, Buffer.from([1, 2, 3])]),
    };
    for (const [name, bytes] of Object.entries(variants)) {
      const bad = join(dir, 'bad-cipher');
      await writeFile(bad, bytes);
      const before = await entries();
      const dst = join(dir, 'bad-out');
      const err = await decryptFile(bad, dst, dec).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, name).toBeInstanceOf(EnvelopeError);
      expect(await entries(), name).toEqual(before); // no dst, no temp file
      // With an existing destination: still untouched.
      await writeFile(dst, 'keep me');
      await expect(decryptFile(bad, dst, dec)).rejects.toBeInstanceOf(EnvelopeError);
      expect(await readFile(dst, 'utf8')).toBe('keep me');
      await rm(dst);
    }
  });

  it('a failure in the middle of writing removes the temp file', async () => {
    const src = join(dir, 'mid-plain');
    await writeFile(src, prng(1_000_000, 9));
    const before = await entries();
    let seen = 0;
    const failing = () =>
      new Transform({
        transform(chunk: Buffer, _e, cb) {
          seen += chunk.length;
          if (seen > 500_000) cb(new Error('disk on fire'));
          else cb(null, chunk);
        },
      });
    await expect(encryptFile(src, join(dir, 'mid-out'), failing)).rejects.toThrow('disk on fire');
    expect(await entries()).toEqual(before);
  });

  it('fails with ERR_STREAM when the source changes size after its size was taken', async () => {
    const src = join(dir, 'changing');
    const before = await entries();
    // makeStream runs after stat() and before the first read: rewrite the file there.
    const changeTo = (size: number, real: boolean) => (n: number) => {
      writeFileSync(src, prng(size, 10));
      return real ? enc(n) : new PassThrough();
    };
    for (const size of [50_000, 200_000]) {
      for (const real of [false, true]) {
        await writeFile(src, prng(100_000, 10));
        // real: the declared plaintextLength catches it; plain pass-through: the byte count check.
        await expect(encryptFile(src, join(dir, 'changing-out'), changeTo(size, real))).rejects.toMatchObject({
          code: 'ERR_STREAM',
        });
      }
    }
    await rm(src);
    expect(await entries()).toEqual(before);
  });

  it('rejects bad arguments and missing files', async () => {
    await expect(encryptFile('', join(dir, 'x'), enc)).rejects.toThrow(TypeError);
    await expect(encryptFile(dir, join(dir, 'x'), enc)).rejects.toThrow(TypeError); // a directory
    await expect(decryptFile(join(dir, 'missing'), join(dir, 'x'), dec)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await entries()).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('a source that cannot be opened leaves no temporary file, even when the output opens after the failure', async () => {
    // The source's open fails while the temporary file's open is still queued on the libuv
    // thread pool; the cleanup must wait for the output stream to close, or the file appears after
    // the unlink. Many concurrent calls make that ordering likely.
    const runs = Array.from({ length: 200 }, (_, i) =>
      decryptFile(join(dir, `missing-${i}`), join(dir, `out-${i}`), dec).then(
        () => 'resolved',
        (e: NodeJS.ErrnoException) => e.code,
      ),
    );
    expect(new Set(await Promise.all(runs))).toEqual(new Set(['ENOENT']));
    expect((await entries()).filter((n) => n.endsWith('.tmp') || n.startsWith('out-'))).toEqual([]);
  });
});
