/**
 * External key stores (EXTERNAL_KEY_STORE) in the local KMS, over HTTP with @aws-sdk/client-kms:
 * AWS's member rules, uniqueness rules and exceptions, and how proxy failures map to KMS errors
 * and connection error codes. The proxy here is test/local-kms/xks-fake.ts, used for what the
 * real proxy cannot be made to do (hang, malformed answers, injected errors, an unknown CA); the
 * flows with the real proxy are in xks-proxy-integration.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
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
  GenerateRandomCommand,
  UpdateCustomKeyStoreCommand,
  type CreateCustomKeyStoreCommandInput,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type LocalKmsServer } from '../../src/local-kms/index.js';
import { ROOT_ARN, expectAwsError, startServer, tempDir } from './helpers.js';
import { ACCESS_KEY_ID, PATH, SECRET, startFakeXks, type FakeXks } from './xks-fake.js';

const TIMEOUT_MS = 1500;

// External key stores need no PKCS#11 binding: this whole file runs as if pkcs11js were not
// installed (it is an optional peer dependency, loaded only for CloudHSM key stores).
vi.mock('../../src/local-kms/pkcs11.js', async (original) => ({
  ...(await original<typeof import('../../src/local-kms/pkcs11.js')>()),
  ensurePkcs11: async () => {
    throw new Error('pkcs11js is not installed (mocked)');
  },
}));

let stores = 0;

/** A valid request for a new store: a fresh name and path prefix each time (proxy URIs are unique). */
function storeInput(fake: FakeXks, over: Partial<CreateCustomKeyStoreCommandInput> = {}): CreateCustomKeyStoreCommandInput {
  stores++;
  return {
    CustomKeyStoreName: `xks-${stores}`,
    CustomKeyStoreType: 'EXTERNAL_KEY_STORE',
    XksProxyUriEndpoint: fake.url,
    XksProxyUriPath: `/store${stores}/kms/xks/v1`,
    XksProxyConnectivity: 'PUBLIC_ENDPOINT',
    XksProxyAuthenticationCredential: { AccessKeyId: ACCESS_KEY_ID, RawSecretAccessKey: SECRET },
    ...over,
  };
}

async function state(kms: KMSClient, id: string) {
  const d = await kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: id }));
  return d.CustomKeyStores![0]!;
}

describe('external key stores: rules and proxy failures (fault-injecting fake proxy)', () => {
  let server: LocalKmsServer;
  let kms: KMSClient;
  let fake: FakeXks;
  const tmp = tempDir('xks-');

  beforeAll(async () => {
    fake = await startFakeXks();
    ({ server, kms } = await startServer({ xksProxyTimeoutMs: TIMEOUT_MS }));
  });
  beforeEach(() => {
    if (fake) fake.fault = undefined;
  });
  afterAll(async () => {
    await server?.close();
    await fake?.close();
    tmp.cleanup();
  });

  it('CreateCustomKeyStore: AWS member rules; the secret is never echoed; http only to loopback; VPC endpoint services cannot be used locally', async () => {
    const bad = async (over: Partial<CreateCustomKeyStoreCommandInput>, name = 'ValidationException') => expectAwsError(kms.send(new CreateCustomKeyStoreCommand(storeInput(fake, over))), name);
    // The path must end in /kms/xks/v<1-2 digits> after an optional prefix.
    await bad({ XksProxyUriPath: '/kms/xks/v1/extra' });
    await bad({ XksProxyUriPath: '/a b/kms/xks/v1' });
    // Credential: AccessKeyId 20-30 of [A-Z2-7]; RawSecretAccessKey 43-64 of [a-zA-Z0-9/+=].
    await bad({ XksProxyAuthenticationCredential: { AccessKeyId: 'abcdefghijklmnopqrst', RawSecretAccessKey: SECRET } });
    const leak = await bad({ XksProxyAuthenticationCredential: { AccessKeyId: ACCESS_KEY_ID, RawSecretAccessKey: 'short-secret-value!' } });
    expect(leak.message).not.toContain('short-secret-value');
    // Nor a CloudHSM key store's password (its 7-32 character rule).
    const pin = await expectAwsError(
      kms.send(new CreateCustomKeyStoreCommand({ CustomKeyStoreName: 'hsm', CloudHsmClusterId: 'cluster-1234567890a', TrustAnchorCertificate: 'x', KeyStorePassword: 'pin-42' })),
      'ValidationException',
    );
    expect(pin.message).not.toContain('pin-42');
    // Plain HTTP only to a loopback host (local deviation; AWS requires https everywhere).
    await bad({ XksProxyUriEndpoint: 'http://xks.example.com' });
    await bad({ XksProxyUriEndpoint: `${fake.url}/path` });
    // Members of the other kind of store, and required members.
    await bad({ CloudHsmClusterId: 'cluster-1234567890a' });
    await bad({ XksProxyUriPath: undefined });
    await bad({ XksProxyConnectivity: 'VPC_ENDPOINT_SERVICE' });
    await bad({ XksProxyConnectivity: 'VPC_ENDPOINT_SERVICE', XksProxyVpcEndpointServiceName: 'com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdefg' }, 'XksProxyVpcEndpointServiceNotFoundException');
    expect(fake.requests).toHaveLength(0);
  });

  it('CreateCustomKeyStore asks the proxy (GetHealthStatus) and maps its failures; names and proxy URIs are unique; Describe shows XksProxyConfiguration without the secret', async () => {
    await expectAwsError(kms.send(new CreateCustomKeyStoreCommand(storeInput(fake, { XksProxyUriEndpoint: 'http://127.0.0.1:1' }))), 'XksProxyUriUnreachableException');
    await expectAwsError(kms.send(new CreateCustomKeyStoreCommand(storeInput(fake, { XksProxyUriPath: '/wrong/kms/xks/v1' }))), 'XksProxyInvalidConfigurationException');
    await expectAwsError(
      kms.send(new CreateCustomKeyStoreCommand(storeInput(fake, { XksProxyAuthenticationCredential: { AccessKeyId: ACCESS_KEY_ID, RawSecretAccessKey: `${SECRET.slice(0, -1)}X` } }))),
      'XksProxyIncorrectAuthenticationCredentialException',
    );
    for (const [kind, name] of [
      ['malformed', 'XksProxyInvalidResponseException'],
      ['unavailable', 'XksProxyUriUnreachableException'],
      [{ status: 503, errorName: 'DependencyTimeoutException' }, 'XksProxyUriUnreachableException'],
      [{ status: 500 }, 'XksProxyInvalidResponseException'],
    ] as const) {
      fake.fault = { kind };
      await expectAwsError(kms.send(new CreateCustomKeyStoreCommand(storeInput(fake))), name);
    }
    fake.fault = undefined;
    const before = fake.requests.length;
    const input = storeInput(fake);
    const { CustomKeyStoreId: id } = await kms.send(new CreateCustomKeyStoreCommand(input));
    expect(id).toMatch(/^cks-[0-9a-f]{17}$/);
    expect(fake.requests.slice(before)).toEqual([{ op: 'health', region: 'us-east-1', metadata: { kmsOperation: 'CreateCustomKeyStore', kmsRequestId: expect.any(String) } }]);
    await expectAwsError(kms.send(new CreateCustomKeyStoreCommand(storeInput(fake, { CustomKeyStoreName: input.CustomKeyStoreName }))), 'CustomKeyStoreNameInUseException');
    await expectAwsError(kms.send(new CreateCustomKeyStoreCommand(storeInput(fake, { XksProxyUriPath: input.XksProxyUriPath }))), 'XksProxyUriInUseException');
    // Same endpoint for a VPC_ENDPOINT_SERVICE store: the endpoint itself is taken.
    await expectAwsError(
      kms.send(new CreateCustomKeyStoreCommand(storeInput(fake, { XksProxyConnectivity: 'VPC_ENDPOINT_SERVICE', XksProxyVpcEndpointServiceName: 'com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdefg' }))),
      'XksProxyUriEndpointInUseException',
    );
    const d = await state(kms, id!);
    expect(d).toMatchObject({
      CustomKeyStoreType: 'EXTERNAL_KEY_STORE',
      ConnectionState: 'DISCONNECTED',
      XksProxyConfiguration: { Connectivity: 'PUBLIC_ENDPOINT', AccessKeyId: ACCESS_KEY_ID, UriEndpoint: fake.url, UriPath: input.XksProxyUriPath },
    });
    expect(JSON.stringify(d)).not.toContain(SECRET);
    expect(d.CloudHsmClusterId).toBeUndefined();
    // The secret is sealed at rest too: not in the data directory of a persistent server.
    const dir = tempDir('xks-data-');
    const persistent = await startServer({ dataDir: dir.dir, xksProxyTimeoutMs: TIMEOUT_MS });
    try {
      await persistent.kms.send(new CreateCustomKeyStoreCommand(storeInput(fake)));
      const text = readFileSync(join(dir.dir, 'custom-key-stores.json'), 'utf8');
      expect(text).toContain(ACCESS_KEY_ID);
      expect(text).not.toContain(SECRET);
    } finally {
      await persistent.server.close();
      dir.cleanup();
    }
  });

  it('ConnectCustomKeyStore: CONNECTED after GetHealthStatus; failures are FAILED with the documented ConnectionErrorCode', async () => {
    const { CustomKeyStoreId: id } = await kms.send(new CreateCustomKeyStoreCommand(storeInput(fake, { XksProxyUriEndpoint: fake.url.replace('127.0.0.1', 'localhost') })));
    for (const [kind, code] of [
      ['hang', 'XKS_PROXY_TIMED_OUT'],
      ['malformed', 'XKS_PROXY_INVALID_RESPONSE'],
      ['unavailable', 'XKS_PROXY_NOT_REACHABLE'],
      [{ status: 401, errorName: 'AuthenticationFailedException' }, 'INVALID_CREDENTIALS'],
      [{ status: 403, errorName: 'AccessDeniedException' }, 'XKS_PROXY_ACCESS_DENIED'],
      [{ status: 404, errorName: 'InvalidUriPathException' }, 'XKS_PROXY_INVALID_CONFIGURATION'],
    ] as const) {
      fake.fault = { kind };
      await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
      expect(await state(kms, id!)).toMatchObject({ ConnectionState: 'FAILED', ConnectionErrorCode: code });
      // FAILED must be disconnected before it can be connected again (as for CloudHSM stores).
      await expectAwsError(kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: id })), 'CustomKeyStoreInvalidStateException');
      await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
    }
    fake.fault = undefined;
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
    const s = await state(kms, id!);
    expect(s.ConnectionState).toBe('CONNECTED');
    expect(s.ConnectionErrorCode).toBeUndefined();
    expect(fake.requests.at(-1)).toMatchObject({ op: 'health', metadata: { kmsOperation: 'ConnectCustomKeyStore' } });
    // GenerateRandom is for CloudHSM key stores only.
    await expectAwsError(kms.send(new GenerateRandomCommand({ NumberOfBytes: 8, CustomKeyStoreId: id })), 'UnsupportedOperationException');
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
    await kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: id }));
  });

  it('UpdateCustomKeyStore: name, credential and path while connected (tried with GetHealthStatus first); endpoint and connectivity only when DISCONNECTED', async () => {
    const input = storeInput(fake);
    const { CustomKeyStoreId: id } = await kms.send(new CreateCustomKeyStoreCommand(input));
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
    await kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: id, NewCustomKeyStoreName: `${input.CustomKeyStoreName}-renamed` }));
    await kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: id, XksProxyUriPath: '/moved/kms/xks/v1' }));
    expect(fake.requests.at(-1)).toMatchObject({ op: 'health', metadata: { kmsOperation: 'UpdateCustomKeyStore' } });
    // A path the proxy does not serve is refused before anything changes.
    await expectAwsError(kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: id, XksProxyUriPath: '/wrong/kms/xks/v1' })), 'XksProxyInvalidConfigurationException');
    await expectAwsError(
      kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: id, XksProxyAuthenticationCredential: { AccessKeyId: ACCESS_KEY_ID, RawSecretAccessKey: `${SECRET.slice(0, -1)}X` } })),
      'XksProxyIncorrectAuthenticationCredentialException',
    );
    await expectAwsError(kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: id, XksProxyUriEndpoint: fake.url.replace('127.0.0.1', 'localhost') })), 'CustomKeyStoreInvalidStateException');
    await expectAwsError(kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: id, XksProxyConnectivity: 'PUBLIC_ENDPOINT' })), 'CustomKeyStoreInvalidStateException');
    await expectAwsError(kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: id, KeyStorePassword: 'password123' })), 'UnsupportedOperationException');
    expect(await state(kms, id!)).toMatchObject({
      CustomKeyStoreName: `${input.CustomKeyStoreName}-renamed`,
      ConnectionState: 'CONNECTED',
      XksProxyConfiguration: { UriEndpoint: fake.url, UriPath: '/moved/kms/xks/v1' },
    });
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
    await kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: id, XksProxyUriEndpoint: fake.url.replace('127.0.0.1', 'localhost') }));
    expect((await state(kms, id!)).XksProxyConfiguration?.UriEndpoint).toBe(fake.url.replace('127.0.0.1', 'localhost'));
  });

  it('CreateKey with Origin EXTERNAL_KEY_STORE: GetKeyMetadata and its checks; XksKeyId unique in the store; DescribeKey shows XksKeyConfiguration', async () => {
    const { CustomKeyStoreId: id } = await kms.send(new CreateCustomKeyStoreCommand(storeInput(fake)));
    const create = (XksKeyId: string | undefined) => kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: id, ...(XksKeyId ? { XksKeyId } : {}) }));
    fake.keys.set('good', { key: Buffer.alloc(32, 1) });
    await expectAwsError(create('good'), 'CustomKeyStoreInvalidStateException'); // not connected
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
    await expectAwsError(create(undefined), 'ValidationException');
    await expectAwsError(create('bad id!'), 'ValidationException');
    await expectAwsError(kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: id, XksKeyId: 'good', KeySpec: 'RSA_2048' })), 'UnsupportedOperationException');
    await expectAwsError(create('missing'), 'XksKeyNotFoundException');
    fake.keys.set('aes128', { key: Buffer.alloc(32), keySpec: 'AES_128' });
    fake.keys.set('encrypt-only', { key: Buffer.alloc(32), keyUsage: ['ENCRYPT'] });
    fake.keys.set('disabled', { key: Buffer.alloc(32), keyStatus: 'DISABLED' });
    for (const k of ['aes128', 'encrypt-only', 'disabled']) await expectAwsError(create(k), 'XksKeyInvalidConfigurationException');
    fake.fault = { kind: { status: 400, errorName: 'InvalidStateException' } };
    await expectAwsError(create('good'), 'XksKeyInvalidConfigurationException');
    fake.fault = { kind: 'hang' };
    await expectAwsError(create('good'), 'CustomKeyStoreInvalidStateException');
    fake.fault = undefined;
    const { KeyMetadata: md } = await create('good');
    expect(md).toMatchObject({ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: id, XksKeyConfiguration: { Id: 'good' }, KeySpec: 'SYMMETRIC_DEFAULT', KeyState: 'Enabled' });
    expect(fake.requests.at(-1)).toEqual({ op: 'metadata', region: 'us-east-1', metadata: { awsPrincipalArn: ROOT_ARN, kmsOperation: 'CreateKey', kmsRequestId: expect.any(String) } });
    await expectAwsError(create('good'), 'XksKeyAlreadyInUseException');
    const described = await kms.send(new DescribeKeyCommand({ KeyId: md!.KeyId }));
    expect(described.KeyMetadata).toMatchObject({ Origin: 'EXTERNAL_KEY_STORE', XksKeyConfiguration: { Id: 'good' } });
  });

  it('cryptographic operations: every proxy failure is KMSInvalidStateException; a wrong encryption context is InvalidCiphertextException', async () => {
    const { CustomKeyStoreId: id } = await kms.send(new CreateCustomKeyStoreCommand(storeInput(fake)));
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
    fake.keys.set('crypto', { key: Buffer.alloc(32, 7) });
    const { KeyMetadata: md } = await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: id, XksKeyId: 'crypto' }));
    const ctx = { purpose: 'test' };
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: md!.KeyId, Plaintext: Buffer.from('secret'), EncryptionContext: ctx }));
    expect(fake.requests.at(-1)).toMatchObject({ op: 'encrypt', metadata: { awsPrincipalArn: ROOT_ARN, kmsKeyArn: md!.Arn, kmsOperation: 'Encrypt' } });
    for (const kind of ['hang', 'malformed', 'bad-cdiv', { status: 500, errorName: 'InternalException' }, { status: 429, errorName: 'ThrottlingException' }, { status: 401, errorName: 'AuthenticationFailedException' }] as const) {
      fake.fault = { kind, ops: ['encrypt'] };
      await expectAwsError(kms.send(new EncryptCommand({ KeyId: md!.KeyId, Plaintext: Buffer.from('x') })), 'KMSInvalidStateException');
    }
    fake.fault = { kind: { status: 400, errorName: 'InvalidCiphertextException' }, ops: ['decrypt'] };
    await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: ctx })), 'KMSInvalidStateException');
    fake.fault = undefined;
    await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { purpose: 'other' } })), 'InvalidCiphertextException');
    const tampered = Buffer.from(CiphertextBlob!);
    tampered[tampered.length - 1]! ^= 1;
    // The proxy's tag check fails: its InvalidCiphertextException is KMSInvalidStateException (spec table).
    await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob: tampered, EncryptionContext: ctx })), 'KMSInvalidStateException');
    const { Plaintext } = await kms.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: ctx }));
    expect(Buffer.from(Plaintext!).toString()).toBe('secret');
    expect(fake.requests.at(-1)).toMatchObject({ op: 'decrypt', metadata: { kmsKeyArn: md!.Arn, kmsOperation: 'Decrypt' } });
  });

  it('HTTPS proxies: a certificate of an unknown CA fails (XKS_PROXY_INVALID_TLS_CONFIGURATION); trusted through xksProxyCa it connects', async () => {
    const key = join(tmp.dir, 'proxy.key');
    const crt = join(tmp.dir, 'proxy.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '2', '-keyout', key, '-out', crt], { stdio: 'pipe' });
    const cert = readFileSync(crt, 'utf8');
    const tls = await startFakeXks({ tls: { key: readFileSync(key, 'utf8'), cert } });
    const data = tempDir('xks-tls-');
    let trusting = await startServer({ dataDir: data.dir, xksProxyTimeoutMs: TIMEOUT_MS, xksProxyCa: cert });
    try {
      await expectAwsError(kms.send(new CreateCustomKeyStoreCommand(storeInput(tls))), 'XksProxyUriUnreachableException');
      const { CustomKeyStoreId: id } = await trusting.kms.send(new CreateCustomKeyStoreCommand(storeInput(tls)));
      await trusting.kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
      expect((await state(trusting.kms, id!)).ConnectionState).toBe('CONNECTED');
      expect(tls.requests.map((r) => r.op)).toEqual(['health', 'health']);
      await trusting.kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
      await trusting.server.close();
      // The same data directory served without the CA: the proxy's certificate is not trusted.
      trusting = await startServer({ dataDir: data.dir, xksProxyTimeoutMs: TIMEOUT_MS });
      await trusting.kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
      expect(await state(trusting.kms, id!)).toMatchObject({ ConnectionState: 'FAILED', ConnectionErrorCode: 'XKS_PROXY_INVALID_TLS_CONFIGURATION' });
      expect(tls.requests).toHaveLength(2);
    } finally {
      await trusting.server.close();
      await tls.close();
      data.cleanup();
    }
    await expect(startServer({ xksProxyCa: 'not a certificate' })).rejects.toThrow(TypeError);
    await expect(startServer({ xksProxyTimeoutMs: 0 })).rejects.toThrow(RangeError);
  });
});
