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

  it('never draws a line as wide as the terminal, at any width, with or without a total', () => {
    for (const total of [4 * 1024 ** 3, undefined]) {
      for (let columns = 1; columns <= 120; columns++) {
        const out = { ...sink(true), columns };
        const p = new Progress({ label: 'decrypt', total, out, now: () => 5000, delayMs: 0 });
        p.set(3 * 1024 ** 3 + 12345);
        const line = p.line(5000);
        expect(line.length, `${columns}: ${line}`).toBeLessThanOrEqual(Math.max(1, columns - 1));
        if (total !== undefined && columns >= 6) expect(line, `${columns}`).toMatch(/75%/);
        p.done();
      }
    }
  });

  it('finish() leaves a last line at 100% of the input size; a run that never showed the bar stays silent', () => {
    let t = 0;
    const out = sink(true);
    const p = new Progress({ label: 'encrypt', total: 2048, out, now: () => t, delayMs: 1000, intervalMs: 200 });
    t = 1500;
    p.add(1000);
    t = 1550;
    p.add(1048); // within the interval: not drawn
    expect(out.writes.at(-1)).toMatch(/ 48% /);
    p.finish();
    expect(out.writes.at(-2)).toMatch(/^\r\x1b\[2Kencrypt \[#+\] 100% 2\.0 KiB \/ 2\.0 KiB /);
    expect(out.writes.at(-1)).toBe('\n');
    const n = out.writes.length;
    p.done(); // after finish: nothing more (no erase of the last line)
    expect(out.writes).toHaveLength(n);

    const quiet = sink(true);
    const q = new Progress({ label: 'encrypt', total: 10, out: quiet, now: () => 0, delayMs: 1000 });
    q.add(10);
    q.finish();
    expect(quiet.writes).toEqual([]);
  });

  it('redraws at once for the new width when the terminal is resized, and stops listening when done', () => {
    const listeners = new Set<() => void>();
    const out = {
      ...sink(true),
      on: (_e: 'resize', l: () => void) => listeners.add(l),
      off: (_e: 'resize', l: () => void) => listeners.delete(l),
    };
    const p = new Progress({ label: 'encrypt', total: 1 << 20, out, now: () => 2000, delayMs: 0, intervalMs: 10_000 });
    p.add(1 << 19);
    expect(out.writes.at(-1)!.length).toBeGreaterThan(40);
    out.columns = 30;
    for (const l of listeners) l();
    expect(out.writes.at(-1)).toMatch(/^\r\x1b\[2K/);
    expect(out.writes.at(-1)!.length - 5).toBeLessThanOrEqual(29);
    p.done();
    expect(listeners.size).toBe(0);
  });

  it('formats byte counts', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(5 * 1024 ** 3)).toBe('5.0 GiB');
  });
});
