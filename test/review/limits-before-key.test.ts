/**
 * Review finding (issue 10, hole 3): a non-framed body larger than `maxBodyBytes` was refused only
 * after the keyring had unwrapped the data key (one KMS call per hostile message), while the README
 * promised "before any KMS call". The body's length follows the header in the clear (IV, then an
 * 8-byte content length: data-format/message-body.md, "Un-Framed Data"), so the stream decryptor
 * reads it before it asks for a key, as it already did for the regular frame length.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Envelope, RawAesKeyring, type Keyring } from '../../src/index.js';
import { parseHeader } from '../../src/format/header.js';
import { MessageDecryptor } from '../../src/format/decryptor.js';
import { SUITES } from '../../src/format/suites.js';
import { writeMessage } from '../format/reference-writer.js';
import { streamThrough } from './helpers.js';

const LEGACY = 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' as const;

function spyKeyring(): Keyring & { decryptCalls: number; inner: RawAesKeyring } {
  const inner = new RawAesKeyring({ keyNamespace: 'limits', keyName: 'k', key: randomBytes(32) });
  const k = {
    inner,
    decryptCalls: 0,
    onEncrypt: (i: Parameters<Keyring['onEncrypt']>[0]) => inner.onEncrypt(i),
    onDecrypt: (i: Parameters<Keyring['onDecrypt']>[0]) => (k.decryptCalls++, inner.onDecrypt(i)),
  };
  return k;
}

/** A genuine non-framed message of `suiteId` holding `length` bytes, with an EDK `ring` opens. */
async function nonFramed(ring: ReturnType<typeof spyKeyring>, suiteId: number, length: number): Promise<Buffer> {
  const context = { purpose: 'limits' };
  const out = await ring.inner.onEncrypt({ suiteId, context });
  return writeMessage({
    suite: SUITES.get(suiteId)!,
    dataKey: Buffer.from(out.dataKey),
    context,
    edks: out.encryptedDataKeys,
    plaintext: randomBytes(length),
    frameLength: 0,
  });
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kms-envelope-limits-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('stream decrypt checks the non-framed body length against maxBodyBytes before any keyring call', () => {
  it.each([
    ['v2 0x0478', 0x0478],
    ['v1 0x0178', 0x0178],
  ] as const)(
    'a non-framed body over maxBodyBytes (%s) fails with ERR_LIMIT_EXCEEDED before any keyring call, through decryptStream (whole, 1-byte chunks) and decryptFile',
    async (_name, suiteId) => {
      const ring = spyKeyring();
      const message = await nonFramed(ring, suiteId, 4097);
      const legacy = SUITES.get(suiteId)!.committing ? {} : { commitmentPolicy: LEGACY };
      // One byte more than allowed is refused ...
      const strict = new Envelope({ keyring: ring, maxBodyBytes: 4096, cache: false, ...legacy });
      for (const chunk of [message.length, 1]) {
        const r = await streamThrough(strict, message, chunk);
        expect(r.error).toMatchObject({ code: 'ERR_LIMIT_EXCEEDED' });
        expect(r.out.length).toBe(0);
      }
      const src = join(dir, `nonframed-${suiteId}.enc`);
      writeFileSync(src, message);
      await expect(strict.decryptFile(src, src + '.out')).rejects.toMatchObject({ code: 'ERR_LIMIT_EXCEEDED' });
      expect(readdirSync(dir).filter((f) => f.endsWith('.out') || f.endsWith('.tmp'))).toEqual([]);
      expect(ring.decryptCalls).toBe(0);
      expect(strict.stats().keyringCalls).toBe(0);
      // ... and exactly the limit decrypts (one keyring call per stream), so the check reads the right field.
      const fits = new Envelope({ keyring: ring, maxBodyBytes: 4097, cache: false, ...legacy });
      const ok = await streamThrough(fits, message, 1);
      expect(ok.error).toBeUndefined();
      expect(ok.out.length).toBe(4097);
      expect(ring.decryptCalls).toBe(1);
    },
  );

  it('a non-framed message cut inside the IV or content length after its header fails as truncated without any keyring call', async () => {
    const ring = spyKeyring();
    const message = await nonFramed(ring, 0x0478, 100);
    const headerLength = parseHeader(message, { maxEncryptedDataKeys: 10 })!.length;
    const envelope = new Envelope({ keyring: ring, cache: false });
    for (const cut of [headerLength, headerLength + 5, headerLength + 19]) {
      const r = await streamThrough(envelope, message.subarray(0, cut), 1);
      expect(r.error).toMatchObject({ code: 'ERR_MALFORMED_MESSAGE' });
    }
    expect(ring.decryptCalls).toBe(0);
  });

  it('MessageDecryptor asks for the key of a non-framed message only once the body length is read and within maxBodyBytes', async () => {
    const ring = spyKeyring();
    const message = await nonFramed(ring, 0x0478, 100);
    const headerLength = parseHeader(message, { maxEncryptedDataKeys: 10 })!.length;
    const dec = new MessageDecryptor({ maxEncryptedDataKeys: 10, maxBodyBytes: 100 });
    let at = 0;
    for (; at < message.length && !dec.needsKey; at++) dec.push(message.subarray(at, at + 1));
    // IV (12 bytes) and content length (8 bytes) follow the header.
    expect(at).toBe(headerLength + 20);
    const tooSmall = new MessageDecryptor({ maxEncryptedDataKeys: 10, maxBodyBytes: 99 });
    expect(() => tooSmall.push(message)).toThrow(expect.objectContaining({ code: 'ERR_LIMIT_EXCEEDED' }));
    expect(tooSmall.needsKey).toBe(false);
  });
});
