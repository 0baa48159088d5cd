import { randomBytes } from 'node:crypto';
import type { KeyPairDer } from './asym.js';

/**
 * Post-quantum keys of the local KMS: ML-KEM (FIPS 203) and ML-DSA (FIPS 204).
 *
 * Node 20 has neither in node:crypto, so the arithmetic comes from @noble/post-quantum (audited,
 * written to FIPS 203/204, checked here against NIST's ACVP vectors: test/vectors/). It is loaded
 * with a dynamic import the first time a PQ key is created or used, so `import 'kms-envelope'` and
 * a local KMS that never sees such a key do not load it (test/package/module-graph.test.ts).
 *
 * Encodings (what GetPublicKey, GenerateDataKeyPair and the key store hold):
 * - public key: DER SubjectPublicKeyInfo, AlgorithmIdentifier = the NIST OID with absent
 *   parameters, subjectPublicKey = the raw FIPS encoding (ek of FIPS 203 §7.1, pk of FIPS 204
 *   Algorithm 22). IETF LAMPS: RFC 9881 (ML-DSA in X.509) and the ML-KEM certificate profile.
 * - private key: DER PKCS #8 OneAsymmetricKey whose privateKey is the `seed` choice, [0] IMPLICIT
 *   OCTET STRING: the 64-byte d||z of ML-KEM (FIPS 203 Algorithm 16), the 32-byte xi of ML-DSA
 *   (FIPS 204 Algorithm 1). The seed is the smallest form, and every other form derives from it.
 */

/** NIST Computer Security Objects Register: 2.16.840.1.101.3.4.4.{1,2,3} and 2.16.840.1.101.3.4.3.{17,18,19}. */
const OIDS: Record<string, string> = {
  'ML-KEM-512': '608648016503040401',
  'ML-KEM-768': '608648016503040402',
  'ML-KEM-1024': '608648016503040403',
  'ML-DSA-44': '608648016503040311',
  'ML-DSA-65': '608648016503040312',
  'ML-DSA-87': '608648016503040313',
};

/** Seed bytes of the PKCS #8 `seed` form. */
const seedLength = (parameterSet: string): number => (parameterSet.startsWith('ML-KEM') ? 64 : 32);

// ---- DER ------------------------------------------------------------------------------

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x100) return Buffer.from([0x81, n]);
  return Buffer.from([0x82, n >> 8, n & 0xff]);
}

const tlv = (tag: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);

function algorithmIdentifier(parameterSet: string): Buffer {
  const oid = OIDS[parameterSet];
  if (!oid) throw new Error(`no OID for ${parameterSet}`);
  return tlv(0x30, tlv(0x06, Buffer.from(oid, 'hex')));
}

export function encodeSpki(parameterSet: string, publicKey: Uint8Array): Buffer {
  return tlv(0x30, Buffer.concat([algorithmIdentifier(parameterSet), tlv(0x03, Buffer.concat([Buffer.from([0]), publicKey]))]));
}

export function encodePkcs8Seed(parameterSet: string, seed: Uint8Array): Buffer {
  if (seed.length !== seedLength(parameterSet)) throw new Error(`${parameterSet} seed must be ${seedLength(parameterSet)} bytes`);
  const version = tlv(0x02, Buffer.from([0]));
  return tlv(0x30, Buffer.concat([version, algorithmIdentifier(parameterSet), tlv(0x04, tlv(0x80, Buffer.from(seed)))]));
}

/** Reads one TLV at `o`; undefined when it does not fit in `b`. */
function readTlv(b: Uint8Array, o: number): { tag: number; start: number; end: number } | undefined {
  const tag = b[o];
  let len = b[o + 1];
  if (tag === undefined || len === undefined) return undefined;
  let start = o + 2;
  if (len >= 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 2) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) {
      const x = b[start + i];
      if (x === undefined) return undefined;
      len = (len << 8) | x;
    }
    start += n;
  }
  const end = start + len;
  return end <= b.length ? { tag, start, end } : undefined;
}

/** The parameter set and raw key of an ML-KEM/ML-DSA SubjectPublicKeyInfo; undefined for anything else. */
export function decodeSpki(der: Uint8Array): { parameterSet: string; publicKey: Uint8Array } | undefined {
  const outer = readTlv(der, 0);
  if (!outer || outer.tag !== 0x30 || outer.end !== der.length) return undefined;
  const alg = readTlv(der, outer.start);
  if (!alg || alg.tag !== 0x30) return undefined;
  const oid = readTlv(der, alg.start);
  if (!oid || oid.tag !== 0x06 || oid.end !== alg.end) return undefined;
  const oidHex = Buffer.from(der.subarray(oid.start, oid.end)).toString('hex');
  const parameterSet = Object.keys(OIDS).find((p) => OIDS[p] === oidHex);
  const bits = readTlv(der, alg.end);
  if (!parameterSet || !bits || bits.tag !== 0x03 || bits.end !== outer.end || der[bits.start] !== 0) return undefined;
  return { parameterSet, publicKey: der.subarray(bits.start + 1, bits.end) };
}

/** The seed of a PKCS #8 key written by encodePkcs8Seed (the local KMS's own material). */
export function decodePkcs8Seed(der: Uint8Array): { parameterSet: string; seed: Uint8Array } | undefined {
  const outer = readTlv(der, 0);
  if (!outer || outer.tag !== 0x30 || outer.end !== der.length) return undefined;
  const version = readTlv(der, outer.start);
  if (!version || version.tag !== 0x02) return undefined;
  const alg = readTlv(der, version.end);
  if (!alg || alg.tag !== 0x30) return undefined;
  const oid = readTlv(der, alg.start);
  if (!oid || oid.tag !== 0x06) return undefined;
  const oidHex = Buffer.from(der.subarray(oid.start, oid.end)).toString('hex');
  const parameterSet = Object.keys(OIDS).find((p) => OIDS[p] === oidHex);
  const octets = readTlv(der, alg.end);
  if (!parameterSet || !octets || octets.tag !== 0x04) return undefined;
  const seed = readTlv(der, octets.start);
  if (!seed || seed.tag !== 0x80 || seed.end !== octets.end || seed.end - seed.start !== seedLength(parameterSet)) return undefined;
  return { parameterSet, seed: der.subarray(seed.start, seed.end) };
}

// ---- the implementation, loaded on first use ----------------------------------------------

type Noble = {
  kem: typeof import('@noble/post-quantum/ml-kem.js');
  dsa: typeof import('@noble/post-quantum/ml-dsa.js');
};
let loading: Promise<Noble> | undefined;

/** Loads @noble/post-quantum once; true after the first PQ key was created or used. */
export function pqLoaded(): boolean {
  return loading !== undefined;
}

function noble(): Promise<Noble> {
  loading ??= Promise.all([import('@noble/post-quantum/ml-kem.js'), import('@noble/post-quantum/ml-dsa.js')]).then(([kem, dsa]) => ({ kem, dsa }));
  return loading;
}

async function kemOf(parameterSet: string) {
  const { kem } = await noble();
  const k = { 'ML-KEM-512': kem.ml_kem512, 'ML-KEM-768': kem.ml_kem768, 'ML-KEM-1024': kem.ml_kem1024 }[parameterSet];
  if (!k) throw new Error(`not an ML-KEM parameter set: ${parameterSet}`);
  return k;
}

async function dsaOf(parameterSet: string) {
  const { dsa } = await noble();
  const d = { 'ML-DSA-44': dsa.ml_dsa44, 'ML-DSA-65': dsa.ml_dsa65, 'ML-DSA-87': dsa.ml_dsa87 }[parameterSet];
  if (!d) throw new Error(`not an ML-DSA parameter set: ${parameterSet}`);
  return d;
}

/**
 * Expanded secret keys by stored seed (the material's Buffer, which lives as long as the key):
 * key generation from the seed costs as much as a signature, so it runs once per key and process.
 */
const expanded = new WeakMap<Uint8Array, { secretKey: Uint8Array; publicKey: Uint8Array }>();

async function keysOf(privateDer: Uint8Array): Promise<{ parameterSet: string; secretKey: Uint8Array; publicKey: Uint8Array }> {
  const parsed = decodePkcs8Seed(privateDer);
  if (!parsed) throw new Error('not an ML-KEM/ML-DSA private key of the local KMS');
  let keys = expanded.get(privateDer);
  if (!keys) {
    const impl = parsed.parameterSet.startsWith('ML-KEM') ? await kemOf(parsed.parameterSet) : await dsaOf(parsed.parameterSet);
    keys = impl.keygen(parsed.seed);
    expanded.set(privateDer, keys);
  }
  return { parameterSet: parsed.parameterSet, ...keys };
}

/** A fresh key pair from a random seed (FIPS 203 §7.1 / FIPS 204 Algorithm 1, RBG from node:crypto). */
export async function generatePqKeyPair(parameterSet: string): Promise<KeyPairDer> {
  const seed = randomBytes(seedLength(parameterSet));
  const impl = parameterSet.startsWith('ML-KEM') ? await kemOf(parameterSet) : await dsaOf(parameterSet);
  const { publicKey } = impl.keygen(seed);
  const privateKey = encodePkcs8Seed(parameterSet, seed);
  seed.fill(0);
  return { privateKey, publicKey: encodeSpki(parameterSet, publicKey) };
}

/** ML-KEM.Encaps (FIPS 203 Algorithm 20) to the public key of `publicDer`. */
export async function mlKemEncapsulate(publicDer: Uint8Array): Promise<{ sharedSecret: Buffer; ciphertext: Buffer }> {
  const spki = decodeSpki(publicDer);
  if (!spki || !spki.parameterSet.startsWith('ML-KEM')) throw new Error('not an ML-KEM public key');
  const { cipherText, sharedSecret } = (await kemOf(spki.parameterSet)).encapsulate(spki.publicKey);
  return { sharedSecret: Buffer.from(sharedSecret), ciphertext: Buffer.from(cipherText) };
}

/** Ciphertext bytes of each ML-KEM parameter set (FIPS 203 Table 3). */
export const ML_KEM_CIPHERTEXT_BYTES: Readonly<Record<string, number>> = { 'ML-KEM-512': 768, 'ML-KEM-768': 1088, 'ML-KEM-1024': 1568 };

/**
 * ML-KEM.Decaps (FIPS 203 Algorithm 21). A ciphertext of the right length always yields 32 bytes:
 * a wrong or altered one yields the implicit-rejection value, never an error (FIPS 203 §6.3).
 * undefined: the ciphertext length does not fit the parameter set.
 */
export async function mlKemDecapsulate(privateDer: Uint8Array, ciphertext: Uint8Array): Promise<Buffer | undefined> {
  const { parameterSet, secretKey } = await keysOf(privateDer);
  if (ciphertext.length !== ML_KEM_CIPHERTEXT_BYTES[parameterSet]) return undefined;
  return Buffer.from((await kemOf(parameterSet)).decapsulate(ciphertext, secretKey));
}

/**
 * ML-DSA signatures as AWS KMS makes them (Developer Guide, "ML-DSA keys"): MessageType RAW is
 * ML-DSA.Sign (FIPS 204 Algorithm 2) over the message with an empty context string; EXTERNAL_MU is
 * ML-DSA.Sign_internal (Algorithm 7) over the caller's 64-byte mu = H(tr || M') (§6.2, step 6),
 * which gives the same signature as RAW for the same message. Hedged: fresh randomness per
 * signature (FIPS 204 §3.4, the default variant).
 */
export async function mlDsaSign(privateDer: Uint8Array, messageType: 'RAW' | 'EXTERNAL_MU', message: Uint8Array): Promise<Buffer> {
  const { parameterSet, secretKey } = await keysOf(privateDer);
  const dsa = await dsaOf(parameterSet);
  const sig = messageType === 'RAW' ? dsa.sign(message, secretKey) : dsa.internal.sign(message, secretKey, { externalMu: true });
  return Buffer.from(sig);
}

/** ML-DSA.Verify (Algorithm 3) or, for EXTERNAL_MU, Verify_internal (Algorithm 8) over mu. */
export async function mlDsaVerify(publicDer: Uint8Array, messageType: 'RAW' | 'EXTERNAL_MU', message: Uint8Array, signature: Uint8Array): Promise<boolean> {
  const spki = decodeSpki(publicDer);
  if (!spki || !spki.parameterSet.startsWith('ML-DSA')) throw new Error('not an ML-DSA public key');
  const dsa = await dsaOf(spki.parameterSet);
  try {
    return messageType === 'RAW'
      ? dsa.verify(signature, message, spki.publicKey)
      : dsa.internal.verify(signature, message, spki.publicKey, { externalMu: true });
  } catch {
    return false; // a signature of the wrong length
  }
}
