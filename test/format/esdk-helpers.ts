/**
 * Test helpers for interop with the reference implementation (@aws-crypto/client-node 5.0.2):
 * a minimal raw-AES key wrap compatible with its RawAesKeyringNode, so our messages carry an
 * encrypted data key the ESDK can unwrap, and ESDK messages give up their data key to us.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import {
  AlgorithmSuiteIdentifier,
  buildClient,
  CommitmentPolicy,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
} from '@aws-crypto/client-node';
import { serializeContext } from '../../src/format/context.js';
import { generateSigningKey, SUITES, type EncryptionMaterials, type MessageHeader } from '../../src/format/index.js';
import type { EncryptedDataKey, EncryptionContext } from '../../src/types.js';

export const KEY_NAMESPACE = 'kms-envelope-test';
export const KEY_NAME = 'wrapping-key';
export const WRAPPING_KEY = Buffer.alloc(32, 0x42);

export function esdkKeyring(): RawAesKeyringNode {
  return new RawAesKeyringNode({
    keyName: KEY_NAME,
    keyNamespace: KEY_NAMESPACE,
    unencryptedMasterKey: new Uint8Array(WRAPPING_KEY),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
    utf8Sorting: true,
  });
}

/** Raw AES keyring wrap: provider info = key name | tag bits u32 | IV length u32 | IV; AAD = serialized context. */
export function wrapDataKey(dataKey: Uint8Array, context: Readonly<EncryptionContext>): EncryptedDataKey {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', WRAPPING_KEY, iv);
  c.setAAD(serializeContext(context));
  const ct = Buffer.concat([c.update(dataKey), c.final(), c.getAuthTag()]);
  const name = Buffer.from(KEY_NAME, 'utf8');
  const info = Buffer.alloc(name.length + 8 + 12);
  name.copy(info, 0);
  info.writeUInt32BE(128, name.length);
  info.writeUInt32BE(12, name.length + 4);
  iv.copy(info, name.length + 8);
  return { providerId: KEY_NAMESPACE, providerInfo: info, ciphertext: ct };
}

/** Inverse of wrapDataKey for the EDK the ESDK's RawAesKeyringNode wrote into `header`. */
export function unwrapDataKey(header: MessageHeader): Buffer {
  const edk = header.encryptedDataKeys.find((k) => k.providerId === KEY_NAMESPACE);
  if (edk === undefined) throw new Error('no raw AES EDK');
  const info = Buffer.from(edk.providerInfo);
  const n = info.length - 20;
  const iv = info.subarray(n + 8);
  const ct = Buffer.from(edk.ciphertext);
  const d = createDecipheriv('aes-256-gcm', WRAPPING_KEY, iv);
  d.setAAD(serializeContext(header.context));
  d.setAuthTag(ct.subarray(ct.length - 16));
  return Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]);
}

/** Fresh materials for a committing suite, wrapped for the ESDK raw AES keyring. */
export function makeMaterials(suiteId: number, context: EncryptionContext = {}): EncryptionMaterials {
  const suite = SUITES.get(suiteId)!;
  const dataKey = randomBytes(suite.keyLength);
  const full: EncryptionContext = { ...context };
  let signingKey;
  if (suite.signatureCurve !== undefined) {
    const k = generateSigningKey(suite);
    full['aws-crypto-public-key'] = k.publicKey;
    signingKey = k.privateKey;
  }
  return {
    suite,
    dataKey,
    encryptedDataKeys: [wrapDataKey(dataKey, full)],
    context: full,
    ...(signingKey !== undefined ? { signingKey } : {}),
  };
}

export const esdkStrict = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
export const esdkLegacy = buildClient(CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT);
export { AlgorithmSuiteIdentifier };
