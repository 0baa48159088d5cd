/**
 * A deliberately plain, independent message writer for tests: it produces shapes the ESDK for
 * JavaScript cannot write (non-framed bodies, v1 non-framed, random frame IVs like older ESDKs,
 * arbitrary tampering-friendly layouts). Every shape it writes is first checked against the
 * reference implementation's decrypt in interop.test.ts, so it is an oracle-validated fixture.
 * It uses node:crypto directly and none of the code under test except serializeContext.
 */
import { createCipheriv, createHmac, randomBytes, sign, type KeyObject } from 'node:crypto';
import { serializeContext } from '../../src/format/context.js';
import type { EncryptedDataKey, EncryptionContext } from '../../src/types.js';

export interface WriterSuite {
  id: number;
  keyLength: number;
  kdfHash?: 'sha256' | 'sha384' | 'sha512';
  signatureHash?: 'sha256' | 'sha384';
  committing: boolean;
}

export interface WriteOptions {
  suite: WriterSuite;
  dataKey: Buffer;
  context: EncryptionContext;
  edks: EncryptedDataKey[];
  plaintext: Buffer;
  /** 0 writes a non-framed body. */
  frameLength: number;
  /** Use random IVs for frames / the v1 header, as some older writers did. */
  randomIvs?: boolean;
  signingKey?: KeyObject;
  messageId?: Buffer;
}

const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const u64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};

function hkdf(hash: string, salt: Buffer, ikm: Buffer, info: Buffer, len: number): Buffer {
  const prk = createHmac(hash, salt.length ? salt : Buffer.alloc(createHmac(hash, '').digest().length)).update(ikm).digest();
  return createHmac(hash, prk).update(Buffer.concat([info, Buffer.from([1])])).digest().subarray(0, len);
}

function gcm(key: Buffer, iv: Buffer, aad: Buffer, pt: Buffer): { ct: Buffer; tag: Buffer } {
  const c = createCipheriv(`aes-${key.length * 8}-gcm` as 'aes-256-gcm', key, iv);
  c.setAAD(aad);
  const ct = Buffer.concat([c.update(pt), c.final()]);
  return { ct, tag: c.getAuthTag() };
}

export function writeMessage(o: WriteOptions): Buffer {
  const { suite } = o;
  const v2 = suite.committing;
  const messageId = o.messageId ?? randomBytes(v2 ? 32 : 16);
  const ctx = serializeContext(o.context);
  const edks = Buffer.concat([
    u16(o.edks.length),
    ...o.edks.flatMap((k) => {
      const id = Buffer.from(k.providerId, 'utf8');
      return [u16(id.length), id, u16(k.providerInfo.length), Buffer.from(k.providerInfo), u16(k.ciphertext.length), Buffer.from(k.ciphertext)];
    }),
  ]);
  const contentType = o.frameLength === 0 ? 1 : 2;
  let key: Buffer;
  let headerBody: Buffer;
  let headerAuth: Buffer;
  const suiteId = u16(suite.id);
  if (v2) {
    key = hkdf('sha512', messageId, o.dataKey, Buffer.concat([suiteId, Buffer.from('DERIVEKEY')]), suite.keyLength);
    const commitment = hkdf('sha512', messageId, o.dataKey, Buffer.from('COMMITKEY'), 32);
    headerBody = Buffer.concat([Buffer.from([2]), suiteId, messageId, u16(ctx.length), ctx, edks, Buffer.from([contentType]), u32(o.frameLength), commitment]);
    headerAuth = gcm(key, Buffer.alloc(12), headerBody, Buffer.alloc(0)).tag;
  } else {
    key = suite.kdfHash
      ? hkdf(suite.kdfHash, Buffer.alloc(0), o.dataKey, Buffer.concat([suiteId, messageId]), suite.keyLength)
      : Buffer.from(o.dataKey);
    headerBody = Buffer.concat([
      Buffer.from([1, 0x80]), suiteId, messageId, u16(ctx.length), ctx, edks,
      Buffer.from([contentType]), u32(0), Buffer.from([12]), u32(o.frameLength),
    ]);
    const iv = o.randomIvs ? randomBytes(12) : Buffer.alloc(12);
    headerAuth = Buffer.concat([iv, gcm(key, iv, headerBody, Buffer.alloc(0)).tag]);
  }
  const parts: Buffer[] = [headerBody, headerAuth];
  const ivFor = (seq: number): Buffer => (o.randomIvs ? randomBytes(12) : Buffer.concat([Buffer.alloc(8), u32(seq)]));
  const aad = (label: string, seq: number, len: number): Buffer =>
    Buffer.concat([messageId, Buffer.from(label), u32(seq), u64(len)]);
  if (contentType === 1) {
    const iv = ivFor(1);
    const { ct, tag } = gcm(key, iv, aad('AWSKMSEncryptionClient Single Block', 1, o.plaintext.length), o.plaintext);
    parts.push(iv, u64(ct.length), ct, tag);
  } else {
    const F = o.frameLength;
    let seq = 1;
    let pos = 0;
    while (o.plaintext.length - pos >= F) {
      const iv = ivFor(seq);
      const { ct, tag } = gcm(key, iv, aad('AWSKMSEncryptionClient Frame', seq, F), o.plaintext.subarray(pos, pos + F));
      parts.push(u32(seq), iv, ct, tag);
      pos += F;
      seq++;
    }
    const rest = o.plaintext.subarray(pos);
    const iv = ivFor(seq);
    const { ct, tag } = gcm(key, iv, aad('AWSKMSEncryptionClient Final Frame', seq, rest.length), rest);
    parts.push(u32(0xffffffff), u32(seq), iv, u32(rest.length), ct, tag);
  }
  const body = Buffer.concat(parts);
  if (suite.signatureHash === undefined) return body;
  const signature = sign(suite.signatureHash, body, { key: o.signingKey!, dsaEncoding: 'der' });
  return Buffer.concat([body, u16(signature.length), signature]);
}
