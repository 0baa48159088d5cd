import { createPrivateKey, createPublicKey, diffieHellman } from 'node:crypto';

/**
 * ECDH for DeriveSharedSecret (API Reference, DeriveSharedSecret): the KMS key's private key and
 * the peer's public key give the raw shared secret of the cofactor Diffie-Hellman primitive
 * (NIST SP 800-56A Rev. 3, §5.7.1.2). For the NIST prime curves the cofactor is 1, so this is
 * plain ECDH, and the secret Z is the x-coordinate of d·Q as a field-size byte string: what
 * node:crypto's diffieHellman returns, and what `openssl pkeyutl -derive` computes on the peer's
 * side (the AWS Security Blog's ECDH announcement pairs the two).
 *
 * The peer key must be a DER-encoded X.509 SubjectPublicKeyInfo (RFC 5280 §4.1; RFC 5480 §2 for
 * EC keys: id-ecPublicKey with a namedCurve parameter, the point as the BIT STRING). It is parsed
 * here, strictly, before node:crypto sees it: OpenSSL's decoder accepts trailing bytes after the
 * SPKI, and a KeyObject made from a point-at-infinity SPKI aborts the whole Node 20 process when
 * its key details are read. Only a well-formed SPKI with a point of the right length reaches
 * createPublicKey, which then checks that the point is on the curve.
 */

/** DER of the namedCurve OIDs (RFC 5480 §2.1.1.1, SEC 2) by node:crypto curve name. */
const CURVE_OIDS: Readonly<Record<string, string>> = {
  prime256v1: '06082a8648ce3d030107', // secp256r1 / P-256, 1.2.840.10045.3.1.7
  secp384r1: '06052b81040022', // P-384, 1.3.132.0.34
  secp521r1: '06052b81040023', // P-521, 1.3.132.0.35
  secp256k1: '06052b8104000a', // 1.3.132.0.10 (recognized only to name it in errors)
};

/** Field element size in bytes, i.e. the length of the x-coordinate Z. */
const FIELD_BYTES: Readonly<Record<string, number>> = { prime256v1: 32, secp384r1: 48, secp521r1: 66, secp256k1: 32 };

/** id-ecPublicKey, 1.2.840.10045.2.1 (RFC 5480 §2.1.1). */
const EC_PUBLIC_KEY_OID = '06072a8648ce3d0201';

export type PeerKeyResult =
  | { ok: true; sharedSecret: Buffer }
  /** Not a DER SubjectPublicKeyInfo of an EC point on a named curve (or the point is invalid). */
  | { ok: false; problem: 'malformed' }
  /** A valid EC public key, but on another curve than the KMS key (`curve` is its node name, when known). */
  | { ok: false; problem: 'curve'; curve?: string };

interface Tlv {
  /** Offset of the tag octet. */
  at: number;
  tag: number;
  /** Offset of the contents. */
  start: number;
  /** Offset just past the contents. */
  end: number;
}

/** One DER TLV at `at` inside `buf[..limit)`: definite, minimal length encoding; undefined otherwise. */
function readTlv(buf: Uint8Array, at: number, limit: number): Tlv | undefined {
  if (at + 2 > limit) return undefined;
  const tag = buf[at]!;
  const first = buf[at + 1]!;
  let len: number;
  let start: number;
  if (first < 0x80) {
    len = first;
    start = at + 2;
  } else {
    const n = first & 0x7f;
    // An SPKI of these curves is under 64 KiB; more length octets (or 0x80, indefinite) are not DER here.
    if (n < 1 || n > 2 || at + 2 + n > limit) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[at + 2 + i]!;
    // DER uses the shortest form: long form only from 128, no leading zero octet.
    if (len < 0x80 || (n === 2 && len < 0x100)) return undefined;
    start = at + 2 + n;
  }
  const end = start + len;
  if (end > limit) return undefined;
  return { at, tag, start, end };
}

/** The whole TLV (tag, length, contents) in hex, to compare with the DER of an OID. */
const hex = (buf: Uint8Array, t: Tlv): string => Buffer.from(buf.subarray(t.at, t.end)).toString('hex');

/**
 * Parses an EC SubjectPublicKeyInfo: the node curve name and the encoded point, or why not.
 * `curve: undefined` with a point means a namedCurve this module does not know.
 */
function parseEcSpki(der: Uint8Array): { curve?: string; point: Uint8Array } | undefined {
  const outer = readTlv(der, 0, der.length);
  if (!outer || outer.tag !== 0x30 || outer.end !== der.length) return undefined;
  const alg = readTlv(der, outer.start, outer.end);
  if (!alg || alg.tag !== 0x30) return undefined;
  const oid = readTlv(der, alg.start, alg.end);
  if (!oid || oid.tag !== 0x06 || hex(der, oid) !== EC_PUBLIC_KEY_OID) return undefined;
  const params = readTlv(der, oid.end, alg.end);
  // namedCurve only: RFC 5480 §2.1.1 forbids implicitCurve and specifiedCurve in PKIX.
  if (!params || params.tag !== 0x06 || params.end !== alg.end) return undefined;
  const bits = readTlv(der, alg.end, outer.end);
  if (!bits || bits.tag !== 0x03 || bits.end !== outer.end || bits.end - bits.start < 2 || der[bits.start] !== 0) return undefined;
  const curveHex = hex(der, params);
  const curve = Object.keys(CURVE_OIDS).find((c) => CURVE_OIDS[c] === curveHex);
  return { ...(curve ? { curve } : {}), point: der.subarray(bits.start + 1, bits.end) };
}

/** SEC 1 §2.3.3 point encodings other than infinity: uncompressed 04||X||Y, compressed 02/03||X. */
function pointLengthFits(point: Uint8Array, fieldBytes: number): boolean {
  if (point[0] === 0x04) return point.length === 1 + 2 * fieldBytes;
  if (point[0] === 0x02 || point[0] === 0x03) return point.length === 1 + fieldBytes;
  return false;
}

/**
 * The raw ECDH shared secret of the KMS key (PKCS #8 DER private key on node curve `curve`) and
 * the peer's SPKI public key, or the reason the peer key cannot be used.
 */
export function ecdhSharedSecret(privateDer: Buffer, curve: string, peerSpki: Uint8Array): PeerKeyResult {
  const fieldBytes = FIELD_BYTES[curve];
  if (fieldBytes === undefined) throw new Error(`no ECDH for curve ${curve}`);
  const parsed = parseEcSpki(peerSpki);
  if (!parsed) return { ok: false, problem: 'malformed' };
  if (parsed.curve !== curve) return parsed.curve ? { ok: false, problem: 'curve', curve: parsed.curve } : { ok: false, problem: 'curve' };
  if (!pointLengthFits(parsed.point, fieldBytes)) return { ok: false, problem: 'malformed' };
  let sharedSecret: Buffer;
  try {
    // createPublicKey rejects a point that is not on the curve; diffieHellman rejects a result at
    // infinity. Either is a peer key that cannot be used.
    const publicKey = createPublicKey({ key: Buffer.from(peerSpki), format: 'der', type: 'spki' });
    const privateKey = createPrivateKey({ key: privateDer, format: 'der', type: 'pkcs8' });
    sharedSecret = diffieHellman({ privateKey, publicKey });
  } catch {
    return { ok: false, problem: 'malformed' };
  }
  // OpenSSL returns Z at full field length (leading zero octets kept), as SP 800-56A requires.
  if (sharedSecret.length !== fieldBytes) throw new Error(`ECDH on ${curve} gave ${sharedSecret.length} bytes, expected ${fieldBytes}`);
  return { ok: true, sharedSecret };
}

/** Human name of a node curve for messages (the KMS KeySpec for the ones KMS has). */
export function keySpecOfCurve(curve: string): string {
  return { prime256v1: 'ECC_NIST_P256', secp384r1: 'ECC_NIST_P384', secp521r1: 'ECC_NIST_P521', secp256k1: 'ECC_SECG_P256K1' }[curve] ?? curve;
}
