import { createECDH, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
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
    // The named-curve OID, DER (1.2.840.10045.3.1.7).
    oid: Buffer.from('06082a8648ce3d030107', 'hex'),
  },
  'P-384': {
    nodeName: 'secp384r1',
    coordinateLength: 48,
    // Same structure with OID secp384r1 and a 49-byte compressed point.
    spkiPrefix: Buffer.from('3046301006072a8648ce3d020106052b81040022033200', 'hex'),
    // 1.3.132.0.34
    oid: Buffer.from('06052b81040022', 'hex'),
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
 * uv_mutex_lock; generating P-384 pairs and exporting them as JWK in a loop hangs within 200-1,000
 * pairs. An SPKI export costs about 170 µs, so the library's own keys never need one (below).
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

/** The `aws-crypto-public-key` value of each private key generateSigningKey made (public values). */
const generatedPublicKeys = new WeakMap<KeyObject, string>();

/**
 * Generates a fresh ECDSA key pair for a signed suite. `publicKey` is the value for the
 * `aws-crypto-public-key` context entry (base64 compressed point), as the ESDK writes it.
 *
 * With createECDH, not generateKeyPairSync: no key generation job is left to the garbage collector
 * (compressPublicKey says why that matters), and the compressed point comes with the key, so no
 * export is needed. The private key is imported from a SEC 1 DER ECPrivateKey built here with its
 * public key (without it OpenSSL recomputes it, which doubles the cost); the buffers that held the
 * scalar are zeroed at once.
 */
export function generateSigningKey(suite: Suite): { privateKey: KeyObject; publicKey: string } {
  const curve = CURVES[curveOf(suite)];
  const ecdh = createECDH(curve.nodeName);
  ecdh.generateKeys();
  const scalar = ecdh.getPrivateKey();
  const der = sec1PrivateKey(curve, scalar, ecdh.getPublicKey());
  try {
    const privateKey = createPrivateKey({ key: der, format: 'der', type: 'sec1' });
    const publicKey = ecdh.getPublicKey(null, 'compressed').toString('base64');
    generatedPublicKeys.set(privateKey, publicKey);
    return { privateKey, publicKey };
  } finally {
    scalar.fill(0);
    der.fill(0);
  }
}

/**
 * SEC 1 (RFC 5915) ECPrivateKey, DER: SEQUENCE { INTEGER 1, OCTET STRING d (the coordinate length,
 * zero-padded on the left), [0] { named curve OID }, [1] { BIT STRING the uncompressed point } }.
 */
function sec1PrivateKey(curve: (typeof CURVES)[keyof typeof CURVES], scalar: Buffer, point: Buffer): Buffer {
  const n = curve.coordinateLength;
  if (scalar.length > n || point.length !== 1 + 2 * n) throw new RangeError('EC key of the wrong size for its curve');
  const body = 3 + (2 + n) + (2 + curve.oid.length) + (2 + 2 + 1 + point.length);
  const long = body > 127; // P-384: 164 bytes, a one-byte long-form length
  const der = Buffer.alloc(2 + (long ? 1 : 0) + body);
  let o = 0;
  der[o++] = 0x30;
  if (long) der[o++] = 0x81;
  der[o++] = body;
  der.set([0x02, 0x01, 0x01, 0x04, n], o);
  o += 5;
  scalar.copy(der, o + n - scalar.length); // left zero padding: Buffer.alloc is zero-filled
  o += n;
  der.set([0xa0, curve.oid.length], o);
  curve.oid.copy(der, o + 2);
  o += 2 + curve.oid.length;
  der.set([0xa1, 2 + 1 + point.length, 0x03, 1 + point.length, 0x00], o);
  point.copy(der, o + 5);
  return der;
}

/**
 * The `aws-crypto-public-key` value for a private key (used to check materials): remembered for
 * the keys generateSigningKey made, read from the SPKI for any other.
 */
export function publicKeyStringFor(privateKey: KeyObject): string {
  return generatedPublicKeys.get(privateKey) ?? compressPublicKey(createPublicKey(privateKey)).toString('base64');
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
