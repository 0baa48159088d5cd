/**
 * The data-directory lock names a process instance (pid + start id), so a lock left behind by a
 * killed server does not block restarts when its pid now belongs to another process, while a
 * lock held by a live server still does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalKmsService } from '../../src/local-kms/index.js';
import { processStartId } from '../../src/local-kms/dir-lock.js';
import { tempDir } from './helpers.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function dataDir(): string {
  const t = tempDir('lkms-lock-');
  cleanups.push(t.cleanup);
  return t.dir;
}

function open(dir: string): LocalKmsService {
  const s = new LocalKmsService({ dataDir: dir });
  cleanups.push(() => s.close());
  return s;
}

/** A process that stays alive until killed. */
async function sleeper(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  cleanups.push(() => child.kill('SIGKILL'));
  await new Promise<void>((res, rej) => {
    child.once('spawn', res);
    child.once('error', rej);
  });
  return child;
}

const writeLock = (dir: string, holder: { pid: number; start: string | null }) =>
  writeFileSync(join(dir, 'lock'), `${JSON.stringify(holder)}\n`);

describe('data directory lock', () => {
  it('records this process (pid and start id) and removes the lock on close', async () => {
    const dir = dataDir();
    const kms = new LocalKmsService({ dataDir: dir });
    const lock = JSON.parse(readFileSync(join(dir, 'lock'), 'utf8')) as { pid: number; start: string | null };
    expect(lock.pid).toBe(process.pid);
    expect(lock.start).toBe(processStartId(process.pid) ?? null);
    if (process.platform === 'linux') expect(lock.start).toMatch(/^linux:[^:]*:\d+$/);
    kms.close();
    expect(existsSync(join(dir, 'lock'))).toBe(false);
  });

  it.runIf(processStartId(process.ppid) !== undefined)(
    'treats a lock naming a live pid with another start id (a reused pid) as stale',
    async () => {
      const dir = dataDir();
      // The parent of this test process is alive, but it is not the process that wrote this lock.
      expect(processStartId(process.ppid)).not.toBe('linux:00000000-0000-0000-0000-000000000000:1');
      writeLock(dir, { pid: process.ppid, start: 'linux:00000000-0000-0000-0000-000000000000:1' });
      const kms = open(dir);
      await kms.call('CreateKey', {});
      expect(JSON.parse(readFileSync(join(dir, 'lock'), 'utf8'))).toMatchObject({ pid: process.pid });
    },
  );

  it('is blocked by a live holder, and free once that holder is gone', async () => {
    const dir = dataDir();
    const child = await sleeper();
    const start = processStartId(child.pid!);
    writeLock(dir, { pid: child.pid!, start: start ?? null });
    expect(() => new LocalKmsService({ dataDir: dir })).toThrow(new RegExp(`locked by running process ${child.pid}`));
    // The refused start left the holder's lock alone.
    expect(JSON.parse(readFileSync(join(dir, 'lock'), 'utf8'))).toEqual({ pid: child.pid, start: start ?? null });
    const gone = new Promise((res) => child.once('exit', res));
    child.kill('SIGKILL');
    await gone;
    open(dir);
  });

  it.runIf(process.platform === 'linux')('treats a killed holder that is still a zombie (not yet reaped) as gone', async () => {
    const dir = dataDir();
    // `sh` starts a background sleeper, prints its pid, then becomes `sleep`, which never reaps
    // children: once killed, the sleeper stays a zombie while its parent lives.
    const parent = spawn('sh', ['-c', 'sleep 600 & echo $!; exec sleep 600'], { stdio: ['ignore', 'pipe', 'ignore'] });
    cleanups.push(() => parent.kill('SIGKILL'));
    const pid = Number(await new Promise<string>((res) => parent.stdout!.once('data', (d: Buffer) => res(d.toString().trim()))));
    cleanups.push(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    });
    writeLock(dir, { pid, start: processStartId(pid) ?? null });
    expect(() => new LocalKmsService({ dataDir: dir })).toThrow(/locked by running process/);
    process.kill(pid, 'SIGKILL');
    const state = () => readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
    for (let i = 0; i < 200 && state() !== 'Z'; i++) await new Promise((r) => setTimeout(r, 10));
    expect(state()).toBe('Z');
    open(dir);
  });

  it('is blocked within one process, even under another spelling of the path', async () => {
    const dir = dataDir();
    open(dir);
    expect(() => new LocalKmsService({ dataDir: dir })).toThrow(/already in use by another local KMS in this process/);
    const link = `${dir}-link`;
    symlinkSync(dir, link);
    cleanups.push(() => rmSync(link, { force: true }));
    expect(() => new LocalKmsService({ dataDir: link })).toThrow(/already in use by another local KMS in this process/);
  });

  it('replaces a lock from an earlier process that had our pid, a dead pid, or garbage', async () => {
    for (const content of [
      `${JSON.stringify({ pid: process.pid, start: 'linux:x:1' })}\n`,
      `${JSON.stringify({ pid: 2 ** 22 + 12345, start: 'linux:x:1' })}\n`, // above pid_max: no such process
      `${2 ** 22 + 12345}\n`, // the old pid-only format
      '',
      'not a lock',
    ]) {
      const dir = dataDir();
      writeFileSync(join(dir, 'lock'), content);
      const kms = open(dir);
      expect(JSON.parse(readFileSync(join(dir, 'lock'), 'utf8'))).toMatchObject({ pid: process.pid });
      kms.close();
    }
  });
});
