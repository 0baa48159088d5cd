/**
 * KmsKeyring against the local KMS: in process (LocalKms client) and over HTTP with a real
 * @aws-sdk/client-kms KMSClient, plus the ESDK's KmsKeyringNode on the same server as oracle.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { KMS, KMSClient } from '@aws-sdk/client-kms';
import { KmsKeyringNode } from '@aws-crypto/client-node';
import { LocalKms, startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { createDefaultKmsClient, KmsKeyring, MultiKeyring, RawAesKeyring } from '../../src/keyrings/index.js';
import { KmsError, NoDecryptableKeyError } from '../../src/errors.js';
import { CONTEXTS, esdkUnwrap, esdkWrap } from './helpers.js';

const credentials = { accessKeyId: 'AKIDKEYRINGTEST', secretAccessKey: 'keyring-test-secret' };
const ctx = CONTEXTS[3]!;
const arnsOf = (edks: { providerInfo: Uint8Array }[]) => edks.map((e) => Buffer.from(e.providerInfo).toString());

describe('KmsKeyring with the in-process local KMS client', () => {
  const local = new LocalKms({});
  afterAll(() => local.close());

  it('generator + second key, alias, wrong key, wrong context, with KMS call counts', async () => {
    const a = await local.createKey({ Description: 'a' });
    const b = await local.createKey({ Description: 'b' });
    await local.createAlias('alias/keyring-a', a.keyId);
    const ring = new KmsKeyring({ keyIds: ['alias/keyring-a', b.arn], client: local.client() });
    const out = await ring.onEncrypt({ suiteId: 0x0478, context: ctx });
    expect(arnsOf(out.encryptedDataKeys)).toEqual([a.arn, b.arn]);
    expect(ring.kmsCalls).toBe(2);
    const input = { suiteId: 0x0478, context: ctx, encryptedDataKeys: out.encryptedDataKeys };

    // By default only key ARNs decrypt (aws-kms-keyring.md "OnDecrypt"): the EDK under the alias's
    // key is skipped, b's decrypts with one call.
    expect(await ring.onDecrypt(input)).toEqual(out.dataKey);
    expect(ring.kmsCalls).toBe(3);
    // resolveOnDecrypt: KMS resolves the alias; the first EDK decrypts with one call.
    const resolving = new KmsKeyring({ keyIds: ['alias/keyring-a', b.arn], client: local.client(), resolveOnDecrypt: true });
    expect(await resolving.onDecrypt(input)).toEqual(out.dataKey);
    expect(resolving.kmsCalls).toBe(1);
    // Second key alone, by key id: nothing by default (no call), KMS confirms the ARN with resolveOnDecrypt.
    const byIdStrict = new KmsKeyring({ keyId: b.keyId, client: local.client() });
    await expect(byIdStrict.onDecrypt(input)).rejects.toBeInstanceOf(NoDecryptableKeyError);
    expect(byIdStrict.kmsCalls).toBe(0);
    const byId = new KmsKeyring({ keyId: b.keyId, client: local.client(), resolveOnDecrypt: true });
    expect(await byId.onDecrypt(input)).toEqual(out.dataKey);
    expect(byId.kmsCalls).toBe(1);
    // A key that wrapped nothing: no EDK is ours, no call.
    const c = await local.createKey({ Description: 'c' });
    const wrong = new KmsKeyring({ keyId: c.arn, client: local.client() });
    expect(await wrong.onDecrypt(input)).toBeUndefined();
    expect(wrong.kmsCalls).toBe(0);
    // Alias pointing at another key: KMS says IncorrectKeyException for both EDKs: not ours.
    await local.createAlias('alias/keyring-c', c.keyId);
    const wrongAlias = new KmsKeyring({ keyId: 'alias/keyring-c', client: local.client(), resolveOnDecrypt: true });
    expect(await wrongAlias.onDecrypt(input)).toBeUndefined();
    expect(wrongAlias.kmsCalls).toBe(2);
    // Wrong context: both attempts fail with InvalidCiphertextException.
    const err = await resolving.onDecrypt({ ...input, context: { ...ctx, extra: '1' } }).catch((e) => e);
    expect(err).toBeInstanceOf(NoDecryptableKeyError);
    expect((err.cause as AggregateError).errors.map((e: KmsError) => e.kmsErrorName)).toEqual([
      'InvalidCiphertextException',
      'InvalidCiphertextException',
    ]);
  });

  it('maps local KMS errors to KmsError (NotFoundException, DisabledException)', async () => {
    const missing = new KmsKeyring({ keyId: 'alias/does-not-exist', client: local.client() });
    await expect(missing.onEncrypt({ suiteId: 0x0478, context: {} })).rejects.toMatchObject({
      code: 'ERR_KMS',
      kmsErrorName: 'NotFoundException',
    });
    const k = await local.createKey({});
    await local.service.call('DisableKey', { KeyId: k.keyId });
    await expect(new KmsKeyring({ keyId: k.arn, client: local.client() }).onEncrypt({ suiteId: 0x0478, context: {} })).rejects.toMatchObject({
      kmsErrorName: 'DisabledException',
    });
  });
});

describe('KmsKeyring over HTTP: @aws-sdk/client-kms KMSClient -> local KMS server', () => {
  let east: LocalKmsServer;
  let west: LocalKmsServer;
  let eastClient: KMSClient;
  let westClient: KMSClient;
  let esdkKms: KMS;
  let a: string;
  let b: string;
  let w: string;
  let account: string;

  beforeAll(async () => {
    east = await startLocalKmsServer({ port: 0 });
    west = await startLocalKmsServer({ port: 0, region: 'eu-west-1', accountId: '444455556666' });
    eastClient = new KMSClient({ endpoint: east.url, region: 'us-east-1', credentials });
    westClient = new KMSClient({ endpoint: west.url, region: 'eu-west-1', credentials });
    esdkKms = new KMS({ endpoint: east.url, region: 'us-east-1', credentials });
    const sa = await east.service.call('CreateKey', { Description: 'a' });
    const sb = await east.service.call('CreateKey', { Description: 'b' });
    const sw = await west.service.call('CreateKey', { Description: 'w' });
    a = (sa.KeyMetadata as { Arn: string }).Arn;
    b = (sb.KeyMetadata as { Arn: string }).Arn;
    w = (sw.KeyMetadata as { Arn: string }).Arn;
    account = a.split(':')[4]!;
    await east.service.call('CreateAlias', { AliasName: 'alias/http-a', TargetKeyId: a });
  });
  afterAll(async () => {
    eastClient?.destroy();
    westClient?.destroy();
    esdkKms?.destroy();
    await east?.close();
    await west?.close();
  });

  it('generator + second key; the ESDK KmsKeyringNode unwraps each EDK to the same key', async () => {
    const ring = new KmsKeyring({ keyIds: ['alias/http-a', b], client: eastClient });
    for (const suiteId of [0x0478, 0x0578, 0x0014, 0x0346]) {
      for (const context of CONTEXTS) {
        const out = await ring.onEncrypt({ suiteId, context });
        expect(arnsOf(out.encryptedDataKeys)).toEqual([a, b]);
        const viaA = await esdkUnwrap(new KmsKeyringNode({ keyIds: [a], clientProvider: () => esdkKms }), suiteId, context, out.encryptedDataKeys);
        const viaB = await esdkUnwrap(new KmsKeyringNode({ keyIds: [b], clientProvider: () => esdkKms }), suiteId, context, out.encryptedDataKeys);
        expect(viaA).toEqual(Buffer.from(out.dataKey));
        expect(viaB).toEqual(Buffer.from(out.dataKey));
      }
    }
    expect(ring.kmsCalls).toBe(4 * CONTEXTS.length * 2);
  });

  it('decrypts what the ESDK KmsKeyringNode wrapped (generator + key), by ARN, alias and discovery', async () => {
    const esdk = new KmsKeyringNode({ generatorKeyId: a, keyIds: [b], clientProvider: () => esdkKms });
    for (const context of CONTEXTS) {
      const theirs = await esdkWrap(esdk, 0x0478, context);
      expect(arnsOf(theirs.edks)).toEqual([a, b]);
      const input = { suiteId: 0x0478, context, encryptedDataKeys: theirs.edks };
      for (const ring of [
        new KmsKeyring({ keyId: a, client: eastClient }),
        new KmsKeyring({ keyId: b, client: eastClient }),
        new KmsKeyring({ keyId: 'alias/http-a', client: eastClient, resolveOnDecrypt: true }),
        new KmsKeyring({ discovery: true, client: eastClient }),
        new KmsKeyring({ discovery: true, discoveryFilter: { accountIds: [account], partition: 'aws' }, client: eastClient }),
      ]) {
        expect(Buffer.from((await ring.onDecrypt(input))!)).toEqual(theirs.dataKey);
        expect(ring.kmsCalls).toBe(1);
      }
    }
  });

  it('two regions: clientForRegion picks the server from the key ARN; either region decrypts', async () => {
    const clients: Record<string, KMSClient> = { 'us-east-1': eastClient, 'eu-west-1': westClient };
    const ring = new KmsKeyring({ keyIds: [a, w], clientForRegion: (r) => clients[r]! });
    const out = await ring.onEncrypt({ suiteId: 0x0478, context: ctx });
    expect(arnsOf(out.encryptedDataKeys)).toEqual([a, w]);
    const input = { suiteId: 0x0478, context: ctx, encryptedDataKeys: out.encryptedDataKeys };
    // The east server is gone for this reader: only the west copy is used.
    const westOnly = new KmsKeyring({ keyId: w, client: westClient });
    expect(await westOnly.onDecrypt(input)).toEqual(out.dataKey);
    expect(westOnly.kmsCalls).toBe(1);
    // Discovery across both regions, filtered to the west account.
    const disc = new KmsKeyring({
      discovery: true,
      clientForRegion: (r) => clients[r]!,
      discoveryFilter: { accountIds: ['444455556666'], partition: 'aws' },
    });
    expect(await disc.onDecrypt(input)).toEqual(out.dataKey);
    expect(disc.kmsCalls).toBe(1);
    const noMatch = new KmsKeyring({ discovery: true, client: eastClient, discoveryFilter: { accountIds: ['000000000000'], partition: 'aws' } });
    expect(await noMatch.onDecrypt(input)).toBeUndefined();
    expect(noMatch.kmsCalls).toBe(0);
  });

  it('wrong key and wrong context over HTTP; SDK errors become KmsError with the AWS name', async () => {
    const out = await new KmsKeyring({ keyId: a, client: eastClient }).onEncrypt({ suiteId: 0x0478, context: ctx });
    const input = { suiteId: 0x0478, context: ctx, encryptedDataKeys: out.encryptedDataKeys };
    expect(await new KmsKeyring({ keyId: b, client: eastClient }).onDecrypt(input)).toBeUndefined();
    const err = await new KmsKeyring({ keyId: a, client: eastClient }).onDecrypt({ ...input, context: {} }).catch((e) => e);
    expect(err).toBeInstanceOf(NoDecryptableKeyError);
    const cause = (err.cause as AggregateError).errors[0];
    expect(cause).toBeInstanceOf(KmsError);
    expect(cause.kmsErrorName).toBe('InvalidCiphertextException');
    // Discovery sends Decrypt for a key the server does not have (tampered ARN in the same account).
    const forged = { ...out.encryptedDataKeys[0]!, providerInfo: Buffer.from(b) };
    const derr = await new KmsKeyring({ discovery: true, client: eastClient })
      .onDecrypt({ ...input, encryptedDataKeys: [forged] })
      .catch((e) => e);
    expect(derr).toBeInstanceOf(NoDecryptableKeyError);
    expect((derr.cause as AggregateError).errors[0].kmsErrorName).toBe('IncorrectKeyException');
    const nf = await new KmsKeyring({ keyId: 'alias/nope', client: eastClient }).onEncrypt({ suiteId: 0x0478, context: {} }).catch((e) => e);
    expect(nf).toMatchObject({ code: 'ERR_KMS', kmsErrorName: 'NotFoundException' });
    expect(nf.message).not.toContain(credentials.secretAccessKey);
  });

  it('a KMS keyring and a raw AES keyring in a MultiKeyring, read back by the ESDK KMS keyring', async () => {
    const multi = new MultiKeyring({
      generator: new KmsKeyring({ keyId: a, client: eastClient }),
      children: [new RawAesKeyring({ keyNamespace: 'backup', keyName: 'k', key: randomBytes(32) })],
    });
    const out = await multi.onEncrypt({ suiteId: 0x0578, context: ctx });
    expect(out.encryptedDataKeys.map((e) => e.providerId)).toEqual(['aws-kms', 'backup']);
    expect(multi.kmsCalls).toBe(1);
    expect(await esdkUnwrap(new KmsKeyringNode({ keyIds: [a], clientProvider: () => esdkKms }), 0x0578, ctx, out.encryptedDataKeys)).toEqual(
      Buffer.from(out.dataKey),
    );
  });

  it('createDefaultKmsClient({ region, endpoint }) builds a KMSClient on first use', async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', credentials.accessKeyId);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', credentials.secretAccessKey);
    vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
    try {
      const client = createDefaultKmsClient({ region: 'us-east-1', endpoint: east.url });
      const ring = new KmsKeyring({ keyId: 'alias/http-a', client, resolveOnDecrypt: true });
      const out = await ring.onEncrypt({ suiteId: 0x0478, context: ctx });
      expect(await ring.onDecrypt({ suiteId: 0x0478, context: ctx, encryptedDataKeys: out.encryptedDataKeys })).toEqual(out.dataKey);
      expect(client.kmsCalls).toBe(2);
      expect(ring.kmsCalls).toBe(2);
    } finally {
      vi.unstubAllEnvs();
    }
    expect(() => createDefaultKmsClient({ endpoint: 'not a url' })).toThrow(/endpoint/);
    expect(() => createDefaultKmsClient({ region: '' })).toThrow(/region/);
  });
});
