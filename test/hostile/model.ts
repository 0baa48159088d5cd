/**
 * A small, independent model of the ESDK message format (data-format/message-header.md,
 * message-body.md, message-footer.md) for the hostile-input tests: parse a valid message into
 * fields, change the fields (including the length and count fields, which may lie about what
 * follows), and serialize again. `seal` re-authenticates a v2 model under a known data key, so a
 * structurally wrong message can carry valid tags and a valid signature: the reader's structure
 * checks, not a failing tag, must then reject it.
 *
 * Deliberately written without the library's format code (node:crypto only), so that a bug in the
 * library cannot hide in a shared helper.
 */
import { createCipheriv, createDecipheriv, createHmac, createSign, generateKeyPairSync, type KeyObject } from 'node:crypto';

export interface EdkModel {
  providerId: Buffer;
  providerInfo: Buffer;
  ciphertext: Buffer;
  /** Declared lengths written instead of the real ones (u16), per field; undefined = real length. */
  lengths?: [number | undefined, number | undefined, number | undefined];
}

export interface PairModel {
  key: Buffer;
  value: Buffer;
  keyLength?: number;
  valueLength?: number;
}

export interface ContextModel {
  pairs: PairModel[];
  /** Declared pair count (u16); undefined = pairs.length. */
  count?: number;
  /** Declared AAD length (u16); undefined = real length. */
  aadLength?: number;
  /** Bytes inside the AAD section after the pairs. */
  extra?: Buffer;
}

export interface FrameModel {
  final: boolean;
  /** Written for regular frames; for final frames after the 0xFFFFFFFF end marker. */
  sequenceNumber: number;
  iv: Buffer;
  content: Buffer;
  tag: Buffer;
  /** Final frames: declared content length (u32); undefined = content.length. */
  declaredLength?: number;
  /** Plaintext of this frame (filled by `open`, used by `seal`). */
  plaintext?: Buffer;
}

export interface NonFramedModel {
  iv: Buffer;
  content: Buffer;
  tag: Buffer;
  /** Declared u64 content length; undefined = content.length. */
  declaredLength?: bigint;
  plaintext?: Buffer;
}

export type BodyModel =
  | { kind: 'framed'; frames: FrameModel[] }
  | { kind: 'nonFramed'; part: NonFramedModel }
  | { kind: 'raw'; bytes: Buffer };

export interface MessageModel {
  version: number;
  /** v1 only: the type byte (0x80). */
  v1Type: number;
  suiteId: number;
  messageId: Buffer;
  context: ContextModel;
  edks: EdkModel[];
  /** Declared EDK count (u16); undefined = edks.length. */
  edkCount?: number;
  contentType: number;
  /** v1 only: reserved u32 (0) and IV length u8 (12). */
  v1Reserved: number;
  v1IvLength: number;
  frameLength: number;
  /** v2: the algorithm suite data (32-byte commitment for committing suites). */
  suiteData: Buffer;
  /** v1 only: the header IV. */
  headerIv: Buffer;
  headerTag: Buffer;
  body: BodyModel;
  /** Signed suites: signature with its declared u16 length. */
  footer?: { signature: Buffer; declaredLength?: number };
  trailing: Buffer;
}

export const SIGNED_SUITES = new Set([0x0214, 0x0346, 0x0378, 0x0578]);
export const FINAL_MARKER = 0xffffffff;

const LABEL_FRAME = Buffer.from('AWSKMSEncryptionClient Frame');
const LABEL_FINAL = Buffer.from('AWSKMSEncryptionClient Final Frame');
const LABEL_SINGLE = Buffer.from('AWSKMSEncryptionClient Single Block');

class Reader {
  o = 0;
  constructor(readonly b: Buffer) {}
  take(n: number): Buffer {
    if (this.o + n > this.b.length) throw new Error(`model: message ends at ${this.b.length}, need ${this.o + n}`);
    const out = Buffer.from(this.b.subarray(this.o, this.o + n));
    this.o += n;
    return out;
  }
  u8(): number {
    return this.take(1)[0]!;
  }
  u16(): number {
    return this.take(2).readUInt16BE(0);
  }
  u32(): number {
    return this.take(4).readUInt32BE(0);
  }
  u64(): bigint {
    return this.take(8).readBigUInt64BE(0);
  }
  vec16(): Buffer {
    return this.take(this.u16());
  }
}

/** Parses a well-formed message (v1 or v2, framed or non-framed). Throws on anything else. */
export function parseModel(message: Buffer): MessageModel {
  const r = new Reader(message);
  const version = r.u8();
  if (version !== 1 && version !== 2) throw new Error('model: version');
  const v1Type = version === 1 ? r.u8() : 0x80;
  const suiteId = r.u16();
  const messageId = r.take(version === 2 ? 32 : 16);
  const aad = r.vec16();
  const context: ContextModel = { pairs: [] };
  if (aad.length > 0) {
    const cr = new Reader(aad);
    const count = cr.u16();
    for (let i = 0; i < count; i++) context.pairs.push({ key: cr.vec16(), value: cr.vec16() });
    if (cr.o !== aad.length) throw new Error('model: context');
  }
  const edkCount = r.u16();
  const edks: EdkModel[] = [];
  for (let i = 0; i < edkCount; i++) edks.push({ providerId: r.vec16(), providerInfo: r.vec16(), ciphertext: r.vec16() });
  const contentType = r.u8();
  let v1Reserved = 0;
  let v1IvLength = 12;
  let suiteData: Buffer = Buffer.alloc(0);
  let headerIv: Buffer = Buffer.alloc(0);
  let frameLength: number;
  if (version === 2) {
    frameLength = r.u32();
    suiteData = r.take(32);
  } else {
    v1Reserved = r.u32();
    v1IvLength = r.u8();
    frameLength = r.u32();
    headerIv = r.take(12);
  }
  const headerTag = r.take(16);
  let body: BodyModel;
  if (contentType === 1) {
    const iv = r.take(12);
    const len = r.u64();
    body = { kind: 'nonFramed', part: { iv, content: r.take(Number(len)), tag: r.take(16) } };
  } else {
    const frames: FrameModel[] = [];
    for (;;) {
      const first = r.u32();
      if (first === FINAL_MARKER) {
        const sequenceNumber = r.u32();
        const iv = r.take(12);
        const content = r.take(r.u32());
        frames.push({ final: true, sequenceNumber, iv, content, tag: r.take(16) });
        break;
      }
      frames.push({ final: false, sequenceNumber: first, iv: r.take(12), content: r.take(frameLength), tag: r.take(16) });
    }
    body = { kind: 'framed', frames };
  }
  const footer = SIGNED_SUITES.has(suiteId) ? { signature: r.vec16() } : undefined;
  const trailing = r.take(message.length - r.o);
  return {
    version,
    v1Type,
    suiteId,
    messageId,
    context,
    edks,
    contentType,
    v1Reserved,
    v1IvLength,
    frameLength,
    suiteData,
    headerIv,
    headerTag,
    body,
    ...(footer ? { footer } : {}),
    trailing,
  };
}

/** A deep copy (fast-check hands the same seed to many cases). */
export function cloneModel(m: MessageModel): MessageModel {
  const b = (x: Buffer): Buffer => Buffer.from(x);
  const body: BodyModel =
    m.body.kind === 'framed'
      ? {
          kind: 'framed',
          frames: m.body.frames.map((f) => ({
            ...f,
            iv: b(f.iv),
            content: b(f.content),
            tag: b(f.tag),
            ...(f.plaintext ? { plaintext: b(f.plaintext) } : {}),
          })),
        }
      : m.body.kind === 'nonFramed'
        ? {
            kind: 'nonFramed',
            part: {
              ...m.body.part,
              iv: b(m.body.part.iv),
              content: b(m.body.part.content),
              tag: b(m.body.part.tag),
              ...(m.body.part.plaintext ? { plaintext: b(m.body.part.plaintext) } : {}),
            },
          }
        : { kind: 'raw', bytes: b(m.body.bytes) };
  return {
    ...m,
    messageId: b(m.messageId),
    context: {
      ...m.context,
      pairs: m.context.pairs.map((p) => ({ ...p, key: b(p.key), value: b(p.value) })),
      ...(m.context.extra ? { extra: b(m.context.extra) } : {}),
    },
    edks: m.edks.map((e) => ({
      ...e,
      providerId: b(e.providerId),
      providerInfo: b(e.providerInfo),
      ciphertext: b(e.ciphertext),
      ...(e.lengths ? { lengths: [...e.lengths] as EdkModel['lengths'] } : {}),
    })),
    suiteData: b(m.suiteData),
    headerIv: b(m.headerIv),
    headerTag: b(m.headerTag),
    body,
    ...(m.footer ? { footer: { ...m.footer, signature: b(m.footer.signature) } } : {}),
    trailing: b(m.trailing),
  };
}

const u8 = (n: number): Buffer => Buffer.from([n & 0xff]);
function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n & 0xffff);
  return b;
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}
function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, n));
  return b;
}

export function serializeContextModel(c: ContextModel): Buffer {
  if (c.pairs.length === 0 && c.count === undefined && c.extra === undefined) return Buffer.alloc(0);
  const parts: Buffer[] = [u16(c.count ?? c.pairs.length)];
  for (const p of c.pairs) parts.push(u16(p.keyLength ?? p.key.length), p.key, u16(p.valueLength ?? p.value.length), p.value);
  if (c.extra) parts.push(c.extra);
  return Buffer.concat(parts);
}

/** The authenticated header bytes (everything the header tag covers). */
export function serializeHeaderBody(m: MessageModel): Buffer {
  const aad = serializeContextModel(m.context);
  const parts: Buffer[] = [u8(m.version)];
  if (m.version === 1) parts.push(u8(m.v1Type));
  parts.push(u16(m.suiteId), m.messageId, u16(m.context.aadLength ?? aad.length), aad, u16(m.edkCount ?? m.edks.length));
  for (const e of m.edks) {
    const [a, b, c] = e.lengths ?? [];
    parts.push(u16(a ?? e.providerId.length), e.providerId, u16(b ?? e.providerInfo.length), e.providerInfo);
    parts.push(u16(c ?? e.ciphertext.length), e.ciphertext);
  }
  parts.push(u8(m.contentType));
  if (m.version === 1) parts.push(u32(m.v1Reserved), u8(m.v1IvLength), u32(m.frameLength));
  else parts.push(u32(m.frameLength), m.suiteData);
  return Buffer.concat(parts);
}

export function serializeHeader(m: MessageModel): Buffer {
  const body = serializeHeaderBody(m);
  return Buffer.concat(m.version === 1 ? [body, m.headerIv, m.headerTag] : [body, m.headerTag]);
}

export function serializeBody(m: MessageModel): Buffer {
  const body = m.body;
  if (body.kind === 'raw') return body.bytes;
  if (body.kind === 'nonFramed') {
    const p = body.part;
    return Buffer.concat([p.iv, u64(p.declaredLength ?? BigInt(p.content.length)), p.content, p.tag]);
  }
  const parts: Buffer[] = [];
  for (const f of body.frames) {
    if (f.final) parts.push(u32(FINAL_MARKER), u32(f.sequenceNumber), f.iv, u32(f.declaredLength ?? f.content.length));
    else parts.push(u32(f.sequenceNumber), f.iv);
    parts.push(f.content, f.tag);
  }
  return Buffer.concat(parts);
}

export function serializeFooter(m: MessageModel): Buffer {
  if (!m.footer) return Buffer.alloc(0);
  return Buffer.concat([u16(m.footer.declaredLength ?? m.footer.signature.length), m.footer.signature]);
}

export function serializeModel(m: MessageModel): Buffer {
  return Buffer.concat([serializeHeader(m), serializeBody(m), serializeFooter(m), m.trailing]);
}

/** Offsets of the parts of a serialized model: where each frame starts, where the footer starts. */
export function layout(m: MessageModel): { headerLength: number; frameStarts: number[]; bodyEnd: number; end: number } {
  const headerLength = serializeHeader(m).length;
  const frameStarts: number[] = [];
  let o = headerLength;
  if (m.body.kind === 'framed') {
    for (const f of m.body.frames) {
      frameStarts.push(o);
      o += (f.final ? 24 : 16) + f.content.length + 16;
    }
  } else {
    frameStarts.push(o);
    o += serializeBody(m).length;
  }
  return { headerLength, frameStarts, bodyEnd: o, end: o + serializeFooter(m).length };
}

// --- Cryptography of message format v2 (framework/algorithm-suites.md, data-format/message-body-aad.md)

/** HKDF-SHA512 with the message id as salt: the message key and the key commitment (suites 0x0478/0x0578). */
export function deriveV2(suiteId: number, dataKey: Buffer, messageId: Buffer): { key: Buffer; commitment: Buffer } {
  const prk = createHmac('sha512', messageId).update(dataKey).digest();
  const expand = (info: Buffer): Buffer => createHmac('sha512', prk).update(Buffer.concat([info, Buffer.from([1])])).digest().subarray(0, 32);
  return {
    key: expand(Buffer.concat([u16(suiteId), Buffer.from('DERIVEKEY')])),
    commitment: expand(Buffer.from('COMMITKEY')),
  };
}

function bodyAad(messageId: Buffer, label: Buffer, seq: number, length: bigint): Buffer {
  return Buffer.concat([messageId, label, u32(seq), u64(length)]);
}

function frameAad(m: MessageModel, f: FrameModel): Buffer {
  return f.final
    ? bodyAad(m.messageId, LABEL_FINAL, f.sequenceNumber, BigInt(f.declaredLength ?? f.content.length))
    : bodyAad(m.messageId, LABEL_FRAME, f.sequenceNumber, BigInt(f.content.length));
}

function gcmOpen(key: Buffer, iv: Buffer, aad: Buffer, ct: Buffer, tag: Buffer): Buffer {
  const d = createDecipheriv('aes-256-gcm', key, iv);
  d.setAAD(aad);
  d.setAuthTag(tag);
  return Buffer.concat([d.update(ct), d.final()]);
}

function gcmSeal(key: Buffer, iv: Buffer, aad: Buffer, pt: Buffer): { ct: Buffer; tag: Buffer } {
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(aad);
  const ct = Buffer.concat([c.update(pt), c.final()]);
  return { ct, tag: c.getAuthTag() };
}

/** Fills in every part's plaintext (v2, 256-bit suites) by decrypting it under `dataKey`. */
export function openModel(m: MessageModel, dataKey: Buffer): MessageModel {
  const out = cloneModel(m);
  const { key } = deriveV2(out.suiteId, dataKey, out.messageId);
  if (out.body.kind === 'framed') {
    for (const f of out.body.frames) f.plaintext = gcmOpen(key, f.iv, frameAad(out, f), f.content, f.tag);
  } else if (out.body.kind === 'nonFramed') {
    const p = out.body.part;
    p.plaintext = gcmOpen(key, p.iv, bodyAad(out.messageId, LABEL_SINGLE, 1, BigInt(p.content.length)), p.content, p.tag);
  }
  return out;
}

/** Everything `seal` needs: the data key, and for signed suites a P-384 key and its context value. */
export interface SealKeys {
  dataKey: Buffer;
  signingKey?: KeyObject;
  /** Base64 compressed public key for `aws-crypto-public-key` (replaces the pair's value if present). */
  publicKey?: string;
}

/**
 * Re-authenticates a v2 model: commitment, header tag, every frame (from its `plaintext`, or its
 * current content when it has none, which is then taken as the plaintext) and the signature.
 * Declared lengths and sequence numbers are authenticated as they are written, so whatever is
 * structurally wrong stays wrong but verifies.
 */
export function seal(m: MessageModel, keys: SealKeys): MessageModel {
  const out = cloneModel(m);
  if (keys.publicKey !== undefined) {
    const pk = out.context.pairs.find((p) => p.key.toString() === 'aws-crypto-public-key');
    if (pk) pk.value = Buffer.from(keys.publicKey);
  }
  const { key, commitment } = deriveV2(out.suiteId, keys.dataKey, out.messageId);
  if (out.suiteData.length === 32) out.suiteData = commitment;
  out.headerTag = gcmSeal(key, Buffer.alloc(12), serializeHeaderBody(out), Buffer.alloc(0)).tag;
  if (out.body.kind === 'framed') {
    for (const f of out.body.frames) {
      const pt = f.plaintext ?? f.content;
      // The AAD uses the length the reader will see: the declared one for final frames.
      const aad = f.final
        ? bodyAad(out.messageId, LABEL_FINAL, f.sequenceNumber, BigInt(f.declaredLength ?? pt.length))
        : bodyAad(out.messageId, LABEL_FRAME, f.sequenceNumber, BigInt(pt.length));
      const { ct, tag } = gcmSeal(key, f.iv, aad, pt);
      f.content = ct;
      f.tag = tag;
    }
  } else if (out.body.kind === 'nonFramed') {
    const p = out.body.part;
    const pt = p.plaintext ?? p.content;
    const { ct, tag } = gcmSeal(key, p.iv, bodyAad(out.messageId, LABEL_SINGLE, 1, p.declaredLength ?? BigInt(pt.length)), pt);
    p.content = ct;
    p.tag = tag;
  }
  if (out.footer && keys.signingKey) {
    const signer = createSign('sha384');
    signer.update(serializeHeader(out));
    signer.update(serializeBody(out));
    const signature = signer.sign({ key: keys.signingKey, dsaEncoding: 'der' });
    out.footer = { ...out.footer, signature };
  }
  return out;
}

/** The plaintext a model carries (after `open`), frames in order. */
export function modelPlaintext(m: MessageModel): Buffer {
  if (m.body.kind === 'framed') return Buffer.concat(m.body.frames.map((f) => f.plaintext ?? Buffer.alloc(0)));
  if (m.body.kind === 'nonFramed') return m.body.part.plaintext ?? Buffer.alloc(0);
  return Buffer.alloc(0);
}

/** A P-384 signing key and its `aws-crypto-public-key` value (base64 SEC 1 compressed point). */
export function p384KeyPair(): { signingKey: KeyObject; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const jwk = publicKey.export({ format: 'jwk' });
  const x = Buffer.from(jwk.x!, 'base64url');
  const y = Buffer.from(jwk.y!, 'base64url');
  const point = Buffer.concat([Buffer.from([(y[y.length - 1]! & 1) === 1 ? 3 : 2]), x]);
  return { signingKey: privateKey, publicKey: point.toString('base64') };
}
