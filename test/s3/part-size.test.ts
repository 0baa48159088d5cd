/**
 * The automatic multipart part size: computed from the exact encrypted size (header, 32 bytes per
 * frame + 8 on the final frame, footer for signed suites), so an upload never needs more than
 * S3's 10,000 parts, whatever the frame length; plus one small real upload that uses it.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { Envelope, RawAesKeyring } from '../../src/index.js';
import { maxSignatureLength } from '../../src/format/footer.js';
import { SUITES } from '../../src/format/suites.js';
import { uploadEncrypted } from '../../src/s3/index.js';
import {
  checkPartSize,
  encryptedLength,
  MAX_OBJECT,
  MAX_PART,
  MAX_PARTS,
  MIN_PART,
  partSizeFor,
} from '../../src/s3/part-size.js';
import { startLocalS3, type LocalS3 } from './s3-proxy.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const keyring = new RawAesKeyring({ keyNamespace: 'test', keyName: 'part-size', key: Buffer.alloc(32, 7) });
const UNSIGNED = SUITES.get(0x0478)!;
const SIGNED = SUITES.get(0x0578)!;

/** Largest plaintext whose message still fits S3's 5 TiB object limit. */
function largestPlaintext(frameLength: number, headerLength: number, suite = UNSIGNED): number {
  let lo = 0;
  let hi = MAX_OBJECT;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (encryptedLength({ plaintextLength: mid, headerLength, frameLength, suite }) <= MAX_OBJECT) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

describe('encryptedLength', () => {
  it('is the exact size of the message the library writes (signed suites: with the longest signature)', async () => {
    for (const suite of [0x0478, 0x0578]) {
      for (const frameLength of [1, 128, 1024, 4096]) {
        const envelope = new Envelope({ keyring, suite, frameLength, cache: false });
        for (const n of [0, 1, 127, 128, 129, 1000, 4096, 5000]) {
          const { message, header } = await envelope.encryptDetailed(randomBytes(n), { context: { a: 'b' } });
          const computed = encryptedLength({ plaintextLength: n, headerLength: header.length, frameLength, suite: header.suite });
          const what = `suite ${suite.toString(16)}, frame ${frameLength}, ${n} bytes`;
          if (suite === 0x0478) expect(computed, what).toBe(message.length);
          else {
            // The footer is counted at the longest DER signature; the real one is shorter by
            // whatever its r and s lost to leading zeros (any number of bytes, rarely). So the
            // difference is exactly the longest length minus the footer's own length field.
            const bodyEnd = encryptedLength({ plaintextLength: n, headerLength: header.length, frameLength, suite: UNSIGNED });
            const signatureLength = message.readUInt16BE(bodyEnd);
            expect(bodyEnd + 2 + signatureLength, what).toBe(message.length);
            expect(computed - message.length, what).toBe(maxSignatureLength(header.suite) - signatureLength);
          }
        }
      }
    }
  });
});

describe('partSizeFor', () => {
  it('keeps every body length S3 can store within 10,000 parts of 5 MiB .. 5 GiB, for small frames too', () => {
    const headerLength = 70 * 1024; // larger than any real header: a full 64 KiB context plus EDKs
    for (const suite of [UNSIGNED, SIGNED]) {
      for (const frameLength of [1, 128, 1024, 4096, 65_536, 262_144, 2 ** 31 - 1]) {
        const max = largestPlaintext(frameLength, headerLength, suite);
        for (const plaintextLength of [0, 1, 5 * MiB, 80 * GiB, 100 * GiB, 1024 * GiB, max - 1, max]) {
          if (plaintextLength > max) continue;
          const length = encryptedLength({ plaintextLength, headerLength, frameLength, suite });
          const part = partSizeFor(length);
          const what = `frame ${frameLength}, ${plaintextLength} bytes`;
          expect(Number.isInteger(part), what).toBe(true);
          expect(part, what).toBeGreaterThanOrEqual(MIN_PART);
          expect(part, what).toBeLessThanOrEqual(MAX_PART);
          expect(Math.ceil(length / part), what).toBeLessThanOrEqual(MAX_PARTS);
          expect(() => checkPartSize(part, length)).not.toThrow();
        }
      }
    }
  });

  it('counts the real framing: 100 GiB in 128-byte and 1 KiB frames', () => {
    // 128-byte frames add 25%: a 1% allowance would pick parts for 101 GiB and need 12,400+ parts.
    const at128 = encryptedLength({ plaintextLength: 100 * GiB, headerLength: 200, frameLength: 128, suite: UNSIGNED });
    expect(at128).toBe(100 * GiB + (100 * GiB / 128) * 32 + 24 + 16 + 200);
    expect(Math.ceil(at128 / partSizeFor(at128))).toBeLessThanOrEqual(MAX_PARTS);
    expect(Math.ceil(at128 / (Math.ceil((100 * GiB * 1.01 + MiB) / MAX_PARTS)))).toBeGreaterThan(MAX_PARTS);
    const at1k = encryptedLength({ plaintextLength: 100 * GiB, headerLength: 200, frameLength: 1024, suite: SIGNED });
    expect(Math.ceil(at1k / partSizeFor(at1k))).toBeLessThanOrEqual(MAX_PARTS);
    // Small objects keep the 8 MiB default.
    expect(partSizeFor(1000)).toBe(8 * MiB);
    expect(partSizeFor(80 * GiB)).toBe(9 * MiB);
  });

  it('refuses objects over 5 TiB and explicit part sizes that would need more than 10,000 parts', () => {
    expect(() => partSizeFor(MAX_OBJECT + 1)).toThrow(RangeError);
    expect(() => partSizeFor(MAX_OBJECT + 1)).toThrow(/options\.body.*5 TiB/);
    expect(() => checkPartSize(8 * MiB, 100 * GiB)).toThrow(/options\.partSize .*10000 parts/);
    expect(() => checkPartSize(8 * MiB, 78 * GiB)).not.toThrow();
  });
});

describe('uploadEncrypted part size', () => {
  let s3: LocalS3;
  beforeAll(async () => {
    s3 = await startLocalS3();
  });
  afterAll(async () => {
    await s3?.stop();
  });

  it('a known-length stream is uploaded in parts of the computed size', async () => {
    const frameLength = 128;
    const envelope = new Envelope({ keyring, frameLength });
    const data = randomBytes(12 * MiB);
    const result = await uploadEncrypted({
      client: s3.client,
      bucket: s3.bucket,
      key: 'part-size.bin',
      body: Readable.from([data.subarray(0, 5 * MiB), data.subarray(5 * MiB)]),
      plaintextLength: data.length,
      envelope,
    });
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: 'part-size.bin' }));
    expect(head.ContentLength).toBe(result.bytes);
    // 12 MiB + 25% framing in 8 MiB parts: the computed size, the remainder.
    const part = partSizeFor(result.bytes);
    expect(part).toBe(8 * MiB);
    const parts = s3.ops('UploadPart').sort((a, b) => a.partNumber! - b.partNumber!);
    expect(parts.map((e) => e.length)).toEqual([part, result.bytes - part]);
    expect(s3.ops('CompleteMultipartUpload').map((e) => e.status)).toEqual([200]);
  });

  it('an explicit part size too small for a known length is refused before any request', async () => {
    s3.log.length = 0;
    const envelope = new Envelope({ keyring });
    await expect(
      uploadEncrypted({
        client: s3.client,
        bucket: s3.bucket,
        key: 'too-many-parts.bin',
        body: new Readable({ read() {} }),
        plaintextLength: 100 * GiB,
        partSize: 5 * MiB,
        envelope,
      }),
    ).rejects.toThrow(/options\.partSize .*10000 parts/);
    expect(s3.log).toEqual([]);
  });
});
