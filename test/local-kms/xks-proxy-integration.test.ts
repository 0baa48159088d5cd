/**
 * External key stores end to end (issue 17): the local KMS over HTTP with @aws-sdk/client-kms,
 * talking to the project's real XKS proxy (src/xks-proxy, over a SoftHSM2 token) through a
 * recording relay (xks-relay.ts). Store life cycle, keys with an XksKeyId, every cryptographic
 * operation, Unavailable keys while disconnected, deletion rules, the double encryption, the
 * requestMetadata the proxy receives, and Envelope / @aws-crypto/client-node round trips.
 */
import { randomBytes } from 'node:crypto';
import { CommitmentPolicy, KmsKeyringNode, buildClient } from '@aws-crypto/client-node';
import {
  ConnectCustomKeyStoreCommand,
  CreateCustomKeyStoreCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteCustomKeyStoreCommand,
  DescribeCustomKeyStoresCommand,
  DescribeKeyCommand,
  DisconnectCustomKeyStoreCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  KMS,
  ReEncryptCommand,
  ScheduleKeyDeletionCommand,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Envelope } from '../../src/index.js';
import { openBlob, parseBlob } from '../../src/local-kms/blob.js';
import { type LocalKmsServer } from '../../src/local-kms/index.js';
import { DAY, ROOT_ARN, advanceClock, expectAwsError, startServer } from './helpers.js';
import { proxySkipReason, startProxyUnderTest, type ProxyUnderTest } from './xks-harness.js';
import { startRelay, type XksRelay } from './xks-relay.js';

/** Generous for a loaded 2-core machine; the 250 ms default is AWS's. */
const TIMEOUT_MS = 5000;

describe.skipIf(proxySkipReason !== undefined)(`external key store with the real XKS proxy${proxySkipReason ? ` (skipped: ${proxySkipReason})` : ''}`, () => {
  let proxy: ProxyUnderTest;
  let relay: XksRelay;
  let server: LocalKmsServer;
  let kms: KMSClient;
  let storeId: string;
  let keyArn: string;

  beforeAll(async () => {
    proxy = await startProxyUnderTest(['xks-key-1', ['encrypt-only', 'encrypt'], ['disabled-usage', 'none']]);
    relay = await startRelay(proxy.url);
    ({ server, kms } = await startServer({ testClock: true, xksProxyTimeoutMs: TIMEOUT_MS }));
  });
  afterAll(async () => {
    kms?.destroy();
    await server?.close();
    await relay?.close();
    await proxy?.close();
  });

  const seen = (suffix: string) => relay.seen.filter((r) => r.path.endsWith(suffix));

  it('create the store, connect it, create a key with an XksKeyId; DescribeKey and DescribeCustomKeyStores show the XKS configuration', async () => {
    const input = {
      CustomKeyStoreName: 'xks',
      CustomKeyStoreType: 'EXTERNAL_KEY_STORE' as const,
      XksProxyUriEndpoint: relay.url,
      XksProxyUriPath: proxy.path,
      XksProxyConnectivity: 'PUBLIC_ENDPOINT' as const,
      XksProxyAuthenticationCredential: { AccessKeyId: proxy.accessKeyId, RawSecretAccessKey: proxy.secret },
    };
    // What the proxy itself refuses: a secret it does not know, a path it does not serve.
    await expectAwsError(
      kms.send(new CreateCustomKeyStoreCommand({ ...input, XksProxyAuthenticationCredential: { AccessKeyId: proxy.accessKeyId, RawSecretAccessKey: `${proxy.secret.slice(0, -1)}Z` } })),
      'XksProxyIncorrectAuthenticationCredentialException',
    );
    await expectAwsError(kms.send(new CreateCustomKeyStoreCommand({ ...input, XksProxyUriPath: '/elsewhere/kms/xks/v1' })), 'XksProxyInvalidConfigurationException');
    relay.seen.length = 0;
    ({ CustomKeyStoreId: storeId } = (await kms.send(
      new CreateCustomKeyStoreCommand({
        CustomKeyStoreName: 'xks',
        CustomKeyStoreType: 'EXTERNAL_KEY_STORE',
        XksProxyUriEndpoint: relay.url,
        XksProxyUriPath: proxy.path,
        XksProxyConnectivity: 'PUBLIC_ENDPOINT',
        XksProxyAuthenticationCredential: { AccessKeyId: proxy.accessKeyId, RawSecretAccessKey: proxy.secret },
      }),
    )) as { CustomKeyStoreId: string });
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    const [store] = (await kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: storeId }))).CustomKeyStores!;
    expect(store).toMatchObject({ ConnectionState: 'CONNECTED', CustomKeyStoreType: 'EXTERNAL_KEY_STORE', XksProxyConfiguration: { UriEndpoint: relay.url, UriPath: proxy.path, AccessKeyId: proxy.accessKeyId, Connectivity: 'PUBLIC_ENDPOINT' } });
    expect(seen('/health').map((r) => (r.body.requestMetadata as Record<string, unknown>).kmsOperation)).toEqual(['CreateCustomKeyStore', 'ConnectCustomKeyStore']);

    const xksKeyId = 'xks-key-1';
    await expectAwsError(kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: storeId, XksKeyId: 'no-such-key' })), 'XksKeyNotFoundException');
    // Token keys that cannot both encrypt and decrypt cannot back a KMS key.
    for (const XksKeyId of ['encrypt-only', 'disabled-usage']) {
      await expectAwsError(kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: storeId, XksKeyId })), 'XksKeyInvalidConfigurationException');
    }
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: storeId, XksKeyId: xksKeyId }));
    keyArn = KeyMetadata!.Arn!;
    expect(seen('/metadata').at(-1)!.body.requestMetadata).toMatchObject({ awsPrincipalArn: ROOT_ARN, kmsOperation: 'CreateKey' });
    await expectAwsError(kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: storeId, XksKeyId: xksKeyId })), 'XksKeyAlreadyInUseException');
    const d = (await kms.send(new DescribeKeyCommand({ KeyId: keyArn }))).KeyMetadata!;
    expect(d).toMatchObject({ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: storeId, XksKeyConfiguration: { Id: xksKeyId }, KeyState: 'Enabled', KeySpec: 'SYMMETRIC_DEFAULT' });
  });

  it('Encrypt, Decrypt, GenerateDataKey(WithoutPlaintext), ReEncrypt; the proxy is told the operation, the key ARN and the caller', async () => {
    const ctx = { app: 'xks' };
    const plaintext = Buffer.from('hello external key store');
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyArn, Plaintext: plaintext, EncryptionContext: ctx }));
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: ctx }))).Plaintext!)).toEqual(plaintext);
    const dk = await kms.send(new GenerateDataKeyCommand({ KeyId: keyArn, KeySpec: 'AES_256', EncryptionContext: ctx }));
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ctx }))).Plaintext!)).toEqual(Buffer.from(dk.Plaintext!));
    const dk2 = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyArn, NumberOfBytes: 16 }));
    expect((await kms.send(new DecryptCommand({ CiphertextBlob: dk2.CiphertextBlob }))).Plaintext).toHaveLength(16);
    const re = await kms.send(new ReEncryptCommand({ CiphertextBlob, SourceEncryptionContext: ctx, DestinationKeyId: keyArn, DestinationEncryptionContext: { app: 'moved' } }));
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: re.CiphertextBlob, EncryptionContext: { app: 'moved' } }))).Plaintext!)).toEqual(plaintext);
    await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { app: 'other' } })), 'InvalidCiphertextException');

    const ops = (suffix: string) => seen(suffix).map((r) => r.body.requestMetadata as Record<string, unknown>);
    const encrypts = ops('/encrypt');
    const decrypts = ops('/decrypt');
    expect(encrypts.map((m) => m.kmsOperation)).toEqual(['Encrypt', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext', 'ReEncrypt']);
    expect(decrypts.map((m) => m.kmsOperation)).toEqual(['Decrypt', 'Decrypt', 'Decrypt', 'ReEncrypt', 'Decrypt', 'Decrypt']);
    for (const m of [...encrypts, ...decrypts]) expect(m).toMatchObject({ kmsKeyArn: keyArn, awsPrincipalArn: ROOT_ARN, kmsRequestId: expect.any(String) });
    expect(new Set([...encrypts, ...decrypts].map((m) => m.kmsRequestId)).size).toBe(encrypts.length + decrypts.length);
  });

  it('double encryption: the proxy never sees the plaintext, and the local key material alone does not open the ciphertext', async () => {
    const plaintext = Buffer.from('the proxy must not see this text');
    const ctx = { purpose: 'double' };
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyArn, Plaintext: plaintext, EncryptionContext: ctx }));
    // What the external key encrypted: the inner ciphertext (12-byte IV + ciphertext; its 16-byte
    // tag stays in the blob, out of the proxy's hands), not the plaintext.
    const sent = Buffer.from(String(seen('/encrypt').at(-1)!.body.plaintext), 'base64');
    expect(sent).toHaveLength(plaintext.length + 12);
    expect(sent.includes(plaintext.subarray(0, 8))).toBe(false);
    // The KMS key's own material, taken from the local KMS, does not open the stored ciphertext.
    const key = server.service.keys.get(keyArn.split('/')[1]!)!;
    expect(key.materials).toHaveLength(1);
    const parsed = parseBlob(CiphertextBlob!)!;
    expect(openBlob(parsed, key.materials[0]!.secret, ctx)).toBeUndefined();
    // ...but it does open what the proxy decrypts: both layers are needed.
    const innerTag = CiphertextBlob!.subarray(CiphertextBlob!.length - sent.length - 16, CiphertextBlob!.length - sent.length);
    const inner = parseBlob(Buffer.concat([parsed.header, sent, innerTag]))!;
    expect(openBlob(inner, key.materials[0]!.secret, ctx)).toEqual(plaintext);
  });

  it('disconnected: keys Unavailable, operations fail with KMSInvalidStateException, nothing is sent to the proxy; reconnected they work again', async () => {
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyArn, Plaintext: Buffer.from('before') }));
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    const sentBefore = relay.seen.length;
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyArn }))).KeyMetadata!.KeyState).toBe('Unavailable');
    await expectAwsError(kms.send(new EncryptCommand({ KeyId: keyArn, Plaintext: Buffer.from('x') })), 'KMSInvalidStateException');
    await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob })), 'KMSInvalidStateException');
    await expectAwsError(kms.send(new GenerateDataKeyCommand({ KeyId: keyArn, KeySpec: 'AES_256' })), 'KMSInvalidStateException');
    await expectAwsError(kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: storeId, XksKeyId: 'xks-key-1' })), 'CustomKeyStoreInvalidStateException');
    expect(relay.seen.length).toBe(sentBefore);
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyArn }))).KeyMetadata!.KeyState).toBe('Enabled');
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString()).toBe('before');
  });

  it('Envelope round trip, and @aws-crypto/client-node both ways, with the XKS key', async () => {
    const envelope = new Envelope({ kms: { keyId: keyArn, client: kms }, cache: false });
    const data = randomBytes(20_000);
    const message = await envelope.encrypt(data, { context: { tenant: 'xks' } });
    expect(Buffer.compare((await new Envelope({ kms: { keyId: keyArn, client: kms }, cache: false }).decrypt(message, { context: { tenant: 'xks' } })).plaintext, data)).toBe(0);

    const esdk = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
    const esdkKms = new KMS({ endpoint: server.url, region: 'us-east-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' }, maxAttempts: 1 });
    const keyring = new KmsKeyringNode({ generatorKeyId: keyArn, clientProvider: () => esdkKms });
    const { result } = await esdk.encrypt(keyring, data, { encryptionContext: { by: 'esdk' } });
    expect(Buffer.compare((await envelope.decrypt(result, { context: { by: 'esdk' } })).plaintext, data)).toBe(0);
    const { plaintext } = await esdk.decrypt(keyring, message);
    expect(Buffer.compare(plaintext, data)).toBe(0);
    esdkKms.destroy();
  });

  it('deletion: a connected store or one with keys cannot be deleted; after the key is deleted the disconnected store can', async () => {
    await expectAwsError(kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: storeId })), 'CustomKeyStoreInvalidStateException');
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyArn, PendingWindowInDays: 7 }));
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    await expectAwsError(kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: storeId })), 'CustomKeyStoreHasCMKsException');
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyArn }))).KeyMetadata!.KeyState).toBe('PendingDeletion');
    await advanceClock(server.url, 8 * DAY);
    await expectAwsError(kms.send(new DescribeKeyCommand({ KeyId: keyArn })), 'NotFoundException');
    await kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    expect((await kms.send(new DescribeCustomKeyStoresCommand({}))).CustomKeyStores).toEqual([]);
    // The external key itself is untouched (AWS never deletes it): a new store and key can use it.
    expect(await proxy.keyExists('xks-key-1')).toBe(true);
  });
});
