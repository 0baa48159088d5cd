import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateRandomCommand,
  IncorrectKeyException,
  ListAliasesCommand,
  ListKeysCommand,
  ReEncryptCommand,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { LocalKms, KmsServiceError, type LocalKmsServer } from '../../src/local-kms/index.js';
import { ACCOUNT, expectAwsError, startServer } from './helpers.js';

describe('local KMS core operations over HTTP (@aws-sdk/client-kms)', () => {
  let server: LocalKmsServer;
  let kms: KMSClient;
  let keyId: string;
  let keyArn: string;

  beforeAll(async () => {
    ({ server, kms } = await startServer());
    const created = await kms.send(new CreateKeyCommand({ Description: 'core test key' }));
    keyId = created.KeyMetadata!.KeyId!;
    keyArn = created.KeyMetadata!.Arn!;
  });
  afterAll(async () => {
    kms.destroy();
    await server.close();
  });

  it('creates a symmetric key with AWS-shaped metadata', async () => {
    const md = (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
    expect(md.AWSAccountId).toBe(ACCOUNT);
    expect(md.Arn).toBe(`arn:aws:kms:us-east-1:${ACCOUNT}:key/${keyId}`);
    expect(keyId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(md.KeyState).toBe('Enabled');
    expect(md.Enabled).toBe(true);
    expect(md.KeyUsage).toBe('ENCRYPT_DECRYPT');
    expect(md.KeySpec).toBe('SYMMETRIC_DEFAULT');
    expect(md.CustomerMasterKeySpec).toBe('SYMMETRIC_DEFAULT');
    expect(md.EncryptionAlgorithms).toEqual(['SYMMETRIC_DEFAULT']);
    expect(md.KeyManager).toBe('CUSTOMER');
    expect(md.Origin).toBe('AWS_KMS');
    expect(md.MultiRegion).toBe(false);
    expect(md.Description).toBe('core test key');
    expect(md.CreationDate).toBeInstanceOf(Date);
    expect(Math.abs(md.CreationDate!.getTime() - Date.now())).toBeLessThan(60_000);
  });

  it('encrypts and decrypts without a KeyId, binding the encryption context', async () => {
    const context = { tenant: 'acme', 'Ünïcode-Key': 'välue' };
    const enc = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('secret'), EncryptionContext: context }));
    expect(enc.KeyId).toBe(keyArn);
    expect(enc.EncryptionAlgorithm).toBe('SYMMETRIC_DEFAULT');
    const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { 'Ünïcode-Key': 'välue', tenant: 'acme' } }));
    expect(Buffer.from(dec.Plaintext!).toString()).toBe('secret');
    expect(dec.KeyId).toBe(keyArn);
    // Missing, wrong and extra context all fail the same way.
    const bads: (Record<string, string> | undefined)[] = [undefined, { tenant: 'other', 'Ünïcode-Key': 'välue' }, { ...context, extra: '1' }, { tenant: 'acme' }];
    for (const bad of bads) {
      const e = await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: bad })), 'InvalidCiphertextException');
      expect(e.$metadata?.httpStatusCode).toBe(400);
    }
    // A flipped bit anywhere after the header is InvalidCiphertextException too.
    const tampered = Buffer.from(enc.CiphertextBlob!);
    tampered[tampered.length - 1]! ^= 1;
    await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob: tampered, EncryptionContext: context })), 'InvalidCiphertextException');
    await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob: Buffer.from('garbage') })), 'InvalidCiphertextException');
  });

  it('rejects Decrypt with another KeyId (IncorrectKeyException) and accepts ARN and alias', async () => {
    const other = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/core', TargetKeyId: keyId }));
    const enc = await kms.send(new EncryptCommand({ KeyId: 'alias/core', Plaintext: Buffer.from('x') }));
    expect(enc.KeyId).toBe(keyArn);
    const e = await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, KeyId: other })), 'IncorrectKeyException');
    expect(e).toBeInstanceOf(IncorrectKeyException);
    for (const id of [keyId, keyArn, 'alias/core', `arn:aws:kms:us-east-1:${ACCOUNT}:alias/core`]) {
      const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, KeyId: id }));
      expect(Buffer.from(dec.Plaintext!).toString()).toBe('x');
    }
  });

  it('enforces the Encrypt plaintext limit of 4096 bytes', async () => {
    await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.alloc(4096, 1) }));
    const e = await expectAwsError(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.alloc(4097, 1) })), 'ValidationException');
    expect(e.message).toMatch(/at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096/);
    expect(e.message).not.toMatch(/\x01/);
  });

  it('generates data keys by NumberOfBytes or KeySpec, with and without plaintext', async () => {
    const a = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: { p: 'q' } }));
    expect(a.Plaintext!.length).toBe(32);
    expect(a.KeyId).toBe(keyArn);
    const back = await kms.send(new DecryptCommand({ CiphertextBlob: a.CiphertextBlob, EncryptionContext: { p: 'q' } }));
    expect(Buffer.from(back.Plaintext!).equals(Buffer.from(a.Plaintext!))).toBe(true);
    expect((await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_128' }))).Plaintext!.length).toBe(16);
    expect((await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, NumberOfBytes: 1 }))).Plaintext!.length).toBe(1);
    expect((await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, NumberOfBytes: 1024 }))).Plaintext!.length).toBe(1024);
    for (const n of [0, 1025]) {
      await expectAwsError(kms.send(new GenerateDataKeyCommand({ KeyId: keyId, NumberOfBytes: n })), 'ValidationException');
    }
    await expectAwsError(kms.send(new GenerateDataKeyCommand({ KeyId: keyId })), 'ValidationException');
    await expectAwsError(kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', NumberOfBytes: 32 })), 'ValidationException');
    const w = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyId, NumberOfBytes: 64 }));
    expect((w as { Plaintext?: unknown }).Plaintext).toBeUndefined();
    expect((await kms.send(new DecryptCommand({ CiphertextBlob: w.CiphertextBlob }))).Plaintext!.length).toBe(64);
  });

  it('re-encrypts under another key and context', async () => {
    const dst = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    const enc = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('move me'), EncryptionContext: { a: '1' } }));
    await expectAwsError(
      kms.send(new ReEncryptCommand({ CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: dst.KeyId })),
      'InvalidCiphertextException',
    );
    const re = await kms.send(
      new ReEncryptCommand({
        CiphertextBlob: enc.CiphertextBlob,
        SourceEncryptionContext: { a: '1' },
        DestinationKeyId: dst.KeyId,
        DestinationEncryptionContext: { b: '2' },
      }),
    );
    expect(re.SourceKeyId).toBe(keyArn);
    expect(re.KeyId).toBe(dst.Arn);
    await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob: re.CiphertextBlob, EncryptionContext: { a: '1' } })), 'InvalidCiphertextException');
    const dec = await kms.send(new DecryptCommand({ CiphertextBlob: re.CiphertextBlob, EncryptionContext: { b: '2' } }));
    expect(Buffer.from(dec.Plaintext!).toString()).toBe('move me');
    expect(dec.KeyId).toBe(dst.Arn);
  });

  it('generates random bytes within 1-1024', async () => {
    const r = await kms.send(new GenerateRandomCommand({ NumberOfBytes: 1024 }));
    expect(r.Plaintext!.length).toBe(1024);
    const r2 = await kms.send(new GenerateRandomCommand({ NumberOfBytes: 1024 }));
    expect(Buffer.from(r.Plaintext!).equals(Buffer.from(r2.Plaintext!))).toBe(false);
    await expectAwsError(kms.send(new GenerateRandomCommand({ NumberOfBytes: 0 })), 'ValidationException');
    await expectAwsError(kms.send(new GenerateRandomCommand({ NumberOfBytes: 1025 })), 'ValidationException');
  });

  it('resolves unknown keys and aliases to NotFoundException', async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    const e = await expectAwsError(kms.send(new DescribeKeyCommand({ KeyId: missing })), 'NotFoundException');
    expect(e.message).toBe(`Key 'arn:aws:kms:us-east-1:${ACCOUNT}:key/${missing}' does not exist`);
    await expectAwsError(kms.send(new DescribeKeyCommand({ KeyId: 'alias/none' })), 'NotFoundException');
    await expectAwsError(kms.send(new DescribeKeyCommand({ KeyId: `arn:aws:kms:eu-west-1:${ACCOUNT}:key/${keyId}` })), 'NotFoundException');
    await expectAwsError(kms.send(new EncryptCommand({ KeyId: 'not-a-key', Plaintext: Buffer.from('x') })), 'NotFoundException');
  });

  it('lists keys and aliases', async () => {
    const keys = (await kms.send(new ListKeysCommand({}))).Keys!;
    expect(keys.map((k) => k.KeyId)).toContain(keyId);
    expect(keys.find((k) => k.KeyId === keyId)!.KeyArn).toBe(keyArn);
    const aliases = (await kms.send(new ListAliasesCommand({}))).Aliases!;
    const core = aliases.find((a) => a.AliasName === 'alias/core')!;
    expect(core.TargetKeyId).toBe(keyId);
    expect(core.AliasArn).toBe(`arn:aws:kms:us-east-1:${ACCOUNT}:alias/core`);
    expect(core.CreationDate).toBeInstanceOf(Date);
  });
});

describe('LocalKms in process', () => {
  it('provides a KmsClient whose ciphertext the HTTP-free service decrypts', async () => {
    const local = new LocalKms();
    const { keyId, arn } = await local.createKey({ Description: 'in-process' });
    await local.createAlias('alias/inproc', keyId);
    const client = local.client();
    const dk = await client.generateDataKey({ keyId: 'alias/inproc', numberOfBytes: 32, encryptionContext: { a: 'b' } });
    expect(dk.keyId).toBe(arn);
    expect(dk.plaintext).toBeInstanceOf(Uint8Array);
    expect(dk.plaintext.length).toBe(32);
    const dec = await client.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: { a: 'b' } });
    expect(Buffer.from(dec.plaintext).equals(Buffer.from(dk.plaintext))).toBe(true);
    const enc = await client.encrypt({ keyId: arn, plaintext: new Uint8Array([1, 2, 3]) });
    expect([...(await client.decrypt({ keyId, ciphertextBlob: enc.ciphertextBlob })).plaintext]).toEqual([1, 2, 3]);
    const err = await client.decrypt({ ciphertextBlob: dk.ciphertextBlob }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KmsServiceError);
    expect((err as KmsServiceError).type).toBe('InvalidCiphertextException');
    local.close();
  });
});

describe('LocalKmsService input types (in process)', () => {
  it('rejects members of the wrong JavaScript type with ValidationException', async () => {
    const local = new LocalKms();
    const { keyId } = await local.createKey();
    for (const input of [
      { KeyId: keyId, NumberOfBytes: '32' },
      { KeyId: keyId, NumberOfBytes: 32, EncryptionContext: { a: 1 } },
      { KeyId: 5, NumberOfBytes: 32 },
    ]) {
      const e = await local.service.call('GenerateDataKey', input as Record<string, unknown>).catch((x: unknown) => x);
      expect((e as KmsServiceError).type).toBe('ValidationException');
    }
    const e = await local.service.call('Encrypt', { KeyId: keyId, Plaintext: 'text' }).catch((x: unknown) => x);
    expect((e as KmsServiceError).message).toMatch(/Plaintext must be a Uint8Array/);
    local.close();
  });
});
