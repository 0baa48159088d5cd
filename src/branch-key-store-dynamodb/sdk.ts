/**
 * Lazy access to the optional peer dependency `@aws-sdk/client-dynamodb`. The caller hands us a
 * DynamoDBClient, so the package is installed when a request is made; importing
 * `kms-envelope/branch-key-store-dynamodb` alone does not load it (as `kms-envelope/s3` does not
 * load the S3 client), and a missing package is reported with the command that installs it.
 */

export type DynamoDbModule = typeof import('@aws-sdk/client-dynamodb');

let sdk: Promise<DynamoDbModule> | undefined;

export function loadDynamoDb(): Promise<DynamoDbModule> {
  sdk ??= import('@aws-sdk/client-dynamodb').catch((err: unknown) => {
    sdk = undefined; // a later install can still succeed
    throw new Error(
      'kms-envelope/branch-key-store-dynamodb needs the optional peer dependency @aws-sdk/client-dynamodb: npm install @aws-sdk/client-dynamodb',
      { cause: err },
    );
  });
  return sdk;
}
