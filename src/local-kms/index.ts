/**
 * `kms-envelope/local-kms`: an offline AWS KMS (JSON 1.1 protocol) with the key-management model
 * of AWS KMS, usable over HTTP (`startLocalKmsServer`) or in process (`LocalKms`).
 */
export { LocalKmsService, SUPPORTED_OPERATIONS, type LocalKmsServiceOptions, type KmsResponse } from './service.js';
export { startLocalKmsServer, type LocalKmsServer, type LocalKmsServerOptions } from './server.js';
export { LocalKms, type LocalKmsClient, type LocalKmsClientOptions, type LocalKmsOptions } from './client.js';
export { KmsServiceError } from './errors.js';
export type { Caller } from './policy-types.js';
export { defaultKeyPolicy, keyPolicyFor } from './generated-policies.js';
