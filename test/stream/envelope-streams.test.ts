/**
 * The stream layer through the public API: envelope.encryptStream / decryptStream / encryptFile /
 * decryptFile with a raw AES keyring (no KMS).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Envelope, RawAesKeyring } from '../../src/index.js';
import { chunked, prng, run, runCollect } from './helpers.js';

const keyring = () => new RawAesKeyring({ keyNamespace: 'env-streams', keyName: 'k', key: Buffer.alloc(32, 9) });
const DATA = prng(1_000_001, 99);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kms-envelope-env-streams-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('Envelope streams', () => {
  it('stream output decrypts with envelope.decrypt and buffer output with decryptStream', async () => {
    for (const suite of [0x0478, 0x0578]) {
      const envelope = new Envelope({ keyring: keyring(), suite, frameLength: 10_000 });
      const context = { app: 'streams' };
      const message = await run(envelope.encryptStream({ context }), chunked(DATA, [65_536]));
      const viaBuffer = await envelope.decrypt(message, { context });
      expect(viaBuffer.plaintext.equals(DATA)).toBe(true);
      const buffered = await envelope.encrypt(DATA, { context });
      const viaStream = await run(envelope.decryptStream({ context }), chunked(buffered, [4096]));
      expect(viaStream.equals(DATA)).toBe(true);
    }
  });

  it('required context mismatch and a foreign keyring end in typed errors with no output', async () => {
    const envelope = new Envelope({ keyring: keyring() });
    const message = await envelope.encrypt(DATA, { context: { tenant: 'a' } });
    const mismatch = await runCollect(envelope.decryptStream({ context: { tenant: 'b' } }), [message]);
    expect(mismatch.error).toMatchObject({ code: 'ERR_CONTEXT_MISMATCH' });
    expect(mismatch.out.length).toBe(0);
    const other = new Envelope({
      keyring: new RawAesKeyring({ keyNamespace: 'env-streams', keyName: 'other', key: Buffer.alloc(32, 1) }),
    });
    const foreign = await runCollect(other.decryptStream(), [message]);
    expect(foreign.error).toMatchObject({ code: 'ERR_NO_DECRYPTABLE_KEY' });
    expect(foreign.out.length).toBe(0);
  });

  it('streams with a declared plaintextLength use the data-key cache; without it, fresh keys', async () => {
    const envelope = new Envelope({ keyring: keyring() });
    for (let i = 0; i < 5; i++) {
      await run(envelope.encryptStream({ context: { c: '1' }, plaintextLength: DATA.length }), [DATA]);
    }
    expect(envelope.stats().keyringCalls).toBe(1);
    for (let i = 0; i < 3; i++) await run(envelope.encryptStream({ context: { c: '1' } }), [DATA]);
    expect(envelope.stats().keyringCalls).toBe(4);
  });

  it('a stream longer or shorter than its declared plaintextLength fails with ERR_STREAM', async () => {
    const envelope = new Envelope({ keyring: keyring() });
    const longer = await runCollect(envelope.encryptStream({ plaintextLength: 1000 }), [DATA.subarray(0, 1001)]);
    expect(longer.error).toMatchObject({ code: 'ERR_STREAM' });
    const shorter = await runCollect(envelope.encryptStream({ plaintextLength: 1000 }), [DATA.subarray(0, 999)]);
    expect(shorter.error).toMatchObject({ code: 'ERR_STREAM' });
  });

  it('encryptFile / decryptFile round trip; a tampered file leaves nothing behind', async () => {
    const envelope = new Envelope({ keyring: keyring() });
    const src = join(dir, 'plain');
    const enc = join(dir, 'plain.enc');
    const back = join(dir, 'plain.out');
    await writeFile(src, DATA);
    await envelope.encryptFile(src, enc, { context: { file: 'plain' } });
    await envelope.decryptFile(enc, back, { context: { file: 'plain' } });
    expect((await readFile(back)).equals(DATA)).toBe(true);
    // The file's message is an ordinary message.
    const { plaintext } = await envelope.decrypt(await readFile(enc));
    expect(plaintext.equals(DATA)).toBe(true);

    const bad = Buffer.from(await readFile(enc));
    bad[bad.length - 1]! ^= 1;
    await writeFile(enc, bad);
    const before = (await readdir(dir)).sort();
    await expect(envelope.decryptFile(enc, join(dir, 'tampered.out'))).rejects.toMatchObject({
      code: 'ERR_DECRYPTION_FAILED',
    });
    expect((await readdir(dir)).sort()).toEqual(before);
  });
});
