/**
 * encryptFile/decryptFile with an AbortSignal (the CLI aborts on Ctrl-C): the work stops, exactly
 * this run's temporary file is removed, `dst` is untouched, and another writer's temporary file for
 * the same target survives.
 */
import { afterAll, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Envelope, RawAesKeyring } from '../../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'abort-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const envelope = new Envelope({
  keyring: new RawAesKeyring({ keyNamespace: 'abort', keyName: 'k', key: randomBytes(32) }),
  frameLength: 4096,
});

it('aborting encryptFile removes only its own temporary file and leaves dst alone', async () => {
  const src = join(dir, 'big.bin');
  writeFileSync(src, randomBytes(32 << 20));
  const dst = join(dir, 'big.enc');
  writeFileSync(dst, 'previous content');
  const foreign = join(dir, '.big.enc.0123456789abcdef.tmp'); // another run writing the same target
  writeFileSync(foreign, 'theirs');

  const controller = new AbortController();
  const work = envelope.encryptFile(src, dst, { signal: controller.signal });
  // Abort once our temporary file exists, i.e. mid-way.
  const ours = () => readdirSync(dir).filter((n) => n.startsWith('.big.enc.') && n !== '.big.enc.0123456789abcdef.tmp');
  for (let i = 0; i < 400 && ours().length === 0; i++) await new Promise((r) => setImmediate(r));
  controller.abort();
  await expect(work).rejects.toMatchObject({ name: 'AbortError' });

  expect(ours()).toEqual([]);
  expect(readFileSync(foreign, 'utf8')).toBe('theirs');
  expect(readFileSync(dst, 'utf8')).toBe('previous content');
});

it('an already aborted signal does nothing at all', async () => {
  const src = join(dir, 'small.bin');
  writeFileSync(src, 'hello');
  const dst = join(dir, 'small.out');
  await expect(envelope.decryptFile(src, dst, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
  await expect(envelope.encryptFile(src, dst, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
  expect(existsSync(dst)).toBe(false);
  expect(readdirSync(dir).filter((n) => n.startsWith('.small.out.'))).toEqual([]);
});

it('rejects a signal that is not an AbortSignal', async () => {
  await expect(envelope.encryptFile(join(dir, 'small.bin'), join(dir, 'x'), { signal: {} as never })).rejects.toThrow(
    /options.signal must be an AbortSignal/,
  );
});
