/** The CLI progress bar: drawn only on a terminal, only after a delay, erased at the end. */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { formatBytes, Progress } from '../../src/cli/progress.js';

function sink(isTTY: boolean) {
  const writes: string[] = [];
  return { isTTY, columns: 100, writes, write: (s: string) => writes.push(s) };
}

describe('Progress', () => {
  it('stays silent when stderr is not a terminal', () => {
    let t = 0;
    const out = sink(false);
    const p = new Progress({ label: 'encrypt', total: 100, out, now: () => t });
    t = 10_000;
    p.add(50);
    p.done();
    expect(p.enabled).toBe(false);
    expect(out.writes).toEqual([]);
  });

  it('waits for the delay, then draws percentage, sizes and rate, and erases itself', () => {
    let t = 0;
    const out = sink(true);
    const p = new Progress({ label: 'encrypt', total: 4 * 1024 * 1024, out, now: () => t, delayMs: 1000, intervalMs: 200 });
    p.add(1024 * 1024);
    expect(out.writes).toEqual([]); // short work stays quiet
    t = 2000;
    p.add(1024 * 1024);
    expect(out.writes).toHaveLength(1);
    expect(out.writes[0]).toMatch(/^\r\x1b\[2Kencrypt \[#+\.+\]  50% 2\.0 MiB \/ 4\.0 MiB 1\.0 MiB\/s$/);
    t = 2100;
    p.add(1); // within the redraw interval: no redraw
    expect(out.writes).toHaveLength(1);
    p.done();
    expect(out.writes.at(-1)).toBe('\r\x1b[2K');
  });

  it('shows bytes and rate without a total (pipes), and meters a stream', async () => {
    let t = 0;
    const out = sink(true);
    const p = new Progress({ label: 'decrypt', out, now: () => t, delayMs: 0, intervalMs: 0 });
    const chunks = [Buffer.alloc(1000), Buffer.alloc(2000)];
    let seen = 0;
    t = 1000;
    await pipeline(
      Readable.from(chunks),
      p.meter(),
      new Writable({
        write(c: Buffer, _e, cb) {
          seen += c.length;
          cb();
        },
      }),
    );
    p.done();
    expect(seen).toBe(3000);
    expect(p.bytes).toBe(3000);
    expect(out.writes.some((w) => /decrypt 2\.9 KiB 2\.9 KiB\/s$/.test(w))).toBe(true);
  });

  it('formats byte counts', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(5 * 1024 ** 3)).toBe('5.0 GiB');
  });
});
