/**
 * The CLI's own temp+rename path for stream output to a file (src/cli/io.ts runPipeline, used for
 * stdin -> file): the output appears complete or not at all, no temporary file is left behind,
 * and the data is fsynced before the rename and the directory after it (as src/stream/files.ts
 * does). Durability itself cannot be observed in a test; the order of the sync calls can.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough, Readable, Transform } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const syncCalls: { path: string; flags: string; targetExists: boolean }[] = [];
let target = '';

vi.mock('../../src/stream/files.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/stream/files.js')>();
  return {
    ...real,
    syncPath: async (path: string, flags: string) => {
      syncCalls.push({ path, flags, targetExists: target !== '' && existsSync(target) });
      return real.syncPath(path, flags);
    },
    syncFile: async (path: string) => {
      syncCalls.push({ path, flags: 'file', targetExists: target !== '' && existsSync(target) });
      return real.syncFile(path);
    },
  };
});

const { resolveEndpoint, runPipeline } = await import('../../src/cli/io.js');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kms-envelope-io-'));
  syncCalls.length = 0;
});
afterEach(() => {
  target = '';
  rmSync(dir, { recursive: true, force: true });
});

const io = () => ({ stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough(), env: {} });
const temps = () => readdirSync(dir).filter((n) => n.endsWith('.tmp'));

/** Passes `failAfter` bytes, then fails (never, when undefined). */
function step(failAfter?: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (failAfter !== undefined && seen > failAfter) cb(new Error('decryption failed midway'));
      else cb(null, chunk);
    },
  });
}

const chunks = (n: number, size = 64 * 1024) => Array.from({ length: n }, (_, i) => Buffer.alloc(size, i));

describe('runPipeline to a file', () => {
  it('writes the whole output under the target name, fsyncs data before the rename and the directory after, leaves no temp file', async () => {
    target = join(dir, 'out.bin');
    const data = chunks(8);
    const output = await resolveEndpoint(target, '-o');
    await runPipeline(Readable.from(data), [step()], output, io(), { mode: 0o600 });
    expect(readFileSync(target).equals(Buffer.concat(data))).toBe(true);
    expect(statSync(target).mode & 0o077).toBe(0); // plaintext mode 0600 survives the rename
    expect(temps()).toEqual([]);
    expect(syncCalls).toHaveLength(2);
    // 1. the temporary file's data, before the target name exists;
    expect(syncCalls[0]).toMatchObject({ flags: 'file', targetExists: false });
    expect(dirname(syncCalls[0]!.path)).toBe(dir);
    expect(syncCalls[0]!.path).toMatch(/\/\.out\.bin\.kms-envelope-tmp-\d+-[0-9a-f]{8}-[0-9a-f]{16}\.tmp$/);
    // 2. the directory, once the rename has happened.
    expect(syncCalls[1]).toEqual({ path: dir, flags: 'r', targetExists: true });
  });

  it('on a failure midway: no output, no temp file, an existing target untouched, no sync', async () => {
    target = join(dir, 'keep.bin');
    writeFileSync(target, 'previous contents');
    const output = await resolveEndpoint(target, '-o');
    await expect(runPipeline(Readable.from(chunks(8)), [step(3 * 64 * 1024)], output, io(), { mode: 0o600, replace: true })).rejects.toThrow(
      /decryption failed midway/,
    );
    expect(readFileSync(target, 'utf8')).toBe('previous contents');
    expect(temps()).toEqual([]);
    expect(syncCalls).toEqual([]);

    target = join(dir, 'new.bin');
    await expect(runPipeline(Readable.from(chunks(4)), [step(0)], await resolveEndpoint(target, '-o'), io(), { mode: 0o600 })).rejects.toThrow();
    expect(existsSync(target)).toBe(false);
    expect(temps()).toEqual([]);
  });

  it('does not replace a target that appeared while it worked, unless told to (--force)', async () => {
    target = join(dir, 'late.bin');
    const output = await resolveEndpoint(target, '-o'); // nothing there yet: checkOverwrite passes
    let created = false;
    // Another program creates the target midway through the work.
    const late = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        if (!created) writeFileSync(target, 'written by someone else');
        created = true;
        cb(null, chunk);
      },
    });
    await expect(runPipeline(Readable.from(chunks(4)), [late], output, io(), { mode: 0o600 })).rejects.toMatchObject({
      code: 'ERR_USAGE',
      message: expect.stringMatching(/late\.bin.*--force/),
    });
    expect(readFileSync(target, 'utf8')).toBe('written by someone else');
    expect(temps()).toEqual([]);

    await runPipeline(Readable.from(chunks(4)), [step()], output, io(), { mode: 0o600, replace: true });
    expect(readFileSync(target).equals(Buffer.concat(chunks(4)))).toBe(true);
    expect(temps()).toEqual([]);
  });

  it('when aborted (Ctrl-C): no output and no temp file', async () => {
    target = join(dir, 'aborted.bin');
    const controller = new AbortController();
    // A source that never ends: the run is mid-way when the abort comes.
    const source = new Readable({ read() {} });
    source.push(Buffer.alloc(64 * 1024, 1));
    const done = runPipeline(source, [step()], await resolveEndpoint(target, '-o'), io(), { mode: 0o600, signal: controller.signal });
    for (let i = 0; i < 200 && temps().length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(temps()).toHaveLength(1);
    controller.abort();
    await expect(done).rejects.toMatchObject({ name: 'AbortError' });
    expect(existsSync(target)).toBe(false);
    expect(temps()).toEqual([]);
  });
});
