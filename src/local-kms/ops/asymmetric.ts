import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Requester } from '../request-context.js';
import { KEY_SPECS, encapsulationAlgorithmsFor, encryptionAlgorithmsFor, hashOf, keyAgreementAlgorithmsFor, macAlgorithmsFor, signingAlgorithmsFor } from '../specs.js';
import { signMessage, verifyMessage } from '../asym.js';
import { ed25519Sign, ed25519Verify } from '../eddsa.js';
import { mlDsaSign, mlDsaVerify } from '../pq.js';
import { Checks, validationError } from '../validate.js';
import type { KeyRecord } from '../model.js';
import type { KmsCore } from '../core.js';
import { checkGrantTokens, checkKeyId, err, str, type Blob, type KmsResponse, type Req } from './util.js';

/**
 * Asymmetric signing and MAC operations (API Reference: Sign, Verify, GetPublicKey, GenerateMac,
 * VerifyMac).
 */

const SIGNING_ALGORITHMS = [
  'RSASSA_PSS_SHA_256',
  'RSASSA_PSS_SHA_384',
  'RSASSA_PSS_SHA_512',
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PKCS1_V1_5_SHA_384',
  'RSASSA_PKCS1_V1_5_SHA_512',
  'ECDSA_SHA_256',
  'ECDSA_SHA_384',
  'ECDSA_SHA_512',
  'SM2DSA',
  'ML_DSA_SHAKE_256',
  'ED25519_SHA_512',
  'ED25519_PH_SHA_512',
];

type MessageType = 'RAW' | 'DIGEST' | 'EXTERNAL_MU';

/**
 * The message types each signing algorithm takes (API Reference, Sign `MessageType`):
 * - ML_DSA_SHAKE_256: RAW (up to 4096 bytes) or EXTERNAL_MU (64 bytes, FIPS 204 §6.2 mu); ML-DSA
 *   has no DIGEST form in KMS ("this signing is different from HashML-DSA", Developer Guide,
 *   "ML-DSA keys");
 * - ED25519_SHA_512 "requires MessageType:RAW", ED25519_PH_SHA_512 "requires MessageType:DIGEST"
 *   (a 64-byte SHA-512 digest), "These message types cannot be used interchangeably" (CreateKey
 *   `KeySpec`);
 * - every other algorithm: RAW or DIGEST.
 * Which exception AWS answers for a mismatch the reference does not say; the local KMS answers
 * InvalidKeyUsageException, as for EXTERNAL_MU with a key that is not ML-DSA.
 */
function messageTypesOf(algorithm: string): readonly MessageType[] {
  if (algorithm === 'ML_DSA_SHAKE_256') return ['RAW', 'EXTERNAL_MU'];
  if (algorithm === 'ED25519_SHA_512') return ['RAW'];
  if (algorithm === 'ED25519_PH_SHA_512') return ['DIGEST'];
  return ['RAW', 'DIGEST'];
}
const MAC_ALGORITHMS = ['HMAC_SHA_224', 'HMAC_SHA_256', 'HMAC_SHA_384', 'HMAC_SHA_512'];

function signChecks(req: Req, c: Checks): void {
  checkKeyId(c, req.KeyId);
  c.required('message', req.Message);
  c.length('message', req.Message, 1, 4096);
  c.oneOf('messageType', str(req.MessageType), ['RAW', 'DIGEST', 'EXTERNAL_MU']);
  c.required('signingAlgorithm', req.SigningAlgorithm);
  c.oneOf('signingAlgorithm', str(req.SigningAlgorithm), SIGNING_ALGORITHMS);
  checkGrantTokens(c, req.GrantTokens);
}

function signingKey(kms: KmsCore, req: Req, who: Requester, action: string, operation: string): { key: KeyRecord; algorithm: string; messageType: MessageType } {
  const algorithm = String(req.SigningAlgorithm);
  const messageType = (str(req.MessageType) ?? 'RAW') as MessageType;
  const { key, alias } = kms.resolve(String(req.KeyId), { alias: true }, who);
  kms.authorize(who, action, key, { keys: { 'kms:SigningAlgorithm': algorithm, 'kms:MessageType': messageType } }, alias);
  kms.requireEnabled(key);
  kms.requireUsage(key, 'SIGN_VERIFY', operation);
  if (!signingAlgorithmsFor(key.keySpec).includes(algorithm)) {
    throw err('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${key.keySpec}.`);
  }
  if (!messageTypesOf(algorithm).includes(messageType)) {
    if (messageType === 'EXTERNAL_MU') throw err('InvalidKeyUsageException', `MessageType EXTERNAL_MU is only valid for ML-DSA keys, not ${key.keySpec}.`);
    throw err('InvalidKeyUsageException', `MessageType ${messageType} is not valid with signing algorithm ${algorithm}; use MessageType ${messageTypesOf(algorithm).join(' or ')}.`);
  }
  if (messageType === 'DIGEST' && (req.Message as Blob).length !== hashOf(algorithm).bytes) {
    throw validationError(`Digest is invalid length for algorithm ${algorithm}.`);
  }
  if (messageType === 'EXTERNAL_MU' && (req.Message as Blob).length !== 64) {
    throw validationError('Message must be the 64-byte mu of FIPS 204 when MessageType is EXTERNAL_MU.');
  }
  return { key, algorithm, messageType };
}

/** Signs with the key's private key, by key family (asym.ts: RSA/ECDSA; eddsa.ts; pq.ts). */
async function signWith(key: KeyRecord, algorithm: string, messageType: MessageType, message: Blob): Promise<Buffer> {
  const secret = key.materials[0]!.secret;
  const family = KEY_SPECS[key.keySpec].family;
  if (family === 'ed25519') return ed25519Sign(secret, algorithm, message);
  if (family === 'mldsa') return mlDsaSign(secret, messageType as 'RAW' | 'EXTERNAL_MU', message);
  return signMessage(secret, algorithm, messageType as 'RAW' | 'DIGEST', message);
}

async function verifyWith(key: KeyRecord, algorithm: string, messageType: MessageType, message: Blob, signature: Blob): Promise<boolean> {
  const family = KEY_SPECS[key.keySpec].family;
  if (family === 'ed25519') return ed25519Verify(key.publicKey!, algorithm, message, signature);
  if (family === 'mldsa') return mlDsaVerify(key.publicKey!, messageType as 'RAW' | 'EXTERNAL_MU', message, signature);
  return verifyMessage(key.materials[0]!.secret, key.publicKey!, algorithm, messageType as 'RAW' | 'DIGEST', message, signature);
}

export async function sign(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  signChecks(req, c);
  c.done();
  const { key, algorithm, messageType } = signingKey(kms, req, who, 'kms:Sign', 'Sign');
  kms.dryRun(req);
  const signature = await signWith(key, algorithm, messageType, req.Message as Blob);
  return { KeyId: key.arn, Signature: signature, SigningAlgorithm: algorithm };
}

export async function verify(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  signChecks(req, c);
  c.required('signature', req.Signature);
  c.length('signature', req.Signature, 1, 6144);
  c.done();
  const { key, algorithm, messageType } = signingKey(kms, req, who, 'kms:Verify', 'Verify');
  kms.dryRun(req);
  const ok = await verifyWith(key, algorithm, messageType, req.Message as Blob, req.Signature as Blob);
  if (!ok) throw err('KMSInvalidSignatureException', 'The signature verification failed.');
  return { KeyId: key.arn, SignatureValid: true, SigningAlgorithm: algorithm };
}

export async function getPublicKey(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkKeyId(c, req.KeyId);
  checkGrantTokens(c, req.GrantTokens);
  c.done();
  const { key, alias } = kms.resolve(String(req.KeyId), { alias: true }, who);
  kms.authorize(who, 'kms:GetPublicKey', key, {}, alias);
  kms.requireEnabled(key);
  if (!key.publicKey) {
    throw err('UnsupportedOperationException', `${key.arn} key spec is ${key.keySpec}, which has no public key.`);
  }
  const out: KmsResponse = {
    KeyId: key.arn,
    PublicKey: key.publicKey,
    CustomerMasterKeySpec: key.keySpec,
    KeySpec: key.keySpec,
    KeyUsage: key.keyUsage,
  };
  // Each list only for its own usage (API Reference, GetPublicKey response).
  if (key.keyUsage === 'ENCRYPT_DECRYPT') out.EncryptionAlgorithms = encryptionAlgorithmsFor(key.keySpec);
  if (key.keyUsage === 'SIGN_VERIFY') out.SigningAlgorithms = signingAlgorithmsFor(key.keySpec);
  if (key.keyUsage === 'KEY_AGREEMENT') out.KeyAgreementAlgorithms = keyAgreementAlgorithmsFor(key.keyUsage);
  if (key.keyUsage === 'ENCAPSULATE_DECAPSULATE') out.EncapsulationAlgorithms = encapsulationAlgorithmsFor(key.keyUsage);
  return out;
}

function macKey(kms: KmsCore, req: Req, who: Requester, action: string, operation: string): { key: KeyRecord; algorithm: string } {
  const c = new Checks();
  checkKeyId(c, req.KeyId);
  c.required('message', req.Message);
  c.length('message', req.Message, 1, 4096);
  c.required('macAlgorithm', req.MacAlgorithm);
  c.oneOf('macAlgorithm', str(req.MacAlgorithm), MAC_ALGORITHMS);
  if (operation === 'VerifyMac') {
    c.required('mac', req.Mac);
    c.length('mac', req.Mac, 1, 6144);
  }
  checkGrantTokens(c, req.GrantTokens);
  c.done();
  const algorithm = String(req.MacAlgorithm);
  const { key, alias } = kms.resolve(String(req.KeyId), { alias: true }, who);
  kms.authorize(who, action, key, { keys: { 'kms:MacAlgorithm': algorithm } }, alias);
  kms.requireEnabled(key);
  kms.requireUsage(key, 'GENERATE_VERIFY_MAC', operation);
  if (!macAlgorithmsFor(key.keySpec).includes(algorithm)) {
    throw err('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${key.keySpec}.`);
  }
  kms.dryRun(req);
  return { key, algorithm };
}

function computeMac(key: KeyRecord, message: Blob): Buffer {
  return createHmac(KEY_SPECS[key.keySpec].hmacHash!, key.materials[0]!.secret).update(message).digest();
}

export async function generateMac(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const { key, algorithm } = macKey(kms, req, who, 'kms:GenerateMac', 'GenerateMac');
  return { Mac: computeMac(key, req.Message as Blob), MacAlgorithm: algorithm, KeyId: key.arn };
}

export async function verifyMac(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const { key, algorithm } = macKey(kms, req, who, 'kms:VerifyMac', 'VerifyMac');
  const expected = computeMac(key, req.Message as Blob);
  const got = Buffer.from(req.Mac as Blob);
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
    throw err('KMSInvalidMacException', 'The HMAC verification failed.');
  }
  return { KeyId: key.arn, MacValid: true, MacAlgorithm: algorithm };
}
