/**
 * Shared helpers for the stream tests: stream deps built straight from a RawAesKeyring and the
 * format engine (so these tests exercise src/stream alone), deterministic data, and collectors.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RawAesKeyring } from '../../src/keyrings/raw-aes.js';
import { prepareEncryption } from '../../src/format/encrypt.js';
import { SUITES } from '../../src/format/suites.js';
import { generateSigningKey } from '../../src/crypto/ecdsa.js';
import { PUBLIC_KEY_CONTEXT_KEY } from '../../src/format/context.js';
import type { MessageHeader } from '../../src/format/header.js';
import {
  createDecryptStream,
  createEncryptStream,
  type DecryptStream,
  type EncryptStream,
} from '../../src/stream/index.js';
import type { EncryptionContext } from '../../src/types.js';
import { NoDecryptableKeyError } from '../../src/errors.js';

export const WRAPPING_KEY = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
export const KEY_NAMESPACE = 'stream-tests';
export const KEY_NAME = 'wrapping-key';

export function keyring(): RawAesKeyring {
  return new RawAesKeyring({ keyNamespace: KEY_NAMESPACE, keyName: KEY_NAME, key: WRAPPING_KEY });
}

export interface EncOptions {
  suiteId?: number;
  frameLength?: number;
  context?: EncryptionContext;
  plaintextLength?: number;
  /** Receives every data key handed to the stream, to check it was zeroed. */
  keys?: Buffer[];
  /** Delay before materials resolve, in ms (to exercise destroy-while-waiting). */
  delayMs?: number;
}

export function encryptStream(o: EncOptions = {}): EncryptStream {
  const ring = keyring();
  const suite = SUITES.get(o.suiteId ?? 0x0478)!;
  return createEncryptStream({
    ...(o.plaintextLength !== undefined ? { plaintextLength: o.plaintextLength } : {}),
    async materials() {
      if (o.delayMs !== undefined) await new Promise((r) => setTimeout(r, o.delayMs));
      let context: EncryptionContext = { ...(o.context ?? {}) };
      let signingKey;
      if (suite.signatureCurve !== undefined) {
        const pair = generateSigningKey(suite);
        signingKey = pair.privateKey;
        context = { ...context, [PUBLIC_KEY_CONTEXT_KEY]: pair.publicKey };
      }
      const out = await ring.onEncrypt({ suiteId: suite.id, context });
      const dataKey = Buffer.from(out.dataKey);
      o.keys?.push(dataKey);
      const prepared = prepareEncryption(
        { suite, dataKey, encryptedDataKeys: out.encryptedDataKeys, context, signingKey },
        o.frameLength ?? 4096,
      );
      return { prepared, dataKey };
    },
  });
}

export interface DecOptions {
  keys?: Buffer[];
  delayMs?: number;
  /** Fails dataKey() with this error. */
  reject?: Error;
}

export function decryptStream(o: DecOptions = {}): DecryptStream {
  const ring = keyring();
  return createDecryptStream({
    limits: { maxEncryptedDataKeys: 10, maxHeaderBytes: 1 << 20 },
    async dataKey(header: MessageHeader) {
      if (o.delayMs !== undefined) await new Promise((r) => setTimeout(r, o.delayMs));
      if (o.reject !== undefined) throw o.reject;
      const key = await ring.onDecrypt({
        suiteId: header.suite.id,
        context: header.context,
        encryptedDataKeys: header.encryptedDataKeys,
      });
      if (key === undefined) throw new NoDecryptableKeyError();
      const copy = Buffer.from(key);
      o.keys?.push(copy);
      return copy;
    },
  });
}

/** Deterministic pseudo-random bytes: an AES-128-CTR keystream (fast, seeded). */
export function prng(length: number, seed = 1): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32BE(seed >>> 0, 0);
  const c = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return c.update(Buffer.alloc(length));
}

/** Splits `data` into chunks of the given sizes (cycling through them). */
export function chunked(data: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let o = 0;
  let i = 0;
  while (o < data.length) {
    const n = Math.max(1, sizes[i++ % sizes.length]!);
    out.push(data.subarray(o, o + n));
    o += n;
  }
  return out;
}

/** Runs `chunks` through `t` and collects the output; rejects with the stream's error. */
export async function run(t: Transform, chunks: readonly Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks, { objectMode: false }),
    t,
    new Writable({
      write(chunk: Buffer, _e, cb) {
        out.push(chunk);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

/**
 * Runs `chunks` through `t`, collecting output until it ends or fails. Never rejects: returns what
 * was emitted and the error, if any.
 */
export async function runCollect(t: Transform, chunks: readonly Buffer[]): Promise<{ out: Buffer; error: unknown }> {
  const out: Buffer[] = [];
  try {
    await pipeline(
      Readable.from(chunks, { objectMode: false }),
      t,
      new Writable({
        write(chunk: Buffer, _e, cb) {
          out.push(chunk);
          cb();
        },
      }),
    );
    return { out: Buffer.concat(out), error: undefined };
  } catch (error) {
    return { out: Buffer.concat(out), error };
  }
}

export async function encrypt(data: Buffer, o: EncOptions = {}, sizes: readonly number[] = [65536]): Promise<Buffer> {
  return run(encryptStream(o), chunked(data, sizes));
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}
