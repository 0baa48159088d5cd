// The two libraries under comparison, set up the same way: a raw AES keyring under one 256-bit
// wrapping key, a warm data-key cache with the same limits, the same encryption context.
import { randomBytes } from 'node:crypto';
import esdk from '@aws-crypto/client-node';

const {
  buildClient,
  CommitmentPolicy,
  NodeCachingMaterialsManager,
  getLocalCryptographicMaterialsCache,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
} = esdk;

export const CONTEXT = Object.freeze({ purpose: 'bench', tenant: 'acme' });
export const KEY_NAMESPACE = 'bench';
export const KEY_NAME = 'wrapping-key';
/** The ESDK's default frame length. */
export const ESDK_FRAME_LENGTH = 4096;

// Cache limits used on both sides: the Envelope defaults (DESIGN.md), mirrored on the caching CMM.
const CACHE = { maxEntries: 100, maxAgeMs: 300_000, maxMessagesPerKey: 10_000, maxBytesPerKey: 2 ** 40 };

const wrappingKey = randomBytes(32);

/**
 * Our Envelope with a raw AES keyring and a cache, at its default frame length unless one is
 * given. Returns { encrypt, decrypt, envelope }.
 */
export function ours(lib, { suite, frameLength, cache = CACHE, keyring } = {}) {
  const envelope = new lib.Envelope({
    keyring: keyring ?? new lib.RawAesKeyring({ keyNamespace: KEY_NAMESPACE, keyName: KEY_NAME, key: wrappingKey }),
    suite,
    ...(frameLength === undefined ? {} : { frameLength }),
    cache,
  });
  const options = { context: CONTEXT };
  return {
    envelope,
    encrypt: (plaintext) => envelope.encrypt(plaintext, options),
    decrypt: async (message) => (await envelope.decrypt(message)).plaintext,
    // What a caller awaits (`const { plaintext } = await envelope.decrypt(m)`): the timed op, with
    // no extra async layer of the bench's own on top of the library's promise.
    decryptOp: (message) => envelope.decrypt(message),
  };
}

/** A raw AES keyring of the ESDK under the same wrapping key (UTF-8 context sorting, as ours). */
export function esdkRawAesKeyring() {
  return new RawAesKeyringNode({
    keyNamespace: KEY_NAMESPACE,
    keyName: KEY_NAME,
    unencryptedMasterKey: wrappingKey,
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
    utf8Sorting: true,
  });
}

/** The ESDK's caching materials manager over `keyring`, with the same limits as ours. */
export function esdkCachingCmm(keyring) {
  return new NodeCachingMaterialsManager({
    backingMaterials: keyring,
    cache: getLocalCryptographicMaterialsCache(CACHE.maxEntries),
    maxAge: CACHE.maxAgeMs,
    maxMessagesEncrypted: CACHE.maxMessagesPerKey,
    maxBytesEncrypted: CACHE.maxBytesPerKey,
  });
}

/** `@aws-crypto/client-node` with its caching CMM. Returns { encrypt, decrypt, decryptOp }. */
export function esdkSide({ suite, frameLength = ESDK_FRAME_LENGTH, keyring } = {}) {
  const cmm = esdkCachingCmm(keyring ?? esdkRawAesKeyring());
  const client = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
  const options = { encryptionContext: CONTEXT, suiteId: suite, frameLength };
  return {
    cmm,
    encrypt: async (plaintext) => (await client.encrypt(cmm, plaintext, options)).result,
    decrypt: async (message) => (await client.decrypt(cmm, message)).plaintext,
    decryptOp: (message) => client.decrypt(cmm, message),
  };
}

/** Round-trips one random payload through a side and throws if it does not come back intact. */
export async function checkRoundTrip(side, name, size = 3000) {
  const plaintext = randomBytes(size);
  const back = await side.decrypt(await side.encrypt(plaintext));
  if (!Buffer.from(back).equals(plaintext)) throw new Error(`${name}: round trip does not return the plaintext`);
}
