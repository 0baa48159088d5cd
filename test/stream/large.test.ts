/**
 * 1 GiB through envelope.encryptStream() then decryptStream() in a child process (the built
 * package, dist/): the SHA-256 of what went in equals that of what came out, and the child's peak
 * RSS stays under 200 MiB, i.e. memory does not grow with the stream's length.
 * `npm test` builds dist/ first; LARGE_STREAM_BYTES overrides the size.
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const child = fileURLToPath(new URL('./large-child.mjs', import.meta.url));
const dist = fileURLToPath(new URL('../../dist/index.js', import.meta.url));
const BYTES = Number(process.env.LARGE_STREAM_BYTES ?? 2 ** 30);

describe('large stream', () => {
  it(`${BYTES} bytes round trip with constant memory (peak RSS < 200 MiB)`, async () => {
    expect(existsSync(dist), 'dist/ is missing: run `npm run build` (npm test does)').toBe(true);
    const { stdout } = await run(process.execPath, [child, String(BYTES)], { maxBuffer: 1 << 20 });
    const r = JSON.parse(stdout.trim()) as {
      bytes: number;
      produced: number;
      received: number;
      inSha256: string;
      outSha256: string;
      maxRssBytes: number;
    };
    expect(r.produced).toBe(BYTES);
    expect(r.received).toBe(BYTES);
    expect(r.outSha256).toBe(r.inSha256);
    expect(r.maxRssBytes).toBeGreaterThan(0);
    expect(r.maxRssBytes).toBeLessThan(200 * 1024 * 1024);
  }, 180_000);
});
