import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { MalformedMessageError } from '../errors.js';
import type { Suite } from '../format/suites.js';

/**
 * ECDSA for the signed suites (framework/algorithm-suites.md: 0x0214 P-256/SHA-256,
 * 0x0346/0x0378/0x0578 P-384/SHA-384). The verification key travels in the encryption context
 * under `aws-crypto-public-key` as the base64 of the compressed curve point (SEC 1, 2.3.3); the
 * footer carries a DER-encoded signature over header + body (data-format/message-footer.md).
 */

type Curve = 'P-256' | 'P-384';

const CURVES = {
  'P-256': {
    nodeName: 'prime256v1',
    coordinateLength: 32,
    // SubjectPublicKeyInfo prefix up to the BIT STRING contents, for a 33-byte compressed point:
    // SEQUENCE { SEQUENCE { OID id-ecPublicKey, OID prime256v1 }, BIT STRING (0 unused bits) }
    spkiPrefix: Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex'),
  },
  'P-384': {
    nodeName: 'secp384r1',
    coordinateLength: 48,
    // Same structure with OID secp384r1 and a 49-byte compressed point.
    spkiPrefix: Buffer.from('3046301006072a8648ce3d020106052b81040022033200', 'hex'),
  },
} as const;

function curveOf(suite: Suite): Curve {
  if (suite.signatureCurve === undefined) throw new RangeError('suite does not use signatures');
  return suite.signatureCurve;
}

/**
 * SEC 1 compressed encoding of an EC public key: 0x02/0x03 (parity of y) || x, read from its DER
 * SubjectPublicKeyInfo, whose BIT STRING ends with the uncompressed point 0x04 || x || y.
 *
 * Not through a JWK export. On Node 20 a JWK export holds the key's lock while it allocates the
 * JWK's strings, and the key generation job that generateKeyPairSync leaves to the garbage
 * collector takes the same lock in its destructor: a collection inside the export deadlocks the
 * process. Seen here as a test worker stuck in KeyObjectHandle::ExportJWK -> GC -> ~KeyGenJob ->
 * uv_mutex_lock, and reproduced by generating P-384 pairs and exporting them as JWK in a loop (it
 * hangs within seconds; the same loop with SPKI exports, or with sign(), ran 20,000 pairs).
 */
export function compressPublicKey(publicKey: KeyObject): Buffer {
  const details = publicKey.asymmetricKeyDetails;
  const curve = publicKey.asymmetricKeyType === 'ec' ? Object.values(CURVES).find((c) => c.nodeName === details?.namedCurve) : undefined;
  if (curve === undefined) throw new TypeError('signing key must be an EC key on P-256 or P-384');
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const n = curve.coordinateLength;
  const at = spki.length - (1 + 2 * n);
  if (at < 0 || spki[at] !== 0x04) throw new TypeError('signing key must be an EC key on P-256 or P-384');
  const out = Buffer.allocUnsafe(1 + n);
  out[0] = (spki[spki.length - 1]! & 1) === 1 ? 0x03 : 0x02;
  spki.copy(out, 1, at + 1, at + 1 + n);
  return out;
}

/**
 * Generates a fresh ECDSA key pair for a signed suite. `publicKey` is the value for the
 * `aws-crypto-public-key` context entry (base64 compressed point), as the ESDK writes it.
 */
export function generateSigningKey(suite: Suite): { privateKey: KeyObject; publicKey: string } {
  const curve = CURVES[curveOf(suite)];
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve.nodeName });
  return { privateKey, publicKey: compressPublicKey(publicKey).toString('base64') };
}

/** The `aws-crypto-public-key` value for an existing private key (used to check materials). */
export function publicKeyStringFor(privateKey: KeyObject): string {
  return compressPublicKey(createPublicKey(privateKey)).toString('base64');
}

/** True when `key` is an EC key on the suite's signature curve. */
export function keyCurveMatches(key: KeyObject, suite: Suite): boolean {
  const details = key.asymmetricKeyDetails;
  return key.asymmetricKeyType === 'ec' && details?.namedCurve === CURVES[curveOf(suite)].nodeName;
}

/**
 * Parses the base64 compressed point from a message's context into a verification key.
 * Anything that is not a valid compressed point on the suite's curve is a malformed message.
 */
export function parsePublicKey(suite: Suite, encoded: string | undefined): KeyObject {
  const curve = CURVES[curveOf(suite)];
  if (encoded === undefined) throw new MalformedMessageError('signed message has no public key in its encryption context');
  // Messages written under one cached data key share one signing key, so a reader sees the same
  // public key again and again; decompressing and checking the point costs about as much as the
  // verify itself. Valid keys only are remembered, in a small bounded map (public, immutable).
  const memoKey = `${suite.id}:${encoded}`;
  const known = parsedKeys.get(memoKey);
  if (known !== undefined) return known;
  const key = parseUncached(curve, encoded);
  if (parsedKeys.size >= MAX_PARSED_KEYS) parsedKeys.delete(parsedKeys.keys().next().value!);
  parsedKeys.set(memoKey, key);
  return key;
}

/** Most parsed public keys remembered (oldest first out). */
const MAX_PARSED_KEYS = 64;
const parsedKeys = new Map<string, KeyObject>();

function parseUncached(curve: (typeof CURVES)[keyof typeof CURVES], encoded: string): KeyObject {
  const point = Buffer.from(encoded, 'base64');
  // Buffer.from(..., 'base64') skips invalid characters; insist on the canonical encoding.
  if (
    point.length !== 1 + curve.coordinateLength ||
    (point[0] !== 0x02 && point[0] !== 0x03) ||
    point.toString('base64') !== encoded
  ) {
    throw new MalformedMessageError('malformed public key in encryption context');
  }
  try {
    // OpenSSL decompresses the point and checks that it lies on the curve.
    return createPublicKey({ key: Buffer.concat([curve.spkiPrefix, point]), format: 'der', type: 'spki' });
  } catch {
    throw new MalformedMessageError('malformed public key in encryption context');
  }
}
