import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { walkBody } from '../../src/format/body.js';
import {
  decryptBody,
  deriveAndVerifyHeader,
  encryptBuffer,
  framedBodyLength,
  generateSigningKey,
  MessageDecryptor,
  MessageEncryptor,
  parseHeader,
  parsePublicKey,
  prepareEncryption,
  SUITES,
} from '../../src/format/index.js';
import { makeMaterials } from './esdk-helpers.js';

const limits = { maxEncryptedDataKeys: 3 };

function decrypt(message: Buffer, dataKey: Buffer): Buffer {
  const header = parseHeader(message, limits)!;
  return decryptBody(header, deriveAndVerifyHeader(header, dataKey), message);
}

function incremental(p: ReturnType<typeof prepareEncryption>, dataKey: Buffer, plaintext: Buffer, chunk: number): Buffer {
  const enc = new MessageEncryptor(p, dataKey);
  const parts = [enc.header()];
  for (let o = 0; o < plaintext.length; o += chunk) parts.push(...enc.update(plaintext.subarray(o, o + chunk)));
  parts.push(...enc.final());
  return Buffer.concat(parts);
}

function frames(message: Buffer): string[] {
  const h = parseHeader(message, limits)!;
  const out: string[] = [];
  walkBody(message, h.length, h.contentType, h.frameLength, (p) => out.push(`${p.sequenceNumber}${p.final ? 'F' : ''}:${p.contentLength}`));
  return out;
}

describe('round trips', () => {
  for (const suiteId of [0x0478, 0x0578]) {
    for (const frameLength of [1, 2, 7, 100, 4096, 65536, 1 << 20]) {
      it(`suite 0x${suiteId.toString(16)}, frame length ${frameLength}`, () => {
        const m = makeMaterials(suiteId, { k: 'v' });
        const p = prepareEncryption(m, frameLength);
        const sizes = new Set([0, 1, frameLength - 1, frameLength, frameLength + 1, 2 * frameLength, 3 * frameLength - 1]);
        if (frameLength <= 100) sizes.add(50 * frameLength + 3);
        for (const size of sizes) {
          if (size < 0) continue;
          const plaintext = randomBytes(size);
          const message = encryptBuffer(p, m.dataKey, plaintext);
          const sigMax = suiteId === 0x0578 ? 2 + 104 : 0;
          const bodyEnd = p.template.length + framedBodyLength(size, frameLength);
          expect(message.length).toBeLessThanOrEqual(bodyEnd + sigMax);
          if (sigMax === 0) expect(message.length).toBe(bodyEnd);
          expect(decrypt(message, m.dataKey).equals(plaintext)).toBe(true);
          // Full frames are regular; the final frame holds the rest (empty on exact multiples).
          const layout = frames(message);
          const full = Math.floor(size / frameLength);
          expect(layout).toHaveLength(full + 1);
          expect(layout[full]).toBe(`${full + 1}F:${size - full * frameLength}`);
          if (size <= 4 * frameLength + 10 || frameLength >= 4096) {
            // The incremental encryptor writes the same layout, whatever the chunking.
            for (const chunk of [1 + Math.floor(frameLength / 3), frameLength, 3 * frameLength + 1]) {
              if (frameLength >= 65536 && chunk < frameLength) continue;
              const inc = incremental(p, m.dataKey, plaintext, Math.max(1, chunk));
              expect(frames(inc)).toEqual(layout);
              expect(decrypt(inc, m.dataKey).equals(plaintext)).toBe(true);
            }
          }
        }
      });
    }
  }

  it('uses a fresh message id (and so a fresh key) for every message', () => {
    const m = makeMaterials(0x0478);
    const p = prepareEncryption(m, 4096);
    const ids = new Set<string>();
    const pt = Buffer.alloc(64, 1);
    const bodies = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const msg = encryptBuffer(p, m.dataKey, pt);
      const h = parseHeader(msg, limits)!;
      ids.add(h.messageId.toString('hex'));
      bodies.add(msg.subarray(h.length).toString('hex'));
    }
    expect(ids.size).toBe(500);
    expect(bodies.size).toBe(500);
  });

  it("a template's bytes live in their own buffer unless it dies with its message; both write the same header", () => {
    // serializeHeaderTemplate: 'long' templates (cached materials, streams) must not pin a slab of
    // Node's buffer pool; 'message' ones may use it. Either way every byte is written (no pool
    // garbage in the placeholders) and the messages are the same apart from id, commitment and tag.
    const m = makeMaterials(0x0478, { a: '1' });
    for (let i = 0; i < 20; i++) Buffer.allocUnsafe(64).fill(0xee); // leave garbage in the pool
    const long = prepareEncryption(m, 4096);
    const short = prepareEncryption(m, 4096, 'message');
    expect(long.template.bytes.buffer.byteLength).toBe(long.template.length);
    expect(short.template.bytes.length).toBe(long.template.length);
    expect(short.template.bytes.equals(long.template.bytes)).toBe(true);
    const { messageIdOffset, commitmentOffset, length } = long.template;
    expect(long.template.bytes.subarray(messageIdOffset, messageIdOffset + 32).every((b) => b === 0)).toBe(true);
    expect(long.template.bytes.subarray(commitmentOffset, length).every((b) => b === 0)).toBe(true);
    for (const p of [long, short]) {
      const msg = encryptBuffer(p, m.dataKey, Buffer.from('same'));
      const h = parseHeader(msg, limits)!;
      expect(h.context).toEqual({ a: '1' });
      expect(h.headerIv.equals(Buffer.alloc(12))).toBe(true);
    }
  });

  it('writes the header the spec describes', () => {
    const m = makeMaterials(0x0478, { b: '2', a: '1' });
    const p = prepareEncryption(m, 4096);
    const msg = encryptBuffer(p, m.dataKey, Buffer.from('hello'));
    const h = parseHeader(msg, limits)!;
    expect(msg[0]).toBe(2);
    expect(msg.readUInt16BE(1)).toBe(0x0478);
    expect(h.version).toBe(2);
    expect(h.contentType).toBe(2);
    expect(h.frameLength).toBe(4096);
    expect(h.commitment).toHaveLength(32);
    expect(h.headerIv.equals(Buffer.alloc(12))).toBe(true);
    expect(h.context).toEqual({ a: '1', b: '2' });
    expect(h.encryptedDataKeys).toHaveLength(1);
    expect(Buffer.from(h.encryptedDataKeys[0]!.ciphertext).equals(Buffer.from(m.encryptedDataKeys[0]!.ciphertext))).toBe(true);
    // Final frame: end marker, sequence 1, IV = 8 zero bytes + sequence number, length 5.
    const f = msg.subarray(h.length);
    expect(f.readUInt32BE(0)).toBe(0xffffffff);
    expect(f.readUInt32BE(4)).toBe(1);
    expect(f.subarray(8, 20).equals(Buffer.from('000000000000000000000001', 'hex'))).toBe(true);
    expect(f.readUInt32BE(20)).toBe(5);
    expect(f.length).toBe(24 + 5 + 16);
  });

  it('a large message with 1 MiB frames', () => {
    const m = makeMaterials(0x0578);
    const p = prepareEncryption(m, 1 << 20);
    const plaintext = randomBytes((5 << 20) + 12345);
    const message = encryptBuffer(p, m.dataKey, plaintext);
    expect(decrypt(message, m.dataKey).equals(plaintext)).toBe(true);
    expect(frames(message)).toHaveLength(6);
  });
});

describe('materials validation', () => {
  const m = makeMaterials(0x0478);
  it('rejects frame lengths outside 1 .. 2^32-1', () => {
    for (const bad of [0, -1, 1.5, 2 ** 32, Number.NaN]) {
      expect(() => prepareEncryption(m, bad)).toThrow(RangeError);
    }
    expect(() => prepareEncryption(m, 2 ** 32 - 1)).not.toThrow();
  });
  it('rejects a non-committing suite and a wrong data key length', () => {
    expect(() => prepareEncryption({ ...m, suite: SUITES.get(0x0178)! }, 4096)).toThrow(RangeError);
    expect(() => prepareEncryption({ ...m, dataKey: Buffer.alloc(16) }, 4096)).toThrow(RangeError);
    const p = prepareEncryption(m, 4096);
    expect(() => encryptBuffer(p, Buffer.alloc(31), Buffer.alloc(1))).toThrow(RangeError);
    expect(() => new MessageEncryptor(p, Buffer.alloc(33))).toThrow(RangeError);
  });
  it('rejects missing or oversized encrypted data keys', () => {
    expect(() => prepareEncryption({ ...m, encryptedDataKeys: [] }, 4096)).toThrow(RangeError);
    const big = { providerId: 'x', providerInfo: Buffer.alloc(70000), ciphertext: Buffer.alloc(1) };
    expect(() => prepareEncryption({ ...m, encryptedDataKeys: [big] }, 4096)).toThrow(/providerInfo/);
  });
  it('signed suites need a matching signing key and public key in the context', () => {
    const s = makeMaterials(0x0578);
    expect(() => prepareEncryption(s, 4096)).not.toThrow();
    const { signingKey: _k, ...noKey } = s;
    expect(() => prepareEncryption(noKey, 4096)).toThrow(TypeError);
    const other = generateSigningKey(s.suite);
    expect(() => prepareEncryption({ ...s, signingKey: other.privateKey }, 4096)).toThrow(/public key/);
    const p256 = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    expect(() => prepareEncryption({ ...s, signingKey: p256 }, 4096)).toThrow(TypeError);
    // An unsigned suite must not carry a public key.
    expect(() => prepareEncryption({ ...m, context: { 'aws-crypto-public-key': other.publicKey } }, 4096)).toThrow(TypeError);
  });
  it('MessageEncryptor refuses use after final()', () => {
    const enc = new MessageEncryptor(prepareEncryption(m, 10), m.dataKey);
    enc.update(Buffer.alloc(25));
    enc.final();
    expect(() => enc.update(Buffer.alloc(1))).toThrow(expect.objectContaining({ code: 'ERR_STREAM' }));
    expect(() => enc.final()).toThrow(expect.objectContaining({ code: 'ERR_STREAM' }));
  });
});

describe('ECDSA keys', () => {
  it('generateSigningKey returns the ESDK encoding (base64 compressed point) and it parses back', () => {
    for (const id of [0x0578, 0x0214]) {
      const suite = SUITES.get(id)!;
      const { privateKey, publicKey } = generateSigningKey(suite);
      const point = Buffer.from(publicKey, 'base64');
      expect(point.length).toBe(id === 0x0214 ? 33 : 49);
      expect([2, 3]).toContain(point[0]);
      const pub = parsePublicKey(suite, publicKey);
      const jwkPub = pub.export({ format: 'jwk' });
      const jwkPriv = createPrivateKey(privateKey.export({ format: 'pem', type: 'pkcs8' })).export({ format: 'jwk' });
      expect(jwkPub.x).toBe(jwkPriv.x);
      expect(jwkPub.y).toBe(jwkPriv.y);
    }
  });
  it('rejects malformed public keys', () => {
    const suite = SUITES.get(0x0578)!;
    const good = generateSigningKey(suite).publicKey;
    const point = Buffer.from(good, 'base64');
    const bad = [
      undefined,
      '',
      good.slice(0, -4),
      Buffer.concat([Buffer.from([4]), point.subarray(1)]).toString('base64'),
      good + '=',
      ' ' + good,
      Buffer.concat([point.subarray(0, 1), Buffer.alloc(48, 0xff)]).toString('base64'), // x >= p: not a point
    ];
    for (const b of bad) expect(() => parsePublicKey(suite, b)).toThrow(expect.objectContaining({ code: 'ERR_MALFORMED_MESSAGE' }));
  });
});

describe('MessageDecryptor on our messages', () => {
  it('signed message: the final frame is withheld until end()', () => {
    const m = makeMaterials(0x0578);
    const p = prepareEncryption(m, 100);
    const plaintext = randomBytes(250);
    const message = encryptBuffer(p, m.dataKey, plaintext);
    const dec = new MessageDecryptor(limits);
    dec.push(message);
    expect(dec.needsKey).toBe(true);
    dec.setDataKey(m.dataKey);
    const early = Buffer.concat(dec.read());
    expect(early.equals(plaintext.subarray(0, 200))).toBe(true);
    const rest = Buffer.concat(dec.end());
    expect(rest.equals(plaintext.subarray(200))).toBe(true);
    expect(dec.done).toBe(true);

    // An unsigned message releases its final frame as soon as its tag verified.
    const u = makeMaterials(0x0478);
    const unsigned = encryptBuffer(prepareEncryption(u, 100), u.dataKey, plaintext);
    const dec2 = new MessageDecryptor(limits);
    dec2.push(unsigned);
    dec2.setDataKey(u.dataKey);
    expect(Buffer.concat(dec2.read()).equals(plaintext)).toBe(true);
    expect(dec2.end()).toEqual([]);
  });
});

describe('header template: EDK fields are sized and written from the same lengths', () => {
  it('a Uint8Array whose `length` answers differently on each read writes the bytes it really holds', () => {
    // A hostile in-process keyring could hand over such an array; the header must still describe
    // exactly the bytes copied, with nothing left over from Node's buffer pool.
    class Lying extends Uint8Array {
      reads = 0;
      override get length(): number {
        return this.reads++ % 2 === 0 ? 3 : 9999;
      }
    }
    const honest = makeMaterials(0x0478, { a: '1' });
    const edk = honest.encryptedDataKeys[0]!;
    const lyingInfo = new Lying(edk.providerInfo);
    const lyingCiphertext = new Lying(edk.ciphertext);
    const lying = { ...honest, encryptedDataKeys: [{ providerId: edk.providerId, providerInfo: lyingInfo, ciphertext: lyingCiphertext }] };
    for (let i = 0; i < 20; i++) Buffer.allocUnsafe(256).fill(0xee); // leave garbage in the pool
    const a = prepareEncryption(honest, 4096, 'message');
    const b = prepareEncryption(lying, 4096, 'message');
    expect(b.template.length).toBe(a.template.length);
    expect(b.template.bytes.equals(a.template.bytes)).toBe(true);
  });
});
