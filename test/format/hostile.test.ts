import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { EnvelopeError } from '../../src/errors.js';
import {
  decryptBody,
  deriveAndVerifyHeader,
  encryptBuffer,
  generateSigningKey,
  MessageDecryptor,
  parseHeader,
  parseMessageHeader,
  prepareEncryption,
  SUITES,
  tryParseHeader,
  type DecryptorLimits,
} from '../../src/format/index.js';
import { esdkKeyring, esdkLegacy, makeMaterials, unwrapDataKey, wrapDataKey } from './esdk-helpers.js';
import { writeMessage } from './reference-writer.js';

/**
 * Hostile input: every bit flip, truncation and trailing garbage is rejected with a typed error,
 * limits hold before anything large is buffered, and no unauthenticated plaintext is released.
 */

const limits = { maxEncryptedDataKeys: 3 };
const REJECTION_CODES = ['ERR_MALFORMED_MESSAGE', 'ERR_DECRYPTION_FAILED', 'ERR_COMMITMENT_MISMATCH', 'ERR_LIMIT_EXCEEDED'];

interface Sample {
  name: string;
  message: Buffer;
  dataKey: Buffer;
  plaintext: Buffer;
}

function bufferDecrypt(message: Buffer, dataKey: Buffer, l = limits): Buffer {
  const header = parseMessageHeader(message, l);
  return decryptBody(header, deriveAndVerifyHeader(header, dataKey), message);
}

/** Incremental decrypt in `chunk`-byte pushes; returns the plaintext released before any error. */
function streamDecrypt(
  message: Buffer,
  dataKey: Buffer,
  chunk: number | (() => number),
  extra: Partial<DecryptorLimits> = {},
): { out: Buffer; error?: unknown } {
  const dec = new MessageDecryptor({ ...limits, ...extra });
  const out: Buffer[] = [];
  try {
    for (let o = 0; o < message.length; ) {
      const n = typeof chunk === 'number' ? chunk : chunk();
      dec.push(message.subarray(o, o + n));
      o += n;
      if (dec.needsKey) dec.setDataKey(dataKey);
      out.push(...dec.read());
    }
    out.push(...dec.end());
    return { out: Buffer.concat(out) };
  } catch (error) {
    out.push(...dec.read()); // must be empty after an error
    return { out: Buffer.concat(out), error };
  }
}

function expectRejected(fn: () => unknown): EnvelopeError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(EnvelopeError);
  expect(REJECTION_CODES).toContain((err as EnvelopeError).code);
  return err as EnvelopeError;
}

const samples: Sample[] = [];

beforeAll(async () => {
  for (const [suiteId, frameLength, size] of [
    [0x0478, 16, 40],
    [0x0578, 16, 40],
    [0x0478, 4096, 0],
  ] as const) {
    const m = makeMaterials(suiteId, { tenant: 't1' });
    const plaintext = randomBytes(size);
    samples.push({
      name: `ours 0x${suiteId.toString(16)} frame ${frameLength} size ${size}`,
      message: encryptBuffer(prepareEncryption(m, frameLength), m.dataKey, plaintext),
      dataKey: m.dataKey,
      plaintext,
    });
  }
  for (const suiteId of [0x0178, 0x0378]) {
    const plaintext = randomBytes(40);
    const { result } = await esdkLegacy.encrypt(esdkKeyring(), plaintext, { suiteId, frameLength: 16, encryptionContext: { v: '1' } });
    const message = Buffer.from(result);
    samples.push({ name: `esdk v1 0x${suiteId.toString(16)}`, message, dataKey: unwrapDataKey(parseHeader(message, limits)!), plaintext });
  }
  for (const suiteId of [0x0578, 0x0114]) {
    const suite = SUITES.get(suiteId)!;
    const dataKey = randomBytes(suite.keyLength);
    const context: Record<string, string> = { shape: 'non-framed' };
    let signingKey;
    if (suite.signatureCurve) {
      const k = generateSigningKey(suite);
      context['aws-crypto-public-key'] = k.publicKey;
      signingKey = k.privateKey;
    }
    const plaintext = randomBytes(33);
    const message = writeMessage({
      suite: { ...suite, kdfHash: suite.kdfHash!, ...(suite.signatureHash ? { signatureHash: suite.signatureHash } : {}) },
      dataKey,
      context,
      edks: [wrapDataKey(dataKey, context)],
      plaintext,
      frameLength: 0,
      ...(signingKey ? { signingKey } : {}),
    });
    samples.push({ name: `non-framed 0x${suiteId.toString(16)}`, message, dataKey, plaintext });
  }
});

describe('samples are valid', () => {
  it('each sample decrypts, buffered and streamed', () => {
    for (const s of samples) {
      expect(bufferDecrypt(s.message, s.dataKey).equals(s.plaintext)).toBe(true);
      const r = streamDecrypt(s.message, s.dataKey, 5);
      expect(r.error).toBeUndefined();
      expect(r.out.equals(s.plaintext)).toBe(true);
    }
  });
});

describe('tampering', () => {
  it('every single-bit flip is rejected; streamed output is only ever a verified prefix', () => {
    for (const s of samples) {
      const header = parseHeader(s.message, limits)!;
      for (let i = 0; i < s.message.length; i++) {
        for (const bit of i < header.length ? [0x01, 0x80] : [0x01]) {
          const bad = Buffer.from(s.message);
          bad[i]! ^= bit;
          const err = expectRejected(() => bufferDecrypt(bad, s.dataKey));
          if (header.version === 2 && i >= 3 && i < 35) expect(err.code).toBe('ERR_COMMITMENT_MISMATCH'); // message id
          if (i >= header.length - 16 && i < header.length) expect(err.code).toBe('ERR_DECRYPTION_FAILED'); // header tag
          const r = streamDecrypt(bad, s.dataKey, 7);
          expect(r.error, `${s.name} byte ${i}`).toBeInstanceOf(EnvelopeError);
          expect(REJECTION_CODES).toContain((r.error as EnvelopeError).code);
          expect(s.plaintext.subarray(0, r.out.length).equals(r.out)).toBe(true);
        }
      }
    }
  });

  it('a wrong data key fails: commitment for v2, header tag for v1', () => {
    for (const s of samples) {
      const h = parseHeader(s.message, limits)!;
      const wrong = randomBytes(s.dataKey.length);
      const err = expectRejected(() => bufferDecrypt(s.message, wrong));
      expect(err.code).toBe(h.version === 2 ? 'ERR_COMMITMENT_MISMATCH' : 'ERR_DECRYPTION_FAILED');
    }
  });

  it('reordered, duplicated and dropped frames are rejected', () => {
    const m = makeMaterials(0x0478);
    const msg = encryptBuffer(prepareEncryption(m, 10), m.dataKey, randomBytes(35));
    const h = parseHeader(msg, limits)!;
    const frame = 4 + 12 + 10 + 16;
    const head = msg.subarray(0, h.length);
    const f = [0, 1, 2].map((i) => msg.subarray(h.length + i * frame, h.length + (i + 1) * frame));
    const final = msg.subarray(h.length + 3 * frame);
    for (const bad of [
      Buffer.concat([head, f[1]!, f[0]!, f[2]!, final]),
      Buffer.concat([head, f[0]!, f[0]!, f[1]!, f[2]!, final]),
      Buffer.concat([head, f[0]!, f[2]!, final]),
      Buffer.concat([head, f[0]!, f[1]!, f[2]!]),
      Buffer.concat([head, final]),
      Buffer.concat([head, f[0]!, f[1]!, f[2]!, final, final]),
    ]) {
      expect(expectRejected(() => bufferDecrypt(bad, m.dataKey)).code).toBe('ERR_MALFORMED_MESSAGE');
      const r = streamDecrypt(bad, m.dataKey, 13);
      expect((r.error as EnvelopeError).code).toBe('ERR_MALFORMED_MESSAGE');
    }
  });

  it('decryption failures all look the same', () => {
    const s = samples[1]!; // signed
    const messages = new Set<string>();
    const h = parseHeader(s.message, limits)!;
    for (const i of [h.length - 1, h.length + 30, s.message.length - 1]) {
      const bad = Buffer.from(s.message);
      bad[i]! ^= 0x10;
      const err = expectRejected(() => bufferDecrypt(bad, s.dataKey));
      expect(err.code).toBe('ERR_DECRYPTION_FAILED');
      messages.add(err.message);
    }
    expect(messages.size).toBe(1);
  });
});

describe('truncation and trailing bytes', () => {
  it('every truncation is rejected, never a short plaintext', () => {
    for (const s of samples) {
      for (let n = 0; n < s.message.length; n++) {
        const cut = s.message.subarray(0, n);
        expect(expectRejected(() => bufferDecrypt(cut, s.dataKey)).code).toBe('ERR_MALFORMED_MESSAGE');
        const r = streamDecrypt(cut, s.dataKey, 9);
        expect((r.error as EnvelopeError).code, `${s.name} cut at ${n}`).toBe('ERR_MALFORMED_MESSAGE');
        expect(s.plaintext.subarray(0, r.out.length).equals(r.out)).toBe(true);
      }
    }
  });

  it('bytes after the end of a complete message are rejected', () => {
    for (const s of samples) {
      for (const extra of [Buffer.alloc(1), randomBytes(100), s.message]) {
        const bad = Buffer.concat([s.message, extra]);
        expect(expectRejected(() => bufferDecrypt(bad, s.dataKey)).code).toBe('ERR_MALFORMED_MESSAGE');
        const r = streamDecrypt(bad, s.dataKey, 64);
        expect((r.error as EnvelopeError).code).toBe('ERR_MALFORMED_MESSAGE');
      }
    }
  });
});

describe('limits and hostile lengths', () => {
  it('maxEncryptedDataKeys', () => {
    const m = makeMaterials(0x0478);
    const edks = [m.encryptedDataKeys[0]!, m.encryptedDataKeys[0]!, m.encryptedDataKeys[0]!];
    const msg = encryptBuffer(prepareEncryption({ ...m, encryptedDataKeys: edks }, 64), m.dataKey, Buffer.alloc(3));
    expect(parseHeader(msg, { maxEncryptedDataKeys: 3 })!.encryptedDataKeys).toHaveLength(3);
    expect(() => parseHeader(msg, { maxEncryptedDataKeys: 2 })).toThrow(expect.objectContaining({ code: 'ERR_LIMIT_EXCEEDED' }));
    // The incremental decryptor fails as soon as the count is read (41 bytes in).
    const dec = new MessageDecryptor({ maxEncryptedDataKeys: 2 });
    dec.push(msg.subarray(0, 37));
    expect(() => dec.push(msg.subarray(37, 39))).toThrow(expect.objectContaining({ code: 'ERR_LIMIT_EXCEEDED' }));
    expect(() => dec.push(msg.subarray(39))).toThrow(expect.objectContaining({ code: 'ERR_LIMIT_EXCEEDED' }));
  });

  it('maxHeaderBytes stops a header that claims huge encrypted data keys before it is buffered', () => {
    // v2 header prefix: 65535 EDKs, each claiming a 65535-byte provider id.
    const prefix = Buffer.alloc(1 + 2 + 32 + 2 + 2);
    prefix[0] = 2;
    prefix.writeUInt16BE(0x0478, 1);
    prefix.writeUInt16BE(0, 35);
    prefix.writeUInt16BE(0xffff, 37);
    const edk = Buffer.alloc(2);
    edk.writeUInt16BE(0xffff);
    const dec = new MessageDecryptor({ maxEncryptedDataKeys: 0xffff, maxHeaderBytes: 4096 });
    dec.push(prefix);
    expect(() => dec.push(edk)).toThrow(expect.objectContaining({ code: 'ERR_LIMIT_EXCEEDED' }));
    expect(tryParseHeader(Buffer.concat([prefix, edk]), { maxEncryptedDataKeys: 0xffff, maxHeaderBytes: 65536 + 100 })).toBe(
      41 + 65535 + 2,
    );
    // Default cap is 1 MiB.
    expect(() => parseHeader(Buffer.concat([prefix, edk]), { maxEncryptedDataKeys: 0xffff })).not.toThrow();
    const s = samples[0]!;
    const h = parseHeader(s.message, limits)!;
    expect(() => parseHeader(s.message, { ...limits, maxHeaderBytes: h.length - 1 })).toThrow(
      expect.objectContaining({ code: 'ERR_LIMIT_EXCEEDED' }),
    );
    expect(parseHeader(s.message, { ...limits, maxHeaderBytes: h.length })).toBeDefined();
  });

  it('maxFrameLength is enforced from the header, before a key is requested', () => {
    const m = makeMaterials(0x0478);
    const msg = encryptBuffer(prepareEncryption(m, (1 << 20) + 1), m.dataKey, Buffer.alloc(10));
    const dec = new MessageDecryptor({ ...limits, maxFrameLength: 1 << 20 });
    expect(() => dec.push(msg)).toThrow(expect.objectContaining({ code: 'ERR_LIMIT_EXCEEDED' }));
    expect(dec.needsKey).toBe(false);
    expect(streamDecrypt(msg, m.dataKey, 1000, { maxFrameLength: (1 << 20) + 1 }).error).toBeUndefined();
  });

  it('maxBodyBytes bounds non-framed bodies in the incremental decryptor', () => {
    const s = samples.find((x) => x.name === 'non-framed 0x114')!;
    const r = streamDecrypt(s.message, s.dataKey, 10, { maxBodyBytes: 32 });
    expect((r.error as EnvelopeError).code).toBe('ERR_LIMIT_EXCEEDED');
    expect(streamDecrypt(s.message, s.dataKey, 10, { maxBodyBytes: 33 }).error).toBeUndefined();
  });

  it('huge claimed content lengths fail on structure, without allocating them', () => {
    // Frame length 2^32 - 1 is legal; a final frame claiming 4 GiB of content is just truncated.
    const m = makeMaterials(0x0478);
    const msg = encryptBuffer(prepareEncryption(m, 2 ** 32 - 1), m.dataKey, Buffer.alloc(5));
    const h = parseHeader(msg, limits)!;
    const bad = Buffer.from(msg);
    bad.writeUInt32BE(0xfffffff0, h.length + 20);
    expect(expectRejected(() => bufferDecrypt(bad, m.dataKey)).code).toBe('ERR_MALFORMED_MESSAGE');
    const r = streamDecrypt(bad, m.dataKey, 1000, { maxFrameLength: 2 ** 32 - 1 });
    expect((r.error as EnvelopeError).code).toBe('ERR_MALFORMED_MESSAGE');

    // Non-framed: a u64 content length beyond the AES-GCM limit, or beyond 2^53.
    const s = samples.find((x) => x.name === 'non-framed 0x114')!;
    const nh = parseHeader(s.message, limits)!;
    for (const [hi, lo] of [
      [0x10, 0],
      [0xffffffff, 0xffffffff],
      [0x0f, 0xffffffff],
    ]) {
      const b = Buffer.from(s.message);
      b.writeUInt32BE(hi!, nh.length + 12);
      b.writeUInt32BE(lo!, nh.length + 16);
      expect(expectRejected(() => bufferDecrypt(b, s.dataKey)).code).toBe('ERR_MALFORMED_MESSAGE');
      const rs = streamDecrypt(b, s.dataKey, 1000, { maxBodyBytes: Number.MAX_SAFE_INTEGER });
      expect(['ERR_MALFORMED_MESSAGE', 'ERR_LIMIT_EXCEEDED']).toContain((rs.error as EnvelopeError).code);
    }
  });
});

describe('header parsing', () => {
  const s = () => samples[0]!;

  it('every strict prefix of a header is "need more", with monotone byte counts', () => {
    for (const sample of samples) {
      const h = parseHeader(sample.message, limits)!;
      let last = 0;
      for (let n = 0; n < h.length; n++) {
        expect(parseHeader(sample.message.subarray(0, n), limits)).toBeUndefined();
        const need = tryParseHeader(sample.message.subarray(0, n), limits) as number;
        expect(need).toBeGreaterThan(n);
        expect(need).toBeGreaterThanOrEqual(last);
        expect(need).toBeLessThanOrEqual(h.length);
        last = need;
      }
    }
  });

  it('the parsed header does not alias the input', () => {
    const msg = Buffer.from(s().message);
    const h = parseHeader(msg, limits)!;
    const id = Buffer.from(h.messageId);
    msg.fill(0);
    expect(h.messageId.equals(id)).toBe(true);
    expect(bufferDecrypt(s().message, s().dataKey).equals(s().plaintext)).toBe(true);
  });

  it('rejects bad versions, suites, content types and reserved fields', () => {
    const v2 = s().message;
    const v1 = samples.find((x) => x.name.startsWith('esdk v1'))!.message;
    const h1 = parseHeader(v1, limits)!;
    const h2 = parseHeader(v2, limits)!;
    const cases: [Buffer, number, number, RegExp | undefined][] = [
      [v2, 0, 3, /version/],
      [v2, 0, 0x41, /base64/],
      [v2, 1, 0x01, undefined], // suite 0x0178 in a v2 header
      [v2, 2, 0x99, /suite/],
      [v1, 0, 2, undefined], // v1 bytes read as v2: suite 0x8001 unknown
      [v1, 1, 0x81, undefined], // v1 type must be 0x80
      [v2, h2.length - 16 - 32 - 5, 3, /content type/],
      [v2, h2.length - 16 - 32 - 5, 1, /frame length/], // non-framed with a frame length
      [v1, h1.length - 28 - 10 + 1, 1, undefined], // reserved bytes
      [v1, h1.length - 28 - 10 + 5, 16, undefined], // IV length
    ];
    for (const [msg, at, value, re] of cases) {
      const b = Buffer.from(msg);
      b[at] = value;
      let err: unknown;
      try {
        parseHeader(b, limits);
      } catch (e) {
        err = e;
      }
      expect((err as EnvelopeError)?.code, `byte ${at} = ${value}`).toBe('ERR_MALFORMED_MESSAGE');
      if (re) expect((err as Error).message).toMatch(re);
    }
    // Zero encrypted data keys.
    const b = Buffer.from(v2);
    const edkCountAt = 37 + b.readUInt16BE(35);
    b.writeUInt16BE(0, edkCountAt);
    expect(() => parseHeader(b, limits)).toThrow(/no encrypted data keys/);
  });

  it('a signed message without a valid public key in its context is malformed', () => {
    const suite = SUITES.get(0x0578)!;
    const dataKey = randomBytes(32);
    const k = generateSigningKey(suite);
    for (const context of [{ other: 'x' }, { 'aws-crypto-public-key': 'AAAA' }] as Record<string, string>[]) {
      const message = writeMessage({
        suite: { ...suite, kdfHash: 'sha512', signatureHash: 'sha384' },
        dataKey,
        context,
        edks: [wrapDataKey(dataKey, context)],
        plaintext: Buffer.from('x'),
        frameLength: 64,
        signingKey: k.privateKey,
      });
      expect(expectRejected(() => bufferDecrypt(message, dataKey)).code).toBe('ERR_MALFORMED_MESSAGE');
    }
  });

  it('a DecryptionKey cannot be made without verifying the header', () => {
    const h = parseHeader(samples[0]!.message, limits)!;
    const key = deriveAndVerifyHeader(h, samples[0]!.dataKey);
    const Ctor = key.constructor as new (...a: unknown[]) => unknown;
    expect(() => new Ctor(Symbol('DecryptionKey'), h, Buffer.alloc(32), undefined)).toThrow(TypeError);
    const other = parseHeader(samples[0]!.message, limits)!;
    expect(() => decryptBody(other, key, samples[0]!.message)).toThrow(TypeError);
  });

  it('limits are validated', () => {
    expect(() => parseHeader(s().message, { maxEncryptedDataKeys: 0 })).toThrow(RangeError);
    expect(() => new MessageDecryptor({ maxEncryptedDataKeys: 1.5 })).toThrow(/maxEncryptedDataKeys/);
    expect(() => new MessageDecryptor({ ...limits, maxFrameLength: 0 })).toThrow(/maxFrameLength/);
    expect(() => new MessageDecryptor({ ...limits, maxBodyBytes: -1 })).toThrow(/maxBodyBytes/);
    expect(() => new MessageDecryptor({ ...limits, maxHeaderBytes: Number.NaN })).toThrow(/maxHeaderBytes/);
  });
});
