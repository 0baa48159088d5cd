/**
 * Review finding (issue 10, hole 4): `decryptStream({ holdFinalFrame: false })` released the final
 * frame of a signed message before its signature verified. client-apis/decrypt.md ("Decrypt the
 * message body", streamed input): plaintext of a final frame or of unframed data "MUST NOT be
 * released until signature verification successfully completes". The option is gone; what the
 * specification offers streaming consumers instead ("Behavior": "The ESDK MUST provide a
 * configuration option that causes the decryption operation to fail immediately after parsing the
 * header if a signed algorithm suite is used") is the signature policy of the other ESDKs:
 * `signaturePolicy: 'ALLOW_ENCRYPT_FORBID_DECRYPT'` refuses signed suites before any key is
 * requested, and every frame of the unsigned messages it accepts, the final one included, is
 * released as soon as its tag verified.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Envelope, RawAesKeyring, type Keyring } from '../../src/index.js';
import { MessageDecryptor } from '../../src/format/decryptor.js';
import { parseHeader } from '../../src/format/header.js';
import { SUITES } from '../../src/format/suites.js';
import { PUBLIC_KEY_CONTEXT_KEY } from '../../src/format/context.js';
import { generateSigningKey } from '../../src/crypto/ecdsa.js';
import { writeMessage } from '../format/reference-writer.js';

const FRAME = 1000;
const PLAINTEXT = randomBytes(20 * FRAME + 500); // 20 regular frames + a 500-byte final frame
const FORBID = 'ALLOW_ENCRYPT_FORBID_DECRYPT' as const;

function spyKeyring(): Keyring & { decryptCalls: number; inner: RawAesKeyring } {
  const inner = new RawAesKeyring({ keyNamespace: 'sigpolicy', keyName: 'k', key: randomBytes(32) });
  const k = {
    inner,
    decryptCalls: 0,
    onEncrypt: (i: Parameters<Keyring['onEncrypt']>[0]) => inner.onEncrypt(i),
    onDecrypt: (i: Parameters<Keyring['onDecrypt']>[0]) => (k.decryptCalls++, inner.onDecrypt(i)),
  };
  return k;
}

/**
 * Writes `message` to `t` in `size`-byte pieces, each after the previous one was processed, and
 * collects 'data'. With `end: false` the input is never ended: what was emitted by then was
 * released before the stream could know whether the message is complete.
 */
async function writeSlowly(t: NodeJS.ReadWriteStream & { destroy(): void }, message: Buffer, size: number, end = true) {
  const out: Buffer[] = [];
  let error: unknown;
  t.on('data', (b: Buffer) => out.push(b));
  t.on('error', (e) => (error = e));
  for (let o = 0; o < message.length && error === undefined; o += size) {
    await new Promise<void>((resolve) => t.write(message.subarray(o, o + size), () => resolve()));
  }
  await new Promise((r) => setImmediate(r));
  if (error === undefined && end) {
    t.end();
    await new Promise<void>((resolve) => {
      t.on('end', resolve);
      t.on('error', () => resolve());
    });
  }
  if (!end) t.destroy();
  return { out: Buffer.concat(out), error };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kms-envelope-sigpolicy-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('client-apis/decrypt.md: the final frame of a signed message is released only after its signature verified', () => {
  it('decryptStream withholds the final frame of a signed message until its signature verified and the input ended: forged or missing signature, input not ended, any chunking', async () => {
    const ring = spyKeyring();
    const envelope = new Envelope({ keyring: ring, suite: 0x0578, frameLength: FRAME });
    const message = await envelope.encrypt(PLAINTEXT);
    const forged = Buffer.from(message);
    forged[forged.length - 5]! ^= 0x40;
    const headerLength = parseHeader(message, { maxEncryptedDataKeys: 10 })!.length;
    const bodyEnd = headerLength + 20 * (4 + 12 + FRAME + 16) + 4 + 4 + 12 + 4 + 500 + 16;
    for (const bad of [forged, message.subarray(0, bodyEnd)]) {
      for (const size of [1, 100, FRAME, 100_000]) {
        const r = await writeSlowly(envelope.decryptStream(), bad, size);
        expect(r.error).toMatchObject({ code: expect.stringMatching(/^ERR_(DECRYPTION_FAILED|MALFORMED_MESSAGE)$/) });
        // Written in pieces smaller than a frame, every frame pushed is seen before the error: exactly
        // the 20 regular frames. In bigger pieces, output still buffered when the stream fails is
        // discarded, so it is at most those.
        if (size <= FRAME) expect(r.out.equals(PLAINTEXT.subarray(0, 20 * FRAME))).toBe(true);
        else expect(r.out.equals(PLAINTEXT.subarray(0, Math.min(r.out.length, 20 * FRAME)))).toBe(true);
      }
    }
    // The input not ended yet: the final frame is held even though its tag verified.
    const open = await writeSlowly(envelope.decryptStream(), message, 100, false);
    expect(open.out.equals(PLAINTEXT.subarray(0, 20 * FRAME))).toBe(true);
    const ok = await writeSlowly(envelope.decryptStream(), message, 100);
    expect(ok.error).toBeUndefined();
    expect(ok.out.equals(PLAINTEXT)).toBe(true);
  });

  it('holdFinalFrame is gone: passing it to decrypt, decryptStream or decryptFile is a TypeError naming it', async () => {
    const envelope = new Envelope({ keyring: spyKeyring() });
    const message = await envelope.encrypt('x');
    for (const value of [false, true, undefined]) {
      const options = { holdFinalFrame: value } as never;
      expect(() => envelope.decryptStream(options)).toThrow(TypeError);
      expect(() => envelope.decryptStream(options)).toThrow(/holdFinalFrame/);
      await expect(envelope.decrypt(message, options)).rejects.toThrow(/holdFinalFrame/);
      await expect(envelope.decryptFile(join(dir, 'none'), join(dir, 'none.out'), options)).rejects.toThrow(TypeError);
    }
  });

  it('MessageDecryptor always holds the final frame of a signed message (and a signed non-framed body) until end(), and refuses a holdFinalFrame limit', async () => {
    const ring = spyKeyring();
    const suite = SUITES.get(0x0578)!;
    const { privateKey, publicKey } = generateSigningKey(suite);
    const context = { [PUBLIC_KEY_CONTEXT_KEY]: publicKey };
    const out = await ring.inner.onEncrypt({ suiteId: suite.id, context });
    for (const frameLength of [FRAME, 0]) {
      const message = writeMessage({
        suite,
        dataKey: Buffer.from(out.dataKey),
        context,
        edks: out.encryptedDataKeys,
        plaintext: PLAINTEXT,
        frameLength,
        signingKey: privateKey,
      });
      const dec = new MessageDecryptor({ maxEncryptedDataKeys: 10 });
      const released: Buffer[] = [];
      for (let o = 0; o < message.length; o += 333) {
        dec.push(message.subarray(o, o + 333));
        if (dec.needsKey) dec.setDataKey(out.dataKey);
        released.push(...dec.read());
      }
      // Everything pushed, signature verified, but the input has not ended: no final frame yet.
      expect(Buffer.concat(released).equals(PLAINTEXT.subarray(0, frameLength === 0 ? 0 : 20 * FRAME))).toBe(true);
      released.push(...dec.end());
      expect(Buffer.concat(released).equals(PLAINTEXT)).toBe(true);
    }
    expect(() => new MessageDecryptor({ maxEncryptedDataKeys: 10, holdFinalFrame: false } as never)).toThrow(/holdFinalFrame/);
  });
});

describe('client-apis/decrypt.md "Behavior": signaturePolicy ALLOW_ENCRYPT_FORBID_DECRYPT fails right after the header is parsed if the suite is signed', () => {
  it('a signed message fails with ERR_SIGNATURE_POLICY before any keyring call, through decrypt, decryptStream (on the header bytes alone) and decryptFile', async () => {
    const ring = spyKeyring();
    const signed = await new Envelope({ keyring: ring, suite: 0x0578, frameLength: FRAME }).encrypt(PLAINTEXT);
    const headerLength = parseHeader(signed, { maxEncryptedDataKeys: 10 })!.length;
    for (const cache of [undefined, false] as const) {
      const envelope = new Envelope({ keyring: ring, ...(cache === false ? { cache } : {}) });
      await expect(envelope.decrypt(signed, { signaturePolicy: FORBID })).rejects.toMatchObject({
        code: 'ERR_SIGNATURE_POLICY',
        name: 'SignaturePolicyError',
      });
      // Only the header is written, and the input is not ended: the error comes from the header.
      for (const size of [1, headerLength]) {
        const r = await writeSlowly(envelope.decryptStream({ signaturePolicy: FORBID }), signed.subarray(0, headerLength), size, false);
        expect(r.error).toMatchObject({ code: 'ERR_SIGNATURE_POLICY' });
        expect(r.out.length).toBe(0);
      }
      const src = join(dir, 'signed.enc');
      writeFileSync(src, signed);
      await expect(envelope.decryptFile(src, join(dir, 'signed.out'), { signaturePolicy: FORBID })).rejects.toMatchObject({
        code: 'ERR_SIGNATURE_POLICY',
      });
      expect(readdirSync(dir)).toEqual(['signed.enc']);
      expect(envelope.stats().keyringCalls).toBe(0);
    }
    expect(ring.decryptCalls).toBe(0);
  });

  it('legacy signed suites (0x0214, 0x0346, 0x0378) are refused the same way', async () => {
    const ring = spyKeyring();
    const envelope = new Envelope({ keyring: ring, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' });
    for (const id of [0x0214, 0x0346, 0x0378]) {
      const suite = SUITES.get(id)!;
      const { privateKey, publicKey } = generateSigningKey(suite);
      const context = { [PUBLIC_KEY_CONTEXT_KEY]: publicKey };
      const out = await ring.inner.onEncrypt({ suiteId: id, context });
      const message = writeMessage({
        suite,
        dataKey: Buffer.from(out.dataKey),
        context,
        edks: out.encryptedDataKeys,
        plaintext: PLAINTEXT,
        frameLength: FRAME,
        signingKey: privateKey,
      });
      expect((await envelope.decrypt(message)).plaintext.equals(PLAINTEXT)).toBe(true);
      const before = ring.decryptCalls;
      await expect(envelope.decrypt(message, { signaturePolicy: FORBID })).rejects.toMatchObject({ code: 'ERR_SIGNATURE_POLICY' });
      const r = await writeSlowly(envelope.decryptStream({ signaturePolicy: FORBID }), message, 64);
      expect(r.error).toMatchObject({ code: 'ERR_SIGNATURE_POLICY' });
      expect(ring.decryptCalls).toBe(before);
    }
  });

  it('unsigned messages decrypt under it, and every frame, the final one included, is released as soon as its tag verified', async () => {
    const envelope = new Envelope({ keyring: spyKeyring(), frameLength: FRAME });
    const message = await envelope.encrypt(PLAINTEXT);
    expect((await envelope.decrypt(message, { signaturePolicy: FORBID })).plaintext.equals(PLAINTEXT)).toBe(true);
    const open = await writeSlowly(envelope.decryptStream({ signaturePolicy: FORBID }), message, 100, false);
    expect(open.error).toBeUndefined();
    expect(open.out.equals(PLAINTEXT)).toBe(true);
    const src = join(dir, 'unsigned.enc');
    writeFileSync(src, message);
    await envelope.decryptFile(src, join(dir, 'unsigned.out'), { signaturePolicy: FORBID });
    rmSync(src);
    rmSync(join(dir, 'unsigned.out'));
  });

  it('the default accepts signed messages, and a bad value is a RangeError naming signaturePolicy', async () => {
    const envelope = new Envelope({ keyring: spyKeyring(), suite: 0x0578 });
    const signed = await envelope.encrypt('signed');
    expect((await envelope.decrypt(signed)).plaintext.toString()).toBe('signed');
    expect((await envelope.decrypt(signed, { signaturePolicy: 'ALLOW_ENCRYPT_ALLOW_DECRYPT' })).plaintext.toString()).toBe('signed');
    for (const bad of ['FORBID', 'allow_encrypt_forbid_decrypt', true, 0]) {
      expect(() => envelope.decryptStream({ signaturePolicy: bad as never })).toThrow(RangeError);
      expect(() => envelope.decryptStream({ signaturePolicy: bad as never })).toThrow(/signaturePolicy/);
      await expect(envelope.decrypt(signed, { signaturePolicy: bad as never })).rejects.toThrow(RangeError);
      await expect(envelope.decryptFile(join(dir, 'x'), join(dir, 'y'), { signaturePolicy: bad as never })).rejects.toThrow(RangeError);
    }
  });
});
