import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify } from 'node:crypto';

/**
 * Ed25519 keys (ECC_NIST_EDWARDS25519) of the local KMS.
 *
 * - ED25519_SHA_512 with MessageType RAW: pure Ed25519 (RFC 8032 §5.1, FIPS 186-5 §7), from
 *   node:crypto.
 * - ED25519_PH_SHA_512 with MessageType DIGEST: Ed25519ph (RFC 8032 §5.1, HashEdDSA, FIPS 186-5
 *   §7.8.2) over the caller's 64-byte SHA-512 digest. AWS "still performs the SHA-512 prehash",
 *   so the signed value is PH(digest) = SHA-512(digest): the input is hashed twice (API
 *   Reference, Sign `MessageType`). node:crypto on Node 20 (OpenSSL 3.0) has no Ed25519ph
 *   (OpenSSL added the instance parameter in 3.2), so this one comes from @noble/curves (the
 *   audited curve library @noble/post-quantum is built on), loaded on first use and checked against
 *   RFC 8032 §7.3 (test/local-kms/pq-vectors.test.ts).
 */

let ph: Promise<typeof import('@noble/curves/ed25519.js')> | undefined;
const nobleEd25519 = () => (ph ??= import('@noble/curves/ed25519.js'));

/** The 32-byte private key (RFC 8032 §5.1.5 "k") inside a node PKCS #8 Ed25519 key. */
function seedOf(privateDer: Uint8Array): Buffer {
  const jwk = createPrivateKey({ key: Buffer.from(privateDer), format: 'der', type: 'pkcs8' }).export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || !jwk.d) throw new Error('not an Ed25519 private key');
  return Buffer.from(jwk.d, 'base64url');
}

function rawPublicKey(publicDer: Uint8Array): Buffer {
  const jwk = createPublicKey({ key: Buffer.from(publicDer), format: 'der', type: 'spki' }).export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || !jwk.x) throw new Error('not an Ed25519 public key');
  return Buffer.from(jwk.x, 'base64url');
}

export async function ed25519Sign(privateDer: Uint8Array, algorithm: string, message: Uint8Array): Promise<Buffer> {
  if (algorithm === 'ED25519_SHA_512') {
    return nodeSign(null, message, createPrivateKey({ key: Buffer.from(privateDer), format: 'der', type: 'pkcs8' }));
  }
  const seed = seedOf(privateDer);
  try {
    return Buffer.from((await nobleEd25519()).ed25519ph.sign(message, seed));
  } finally {
    seed.fill(0);
  }
}

export async function ed25519Verify(publicDer: Uint8Array, algorithm: string, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
  try {
    if (algorithm === 'ED25519_SHA_512') {
      return nodeVerify(null, message, createPublicKey({ key: Buffer.from(publicDer), format: 'der', type: 'spki' }), signature);
    }
    return (await nobleEd25519()).ed25519ph.verify(signature, message, rawPublicKey(publicDer));
  } catch {
    return false;
  }
}
