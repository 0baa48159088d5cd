/**
 * Streaming (client-apis/streaming.md): encrypt and decrypt as Node Transforms, with the
 * mechanisms the specification asks for (input made consumable, end of input, output released,
 * end of output) and no signal of success before the whole output; signed streams feed the header
 * and each frame to the signature as they pass, so memory does not grow with the message.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Transform } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { layout, parseModel } from '../hostile/model.js';
import { envelopeWith, RecordingKeyring, runStream } from './helpers.js';

const run = promisify(execFile);

describe('streaming (client-apis/streaming.md)', () => {
  it('encryptStream and decryptStream are Node Transforms: write() makes input consumable, end() ends it, data events release the output and end follows the last of it', async () => {
    const envelope = envelopeWith(new RecordingKeyring(), { frameLength: 64 });
    const plaintext = randomBytes(1000);
    const enc = envelope.encryptStream();
    const dec = envelope.decryptStream();
    expect(enc).toBeInstanceOf(Transform);
    expect(dec).toBeInstanceOf(Transform);
    const e = await runStream(enc, [plaintext.subarray(0, 300), plaintext.subarray(300)]);
    expect(e.ended).toBe(true);
    expect(e.events[e.events.length - 1]).toBe('end');
    expect(e.events.filter((x) => x === 'data').length).toBeGreaterThan(1); // released in parts
    const d = await runStream(dec, [e.out.subarray(0, 500), e.out.subarray(500)]);
    expect(d.ended).toBe(true);
    expect(d.out.equals(plaintext)).toBe(true);
    expect(d.events.indexOf('end')).toBe(d.events.length - 1);
  });

  it('a stream that fails emits error and never end, whatever it released before', async () => {
    const keyring = new RecordingKeyring();
    const envelope = envelopeWith(keyring, { frameLength: 64 });
    const message = await envelope.encrypt(randomBytes(1000));
    const { frameStarts } = layout(parseModel(message));
    // Truncated after frame 5: five frames were verified and released, then the input ended.
    const cut = await runStream(envelope.decryptStream(), [message.subarray(0, frameStarts[5]!)]);
    expect(cut.ended).toBe(false);
    expect((cut.error as { code?: string }).code).toBe('ERR_MALFORMED_MESSAGE');
    expect(cut.events).not.toContain('end');
    // A keyring that fails while encrypting.
    const failing = envelopeWith({ onEncrypt: async () => Promise.reject(new Error('down')), onDecrypt: async () => undefined });
    const enc = await runStream(failing.encryptStream(), [Buffer.from('x')]);
    expect(enc.events).toEqual(['error']);
  });

  it('a 192 MiB signed (0x0578) stream encrypts and decrypts with a peak RSS under 200 MiB: header and frames go to the signature as they pass', async () => {
    const dist = fileURLToPath(new URL('../../dist/index.js', import.meta.url));
    expect(existsSync(dist), 'dist/ is missing: run `npm run build` (npm test does)').toBe(true);
    const child = fileURLToPath(new URL('./signed-stream-child.mjs', import.meta.url));
    const bytes = 192 * 2 ** 20;
    const { stdout } = await run(process.execPath, [child, String(bytes)], { maxBuffer: 1 << 20 });
    const r = JSON.parse(stdout.trim()) as { produced: number; received: number; same: boolean; maxRssBytes: number };
    expect(r.produced).toBe(bytes);
    expect(r.received).toBe(bytes);
    expect(r.same).toBe(true);
    expect(r.maxRssBytes).toBeGreaterThan(0);
    expect(r.maxRssBytes).toBeLessThan(200 * 2 ** 20);
  }, 120_000);
});
