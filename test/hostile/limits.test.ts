/**
 * Attacker-controlled lengths must not drive allocation or keyring calls beyond the configured
 * limits: a header claiming a 4 GiB frame, 64 MiB+ of non-framed body, 65,535 EDKs or a 16 MiB
 * header. Each case runs through Envelope.decrypt and Envelope.decryptStream with an allocation
 * probe (largest single Buffer allocation) and process.memoryUsage().arrayBuffers sampled after
 * every write, and checks ERR_LIMIT_EXCEEDED where a limit applies.
 */
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { Envelope, EnvelopeError } from '../../src/index.js';
import { encryptBuffer, prepareEncryption } from '../../src/format/encrypt.js';
import { suiteFromOption } from '../../src/format/suites.js';
import { AllocationProbe, CountingKeyring, FixedKeyring, guard, rawKeyring } from './harness.js';
import { layout, openModel, parseModel, seal, serializeHeader, serializeModel, type MessageModel } from './model.js';

const MiB = 1024 * 1024;
const probe = new AllocationProbe();

interface Fed {
  error: unknown;
  ended: boolean;
  out: number;
  /** Input bytes accepted before the stream failed. */
  fed: number;
  largestAllocation: number;
  /** Highest arrayBuffers growth seen after any write. */
  peakGrowth: number;
}

/**
 * Writes `total` bytes produced by `chunk(offset)` into a decryptStream, one write at a time,
 * stopping as soon as the stream fails; samples memory after every write.
 */
async function feed(envelope: Envelope, head: Buffer, total: number, chunk: (offset: number) => Buffer): Promise<Fed> {
  const s = envelope.decryptStream();
  let error: unknown;
  let ended = false;
  let out = 0;
  s.on('data', (b: Buffer) => (out += b.length));
  s.on('error', (e) => (error = e));
  const done = new Promise<void>((resolve) => {
    s.on('error', () => resolve());
    s.on('end', () => {
      ended = true;
      resolve();
    });
  });
  const base = process.memoryUsage().arrayBuffers;
  let peakGrowth = 0;
  let fed = 0;
  probe.start();
  try {
    const write = (b: Buffer) => new Promise<void>((resolve) => s.write(b, () => resolve()));
    await guard(write(head), 'write header');
    fed += head.length;
    while (fed < total && error === undefined && !s.destroyed) {
      const b = chunk(fed);
      await guard(write(b), 'write');
      fed += b.length;
      peakGrowth = Math.max(peakGrowth, process.memoryUsage().arrayBuffers - base);
    }
    if (error === undefined && !s.destroyed) s.end();
    await guard(done, 'stream end');
  } finally {
    probe.stop();
  }
  return { error, ended, out, fed, largestAllocation: probe.largest, peakGrowth };
}

async function bufferDecrypt(envelope: Envelope, message: Buffer): Promise<{ error: unknown; largestAllocation: number; ok: boolean }> {
  probe.start();
  try {
    await guard(envelope.decrypt(message), 'decrypt');
    return { error: undefined, ok: true, largestAllocation: probe.stop() };
  } catch (error) {
    return { error, ok: false, largestAllocation: probe.stop() };
  }
}

function code(e: unknown): string {
  if (!(e instanceof EnvelopeError)) throw new Error(`expected an EnvelopeError, got ${String(e)}`);
  return e.code;
}

const zeros = Buffer.alloc(64 * 1024);
const fixedKey = randomBytes(32);
let fixedKeyring: CountingKeyring;
let fixedEnvelope: Envelope;
let opened: MessageModel;

beforeAll(async () => {
  fixedKeyring = new CountingKeyring(new FixedKeyring(fixedKey));
  fixedEnvelope = new Envelope({ keyring: fixedKeyring });
  const written = await new Envelope({ keyring: new FixedKeyring(fixedKey), frameLength: 64 }).encrypt(randomBytes(100), {
    context: { purpose: 'limits' },
  });
  opened = openModel(parseModel(written), fixedKey);
});

/** A sealed (authentic) message from `opened` with its fields changed by `change`. */
function sealedWith(change: (m: MessageModel) => void): Buffer {
  return sealedParts(change).bytes;
}

/** As sealedWith, plus the header length (the bytes may not parse as a whole). */
function sealedParts(change: (m: MessageModel) => void): { bytes: Buffer; headerLength: number } {
  const m = structuredClone(opened) as MessageModel;
  // structuredClone turns Buffers into Uint8Arrays; make them Buffers again.
  const fix = (x: unknown): unknown => {
    if (x instanceof Uint8Array) return Buffer.from(x);
    if (Array.isArray(x)) return x.map(fix);
    if (x !== null && typeof x === 'object') {
      for (const [k, v] of Object.entries(x)) (x as Record<string, unknown>)[k] = fix(v);
    }
    return x;
  };
  fix(m);
  change(m);
  const sealed = seal(m, { dataKey: fixedKey });
  return { bytes: serializeModel(sealed), headerLength: serializeHeader(sealed).length };
}

describe('the allocation probe', () => {
  it('sees Buffer.alloc, allocUnsafe and concat sizes', () => {
    probe.start();
    Buffer.alloc(1000);
    Buffer.concat([Buffer.alloc(10), Buffer.alloc(5000)]);
    Buffer.allocUnsafe(3000);
    expect(probe.stop()).toBe(5010);
    Buffer.alloc(10_000); // not recorded after stop()
    expect(probe.largest).toBe(5010);
  });
});

describe('frame length', () => {
  it('a header announcing 4 GiB frames: the stream refuses it before any key (ERR_LIMIT_EXCEEDED) and allocates nothing of that size', async () => {
    const keyring = new CountingKeyring(rawKeyring());
    const envelope = new Envelope({ keyring });
    // The Envelope writes frames of at most 2^31 - 1 bytes (what every ESDK reads); the format allows
    // up to 2^32 - 1, so the 4 GiB header is written with the format layer under the keyring's key.
    const materials = await keyring.onEncrypt({ suiteId: 0x0478, context: {} });
    const dataKey = Buffer.from(materials.dataKey);
    const prepared = prepareEncryption(
      { suite: suiteFromOption(0x0478), dataKey, encryptedDataKeys: materials.encryptedDataKeys, context: {}, signingKey: undefined },
      0xffffffff,
    );
    const message = encryptBuffer(prepared, dataKey, randomBytes(5));
    expect(message.readUInt32BE(prepared.template.authenticatedLength - 36)).toBe(0xffffffff);
    const calls0 = keyring.decryptCalls;
    const r = await feed(envelope, message, 8 * MiB, () => zeros);
    expect(code(r.error)).toBe('ERR_LIMIT_EXCEEDED');
    expect(r.out).toBe(0);
    expect(keyring.decryptCalls).toBe(calls0);
    expect(r.largestAllocation).toBeLessThan(128 * 1024);
    expect(r.peakGrowth).toBeLessThan(4 * MiB);
    // The buffer API has the whole message already: it decrypts the 5-byte final frame, allocating
    // in proportion to the message, not to the announced frame length.
    const b = await bufferDecrypt(envelope, message);
    expect(b.ok).toBe(true);
    expect(b.largestAllocation).toBeLessThanOrEqual(message.length + 64);
  });

  it('4 GiB frames with a final frame claiming 0xFFFFFFF0 bytes: rejected as truncated, nothing allocated for it', async () => {
    const bytes = sealedWith((m) => {
      m.frameLength = 0xffffffff;
      if (m.body.kind !== 'framed') throw new Error('framed');
      const all = Buffer.concat(m.body.frames.map((f) => f.plaintext!));
      m.body.frames = [{ final: true, sequenceNumber: 1, iv: randomBytes(12), content: Buffer.alloc(0), tag: Buffer.alloc(16), plaintext: all, declaredLength: 0xfffffff0 }];
    });
    const b = await bufferDecrypt(fixedEnvelope, bytes);
    expect(code(b.error)).toBe('ERR_MALFORMED_MESSAGE');
    expect(b.largestAllocation).toBeLessThan(bytes.length + 1024);
  });

  it('16 MiB frames (the stream limit) announced, 256 KiB sent: memory follows the input, not the announcement', async () => {
    const { bytes, headerLength } = sealedParts((m) => void (m.frameLength = 16 * MiB));
    const header = bytes.subarray(0, headerLength + 16); // header, then frame 1's sequence number and IV
    const r = await feed(fixedEnvelope, header, header.length + 256 * 1024, () => zeros);
    expect(code(r.error)).toBe('ERR_MALFORMED_MESSAGE'); // truncated: the first frame never completes
    expect(r.fed).toBe(header.length + 256 * 1024); // all of it was taken in before the end
    expect(r.out).toBe(0);
    expect(r.largestAllocation).toBeLessThan(128 * 1024);
    expect(r.peakGrowth).toBeLessThan(4 * MiB);
    // One byte over the limit is refused before the key is requested.
    const over = sealedParts((m) => void (m.frameLength = 16 * MiB + 1));
    const calls0 = fixedKeyring.decryptCalls;
    const r2 = await feed(fixedEnvelope, over.bytes.subarray(0, over.headerLength), 1 * MiB, () => zeros);
    expect(code(r2.error)).toBe('ERR_LIMIT_EXCEEDED');
    expect(fixedKeyring.decryptCalls).toBe(calls0);
  });
});

describe('non-framed bodies (one tag: the stream must hold all of it)', () => {
  const nonFramed = (declared: bigint | undefined) =>
    sealedParts((m) => {
      if (m.body.kind !== 'framed') throw new Error('framed');
      const pt = Buffer.concat(m.body.frames.map((f) => f.plaintext!));
      m.contentType = 1;
      m.frameLength = 0;
      m.body = { kind: 'nonFramed', part: { iv: randomBytes(12), content: Buffer.alloc(0), tag: Buffer.alloc(16), plaintext: pt, ...(declared !== undefined ? { declaredLength: declared } : {}) } };
    });

  it('the model writes a valid non-framed message', async () => {
    const b = await bufferDecrypt(fixedEnvelope, nonFramed(undefined).bytes);
    expect(b.ok).toBe(true);
  });

  it.each([
    [64n * BigInt(MiB) + 1n, 'ERR_LIMIT_EXCEEDED'],
    [2n ** 36n - 32n, 'ERR_LIMIT_EXCEEDED'],
    [2n ** 36n - 31n, 'ERR_MALFORMED_MESSAGE'], // beyond the AES-GCM limit of the format
    [2n ** 53n + 5n, 'ERR_MALFORMED_MESSAGE'],
    [2n ** 64n - 1n, 'ERR_MALFORMED_MESSAGE'],
  ])('declared length %s: stream %s, buffer truncated, no large allocation', async (declared, streamCode) => {
    const { bytes, headerLength } = nonFramed(declared);
    const header = bytes.subarray(0, headerLength);
    const r = await feed(fixedEnvelope, Buffer.concat([header, bytes.subarray(header.length, header.length + 20)]), 2 * MiB, () => zeros);
    expect(code(r.error)).toBe(streamCode);
    expect(r.out).toBe(0);
    expect(r.largestAllocation).toBeLessThan(128 * 1024);
    expect(r.peakGrowth).toBeLessThan(4 * MiB);
    const b = await bufferDecrypt(fixedEnvelope, bytes);
    expect(code(b.error)).toBe('ERR_MALFORMED_MESSAGE');
    expect(b.largestAllocation).toBeLessThan(bytes.length + 1024);
  });

  it('exactly 64 MiB declared, 512 KiB sent: held plaintext follows the input', async () => {
    const { bytes, headerLength } = nonFramed(64n * BigInt(MiB));
    const header = bytes.subarray(0, headerLength + 20);
    const r = await feed(fixedEnvelope, header, header.length + 512 * 1024, () => zeros);
    expect(code(r.error)).toBe('ERR_MALFORMED_MESSAGE');
    expect(r.out).toBe(0);
    expect(r.largestAllocation).toBeLessThan(128 * 1024);
    expect(r.peakGrowth).toBeLessThan(6 * MiB);
  });
});

describe('encrypted data keys', () => {
  it('more EDKs than maxEncryptedDataKeys: ERR_LIMIT_EXCEEDED with no keyring call, as soon as the count is read', async () => {
    for (const count of [11, 1000, 65535]) {
      const bytes = sealedWith((m) => {
        m.edks = Array.from({ length: Math.min(count, 20) }, () => ({ ...m.edks[0]! }));
        m.edkCount = count;
      });
      const calls0 = fixedKeyring.decryptCalls;
      const b = await bufferDecrypt(fixedEnvelope, bytes);
      expect(code(b.error)).toBe('ERR_LIMIT_EXCEEDED');
      const countEnd = 37 + bytes.readUInt16BE(35) + 2;
      // The stream gets exactly the bytes up to the count: that alone must fail it.
      const r = await feed(fixedEnvelope, bytes.subarray(0, countEnd), countEnd, () => zeros);
      expect(code(r.error)).toBe('ERR_LIMIT_EXCEEDED');
      expect(r.fed).toBe(countEnd);
      expect(fixedKeyring.decryptCalls).toBe(calls0);
    }
    // Within a raised limit the same 11 keys decrypt.
    const eleven = sealedWith((m) => void (m.edks = Array.from({ length: 11 }, () => ({ ...m.edks[0]! }))));
    const raised = new Envelope({ keyring: new FixedKeyring(fixedKey), maxEncryptedDataKeys: 11 });
    expect((await bufferDecrypt(raised, eleven)).ok).toBe(true);
  });

  it('65,535 EDKs claiming 65,535-byte fields: maxHeaderBytes stops the stream after about 1 MiB, with bounded memory', async () => {
    const keyring = new CountingKeyring(new FixedKeyring(fixedKey));
    const envelope = new Envelope({ keyring, maxEncryptedDataKeys: 0xffff });
    // version 2, suite 0x0478, message id, empty context, EDK count 65,535
    const head = Buffer.concat([Buffer.from([2, 0x04, 0x78]), randomBytes(32), Buffer.from([0, 0, 0xff, 0xff])]);
    // One EDK field announcing 65,535 bytes, then more of the same.
    const field = Buffer.alloc(2 + 0xffff);
    field.writeUInt16BE(0xffff, 0);
    const r = await feed(envelope, head, 8 * MiB, () => field);
    expect(code(r.error)).toBe('ERR_LIMIT_EXCEEDED');
    expect(r.fed).toBeLessThan(1 * MiB + 3 * field.length);
    expect(r.largestAllocation).toBeLessThan(1 * MiB + 256 * 1024);
    expect(r.peakGrowth).toBeLessThan(8 * MiB);
    expect(keyring.decryptCalls).toBe(0);
    const whole = Buffer.concat([head, ...Array.from({ length: 20 }, () => field)]);
    const b = await bufferDecrypt(envelope, whole);
    expect(code(b.error)).toBe('ERR_LIMIT_EXCEEDED');
    expect(b.largestAllocation).toBeLessThan(64 * 1024);
  });

  it('a header over a small maxHeaderBytes is refused (buffer and stream) without a keyring call', async () => {
    const keyring = new CountingKeyring(new FixedKeyring(fixedKey));
    const message = await new Envelope({ keyring: new FixedKeyring(fixedKey) }).encrypt('x', { context: { pad: 'p'.repeat(300) } });
    const headerLength = layout(parseModel(message)).headerLength;
    const small = new Envelope({ keyring, maxHeaderBytes: headerLength - 1 });
    expect(code((await bufferDecrypt(small, message)).error)).toBe('ERR_LIMIT_EXCEEDED');
    expect(code((await feed(small, message, message.length, () => zeros)).error)).toBe('ERR_LIMIT_EXCEEDED');
    expect(keyring.decryptCalls).toBe(0);
    const exact = new Envelope({ keyring, maxHeaderBytes: headerLength });
    expect((await bufferDecrypt(exact, message)).ok).toBe(true);
  });
});
