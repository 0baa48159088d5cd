/**
 * Two starters finding the same stale lock. Removing a stale lock is read, compare, unlink; if a
 * second starter removed it and took the lock between the first one's compare and its unlink, the
 * first one deleted a live lock and both served the directory. Here the first starter (this test
 * process) is stopped exactly there: its unlink of the stale lock first starts a second local KMS
 * process on the same directory and waits for it. Only one of the two may end up holding it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs, { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { LocalKmsService } from '../../src/local-kms/index.js';
import { tempDir } from './helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** A second local KMS process on `dir`: writes `acquired` or the error to `marker`, then stays up. */
function secondStarter(dir: string, marker: string): ChildProcess {
  const script = `
    import { writeFileSync } from 'node:fs';
    const { LocalKmsService } = await import(${JSON.stringify(join(root, 'dist/local-kms/index.js'))});
    try {
      new LocalKmsService({ dataDir: ${JSON.stringify(dir)} });
      writeFileSync(${JSON.stringify(marker)}, 'acquired');
      setInterval(() => {}, 1000);
    } catch (e) {
      writeFileSync(${JSON.stringify(marker)}, 'blocked: ' + e.message);
    }`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore' });
  cleanups.push(() => child.kill('SIGKILL'));
  return child;
}

it('a stale lock is removed by one starter at a time: never two holders', async () => {
  expect(existsSync(join(root, 'dist/local-kms/index.js')), 'dist/ is missing: run `npm run build`').toBe(true);
  const t = tempDir('lkms-lock-race-');
  cleanups.push(t.cleanup);
  const dir = t.dir;
  const lockFile = join(dir, 'lock');
  const marker = join(dir, 'second-starter');
  // A stale lock: a pid that no longer exists.
  const dead = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => dead.once('exit', r));
  writeFileSync(lockFile, `${JSON.stringify({ pid: dead.pid, start: 'linux:gone:1' })}\n`);

  const realUnlink = fs.unlinkSync;
  let second: ChildProcess | undefined;
  fs.unlinkSync = ((path: fs.PathLike) => {
    if (String(path) === lockFile && second === undefined) {
      // Between our compare and our unlink: let another starter try, for up to 1.5 s.
      second = secondStarter(dir, marker);
      for (let waited = 0; waited < 1500 && !existsSync(marker); waited += 20) sleepSync(20);
    }
    return realUnlink(path);
  }) as typeof fs.unlinkSync;
  syncBuiltinESMExports();
  // Either starter may end up holding the directory: the second one can only get in while the
  // lock file is absent, i.e. after our unlink (if it starts late on a loaded machine), and then
  // we must be refused. What must never happen is both holding it.
  let first: LocalKmsService | undefined;
  let refused: Error | undefined;
  try {
    first = new LocalKmsService({ dataDir: dir });
  } catch (e) {
    refused = e as Error;
  } finally {
    fs.unlinkSync = realUnlink;
    syncBuiltinESMExports();
  }
  if (first) cleanups.push(() => first!.close());
  expect(second, 'the stale lock was never removed').toBeDefined();
  for (let waited = 0; waited < 10_000 && !existsSync(marker); waited += 50) await new Promise((r) => setTimeout(r, 50));
  const outcome = readFileSync(marker, 'utf8');
  const holder = JSON.parse(readFileSync(lockFile, 'utf8')).pid;
  if (first) {
    // The usual order: the second starter tried while we were between compare and unlink.
    expect(outcome).toMatch(/^blocked: .*locked by running process/);
    expect(holder).toBe(process.pid);
  } else {
    expect(refused?.message).toMatch(new RegExp(`locked by running process ${second!.pid}`));
    expect(outcome).toBe('acquired');
    expect(holder).toBe(second!.pid);
  }
});
