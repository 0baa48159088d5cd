/**
 * `kms-envelope/s3`: encrypt while uploading to S3, decrypt while downloading.
 *
 * `@aws-sdk/client-s3` and `@aws-sdk/lib-storage` are optional peer dependencies, imported on
 * first use; importing this module does not load them.
 */
export { uploadEncrypted, type UploadEncryptedOptions, type UploadEncryptedResult, type S3ClientLike } from './upload.js';
export {
  downloadDecrypted,
  downloadDecryptedBuffer,
  type DownloadDecryptedOptions,
  type DownloadDecryptedBufferOptions,
  type DecryptedObjectStream,
} from './download.js';
export {
  MARKER_KEY,
  MARKER_VALUE,
  CONTENT_TYPE_KEY,
  PLAINTEXT_LENGTH_KEY,
  ENCRYPTED_CONTENT_TYPE,
  type EncryptedObjectInfo,
} from './metadata.js';
