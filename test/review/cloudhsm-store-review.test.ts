/**
 * Adversarial review of the local KMS's CloudHSM key stores (SoftHSM2 token) over HTTP with
 * @aws-sdk/client-kms: the KeyStorePassword never comes back (error messages included), and a few
 * state rules from the API Reference. Skipped when SoftHSM2 or pkcs11js is missing.
 */
import {
  CancelKeyDeletionCommand,
  ConnectCustomKeyStoreCommand,
  CreateCustomKeyStoreCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  DisconnectCustomKeyStoreCommand,
  EncryptCommand,
  EnableKeyRotationCommand,
  GetParametersForImportCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  UpdateCustomKeyStoreCommand,
  KMSClient,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalKmsServer } from '../../src/local-kms/index.js';
import { expectAwsError, startServer, tempDir } from '../local-kms/helpers.js';
import { USER_PIN, skipReason, softHsm, type SoftHsm } from '../local-kms/softhsm.js';

const CLUSTER = 'cluster-review12345a';
/** A second cluster (another token), for a key store in another Region. */
const WEST = 'cluster-reviewwest01';

describe.skipIf(skipReason !== undefined)(`CloudHSM key store review${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let hsm: SoftHsm;
  let data: ReturnType<typeof tempDir>;
  let server: LocalKmsServer;
  let kms: KMSClient;
  let anchor: string;
  let storeId: string;

  beforeAll(async () => {
    hsm = softHsm();
    hsm.initToken('kms-r');
    hsm.initToken('kms-w');
    anchor = hsm.certificate('customerCA');
    data = tempDir('lkms-cks-review-');
    ({ server, kms } = await startServer({ dataDir: data.dir, testClock: true, hsms: { [CLUSTER]: { module: hsm.module, tokenLabel: 'kms-r' }, [WEST]: { module: hsm.module, tokenLabel: 'kms-w' } } }));
  });
  afterAll(async () => {
    await server?.close();
    data?.cleanup();
    hsm?.cleanup();
  });

  it('a KeyStorePassword of the wrong length is refused without being echoed (CreateCustomKeyStore, UpdateCustomKeyStore)', async () => {
    // API Reference, CreateCustomKeyStore: KeyStorePassword is sensitive (7-32 characters); a
    // ValidationException that quotes it hands the kmsuser password to whatever logs errors.
    const short = 'pw-123';
    const long = `long-password-${'z'.repeat(30)}`;
    const base = { CustomKeyStoreName: 'review-store', CloudHsmClusterId: CLUSTER, TrustAnchorCertificate: anchor };
    for (const pw of [short, long]) {
      const e = await expectAwsError(kms.send(new CreateCustomKeyStoreCommand({ ...base, KeyStorePassword: pw })), 'ValidationException');
      expect(e.message).not.toContain(pw);
    }
    const { CustomKeyStoreId } = await kms.send(new CreateCustomKeyStoreCommand({ ...base, KeyStorePassword: USER_PIN }));
    storeId = CustomKeyStoreId!;
    for (const pw of [short, long]) {
      const e = await expectAwsError(kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId, KeyStorePassword: pw })), 'ValidationException');
      expect(e.message).not.toContain(pw);
    }
  });

  it('keys in a CloudHSM store refuse rotation and import; disconnected they are Unavailable, PendingDeletion wins, and crypto fails with KMSInvalidStateException (held)', async () => {
    // The first test's store (it holds the only cluster).
    const CustomKeyStoreId = storeId;
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId }));
    const keyId = (await kms.send(new CreateKeyCommand({ Origin: 'AWS_CLOUDHSM', CustomKeyStoreId }))).KeyMetadata!.KeyId!;
    await expectAwsError(kms.send(new EnableKeyRotationCommand({ KeyId: keyId })), 'UnsupportedOperationException');
    await expectAwsError(kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId })), 'UnsupportedOperationException');
    await expectAwsError(kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' })), 'UnsupportedOperationException');
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId }));
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe('Unavailable');
    await expectAwsError(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') })), 'KMSInvalidStateException');
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe('PendingDeletion');
    await kms.send(new CancelKeyDeletionCommand({ KeyId: keyId }));
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe('Unavailable');
  });

  it('a wrong KeyStorePassword does not connect a store while another key store of this process is logged in to the same token', async () => {
    // API Reference, ConnectCustomKeyStore / CustomKeyStoresListEntry ConnectionErrorCode
    // INVALID_CREDENTIALS: the key store password must be the kmsuser's. PKCS#11 answers C_Login
    // with CKR_USER_ALREADY_LOGGED_IN, without looking at the PIN, when the application is logged
    // in already; that must not count as a successful login with this password.
    const data2 = tempDir('lkms-cks-review2-');
    const second = await startServer({ dataDir: data2.dir, hsms: { [CLUSTER]: { module: hsm.module, tokenLabel: 'kms-r' } } });
    try {
      const { DescribeCustomKeyStoresCommand } = await import('@aws-sdk/client-kms');
      // The first server's store, connected with the right password.
      await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
      expect((await kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: storeId }))).CustomKeyStores![0]!.ConnectionState).toBe('CONNECTED');
      const { CustomKeyStoreId } = await second.kms.send(
        new CreateCustomKeyStoreCommand({ CustomKeyStoreName: 'intruder', CloudHsmClusterId: CLUSTER, TrustAnchorCertificate: anchor, KeyStorePassword: 'not-the-pin' }),
      );
      await second.kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId }));
      const s = (await second.kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId }))).CustomKeyStores![0]!;
      expect(s.ConnectionState).toBe('FAILED');
      expect(s.ConnectionErrorCode).toBe('INVALID_CREDENTIALS');
      await expectAwsError(second.kms.send(new CreateKeyCommand({ Origin: 'AWS_CLOUDHSM', CustomKeyStoreId })), 'CustomKeyStoreInvalidStateException');
    } finally {
      await second.server.close();
      data2.cleanup();
    }
  });

  it('a key store name is unique per account and Region: another Region may use it', async () => {
    // API Reference, CreateCustomKeyStore, CustomKeyStoreName: "The name must be unique in your
    // AWS account and Region."
    const west = new KMSClient({ endpoint: server.url, region: 'us-west-2', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' }, maxAttempts: 1 });
    const { CustomKeyStoreId } = await west.send(new CreateCustomKeyStoreCommand({ CustomKeyStoreName: 'review-store', CloudHsmClusterId: WEST, TrustAnchorCertificate: anchor, KeyStorePassword: USER_PIN }));
    expect(CustomKeyStoreId).toMatch(/^cks-/);
    // Still unique within the Region.
    await expectAwsError(west.send(new CreateCustomKeyStoreCommand({ CustomKeyStoreName: 'review-store', CloudHsmClusterId: CLUSTER, TrustAnchorCertificate: anchor, KeyStorePassword: USER_PIN })), 'CustomKeyStoreNameInUseException');
    west.destroy();
  });
});
