/**
 * The message body, its AAD and the footer (data-format/message-body.md, message-body-aad.md,
 * message-footer.md, message.md): what we write is read back by an independent model of the format
 * (test/hostile/model.ts) and decrypted with node:crypto under AADs built from the specification;
 * what we read is checked with messages that are structurally wrong but carry valid tags and
 * signatures (re-sealed by the model), so only the structure checks can reject them.
 */
import { createVerify, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encryptBuffer, prepareEncryption } from '../../src/format/encrypt.js';
import { SUITES } from '../../src/format/suites.js';
import { makeMaterials } from '../format/esdk-helpers.js';
import { writeMessage } from '../format/reference-writer.js';
import {
  layout,
  openModel,
  p384KeyPair,
  parseModel,
  seal,
  serializeBody,
  serializeHeader,
  serializeModel,
  type FrameModel,
  type MessageModel,
} from '../hostile/model.js';
import {
  bodyAad,
  envelopeErrorOf,
  envelopeWith,
  gcmOpen,
  gcmSeal,
  LABEL_FINAL_FRAME,
  LABEL_FRAME,
  LABEL_SINGLE_BLOCK,
  PROVIDER_ID,
  RecordingKeyring,
  runStream,
  u32,
  v2Keys,
} from './helpers.js';

const F = 16;

async function written(suite: number, size: number, frameLength = F) {
  const keyring = new RecordingKeyring();
  const envelope = envelopeWith(keyring, { suite, frameLength, cache: false });
  const plaintext = randomBytes(size);
  const message = await envelope.encrypt(plaintext);
  return { keyring, envelope, plaintext, message, model: parseModel(message) };
}

function frames(m: MessageModel): FrameModel[] {
  if (m.body.kind !== 'framed') throw new Error('expected a framed body');
  return m.body.frames;
}

describe('message body, writing (data-format/message-body.md, message-body-aad.md)', () => {
  it('regular frames: sequence numbers 1, 2, 3 ..., IV = 8 zero bytes and the sequence number, exactly frame-length bytes of content, a 16-byte tag', async () => {
    for (const suite of [0x0478, 0x0578]) {
      const { model } = await written(suite, 5 * F + 7);
      const fs = frames(model);
      expect(fs).toHaveLength(6);
      const ivs = new Set<string>();
      fs.forEach((f, i) => {
        expect(f.sequenceNumber).toBe(i + 1);
        expect(f.iv).toHaveLength(12);
        expect(f.iv.equals(Buffer.concat([Buffer.alloc(8), u32(i + 1)]))).toBe(true);
        expect(f.tag).toHaveLength(16);
        if (!f.final) expect(f.content).toHaveLength(F);
        ivs.add(f.iv.toString('hex'));
      });
      expect(ivs.size).toBe(fs.length); // unique within the message
    }
  });

  it('the final frame: end marker FF FF FF FF, a sequence number equal to the number of frames, its content length (at most the frame length); it is the only final frame and the last', async () => {
    for (const size of [1, F - 1, F + 1, 3 * F + 5, 3 * F]) {
      const { message, model } = await written(0x0478, size);
      const fs = frames(model);
      expect(fs.filter((f) => f.final)).toHaveLength(1);
      const last = fs[fs.length - 1]!;
      expect(last.final).toBe(true);
      expect(last.sequenceNumber).toBe(fs.length);
      expect(last.content.length).toBeLessThanOrEqual(F);
      expect(last.content.length).toBe(size - (fs.length - 1) * F);
      const at = layout(model).frameStarts[fs.length - 1]!;
      expect(message.subarray(at, at + 4).equals(Buffer.from('ffffffff', 'hex'))).toBe(true);
      expect(message.readUInt32BE(at + 4)).toBe(fs.length);
      expect(message.readUInt32BE(at + 20)).toBe(last.content.length);
      expect(last.tag).toHaveLength(16);
    }
  });

  it('a plaintext shorter than the frame length is exactly one frame, a final frame', async () => {
    for (const size of [0, 1, F - 1]) {
      const fs = frames((await written(0x0478, size)).model);
      expect(fs).toHaveLength(1);
      expect(fs[0]!.final).toBe(true);
      expect(fs[0]!.content).toHaveLength(size);
    }
  });

  it('a plaintext that is a multiple of the frame length (or empty) ends with an empty final frame', async () => {
    for (const size of [0, F, 3 * F]) {
      const fs = frames((await written(0x0478, size)).model);
      expect(fs).toHaveLength(size / F + 1);
      expect(fs.slice(0, -1).every((f) => !f.final && f.content.length === F)).toBe(true);
      expect(fs[fs.length - 1]!.final).toBe(true);
      expect(fs[fs.length - 1]!.content).toHaveLength(0);
    }
  });

  it('each frame decrypts independently under the body AAD: message id, Frame or Final Frame label, sequence number, u64 content length', async () => {
    for (const suite of [0x0478, 0x0578]) {
      for (const size of [0, 7, F, 4 * F + 3]) {
        const { keyring, plaintext, model } = await written(suite, size);
        const { key } = v2Keys(suite, keyring.dataKey, model.messageId);
        const out: Buffer[] = [];
        for (const f of frames(model)) {
          const aad = bodyAad(model.messageId, f.final ? LABEL_FINAL_FRAME : LABEL_FRAME, f.sequenceNumber, f.content.length);
          out.push(gcmOpen(key, f.iv, aad, f.content, f.tag));
        }
        // In order, the frames' plaintexts are the input: regular frames take the next frame
        // length of bytes, the final frame the rest.
        expect(Buffer.concat(out).equals(plaintext)).toBe(true);
      }
    }
  });

  it('every message is framed (content type 02), whatever the API, suite and size', async () => {
    const keyring = new RecordingKeyring();
    for (const suite of [0x0478, 0x0578]) {
      const envelope = envelopeWith(keyring, { suite, frameLength: 64 });
      for (const size of [0, 1, 64, 1000]) {
        const pt = randomBytes(size);
        const viaBuffer = await envelope.encrypt(pt);
        const viaStream = (await runStream(envelope.encryptStream(), size === 0 ? [] : [pt])).out;
        for (const m of [viaBuffer, viaStream]) {
          const model = parseModel(m);
          expect(model.contentType).toBe(2);
          expect(model.body.kind).toBe('framed');
        }
      }
    }
  });

  it('a plaintext that would need more than 2^32 - 1 frames is refused before anything is written', async () => {
    // A Uint8Array that claims 2^32 bytes: at frame length 1 it needs 2^32 + 1 frames. The
    // length is all the encryptor may look at before refusing.
    class Huge extends Uint8Array {
      override get length(): number {
        return 2 ** 32;
      }
    }
    const m = makeMaterials(0x0478);
    const p = prepareEncryption(m, 1);
    expect(() => encryptBuffer(p, m.dataKey, new Huge(8))).toThrow(expect.objectContaining({ code: 'ERR_LIMIT_EXCEEDED' }));
    const envelope = envelopeWith(new RecordingKeyring(), { frameLength: 1, cache: false });
    expect((await envelopeErrorOf(envelope.encrypt(new Huge(8)))).code).toBe('ERR_LIMIT_EXCEEDED');
  });
});

/** Re-seals `m` (a message written with keyring.dataKey) after `change`, keeping every tag valid. */
function resealed(keyring: RecordingKeyring, m: MessageModel, change: (m: MessageModel) => void): Buffer {
  const open = openModel(m, keyring.dataKey);
  change(open);
  return serializeModel(seal(open, { dataKey: keyring.dataKey }));
}

async function rejectedBoth(envelope: ReturnType<typeof envelopeWith>, message: Buffer, code: string, label: string): Promise<void> {
  expect((await envelopeErrorOf(envelope.decrypt(message))).code, `${label} (buffer)`).toBe(code);
  const r = await runStream(envelope.decryptStream(), [message]);
  expect((r.error as { code?: string } | undefined)?.code, `${label} (stream)`).toBe(code);
  expect(r.ended).toBe(false);
}

describe('message body, reading', () => {
  it('a non-framed body authenticates only under the Single Block label, sequence number 1 and its content length', async () => {
    const keyring = new RecordingKeyring();
    const envelope = envelopeWith(keyring, { cache: false });
    const suite = SUITES.get(0x0478)!;
    const plaintext = randomBytes(100);
    const message = writeMessage({
      suite: { id: suite.id, keyLength: 32, kdfHash: 'sha512', committing: true },
      dataKey: keyring.dataKey,
      context: { shape: 'non-framed' },
      edks: keyring.edks,
      plaintext,
      frameLength: 0,
    });
    expect((await envelope.decrypt(message)).plaintext.equals(plaintext)).toBe(true);

    const model = parseModel(message);
    if (model.body.kind !== 'nonFramed') throw new Error('expected non-framed');
    const { key } = v2Keys(0x0478, keyring.dataKey, model.messageId);
    const withAad = (aad: Buffer): Buffer => {
      const { ct, tag } = gcmSeal(key, model.body.kind === 'nonFramed' ? model.body.part.iv : Buffer.alloc(12), aad, plaintext);
      const body = model.body.kind === 'nonFramed' ? model.body.part : undefined;
      return serializeModel({ ...model, body: { kind: 'nonFramed', part: { ...body!, content: ct, tag } } });
    };
    // The control re-seal with the specification's AAD decrypts; any other AAD does not.
    expect((await envelope.decrypt(withAad(bodyAad(model.messageId, LABEL_SINGLE_BLOCK, 1, 100)))).plaintext.equals(plaintext)).toBe(true);
    for (const [label, aad] of [
      ['Frame label', bodyAad(model.messageId, LABEL_FRAME, 1, 100)],
      ['Final Frame label', bodyAad(model.messageId, LABEL_FINAL_FRAME, 1, 100)],
      ['sequence number 0', bodyAad(model.messageId, LABEL_SINGLE_BLOCK, 0, 100)],
      ['sequence number 2', bodyAad(model.messageId, LABEL_SINGLE_BLOCK, 2, 100)],
      ['content length 99', bodyAad(model.messageId, LABEL_SINGLE_BLOCK, 1, 99)],
      ['another message id', bodyAad(randomBytes(32), LABEL_SINGLE_BLOCK, 1, 100)],
    ] as const) {
      expect((await envelopeErrorOf(envelope.decrypt(withAad(aad)))).code, label).toBe('ERR_DECRYPTION_FAILED');
    }
  });

  it('each frame authenticates only under its own label, sequence number, content length and the message id', async () => {
    const { keyring, envelope, plaintext, model } = await written(0x0478, 2 * F + 5);
    const { key } = v2Keys(0x0478, keyring.dataKey, model.messageId);
    const withFrame = (i: number, aad: Buffer): Buffer => {
      const fs = frames(model).map((f) => ({ ...f }));
      const pt = plaintext.subarray(i * F, Math.min((i + 1) * F, plaintext.length));
      const { ct, tag } = gcmSeal(key, fs[i]!.iv, aad, pt);
      fs[i] = { ...fs[i]!, content: ct, tag };
      return serializeModel({ ...model, body: { kind: 'framed', frames: fs } });
    };
    const id = model.messageId;
    expect((await envelope.decrypt(withFrame(1, bodyAad(id, LABEL_FRAME, 2, F)))).plaintext.equals(plaintext)).toBe(true);
    expect((await envelope.decrypt(withFrame(2, bodyAad(id, LABEL_FINAL_FRAME, 3, 5)))).plaintext.equals(plaintext)).toBe(true);
    for (const [label, i, aad] of [
      ['regular frame under the Final Frame label', 1, bodyAad(id, LABEL_FINAL_FRAME, 2, F)],
      ['regular frame under the Single Block label', 1, bodyAad(id, LABEL_SINGLE_BLOCK, 2, F)],
      ['regular frame under another sequence number', 1, bodyAad(id, LABEL_FRAME, 1, F)],
      ['regular frame under another content length', 1, bodyAad(id, LABEL_FRAME, 2, F - 1)],
      ['regular frame under another message id', 1, bodyAad(randomBytes(32), LABEL_FRAME, 2, F)],
      ['final frame under the Frame label', 2, bodyAad(id, LABEL_FRAME, 3, 5)],
      ['final frame under another sequence number', 2, bodyAad(id, LABEL_FINAL_FRAME, 2, 5)],
      ['final frame under another content length', 2, bodyAad(id, LABEL_FINAL_FRAME, 3, F)],
    ] as const) {
      await rejectedBoth(envelope, withFrame(i, aad), 'ERR_DECRYPTION_FAILED', label);
    }
  });

  it('a final frame with more content than the frame length is refused, even with valid tags', async () => {
    const { keyring, envelope, model } = await written(0x0478, 2 * F + 5);
    const ok = resealed(keyring, model, (m) => {
      frames(m)[2]!.plaintext = randomBytes(F); // exactly the frame length: allowed
    });
    expect((await envelope.decrypt(ok)).plaintext).toHaveLength(3 * F);
    const bad = resealed(keyring, model, (m) => {
      frames(m)[2]!.plaintext = randomBytes(F + 1);
    });
    await rejectedBoth(envelope, bad, 'ERR_MALFORMED_MESSAGE', 'final frame of F + 1 bytes');
  });

  it('sequence numbers must start at 1 and go up by 1, the final one equal to the frame count, even with valid tags', async () => {
    const { keyring, envelope, model } = await written(0x0478, 2 * F + 5);
    for (const [label, seqs] of [
      ['starting at 2', [2, 3, 4]],
      ['starting at 0', [0, 1, 2]],
      ['skipping 2', [1, 3, 4]],
      ['repeating 1', [1, 1, 2]],
      ['final too high', [1, 2, 4]],
      ['final too low', [1, 2, 2]],
    ] as const) {
      const bad = resealed(keyring, model, (m) => frames(m).forEach((f, i) => (f.sequenceNumber = seqs[i]!)));
      await rejectedBoth(envelope, bad, 'ERR_MALFORMED_MESSAGE', label);
    }
  });

  it('a framed body needs exactly one final frame, as its last frame, even with valid tags', async () => {
    const { keyring, envelope, model } = await written(0x0478, 2 * F + 5);
    // No final frame: the last frame becomes a regular one (and the body simply stops).
    const noFinal = resealed(keyring, model, (m) => {
      const f = frames(m)[2]!;
      f.final = false;
      f.plaintext = randomBytes(F);
    });
    await rejectedBoth(envelope, noFinal, 'ERR_MALFORMED_MESSAGE', 'no final frame');
    // A second final frame after the first, and a regular frame after the final one.
    for (const [label, extra] of [
      ['two final frames', { final: true, sequenceNumber: 4 }],
      ['a frame after the final frame', { final: false, sequenceNumber: 4 }],
    ] as const) {
      const bad = resealed(keyring, model, (m) => {
        const fs = frames(m);
        fs.push({ ...fs[0]!, ...extra, iv: Buffer.concat([Buffer.alloc(8), u32(4)]), plaintext: randomBytes(extra.final ? 3 : F) });
      });
      await rejectedBoth(envelope, bad, 'ERR_MALFORMED_MESSAGE', label);
    }
  });

  it('a non-framed content length over 2^36 - 32 is refused from the length field alone', async () => {
    const keyring = new RecordingKeyring();
    const envelope = envelopeWith(keyring, { cache: false, maxBodyBytes: 2 ** 36 });
    const message = writeMessage({
      suite: { id: 0x0478, keyLength: 32, kdfHash: 'sha512', committing: true },
      dataKey: keyring.dataKey,
      context: {},
      edks: keyring.edks,
      plaintext: randomBytes(10),
      frameLength: 0,
    });
    const model = parseModel(message);
    const at = layout(model).headerLength + 12;
    for (const [declared, re] of [
      [2 ** 36 - 31, /AES-GCM limit/],
      [2 ** 40, /AES-GCM limit/],
      [2 ** 36 - 32, /truncated/], // the largest allowed length: only missing bytes are wrong
    ] as const) {
      const b = Buffer.from(message);
      b.writeBigUInt64BE(BigInt(declared), at);
      const e = await envelopeErrorOf(envelope.decrypt(b));
      expect(e.code).toBe('ERR_MALFORMED_MESSAGE');
      expect(e.message).toMatch(re);
      const r = await runStream(envelope.decryptStream(), [b]);
      expect((r.error as Error).message).toMatch(re);
    }
  });
});

describe('message footer (data-format/message-footer.md, message.md)', () => {
  it('a signed message ends with a footer: u16 signature length and a DER ECDSA P-384 / SHA-384 signature over header and body, verifiable with the public key in the context', async () => {
    for (const size of [0, 5, 3 * F + 1]) {
      const { keyring, message, model } = await written(0x0578, size);
      const publicKey = keyring.encryptInputs[0]!.context['aws-crypto-public-key']!;
      expect(model.context.pairs.find((p) => p.key.toString() === 'aws-crypto-public-key')?.value.toString()).toBe(publicKey);
      const { bodyEnd } = layout(model);
      const signature = message.subarray(bodyEnd + 2);
      expect(message.readUInt16BE(bodyEnd)).toBe(signature.length);
      expect(signature[0]).toBe(0x30); // DER SEQUENCE
      expect(model.trailing).toHaveLength(0);
      const spki = Buffer.concat([Buffer.from('3046301006072a8648ce3d020106052b81040022033200', 'hex'), Buffer.from(publicKey, 'base64')]);
      const verify = (data: Buffer): boolean =>
        createVerify('sha384').update(data).verify({ key: spki, format: 'der', type: 'spki', dsaEncoding: 'der' }, signature);
      expect(verify(message.subarray(0, bodyEnd))).toBe(true);
      expect(verify(Buffer.concat([serializeHeader(model), serializeBody(model)]))).toBe(true);
      expect(verify(message.subarray(layout(model).headerLength, bodyEnd))).toBe(false); // body alone
    }
  });

  it('an unsigned message has no footer: it ends with its final frame, and bytes after it are refused', async () => {
    const { envelope, message, model } = await written(0x0478, 3 * F + 1);
    expect(layout(model).bodyEnd).toBe(message.length);
    expect(model.footer).toBeUndefined();
    // What a footer would look like is trailing garbage to an unsigned reader.
    const signed = await written(0x0578, 1);
    const footer = signed.message.subarray(layout(signed.model).bodyEnd);
    await rejectedBoth(envelope, Buffer.concat([message, footer]), 'ERR_MALFORMED_MESSAGE', 'footer after an unsigned message');
  });

  it('a signed message without its footer, or signed by another key than the one in its context, is refused', async () => {
    const { keyring, envelope, message, model } = await written(0x0578, 2 * F);
    await rejectedBoth(envelope, message.subarray(0, layout(model).bodyEnd), 'ERR_MALFORMED_MESSAGE', 'no footer');
    // Valid tags and a valid signature by a key that is not the context's: only the signature
    // check (with the verification key from the context) can notice.
    const other = p384KeyPair();
    const open = openModel(model, keyring.dataKey);
    const forged = serializeModel(seal(seal(open, { dataKey: keyring.dataKey }), { dataKey: keyring.dataKey, signingKey: other.signingKey }));
    await rejectedBoth(envelope, forged, 'ERR_DECRYPTION_FAILED', 'signed by another key');
    // Control: the same re-seal with the context's key swapped for the signer's decrypts.
    const resigned = serializeModel(seal(open, { dataKey: keyring.dataKey, signingKey: other.signingKey, publicKey: other.publicKey }));
    expect((await envelope.decrypt(resigned)).plaintext).toHaveLength(2 * F);
    expect(PROVIDER_ID).toBe(model.edks[0]!.providerId.toString());
  });
});
