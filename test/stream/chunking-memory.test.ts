/**
 * Review finding (issue 10, hole 5): a stream decrypt's memory depended on how the sender chunked
 * the message. A 256 KiB frame written one byte at a time cost about +130 MiB (one Buffer object
 * per written chunk was held until the frame's tag arrived; measured here before the fix: +47 MiB
 * live, +137..147 MiB RSS; a 512 KiB non-framed body +97 MiB live, +247 MiB RSS). The decryptor
 * now gathers small pieces and decrypts them 16 KiB at a time (large pieces in place), so memory
 * stays about one frame whatever the chunking (client-apis/streaming.md: streaming APIs "SHOULD
 * allow customers to be able to process arbitrarily large inputs with a finite amount of working
 * memory").
 *
 * Each case runs in a child process (test/stream/chunking-child.mjs, the built package) with
 * --expose-gc: every memory sample follows a full GC, so the deltas asserted here (with a wide
 * margin) are live memory. `npm test` builds dist/ first.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawAesKeyring } from '../../src/keyrings/raw-aes.js';
import { SUITES } from '../../src/format/suites.js';
import { PUBLIC_KEY_CONTEXT_KEY } from '../../src/format/context.js';
import { generateSigningKey } from '../../src/crypto/ecdsa.js';
import type { EncryptionContext } from '../../src/types.js';
import { writeMessage } from '../format/reference-writer.js';

const run = promisify(execFile);
const child = fileURLToPath(new URL('./chunking-child.mjs', import.meta.url));
const dist = fileURLToPath(new URL('../../dist/index.js', import.meta.url));

const KiB = 1024;
const MiB = 1024 * KiB;
const FRAME = 256 * KiB;
const WRAPPING_KEY = randomBytes(32);
const ring = new RawAesKeyring({ keyNamespace: 'chunking', keyName: 'k', key: WRAPPING_KEY });

interface ChildResult {
  messageBytes: number;
  writes: number;
  samples: number;
  received: number;
  sha256: string;
  peakDelta: { rss: number; heapUsed: number; external: number; arrayBuffers: number; live: number };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kms-envelope-chunking-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function message(suiteId: number, plaintext: Buffer, frameLength: number, context: EncryptionContext = {}): Promise<string> {
  const suite = SUITES.get(suiteId)!;
  let full = context;
  let signingKey;
  if (suite.signatureCurve !== undefined) {
    const pair = generateSigningKey(suite);
    signingKey = pair.privateKey;
    full = { ...context, [PUBLIC_KEY_CONTEXT_KEY]: pair.publicKey };
  }
  const out = await ring.onEncrypt({ suiteId, context: full });
  const bytes = writeMessage({ suite, dataKey: Buffer.from(out.dataKey), context: full, edks: out.encryptedDataKeys, plaintext, frameLength, signingKey });
  const file = join(dir, `${suiteId}-${frameLength}-${randomBytes(4).toString('hex')}.msg`);
  writeFileSync(file, bytes);
  return file;
}

async function decryptInChild(file: string, chunk: number): Promise<ChildResult> {
  expect(existsSync(dist), 'dist/ is missing: run `npm run build` (npm test does)').toBe(true);
  const { stdout } = await run(process.execPath, ['--expose-gc', child, file, WRAPPING_KEY.toString('hex'), String(chunk)], {
    maxBuffer: 1 << 20,
  });
  const r = JSON.parse(stdout.trim()) as ChildResult;
  // Shown in the test output: the numbers behind the assertions.
  console.log(`${file.split('/').pop()} chunk=${chunk}: live +${(r.peakDelta.live / MiB).toFixed(2)} MiB, rss +${(r.peakDelta.rss / MiB).toFixed(2)} MiB`);
  return r;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('client-apis/streaming.md: stream decrypt memory stays about one frame whatever the sender\'s chunking', () => {
  it.each([
    ['unsigned 0x0478', 0x0478],
    ['signed 0x0578', 0x0578],
  ] as const)(
    '256 KiB frames (%s) written 1 byte at a time: live memory grows by at most 6 frames (1.5 MiB), RSS by at most 32 MiB',
    async (_name, suiteId) => {
      const plaintext = randomBytes(2 * FRAME + 1000); // two full frames and a final frame
      const file = await message(suiteId, plaintext, FRAME);
      const r = await decryptInChild(file, 1);
      expect(r.received).toBe(plaintext.length);
      expect(r.sha256).toBe(sha256(plaintext));
      expect(r.writes).toBe(r.messageBytes);
      expect(r.samples).toBeGreaterThan(32);
      expect(r.peakDelta.live).toBeLessThan(6 * FRAME);
      expect(r.peakDelta.rss).toBeLessThan(32 * MiB);
    },
    120_000,
  );

  it('a 512 KiB non-framed body written 1 byte at a time: live memory grows by at most 4 bodies (2 MiB), RSS by at most 32 MiB', async () => {
    const plaintext = randomBytes(512 * KiB);
    const file = await message(0x0478, plaintext, 0);
    const r = await decryptInChild(file, 1);
    expect(r.received).toBe(plaintext.length);
    expect(r.sha256).toBe(sha256(plaintext));
    expect(r.peakDelta.live).toBeLessThan(4 * plaintext.length);
    expect(r.peakDelta.rss).toBeLessThan(32 * MiB);
  }, 120_000);

  it('a 60 KB header (large encryption context) written 1 byte at a time: live memory grows by at most 1 MiB', async () => {
    const plaintext = randomBytes(1000);
    const file = await message(0x0478, plaintext, 4096, { big: 'x'.repeat(60_000) });
    const r = await decryptInChild(file, 1);
    expect(r.received).toBe(plaintext.length);
    expect(r.sha256).toBe(sha256(plaintext));
    expect(r.peakDelta.live).toBeLessThan(1 * MiB);
    expect(r.peakDelta.rss).toBeLessThan(32 * MiB);
  }, 120_000);

  it('the same frames in 64 KiB chunks stay within the same bounds (the bound does not depend on the chunking)', async () => {
    const plaintext = randomBytes(2 * FRAME + 1000);
    const file = await message(0x0578, plaintext, FRAME);
    const r = await decryptInChild(file, 64 * KiB);
    expect(r.sha256).toBe(sha256(plaintext));
    expect(r.peakDelta.live).toBeLessThan(6 * FRAME);
    expect(r.peakDelta.rss).toBeLessThan(32 * MiB);
  }, 120_000);
});
