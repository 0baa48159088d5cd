import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeSync,
  chmodSync,
} from 'node:fs';
import { join } from 'node:path';
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { DirLock } from './dir-lock.js';
import { REGION_PATTERN } from './regions.js';
import type { AliasRecord, KeyRecord, MaterialRecord, PendingImport } from './model.js';
import type { CustomKeyStoreRecord } from './custom-key-stores.js';

/**
 * Persistence of the local KMS.
 *
 * Layout of a data directory:
 *   root.key            32-byte root key (hex), mode 0600, unless `rootKeyFile` is given
 *   root.check          proves at start-up that the root key is the one the data was sealed with
 *   keys/<uuid>.json    one key: metadata in clear, every secret sealed (AES-256-GCM under a
 *                       key derived from the root key, AAD = key id + purpose + id)
 *   aliases.json        all aliases
 *   custom-key-stores.json  CloudHSM key stores of every Region (custom-key-stores.ts), each
 *                       password sealed like key material (AAD = store id + purpose)
 *   home-region         the Region whose keys/ and aliases.json these are (written at first start)
 *   regions/<region>/   keys/ and aliases.json of every other Region (multi-Region keys)
 *   lock                the process instance that owns the directory (pid + start id, dir-lock.ts)
 *
 * Every write goes to a temporary file that is fsynced, renamed over the target, and then the
 * directory is fsynced, so a crash leaves either the old or the new file, never a torn one.
 * Writes are synchronous: the service acknowledges a mutating request only after its write
 * returned, i.e. after the change is durable.
 */
export interface KmsStore {
  load(): { keys: KeyRecord[]; aliases: AliasRecord[] };
  putKey(key: KeyRecord): void;
  deleteKey(keyId: string): void;
  putAliases(aliases: AliasRecord[]): void;
  /** Keyed fingerprint of imported key material (never the material itself). */
  fingerprint(keyId: string, material: Buffer): string;
  /** MAC for import tokens, so a token cannot be forged or moved to another key. */
  tokenMac(data: Buffer): Buffer;
  close(): void;
  /**
   * The store of another Region, sharing this one's root key (and lock). Stores without it serve
   * one Region only.
   */
  forRegion?(region: string): KmsStore;
  /** Regions other than the home Region that hold keys in this store. */
  otherRegions?(): string[];
  /**
   * The Region this store's own keys belong to: the one recorded at first start, else `fallback`
   * (then recorded). Stores without it belong to whatever Region they are opened for.
   */
  homeRegion?(fallback: string): string;
  /** Custom key stores (every Region's; kept by the home store). Stores without them keep them in memory. */
  loadCustomKeyStores?(): CustomKeyStoreRecord[];
  putCustomKeyStores?(records: CustomKeyStoreRecord[]): void;
}

const CHECK_TEXT = 'kms-envelope local-kms root key check v1';
const FORMAT_VERSION = 1;

class RootKeys {
  readonly seal: Buffer;
  readonly fingerprint: Buffer;
  readonly token: Buffer;
  constructor(root: Buffer) {
    const derive = (info: string) => Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), info, 32));
    this.seal = derive('kms-envelope local-kms seal');
    this.fingerprint = derive('kms-envelope local-kms material fingerprint');
    this.token = derive('kms-envelope local-kms import token');
  }

  sealBytes(plain: Buffer, aad: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.seal, iv);
    c.setAAD(Buffer.from(aad, 'utf8'));
    const ct = Buffer.concat([c.update(plain), c.final()]);
    return Buffer.concat([iv, ct, c.getAuthTag()]).toString('base64');
  }

  openBytes(sealed: string, aad: string): Buffer {
    const b = Buffer.from(sealed, 'base64');
    if (b.length < 28) throw new Error('sealed value too short');
    const d = createDecipheriv('aes-256-gcm', this.seal, b.subarray(0, 12));
    d.setAAD(Buffer.from(aad, 'utf8'));
    d.setAuthTag(b.subarray(b.length - 16));
    return Buffer.concat([d.update(b.subarray(12, b.length - 16)), d.final()]);
  }
}

/** Keeps everything in memory; the root key is random per process (shared by its Regions' stores). */
export class MemoryStore implements KmsStore {
  private readonly keys: RootKeys;
  constructor(root?: RootKeys) {
    this.keys = root ?? new RootKeys(randomBytes(32));
  }
  forRegion(): KmsStore {
    return new MemoryStore(this.keys);
  }
  load() {
    return { keys: [], aliases: [] };
  }
  putKey(): void {}
  deleteKey(): void {}
  putAliases(): void {}
  fingerprint(keyId: string, material: Buffer): string {
    return createHmac('sha256', this.keys.fingerprint).update(keyId).update(material).digest('hex');
  }
  tokenMac(data: Buffer): Buffer {
    return createHmac('sha256', this.keys.token).update(data).digest();
  }
  close(): void {}
}

/** Parses a root key file: 32 raw bytes, 64 hex characters, or base64 of 32 bytes. */
export function parseRootKey(bytes: Buffer, file: string): Buffer {
  if (bytes.length === 32) return Buffer.from(bytes);
  const text = bytes.toString('utf8').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/]{43}=$/.test(text)) return Buffer.from(text, 'base64');
  throw new RangeError(`rootKeyFile ${file} must hold a 32-byte key (raw, 64 hex characters or base64)`);
}

const heldLocks = new Set<string>();

export class FileStore implements KmsStore {
  private readonly dir: string;
  private readonly keysDir: string;
  private readonly root: RootKeys;
  private readonly lockFile: string;
  private lock: DirLock | undefined;
  private closed = false;
  /**
   * The store of the data directory itself, for the store of another Region (`regions/<region>/`,
   * forRegion): it holds the lock and the root key, and closing it closes this one.
   */
  private readonly owner: FileStore | undefined;

  constructor(dataDir: string, rootKeyFile?: string, owner?: FileStore) {
    this.dir = dataDir;
    this.keysDir = join(dataDir, 'keys');
    this.lockFile = join(dataDir, 'lock');
    this.owner = owner;
    if (owner) {
      // A Region's directory is made at its first write: requests that only name a Region leave
      // nothing on disk.
      this.root = owner.root;
      return;
    }
    mkdirSync(this.keysDir, { recursive: true, mode: 0o700 });
    this.acquireLock();
    try {
      this.root = new RootKeys(this.loadRootKey(rootKeyFile));
      this.checkRootKey();
    } catch (e) {
      this.releaseLock();
      throw e;
    }
  }

  private acquireLock(): void {
    if (heldLocks.has(this.lockFile)) {
      throw new Error(`data directory ${this.dir} is already in use by another local KMS in this process`);
    }
    this.lock = DirLock.acquire(this.dir);
    heldLocks.add(this.lockFile);
  }

  private releaseLock(): void {
    heldLocks.delete(this.lockFile);
    this.lock?.release();
    this.lock = undefined;
  }

  private loadRootKey(rootKeyFile: string | undefined): Buffer {
    if (rootKeyFile) return parseRootKey(readFileSync(rootKeyFile), rootKeyFile);
    const file = join(this.dir, 'root.key');
    if (existsSync(file)) return parseRootKey(readFileSync(file), file);
    const key = randomBytes(32);
    this.writeAtomic(file, Buffer.from(`${key.toString('hex')}\n`));
    chmodSync(file, 0o600);
    return key;
  }

  private checkRootKey(): void {
    const file = join(this.dir, 'root.check');
    if (existsSync(file)) {
      const { sealed } = JSON.parse(readFileSync(file, 'utf8')) as { sealed: string };
      let ok = false;
      try {
        ok = this.root.openBytes(sealed, 'root.check').toString('utf8') === CHECK_TEXT;
      } catch {
        ok = false;
      }
      if (!ok) throw new Error(`the root key does not match the data directory ${this.dir}`);
      return;
    }
    const sealed = this.root.sealBytes(Buffer.from(CHECK_TEXT, 'utf8'), 'root.check');
    this.writeAtomic(file, Buffer.from(JSON.stringify({ version: FORMAT_VERSION, sealed })));
  }

  /** temp file + fsync + rename + fsync(dir): the file is either old or new after a crash. */
  private writeAtomic(file: string, data: Buffer): void {
    const dir = file.slice(0, file.lastIndexOf('/')) || '.';
    const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off, data.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    fsyncDir(dir);
  }

  forRegion(region: string): KmsStore {
    if (this.owner) return this.owner.forRegion(region);
    if (!REGION_PATTERN.test(region)) throw new RangeError(`not a Region name: ${region.slice(0, 64)}`);
    return new FileStore(join(this.dir, 'regions', region), undefined, this);
  }

  otherRegions(): string[] {
    if (this.owner) return [];
    const dir = join(this.dir, 'regions');
    if (!existsSync(dir)) return [];
    return readdirSync(dir).filter((name) => REGION_PATTERN.test(name)).sort();
  }

  homeRegion(fallback: string): string {
    if (this.owner) throw new Error('homeRegion: only the data directory store has a home Region');
    const file = join(this.dir, 'home-region');
    if (existsSync(file)) {
      const recorded = readFileSync(file, 'utf8').trim();
      if (!REGION_PATTERN.test(recorded)) throw new Error(`${file} does not name a Region`);
      return recorded;
    }
    // Directories written before several Regions were served: their keys name their Region.
    let region = fallback;
    for (const name of readdirSync(this.keysDir)) {
      if (!name.endsWith('.json')) continue;
      const arn = (JSON.parse(readFileSync(join(this.keysDir, name), 'utf8')) as StoredKey).meta?.arn;
      const m = typeof arn === 'string' ? /^arn:[^:]+:kms:([^:]+):/.exec(arn) : null;
      if (m && REGION_PATTERN.test(m[1]!)) region = m[1]!;
      break;
    }
    this.writeAtomic(file, Buffer.from(`${region}\n`));
    return region;
  }

  load(): { keys: KeyRecord[]; aliases: AliasRecord[] } {
    const keys: KeyRecord[] = [];
    if (this.owner && !existsSync(this.keysDir)) return { keys, aliases: [] };
    for (const name of readdirSync(this.keysDir)) {
      const full = join(this.keysDir, name);
      if (name.endsWith('.tmp')) {
        // A write that crashed before its rename: the previous version is still in place.
        unlinkSync(full);
        continue;
      }
      if (!name.endsWith('.json')) continue;
      keys.push(this.decodeKey(JSON.parse(readFileSync(full, 'utf8')) as StoredKey));
    }
    let aliases: AliasRecord[] = [];
    const aliasFile = join(this.dir, 'aliases.json');
    if (existsSync(aliasFile)) aliases = (JSON.parse(readFileSync(aliasFile, 'utf8')) as { aliases: AliasRecord[] }).aliases;
    // Writes that crashed before their rename. The lock's temporary files (lock.*.tmp, dir-lock.ts)
    // are not the store's: another starter may be between writing one and linking it to `lock`,
    // and removing it would fail that starter with a bare ENOENT instead of "locked by ...".
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith('.tmp') || name.startsWith('lock.')) continue;
      try {
        unlinkSync(join(this.dir, name));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    return { keys, aliases };
  }

  putKey(key: KeyRecord): void {
    this.assertOpen();
    this.makeDirs();
    this.writeAtomic(join(this.keysDir, `${key.keyId}.json`), Buffer.from(JSON.stringify(this.encodeKey(key))));
  }

  deleteKey(keyId: string): void {
    this.assertOpen();
    try {
      unlinkSync(join(this.keysDir, `${keyId}.json`));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    fsyncDir(this.keysDir);
  }

  putAliases(aliases: AliasRecord[]): void {
    this.assertOpen();
    this.makeDirs();
    this.writeAtomic(join(this.dir, 'aliases.json'), Buffer.from(JSON.stringify({ version: FORMAT_VERSION, aliases })));
  }

  loadCustomKeyStores(): CustomKeyStoreRecord[] {
    const file = join(this.dir, 'custom-key-stores.json');
    if (!existsSync(file)) return [];
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { version: number; stores: Array<Omit<CustomKeyStoreRecord, 'password'> & { sealedPassword: string }> };
    if (doc.version !== FORMAT_VERSION) throw new Error(`unsupported custom-key-stores.json version ${doc.version}`);
    return doc.stores.map(({ sealedPassword, ...r }) => ({ ...r, password: this.root.openBytes(sealedPassword, `${r.id}|keystore-password`).toString('utf8') }) as CustomKeyStoreRecord);
  }

  putCustomKeyStores(records: CustomKeyStoreRecord[]): void {
    this.assertOpen();
    const stores = records.map(({ password, ...r }) => ({ ...r, sealedPassword: this.root.sealBytes(Buffer.from(password, 'utf8'), `${r.id}|keystore-password`) }));
    this.writeAtomic(join(this.dir, 'custom-key-stores.json'), Buffer.from(JSON.stringify({ version: FORMAT_VERSION, stores })));
  }

  fingerprint(keyId: string, material: Buffer): string {
    return createHmac('sha256', this.root.fingerprint).update(keyId).update(material).digest('hex');
  }

  tokenMac(data: Buffer): Buffer {
    return createHmac('sha256', this.root.token).update(data).digest();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.owner) this.releaseLock();
  }

  private assertOpen(): void {
    if (this.closed || this.owner?.closed) throw new Error('local KMS store is closed');
  }

  /** A Region's directories, made at its first write (the data directory's exist from the start). */
  private makeDirs(): void {
    if (this.owner && !existsSync(this.keysDir)) {
      mkdirSync(join(this.dir, '..'), { recursive: true, mode: 0o700 });
      mkdirSync(this.keysDir, { recursive: true, mode: 0o700 });
      fsyncDir(join(this.dir, '..'));
    }
  }

  private encodeKey(key: KeyRecord): StoredKey {
    const { materials, pendingImport, publicKey, ...meta } = key;
    return {
      version: FORMAT_VERSION,
      meta,
      publicKey: publicKey?.toString('base64'),
      materials: materials.map((m) => ({
        id: m.id,
        createdAt: m.createdAt,
        sealed: this.root.sealBytes(m.secret, `${key.keyId}|material|${m.id}`),
      })),
      pendingImport: pendingImport && {
        tokenId: pendingImport.tokenId,
        wrappingAlgorithm: pendingImport.wrappingAlgorithm,
        wrappingKeySpec: pendingImport.wrappingKeySpec,
        expiresAt: pendingImport.expiresAt,
        publicKey: pendingImport.publicKey.toString('base64'),
        sealedPrivateKey: this.root.sealBytes(pendingImport.privateKey, `${key.keyId}|wrapping|${pendingImport.tokenId}`),
      },
    };
  }

  private decodeKey(s: StoredKey): KeyRecord {
    if (s.version !== FORMAT_VERSION) throw new Error(`unsupported key file version ${s.version}`);
    const keyId = s.meta.keyId;
    const materials: MaterialRecord[] = s.materials.map((m) => ({
      id: m.id,
      createdAt: m.createdAt,
      secret: this.root.openBytes(m.sealed, `${keyId}|material|${m.id}`),
    }));
    let pendingImport: PendingImport | undefined;
    if (s.pendingImport) {
      const p = s.pendingImport;
      pendingImport = {
        tokenId: p.tokenId,
        wrappingAlgorithm: p.wrappingAlgorithm,
        wrappingKeySpec: p.wrappingKeySpec,
        expiresAt: p.expiresAt,
        publicKey: Buffer.from(p.publicKey, 'base64'),
        privateKey: this.root.openBytes(p.sealedPrivateKey, `${keyId}|wrapping|${p.tokenId}`),
      };
    }
    return {
      ...s.meta,
      materials,
      pendingImport,
      publicKey: s.publicKey ? Buffer.from(s.publicKey, 'base64') : undefined,
    };
  }
}

interface StoredKey {
  version: number;
  meta: Omit<KeyRecord, 'materials' | 'pendingImport' | 'publicKey'>;
  publicKey?: string;
  materials: { id: string; createdAt: number; sealed: string }[];
  pendingImport?: {
    tokenId: string;
    wrappingAlgorithm: string;
    wrappingKeySpec: string;
    expiresAt: number;
    publicKey: string;
    sealedPrivateKey: string;
  };
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
