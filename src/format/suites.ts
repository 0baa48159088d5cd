import { MalformedMessageError } from '../errors.js';

/**
 * Algorithm suites of the AWS Encryption SDK message format
 * (aws-encryption-sdk-specification, framework/algorithm-suites.md). All use AES-GCM with a
 * 12-byte IV and a 16-byte tag.
 */
export interface Suite {
  /** Two-byte suite id as written in the header, e.g. 0x0478. */
  readonly id: number;
  /** Message format version that carries this suite: 1 (legacy) or 2 (key commitment). */
  readonly messageFormat: 1 | 2;
  /** AES key length in bytes (16, 24 or 32); also the data key length. */
  readonly keyLength: 16 | 24 | 32;
  readonly ivLength: 12;
  readonly tagLength: 16;
  /** HKDF hash, or `undefined` for the legacy no-KDF suites that use the data key directly. */
  readonly kdfHash: 'sha256' | 'sha384' | 'sha512' | undefined;
  /** ECDSA curve for the footer signature, or `undefined` for unsigned suites. */
  readonly signatureCurve: 'P-256' | 'P-384' | undefined;
  /** Hash used with the signature curve. */
  readonly signatureHash: 'sha256' | 'sha384' | undefined;
  /** True for the v2 suites that carry a 32-byte key commitment in the header. */
  readonly committing: boolean;
  /** Length of the header's algorithm suite data (the commitment): 32 for committing suites, 0 otherwise. */
  readonly suiteDataLength: 0 | 32;
}

function suite(
  id: number,
  keyLength: 16 | 24 | 32,
  kdfHash: Suite['kdfHash'],
  signatureCurve: Suite['signatureCurve'],
  committing: boolean,
): Suite {
  return Object.freeze({
    id,
    messageFormat: committing ? 2 : 1,
    keyLength,
    ivLength: 12,
    tagLength: 16,
    kdfHash,
    signatureCurve,
    signatureHash: signatureCurve === 'P-256' ? 'sha256' : signatureCurve === 'P-384' ? 'sha384' : undefined,
    committing,
    suiteDataLength: committing ? 32 : 0,
  } as const);
}

export const SUITES: ReadonlyMap<number, Suite> = new Map<number, Suite>([
  [0x0014, suite(0x0014, 16, undefined, undefined, false)],
  [0x0046, suite(0x0046, 24, undefined, undefined, false)],
  [0x0078, suite(0x0078, 32, undefined, undefined, false)],
  [0x0114, suite(0x0114, 16, 'sha256', undefined, false)],
  [0x0146, suite(0x0146, 24, 'sha256', undefined, false)],
  [0x0178, suite(0x0178, 32, 'sha256', undefined, false)],
  [0x0214, suite(0x0214, 16, 'sha256', 'P-256', false)],
  [0x0346, suite(0x0346, 24, 'sha384', 'P-384', false)],
  [0x0378, suite(0x0378, 32, 'sha384', 'P-384', false)],
  [0x0478, suite(0x0478, 32, 'sha512', undefined, true)],
  [0x0578, suite(0x0578, 32, 'sha512', 'P-384', true)],
]);

/** Suites this library writes. Encryption only ever uses committing (v2) suites. */
export const ENCRYPT_SUITES: readonly number[] = [0x0478, 0x0578];

export const DEFAULT_SUITE = 0x0478;

/** Looks up a suite read from a message; unknown ids are a malformed message. */
export function suiteFromMessage(id: number): Suite {
  const s = SUITES.get(id);
  if (s === undefined) throw new MalformedMessageError('unknown algorithm suite');
  return s;
}

/** Looks up a suite given by the caller; unknown ids are a RangeError naming the option. */
export function suiteFromOption(id: unknown, option = 'suite'): Suite {
  if (typeof id !== 'number' || !ENCRYPT_SUITES.includes(id)) {
    throw new RangeError(
      `${option} must be one of ${ENCRYPT_SUITES.map((x) => '0x' + x.toString(16).padStart(4, '0')).join(', ')}`,
    );
  }
  return SUITES.get(id)!;
}
