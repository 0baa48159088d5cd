import { randomBytes } from 'node:crypto';
import type { Requester } from '../request-context.js';
import {
  IMPORT_PARAMETERS_TTL_MS,
  canonicalMaterial,
  WRAPPING_ALGORITHMS,
  WRAPPING_KEY_SPECS,
  createWrappingKey,
  makeImportToken,
  readImportToken,
  unwrapKeyMaterial,
} from '../import.js';
import { Checks, validationError } from '../validate.js';
import type { KmsCore } from '../core.js';
import { importedByAnotherCopy } from '../multi-region.js';
import { DAY_MS, checkKeyId, err, newMaterialId, requireKeyId, str, time, type Blob, type KmsResponse, type Req } from './util.js';

/** Imported key material (API Reference: GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial). */

const EXPIRATION_MODELS = ['KEY_MATERIAL_EXPIRES', 'KEY_MATERIAL_DOES_NOT_EXPIRE'];

export async function getParametersForImport(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkKeyId(c, req.KeyId);
  c.required('wrappingAlgorithm', req.WrappingAlgorithm);
  c.oneOf('wrappingAlgorithm', str(req.WrappingAlgorithm), WRAPPING_ALGORITHMS);
  c.required('wrappingKeySpec', req.WrappingKeySpec);
  c.oneOf('wrappingKeySpec', str(req.WrappingKeySpec), WRAPPING_KEY_SPECS);
  c.done();
  const { key } = kms.resolve(String(req.KeyId), { alias: false }, who);
  const algorithm = String(req.WrappingAlgorithm);
  const spec = String(req.WrappingKeySpec);
  kms.authorize(who, 'kms:GetParametersForImport', key, {
    keys: { 'kms:WrappingAlgorithm': algorithm, 'kms:WrappingKeySpec': spec },
  });
  kms.requireExternal(key);
  kms.requireNotPendingDeletion(key);
  const pair = await createWrappingKey(spec);
  const current = kms.keys.get(key.keyId);
  if (!current) throw err('NotFoundException', `Key '${key.arn}' does not exist`);
  const expiresAt = kms.clock() + IMPORT_PARAMETERS_TTL_MS;
  const tokenId = randomBytes(16).toString('hex');
  kms.commit(current, {
    pendingImport: { tokenId, wrappingAlgorithm: algorithm, wrappingKeySpec: spec, ...pair, expiresAt },
  });
  const token = makeImportToken({ keyId: key.keyId, tokenId, expiresAt }, (b) => kms.store.tokenMac(b));
  return { KeyId: key.arn, ImportToken: token, PublicKey: pair.publicKey, ParametersValidTo: new Date(expiresAt) };
}

export async function importKeyMaterial(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkKeyId(c, req.KeyId);
  c.required('importToken', req.ImportToken);
  c.length('importToken', req.ImportToken, 1, 6144);
  c.required('encryptedKeyMaterial', req.EncryptedKeyMaterial);
  c.length('encryptedKeyMaterial', req.EncryptedKeyMaterial, 1, 6144);
  c.oneOf('expirationModel', str(req.ExpirationModel), EXPIRATION_MODELS);
  c.done();
  const { key } = kms.resolve(String(req.KeyId), { alias: false }, who);
  const validTo = time(req.ValidTo);
  // API reference, ImportKeyMaterial: "The default is KEY_MATERIAL_EXPIRES", which needs ValidTo.
  const model = (str(req.ExpirationModel) as 'KEY_MATERIAL_EXPIRES' | 'KEY_MATERIAL_DOES_NOT_EXPIRE' | undefined) ?? 'KEY_MATERIAL_EXPIRES';
  kms.authorize(who, 'kms:ImportKeyMaterial', key, {
    keys: {
      'kms:ExpirationModel': model,
      ...(validTo !== undefined ? { 'kms:ValidTo': String(Math.floor(validTo / 1000)) } : {}),
    },
  });
  kms.requireExternal(key);
  kms.requireNotPendingDeletion(key);
  const now = kms.clock();
  if (model === 'KEY_MATERIAL_EXPIRES') {
    if (validTo === undefined) throw validationError('ValidTo is required when ExpirationModel is KEY_MATERIAL_EXPIRES.');
    if (validTo <= now) throw validationError('ValidTo must be a time in the future.');
    if (validTo > now + 365 * DAY_MS) throw validationError('ValidTo must be at most 365 days after the request.');
  } else if (validTo !== undefined) {
    throw validationError('ValidTo must not be set when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE.');
  }
  const token = readImportToken(Buffer.from(req.ImportToken as Blob), (b) => kms.store.tokenMac(b));
  if (!token || token.keyId !== key.keyId) {
    throw err('InvalidImportTokenException', 'The import token is not valid for this KMS key.');
  }
  if (token.expiresAt <= now) {
    throw err('ExpiredImportTokenException', 'The import token has expired. Call GetParametersForImport for a new import token and public key, and wrap the key material again.');
  }
  const pending = key.pendingImport;
  if (!pending || pending.tokenId !== token.tokenId) {
    throw err('InvalidImportTokenException', 'The import token is not valid for this KMS key; use the import token from the latest GetParametersForImport response.');
  }
  const material = unwrapKeyMaterial(pending.wrappingAlgorithm, pending.privateKey, Buffer.from(req.EncryptedKeyMaterial as Blob));
  if (!material) {
    throw err('InvalidCiphertextException', `The encrypted key material could not be unwrapped with the ${pending.wrappingAlgorithm} wrapping key.`);
  }
  const canonical = canonicalMaterial(key.keySpec, material);
  if ('error' in canonical) {
    material.fill(0);
    throw err('IncorrectKeyMaterialException', canonical.error);
  }
  const fingerprint = kms.store.fingerprint(key.keyId, canonical.secret);
  // Related multi-Region keys must hold the same material (API Reference, ReplicateKey): a copy
  // importing first sets it for all of them, with one key material id, so ciphertext made in any
  // Region names material every copy has.
  const previous = key.imported ?? (key.multiRegion ? importedByAnotherCopy(kms, key) : undefined);
  if (previous && previous.fingerprint !== fingerprint) {
    material.fill(0);
    canonical.secret.fill(0);
    throw err('IncorrectKeyMaterialException', 'The key material is not the key material previously imported into this KMS key.');
  }
  const materialId = previous?.materialId ?? newMaterialId();
  const imported = { materialId, fingerprint, expirationModel: model, ...(validTo !== undefined ? { validTo } : {}) };
  kms.commit(key, {
    materials: [{ id: materialId, createdAt: now, secret: canonical.secret }],
    imported,
    ...(canonical.publicKey ? { publicKey: canonical.publicKey } : {}),
  });
  return { KeyId: key.arn, KeyMaterialId: materialId };
}

export async function deleteImportedKeyMaterial(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const { key } = kms.resolve(requireKeyId(req.KeyId), { alias: false }, who);
  kms.authorize(who, 'kms:DeleteImportedKeyMaterial', key);
  kms.requireExternal(key);
  const out: KmsResponse = { KeyId: key.arn };
  if (key.imported) out.KeyMaterialId = key.imported.materialId;
  kms.commit(key, {
    materials: [],
    ...(key.imported ? { imported: { materialId: key.imported.materialId, fingerprint: key.imported.fingerprint } } : {}),
  });
  // Only after the deletion is durable: until then the old record is still the current one.
  for (const m of key.materials) m.secret.fill(0);
  return out;
}
