/**
 * A KMS key whose AES key lives in a SoftHSM2 token (CloudHSM key store, issue 17) used by the
 * library's Envelope (`kms: { keyId, client }`) and by the AWS Encryption SDK's KmsKeyringNode,
 * both ways, over HTTP. The data keys are wrapped by the token (counted server-side: every
 * GenerateDataKey/Decrypt reached the local KMS).
 */
import { randomBytes } from 'node:crypto';
import { CommitmentPolicy, KmsKeyringNode, buildClient } from '@aws-crypto/client-node';
import { ConnectCustomKeyStoreCommand, CreateCustomKeyStoreCommand, CreateKeyCommand, KMS, type KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Envelope } from '../../src/index.js';
import { LocalKms, type LocalKmsServer } from '../../src/local-kms/index.js';
import { startServer } from './helpers.js';
import { USER_PIN, skipReason, softHsm, type SoftHsm } from './softhsm.js';

const CLUSTER = 'cluster-interop12345';

describe.skipIf(skipReason !== undefined)(`a CloudHSM-origin key with Envelope and the ESDK${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let hsm: SoftHsm;
  let server: LocalKmsServer;
  let kms: KMSClient;
  let keyArn: string;

  beforeAll(async () => {
    hsm = softHsm();
    hsm.initToken('interop');
    ({ server, kms } = await startServer({ hsms: { [CLUSTER]: { module: hsm.module, tokenLabel: 'interop' } } }));
    const { CustomKeyStoreId } = await kms.send(
      new CreateCustomKeyStoreCommand({ CustomKeyStoreName: 'interop', CloudHsmClusterId: CLUSTER, KeyStorePassword: USER_PIN, TrustAnchorCertificate: hsm.certificate('customerCA') }),
    );
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId }));
    keyArn = (await kms.send(new CreateKeyCommand({ Origin: 'AWS_CLOUDHSM', CustomKeyStoreId }))).KeyMetadata!.Arn!;
  });

  afterAll(async () => {
    kms?.destroy();
    await server?.close();
    hsm?.cleanup();
  });

  it('Envelope (kms: { keyId, client }) round trip; the data key comes from the token key', async () => {
    const envelope = new Envelope({ kms: { keyId: keyArn, client: kms }, cache: false });
    const before = server.service.callCounts()['us-east-1'] ?? {};
    const plaintext = randomBytes(10_000);
    const message = await envelope.encrypt(plaintext, { context: { tenant: 'hsm' } });
    const out = await new Envelope({ kms: { keyId: keyArn, client: kms }, cache: false }).decrypt(message, { context: { tenant: 'hsm' } });
    expect(Buffer.compare(out.plaintext, plaintext)).toBe(0);
    const after = server.service.callCounts()['us-east-1']!;
    expect((after.GenerateDataKey ?? 0) - (before.GenerateDataKey ?? 0)).toBe(1);
    expect((after.Decrypt ?? 0) - (before.Decrypt ?? 0)).toBe(1);
  });

  it('ESDK KmsKeyringNode -> Envelope and Envelope -> ESDK', async () => {
    const esdk = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
    const esdkKms = new KMS({ endpoint: server.url, region: 'us-east-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' }, maxAttempts: 1 });
    const keyring = new KmsKeyringNode({ generatorKeyId: keyArn, clientProvider: () => esdkKms });
    const ours = new Envelope({ kms: { keyId: keyArn, client: kms }, cache: false });
    const a = randomBytes(5000);
    const { result } = await esdk.encrypt(keyring, a, { encryptionContext: { by: 'esdk' } });
    expect(Buffer.compare((await ours.decrypt(result, { context: { by: 'esdk' } })).plaintext, a)).toBe(0);
    const b = randomBytes(5000);
    const message = await ours.encrypt(b, { context: { by: 'ours' } });
    const back = await esdk.decrypt(keyring, message);
    expect(Buffer.compare(back.plaintext, b)).toBe(0);
    expect(back.messageHeader.encryptedDataKeys.map((k) => k.providerInfo)).toEqual([keyArn]);
  });

  it('an in-process LocalKms with `hsms` on the same token; closing it leaves the server logged in', async () => {
    const local = new LocalKms({ hsms: { [CLUSTER]: { module: hsm.module, tokenLabel: 'interop' } } });
    const client = local.client();
    const { CustomKeyStoreId } = await client.call('CreateCustomKeyStore', { CustomKeyStoreName: 'in-process', CloudHsmClusterId: CLUSTER, KeyStorePassword: USER_PIN, TrustAnchorCertificate: hsm.certificate('inproc') });
    await client.call('ConnectCustomKeyStore', { CustomKeyStoreId });
    const { KeyMetadata } = await client.call('CreateKey', { Origin: 'AWS_CLOUDHSM', CustomKeyStoreId });
    const keyId = (KeyMetadata as { Arn: string }).Arn;
    const envelope = new Envelope({ kms: { keyId, client }, cache: false });
    const message = await envelope.encrypt('in process');
    expect((await envelope.decrypt(message)).plaintext.toString()).toBe('in process');
    local.close();
    // The server's session on the same token still works (the token was not logged out under it).
    const ours = new Envelope({ kms: { keyId: keyArn, client: kms }, cache: false });
    expect((await ours.decrypt(await ours.encrypt('still here'))).plaintext.toString()).toBe('still here');
  });

  it('concurrent Connect and Disconnect: the request answered last decides (a Disconnect during the connection wins)', async () => {
    const local = new LocalKms({ hsms: { [CLUSTER]: { module: hsm.module, tokenLabel: 'interop' } } });
    try {
      const client = local.client();
      const { CustomKeyStoreId } = await client.call('CreateCustomKeyStore', { CustomKeyStoreName: 'race', CloudHsmClusterId: CLUSTER, KeyStorePassword: USER_PIN, TrustAnchorCertificate: hsm.certificate('race') });
      const state = async () => ((await client.call('DescribeCustomKeyStores', { CustomKeyStoreId })).CustomKeyStores as Array<{ ConnectionState: string }>)[0]!.ConnectionState;
      await Promise.all([client.call('ConnectCustomKeyStore', { CustomKeyStoreId }), client.call('ConnectCustomKeyStore', { CustomKeyStoreId })]);
      expect(await state()).toBe('CONNECTED');
      await client.call('DisconnectCustomKeyStore', { CustomKeyStoreId });
      const connecting = client.call('ConnectCustomKeyStore', { CustomKeyStoreId });
      await client.call('DisconnectCustomKeyStore', { CustomKeyStoreId });
      await connecting;
      expect(await state()).toBe('DISCONNECTED');
      await expect(client.call('CreateKey', { Origin: 'AWS_CLOUDHSM', CustomKeyStoreId })).rejects.toMatchObject({ name: 'CustomKeyStoreInvalidStateException' });
    } finally {
      local.close();
    }
  });
});
