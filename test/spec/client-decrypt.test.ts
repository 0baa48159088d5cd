/**
 * The decrypt operation (client-apis/decrypt.md), the commitment policies it enforces
 * (framework/commitment-policy.md) and the default CMM's "Decrypt Materials" as the Envelope
 * implements them: inputs and outputs, the order of the steps, and what is released when.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateSigningKey } from '../../src/crypto/ecdsa.js';
import { SUITES } from '../../src/format/suites.js';
import { writeMessage } from '../format/reference-writer.js';
import { layout, parseModel, serializeModel } from '../hostile/model.js';
import { envelopeErrorOf, envelopeWith, keyLengthOf, RecordingKeyring, runStream } from './helpers.js';

const V1_SUITES = [0x0014, 0x0046, 0x0078, 0x0114, 0x0146, 0x0178, 0x0214, 0x0346, 0x0378];

/** A v1 (non-committing) framed message of `suiteId` under keyring.dataKey, by the independent writer. */
function v1Message(keyring: RecordingKeyring, suiteId: number, plaintext: Buffer): Buffer {
  const suite = SUITES.get(suiteId)!;
  const context: Record<string, string> = { legacy: 'yes' };
  let signingKey;
  if (suite.signatureCurve !== undefined) {
    const k = generateSigningKey(suite);
    context['aws-crypto-public-key'] = k.publicKey;
    signingKey = k.privateKey;
  }
  return writeMessage({
    suite: {
      id: suiteId,
      keyLength: suite.keyLength,
      committing: false,
      ...(suite.kdfHash ? { kdfHash: suite.kdfHash } : {}),
      ...(suite.signatureHash ? { signatureHash: suite.signatureHash } : {}),
    },
    dataKey: keyring.dataKey.subarray(0, keyLengthOf(suiteId)),
    context,
    edks: keyring.edks,
    plaintext,
    frameLength: 100,
    ...(signingKey ? { signingKey } : {}),
  });
}

describe('decrypt (client-apis/decrypt.md)', () => {
  it('takes the message and a keyring; the required context is optional; anything but bytes is refused', async () => {
    const keyring = new RecordingKeyring();
    const envelope = envelopeWith(keyring);
    const message = await envelope.encrypt('x', { context: { a: '1' } });
    expect((await envelope.decrypt(message)).plaintext.toString()).toBe('x');
    expect((await envelope.decrypt(new Uint8Array(message), { context: { a: '1' } })).plaintext.toString()).toBe('x');
    for (const bad of [undefined, 'string', [1, 2], { length: 3 }]) await expect(envelope.decrypt(bad as never)).rejects.toThrow(TypeError);
  });

  it('returns the plaintext, the full encryption context and the suite id; the stream emits the parsed header before any plaintext', async () => {
    const keyring = new RecordingKeyring();
    for (const suite of [0x0478, 0x0578]) {
      const envelope = envelopeWith(keyring, { suite, frameLength: 10 });
      const plaintext = randomBytes(35);
      const message = await envelope.encrypt(plaintext, { context: { tenant: 'acme' } });
      const r = await envelope.decrypt(message);
      expect(r.plaintext.equals(plaintext)).toBe(true);
      expect(r.suiteId).toBe(suite);
      expect(r.context.tenant).toBe('acme');
      expect('aws-crypto-public-key' in r.context).toBe(suite === 0x0578);
      const stream = envelope.decryptStream();
      let header: { suite: { id: number }; context: Record<string, string> } | undefined;
      stream.on('header', (h) => (header = h));
      const s = await runStream(stream, [message]);
      expect(s.events[0]).toBe('header');
      expect(header!.suite.id).toBe(suite);
      expect(header!.context).toEqual(r.context);
      expect(s.out.equals(plaintext)).toBe(true);
    }
  });

  it('a base64-encoded message is refused with an error that says it may be base64', async () => {
    const keyring = new RecordingKeyring();
    const envelope = envelopeWith(keyring, { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' });
    const v2 = await envelope.encrypt('x');
    const v1 = v1Message(keyring, 0x0178, Buffer.from('x'));
    for (const message of [v2, v1]) {
      const b64 = Buffer.from(message.toString('base64'), 'ascii');
      const e = await envelopeErrorOf(envelope.decrypt(b64));
      expect(e.code).toBe('ERR_MALFORMED_MESSAGE');
      expect(e.message).toMatch(/base64/);
      const s = await runStream(envelope.decryptStream(), [b64]);
      expect((s.error as Error).message).toMatch(/base64/);
    }
    expect(keyring.decryptInputs).toHaveLength(0);
  });

  it('nothing from the header is released before its tag verified: a bad header tag gives no header event and no output', async () => {
    const keyring = new RecordingKeyring();
    const envelope = envelopeWith(keyring, { cache: false });
    const message = await envelope.encrypt(randomBytes(100), { context: { tenant: 'acme' } });
    const headerLength = layout(parseModel(message)).headerLength;
    const bad = Buffer.from(message);
    bad[headerLength - 1]! ^= 1; // last byte of the header tag
    const s = await runStream(envelope.decryptStream(), [bad]);
    expect((s.error as { code?: string }).code).toBe('ERR_DECRYPTION_FAILED');
    expect(s.events).toEqual(['error']);
    expect((await envelopeErrorOf(envelope.decrypt(bad))).code).toBe('ERR_DECRYPTION_FAILED');
  });

  it('REQUIRE_ENCRYPT_REQUIRE_DECRYPT refuses every non-committing suite before any keyring call; REQUIRE_ENCRYPT_ALLOW_DECRYPT reads every ESDK suite', async () => {
    const keyring = new RecordingKeyring();
    const strict = envelopeWith(keyring, { cache: false });
    const allow = envelopeWith(keyring, { cache: false, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' });
    const plaintext = randomBytes(250);
    for (const id of V1_SUITES) {
      const message = v1Message(keyring, id, plaintext);
      const before = keyring.decryptInputs.length;
      expect((await envelopeErrorOf(strict.decrypt(message))).code, `0x${id.toString(16)}`).toBe('ERR_COMMITMENT_POLICY');
      const s = await runStream(strict.decryptStream(), [message]);
      expect((s.error as { code?: string }).code).toBe('ERR_COMMITMENT_POLICY');
      expect(keyring.decryptInputs.length).toBe(before);
      expect((await allow.decrypt(message)).plaintext.equals(plaintext)).toBe(true);
      expect((await runStream(allow.decryptStream(), [message])).out.equals(plaintext)).toBe(true);
    }
    for (const suite of [0x0478, 0x0578]) {
      const message = await envelopeWith(keyring, { suite }).encrypt(plaintext);
      expect((await strict.decrypt(message)).plaintext.equals(plaintext)).toBe(true);
      expect((await allow.decrypt(message)).plaintext.equals(plaintext)).toBe(true);
    }
  });

  it("the caller's required context pairs are checked against the message's context before the keyring is called", async () => {
    const keyring = new RecordingKeyring();
    const envelope = envelopeWith(keyring, { cache: false });
    const message = await envelope.encrypt('x', { context: { tenant: 'acme', stage: 'prod' } });
    const wrong: Record<string, string>[] = [{ tenant: 'other' }, { region: 'eu' }, { tenant: 'acme', stage: 'dev' }];
    for (const required of wrong) {
      expect((await envelopeErrorOf(envelope.decrypt(message, { context: required }))).code).toBe('ERR_CONTEXT_MISMATCH');
      const s = await runStream(envelope.decryptStream({ context: required }), [message]);
      expect((s.error as { code?: string }).code).toBe('ERR_CONTEXT_MISMATCH');
    }
    expect(keyring.decryptInputs).toHaveLength(0);
    expect((await envelope.decrypt(message, { context: { tenant: 'acme' } })).plaintext.toString()).toBe('x');
    expect(keyring.decryptInputs).toHaveLength(1);
  });

  it('the steps run in order: header checks before the keyring, the key commitment before the header tag, the header tag before the body, each frame before the footer', async () => {
    const keyring = new RecordingKeyring();
    const envelope = envelopeWith(keyring, { suite: 0x0578, frameLength: 10, cache: false });
    const message = await envelope.encrypt(randomBytes(35));
    const model = parseModel(message);
    const { headerLength, frameStarts, bodyEnd } = layout(model);

    // A malformed header (content type 03): refused without calling the keyring.
    const badType = serializeModel({ ...model, contentType: 3 });
    expect((await envelopeErrorOf(envelope.decrypt(badType))).code).toBe('ERR_MALFORMED_MESSAGE');
    expect(keyring.decryptInputs).toHaveLength(0);

    // Wrong data key and a broken header tag: the commitment check comes first.
    const badTag = Buffer.from(message);
    badTag[headerLength - 1]! ^= 1;
    const liar = envelopeWith({ onEncrypt: keyring.onEncrypt.bind(keyring), onDecrypt: async () => randomBytes(32) }, { cache: false });
    expect((await envelopeErrorOf(liar.decrypt(badTag))).code).toBe('ERR_COMMITMENT_MISMATCH');

    // Right key, broken header tag and a truncated body: the header tag fails first.
    expect((await envelopeErrorOf(envelope.decrypt(badTag.subarray(0, headerLength + 5)))).code).toBe('ERR_DECRYPTION_FAILED');

    // A broken tag in frame 2 (and a footer that no longer verifies): the stream fails at frame 2,
    // before the footer has even arrived, having released only frame 1.
    const badFrame = Buffer.from(message);
    badFrame[frameStarts[2]! - 1]! ^= 1;
    const s = await runStream(envelope.decryptStream(), [badFrame.subarray(0, frameStarts[1]!), badFrame.subarray(frameStarts[1]!, frameStarts[2]!)]);
    expect((s.error as { code?: string }).code).toBe('ERR_DECRYPTION_FAILED');
    expect(s.out).toHaveLength(10);
    expect(bodyEnd).toBeLessThan(message.length);
  });

  it('an unsigned stream releases each frame once its tag verified, before the input ends', async () => {
    const keyring = new RecordingKeyring();
    const envelope = envelopeWith(keyring, { frameLength: 100 });
    const plaintext = randomBytes(1000);
    const message = await envelope.encrypt(plaintext);
    const { frameStarts } = layout(parseModel(message));
    const stream = envelope.decryptStream();
    const chunks: Buffer[] = [];
    stream.on('data', (b: Buffer) => chunks.push(Buffer.from(b)));
    const write = (b: Buffer) => new Promise<void>((resolve, reject) => stream.write(b, (e) => (e ? reject(e) : resolve())));
    const settle = () => new Promise((resolve) => setImmediate(resolve));
    // Up to the end of frame 3: frames 1..3 are out, nothing of frame 4 (which has only begun).
    await write(message.subarray(0, frameStarts[3]! + 20));
    await settle();
    expect(Buffer.concat(chunks).equals(plaintext.subarray(0, 300))).toBe(true);
    await write(message.subarray(frameStarts[3]! + 20, frameStarts[7]!));
    await settle();
    expect(Buffer.concat(chunks).equals(plaintext.subarray(0, 700))).toBe(true);
    const ended = new Promise((resolve) => stream.on('end', resolve));
    stream.end(message.subarray(frameStarts[7]!));
    await ended;
    expect(Buffer.concat(chunks).equals(plaintext)).toBe(true);
  });
});
