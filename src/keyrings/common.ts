/**
 * Small helpers shared by the keyrings: suite lookup, data-key checks, option validation and the
 * KMS-call counter protocol. Nothing here touches key material beyond length checks.
 */
import { KeyringError } from '../errors.js';
import { isWellFormedUtf16 } from '../format/context.js';
import { SUITES, type Suite } from '../format/suites.js';

/** Looks up the suite a keyring is asked to work for; an unknown id is a caller bug, not bad data. */
export function keyringSuite(suiteId: unknown): Suite {
  const suite = typeof suiteId === 'number' ? SUITES.get(suiteId) : undefined;
  if (suite === undefined) {
    throw new RangeError('suiteId must be one of the AWS Encryption SDK algorithm suite ids (0x0014 .. 0x0578)');
  }
  return suite;
}

/**
 * Checks a data key handed to onEncrypt by an earlier keyring: it must be a Uint8Array of the
 * suite's key length (framework/algorithm-suites.md, "key derivation input length").
 */
export function checkGivenDataKey(dataKey: unknown, suite: Suite): Uint8Array {
  if (!(dataKey instanceof Uint8Array)) throw new TypeError('dataKey must be a Uint8Array');
  if (dataKey.length !== suite.keyLength) {
    throw new KeyringError(
      `dataKey must be ${suite.keyLength} bytes for suite 0x${hex4(suite.id)}; got ${dataKey.length} bytes`,
    );
  }
  return dataKey;
}

export function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}

/** A non-empty, well-formed UTF-16 string option whose UTF-8 form fits `maxBytes`. */
export function stringOption(value: unknown, option: string, maxBytes = 0xffff): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(`${option} must be a non-empty string`);
  }
  // Written into message headers as UTF-8: an unpaired surrogate would become U+FFFD there, and
  // the keyring would no longer recognize its own encrypted data keys.
  if (!isWellFormedUtf16(value)) throw new TypeError(`${option} must be well-formed UTF-16 (it has an unpaired surrogate)`);
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > maxBytes) throw new RangeError(`${option} must be at most ${maxBytes} UTF-8 bytes; got ${bytes}`);
  return value;
}

/** Provider ids that start with this belong to the AWS KMS keyrings. */
const KMS_PROVIDER_PREFIX = 'aws-kms';

/**
 * The key namespace of a raw keyring: a non-empty string that neither is nor starts with `aws-kms`.
 * framework/keyring-interface.md, "key provider ID": that prefix marks encrypted data keys made by
 * the AWS KMS keyrings, and the namespace becomes the provider id of every EDK a raw keyring writes.
 */
export function rawKeyNamespaceOption(value: unknown, option: string): string {
  const ns = stringOption(value, option);
  if (ns.startsWith(KMS_PROVIDER_PREFIX)) {
    throw new TypeError(`${option} must not be or start with "${KMS_PROVIDER_PREFIX}": that prefix is reserved for the AWS KMS keyrings`);
  }
  return ns;
}

/**
 * A plain `{ [key]: string }` copy, safe to hand to an SDK serializer. Built with
 * Object.fromEntries (which defines properties) rather than assignment: assigning to "__proto__"
 * would set the prototype and silently drop that pair from what KMS binds.
 */
export function plainContext(context: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.keys(context).map((k) => [k, context[k]!]));
}

/** Anything that reports how many requests it sent to KMS. */
export interface KmsCallCounter {
  readonly kmsCalls: number;
}

/** The KMS-call count a keyring (or client) reports, 0 when it does not report one. */
export function kmsCallsOf(x: unknown): number {
  if (x !== null && typeof x === 'object') {
    const n = (x as { kmsCalls?: unknown }).kmsCalls;
    if (typeof n === 'number' && Number.isFinite(n)) return n;
  }
  return 0;
}

// ignoreBOM: provider info is read back exactly as written; the default would strip a leading U+FEFF.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Strict UTF-8 decoding; `undefined` for invalid bytes (e.g. a hostile provider info). */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
