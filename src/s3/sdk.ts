/**
 * Lazy access to the optional peer dependencies `@aws-sdk/client-s3` and `@aws-sdk/lib-storage`.
 * `kms-envelope/s3` must load without them (they are optional peers); they are imported on the
 * first upload or download, and a missing package is reported with the command that installs it.
 */

export type S3Module = typeof import('@aws-sdk/client-s3');
type StorageModule = typeof import('@aws-sdk/lib-storage');

let s3: Promise<S3Module> | undefined;
let storage: Promise<StorageModule> | undefined;

const INSTALL = 'npm install @aws-sdk/client-s3 @aws-sdk/lib-storage';

function missing(name: string, err: unknown): Error {
  return new Error(`kms-envelope/s3 needs the optional peer dependency ${name}: ${INSTALL}`, { cause: err });
}

export function loadS3(): Promise<S3Module> {
  s3 ??= import('@aws-sdk/client-s3').catch((err: unknown) => {
    s3 = undefined; // a later install can still succeed
    throw missing('@aws-sdk/client-s3', err);
  });
  return s3;
}

export function loadStorage(): Promise<StorageModule> {
  storage ??= import('@aws-sdk/lib-storage').catch((err: unknown) => {
    storage = undefined;
    throw missing('@aws-sdk/lib-storage', err);
  });
  return storage;
}
