/**
 * Helpers for the specification tests (test/spec/*.test.ts): a keyring with a known data key that
 * records what it was asked, stream drivers that report everything a consumer saw, and an
 * independent implementation of the pieces of the message format the tests check our output
 * against (node:crypto only, none of the library's format code).
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import type { Transform } from 'node:stream';
import { Envelope, EnvelopeError, type EnvelopeOptions } from '../../src/index.js';
import type { EncryptedDataKey, EncryptionContext, Keyring, KeyringDecryptInput, KeyringEncryptInput, KeyringEncryptOutput } from '../../src/types.js';

/** Provider id of the EDKs RecordingKeyring writes and accepts. */
export const PROVIDER_ID = 'spec-tests';

/**
 * A keyring with one known data key that ignores the context (so tests can re-seal modified
 * messages with it), writes `edkCount` EDKs with recognizable bytes, and records every call.
 * Every returned data key is a fresh copy: the caller may zero it.
 */
export class RecordingKeyring implements Keyring {
  readonly encryptInputs: { suiteId: number; context: EncryptionContext; dataKey?: Buffer }[] = [];
  readonly decryptInputs: { suiteId: number; context: EncryptionContext; encryptedDataKeys: EncryptedDataKey[] }[] = [];
  readonly edks: EncryptedDataKey[];
  constructor(
    readonly dataKey: Buffer = randomBytes(32),
    edkCount = 1,
  ) {
    this.edks = Array.from({ length: edkCount }, (_, i) => ({
      providerId: PROVIDER_ID,
      providerInfo: Buffer.from(`key-${i}`),
      ciphertext: Buffer.alloc(24 + i, 0xa0 + i),
    }));
  }
  get calls(): number {
    return this.encryptInputs.length + this.decryptInputs.length;
  }
  async onEncrypt(input: KeyringEncryptInput): Promise<KeyringEncryptOutput> {
    this.encryptInputs.push({
      suiteId: input.suiteId,
      context: { ...input.context },
      ...(input.dataKey ? { dataKey: Buffer.from(input.dataKey) } : {}),
    });
    return {
      dataKey: Buffer.from(this.dataKey.subarray(0, keyLengthOf(input.suiteId))),
      encryptedDataKeys: this.edks.map((e) => ({ ...e })),
    };
  }
  async onDecrypt(input: KeyringDecryptInput): Promise<Uint8Array | undefined> {
    this.decryptInputs.push({
      suiteId: input.suiteId,
      context: { ...input.context },
      encryptedDataKeys: input.encryptedDataKeys.map((e) => ({ ...e })),
    });
    if (!input.encryptedDataKeys.some((e) => e.providerId === PROVIDER_ID)) return undefined;
    return Buffer.from(this.dataKey.subarray(0, keyLengthOf(input.suiteId)));
  }
}

/** Data key length of an ESDK suite id (framework/algorithm-suites.md: 0x__14 = 16, 0x__46 = 24, 0x__78 = 32). */
export function keyLengthOf(suiteId: number): number {
  const low = suiteId & 0xff;
  return low === 0x14 ? 16 : low === 0x46 ? 24 : 32;
}

export function envelopeWith(keyring: Keyring, options: Omit<EnvelopeOptions, 'keyring' | 'kms'> = {}): Envelope {
  return new Envelope({ keyring, ...options });
}

/** What a consumer of a stream saw: every 'data' chunk, and whether it ended or failed. */
export interface StreamRun {
  chunks: Buffer[];
  out: Buffer;
  error: unknown;
  ended: boolean;
  /** Events in order: 'header', 'data', 'end', 'error'. */
  events: string[];
}

/** Writes `inputs` one after the other (each after the previous was taken), then ends the stream. */
export function runStream(stream: Transform, inputs: readonly Uint8Array[]): Promise<StreamRun> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const events: string[] = [];
    let settled = false;
    const finish = (error: unknown, ended: boolean): void => {
      if (settled) return;
      settled = true;
      resolve({ chunks, out: Buffer.concat(chunks), error, ended, events });
    };
    stream.on('header', () => events.push('header'));
    stream.on('data', (b: Buffer) => {
      events.push('data');
      chunks.push(Buffer.from(b));
    });
    stream.on('error', (e) => {
      events.push('error');
      finish(e, false);
    });
    stream.on('end', () => {
      events.push('end');
      finish(undefined, true);
    });
    let i = 0;
    const next = (): void => {
      if (settled || stream.destroyed) return;
      if (i === inputs.length) {
        stream.end();
        return;
      }
      stream.write(inputs[i++]!, (err) => {
        if (!err) next();
      });
    };
    next();
  });
}

/** The rejection of `p` as an EnvelopeError (fails the test if `p` resolves or throws anything else). */
export async function envelopeErrorOf(p: Promise<unknown>): Promise<EnvelopeError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof EnvelopeError) return e;
    throw new Error(`expected an EnvelopeError, got ${String(e)}`);
  }
  throw new Error('expected a rejection, but the promise resolved');
}

// --- Independent implementation of the format's cryptography ----------------------------------

export const LABEL_FRAME = 'AWSKMSEncryptionClient Frame';
export const LABEL_FINAL_FRAME = 'AWSKMSEncryptionClient Final Frame';
export const LABEL_SINGLE_BLOCK = 'AWSKMSEncryptionClient Single Block';

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}
export function u64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/**
 * Serialized encryption context as framework/structures.md describes it: nothing for an empty
 * context, else a u16 pair count and u16-length-prefixed UTF-8 key and value per pair, sorted by the
 * UTF-8 bytes of the keys.
 */
export function expectedContextBytes(context: Readonly<EncryptionContext>): Buffer {
  const pairs = Object.entries(context).map(([k, v]) => [Buffer.from(k, 'utf8'), Buffer.from(v, 'utf8')] as const);
  if (pairs.length === 0) return Buffer.alloc(0);
  pairs.sort((a, b) => Buffer.compare(a[0], b[0]));
  return Buffer.concat([u16(pairs.length), ...pairs.flatMap(([k, v]) => [u16(k.length), k, u16(v.length), v])]);
}

/**
 * Message format v2 key schedule (suites 0x0478 / 0x0578): HKDF-SHA512 with the message id as
 * salt and the data key as input; the encryption key expands `suite id || "DERIVEKEY"`, the commit
 * key expands `"COMMITKEY"` (both one 64-byte block, cut to 32 bytes).
 */
export function v2Keys(suiteId: number, dataKey: Buffer, messageId: Buffer): { key: Buffer; commitment: Buffer } {
  const prk = createHmac('sha512', messageId).update(dataKey).digest();
  const expand = (info: Buffer): Buffer => createHmac('sha512', prk).update(Buffer.concat([info, Buffer.from([1])])).digest().subarray(0, 32);
  return { key: expand(Buffer.concat([u16(suiteId), Buffer.from('DERIVEKEY')])), commitment: expand(Buffer.from('COMMITKEY')) };
}

/** Body AAD (data-format/message-body-aad.md): message id | label | u32 sequence number | u64 content length. */
export function bodyAad(messageId: Buffer, label: string, sequenceNumber: number, contentLength: number): Buffer {
  return Buffer.concat([messageId, Buffer.from(label, 'ascii'), u32(sequenceNumber), u64(contentLength)]);
}

export function gcmSeal(key: Buffer, iv: Buffer, aad: Buffer, plaintext: Buffer): { ct: Buffer; tag: Buffer } {
  const c = createCipheriv(`aes-${key.length * 8}-gcm` as 'aes-256-gcm', key, iv);
  c.setAAD(aad);
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return { ct, tag: c.getAuthTag() };
}

/** AES-GCM decryption; throws when the tag does not verify. */
export function gcmOpen(key: Buffer, iv: Buffer, aad: Buffer, ct: Buffer, tag: Buffer): Buffer {
  const d = createDecipheriv(`aes-${key.length * 8}-gcm` as 'aes-256-gcm', key, iv);
  d.setAAD(aad);
  d.setAuthTag(tag);
  return Buffer.concat([d.update(ct), d.final()]);
}
