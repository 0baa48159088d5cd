import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { walkBody } from '../../src/format/body.js';
import { serializeContext } from '../../src/format/context.js';
import {
  decryptBody,
  deriveAndVerifyHeader,
  encryptBuffer,
  generateSigningKey,
  MessageDecryptor,
  MessageEncryptor,
  parseHeader,
  prepareEncryption,
  SUITES,
  type MessageHeader,
} from '../../src/format/index.js';
import {
  esdkKeyring,
  esdkLegacy,
  esdkStrict,
  makeMaterials,
  unwrapDataKey,
  wrapDataKey,
} from './esdk-helpers.js';
import { writeMessage } from './reference-writer.js';

/**
 * Message-level interoperability with the reference implementation @aws-crypto/client-node
 * 5.0.2 (the oracle): our messages decrypt with it, its messages (v2 and every v1 suite)
 * decrypt with us, and both lay out frames identically.
 */

const limits = { maxEncryptedDataKeys: 3 };
const V1_SUITES = [0x0014, 0x0046, 0x0078, 0x0114, 0x0146, 0x0178, 0x0214, 0x0346, 0x0378];

function ours(message: Buffer, dataKey?: Buffer): { plaintext: Buffer; header: MessageHeader } {
  const header = parseHeader(message, limits)!;
  expect(header).toBeDefined();
  const key = deriveAndVerifyHeader(header, dataKey ?? unwrapDataKey(header));
  const plaintext = decryptBody(header, key, message);
  // The incremental decryptor must agree (odd chunk size to cross every field boundary).
  const dec = new MessageDecryptor(limits);
  const out: Buffer[] = [];
  for (let o = 0; o < message.length; o += 333) {
    dec.push(message.subarray(o, o + 333));
    if (dec.needsKey) dec.setDataKey(dataKey ?? unwrapDataKey(dec.header!));
    out.push(...dec.read());
  }
  out.push(...dec.end());
  expect(Buffer.concat(out).equals(plaintext)).toBe(true);
  return { plaintext, header };
}

/** (sequence, final, content length) of every body part: the frame layout. */
function layout(message: Buffer): string[] {
  const header = parseHeader(message, limits)!;
  const parts: string[] = [];
  walkBody(message, header.length, header.contentType, header.frameLength, (p) => {
    parts.push(`${p.sequenceNumber}${p.final ? 'F' : ''}:${p.contentLength}`);
  });
  return parts;
}

describe('our messages decrypt with the ESDK', () => {
  const cases: [number, number, number][] = [];
  for (const suiteId of [0x0478, 0x0578]) {
    for (const frameLength of [1, 16, 4096]) {
      for (const size of [0, 1, frameLength - 1, frameLength, frameLength + 1, 3 * frameLength, 3 * frameLength + 5]) {
        if (size >= 0 && size <= 20000) cases.push([suiteId, frameLength, size]);
      }
    }
  }
  it.each(cases)('suite %i, frame %i, %i bytes', async (suiteId, frameLength, size) => {
    const m = makeMaterials(suiteId, { purpose: 'interop', 'zé': 'ü', '\u{1F600}': 'smile', '\uFF21': 'fullwidth' });
    const p = prepareEncryption(m, frameLength);
    const plaintext = randomBytes(size);
    const message = encryptBuffer(p, m.dataKey, plaintext);
    const r = await esdkStrict.decrypt(esdkKeyring(), message);
    expect(Buffer.from(r.plaintext).equals(plaintext)).toBe(true);
    expect(r.messageHeader.encryptionContext).toEqual(m.context);
    expect(r.messageHeader.frameLength).toBe(frameLength);
    expect(ours(message, m.dataKey).plaintext.equals(plaintext)).toBe(true);
  });

  it('the incremental encryptor output decrypts with the ESDK (signed, uneven chunks)', async () => {
    const m = makeMaterials(0x0578, { a: '1' });
    const p = prepareEncryption(m, 1000);
    const plaintext = randomBytes(10_000);
    const enc = new MessageEncryptor(p, m.dataKey);
    const parts = [enc.header()];
    for (let o = 0; o < plaintext.length; o += 777) parts.push(...enc.update(plaintext.subarray(o, o + 777)));
    parts.push(...enc.final());
    const message = Buffer.concat(parts);
    const r = await esdkStrict.decrypt(esdkKeyring(), message);
    expect(Buffer.from(r.plaintext).equals(plaintext)).toBe(true);
  });
});

describe('ESDK messages decrypt with us', () => {
  it.each([0x0478, 0x0578])('v2 suite %i, frame layout identical to ours', async (suiteId) => {
    for (const [frameLength, size] of [
      [4096, 0],
      [4096, 4095],
      [4096, 4096],
      [4096, 8192],
      [100, 1001],
      [1, 5],
    ] as const) {
      const plaintext = randomBytes(size);
      const context = { tenant: 'acme', 'zé': 'ü', '\u{1F600}': 'x', '\uFF21': 'y' };
      const { result } = await esdkStrict.encrypt(esdkKeyring(), plaintext, { suiteId, encryptionContext: context, frameLength });
      const message = Buffer.from(result);
      const { plaintext: pt, header } = ours(message);
      expect(pt.equals(plaintext)).toBe(true);
      expect(header.context).toMatchObject(context);

      // Same layout as ours for the same length (including the empty final frame on exact multiples).
      const m = makeMaterials(suiteId, context);
      const mine = encryptBuffer(prepareEncryption(m, frameLength), m.dataKey, plaintext);
      expect(layout(mine)).toEqual(layout(message));
      // Our context serialization reproduces the ESDK's bytes (pairs sorted by the UTF-8 bytes of
      // the keys, as with utf8Sorting: true), for its message and for ours.
      const mh = parseHeader(mine, limits)!;
      const ctxOf = (h: MessageHeader): Buffer => h.authenticated.subarray(37, 37 + h.authenticated.readUInt16BE(35));
      expect(ctxOf(header).equals(serializeContext(header.context))).toBe(true);
      expect(ctxOf(mh).equals(serializeContext(m.context))).toBe(true);
      if (suiteId === 0x0478) expect(mh.length).toBe(header.length);
    }
  });

  it.each(V1_SUITES)('v1 suite %i (framed)', async (suiteId) => {
    const plaintext = randomBytes(2500);
    for (const frameLength of [1000, 2500]) {
      const { result } = await esdkLegacy.encrypt(esdkKeyring(), plaintext, {
        suiteId,
        encryptionContext: { app: 'legacy' },
        frameLength,
      });
      const { plaintext: pt, header } = ours(Buffer.from(result));
      expect(header.version).toBe(1);
      expect(header.suite.id).toBe(suiteId);
      expect(header.messageId.length).toBe(16);
      expect(pt.equals(plaintext)).toBe(true);
    }
  });
});

describe('shapes the ESDK for JavaScript cannot write (validated by its decrypt first)', () => {
  const shapes: [string, number, number, boolean][] = [];
  for (const id of [...V1_SUITES, 0x0478, 0x0578]) shapes.push(['non-framed', id, 0, false]);
  for (const id of [0x0078, 0x0378, 0x0478, 0x0578]) shapes.push(['random IVs', id, 700, true]);

  it.each(shapes)('%s, suite %i', async (_name, suiteId, frameLength, randomIvs) => {
    const suite = SUITES.get(suiteId)!;
    const dataKey = randomBytes(suite.keyLength);
    const context: Record<string, string> = { shape: 'test' };
    let signingKey;
    if (suite.signatureCurve !== undefined) {
      const k = generateSigningKey(suite);
      context['aws-crypto-public-key'] = k.publicKey;
      signingKey = k.privateKey;
    }
    const plaintext = randomBytes(2049);
    const message = writeMessage({
      suite: {
        id: suite.id,
        keyLength: suite.keyLength,
        committing: suite.committing,
        ...(suite.kdfHash ? { kdfHash: suite.kdfHash } : {}),
        ...(suite.signatureHash ? { signatureHash: suite.signatureHash } : {}),
      },
      dataKey,
      context,
      edks: [wrapDataKey(dataKey, context)],
      plaintext,
      frameLength,
      randomIvs,
      ...(signingKey ? { signingKey } : {}),
    });
    const client = suite.committing ? esdkStrict : esdkLegacy;
    const r = await client.decrypt(esdkKeyring(), message);
    expect(Buffer.from(r.plaintext).equals(plaintext)).toBe(true);
    const { plaintext: pt, header } = ours(message, dataKey);
    expect(header.contentType).toBe(frameLength === 0 ? 1 : 2);
    expect(pt.equals(plaintext)).toBe(true);
  });
});
