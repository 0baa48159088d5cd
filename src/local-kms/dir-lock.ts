import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The lock that gives one local KMS process a data directory.
 *
 * The lock file names the process instance that holds it: its pid and a start identifier (on
 * Linux the boot id plus the process start time from /proc/<pid>/stat; elsewhere the start time
 * `ps` reports). A pid alone is not enough: after a SIGKILL or a crash the pid can be reused by an
 * unrelated process, and a pid-only lock would then block every restart for as long as that
 * process lives. A lock is live only while a process with that pid exists AND has the recorded
 * start identifier; when the identifier cannot be read (no /proc, no `ps`, another user's process
 * hidden), the lock is treated as live, as before.
 *
 * The file is written whole to a temporary name, fsynced, and hard-linked to `lock`: link(2) fails
 * when `lock` exists, so two servers starting at once cannot both win, and nobody ever reads a
 * half-written lock. A stale lock is removed only by the starter holding `lock.breaking` (taken
 * the same way), so two starters cannot each remove the lock the other just took. File systems
 * without hard links fall back to rename (not exclusive).
 */
interface LockHolder {
  pid: number;
  /** Start identifier of the holder; undefined for locks written by older versions (pid only). */
  start: string | undefined;
}

const LOCK_NAME = 'lock';
/** Held (like the lock itself) by the one starter allowed to remove a stale lock. */
const BREAKER_NAME = 'lock.breaking';
/** How long acquire() waits for another starter that is breaking a stale lock. */
const BREAK_WAIT_MS = 5000;
const BREAK_POLL_MS = 20;

export class DirLock {
  private released = false;

  private constructor(
    readonly file: string,
    private readonly content: string,
  ) {}

  /** Takes the lock of `dir`, replacing a stale one; throws if a live process holds it. */
  static acquire(dir: string): DirLock {
    const file = join(dir, LOCK_NAME);
    const content = `${JSON.stringify({ pid: process.pid, start: processStartId(process.pid) ?? null })}\n`;
    const breaker = join(dir, BREAKER_NAME);
    const deadline = Date.now() + BREAK_WAIT_MS;
    while (Date.now() < deadline) {
      if (createExclusive(dir, file, content)) return new DirLock(file, content);
      const text = readIfExists(file);
      if (text === undefined) continue; // released meanwhile: try again
      const holder = parseLock(text);
      if (holder !== undefined) {
        const state = holderState(holder);
        if (state === 'this-process') throw new Error(`data directory ${dir} is already in use by another local KMS in this process`);
        if (state === 'live') throw new Error(`data directory ${dir} is locked by running process ${holder.pid}`);
      }
      // Stale (holder gone, pid reused, or unreadable content). Removing it is read, compare,
      // unlink: not atomic, so two starters doing it at once could each remove the lock the other
      // just took, and both would run. Only the holder of the breaker file may remove a stale
      // lock; the others wait for it (or for its holder to be gone) and look again.
      if (!createExclusive(dir, breaker, content)) {
        const other = readIfExists(breaker);
        const breakerHolder = other === undefined ? undefined : parseLock(other);
        if (other !== undefined && (breakerHolder === undefined || holderState(breakerHolder) === 'stale')) {
          // A starter died while breaking. Its breaker is removed the same unguarded way: a race
          // here needs a crash mid-break and two more starters in the same instant.
          removeIfUnchanged(breaker, other);
        } else {
          sleepSync(BREAK_POLL_MS);
        }
        continue;
      }
      try {
        // Nobody can create `lock` while it exists, and nobody else may remove it now: if it still
        // says what we judged, it is still that stale lock.
        removeIfUnchanged(file, text);
      } finally {
        removeIfUnchanged(breaker, content);
      }
    }
    throw new Error(`cannot lock data directory ${dir}: another local KMS kept it busy for ${BREAK_WAIT_MS / 1000} s`);
  }

  /** Removes the lock file if it is still ours. */
  release(): void {
    if (this.released) return;
    this.released = true;
    try {
      if (readFileSync(this.file, 'utf8') === this.content) unlinkSync(this.file);
    } catch {
      /* already gone */
    }
  }
}

function readIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Unlinks `file` if it still holds `text`. */
function removeIfUnchanged(file: string, text: string): void {
  try {
    if (readFileSync(file, 'utf8') === text) unlinkSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** acquire() is synchronous (the store opens its directory in a constructor): block briefly. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Lock file content: `{"pid":N,"start":"..."}`, or a bare pid from older versions. */
function parseLock(text: string): LockHolder | undefined {
  const t = text.trim();
  if (/^\d+$/.test(t)) return validPid(Number(t)) ? { pid: Number(t), start: undefined } : undefined;
  try {
    const v = JSON.parse(t) as { pid?: unknown; start?: unknown };
    if (typeof v.pid !== 'number' || !validPid(v.pid)) return undefined;
    return { pid: v.pid, start: typeof v.start === 'string' && v.start.length > 0 ? v.start : undefined };
  } catch {
    return undefined;
  }
}

function validPid(pid: number): boolean {
  return Number.isSafeInteger(pid) && pid > 0;
}

function holderState(h: LockHolder): 'live' | 'stale' | 'this-process' {
  if (h.pid === process.pid) {
    // Our pid: this very process (another store opened the directory under another path), or an
    // earlier process that had the same pid (e.g. pid 1 in a restarted container).
    return h.start !== undefined && h.start === processStartId(process.pid) ? 'this-process' : 'stale';
  }
  if (!pidExists(h.pid) || isZombie(h.pid)) return 'stale';
  if (h.start === undefined) return 'live'; // old pid-only lock: cannot tell reuse apart
  const current = processStartId(h.pid);
  if (current === undefined) return pidExists(h.pid) ? 'live' : 'stale';
  return current === h.start ? 'live' : 'stale';
}

/**
 * A killed process whose parent has not yet collected it still answers kill(pid, 0) and keeps its
 * /proc entry, but it runs no code and holds nothing (proc(5): state Z zombie, X dead).
 */
function isZombie(pid: number): boolean {
  if (process.platform !== 'linux') return false;
  const state = linuxStatFields(pid)?.[0];
  return state === 'Z' || state === 'X';
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * An identifier of one process instance: the same pid reused later gives a different value.
 * undefined when it cannot be determined.
 */
export function processStartId(pid: number): string | undefined {
  if (pid === process.pid && ownStartId !== null) return ownStartId;
  const id = process.platform === 'linux' ? linuxStartId(pid) : process.platform === 'win32' ? undefined : psStartId(pid);
  if (pid === process.pid) ownStartId = id;
  return id;
}

let ownStartId: string | undefined | null = null;

/**
 * proc(5): /proc/<pid>/stat field 22 is the start time in clock ticks since boot. Field 2 (the
 * command name) is in parentheses and may contain spaces or ')', so fields are counted after the
 * last ')'. Ticks since boot repeat across reboots, so the boot id is part of the identifier.
 */
function linuxStartId(pid: number): string | undefined {
  const fields = linuxStatFields(pid);
  const startTicks = fields?.[22 - 3]; // fields[0] is field 3 (state)
  if (startTicks === undefined || !/^\d+$/.test(startTicks)) return undefined;
  return `linux:${bootId()}:${startTicks}`;
}

/** Fields 3... of /proc/<pid>/stat (fields[0] = state), or undefined when there is no such entry. */
function linuxStatFields(pid: number): string[] | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return stat.slice(stat.lastIndexOf(')') + 1).trim().split(/\s+/);
}

let cachedBootId: string | undefined;
function bootId(): string {
  if (cachedBootId !== undefined) return cachedBootId;
  let id = '';
  try {
    id = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    try {
      id = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1] ?? '';
    } catch {
      id = '';
    }
  }
  cachedBootId = id;
  return id;
}

/** macOS, BSDs: `ps -o lstart=` prints the full start date and time of a process. */
function psStartId(pid: number): string | undefined {
  try {
    const out = execFileSync('ps', ['-o', 'lstart=', '-p', String(pid)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
      env: { ...process.env, LC_ALL: 'C' },
    }).trim();
    return out.length > 0 ? `ps:${out}` : undefined;
  } catch {
    return undefined;
  }
}

/** Creates `file` with `content` if it does not exist; false if it does. Durable on return. */
function createExclusive(dir: string, file: string, content: string): boolean {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    const data = Buffer.from(content, 'utf8');
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    try {
      linkSync(tmp, file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return false;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EOPNOTSUPP') throw e;
      // No hard links on this file system: check, then rename (a narrow race remains).
      if (existsSync(file)) return false;
      renameSync(tmp, file);
    }
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      /* renamed away */
    }
  }
  fsyncDir(dir);
  return true;
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } catch {
    /* some platforms cannot fsync a directory; the lock still works */
  } finally {
    closeSync(fd);
  }
}
