/**
 * Shared harness for the hostile-input tests: counting keyrings, buffer and stream decryption
 * runners that never throw (they return what happened), a per-case hang guard, an allocation
 * probe, a scanner for secrets in errors, and the fuzz budget (FUZZ_RUNS).
 */
import { inspect } from 'node:util';
import { expect } from 'vitest';
import { Envelope, EnvelopeError, RawAesKeyring, type Keyring } from '../../src/index.js';
import type { KeyringDecryptInput, KeyringEncryptInput, KeyringEncryptOutput } from '../../src/types.js';

export const WRAPPING_KEY = Buffer.from('c0ffee00112233445566778899aabbccddeeff00112233445566778899aabb01', 'hex');
export const KEY_NAMESPACE = 'hostile-tests';
export const KEY_NAME = 'wrapping-key';

/** Codes a hostile message may legitimately produce. */
export const REJECTION_CODES = [
  'ERR_DECRYPTION_FAILED',
  'ERR_CONTEXT_MISMATCH',
  'ERR_MALFORMED_MESSAGE',
  'ERR_COMMITMENT_MISMATCH',
  'ERR_COMMITMENT_POLICY',
  'ERR_NO_DECRYPTABLE_KEY',
  'ERR_LIMIT_EXCEEDED',
];

/** A keyring wrapper that counts calls and records every data key it hands out (to scan errors for them). */
export class CountingKeyring implements Keyring {
  encryptCalls = 0;
  decryptCalls = 0;
  readonly dataKeys: Buffer[] = [];
  constructor(readonly inner: Keyring) {}
  async onEncrypt(input: KeyringEncryptInput): Promise<KeyringEncryptOutput> {
    this.encryptCalls++;
    const out = await this.inner.onEncrypt(input);
    this.remember(out.dataKey);
    return out;
  }
  async onDecrypt(input: KeyringDecryptInput): Promise<Uint8Array | undefined> {
    this.decryptCalls++;
    const key = await this.inner.onDecrypt(input);
    if (key !== undefined) this.remember(key);
    return key;
  }
  private remember(key: Uint8Array): void {
    if (this.dataKeys.length < 64 && !this.dataKeys.some((k) => k.equals(key))) this.dataKeys.push(Buffer.from(key));
  }
}

export function rawKeyring(): RawAesKeyring {
  return new RawAesKeyring({ keyNamespace: KEY_NAMESPACE, keyName: KEY_NAME, key: WRAPPING_KEY });
}

/**
 * A keyring with one known data key that ignores the encryption context, so the tests can
 * re-authenticate (seal) modified messages themselves. Provider id `fixed`.
 */
export class FixedKeyring implements Keyring {
  constructor(readonly dataKey: Buffer) {}
  async onEncrypt(): Promise<KeyringEncryptOutput> {
    return {
      dataKey: Buffer.from(this.dataKey),
      encryptedDataKeys: [{ providerId: 'fixed', providerInfo: Buffer.from('k1'), ciphertext: Buffer.alloc(8, 0xee) }],
    };
  }
  async onDecrypt(input: KeyringDecryptInput): Promise<Uint8Array | undefined> {
    return input.encryptedDataKeys.some((e) => e.providerId === 'fixed') ? Buffer.from(this.dataKey) : undefined;
  }
}

export type Outcome = { ok: true; plaintext: Buffer } | { ok: false; error: unknown };

/** Longest a single decryption may take before it counts as a hang (a liveness guard, not a timing check). */
export const GUARD_MS = 15_000;

/** Races `p` against a timer: a promise that never settles fails the test instead of hanging it. */
export async function guard<T>(p: Promise<T>, label: string, ms = GUARD_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`HANG: ${label} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, hang]);
  } finally {
    clearTimeout(timer);
  }
}

export async function decryptBuffer(envelope: Envelope, message: Buffer, options?: Parameters<Envelope['decrypt']>[1]): Promise<Outcome> {
  try {
    const r = await guard(envelope.decrypt(message, options), 'decrypt');
    return { ok: true, plaintext: r.plaintext };
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('HANG:')) throw error;
    return { ok: false, error };
  }
}

export interface StreamOutcome {
  /** Everything the stream emitted through 'data' before it ended or failed. */
  out: Buffer;
  error: unknown;
  ended: boolean;
}

/**
 * Writes `chunks` to envelope.decryptStream() (each write after the previous one was taken) and
 * collects 'data' in flowing mode, i.e. everything a consumer would have seen. Resolves when the
 * stream emitted 'end' or 'error'; a stream that does neither fails through the guard.
 */
export function decryptStreamed(
  envelope: Envelope,
  chunks: readonly Buffer[],
  options: Parameters<Envelope['decryptStream']>[0] = {},
): Promise<StreamOutcome> {
  const run = new Promise<StreamOutcome>((resolve) => {
    const s = envelope.decryptStream(options);
    const out: Buffer[] = [];
    let settled = false;
    const finish = (error: unknown, ended: boolean): void => {
      if (settled) return;
      settled = true;
      resolve({ out: Buffer.concat(out), error, ended });
    };
    s.on('data', (b: Buffer) => out.push(Buffer.from(b)));
    s.on('error', (e) => finish(e, false));
    s.on('end', () => finish(undefined, true));
    let i = 0;
    const next = (): void => {
      if (settled || s.destroyed) return;
      if (i === chunks.length) {
        s.end();
        return;
      }
      s.write(chunks[i++]!, (err) => {
        if (!err) next();
      });
    };
    next();
  });
  return guard(run, 'decryptStream');
}

/** Splits `b` at the given cut points (sorted, deduplicated, inside (0, length)). */
export function cut(b: Buffer, points: readonly number[]): Buffer[] {
  const ps = [...new Set(points.filter((p) => p > 0 && p < b.length))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let o = 0;
  for (const p of ps) {
    out.push(b.subarray(o, p));
    o = p;
  }
  out.push(b.subarray(o));
  return out.filter((c) => c.length > 0);
}

/** Asserts `error` is an EnvelopeError with one of the rejection codes; returns it. */
export function expectEnvelopeError(error: unknown, label: string): EnvelopeError {
  if (!(error instanceof EnvelopeError)) {
    throw new Error(`${label}: expected an EnvelopeError, got ${inspect(error, { depth: 2 })}`);
  }
  expect(REJECTION_CODES, `${label}: code ${error.code}`).toContain(error.code);
  return error;
}

export function isPrefix(out: Buffer, of: Buffer): boolean {
  return out.length <= of.length && out.equals(of.subarray(0, out.length));
}

// --- Allocation probe -------------------------------------------------------------------------

/**
 * Records the largest single Buffer allocation (Buffer.alloc / allocUnsafe / allocUnsafeSlow,
 * which Buffer.concat uses too) between start() and stop(): a length read from a hostile message
 * that drives an allocation shows up here even when the buffer is freed right away.
 */
export class AllocationProbe {
  largest = 0;
  #saved: Pick<typeof Buffer, 'alloc' | 'allocUnsafe' | 'allocUnsafeSlow'> | undefined;

  start(): void {
    if (this.#saved) return;
    this.largest = 0;
    const saved = { alloc: Buffer.alloc, allocUnsafe: Buffer.allocUnsafe, allocUnsafeSlow: Buffer.allocUnsafeSlow };
    this.#saved = saved;
    const note = (n: unknown): void => {
      if (typeof n === 'number' && n > this.largest) this.largest = n;
    };
    Buffer.alloc = function (size: number, ...rest: unknown[]) {
      note(size);
      return (saved.alloc as (...a: unknown[]) => Buffer)(size, ...rest);
    } as typeof Buffer.alloc;
    Buffer.allocUnsafe = function (size: number) {
      note(size);
      return saved.allocUnsafe(size);
    } as typeof Buffer.allocUnsafe;
    Buffer.allocUnsafeSlow = function (size: number) {
      note(size);
      return saved.allocUnsafeSlow(size);
    } as typeof Buffer.allocUnsafeSlow;
  }

  stop(): number {
    const s = this.#saved;
    if (s) {
      Buffer.alloc = s.alloc;
      Buffer.allocUnsafe = s.allocUnsafe;
      Buffer.allocUnsafeSlow = s.allocUnsafeSlow;
      this.#saved = undefined;
    }
    return this.largest;
  }
}

// --- Secret scanner ---------------------------------------------------------------------------

/**
 * Finds secret bytes or plaintext anywhere in an error: message, stack, `cause` chains,
 * AggregateError members and every other own property (enumerable or not), as raw bytes in
 * Buffers, or in strings as hex, base64/base64url or latin1, at any 8-byte window, and the
 * plaintext canary as text. Returns a description of the first hit, or undefined.
 */
export class SecretScanner {
  readonly #windows: { bytes: Buffer; encodings: string[]; what: string }[] = [];
  readonly #canaries: string[];

  constructor(secrets: { what: string; bytes: Buffer }[], canaries: string[] = []) {
    this.#canaries = canaries.map((c) => c.toLowerCase());
    for (const s of secrets) this.addSecret(s.what, s.bytes);
  }

  addSecret(what: string, bytes: Buffer): void {
    this.#memo.clear();
    for (let k = 0; k + 8 <= bytes.length; k++) {
      const w = bytes.subarray(k, k + 8);
      const w12 = bytes.subarray(k, Math.min(bytes.length, k + 12));
      this.#windows.push({
        bytes: Buffer.from(w),
        what,
        encodings: [
          w.toString('hex'),
          w12.length === 12 ? w12.toString('base64') : '',
          w12.length === 12 ? w12.toString('base64url') : '',
        ].filter((e) => e.length > 0),
      });
    }
  }

  readonly #memo = new Map<string, string | undefined>();

  scan(value: unknown): string | undefined {
    // Plain errors (no cause, no extra fields) thrown at the same place have the same stack text:
    // scan each distinct one once.
    if (value instanceof Error && value.cause === undefined && typeof value.stack === 'string') {
      const own = Object.getOwnPropertyNames(value);
      if (own.every((k) => k === 'stack' || k === 'message' || k === 'code' || k === 'name')) {
        const key = `${value.name}\0${(value as { code?: unknown }).code}\0${value.message}\0${value.stack}`;
        if (this.#memo.has(key)) return this.#memo.get(key);
        const r = this.#scanFully(value);
        if (this.#memo.size < 10_000) this.#memo.set(key, r);
        return r;
      }
    }
    return this.#scanFully(value);
  }

  #scanFully(value: unknown): string | undefined {
    const seen = new Set<unknown>();
    const visit = (v: unknown, path: string, depth: number): string | undefined => {
      if (v === null || v === undefined || depth > 8) return undefined;
      if (typeof v === 'string') return this.#scanString(v, path);
      if (v instanceof Uint8Array) {
        const b = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
        for (const w of this.#windows) if (b.includes(w.bytes)) return `${w.what} bytes in ${path}`;
        return this.#scanString(b.toString('latin1'), path);
      }
      if (typeof v !== 'object' && typeof v !== 'function') return undefined;
      if (seen.has(v)) return undefined;
      seen.add(v);
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          const hit = visit(v[i], `${path}[${i}]`, depth + 1);
          if (hit) return hit;
        }
        return undefined;
      }
      for (const key of Object.getOwnPropertyNames(v)) {
        let child: unknown;
        try {
          child = (v as Record<string, unknown>)[key];
        } catch {
          continue;
        }
        if (typeof child === 'function') continue;
        const hit = visit(child, `${path}.${key}`, depth + 1);
        if (hit) return hit;
      }
      return undefined;
    };
    return visit(value, 'error', 0) ?? this.#scanString(inspect(value, { depth: 8, showHidden: true }), 'inspect(error)');
  }

  #scanString(s: string, path: string): string | undefined {
    const lower = s.toLowerCase();
    for (const c of this.#canaries) if (lower.includes(c)) return `plaintext canary in ${path}`;
    // util.inspect prints bytes as "<Buffer 0a 1b ...>": compare without the spaces too.
    const compact = lower.replace(/([0-9a-f]{2}) (?=[0-9a-f]{2}\b)/g, '$1');
    const latin1 = Buffer.from(s, 'latin1');
    for (const w of this.#windows) {
      if (latin1.includes(w.bytes)) return `${w.what} (raw) in ${path}`;
      for (const e of w.encodings) {
        if (e.length === 16 && /^[0-9a-f]+$/.test(e)) {
          if (lower.includes(e) || compact.includes(e)) return `${w.what} (hex) in ${path}`;
        } else if (s.includes(e)) return `${w.what} (base64) in ${path}`;
      }
    }
    return undefined;
  }
}

// --- Fuzz budget ------------------------------------------------------------------------------

/**
 * Total fuzz cases: FUZZ_RUNS when set (npm run fuzz sets 200,000), else the default that keeps
 * `npm test` quick. Each property takes its share.
 */
export function fuzzBudget(defaultTotal: number): number {
  const env = process.env['FUZZ_RUNS'];
  if (env === undefined || env === '') return defaultTotal;
  const n = Number(env);
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError('FUZZ_RUNS must be a positive integer (number of cases)');
  return n;
}

/** Seed for fast-check: FUZZ_SEED to reproduce a failure, else random (printed on failure by the test). */
export function fuzzSeed(): number {
  const env = process.env['FUZZ_SEED'];
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n)) throw new RangeError('FUZZ_SEED must be an integer');
    return n | 0;
  }
  return (Math.random() * 0x7fffffff) | 0;
}
