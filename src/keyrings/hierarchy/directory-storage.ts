/**
 * Embedded branch key storage: a directory on the local file system, the offline default for the
 * demo, the CLI and the tests (the DynamoDB storage is the distributed one).
 *
 * Layout: `<dir>/branch-keys/<sha256 hex of the branch key id>/gen-<n>.json`. Each generation file
 * is a complete snapshot of one branch key's items (every version, ACTIVE, beacon), in the record
 * format of storage.ts (`enc` as base64). The highest generation is the current one.
 *
 * The two conditional writes (storage.ts) without a lock:
 * - a generation file is written whole to a temporary file, fsynced, then hard-linked to its final
 *   name; link(2) fails when the name exists, so of two writers of generation n+1 exactly one wins,
 *   and nobody ever reads a half-written file. The directory is fsynced after (the local KMS's
 *   durability rule: after a crash a file is either absent or complete);
 * - CreateKey = generation 1 (exists: BRANCH_KEY_EXISTS); VersionKey = generation n+1 after checking
 *   that generation n's ACTIVE item has the expected `enc` (the link failing means another writer
 *   got there first: ACTIVE_CHANGED). Both items of VersionKey are in that one file: both or neither.
 * - Older generations are emptied (not removed: their names must stay taken, or a slow writer could
 *   link an old number again); a reader that meets an emptied file lists again.
 * Several processes may share a directory. A crash can leave a `.tmp-*` file, which is ignored.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ACTIVE_TYPE, BEACON_TYPE, VERSION_PREFIX } from './items.js';
import { BranchKeyWriteConflictError, type BranchKeyItem, type BranchKeyItemType, type BranchKeyStorage } from './storage.js';

const FORMAT = 'kms-envelope-branch-keys';
const GEN = /^gen-([0-9]{1,15})\.json$/;
const READ_RETRIES = 10;

export interface DirectoryBranchKeyStorageOptions {
  /** The directory (created on first write, with its parents). */
  dir: string;
}

interface Snapshot {
  generation: number;
  items: BranchKeyItem[];
}

export class DirectoryBranchKeyStorage implements BranchKeyStorage {
  /** The directory, absolute (GetKeyStoreInfo's key store name). */
  readonly name: string;
  readonly #root: string;

  constructor(options: DirectoryBranchKeyStorageOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('DirectoryBranchKeyStorage options must be an object');
    if (typeof options.dir !== 'string' || options.dir.length === 0) throw new TypeError('dir must be a non-empty path');
    this.name = resolve(options.dir);
    this.#root = join(this.name, 'branch-keys');
  }

  async writeNewBranchKey(items: { version: BranchKeyItem; active: BranchKeyItem; beacon: BranchKeyItem }): Promise<void> {
    const id = items.active['branch-key-id'];
    checkSame(id, [items.version, items.active, items.beacon]);
    const dir = this.#dirOf(id);
    await mkdirDurable(dir);
    if ((await generations(dir)).length > 0) throw exists(id);
    const ok = await writeExclusive(dir, 1, id, [items.version, items.active, items.beacon]);
    if (!ok) throw exists(id);
  }

  async writeNewBranchKeyVersion(items: { version: BranchKeyItem; active: BranchKeyItem; expectedActiveEnc: Uint8Array }): Promise<void> {
    const id = items.active['branch-key-id'];
    checkSame(id, [items.version, items.active]);
    const dir = this.#dirOf(id);
    const current = await this.#latest(id);
    const active = current?.items.find((i) => i.type === ACTIVE_TYPE);
    if (current === undefined || active === undefined || !Buffer.from(active.enc).equals(Buffer.from(items.expectedActiveEnc))) {
      throw new BranchKeyWriteConflictError('ACTIVE_CHANGED', `the ACTIVE item of branch key ${JSON.stringify(id)} changed or is gone`);
    }
    if (current.items.some((i) => i.type === items.version.type)) {
      throw new BranchKeyWriteConflictError('BRANCH_KEY_EXISTS', `branch key ${JSON.stringify(id)} has that version already`);
    }
    const next = current.items.filter((i) => i.type !== ACTIVE_TYPE);
    next.push(items.version, items.active);
    if (!(await writeExclusive(dir, current.generation + 1, id, next))) {
      throw new BranchKeyWriteConflictError('ACTIVE_CHANGED', `the ACTIVE item of branch key ${JSON.stringify(id)} changed meanwhile`);
    }
    // Old snapshots are emptied; generation n stays whole for readers that listed before n+1.
    await emptyOlder(dir, current.generation);
  }

  async getItem(branchKeyId: string, type: BranchKeyItemType): Promise<BranchKeyItem | undefined> {
    const snap = await this.#latest(branchKeyId);
    const item = snap?.items.find((i) => i.type === type);
    return item === undefined ? undefined : { ...item, enc: new Uint8Array(item.enc) };
  }

  #dirOf(branchKeyId: string): string {
    // Branch key ids are any string (a tenant name, with '/' or '..'): hashed, they are safe names.
    return join(this.#root, createHash('sha256').update(branchKeyId, 'utf8').digest('hex'));
  }

  async #latest(branchKeyId: string): Promise<Snapshot | undefined> {
    const dir = this.#dirOf(branchKeyId);
    for (let attempt = 0; attempt < READ_RETRIES; attempt++) {
      const gens = await generations(dir);
      if (gens.length === 0) return undefined;
      const generation = gens[gens.length - 1]!;
      let text: string;
      try {
        text = await readFile(join(dir, genName(generation)), 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      if (text.length === 0) continue; // emptied by a newer writer since we listed
      return { generation, items: parseSnapshot(text, branchKeyId, join(dir, genName(generation))) };
    }
    throw new Error(`branch key ${JSON.stringify(branchKeyId)} changed ${READ_RETRIES} times while being read`);
  }
}

const exists = (id: string): BranchKeyWriteConflictError =>
  new BranchKeyWriteConflictError('BRANCH_KEY_EXISTS', `branch key ${JSON.stringify(id)} exists`);

function checkSame(id: string, items: BranchKeyItem[]): void {
  for (const i of items) {
    if (i['branch-key-id'] !== id) throw new TypeError('all items of one write must have the same branch-key-id');
  }
}

const genName = (n: number): string => `gen-${String(n).padStart(6, '0')}.json`;

/** Generation numbers present in `dir`, ascending; none when the directory does not exist. */
async function generations(dir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .map((n) => GEN.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

function serialize(id: string, generation: number, items: BranchKeyItem[]): string {
  const out = items.map((i) => {
    const o: Record<string, string> = {};
    for (const k of Object.keys(i)) {
      const v = (i as unknown as Record<string, unknown>)[k];
      if (k === 'enc') o[k] = Buffer.from(v as Uint8Array).toString('base64');
      else if (typeof v === 'string') o[k] = v;
      else throw new TypeError(`branch key item attribute ${JSON.stringify(k)} must be a string`);
    }
    return o;
  });
  return `${JSON.stringify({ format: FORMAT, formatVersion: 1, branchKeyId: id, generation, items: out }, null, 2)}\n`;
}

function parseSnapshot(text: string, id: string, file: string): BranchKeyItem[] {
  const bad = (): Error => new Error(`${file} is not a branch key snapshot of ${JSON.stringify(id)}`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw bad();
  }
  const d = doc as { format?: unknown; branchKeyId?: unknown; items?: unknown };
  if (d === null || typeof d !== 'object' || d.format !== FORMAT || d.branchKeyId !== id || !Array.isArray(d.items)) throw bad();
  return d.items.map((raw: unknown) => {
    if (raw === null || typeof raw !== 'object') throw bad();
    const item: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(raw)) {
      if (typeof v !== 'string') throw bad();
      if (k === 'enc') item[k] = new Uint8Array(Buffer.from(v, 'base64'));
      else Object.defineProperty(item, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
    const type = item.type;
    if (typeof type !== 'string' || !(type === ACTIVE_TYPE || type === BEACON_TYPE || type.startsWith(VERSION_PREFIX))) throw bad();
    return item as unknown as BranchKeyItem;
  });
}

/**
 * Writes generation `n` of a branch key unless it exists: temp file, fsync, link(2) (exclusive),
 * fsync of the directory. False when the generation exists.
 */
async function writeExclusive(dir: string, n: number, id: string, items: BranchKeyItem[]): Promise<boolean> {
  const target = join(dir, genName(n));
  const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
  await writeDurable(tmp, serialize(id, n, items));
  try {
    await link(tmp, target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
    // No hard links here: O_EXCL creation is still exclusive; a crash mid-write can leave a torn file.
    try {
      await writeDurable(target, serialize(id, n, items), 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  await fsyncDir(dir);
  return true;
}

/** Empties every generation below `keep` that still has content (best effort). */
async function emptyOlder(dir: string, keep: number): Promise<void> {
  for (const g of await generations(dir)) {
    if (g >= keep) break;
    const file = join(dir, genName(g));
    try {
      const fh = await open(file, 'r');
      const { size } = await fh.stat();
      await fh.close();
      if (size === 0) continue;
      const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
      await writeDurable(tmp, '');
      await rename(tmp, file);
    } catch {
      /* a later write empties it */
    }
  }
  await fsyncDir(dir);
}

async function writeDurable(file: string, text: string, flag = 'w'): Promise<void> {
  const fh = await open(file, flag, 0o600);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** mkdir -p, then fsync of each parent that got a new entry, so the directory survives a crash. */
async function mkdirDurable(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode: 0o700 });
  if (first === undefined) return;
  for (let d = dir; ; d = dirname(d)) {
    await fsyncDir(dirname(d));
    if (d === first || dirname(d) === d) break;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, constants.O_RDONLY);
    await fh.sync();
  } catch {
    /* some platforms cannot fsync a directory */
  } finally {
    await fh?.close();
  }
}
