/**
 * The message header as data-format/message-header.md and framework/structures.md (encryption
 * context serialization) describe it, checked byte by byte against an independent reading of the
 * specification (test/spec/helpers.ts, test/hostile/model.ts), never against our own parser alone.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseModel, serializeModel } from '../hostile/model.js';
import {
  envelopeErrorOf,
  envelopeWith,
  expectedContextBytes,
  gcmOpen,
  RecordingKeyring,
  runStream,
  v2Keys,
} from './helpers.js';

/** Encrypts with a RecordingKeyring writing two EDKs; returns the message and what the keyring saw. */
async function sample(suite: number, context: Record<string, string>, plaintext = Buffer.from('header test')) {
  const keyring = new RecordingKeyring(randomBytes(32), 2);
  const envelope = envelopeWith(keyring, { suite, frameLength: 1000, cache: false });
  const message = await envelope.encrypt(plaintext, { context });
  const seen = keyring.encryptInputs[0]!;
  return { keyring, envelope, message, fullContext: seen.context };
}

describe('message header (data-format/message-header.md)', () => {
  for (const suite of [0x0478, 0x0578]) {
    it(`suite 0x0${suite.toString(16)}: writes the v2 header body field by field, big-endian, in the order of the table`, async () => {
      const context = { b: '2', a: '1', 'é': 'x' };
      const { keyring, message, fullContext } = await sample(suite, context);
      let o = 0;
      expect(message[o]).toBe(0x02); // Version 2.0
      o += 1;
      expect(message.readUInt16BE(o)).toBe(suite); // Algorithm Suite ID, big-endian
      o += 2;
      const messageId = message.subarray(o, o + 32); // Message ID: 32 bytes in v2
      o += 32;
      // AAD: u16 length, then the serialized context in the materials (for 0x0578 including the
      // public key the library added), and nothing else.
      const aad = expectedContextBytes(fullContext);
      expect(message.readUInt16BE(o)).toBe(aad.length);
      o += 2;
      expect(message.subarray(o, o + aad.length).equals(aad)).toBe(true);
      o += aad.length;
      // Encrypted data keys: u16 count, then per key three u16-length-prefixed fields, in the
      // order the keyring returned them.
      expect(message.readUInt16BE(o)).toBe(2);
      o += 2;
      for (const edk of keyring.edks) {
        for (const field of [Buffer.from(edk.providerId, 'utf8'), Buffer.from(edk.providerInfo), Buffer.from(edk.ciphertext)]) {
          expect(message.readUInt16BE(o)).toBe(field.length);
          expect(message.subarray(o + 2, o + 2 + field.length).equals(field)).toBe(true);
          o += 2 + field.length;
        }
      }
      expect(message[o]).toBe(0x02); // Content Type: framed
      o += 1;
      expect(message.readUInt32BE(o)).toBe(1000); // Frame Length as configured
      o += 4;
      // Algorithm Suite Data: the 32-byte commit key derived from the data key and message id.
      const { commitment } = v2Keys(suite, keyring.dataKey, messageId);
      expect(message.subarray(o, o + 32).equals(commitment)).toBe(true);
      o += 32;
      // Header authentication v2: the 16-byte tag only (no IV), then the body starts.
      o += 16;
      expect(message.readUInt32BE(o)).toBe(0xffffffff); // 11 bytes of plaintext: one final frame
      // The independent model reads the same header and reproduces the message byte for byte.
      expect(serializeModel(parseModel(message)).equals(message)).toBe(true);
    });

    it(`suite 0x0${suite.toString(16)}: the header tag is AES-GCM under the derived key with a zero IV, the header body as AAD and an empty plaintext`, async () => {
      const { keyring, message, fullContext } = await sample(suite, { tenant: 'acme' });
      const headerBodyLength = 1 + 2 + 32 + 2 + expectedContextBytes(fullContext).length + 2 +
        keyring.edks.reduce((n, e) => n + 6 + Buffer.byteLength(e.providerId) + e.providerInfo.length + e.ciphertext.length, 0) +
        1 + 4 + 32;
      const headerBody = message.subarray(0, headerBodyLength);
      const tag = message.subarray(headerBodyLength, headerBodyLength + 16);
      const { key } = v2Keys(suite, keyring.dataKey, message.subarray(3, 35));
      // Verifies: the tag is over exactly the header body, with nothing else authenticated.
      expect(gcmOpen(key, Buffer.alloc(12), headerBody, Buffer.alloc(0), tag)).toHaveLength(0);
      // Any other IV or AAD fails.
      expect(() => gcmOpen(key, Buffer.from('000000000000000000000001', 'hex'), headerBody, Buffer.alloc(0), tag)).toThrow();
      expect(() => gcmOpen(key, Buffer.alloc(12), headerBody.subarray(1), Buffer.alloc(0), tag)).toThrow();
    });
  }

  it('an empty encryption context is written as AAD length 0 with no pair bytes, and reads back as empty', async () => {
    for (const context of [undefined, {}]) {
      const keyring = new RecordingKeyring();
      const envelope = envelopeWith(keyring, { cache: false });
      const message = await envelope.encrypt('x', context === undefined ? {} : { context });
      expect(message.readUInt16BE(35)).toBe(0); // Key Value Pairs Length
      // No pair count follows: the next field is the EDK count (1) and the first EDK's provider id.
      expect(message.readUInt16BE(37)).toBe(1);
      expect(message.readUInt16BE(39)).toBe(Buffer.byteLength(keyring.edks[0]!.providerId));
      expect((await envelope.decrypt(message)).context).toEqual({});
    }
  });

  it('a non-empty context is a pair count and length-prefixed pairs sorted by the UTF-8 bytes of the keys; bad counts and duplicates are refused', async () => {
    // UTF-16 order puts the emoji (a surrogate pair, 0xD83D...) before U+FF21; UTF-8 order puts
    // U+FF21 (EF BC A1) before it (F0 9F 98 80).
    const context = { '\u{1F600}': 'smile', '\uFF21': 'fullwidth', B: 'upper', a: 'lower', 'é': 'accent' };
    const { envelope, message } = await sample(0x0478, context);
    const aadLength = message.readUInt16BE(35);
    const aad = message.subarray(37, 37 + aadLength);
    expect(aad.equals(expectedContextBytes(context))).toBe(true);
    expect(aad.readUInt16BE(0)).toBe(5); // Key Value Pair Count
    expect((await envelope.decrypt(message)).context).toEqual(context);

    // Reading: a present AAD with a pair count of 0, or a key twice, is malformed (before any tag).
    const model = parseModel(message);
    const zeroCount = serializeModel({ ...model, context: { pairs: [], count: 0 } });
    expect((await envelopeErrorOf(envelope.decrypt(zeroCount))).code).toBe('ERR_MALFORMED_MESSAGE');
    const dup = { ...model, context: { pairs: [model.context.pairs[0]!, model.context.pairs[0]!] } };
    expect((await envelopeErrorOf(envelope.decrypt(serializeModel(dup)))).code).toBe('ERR_MALFORMED_MESSAGE');
  });

  it('message ids are 32 fresh random bytes for every message', async () => {
    // One cached data key for all messages: only the message id makes each message's key unique.
    const envelope = envelopeWith(new RecordingKeyring());
    const ids: Buffer[] = [];
    for (let i = 0; i < 2000; i++) ids.push((await envelope.encrypt('same plaintext')).subarray(3, 35));
    expect(new Set(ids.map((id) => id.toString('hex'))).size).toBe(2000);
    // Every one of the 256 bit positions is set in about half of the ids: a counter, a timestamp
    // or a short seed would leave most positions constant (2000 samples: sigma of the share ~1.1%).
    for (let bit = 0; bit < 256; bit++) {
      const ones = ids.filter((id) => (id[bit >> 3]! >> (7 - (bit & 7))) & 1).length / ids.length;
      expect(ones, `bit ${bit}`).toBeGreaterThan(0.4);
      expect(ones, `bit ${bit}`).toBeLessThan(0.6);
    }
  });

  it('a message is never written without an encrypted data key, and a header with an EDK count of 0 is refused', async () => {
    const empty = { onEncrypt: async () => ({ dataKey: randomBytes(32), encryptedDataKeys: [] }), onDecrypt: async () => undefined };
    const writer = envelopeWith(empty, { cache: false });
    expect((await envelopeErrorOf(writer.encrypt('x'))).code).toBe('ERR_KEYRING');
    const s = await runStream(writer.encryptStream(), [Buffer.from('x')]);
    expect((s.error as { code?: string }).code).toBe('ERR_KEYRING');
    expect(s.out).toHaveLength(0);

    const keyring = new RecordingKeyring();
    const reader = envelopeWith(keyring, { cache: false });
    const model = parseModel(await reader.encrypt('x'));
    const noEdks = serializeModel({ ...model, edks: [] });
    expect((await envelopeErrorOf(reader.decrypt(noEdks))).code).toBe('ERR_MALFORMED_MESSAGE');
    const r = await runStream(reader.decryptStream(), [noEdks]);
    expect((r.error as { code?: string }).code).toBe('ERR_MALFORMED_MESSAGE');
    expect(keyring.decryptInputs).toHaveLength(0);
  });

  it('the version byte must be 01 with the v1 suites and 02 with the v2 suites', async () => {
    const keyring = new RecordingKeyring();
    const envelope = envelopeWith(keyring, { cache: false, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' });
    const message = await envelope.encrypt('x');
    // A v2 header carrying a v1 suite id.
    const v1SuiteInV2 = Buffer.from(message);
    v1SuiteInV2.writeUInt16BE(0x0178, 1);
    const e1 = await envelopeErrorOf(envelope.decrypt(v1SuiteInV2));
    expect(e1.code).toBe('ERR_MALFORMED_MESSAGE');
    expect(e1.message).toMatch(/does not match message format version/);
    // A v1 header (version 01, type 80) carrying a v2 suite id.
    const v2SuiteInV1 = Buffer.concat([Buffer.from([0x01, 0x80, 0x04, 0x78]), randomBytes(16), Buffer.alloc(64)]);
    const e2 = await envelopeErrorOf(envelope.decrypt(v2SuiteInV1));
    expect(e2.code).toBe('ERR_MALFORMED_MESSAGE');
    expect(e2.message).toMatch(/does not match message format version/);
    // Versions other than 01 and 02.
    for (const version of [0x00, 0x03, 0x80, 0xff]) {
      const b = Buffer.from(message);
      b[0] = version;
      expect((await envelopeErrorOf(envelope.decrypt(b))).code).toBe('ERR_MALFORMED_MESSAGE');
    }
    expect(keyring.decryptInputs).toHaveLength(0);
  });

  it("suite ids outside the ESDK's table are refused: the reserved 00 00 and other formats' ids", async () => {
    const keyring = new RecordingKeyring();
    const envelope = envelopeWith(keyring, { cache: false, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' });
    const message = await envelope.encrypt('x');
    // 00 00 reserved; 00 01 / 04 79 / 05 79 near-misses; 00 72 / 00 73 S3 Encryption Client;
    // 67 00 / 67 01 database encryption (framework/algorithm-suites.md, Supported Algorithm Suites).
    for (const id of [0x0000, 0x0001, 0x0479, 0x0579, 0x0072, 0x0073, 0x6700, 0x6701, 0xffff]) {
      const b = Buffer.from(message);
      b.writeUInt16BE(id, 1);
      const e = await envelopeErrorOf(envelope.decrypt(b));
      expect(e.code, `0x${id.toString(16)}`).toBe('ERR_MALFORMED_MESSAGE');
      expect(e.message).toMatch(/algorithm suite/);
    }
    expect(keyring.decryptInputs).toHaveLength(0);
    // Nor can any of them be chosen for encryption.
    for (const suite of [0x0000, 0x6701, 0x0072]) expect(() => envelopeWith(keyring, { suite })).toThrow(RangeError);
  });
});
