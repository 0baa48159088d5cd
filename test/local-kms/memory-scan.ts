import { createCipheriv } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

/**
 * Searches memory for AES-256 keys (issue 17: "a heap snapshot of the server ... contain[s] no
 * 32-byte secret that decrypts the test's ciphertexts").
 *
 * A key is recognised by one AES block it must produce, not by trying whole decryptions: a
 * `KeyCheck` is (input block, output block) with AES-256-ECB_K(input) = output. For AES-GCM with a
 * 12-byte IV, the first counter block is IV || 00000002 (NIST SP 800-38D §7.1, J0 = IV || 0^31 || 1,
 * the first data block uses inc32(J0)), so a ciphertext whose first 16 plaintext bytes are known
 * gives AES_K(IV || 00000002) = C[0..16] XOR P[0..16]. A wrong 32-byte candidate matches with
 * probability 2^-128.
 *
 * Every byte offset of the scanned bytes is a candidate start. To keep that fast, a rolling count
 * of distinct byte values over the 32-byte window discards windows that cannot be a random key:
 * 32 uniform random bytes have ~30.1 distinct values, and fewer than MIN_DISTINCT (21) with
 * probability 3.6e-9 (exact count over the 256^32 strings), so pointers, zeros, text and code are
 * skipped and a real key is missed with that probability only. The windows left are tried with a
 * small AES-256 block encryption written here from FIPS-197 (key expansion §5.2, cipher §5.1 with
 * the usual table form of SubBytes+ShiftRows+MixColumns): node:crypto's createCipheriv costs ~10 µs
 * per key, too slow for tens of millions of windows. `aes256Matches` is tested against node:crypto.
 */

export const MIN_DISTINCT = 21;

export interface KeyCheck {
  /** What the key is (e.g. 'hsm key', 'KMS-origin control'): reported with a hit. */
  label: string;
  /** 16 bytes: AES-256-ECB_K(input) must equal output. */
  input: Buffer;
  output: Buffer;
}

/** The check of an AES-256-GCM ciphertext (12-byte IV) whose first 16 plaintext bytes are known. */
export function gcmKeyCheck(label: string, iv: Uint8Array, ciphertext: Uint8Array, plaintext: Uint8Array): KeyCheck {
  if (iv.length !== 12) throw new RangeError('iv must be 12 bytes (the GCM counter is IV || 00000001 only then)');
  if (ciphertext.length < 16 || plaintext.length < 16) throw new RangeError('ciphertext and plaintext need at least one whole block');
  const input = Buffer.concat([Buffer.from(iv), Buffer.from([0, 0, 0, 2])]);
  const output = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) output[i] = ciphertext[i]! ^ plaintext[i]!;
  return { label, input, output };
}

/** Whether `key` (32 bytes) passes `check` (used by the tests on known keys, e.g. the planted one). */
export function keyMatches(key: Uint8Array, check: KeyCheck): boolean {
  const c = createCipheriv('aes-256-ecb', key, null).setAutoPadding(false);
  return c.update(check.input).equals(check.output);
}

// ---------------------------------------------------------------------------------------
// AES-256 single-block encryption (FIPS-197), to test a candidate key against a KeyCheck.

/** GF(2^8) multiplication modulo x^8 + x^4 + x^3 + x + 1 (FIPS-197 §4.2). */
function gmul(a: number, b: number): number {
  let r = 0;
  for (; b; b >>= 1) {
    if (b & 1) r ^= a;
    a = (a << 1) ^ (a & 0x80 ? 0x11b : 0);
  }
  return r;
}

const SBOX = new Uint8Array(256);
/** T0[x] = the MixColumns column of S(x) as a big-endian word (2s, s, s, 3s); T1..T3 its rotations. */
const T0 = new Uint32Array(256);
const T1 = new Uint32Array(256);
const T2 = new Uint32Array(256);
const T3 = new Uint32Array(256);
{
  const rotl8 = (x: number, n: number) => ((x << n) | (x >> (8 - n))) & 0xff;
  for (let x = 0; x < 256; x++) {
    let inv = 0;
    for (let y = 1; y < 256 && x !== 0; y++) if (gmul(x, y) === 1) inv = y;
    // §5.1.1: the multiplicative inverse, then the affine transformation.
    const s = inv ^ rotl8(inv, 1) ^ rotl8(inv, 2) ^ rotl8(inv, 3) ^ rotl8(inv, 4) ^ 0x63;
    SBOX[x] = s;
  }
  for (let x = 0; x < 256; x++) {
    const s = SBOX[x]!;
    const t = ((gmul(s, 2) << 24) | (s << 16) | (s << 8) | gmul(s, 3)) >>> 0;
    T0[x] = t;
    T1[x] = ((t >>> 8) | (t << 24)) >>> 0;
    T2[x] = ((t >>> 16) | (t << 16)) >>> 0;
    T3[x] = ((t >>> 24) | (t << 8)) >>> 0;
  }
}
const RCON = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40];
const subWord = (w: number) => ((SBOX[w >>> 24]! << 24) | (SBOX[(w >>> 16) & 255]! << 16) | (SBOX[(w >>> 8) & 255]! << 8) | SBOX[w & 255]!) >>> 0;
const rk = new Uint32Array(60);

/** Key expansion for Nk = 8, Nr = 14 (§5.2) of the 32 bytes at data[at..at+32] into `rk`. */
function expandKey(data: Uint8Array, at: number): void {
  for (let i = 0; i < 8; i++) rk[i] = ((data[at + 4 * i]! << 24) | (data[at + 4 * i + 1]! << 16) | (data[at + 4 * i + 2]! << 8) | data[at + 4 * i + 3]!) >>> 0;
  for (let i = 8; i < 60; i++) {
    let t = rk[i - 1]!;
    if (i % 8 === 0) t = subWord(((t << 8) | (t >>> 24)) >>> 0) ^ (RCON[i / 8 - 1]! << 24);
    else if (i % 8 === 4) t = subWord(t);
    rk[i] = (rk[i - 8]! ^ t) >>> 0;
  }
}

/** Whether AES-256 under the expanded key `rk` maps the block `input` (4 words) to `output`. */
function encryptMatches(input: Uint32Array, output: Uint32Array): boolean {
  let s0 = input[0]! ^ rk[0]!;
  let s1 = input[1]! ^ rk[1]!;
  let s2 = input[2]! ^ rk[2]!;
  let s3 = input[3]! ^ rk[3]!;
  for (let r = 1; r < 14; r++) {
    const k = 4 * r;
    const t0 = T0[s0 >>> 24]! ^ T1[(s1 >>> 16) & 255]! ^ T2[(s2 >>> 8) & 255]! ^ T3[s3 & 255]! ^ rk[k]!;
    const t1 = T0[s1 >>> 24]! ^ T1[(s2 >>> 16) & 255]! ^ T2[(s3 >>> 8) & 255]! ^ T3[s0 & 255]! ^ rk[k + 1]!;
    const t2 = T0[s2 >>> 24]! ^ T1[(s3 >>> 16) & 255]! ^ T2[(s0 >>> 8) & 255]! ^ T3[s1 & 255]! ^ rk[k + 2]!;
    const t3 = T0[s3 >>> 24]! ^ T1[(s0 >>> 16) & 255]! ^ T2[(s1 >>> 8) & 255]! ^ T3[s2 & 255]! ^ rk[k + 3]!;
    s0 = t0;
    s1 = t1;
    s2 = t2;
    s3 = t3;
  }
  // Last round: SubBytes and ShiftRows, no MixColumns.
  const last = (a: number, b: number, c: number, d: number, k: number) =>
    (((SBOX[a >>> 24]! << 24) | (SBOX[(b >>> 16) & 255]! << 16) | (SBOX[(c >>> 8) & 255]! << 8) | SBOX[d & 255]!) ^ rk[k]!) >>> 0;
  return last(s0, s1, s2, s3, 56) === output[0] && last(s1, s2, s3, s0, 57) === output[1] && last(s2, s3, s0, s1, 58) === output[2] && last(s3, s0, s1, s2, 59) === output[3];
}

function words(b: Buffer): Uint32Array {
  return Uint32Array.from([b.readUInt32BE(0), b.readUInt32BE(4), b.readUInt32BE(8), b.readUInt32BE(12)]);
}

/** This file's AES-256 on one block (for the test that compares it with node:crypto). */
export function aes256Matches(key: Uint8Array, input: Buffer, output: Buffer): boolean {
  expandKey(key, 0);
  return encryptMatches(words(input), words(output));
}

export interface ScanResult {
  /** Bytes scanned (every offset of each with at least 32 bytes after it was a candidate start). */
  bytes: number;
  /** Windows left by the distinct-byte filter, each tried as a key. */
  candidates: number;
  /** Distinct (label, key) pairs found, with where (the region's name and offset). */
  hits: Array<{ label: string; where: string; key: string }>;
}

export class KeyScanner {
  /** One check per label is tried on every candidate; a match must then pass all of that label's checks. */
  private readonly first: Array<{ label: string; input: Uint32Array; output: Uint32Array }> = [];
  readonly result: ScanResult = { bytes: 0, candidates: 0, hits: [] };

  constructor(private readonly checks: readonly KeyCheck[]) {
    if (checks.length === 0) throw new RangeError('checks must not be empty');
    for (const c of checks) {
      if (c.input.length !== 16 || c.output.length !== 16) throw new RangeError(`check ${c.label}: input and output must be 16 bytes`);
      if (!this.first.some((f) => f.label === c.label)) this.first.push({ label: c.label, input: words(c.input), output: words(c.output) });
    }
  }

  /** Scans every 32-byte window of `data`; `where` names the region in hits. */
  scan(data: Uint8Array, where: string): void {
    this.result.bytes += data.length;
    if (data.length < 32) return;
    const counts = new Uint8Array(256);
    let distinct = 0;
    for (let i = 0; i < 32; i++) if (counts[data[i]!]++ === 0) distinct++;
    for (let start = 0; ; start++) {
      if (distinct >= MIN_DISTINCT) this.tryKey(data, start, where);
      const end = start + 32;
      if (end >= data.length) break;
      if (--counts[data[start]!] === 0) distinct--;
      if (counts[data[end]!]++ === 0) distinct++;
    }
  }

  private tryKey(data: Uint8Array, start: number, where: string): void {
    this.result.candidates++;
    expandKey(data, start);
    for (const f of this.first) {
      if (!encryptMatches(f.input, f.output)) continue;
      const key = Buffer.from(data.subarray(start, start + 32));
      if (!this.checks.every((c) => c.label !== f.label || keyMatches(key, c))) continue;
      const hex = key.toString('hex');
      if (!this.result.hits.some((h) => h.label === f.label && h.key === hex)) {
        this.result.hits.push({ label: f.label, where: `${where}+0x${start.toString(16)}`, key: hex });
      }
    }
  }

  /**
   * Scans text as bytes and decoded: every base64/base64url run of 43+ characters (32 bytes or
   * more) and every hex run of 64+ digits, at each alignment (the run may start before the encoding).
   */
  scanText(text: string, where: string): void {
    this.scan(Buffer.from(text, 'latin1'), where);
    for (const m of text.matchAll(/[A-Za-z0-9+/_-]{43,}/g)) {
      // Four shifts: the run may start 1-3 characters before the encoding does (an adjacent letter
      // or digit), so each quad alignment is decoded; within one, every byte offset is scanned.
      // Node decodes a trailing partial quad, so an unpadded or '='-padded end loses no byte.
      for (let s = 0; s < 4; s++) this.scan(Buffer.from(m[0].slice(s).replace(/-/g, '+').replace(/_/g, '/'), 'base64'), `${where} base64`);
    }
    for (const m of text.matchAll(/[0-9a-fA-F]{64,}/g)) {
      for (let s = 0; s < 2; s++) {
        const run = m[0].slice(s);
        this.scan(Buffer.from(run.slice(0, run.length - (run.length % 2)), 'hex'), `${where} hex`);
      }
    }
  }
}

export interface ProcessMemory {
  /** Readable mappings, and their total size. */
  regions: number;
  bytes: number;
  /** Of those, bytes handed to `visit`; the rest are mapped files' bytes, unchanged (see below). */
  visited: number;
  /** Mappings listed readable that could not be read (e.g. [vvar]), by name. */
  unreadable: string[];
}

/**
 * Reads every readable mapping of process `pid` (/proc/PID/maps, then /proc/PID/mem at each
 * range; proc(5)) and hands each to `visit`, except a file mapping whose bytes are exactly the
 * file's at that offset (zeros past its end): the executable's and libraries' code and read-only
 * data, which hold nothing the process wrote; a key there would be in a file on disk. A mapping
 * that differs from its file in any byte (relocated data, .data/.bss) is visited whole.
 *
 * Needs ptrace access to the process (same user and Yama ptrace_scope allowing it, or root). The
 * caller stops the process (SIGSTOP) for a consistent picture.
 */
export function readProcessMemory(pid: number, visit: (bytes: Buffer, where: string) => void): ProcessMemory {
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').trim().split('\n');
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  const out: ProcessMemory = { regions: 0, bytes: 0, visited: 0, unreadable: [] };
  try {
    for (const line of maps) {
      const [range, perms, offset, , inode, ...rest] = line.split(/\s+/);
      if (!perms!.startsWith('r')) continue;
      const name = rest.join(' ') || '[anon]';
      const [lo, hi] = range!.split('-').map((h) => parseInt(h, 16)) as [number, number];
      const buf = Buffer.allocUnsafe(hi - lo);
      const got = readAll(fd, buf, lo);
      if (got === 0) {
        out.unreadable.push(name);
        continue;
      }
      out.regions++;
      out.bytes += got;
      const bytes = buf.subarray(0, got);
      if (inode !== '0' && name.startsWith('/') && sameAsFile(bytes, name, parseInt(offset!, 16))) continue;
      out.visited += got;
      visit(bytes, `${name}@${lo.toString(16)}`);
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

function readAll(fd: number, buf: Buffer, position: number): number {
  let got = 0;
  try {
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, position + got);
      if (n === 0) break;
      got += n;
    }
  } catch {
    // EIO: a mapping the kernel does not let /proc/PID/mem read ([vvar], guard pages).
  }
  return got;
}

function sameAsFile(bytes: Buffer, path: string, offset: number): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return false;
  }
  try {
    const file = Buffer.alloc(bytes.length);
    // Past the end of the file a mapping reads as zeros (mmap(2)); `file` stays zero there too.
    readAll(fd, file, offset);
    return file.equals(bytes);
  } finally {
    closeSync(fd);
  }
}

/** The string table of a V8 heap snapshot (.heapsnapshot JSON): every string the heap held. */
export function heapSnapshotStrings(path: string): string[] {
  const snapshot = JSON.parse(readFileSync(path, 'utf8')) as { strings: string[] };
  return snapshot.strings;
}
