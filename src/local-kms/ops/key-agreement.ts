import { refuseRecipient } from './crypto.js';
import type { Requester } from '../request-context.js';
import { KEY_SPECS, keyAgreementAlgorithmsFor } from '../specs.js';
import { ecdhSharedSecret, keySpecOfCurve } from '../ecdh.js';
import { Checks, validationError } from '../validate.js';
import type { KmsCore } from '../core.js';
import { checkGrantTokens, checkKeyId, err, str, type Blob, type KmsResponse, type Req } from './util.js';

/** Key agreement (API Reference: DeriveSharedSecret). */

/** KeyAgreementAlgorithmSpec enum (API Reference, DeriveSharedSecret). */
const KEY_AGREEMENT_ALGORITHMS = ['ECDH'];

/**
 * DeriveSharedSecret (API Reference, DeriveSharedSecret; Developer Guide, "Key type reference",
 * "Key states of AWS KMS keys"): ECDH between the private key of a KEY_AGREEMENT key and the
 * peer's public key; the answer carries the raw shared secret (ecdh.ts).
 * - Permission kms:DeriveSharedSecret (key policy or a grant), with the condition key
 *   kms:KeyAgreementAlgorithm (Developer Guide, "AWS KMS condition keys").
 * - A key of another usage is InvalidKeyUsageException, like Sign on an encryption key.
 * - Disabled: DisabledException; pending deletion or pending import: KMSInvalidStateException.
 * - A peer key that is not a DER SPKI, not EC, or not on the KMS key's curve: ValidationException,
 *   the exception the API Reference names for a public key that is not a DER SPKI (PublicKey:
 *   a twice-base64-encoded key from AWS CLI v1 is a ValidationException). InvalidKeyUsageException
 *   is about the KMS key, not the peer's.
 * - Recipient (Nitro Enclaves attestation): UnsupportedOperationException, as for Decrypt here.
 * Checks come in the order of the class comment; DryRun answers after every check passed.
 */
export async function deriveSharedSecret(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkKeyId(c, req.KeyId);
  c.required('keyAgreementAlgorithm', req.KeyAgreementAlgorithm);
  c.oneOf('keyAgreementAlgorithm', str(req.KeyAgreementAlgorithm), KEY_AGREEMENT_ALGORITHMS);
  c.required('publicKey', req.PublicKey);
  // PublicKeyType: 1-8192 bytes (API Reference, the same type as GetPublicKey's PublicKey).
  c.length('publicKey', req.PublicKey, 1, 8192);
  checkGrantTokens(c, req.GrantTokens);
  c.done();
  refuseRecipient(req);
  const algorithm = String(req.KeyAgreementAlgorithm);
  const { key, alias } = kms.resolve(String(req.KeyId), { alias: true }, who);
  kms.authorize(who, 'kms:DeriveSharedSecret', key, { keys: { 'kms:KeyAgreementAlgorithm': algorithm } }, alias);
  kms.requireEnabled(key);
  kms.requireUsage(key, 'KEY_AGREEMENT', 'DeriveSharedSecret');
  if (!keyAgreementAlgorithmsFor(key.keyUsage).includes(algorithm)) {
    throw err('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${key.keySpec}.`);
  }
  const curve = KEY_SPECS[key.keySpec].curve!;
  const result = ecdhSharedSecret(kms.currentMaterial(key).secret, curve, req.PublicKey as Blob);
  if (!result.ok) {
    if (result.problem === 'curve') {
      throw validationError(
        `The public key is on ${result.curve ? keySpecOfCurve(result.curve) : 'another curve'}; ${key.arn} is a ${key.keySpec} key and derives shared secrets only with public keys on the same curve.`,
      );
    }
    throw validationError('PublicKey must be a DER-encoded X.509 SubjectPublicKeyInfo (RFC 5280) holding a valid elliptic curve point.');
  }
  if (req.DryRun === true) {
    result.sharedSecret.fill(0);
    kms.dryRun(req);
  }
  return { KeyId: key.arn, SharedSecret: result.sharedSecret, KeyAgreementAlgorithm: algorithm, KeyOrigin: key.origin };
}
