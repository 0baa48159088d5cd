import type { Requester } from '../request-context.js';
import { encapsulationAlgorithmsFor } from '../specs.js';
import { ML_KEM_CIPHERTEXT_BYTES, mlKemDecapsulate, mlKemEncapsulate } from '../pq.js';
import { KEY_SPECS } from '../specs.js';
import { Checks } from '../validate.js';
import type { KeyRecord } from '../model.js';
import type { KmsCore } from '../core.js';
import { checkGrantTokens, checkKeyId, err, str, type Blob, type KmsResponse, type Req } from './util.js';

/**
 * Key encapsulation with ML-KEM keys (API Reference: Encapsulate, Decapsulate; Developer Guide,
 * "ML-KEM keys"). Both need a key with KeyUsage ENCAPSULATE_DECAPSULATE and EncapsulationAlgorithm
 * ML_KEM, the only value of the EncapsulationAlgorithmSpec enum.
 * - Permissions kms:Encapsulate / kms:Decapsulate (key policy, or a grant for that operation).
 * - Cross-account use: yes (key ARN or alias ARN).
 * - Key states as for the other cryptographic operations: Disabled is DisabledException, pending
 *   deletion KMSInvalidStateException.
 * - A key of another usage: InvalidKeyUsageException.
 * - Decapsulate: a SharedSecretCiphertextBlob whose length does not fit the key spec is
 *   InvalidCiphertextException; any other ciphertext gives 32 bytes (FIPS 203 implicit rejection),
 *   so a wrong or altered ciphertext is not detected here: the two parties must confirm they hold
 *   the same secret.
 * Checks come in the order of core.ts; DryRun answers after every check passed.
 */

const ENCAPSULATION_ALGORITHMS = ['ML_KEM'];

function kemKey(kms: KmsCore, req: Req, who: Requester, action: string, operation: string): KeyRecord {
  const algorithm = String(req.EncapsulationAlgorithm);
  const { key, alias } = kms.resolve(String(req.KeyId), { alias: true }, who);
  kms.authorize(who, action, key, {}, alias);
  kms.requireEnabled(key);
  kms.requireUsage(key, 'ENCAPSULATE_DECAPSULATE', operation);
  if (!encapsulationAlgorithmsFor(key.keyUsage).includes(algorithm)) {
    throw err('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${key.keySpec}.`);
  }
  return key;
}

function checks(req: Req, c: Checks): void {
  checkKeyId(c, req.KeyId);
  c.required('encapsulationAlgorithm', req.EncapsulationAlgorithm);
  c.oneOf('encapsulationAlgorithm', str(req.EncapsulationAlgorithm), ENCAPSULATION_ALGORITHMS);
  checkGrantTokens(c, req.GrantTokens);
}

export async function encapsulate(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checks(req, c);
  c.done();
  const key = kemKey(kms, req, who, 'kms:Encapsulate', 'Encapsulate');
  kms.dryRun(req);
  const { sharedSecret, ciphertext } = await mlKemEncapsulate(key.publicKey!);
  return { KeyId: key.arn, SharedSecret: sharedSecret, SharedSecretCiphertextBlob: ciphertext, EncapsulationAlgorithm: 'ML_KEM' };
}

export async function decapsulate(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checks(req, c);
  c.required('sharedSecretCiphertextBlob', req.SharedSecretCiphertextBlob);
  // CiphertextType: 1-6144 bytes (API Reference); the largest ML-KEM ciphertext is 1568.
  c.length('sharedSecretCiphertextBlob', req.SharedSecretCiphertextBlob, 1, 6144);
  c.done();
  const key = kemKey(kms, req, who, 'kms:Decapsulate', 'Decapsulate');
  const blob = req.SharedSecretCiphertextBlob as Blob;
  const expected = ML_KEM_CIPHERTEXT_BYTES[KEY_SPECS[key.keySpec].parameterSet!];
  if (blob.length !== expected) {
    throw err('InvalidCiphertextException', `SharedSecretCiphertextBlob must be ${expected} bytes for a ${key.keySpec} key.`);
  }
  kms.dryRun(req);
  const sharedSecret = await mlKemDecapsulate(kms.currentMaterial(key).secret, blob);
  if (!sharedSecret) throw err('InvalidCiphertextException', `SharedSecretCiphertextBlob must be ${expected} bytes for a ${key.keySpec} key.`);
  return { KeyId: key.arn, SharedSecret: sharedSecret, EncapsulationAlgorithm: 'ML_KEM' };
}
