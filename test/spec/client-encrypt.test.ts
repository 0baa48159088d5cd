/**
 * The encrypt operation (client-apis/encrypt.md) and the default CMM's part in it
 * (framework/default-cmm.md, "Get Encryption Materials") as the Envelope implements them: the
 * Envelope takes a keyring and builds its materials itself (there is no caller-supplied CMM).
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { Envelope, type EncryptOptions } from '../../src/index.js';
import { SUITES } from '../../src/format/suites.js';
import { layout, parseModel, serializeModel } from '../hostile/model.js';
import { envelopeErrorOf, envelopeWith, RecordingKeyring, runStream, v2Keys } from './helpers.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('encrypt (client-apis/encrypt.md)', () => {
  it('takes the plaintext (bytes, or a string as UTF-8) and a keyring; suite, context and frame length are optional', async () => {
    const keyring = new RecordingKeyring();
    const minimal = new Envelope({ keyring });
    const bytes = randomBytes(50);
    expect((await minimal.decrypt(await minimal.encrypt(bytes))).plaintext.equals(bytes)).toBe(true);
    expect((await minimal.decrypt(await minimal.encrypt('héllo'))).plaintext.equals(Buffer.from('héllo', 'utf8'))).toBe(true);
    const full = new Envelope({ keyring, suite: 0x0578, frameLength: 7 });
    const m = await full.encrypt(bytes, { context: { a: 'b' } });
    expect(m.readUInt16BE(1)).toBe(0x0578);
    expect((await full.decrypt(m)).context.a).toBe('b');
    // Anything but bytes or a string is refused; so is a missing keyring.
    await expect(minimal.encrypt(42 as never)).rejects.toThrow(TypeError);
    await expect(minimal.encrypt(undefined as never)).rejects.toThrow(TypeError);
    expect(() => new Envelope({} as never)).toThrow(TypeError);
  });

  it('a context key starting with aws-crypto- fails encryption before any keyring call (buffer, stream and file)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'spec-encrypt-'));
    dirs.push(dir);
    const src = join(dir, 'in');
    await writeFile(src, 'data');
    for (const suite of [0x0478, 0x0578]) {
      for (const key of ['aws-crypto-public-key', 'aws-crypto-', 'aws-crypto-anything']) {
        const keyring = new RecordingKeyring();
        const envelope = envelopeWith(keyring, { suite });
        const context = { ok: 'v', [key]: 'x' };
        await expect(envelope.encrypt('x', { context })).rejects.toThrow(/reserved/);
        expect(() => envelope.encryptStream({ context })).toThrow(/reserved/);
        await expect(envelope.encryptFile(src, join(dir, 'out'), { context })).rejects.toThrow(/reserved/);
        expect(keyring.calls).toBe(0);
      }
    }
    expect(await readdir(dir)).toEqual(['in']);
  });

  it('only the committing ESDK suites 0x0478 and 0x0578 can be chosen, under either commitment policy', async () => {
    const keyring = new RecordingKeyring();
    for (const commitmentPolicy of ['REQUIRE_ENCRYPT_REQUIRE_DECRYPT', 'REQUIRE_ENCRYPT_ALLOW_DECRYPT'] as const) {
      for (const id of SUITES.keys()) {
        if (SUITES.get(id)!.committing) {
          const envelope = envelopeWith(keyring, { suite: id, commitmentPolicy });
          const message = await envelope.encrypt('x');
          expect(message.readUInt16BE(1)).toBe(id); // the suite asked for is the suite used
          expect((await envelope.decrypt(message)).suiteId).toBe(id);
        } else {
          expect(() => envelopeWith(keyring, { suite: id, commitmentPolicy })).toThrow(/suite must be one of 0x0478, 0x0578/);
        }
      }
    }
  });

  it('encrypt() has no plaintextLength option: one passed anyway is refused (TypeError) before any keyring call, and the real length is what the cache counts', async () => {
    // @ts-expect-error -- by construction: only encryptStream() takes a declared length.
    const bound: EncryptOptions = { plaintextLength: 10 };
    const keyring = new RecordingKeyring();
    const envelope = envelopeWith(keyring, { cache: { maxBytesPerKey: 150 } });
    const big = randomBytes(200);
    // Both cannot be given: an unknown option is refused by name (src/options.ts).
    await expect(envelope.encrypt(big, bound)).rejects.toThrow(/unknown option "plaintextLength" for encrypt/);
    expect(keyring.encryptInputs).toHaveLength(0);
    const options: EncryptOptions = {};
    for (let i = 0; i < 2; i++) expect((await envelope.decrypt(await envelope.encrypt(big, options))).plaintext.equals(big)).toBe(true);
    // 200 bytes exceed maxBytesPerKey: each message gets its own data key (the real length counts).
    expect(keyring.encryptInputs).toHaveLength(2);
    const small = randomBytes(60);
    await envelope.encrypt(small, options);
    await envelope.encrypt(small, options);
    expect(keyring.encryptInputs).toHaveLength(3);
  });

  it('a stream that declared its length fails as soon as more arrives, and the excess is never encrypted', async () => {
    const keyring = new RecordingKeyring();
    const envelope = envelopeWith(keyring, { frameLength: 10, cache: false });
    // Within the declared length: a complete message.
    const fine = await runStream(envelope.encryptStream({ plaintextLength: 100 }), [randomBytes(60), randomBytes(40)]);
    expect(fine.ended).toBe(true);
    // One byte more, in a later write: the 100 declared bytes are out as 10 regular frames, then
    // the error; no frame (and no final frame) holds byte 101.
    const over = await runStream(envelope.encryptStream({ plaintextLength: 100 }), [randomBytes(100), randomBytes(1)]);
    expect((over.error as { code?: string }).code).toBe('ERR_STREAM');
    const headerLength = layout(parseModel(fine.out)).headerLength;
    expect(over.out.length).toBe(headerLength + 10 * (4 + 12 + 10 + 16));
    // More than declared in the first write: nothing at all is written, and no data key is made.
    const calls = keyring.calls;
    const first = await runStream(envelope.encryptStream({ plaintextLength: 100 }), [randomBytes(101)]);
    expect((first.error as { code?: string }).code).toBe('ERR_STREAM');
    expect(first.out).toHaveLength(0);
    expect(keyring.calls).toBe(calls);
  });

  it('without a cache, every encrypt calls the keyring once with the suite and the context, and writes the data key and the encrypted data keys it returned', async () => {
    for (const suite of [0x0478, 0x0578]) {
      const keyring = new RecordingKeyring(randomBytes(32), 3);
      const envelope = envelopeWith(keyring, { suite, cache: false });
      const context = { tenant: 'acme', purpose: 'spec' };
      for (let i = 1; i <= 3; i++) {
        const message = await envelope.encrypt('payload', { context });
        expect(keyring.encryptInputs).toHaveLength(i);
        const seen = keyring.encryptInputs[i - 1]!;
        expect(seen.suiteId).toBe(suite);
        expect(seen.dataKey).toBeUndefined(); // the keyring generates the data key
        const { 'aws-crypto-public-key': publicKey, ...rest } = seen.context;
        expect(rest).toEqual(context);
        expect(publicKey !== undefined).toBe(suite === 0x0578);
        const model = parseModel(message);
        expect(model.suiteId).toBe(suite);
        expect(model.edks.map((e) => [e.providerId.toString(), e.providerInfo.toString('hex'), e.ciphertext.toString('hex')])).toEqual(
          keyring.edks.map((e) => [e.providerId, Buffer.from(e.providerInfo).toString('hex'), Buffer.from(e.ciphertext).toString('hex')]),
        );
        // The message is committed to the keyring's data key (derived with the suite's KDF).
        expect(model.suiteData.equals(v2Keys(suite, keyring.dataKey, model.messageId).commitment)).toBe(true);
      }
    }
  });

  it('more encrypted data keys than maxEncryptedDataKeys fail encryption', async () => {
    const keyring = new RecordingKeyring(randomBytes(32), 3);
    await expect(envelopeWith(keyring, { maxEncryptedDataKeys: 3 }).encrypt('x')).resolves.toBeInstanceOf(Buffer);
    const limited = envelopeWith(keyring, { maxEncryptedDataKeys: 2 });
    expect((await envelopeErrorOf(limited.encrypt('x'))).code).toBe('ERR_LIMIT_EXCEEDED');
    const s = await runStream(limited.encryptStream(), [Buffer.from('x')]);
    expect((s.error as { code?: string }).code).toBe('ERR_LIMIT_EXCEEDED');
    expect(s.out).toHaveLength(0);
  });

  it('a failing keyring, or keyring output that cannot make a message, fails encryption and nothing is written', async () => {
    const boom = new Error('keyring down');
    const keyrings = [
      { onEncrypt: async () => Promise.reject(boom), onDecrypt: async () => undefined },
      { onEncrypt: async () => ({ dataKey: randomBytes(16), encryptedDataKeys: new RecordingKeyring().edks }), onDecrypt: async () => undefined },
      { onEncrypt: async () => ({ dataKey: randomBytes(32), encryptedDataKeys: [{ providerId: 7 }] }), onDecrypt: async () => undefined },
      { onEncrypt: async () => ({ dataKey: randomBytes(32), encryptedDataKeys: 'none' }), onDecrypt: async () => undefined },
    ];
    for (const [i, keyring] of keyrings.entries()) {
      const envelope = envelopeWith(keyring as never, { cache: false });
      // A failure that is not an EnvelopeError comes back as KeyringError with it as the cause.
      if (i === 0) await expect(envelope.encrypt('x')).rejects.toMatchObject({ code: 'ERR_KEYRING', cause: boom });
      else await expect(envelope.encrypt('x')).rejects.toThrow(/keyring returned/);
      const s = await runStream(envelope.encryptStream(), [Buffer.from('x')]);
      expect(s.error).toBeDefined();
      expect(s.ended).toBe(false);
      expect(s.out).toHaveLength(0);
    }
  });

  it('the message holds the header, the body and (signed suites) the footer, and nothing else', async () => {
    const keyring = new RecordingKeyring();
    for (const suite of [0x0478, 0x0578]) {
      const envelope = envelopeWith(keyring, { suite, frameLength: 32 });
      for (const size of [0, 31, 32, 100]) {
        const pt = randomBytes(size);
        for (const message of [await envelope.encrypt(pt), (await runStream(envelope.encryptStream(), size ? [pt] : [])).out]) {
          const model = parseModel(message); // consumes header, body and footer exactly
          expect(model.trailing).toHaveLength(0);
          expect(layout(model).end).toBe(message.length);
          expect(model.footer !== undefined).toBe(suite === 0x0578);
          expect(serializeModel(model).equals(message)).toBe(true);
        }
      }
    }
  });

  it('the stream releases the complete header, then each frame as soon as it is complete, and never part of a frame', async () => {
    for (const suite of [0x0478, 0x0578]) {
      const keyring = new RecordingKeyring();
      const stream = envelopeWith(keyring, { suite, frameLength: 100 }).encryptStream();
      const chunks: Buffer[] = [];
      stream.on('data', (b: Buffer) => chunks.push(Buffer.from(b)));
      const ended = new Promise((resolve) => stream.on('end', resolve));
      const write = (b: Buffer) => new Promise<void>((resolve, reject) => stream.write(b, (e) => (e ? reject(e) : resolve())));
      const settle = () => new Promise((resolve) => setImmediate(resolve));
      await write(randomBytes(250));
      await settle();
      const afterTwo = Buffer.concat(chunks);
      // Released so far: the header (first, in one piece) and two whole frames; the 50 bytes of
      // the third frame stay inside until it fills or the input ends.
      expect(keyring.encryptInputs).toHaveLength(1); // materials came first
      const headerLength = chunks[0]!.length;
      expect(afterTwo.length).toBe(headerLength + 2 * (4 + 12 + 100 + 16));
      await write(randomBytes(50));
      await settle();
      expect(Buffer.concat(chunks).length).toBe(headerLength + 3 * (4 + 12 + 100 + 16));
      stream.end();
      await ended;
      const message = Buffer.concat(chunks);
      const model = parseModel(message);
      expect(layout(model).headerLength).toBe(headerLength);
      expect(model.trailing).toHaveLength(0);
      if (suite === 0x0578) {
        // The footer is released whole, as the last piece.
        const footer = chunks[chunks.length - 1]!;
        expect(footer.length).toBe(message.length - layout(model).bodyEnd);
      }
    }
  });

  it('outputs the message, the encryption context it wrote and the suite (encryptDetailed), and the parsed header (encryptDetailed and the stream\'s header event, before any output)', async () => {
    for (const suite of [0x0478, 0x0578]) {
      const keyring = new RecordingKeyring();
      const envelope = envelopeWith(keyring, { suite, frameLength: 64 });
      const plaintext = randomBytes(200);
      const r = await envelope.encryptDetailed(plaintext, { context: { tenant: 'a', 'é': '😀' } });
      expect(Buffer.isBuffer(r.message)).toBe(true);
      expect(r.suiteId).toBe(suite);
      // The context written: the caller's pairs, plus the verification key for the signed suite.
      const { context, plaintext: back } = await envelope.decrypt(r.message);
      expect(back.equals(plaintext)).toBe(true);
      expect(r.context).toEqual({ ...context });
      expect(Object.keys(r.context).sort()).toEqual(suite === 0x0578 ? ['aws-crypto-public-key', 'tenant', 'é'] : ['tenant', 'é']);
      // The parsed header: as the message's own header parses.
      expect(r.header.suite.id).toBe(suite);
      expect(r.header.frameLength).toBe(64);
      expect(r.header.bytes.equals(r.message.subarray(0, r.header.length))).toBe(true);
      expect(r.header.encryptedDataKeys).toHaveLength(1);

      const stream = envelope.encryptStream({ context: { tenant: 'b' } });
      let header: { suite: { id: number }; context: Record<string, string>; bytes: Buffer } | undefined;
      let dataBeforeHeader = false;
      stream.on('header', (h) => (header = h));
      stream.on('data', () => {
        if (header === undefined) dataBeforeHeader = true;
      });
      const run = await runStream(stream, [plaintext]);
      expect(run.error).toBeUndefined();
      expect(dataBeforeHeader).toBe(false);
      expect(run.events[0]).toBe('header');
      expect(header!.suite.id).toBe(suite);
      expect(header!.context.tenant).toBe('b');
      expect(run.out.subarray(0, header!.bytes.length).equals(header!.bytes)).toBe(true);
    }
  });
});
