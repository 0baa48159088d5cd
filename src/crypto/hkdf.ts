import { createHmac, timingSafeEqual } from 'node:crypto';
import { CommitmentMismatchError } from '../errors.js';
import type { Suite } from '../format/suites.js';
import { secretCopy } from './secret-buffer.js';

/**
 * HKDF (RFC 5869) as the message format uses it (framework/algorithm-suites.md, "Key Derivation"
 * and "Key Commitment").
 *
 * Every output the format needs is at most one hash block long (32 bytes from SHA-512, at most 32
 * bytes from SHA-256/384), so HKDF-Expand is exactly one HMAC over `info || 0x01`. Doing the
 * extract once and each expand as one HMAC (instead of `crypto.hkdfSync` per output, which
 * re-runs the extract) is what keeps per-message key derivation cheap.
 */

const HASH_LENGTH = { sha256: 32, sha384: 48, sha512: 64 } as const;

/** HKDF-Extract: PRK = HMAC-Hash(salt, IKM). An absent salt is HashLen zero bytes (RFC 5869 2.2). */
export function hkdfExtract(hash: 'sha256' | 'sha384' | 'sha512', salt: Uint8Array | undefined, ikm: Uint8Array): Buffer {
  const key = salt === undefined || salt.length === 0 ? Buffer.alloc(HASH_LENGTH[hash]) : salt;
  return createHmac(hash, key).update(ikm).digest();
}

/**
 * HKDF-Expand for outputs of at most one hash block: T(1) = HMAC-Hash(PRK, info || 0x01).
 * `infoWithCounter` must already end with the 0x01 counter byte (see `expandInfo`).
 */
export function hkdfExpandOneBlock(
  hash: 'sha256' | 'sha384' | 'sha512',
  prk: Uint8Array,
  infoWithCounter: Uint8Array,
  length: number,
): Buffer {
  if (length > HASH_LENGTH[hash]) throw new RangeError('length must be at most one hash block');
  const t1 = createHmac(hash, prk).update(infoWithCounter).digest();
  // The unused tail of the block is output key material too, and stays reachable through the
  // returned view's ArrayBuffer: wipe it.
  t1.fill(0, length);
  return length === t1.length ? t1 : t1.subarray(0, length);
}

/** Builds `info || 0x01`, the complete HMAC input of a single-block HKDF-Expand. */
export function expandInfo(...parts: Uint8Array[]): Buffer {
  let n = 1;
  for (const p of parts) n += p.length;
  const out = Buffer.allocUnsafe(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  out[o] = 1;
  return out;
}

const COMMIT_LABEL = Buffer.from('COMMITKEY', 'ascii');
const KEY_LABEL = Buffer.from('DERIVEKEY', 'ascii');

function suiteIdBytes(id: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(id, 0);
  return b;
}

/** HKDF info for the commitment key of committing suites: "COMMITKEY" (no suite id), plus counter. */
export const COMMIT_INFO: Buffer = expandInfo(COMMIT_LABEL);

const keyInfoCache = new Map<number, Buffer>();
/** HKDF info for the encryption key of committing suites: suiteId (2 bytes BE) || "DERIVEKEY", plus counter. */
export function commitSuiteKeyInfo(suite: Suite): Buffer {
  let info = keyInfoCache.get(suite.id);
  if (info === undefined) {
    info = expandInfo(suiteIdBytes(suite.id), KEY_LABEL);
    keyInfoCache.set(suite.id, info);
  }
  return info;
}

/** Length of the key commitment in the v2 header (algorithm-suites.md: "Commit Key Length"). */
export const COMMITMENT_LENGTH = 32;

/**
 * Message format v2 key derivation: PRK = HKDF-Extract(salt = message id, IKM = data key);
 * encryption key = Expand(PRK, suiteId || "DERIVEKEY"); commitment = Expand(PRK, "COMMITKEY").
 */
export function deriveCommittedKey(
  suite: Suite,
  dataKey: Uint8Array,
  messageId: Uint8Array,
): { key: Buffer; commitment: Buffer } {
  const prk = createHmac('sha512', messageId).update(dataKey).digest();
  let okm: Buffer | undefined;
  try {
    okm = createHmac('sha512', prk).update(commitSuiteKeyInfo(suite)).digest();
    okm.fill(0, suite.keyLength); // the unused tail of the expand block is key material too
    const block = createHmac('sha512', prk).update(COMMIT_INFO).digest();
    // The commitment is public (it is in the header); the rest of its block is PRK output that
    // nothing uses, wiped like the key block's tail.
    block.fill(0, COMMITMENT_LENGTH);
    return { key: okm.subarray(0, suite.keyLength), commitment: block.subarray(0, COMMITMENT_LENGTH) };
  } catch (err) {
    okm?.fill(0);
    throw err;
  } finally {
    prk.fill(0);
  }
}

/**
 * Checks a v2 header's commitment against the data key and returns the encryption key.
 * Throws CommitmentMismatchError (spec client-apis/decrypt.md: the commitment MUST be verified
 * before the header authentication tag).
 */
export function deriveAndCheckCommitment(suite: Suite, dataKey: Uint8Array, messageId: Uint8Array, expected: Uint8Array): Buffer {
  const { key, commitment } = deriveCommittedKey(suite, dataKey, messageId);
  if (expected.length !== commitment.length || !timingSafeEqual(commitment, expected)) {
    key.fill(0);
    throw new CommitmentMismatchError();
  }
  return key;
}

/**
 * Message format v1 key derivation: no-KDF suites use the data key itself; HKDF suites use
 * HKDF(hash, no salt, IKM = data key, info = suiteId || messageId) truncated to the key length.
 * Always returns a fresh buffer the caller may zero.
 */
export function deriveLegacyKey(suite: Suite, dataKey: Uint8Array, messageId: Uint8Array): Buffer {
  // The message key is the data key: a copy in memory of its own, not in Node's shared pool slab.
  if (suite.kdfHash === undefined) return secretCopy(dataKey);
  const prk = hkdfExtract(suite.kdfHash, undefined, dataKey);
  try {
    return hkdfExpandOneBlock(suite.kdfHash, prk, expandInfo(suiteIdBytes(suite.id), messageId), suite.keyLength);
  } finally {
    prk.fill(0);
  }
}
