/**
 * Multi-Region keys over HTTP: one server, the Region of each request taken from its SigV4
 * credential scope, with @aws-sdk/client-kms clients of two Regions and the AWS CLI (skipped when
 * no `aws` command is installed).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  KMSClient,
  ListKeysCommand,
  ReplicateKeyCommand,
  UpdatePrimaryRegionCommand,
} from '@aws-sdk/client-kms';
import { startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { ACCOUNT, expectAwsError, tempDir } from './helpers.js';
import { hasAwsCli } from '../support/aws-cli.js';


const credentials = { accessKeyId: 'AKIDMULTIREGION', secretAccessKey: 'x' };

describe('multi-Region keys over HTTP with @aws-sdk/client-kms', () => {
  const tmp = tempDir('lkms-mrk-http-');
  let server: LocalKmsServer;
  let east: KMSClient;
  let west: KMSClient;
  beforeAll(async () => {
    server = await startLocalKmsServer({ port: 0, dataDir: join(tmp.dir, 'data') });
    east = new KMSClient({ endpoint: server.url, region: 'us-east-1', credentials, maxAttempts: 1 });
    west = new KMSClient({ endpoint: server.url, region: 'eu-west-1', credentials, maxAttempts: 1 });
  });
  afterAll(async () => {
    east?.destroy();
    west?.destroy();
    await server?.close();
    tmp.cleanup();
  });

  it('SDK clients of two Regions at one endpoint: replicate, decrypt in the other Region with one call there and none in the first, count per Region', async () => {
    const primary = (await east.send(new CreateKeyCommand({ MultiRegion: true }))).KeyMetadata!;
    const replica = (await east.send(new ReplicateKeyCommand({ KeyId: primary.Arn, ReplicaRegion: 'eu-west-1' }))).ReplicaKeyMetadata!;
    expect(replica.Arn).toBe(`arn:aws:kms:eu-west-1:${ACCOUNT}:key/${primary.KeyId}`);
    expect(replica.MultiRegionConfiguration?.MultiRegionKeyType).toBe('REPLICA');
    const { CiphertextBlob } = await east.send(new EncryptCommand({ KeyId: primary.Arn, Plaintext: Buffer.from('over http'), EncryptionContext: { a: '1' } }));
    const before = server.service.callCounts();
    const out = await west.send(new DecryptCommand({ KeyId: replica.Arn, CiphertextBlob, EncryptionContext: { a: '1' } }));
    expect(Buffer.from(out.Plaintext!).toString()).toBe('over http');
    expect(out.KeyId).toBe(replica.Arn);
    const after = server.service.callCounts();
    expect((after['eu-west-1']?.Decrypt ?? 0) - (before['eu-west-1']?.Decrypt ?? 0)).toBe(1);
    expect(after['us-east-1']).toEqual(before['us-east-1']);
    // The eu-west-1 client sees eu-west-1's keys only.
    const westKeys = (await west.send(new ListKeysCommand({}))).Keys!.map((k) => k.KeyArn);
    expect(westKeys).toContain(replica.Arn);
    expect(westKeys).not.toContain(primary.Arn);
    await expectAwsError(west.send(new DescribeKeyCommand({ KeyId: primary.Arn })), 'NotFoundException');
    await west.send(new UpdatePrimaryRegionCommand({ KeyId: replica.Arn, PrimaryRegion: 'us-east-1' })).then(
      () => expect.fail('a replica cannot hand over the primary role'),
      (e: Error) => expect(e.name).toBe('UnsupportedOperationException'),
    );
  });

  it('the data directory keeps both Regions across a restart', async () => {
    const primary = (await east.send(new CreateKeyCommand({ MultiRegion: true, Description: 'kept' }))).KeyMetadata!;
    await east.send(new ReplicateKeyCommand({ KeyId: primary.KeyId, ReplicaRegion: 'eu-west-1' }));
    await server.close();
    server = await startLocalKmsServer({ port: 0, dataDir: join(tmp.dir, 'data') });
    east.destroy();
    west.destroy();
    east = new KMSClient({ endpoint: server.url, region: 'us-east-1', credentials, maxAttempts: 1 });
    west = new KMSClient({ endpoint: server.url, region: 'eu-west-1', credentials, maxAttempts: 1 });
    const md = (await west.send(new DescribeKeyCommand({ KeyId: primary.KeyId }))).KeyMetadata!;
    expect(md.MultiRegionConfiguration).toEqual({
      MultiRegionKeyType: 'REPLICA',
      PrimaryKey: { Arn: primary.Arn, Region: 'us-east-1' },
      ReplicaKeys: [{ Arn: md.Arn, Region: 'eu-west-1' }],
    });
  });
});

describe.skipIf(!hasAwsCli())('multi-Region keys with the AWS CLI', () => {
  const tmp = tempDir('lkms-mrk-cli-');
  let server: LocalKmsServer;
  beforeAll(async () => {
    server = await startLocalKmsServer({ port: 0 });
  });
  afterAll(async () => {
    await server?.close();
    tmp.cleanup();
  });

  const aws = (args: string[]) =>
    new Promise<Record<string, any>>((resolve, reject) => {
      execFile('aws', ['kms', ...args, '--endpoint-url', server.url, '--output', 'json'], {
        timeout: 60_000,
        env: {
          PATH: process.env.PATH,
          HOME: tmp.dir,
          AWS_ACCESS_KEY_ID: credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
          AWS_CONFIG_FILE: join(tmp.dir, 'none'),
          AWS_SHARED_CREDENTIALS_FILE: join(tmp.dir, 'none'),
          AWS_EC2_METADATA_DISABLED: 'true',
          AWS_MAX_ATTEMPTS: '1',
          AWS_PAGER: '',
        },
      }, (err, stdout, stderr) => (err ? reject(new Error(`aws ${args[0]}: ${stderr}`)) : resolve(stdout.trim() ? JSON.parse(stdout) : {})));
    });

  it('create-key --multi-region, replicate-key --region us-east-1 --replica-region eu-west-1, describe-key in each Region shows the relationship', async () => {
    const created = (await aws(['create-key', '--multi-region', '--description', 'cli primary', '--region', 'us-east-1'])).KeyMetadata;
    expect(created.KeyId).toMatch(/^mrk-[0-9a-f]{32}$/);
    const replicated = await aws(['replicate-key', '--key-id', created.KeyId, '--region', 'us-east-1', '--replica-region', 'eu-west-1', '--description', 'cli replica']);
    const replicaArn = `arn:aws:kms:eu-west-1:${ACCOUNT}:key/${created.KeyId}`;
    expect(replicated.ReplicaKeyMetadata.Arn).toBe(replicaArn);
    const config = { PrimaryKey: { Arn: created.Arn, Region: 'us-east-1' }, ReplicaKeys: [{ Arn: replicaArn, Region: 'eu-west-1' }] };
    const inEast = (await aws(['describe-key', '--key-id', created.KeyId, '--region', 'us-east-1'])).KeyMetadata;
    expect(inEast).toMatchObject({ MultiRegion: true, Description: 'cli primary', MultiRegionConfiguration: { MultiRegionKeyType: 'PRIMARY', ...config } });
    const inWest = (await aws(['describe-key', '--key-id', created.KeyId, '--region', 'eu-west-1'])).KeyMetadata;
    expect(inWest).toMatchObject({ MultiRegion: true, Description: 'cli replica', MultiRegionConfiguration: { MultiRegionKeyType: 'REPLICA', ...config } });
    await aws(['update-primary-region', '--key-id', created.Arn, '--primary-region', 'eu-west-1', '--region', 'us-east-1']);
    expect((await aws(['describe-key', '--key-id', created.KeyId, '--region', 'eu-west-1'])).KeyMetadata.MultiRegionConfiguration.MultiRegionKeyType).toBe('PRIMARY');
  }, 120_000);
});
