/** Keyrings: where data keys come from and how they are wrapped. */
export { KmsKeyring, KMS_PROVIDER_ID, MAX_REGION_CLIENTS, type KmsKeyringOptions, type KmsDiscoveryFilter } from './kms.js';
export {
  toKmsClient,
  createDefaultKmsClient,
  mapKmsError,
  type CountedKmsClient,
  type DefaultKmsClientOptions,
} from './kms-client.js';
export {
  parseKmsArn,
  parseKeyArn,
  kmsIdentifierKind,
  isMultiRegionKmsArn,
  isMultiRegionKmsIdentifier,
  type KmsArn,
  type KmsIdentifierKind,
} from './kms-arn.js';
export { mrkMatchForDecrypt, assertMrksAreUnique } from './kms-mrk.js';
export { RawAesKeyring, type RawAesKeyringOptions } from './raw-aes.js';
export { RawRsaKeyring, type RawRsaKeyringOptions, type RsaPadding } from './raw-rsa.js';
export { MultiKeyring, type MultiKeyringOptions } from './multi.js';
export { kmsCallsOf, type KmsCallCounter } from './common.js';
