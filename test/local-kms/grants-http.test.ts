/**
 * Grants end to end: the local KMS over HTTP, @aws-sdk/client-kms as the client, two principals
 * told apart by their access keys (principals file with secrets, so every signature is checked).
 * The key policy gives the application role nothing; a grant from the account root is its only
 * way in, limited to one tenant's encryption context, and gone after RetireGrant / RevokeGrant.
 * Includes a kms-envelope round trip (Envelope + KmsKeyring) as the grantee.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateGrantCommand,
  CreateKeyCommand,
  DecryptCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  KMSClient,
  ListGrantsCommand,
  ListRetirableGrantsCommand,
  RetireGrantCommand,
  RevokeGrantCommand,
} from '@aws-sdk/client-kms';
import { startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { Envelope, KmsKeyring } from '../../src/index.js';
import { ACCOUNT, expectAwsError, tempDir } from './helpers.js';

const ids = {
  root: { key: 'AKIAGRANTROOT0000001', secret: 'grant-root-secret-1', arn: `arn:aws:iam::${ACCOUNT}:root` },
  app: { key: 'AKIAGRANTAPP00000001', secret: 'grant-app-secret-01', arn: `arn:aws:iam::${ACCOUNT}:role/TenantApp` },
} as const;
type Who = keyof typeof ids;

const tmp = tempDir('lkms-grants-http-');
let server: LocalKmsServer;
let keyId: string;
let keyArn: string;
const alpha = { tenant: 'alpha' };

function client(who: Who): KMSClient {
  return new KMSClient({
    endpoint: server.url,
    region: 'us-east-1',
    credentials: { accessKeyId: ids[who].key, secretAccessKey: ids[who].secret },
    maxAttempts: 1,
  });
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a failure');
}

/** AWS error names inside a kms-envelope error (a KmsError, or NoDecryptableKeyError wrapping them). */
function kmsErrorNames(e: unknown): string[] {
  const err = e as { kmsErrorName?: string; cause?: unknown };
  if (err.kmsErrorName !== undefined) return [err.kmsErrorName];
  if (err.cause instanceof AggregateError) return err.cause.errors.flatMap(kmsErrorNames);
  if (err.cause !== undefined) return kmsErrorNames(err.cause);
  return [];
}

beforeAll(async () => {
  const principalsFile = join(tmp.dir, 'principals.json');
  writeFileSync(principalsFile, JSON.stringify(Object.fromEntries(Object.values(ids).map((p) => [p.key, { arn: p.arn, secretAccessKey: p.secret }]))));
  server = await startLocalKmsServer({ port: 0, principalsFile, strictPrincipals: true, accountId: ACCOUNT, dataDir: join(tmp.dir, 'data') });
  // Default key policy: the account root only.
  const created = (await client('root').send(new CreateKeyCommand({ Description: 'grants e2e' }))).KeyMetadata!;
  keyId = created.KeyId!;
  keyArn = created.Arn!;
});

afterAll(async () => {
  await server?.close();
  tmp.cleanup();
});

describe('grants over HTTP with @aws-sdk/client-kms', () => {
  it('the grantee can use the key only through the grant, only for its tenant, until the grant is retired', async () => {
    const app = client('app');
    await expectAwsError(app.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: alpha })), 'AccessDeniedException');

    const created = await client('root').send(
      new CreateGrantCommand({
        KeyId: keyId,
        GranteePrincipal: ids.app.arn,
        RetiringPrincipal: ids.app.arn,
        Operations: ['GenerateDataKey', 'Decrypt'],
        Constraints: { EncryptionContextSubset: alpha },
        Name: 'tenant-alpha',
      }),
    );
    expect(created.GrantId).toMatch(/^[0-9a-f]{64}$/);

    const dk = await app.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: { ...alpha, file: 'a.txt' }, GrantTokens: [created.GrantToken!] }));
    const dec = await app.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob, EncryptionContext: { ...alpha, file: 'a.txt' } }));
    expect(Buffer.from(dec.Plaintext!)).toEqual(Buffer.from(dk.Plaintext!));
    // Another tenant's context, no context, an operation the grant lacks: denied.
    await expectAwsError(app.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: { tenant: 'beta' } })), 'AccessDeniedException');
    await expectAwsError(app.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' })), 'AccessDeniedException');
    await expectAwsError(app.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x'), EncryptionContext: alpha })), 'AccessDeniedException');
    // Grant management stays with the key policy.
    await expectAwsError(app.send(new ListGrantsCommand({ KeyId: keyId })), 'AccessDeniedException');
    await expectAwsError(app.send(new RevokeGrantCommand({ KeyId: keyId, GrantId: created.GrantId! })), 'AccessDeniedException');
    await expectAwsError(app.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: alpha, GrantTokens: ['bm90IGEgdG9rZW4='] })), 'InvalidGrantTokenException');

    const listed = await client('root').send(new ListGrantsCommand({ KeyId: keyId }));
    expect(listed.Grants!.map((g) => [g.GrantId, g.Name, g.GranteePrincipal, g.Operations, g.Constraints])).toEqual([
      [created.GrantId, 'tenant-alpha', ids.app.arn, ['GenerateDataKey', 'Decrypt'], { EncryptionContextSubset: alpha }],
    ]);
    expect(listed.Grants![0]!.CreationDate).toBeInstanceOf(Date);
    const retirable = await app.send(new ListRetirableGrantsCommand({ RetiringPrincipal: ids.app.arn }));
    expect(retirable.Grants!.map((g) => g.GrantId)).toEqual([created.GrantId]);

    // The grantee, as retiring principal, retires its own grant with the token.
    await app.send(new RetireGrantCommand({ GrantToken: created.GrantToken! }));
    await expectAwsError(app.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob, EncryptionContext: { ...alpha, file: 'a.txt' } })), 'AccessDeniedException');
    expect((await client('root').send(new ListGrantsCommand({ KeyId: keyId }))).Grants).toEqual([]);
  });

  it('a kms-envelope round trip as the grantee, and none after RevokeGrant', async () => {
    const { GrantId } = await client('root').send(
      new CreateGrantCommand({ KeyId: keyId, GranteePrincipal: ids.app.arn, Operations: ['GenerateDataKey', 'Decrypt'], Constraints: { EncryptionContextSubset: alpha } }),
    );
    // The key ARN: a KMS keyring decrypts only EDKs naming a configured key ARN (aws-kms-keyring.md).
    const envelope = () => new Envelope({ keyring: new KmsKeyring({ keyId: keyArn, client: client('app') }), cache: false });
    const plaintext = Buffer.from('tenant alpha secret document');
    const message = await envelope().encrypt(plaintext, { context: { ...alpha, doc: '1' } });
    const out = await envelope().decrypt(message);
    expect(Buffer.from(out.plaintext)).toEqual(plaintext);
    // Outside the granted tenant the keyring gets AccessDenied from KMS.
    expect(kmsErrorNames(await failure(envelope().encrypt(plaintext, { context: { tenant: 'beta' } })))).toEqual(['AccessDeniedException']);

    await client('root').send(new RevokeGrantCommand({ KeyId: keyId, GrantId: GrantId! }));
    expect(kmsErrorNames(await failure(envelope().decrypt(message)))).toEqual(['AccessDeniedException']);
    expect(kmsErrorNames(await failure(envelope().encrypt(plaintext, { context: alpha })))).toEqual(['AccessDeniedException']);
  });

  it('malformed grant requests answer with the AWS exception names', async () => {
    const root = client('root');
    await expectAwsError(root.send(new CreateGrantCommand({ KeyId: keyId, GranteePrincipal: ids.app.arn, Operations: ['Sign'] })), 'ValidationException');
    await expectAwsError(root.send(new CreateGrantCommand({ KeyId: keyId, GranteePrincipal: 'app', Operations: ['Decrypt'] })), 'InvalidArnException');
    await expectAwsError(root.send(new CreateGrantCommand({ KeyId: keyId, GranteePrincipal: ids.app.arn, Operations: ['CreateGrant'] })), 'ValidationException');
    await expectAwsError(root.send(new RetireGrantCommand({ GrantToken: 'AAAA' })), 'InvalidGrantTokenException');
    await expectAwsError(root.send(new RevokeGrantCommand({ KeyId: keyId, GrantId: '0'.repeat(64) })), 'InvalidGrantIdException');
    await expectAwsError(root.send(new ListGrantsCommand({ KeyId: keyId, Marker: 'not.issued' })), 'InvalidMarkerException');
  });
});
