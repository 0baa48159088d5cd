/**
 * Names of the temporary files that `encryptFile`/`decryptFile` and the CLI write next to their
 * target before renaming it into place: recognizable (never mistaken for output), within NAME_MAX
 * whatever the target's name, and naming the writing process so a leftover of a killed run can be
 * told from a live run's file and swept.
 */
import { createHash, randomBytes } from 'node:crypto';
import { lstat, readdir, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';

/** Marks our temporary files; see tempPathFor. */
export const TEMP_MARK = 'kms-envelope-tmp';
/** NAME_MAX of the file systems we write to (ext4, XFS, APFS, tmpfs, NTFS in UTF-16 units). */
const NAME_MAX_BYTES = 255;
/** What tempPathFor adds to the stem: `.` + `.kms-envelope-tmp-` + pid (10 digits at most) + `-` + host tag (8) + `-` + random (16) + `.tmp`. */
const TEMP_OVERHEAD_BYTES = 1 + 1 + TEMP_MARK.length + 1 + 10 + 1 + 8 + 1 + 16 + 4;
/** Longest target name used as is in the temporary name; longer ones are shortened (tempStem). */
const MAX_STEM_BYTES = NAME_MAX_BYTES - TEMP_OVERHEAD_BYTES;

let hostTagValue: string | undefined;
/**
 * 8 hex digits of SHA-256 of the host name: a temporary file is swept only by a run on the host that
 * wrote it (a process id means nothing on another machine sharing the directory over NFS).
 */
function hostTag(): string {
  hostTagValue ??= createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
  return hostTagValue;
}

/**
 * The part of a temporary name that comes from the target's name: the name itself when it leaves
 * room for the rest within NAME_MAX (255 bytes), otherwise its first bytes (cut at a character
 * boundary) + `~` + 16 hex digits of its SHA-256, so that every target, even one of 255 bytes, gets
 * a temporary name the file system accepts, and distinct long targets get distinct stems.
 */
function tempStem(target: string): string {
  const name = basename(target);
  if (Buffer.byteLength(name) <= MAX_STEM_BYTES) return name;
  const digest = createHash('sha256').update(name).digest('hex').slice(0, 16);
  const room = MAX_STEM_BYTES - 1 - digest.length;
  let prefix = '';
  let bytes = 0;
  for (const ch of name) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > room) break;
    prefix += ch;
    bytes += n;
  }
  return `${prefix}~${digest}`;
}

/**
 * Temporary name next to `target`: `.<target>.kms-envelope-tmp-<pid>-<host>-<random>.tmp`. Hidden,
 * never mistaken for output (the mark, `.tmp`), random (concurrent runs never collide; created
 * with O_EXCL), at most 255 bytes, and it names the process that writes it, so that a leftover of
 * a killed run can be told from the file of a run still working (sweepStaleTemps).
 */
export function tempPathFor(target: string): string {
  const name = `.${tempStem(target)}.${TEMP_MARK}-${process.pid}-${hostTag()}-${randomBytes(8).toString('hex')}.tmp`;
  return join(dirname(target), name);
}

/** A process with this id exists (EPERM: it does, under another user). */
function processExists(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temporary files a killed run left for `target`: those named by tempPathFor for this very
 * target, written on this host by a process that no longer exists, regular files owned by the
 * current user. Anything else is left alone: another target's files, a live run's, files of other
 * users or hosts. A reused process id keeps a leftover until that process ends (the safe side).
 * Best effort: errors (a concurrent sweep, permissions) are ignored.
 */
export async function sweepStaleTemps(target: string): Promise<void> {
  const dir = dirname(target);
  const stem = tempStem(target);
  const prefix = `.${stem}.${TEMP_MARK}-`;
  const shape = /^(\d{1,10})-([0-9a-f]{8})-[0-9a-f]{16}\.tmp$/;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  const uid = process.getuid?.();
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = shape.exec(name.slice(prefix.length));
    if (m === null || m[2] !== hostTag()) continue;
    const pid = Number(m[1]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || processExists(pid)) continue;
    const path = join(dir, name);
    try {
      const st = await lstat(path);
      if (!st.isFile() || (uid !== undefined && st.uid !== uid)) continue;
      await unlink(path);
    } catch {
      // gone already, or not ours to remove
    }
  }
}

