import { randomBytes } from 'node:crypto';
import { KmsServiceError } from '../errors.js';
import type { Requester } from '../request-context.js';
import { KEY_PAIR_SPECS, KEY_SPECS, encryptionAlgorithmsFor, rsaOaepMaxPlaintext } from '../specs.js';
import { openBlob, parseBlob, sealBlob } from '../blob.js';
import { generateKeyPairFor, rsaOaepDecrypt, rsaOaepEncrypt } from '../asym.js';
import { Checks, validationError } from '../validate.js';
import type { KeyRecord, MaterialRecord } from '../model.js';
import type { KmsCore } from '../core.js';
import { hsmOpenBlob, hsmSealBlob, keyStoreRandom, xksStoreOf } from '../custom-key-stores.js';
import { newRequestMetadata, xksOpenBlob, xksSealBlob } from '../xks-stores.js';
import { checkGrantTokens, checkKeyId, err, num, str, withMaterial, type Blob, type Context, type KmsResponse, type Req } from './util.js';

/**
 * Cryptographic operations with encryption keys (API Reference: Encrypt, Decrypt, ReEncrypt,
 * GenerateDataKey, GenerateDataKeyWithoutPlaintext, GenerateDataKeyPair,
 * GenerateDataKeyPairWithoutPlaintext, GenerateRandom).
 */

const ENCRYPTION_ALGORITHMS = ['SYMMETRIC_DEFAULT', 'RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'SM2PKE'];

/**
 * A symmetric ciphertext blob under `m`; for a key in a CloudHSM key store AES-GCM runs in its
 * token; for a key in an external key store the blob is encrypted again by its external key
 * (xks-stores.ts), the proxy told who asks (`who`) in which operation.
 */
async function sealWith(kms: KmsCore, key: KeyRecord, m: MaterialRecord, plaintext: Uint8Array, context: Context | undefined, who: Requester, operation: string): Promise<Buffer> {
  if (key.xksKeyId !== undefined) {
    const { rec, transport } = xksStoreOf(kms, key);
    return xksSealBlob(rec, transport, key, m, plaintext, context, newRequestMetadata(operation, who, key));
  }
  if (key.customKeyStoreId !== undefined) return hsmSealBlob(kms, key, m.id, plaintext, context);
  return sealBlob(key.keyId, m.id, m.secret, plaintext, context);
}

/** Checks shared by Encrypt and the ReEncrypt destination; returns the ciphertext. */
async function encryptWith(
  kms: KmsCore,
  who: Requester,
  key: KeyRecord,
  plaintext: Blob,
  context: Context | undefined,
  algorithm: string,
  operation: string,
): Promise<{ blob: Buffer; materialId?: string }> {
  kms.requireEnabled(key);
  kms.requireUsage(key, 'ENCRYPT_DECRYPT', operation);
  if (!encryptionAlgorithmsFor(key.keySpec).includes(algorithm)) {
    throw err('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${key.keySpec}.`);
  }
  if (key.keySpec === 'SYMMETRIC_DEFAULT') {
    const m = kms.currentMaterial(key);
    return { blob: await sealWith(kms, key, m, plaintext, context, who, operation), materialId: m.id };
  }
  if (context && Object.keys(context).length > 0) {
    throw validationError('EncryptionContext is not supported with asymmetric KMS keys.');
  }
  const max = rsaOaepMaxPlaintext(KEY_SPECS[key.keySpec].rsaBits!, algorithm);
  if (plaintext.length > max) {
    throw validationError(`Plaintext is ${plaintext.length} bytes; ${algorithm} with a ${key.keySpec} key encrypts at most ${max} bytes.`);
  }
  return { blob: rsaOaepEncrypt(key.publicKey!, algorithm, plaintext) };
}

/** Checks shared by Decrypt and the ReEncrypt source. */
async function decryptWith(
  kms: KmsCore,
  who: Requester,
  action: string,
  blob: Blob,
  keyIdIn: string | undefined,
  context: Context | undefined,
  algorithm: string,
  operation: string,
  /** ReEncrypt: the destination key, for kms:ReEncryptOnSameKey on the source's authorization too. */
  destinationKeyId?: string,
): Promise<{ key: KeyRecord; plaintext: Buffer; materialId?: string }> {
  // The documented kms:ReEncryptOnSameKey statement allows kms:ReEncrypt* (both permissions) on
  // the condition, so the ReEncryptFrom request carries it as well (Developer Guide, "AWS KMS
  // condition keys", kms:ReEncryptOnSameKey).
  const same = (key: KeyRecord) => (destinationKeyId !== undefined ? { 'kms:ReEncryptOnSameKey': key.keyId === destinationKeyId } : {});
  if (algorithm !== 'SYMMETRIC_DEFAULT') {
    if (keyIdIn === undefined) {
      throw validationError(`KeyId is required to decrypt with ${algorithm}: asymmetric ciphertext does not name its key.`);
    }
    const { key, alias } = kms.resolve(keyIdIn, { alias: true }, who);
    kms.authorize(who, action, key, { ...(context ? { encryptionContext: context } : {}), keys: { 'kms:EncryptionAlgorithm': algorithm, ...same(key) } }, alias);
    kms.requireEnabled(key);
    kms.requireUsage(key, 'ENCRYPT_DECRYPT', operation);
    if (!encryptionAlgorithmsFor(key.keySpec).includes(algorithm)) {
      throw err('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${key.keySpec}.`);
    }
    const plaintext = rsaOaepDecrypt(key.materials[0]!.secret, algorithm, blob);
    if (!plaintext) throw invalidCiphertext();
    return { key, plaintext };
  }
  const parsed = parseBlob(blob);
  let requested: { key: KeyRecord; alias?: string } | undefined;
  // The ciphertext names its key; a short key id naming it is accepted across accounts too (API
  // Reference, Decrypt and ReEncrypt "Cross-account use").
  if (keyIdIn !== undefined) requested = kms.resolve(keyIdIn, { alias: true, shortKeyId: true }, who);
  if (!parsed) {
    if (requested && requested.key.keySpec !== 'SYMMETRIC_DEFAULT') {
      throw err('InvalidKeyUsageException', `Algorithm SYMMETRIC_DEFAULT is incompatible with key spec ${requested.key.keySpec}.`);
    }
    throw invalidCiphertext();
  }
  if (requested && requested.key.keyId !== parsed.keyId) {
    throw err('IncorrectKeyException', 'The key ID in the request does not identify a KMS key that can perform this operation.');
  }
  const key = kms.keys.get(parsed.keyId);
  if (!key) throw err('NotFoundException', `Key '${kms.keyArn(parsed.keyId)}' does not exist`);
  kms.authorize(who, action, key, { encryptionContext: context ?? {}, keys: { 'kms:EncryptionAlgorithm': algorithm, ...same(key) } }, requested?.alias);
  kms.requireEnabled(key);
  kms.requireUsage(key, 'ENCRYPT_DECRYPT', operation);
  const material = key.materials.find((m) => m.id === parsed.materialId);
  let plaintext: Buffer | undefined;
  if (!material) plaintext = undefined;
  else if (key.xksKeyId !== undefined) {
    const { rec, transport } = xksStoreOf(kms, key);
    plaintext = await xksOpenBlob(rec, transport, key, blob, material, context, newRequestMetadata(operation, who, key));
  } else if (key.customKeyStoreId !== undefined) plaintext = hsmOpenBlob(kms, key, parsed, context);
  else plaintext = openBlob(parsed, material.secret, context);
  if (!plaintext) throw invalidCiphertext();
  return { key, plaintext, materialId: parsed.materialId };
}

export async function encrypt(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkKeyId(c, req.KeyId);
  c.required('plaintext', req.Plaintext);
  c.length('plaintext', req.Plaintext, 1, 4096);
  c.oneOf('encryptionAlgorithm', str(req.EncryptionAlgorithm), ENCRYPTION_ALGORITHMS);
  checkGrantTokens(c, req.GrantTokens);
  c.done();
  const algorithm = str(req.EncryptionAlgorithm) ?? 'SYMMETRIC_DEFAULT';
  const context = req.EncryptionContext as Context | undefined;
  const { key, alias } = kms.resolve(String(req.KeyId), { alias: true }, who);
  kms.authorize(who, 'kms:Encrypt', key, { encryptionContext: context ?? {}, keys: { 'kms:EncryptionAlgorithm': algorithm } }, alias);
  const out = await encryptWith(kms, who, key, req.Plaintext as Blob, context, algorithm, 'Encrypt');
  kms.dryRun(req);
  return withMaterial({ CiphertextBlob: out.blob, KeyId: key.arn, EncryptionAlgorithm: algorithm }, out.materialId);
}

/**
 * `Recipient` (Nitro Enclaves attestation; Decrypt, DeriveSharedSecret, GenerateDataKey,
 * GenerateDataKeyPair, GenerateRandom): AWS then returns the secret only encrypted to the
 * enclave's key (CiphertextForRecipient) and no plaintext. The local KMS has no attestation to
 * check, so it refuses the request rather than ever return the plaintext the caller asked to keep
 * out of reach.
 */
export function refuseRecipient(req: Req): void {
  if (req.Recipient !== undefined) throw err('UnsupportedOperationException', 'Recipient (Nitro Enclaves attestation) is not supported by the local KMS.');
}

export async function decrypt(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  c.required('ciphertextBlob', req.CiphertextBlob);
  c.length('ciphertextBlob', req.CiphertextBlob, 1, 6144);
  c.length('keyId', str(req.KeyId), 1, 2048);
  c.oneOf('encryptionAlgorithm', str(req.EncryptionAlgorithm), ENCRYPTION_ALGORITHMS);
  checkGrantTokens(c, req.GrantTokens);
  c.done();
  refuseRecipient(req);
  const algorithm = str(req.EncryptionAlgorithm) ?? 'SYMMETRIC_DEFAULT';
  const out = await decryptWith(
    kms,
    who,
    'kms:Decrypt',
    req.CiphertextBlob as Blob,
    str(req.KeyId),
    req.EncryptionContext as Context | undefined,
    algorithm,
    'Decrypt',
  );
  kms.dryRun(req);
  return withMaterial({ KeyId: out.key.arn, Plaintext: out.plaintext, EncryptionAlgorithm: algorithm }, out.materialId);
}

export async function reEncrypt(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  c.required('ciphertextBlob', req.CiphertextBlob);
  c.length('ciphertextBlob', req.CiphertextBlob, 1, 6144);
  c.length('sourceKeyId', str(req.SourceKeyId), 1, 2048);
  c.required('destinationKeyId', req.DestinationKeyId);
  c.length('destinationKeyId', str(req.DestinationKeyId), 1, 2048);
  c.oneOf('sourceEncryptionAlgorithm', str(req.SourceEncryptionAlgorithm), ENCRYPTION_ALGORITHMS);
  c.oneOf('destinationEncryptionAlgorithm', str(req.DestinationEncryptionAlgorithm), ENCRYPTION_ALGORITHMS);
  checkGrantTokens(c, req.GrantTokens);
  c.done();
  const srcAlg = str(req.SourceEncryptionAlgorithm) ?? 'SYMMETRIC_DEFAULT';
  const dstAlg = str(req.DestinationEncryptionAlgorithm) ?? 'SYMMETRIC_DEFAULT';
  const dstContext = req.DestinationEncryptionContext as Context | undefined;
  const { key: dst, alias: dstAlias } = kms.resolve(String(req.DestinationKeyId), { alias: true }, who);
  const src = await decryptWith(
    kms,
    who,
    'kms:ReEncryptFrom',
    req.CiphertextBlob as Blob,
    str(req.SourceKeyId),
    req.SourceEncryptionContext as Context | undefined,
    srcAlg,
    'ReEncrypt',
    dst.keyId,
  );
  try {
    kms.authorize(
      who,
      'kms:ReEncryptTo',
      dst,
      {
        encryptionContext: dstContext ?? {},
        keys: { 'kms:EncryptionAlgorithm': dstAlg, 'kms:ReEncryptOnSameKey': src.key.keyId === dst.keyId },
      },
      dstAlias,
    );
    const out = await encryptWith(kms, who, dst, src.plaintext, dstContext, dstAlg, 'ReEncrypt');
    kms.dryRun(req);
    const res: KmsResponse = {
      CiphertextBlob: out.blob,
      SourceKeyId: src.key.arn,
      KeyId: dst.arn,
      SourceEncryptionAlgorithm: srcAlg,
      DestinationEncryptionAlgorithm: dstAlg,
    };
    if (src.materialId) res.SourceKeyMaterialId = src.materialId;
    if (out.materialId) res.DestinationKeyMaterialId = out.materialId;
    return res;
  } finally {
    src.plaintext.fill(0);
  }
}

function dataKeyLength(req: Req): number {
  const c = new Checks();
  checkKeyId(c, req.KeyId);
  c.range('numberOfBytes', num(req.NumberOfBytes), 1, 1024);
  c.oneOf('keySpec', str(req.KeySpec), ['AES_256', 'AES_128']);
  checkGrantTokens(c, req.GrantTokens);
  c.done();
  if (req.NumberOfBytes !== undefined && req.KeySpec !== undefined) {
    throw validationError('Please specify either number of bytes or key spec, not both.');
  }
  if (req.NumberOfBytes === undefined && req.KeySpec === undefined) {
    throw validationError('Please specify either number of bytes or key spec.');
  }
  return num(req.NumberOfBytes) ?? (req.KeySpec === 'AES_128' ? 16 : 32);
}

async function dataKey(kms: KmsCore, req: Req, who: Requester, action: string, operation: string, withPlaintext: boolean): Promise<KmsResponse> {
  const length = dataKeyLength(req);
  if (withPlaintext) refuseRecipient(req);
  const context = req.EncryptionContext as Context | undefined;
  const { key, alias } = kms.resolve(String(req.KeyId), { alias: true }, who);
  kms.authorize(who, action, key, { encryptionContext: context ?? {}, keys: { 'kms:EncryptionAlgorithm': 'SYMMETRIC_DEFAULT' } }, alias);
  kms.requireEnabled(key);
  kms.requireUsage(key, 'ENCRYPT_DECRYPT', operation);
  kms.requireSymmetric(key, operation);
  kms.dryRun(req);
  const plaintext = randomBytes(length);
  const m = kms.currentMaterial(key);
  let out: KmsResponse;
  try {
    out = { CiphertextBlob: await sealWith(kms, key, m, plaintext, context, who, operation) };
  } catch (e) {
    plaintext.fill(0);
    throw e;
  }
  if (withPlaintext) out.Plaintext = plaintext;
  else plaintext.fill(0);
  out.KeyId = key.arn;
  out.KeyMaterialId = m.id;
  return out;
}

export async function generateDataKey(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  return dataKey(kms, req, who, 'kms:GenerateDataKey', 'GenerateDataKey', true);
}

export async function generateDataKeyWithoutPlaintext(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  return dataKey(kms, req, who, 'kms:GenerateDataKeyWithoutPlaintext', 'GenerateDataKeyWithoutPlaintext', false);
}

async function dataKeyPair(kms: KmsCore, req: Req, who: Requester, action: string, operation: string, withPlaintext: boolean): Promise<KmsResponse> {
  const c = new Checks();
  checkKeyId(c, req.KeyId);
  c.required('keyPairSpec', req.KeyPairSpec);
  c.oneOf('keyPairSpec', str(req.KeyPairSpec), [...KEY_PAIR_SPECS, 'SM2']);
  checkGrantTokens(c, req.GrantTokens);
  c.done();
  if (withPlaintext) refuseRecipient(req);
  const pairSpec = String(req.KeyPairSpec);
  if (pairSpec === 'SM2') throw err('UnsupportedOperationException', 'SM2 is only available in China Regions.');
  const context = req.EncryptionContext as Context | undefined;
  const { key, alias } = kms.resolve(String(req.KeyId), { alias: true }, who);
  kms.authorize(
    who,
    action,
    key,
    { encryptionContext: context ?? {}, keys: { 'kms:EncryptionAlgorithm': 'SYMMETRIC_DEFAULT', 'kms:DataKeyPairSpec': pairSpec } },
    alias,
  );
  kms.requireEnabled(key);
  kms.requireUsage(key, 'ENCRYPT_DECRYPT', operation);
  kms.requireSymmetric(key, operation);
  // "You cannot use an asymmetric KMS key or a KMS key in a custom key store" (API Reference,
  // GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext).
  if (key.customKeyStoreId !== undefined) {
    throw err('UnsupportedOperationException', `${key.arn} is in custom key store ${key.customKeyStoreId}; ${operation} cannot use a KMS key in a custom key store.`);
  }
  kms.dryRun(req);
  const pair = await generateKeyPairFor(pairSpec);
  const m = kms.currentMaterial(key);
  const out: KmsResponse = { PrivateKeyCiphertextBlob: await sealWith(kms, key, m, pair.privateKey, context, who, operation) };
  if (withPlaintext) out.PrivateKeyPlaintext = pair.privateKey;
  else pair.privateKey.fill(0);
  out.PublicKey = pair.publicKey;
  out.KeyId = key.arn;
  out.KeyPairSpec = pairSpec;
  out.KeyMaterialId = m.id;
  return out;
}

export async function generateDataKeyPair(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  return dataKeyPair(kms, req, who, 'kms:GenerateDataKeyPair', 'GenerateDataKeyPair', true);
}

export async function generateDataKeyPairWithoutPlaintext(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  return dataKeyPair(kms, req, who, 'kms:GenerateDataKeyPairWithoutPlaintext', 'GenerateDataKeyPairWithoutPlaintext', false);
}

export async function generateRandom(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  c.required('numberOfBytes', req.NumberOfBytes);
  c.range('numberOfBytes', num(req.NumberOfBytes), 1, 1024);
  c.done();
  refuseRecipient(req);
  // IAM policies alone authorize GenerateRandom (Developer Guide, "AWS KMS permissions").
  kms.authorizeIamOnly(who, 'GenerateRandom');
  if (req.CustomKeyStoreId !== undefined) return { Plaintext: keyStoreRandom(kms, String(req.CustomKeyStoreId), num(req.NumberOfBytes)!, kms.isForeign(who)) };
  return { Plaintext: randomBytes(num(req.NumberOfBytes)!) };
}

function invalidCiphertext(): KmsServiceError {
  // One message for every cause (wrong key material, wrong context, damaged bytes), as AWS does.
  return err('InvalidCiphertextException', 'The ciphertext is invalid, or the encryption context does not match.');
}
