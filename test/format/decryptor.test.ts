import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decryptBody,
  deriveAndVerifyHeader,
  encryptBuffer,
  MessageDecryptor,
  MessageEncryptor,
  parseHeader,
  prepareEncryption,
  generateSigningKey,
  SUITES,
} from '../../src/format/index.js';
import { PUBLIC_KEY_CONTEXT_KEY } from '../../src/format/context.js';
import { esdkKeyring, esdkLegacy, makeMaterials, unwrapDataKey, wrapDataKey } from './esdk-helpers.js';
import { writeMessage } from './reference-writer.js';

/** The incremental decryptor: any chunking gives the buffer result; its state machine is strict. */

const limits = { maxEncryptedDataKeys: 3 };

function bufferDecrypt(message: Buffer, dataKey: Buffer): Buffer {
  const h = parseHeader(message, limits)!;
  return decryptBody(h, deriveAndVerifyHeader(h, dataKey), message);
}

function feed(message: Buffer, dataKey: Buffer, sizes: Iterable<number>): Buffer {
  const dec = new MessageDecryptor(limits);
  const out: Buffer[] = [];
  let o = 0;
  for (const n of sizes) {
    if (o >= message.length) break;
    dec.push(message.subarray(o, o + n));
    o += n;
    if (dec.needsKey) dec.setDataKey(dataKey);
    out.push(...dec.read());
  }
  if (o < message.length) {
    dec.push(message.subarray(o));
    if (dec.needsKey) dec.setDataKey(dataKey);
  }
  out.push(...dec.read(), ...dec.end());
  return Buffer.concat(out);
}

function* ones(): Generator<number> {
  for (;;) yield 1;
}

describe('MessageDecryptor chunking', () => {
  const messages: { name: string; message: Buffer; dataKey: Buffer }[] = [];
  for (const [suiteId, frame, size] of [
    [0x0478, 1, 20],
    [0x0578, 7, 50],
    [0x0478, 4096, 9000],
    [0x0578, 4096, 0],
  ] as const) {
    const m = makeMaterials(suiteId, { c: 'd' });
    messages.push({
      name: `0x${suiteId.toString(16)} frame ${frame} size ${size}`,
      message: encryptBuffer(prepareEncryption(m, frame), m.dataKey, randomBytes(size)),
      dataKey: m.dataKey,
    });
  }

  it('byte-by-byte matches the buffer decrypt', async () => {
    const { result } = await esdkLegacy.encrypt(esdkKeyring(), randomBytes(300), { suiteId: 0x0378, frameLength: 64 });
    const v1 = Buffer.from(result);
    const all = [...messages, { name: 'esdk v1 0x0378', message: v1, dataKey: unwrapDataKey(parseHeader(v1, limits)!) }];
    for (const { message, dataKey } of all) {
      const expected = bufferDecrypt(message, dataKey);
      expect(feed(message, dataKey, ones()).equals(expected)).toBe(true);
    }
  });

  it('pieces around the 16 KiB staging size, small and large mixed, match the buffer decrypt (framed and non-framed)', () => {
    const big: { message: Buffer; dataKey: Buffer }[] = [];
    for (const [suiteId, frame] of [
      [0x0478, 65_536],
      [0x0578, 40_000],
    ] as const) {
      const m = makeMaterials(suiteId, {});
      big.push({ message: encryptBuffer(prepareEncryption(m, frame), m.dataKey, randomBytes(200_000)), dataKey: m.dataKey });
    }
    // Non-framed bodies (one part of 200,000 bytes), unsigned v2 and signed v1, by the reference writer.
    for (const suiteId of [0x0478, 0x0378]) {
      const suite = SUITES.get(suiteId)!;
      const dataKey = randomBytes(32);
      const pair = suite.signatureCurve === undefined ? undefined : generateSigningKey(suite);
      const context: Record<string, string> = pair === undefined ? {} : { [PUBLIC_KEY_CONTEXT_KEY]: pair.publicKey };
      const message = writeMessage({
        suite,
        dataKey,
        context,
        edks: [wrapDataKey(dataKey, context)],
        plaintext: randomBytes(200_000),
        frameLength: 0,
        signingKey: pair?.privateKey,
      });
      big.push({ message, dataKey });
    }
    for (const { message, dataKey } of big) {
      const expected = bufferDecrypt(message, dataKey);
      fc.assert(
        fc.property(
          fc.array(fc.constantFrom(1, 7, 16_383, 16_384, 16_385, 40_000, 70_000), { minLength: 1, maxLength: 40 }),
          (sizes) => {
            expect(feed(message, dataKey, sizes).equals(expected)).toBe(true);
          },
        ),
        { numRuns: 25, seed: 7 },
      );
    }
  });

  it('random chunkings match the buffer decrypt', () => {
    for (const { message, dataKey } of messages) {
      const expected = bufferDecrypt(message, dataKey);
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 60 }), (sizes) => {
          expect(feed(message, dataKey, sizes).equals(expected)).toBe(true);
        }),
        { numRuns: 60, seed: 42 },
      );
    }
  });

  it('releases each frame as soon as its tag verified', () => {
    const m = makeMaterials(0x0478);
    const pt = randomBytes(30);
    const msg = encryptBuffer(prepareEncryption(m, 10), m.dataKey, pt);
    const h = parseHeader(msg, limits)!;
    const dec = new MessageDecryptor(limits);
    dec.push(msg.subarray(0, h.length));
    dec.setDataKey(m.dataKey);
    const frame = 4 + 12 + 10 + 16;
    dec.push(msg.subarray(h.length, h.length + frame - 1));
    expect(dec.read()).toEqual([]); // tag incomplete: nothing released
    dec.push(msg.subarray(h.length + frame - 1, h.length + frame));
    expect(Buffer.concat(dec.read()).equals(pt.subarray(0, 10))).toBe(true);
    dec.push(msg.subarray(h.length + frame));
    expect(Buffer.concat(dec.read()).equals(pt.subarray(10))).toBe(true);
    expect(dec.end()).toEqual([]);
  });
});

describe('MessageDecryptor state machine', () => {
  const m = makeMaterials(0x0578);
  const pt = randomBytes(100);
  const msg = encryptBuffer(prepareEncryption(m, 32), m.dataKey, pt);

  it('keeps input pushed while the key is awaited', () => {
    const dec = new MessageDecryptor(limits);
    dec.push(msg.subarray(0, 10));
    expect(dec.header).toBeUndefined();
    expect(dec.needsKey).toBe(false);
    dec.push(msg.subarray(10, 400));
    expect(dec.needsKey).toBe(true);
    expect(dec.header!.suite.id).toBe(0x0578);
    dec.push(msg.subarray(400));
    expect(dec.read()).toEqual([]);
    dec.setDataKey(m.dataKey);
    expect(Buffer.concat([...dec.read(), ...dec.end()]).equals(pt)).toBe(true);
  });

  it('accepts a key derived by the caller, and only for its header', () => {
    const dec = new MessageDecryptor(limits);
    dec.push(msg);
    const key = deriveAndVerifyHeader(dec.header!, m.dataKey);
    const other = new MessageDecryptor(limits);
    other.push(msg);
    expect(() => other.setKey(key)).toThrow(TypeError);
    dec.setKey(key);
    expect(Buffer.concat([...dec.read(), ...dec.end()]).equals(pt)).toBe(true);
  });

  it('a data key of the wrong length is a RangeError and can be retried', () => {
    const dec = new MessageDecryptor(limits);
    dec.push(msg);
    expect(() => dec.setDataKey(Buffer.alloc(16))).toThrow(RangeError);
    dec.setDataKey(m.dataKey);
    expect(Buffer.concat([...dec.read(), ...dec.end()]).equals(pt)).toBe(true);
  });

  it('rejects calls in the wrong state', () => {
    const dec = new MessageDecryptor(limits);
    expect(() => dec.setDataKey(m.dataKey)).toThrow(expect.objectContaining({ code: 'ERR_STREAM' }));
    dec.push(msg.subarray(0, 500));
    expect(() => dec.end()).toThrow(expect.objectContaining({ code: 'ERR_STREAM' })); // no key yet
    const ok = new MessageDecryptor(limits);
    ok.push(msg);
    ok.setDataKey(m.dataKey);
    expect(() => ok.setDataKey(m.dataKey)).toThrow(expect.objectContaining({ code: 'ERR_STREAM' }));
    ok.end();
    expect(ok.done).toBe(true);
    expect(() => ok.push(Buffer.alloc(1))).toThrow(expect.objectContaining({ code: 'ERR_STREAM' }));
    expect(() => ok.end()).toThrow(expect.objectContaining({ code: 'ERR_STREAM' }));
  });

  it('errors are sticky and zero what was held', () => {
    const bad = Buffer.from(msg);
    bad[bad.length - 5]! ^= 1; // inside the signature
    const dec = new MessageDecryptor(limits);
    dec.push(bad.subarray(0, 400));
    dec.setDataKey(m.dataKey);
    let first: unknown;
    try {
      dec.push(bad.subarray(400));
    } catch (e) {
      first = e;
    }
    expect(first).toMatchObject({ code: 'ERR_DECRYPTION_FAILED' });
    expect(dec.read()).toEqual([]);
    expect(() => dec.push(Buffer.alloc(1))).toThrow(first as Error);
    expect(() => dec.end()).toThrow(first as Error);
  });

  it('the final frame of a signed message is released only by end()', () => {
    const dec = new MessageDecryptor(limits);
    dec.push(msg);
    dec.setDataKey(m.dataKey);
    expect(Buffer.concat(dec.read()).equals(pt.subarray(0, 96))).toBe(true);
    expect(Buffer.concat(dec.end()).equals(pt.subarray(96))).toBe(true);
  });

  it('destroy() abandons the message', () => {
    const dec = new MessageDecryptor(limits);
    dec.push(msg.subarray(0, 450));
    dec.setDataKey(m.dataKey);
    dec.destroy();
    expect(() => dec.push(msg.subarray(450))).toThrow(expect.objectContaining({ code: 'ERR_STREAM' }));
  });
});

describe('MessageEncryptor memory', () => {
  it('does not retain caller chunks', () => {
    const m = makeMaterials(0x0478);
    const p = prepareEncryption(m, 100);
    const enc = new MessageEncryptor(p, m.dataKey);
    const header = enc.header();
    const chunk = Buffer.alloc(50, 0x61);
    const parts = [...enc.update(chunk)];
    chunk.fill(0x62); // caller reuses its buffer
    parts.push(...enc.update(chunk), ...enc.final());
    const pt = bufferDecrypt(Buffer.concat([header, ...parts]), m.dataKey);
    expect(pt.equals(Buffer.concat([Buffer.alloc(50, 0x61), Buffer.alloc(50, 0x62)]))).toBe(true);
  });

  it('emits each frame as soon as it is full', () => {
    const m = makeMaterials(0x0478);
    const enc = new MessageEncryptor(prepareEncryption(m, 10), m.dataKey);
    // A regular frame of 10 bytes: sequence number (4) + IV (12) + 10 + tag (16) = 42 bytes,
    // returned in pieces (frame header, ciphertext, tag) that are not copied into one buffer.
    const bytes = (pieces: Buffer[]): Buffer => Buffer.concat(pieces);
    expect(enc.update(Buffer.alloc(9))).toHaveLength(0);
    const first = bytes(enc.update(Buffer.alloc(1)));
    expect(first).toHaveLength(42);
    expect(first.readUInt32BE(0)).toBe(1);
    const next = bytes(enc.update(Buffer.alloc(35)));
    expect(next).toHaveLength(3 * 42);
    expect([0, 42, 84].map((at) => next.readUInt32BE(at))).toEqual([2, 3, 4]);
    const fin = bytes(enc.final());
    expect(fin).toHaveLength(4 + 4 + 12 + 4 + 5 + 16);
    expect(fin.readUInt32BE(0)).toBe(0xffffffff);
    expect(fin.readUInt32BE(4)).toBe(5);
    expect(fin.readUInt32BE(20)).toBe(5);
  });
});
