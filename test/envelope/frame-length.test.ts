/**
 * frameLength and maxFrameLength agree: an Envelope always reads what it writes, an explicit
 * maxFrameLength below frameLength is refused at construction, and the limit error names the
 * option that raises it.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Envelope, LimitExceededError, RawAesKeyring } from '../../src/index.js';

const keyring = new RawAesKeyring({ keyNamespace: 'test', keyName: 'k', key: randomBytes(32) });

async function streamDecrypt(e: Envelope, message: Buffer): Promise<Buffer> {
  const s = e.decryptStream();
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    s.on('end', resolve);
    s.on('error', reject);
  });
  s.end(message);
  await done;
  return Buffer.concat(chunks);
}

describe('frameLength over the default maxFrameLength (16 MiB)', () => {
  it('the same Envelope decrypts its own 32 MiB-frame messages: maxFrameLength defaults to max(16 MiB, frameLength)', async () => {
    const e = new Envelope({ keyring, frameLength: 32 << 20 });
    const message = await e.encrypt(Buffer.from('big frames'));
    expect((await streamDecrypt(e, message)).toString()).toBe('big frames');
  });

  it('refuses an explicit maxFrameLength below frameLength with a RangeError naming both', () => {
    const make = () => new Envelope({ keyring, frameLength: 32 << 20, maxFrameLength: 16 << 20 });
    expect(make).toThrow(RangeError);
    expect(make).toThrow(/maxFrameLength \(16777216 bytes\).*frameLength \(33554432 bytes\)/);
    // Equal is fine.
    expect(() => new Envelope({ keyring, frameLength: 1 << 20, maxFrameLength: 1 << 20 })).not.toThrow();
  });

  it('a maxFrameLength below the default frame length (256 KiB) given alone lowers the frame length to it', async () => {
    const e = new Envelope({ keyring, maxFrameLength: 1000 });
    expect(e.frameLength).toBe(1000);
    const plain = randomBytes(2500);
    expect((await streamDecrypt(e, await e.encrypt(plain))).equals(plain)).toBe(true);
    expect(new Envelope({ keyring, maxFrameLength: 1 << 20 }).frameLength).toBe(262_144);
  });

  it('a reader with the default limit refuses the message with an error naming maxFrameLength and the frame length', async () => {
    const message = await new Envelope({ keyring, frameLength: 32 << 20 }).encrypt(Buffer.from('x'));
    const err = await streamDecrypt(new Envelope({ keyring }), message).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LimitExceededError);
    const limit = err as LimitExceededError;
    expect(limit.code).toBe('ERR_LIMIT_EXCEEDED');
    expect(limit.message).toMatch(/33554432/);
    expect(limit.message).toMatch(/16777216/);
    expect(limit.message).toMatch(/raise the maxFrameLength option/);
    expect(limit.option).toBe('maxFrameLength');
    // And with the option raised it reads.
    expect((await streamDecrypt(new Envelope({ keyring, maxFrameLength: 32 << 20 }), message)).toString()).toBe('x');
  });
});
