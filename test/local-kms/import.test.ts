import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants, createCipheriv, createHmac, createPublicKey, generateKeyPairSync, publicEncrypt, randomBytes, verify as nodeVerify } from 'node:crypto';
import {
  CreateKeyCommand,
  DecryptCommand,
  DeleteImportedKeyMaterialCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateMacCommand,
  GetPublicKeyCommand,
  SignCommand,
  GetParametersForImportCommand,
  ImportKeyMaterialCommand,
  type KMSClient,
} from '@aws-sdk/client-kms';
import type { LocalKmsServer } from '../../src/local-kms/index.js';
import { Envelope } from '../../src/index.js';
import { DAY, advanceClock, expectAwsError, startServer, tempDir } from './helpers.js';

function allFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? allFiles(join(dir, d.name)) : [join(dir, d.name)],
  );
}

describe('imported key material (origin EXTERNAL) over HTTP', () => {
  let server: LocalKmsServer;
  let kms: KMSClient;
  const tmp = tempDir('lkms-import-');
  const dataDir = join(tmp.dir, 'data');

  beforeAll(async () => {
    ({ server, kms } = await startServer({ dataDir, testClock: true }));
  });
  afterAll(async () => {
    kms.destroy();
    await server.close();
    tmp.cleanup();
  });

  async function externalKey(): Promise<string> {
    const md = (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL', Description: 'imported' }))).KeyMetadata!;
    expect(md.KeyState).toBe('PendingImport');
    expect(md.Origin).toBe('EXTERNAL');
    expect(md.Enabled).toBe(false);
    return md.KeyId!;
  }

  /** The user's steps from the AWS KMS Developer Guide, run with the openssl binary. */
  async function opensslImport(keyId: string, dir: string, extra: { ValidTo?: Date; ExpirationModel?: 'KEY_MATERIAL_EXPIRES' | 'KEY_MATERIAL_DOES_NOT_EXPIRE' } = {}, material?: string) {
    const params = await kms.send(
      new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_1', WrappingKeySpec: 'RSA_2048' }),
    );
    writeFileSync(join(dir, 'PublicKey.bin'), params.PublicKey!);
    writeFileSync(join(dir, 'ImportToken.bin'), params.ImportToken!);
    const plainFile = material ?? join(dir, 'PlaintextKeyMaterial.bin');
    if (!material) execFileSync('openssl', ['rand', '-out', plainFile, '32']);
    execFileSync(
      'openssl',
      ['pkeyutl', '-encrypt', '-in', plainFile, '-out', join(dir, 'EncryptedKeyMaterial.bin'), '-inkey', join(dir, 'PublicKey.bin'),
        '-keyform', 'DER', '-pubin', '-pkeyopt', 'rsa_padding_mode:oaep', '-pkeyopt', 'rsa_oaep_md:sha1'],
    );
    await kms.send(
      new ImportKeyMaterialCommand({
        KeyId: keyId,
        ImportToken: readFileSync(join(dir, 'ImportToken.bin')),
        EncryptedKeyMaterial: readFileSync(join(dir, 'EncryptedKeyMaterial.bin')),
        ExpirationModel: extra.ExpirationModel ?? 'KEY_MATERIAL_DOES_NOT_EXPIRE',
        ...(extra.ValidTo ? { ValidTo: extra.ValidTo } : {}),
      }),
    );
    return { params, plainFile };
  }

  it('imports material wrapped by openssl (RSAES_OAEP_SHA_1, RSA_2048); Encrypt/Decrypt then work', async () => {
    const keyId = await externalKey();
    const work = tempDir('lkms-openssl-');
    try {
      const { params, plainFile } = await opensslImport(keyId, work.dir);
      // The wrapping key is DER SubjectPublicKeyInfo, RSA 2048, valid 24 hours.
      const pub = createPublicKey({ key: Buffer.from(params.PublicKey!), format: 'der', type: 'spki' });
      expect(pub.asymmetricKeyDetails?.modulusLength).toBe(2048);
      const validFor = params.ParametersValidTo!.getTime() - Date.now();
      expect(validFor).toBeGreaterThan(24 * 3600_000 - 60_000);
      expect(validFor).toBeLessThanOrEqual(24 * 3600_000 + 1000);

      const md = (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
      expect(md.KeyState).toBe('Enabled');
      expect(md.ExpirationModel).toBe('KEY_MATERIAL_DOES_NOT_EXPIRE');
      const enc = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('with imported key'), EncryptionContext: { k: 'v' } }));
      const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { k: 'v' } }));
      expect(Buffer.from(dec.Plaintext!).toString()).toBe('with imported key');

      // The library on top: an Envelope whose data keys come from the imported key (decrypting
      // names it by key ARN: aws-kms-keyring.md "OnDecrypt").
      const keyArn = md.Arn!;
      const envelope = new Envelope({ kms: { keyId, client: kms } });
      const message = await envelope.encrypt('envelope under imported material', { context: { tenant: 'a' } });
      const opened = await new Envelope({ kms: { keyId: keyArn, client: kms }, cache: false }).decrypt(message, { context: { tenant: 'a' } });
      expect(opened.plaintext.toString()).toBe('envelope under imported material');

      // The imported material is not stored in plaintext anywhere in the data directory.
      const material = readFileSync(plainFile);
      for (const f of allFiles(dataDir)) {
        const content = readFileSync(f);
        for (const form of [material, Buffer.from(material.toString('base64')), Buffer.from(material.toString('hex'))]) {
          expect(content.includes(form)).toBe(false);
        }
      }

      // Rotation is not available for imported material.
      await expectAwsError(kms.send(new EnableKeyRotationCommand({ KeyId: keyId })), 'UnsupportedOperationException');

      // Delete, then re-import the same material: old ciphertext decrypts again.
      await kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: keyId }));
      expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe('PendingImport');
      await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { k: 'v' } })), 'KMSInvalidStateException');
      await expectAwsError(kms.send(new DisableKeyCommand({ KeyId: keyId })), 'KMSInvalidStateException');
      await expect(new Envelope({ kms: { keyId: keyArn, client: kms }, cache: false }).decrypt(message)).rejects.toMatchObject({
        code: 'ERR_NO_DECRYPTABLE_KEY',
        message: expect.stringMatching(/KMSInvalidStateException/),
      });
      await opensslImport(keyId, work.dir, {}, plainFile);
      const again = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { k: 'v' } }));
      expect(Buffer.from(again.Plaintext!).toString()).toBe('with imported key');
      const reopened = await new Envelope({ kms: { keyId: keyArn, client: kms }, cache: false }).decrypt(message);
      expect(reopened.plaintext.toString()).toBe('envelope under imported material');

      // Different material for the same key is refused.
      writeFileSync(join(work.dir, 'Other.bin'), randomBytes(32));
      await expectAwsError(opensslImport(keyId, work.dir, {}, join(work.dir, 'Other.bin')), 'IncorrectKeyMaterialException');
    } finally {
      work.cleanup();
    }
  });

  it('rejects an import token once 24 hours have passed (ExpiredImportTokenException)', async () => {
    const keyId = await externalKey();
    const params = await kms.send(
      new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_1', WrappingKeySpec: 'RSA_2048' }),
    );
    const material = randomBytes(32);
    const wrapped = publicEncrypt(
      { key: createPublicKey({ key: Buffer.from(params.PublicKey!), format: 'der', type: 'spki' }), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
      material,
    );
    await advanceClock(server.url, DAY + 60);
    await expectAwsError(
      kms.send(new ImportKeyMaterialCommand({ KeyId: keyId, ImportToken: params.ImportToken, EncryptedKeyMaterial: wrapped, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' })),
      'ExpiredImportTokenException',
    );
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe('PendingImport');
  });

  it('makes the key PendingImport when material with ValidTo expires', async () => {
    const keyId = await externalKey();
    const work = tempDir('lkms-openssl-');
    try {
      const now = (await (await fetch(`${server.url}/_local/clock`)).json()) as { now: number };
      const validTo = new Date((now.now + 2 * DAY) * 1000);
      await opensslImport(keyId, work.dir, { ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: validTo });
      const md = (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
      expect(md.ExpirationModel).toBe('KEY_MATERIAL_EXPIRES');
      expect(md.ValidTo!.getTime()).toBe(validTo.getTime());
      const dk = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, NumberOfBytes: 32 }));
      await advanceClock(server.url, DAY);
      expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe('Enabled');
      await advanceClock(server.url, DAY + 1);
      const after = (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
      expect(after.KeyState).toBe('PendingImport');
      expect(after.ValidTo).toBeUndefined();
      const e = await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob })), 'KMSInvalidStateException');
      expect(e.message).toMatch(/is pending import/);
      await expectAwsError(kms.send(new EnableKeyCommand({ KeyId: keyId })), 'KMSInvalidStateException');
      // Re-importing the same material restores it.
      await opensslImport(keyId, work.dir, {}, join(work.dir, 'PlaintextKeyMaterial.bin'));
      expect((await kms.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob }))).Plaintext!.length).toBe(32);
    } finally {
      work.cleanup();
    }
  });

  it('validates tokens, wrapping and expiration parameters', async () => {
    const keyId = await externalKey();
    const other = await externalKey();
    const p1 = await kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' }));
    const pub = createPublicKey({ key: Buffer.from(p1.PublicKey!), format: 'der', type: 'spki' });
    const material = randomBytes(32);
    const wrap = (hash: string, m = material) => publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, m);
    const base = { KeyId: keyId, ImportToken: p1.ImportToken, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' as const };
    // Token of another key, forged token.
    await expectAwsError(kms.send(new ImportKeyMaterialCommand({ ...base, KeyId: other, EncryptedKeyMaterial: wrap('sha256') })), 'InvalidImportTokenException');
    const forged = Buffer.from(p1.ImportToken!);
    forged[20]! ^= 1;
    await expectAwsError(kms.send(new ImportKeyMaterialCommand({ ...base, ImportToken: forged, EncryptedKeyMaterial: wrap('sha256') })), 'InvalidImportTokenException');
    // Wrapped with the wrong OAEP hash: cannot be unwrapped.
    await expectAwsError(kms.send(new ImportKeyMaterialCommand({ ...base, EncryptedKeyMaterial: wrap('sha1') })), 'InvalidCiphertextException');
    // Material of the wrong size.
    await expectAwsError(kms.send(new ImportKeyMaterialCommand({ ...base, EncryptedKeyMaterial: wrap('sha256', randomBytes(16)) })), 'IncorrectKeyMaterialException');
    // ValidTo rules.
    await expectAwsError(kms.send(new ImportKeyMaterialCommand({ ...base, ExpirationModel: 'KEY_MATERIAL_EXPIRES', EncryptedKeyMaterial: wrap('sha256') })), 'ValidationException');
    // ExpirationModel defaults to KEY_MATERIAL_EXPIRES, so omitting both it and ValidTo is invalid.
    await expectAwsError(kms.send(new ImportKeyMaterialCommand({ KeyId: keyId, ImportToken: p1.ImportToken, EncryptedKeyMaterial: wrap('sha256') })), 'ValidationException');
    await expectAwsError(
      kms.send(new ImportKeyMaterialCommand({ ...base, ValidTo: new Date(Date.now() + 3600_000), EncryptedKeyMaterial: wrap('sha256') })),
      'ValidationException',
    );
    // A newer GetParametersForImport supersedes the older token.
    await kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' }));
    await expectAwsError(kms.send(new ImportKeyMaterialCommand({ ...base, EncryptedKeyMaterial: wrap('sha256') })), 'InvalidImportTokenException');
    // Not an EXTERNAL key.
    const normal = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    await expectAwsError(
      kms.send(new GetParametersForImportCommand({ KeyId: normal, WrappingAlgorithm: 'RSAES_OAEP_SHA_1', WrappingKeySpec: 'RSA_2048' })),
      'UnsupportedOperationException',
    );
    await expectAwsError(
      kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: 'RSAES_PKCS1_V1_5', WrappingKeySpec: 'RSA_2048' })),
      'ValidationException',
    );
  });

  it('unwraps RSA_AES_KEY_WRAP_SHA_256 (RSA-OAEP ephemeral AES key + RFC 5649 key wrap), also via openssl', async () => {
    const keyId = await externalKey();
    const p = await kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: 'RSA_AES_KEY_WRAP_SHA_256', WrappingKeySpec: 'RSA_3072' }));
    const work = tempDir('lkms-kwp-');
    try {
      writeFileSync(join(work.dir, 'PublicKey.bin'), p.PublicKey!);
      execFileSync('openssl', ['rand', '-out', join(work.dir, 'PlaintextKeyMaterial.bin'), '32']);
      // The AWS guide's steps: a random 256-bit AES key, RSA-OAEP(SHA-256, MGF1 SHA-256) around it,
      // the material wrapped with AES key wrap with padding (RFC 5649), then the two concatenated.
      const aesHex = execFileSync('openssl', ['rand', '-hex', '32']).toString().trim();
      writeFileSync(join(work.dir, 'aes.key'), Buffer.from(aesHex, 'hex'));
      execFileSync('openssl', ['pkeyutl', '-encrypt', '-in', join(work.dir, 'aes.key'), '-out', join(work.dir, 'EncryptedAesKey.bin'),
        '-inkey', join(work.dir, 'PublicKey.bin'), '-keyform', 'DER', '-pubin',
        '-pkeyopt', 'rsa_padding_mode:oaep', '-pkeyopt', 'rsa_oaep_md:sha256', '-pkeyopt', 'rsa_mgf1_md:sha256']);
      execFileSync('openssl', ['enc', '-id-aes256-wrap-pad', '-K', aesHex, '-iv', 'A65959A6',
        '-in', join(work.dir, 'PlaintextKeyMaterial.bin'), '-out', join(work.dir, 'KeyMaterialWrapped.bin')]);
      const wrapped = readFileSync(join(work.dir, 'KeyMaterialWrapped.bin'));
      const upload = Buffer.concat([readFileSync(join(work.dir, 'EncryptedAesKey.bin')), wrapped]);
      expect(upload.length).toBe(384 + 40);
      await kms.send(new ImportKeyMaterialCommand({ KeyId: keyId, ImportToken: p.ImportToken, EncryptedKeyMaterial: upload, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }));
      const enc = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('kwp') }));
      expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }))).Plaintext!).toString()).toBe('kwp');
      // A damaged wrapped part fails the RFC 5649 integrity check.
      const bad = Buffer.from(upload);
      bad[bad.length - 1]! ^= 1;
      await expectAwsError(
        kms.send(new ImportKeyMaterialCommand({ KeyId: keyId, ImportToken: p.ImportToken, EncryptedKeyMaterial: bad, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' })),
        'InvalidCiphertextException',
      );
    } finally {
      work.cleanup();
    }
  });

  it('imports HMAC and asymmetric (PKCS #8) key material', async () => {
    const importInto = async (keyId: string, material: Buffer, algorithm: 'RSAES_OAEP_SHA_256' | 'RSA_AES_KEY_WRAP_SHA_256') => {
      const p = await kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: algorithm, WrappingKeySpec: 'RSA_2048' }));
      const pub = createPublicKey({ key: Buffer.from(p.PublicKey!), format: 'der', type: 'spki' });
      const oaep = (m: Buffer) => publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, m);
      let upload: Buffer;
      if (algorithm === 'RSAES_OAEP_SHA_256') upload = oaep(material);
      else {
        const aes = randomBytes(32);
        const c = createCipheriv('id-aes256-wrap-pad', aes, Buffer.from('a65959a6', 'hex'));
        upload = Buffer.concat([oaep(aes), c.update(material), c.final()]);
      }
      return kms.send(new ImportKeyMaterialCommand({ KeyId: keyId, ImportToken: p.ImportToken, EncryptedKeyMaterial: upload, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }));
    };

    const hmacKey = (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL', KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }))).KeyMetadata!.KeyId!;
    await expectAwsError(importInto(hmacKey, randomBytes(16), 'RSAES_OAEP_SHA_256'), 'IncorrectKeyMaterialException');
    const secret = randomBytes(48);
    await importInto(hmacKey, secret, 'RSAES_OAEP_SHA_256');
    const mac = await kms.send(new GenerateMacCommand({ KeyId: hmacKey, Message: Buffer.from('m'), MacAlgorithm: 'HMAC_SHA_256' }));
    expect(Buffer.from(mac.Mac!).equals(createHmac('sha256', secret).update('m').digest())).toBe(true);

    const ecKey = (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL', KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.KeyId!;
    await expectAwsError(kms.send(new GetPublicKeyCommand({ KeyId: ecKey })), 'KMSInvalidStateException');
    const wrongCurve = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ type: 'pkcs8', format: 'der' });
    await expectAwsError(importInto(ecKey, wrongCurve, 'RSAES_OAEP_SHA_256'), 'IncorrectKeyMaterialException');
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    await importInto(ecKey, ec.privateKey.export({ type: 'pkcs8', format: 'der' }), 'RSAES_OAEP_SHA_256');
    const pub = (await kms.send(new GetPublicKeyCommand({ KeyId: ecKey }))).PublicKey!;
    expect(Buffer.from(pub).equals(ec.publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
    const sig = (await kms.send(new SignCommand({ KeyId: ecKey, Message: Buffer.from('doc'), SigningAlgorithm: 'ECDSA_SHA_256' }))).Signature!;
    expect(nodeVerify('sha256', Buffer.from('doc'), { key: ec.publicKey, dsaEncoding: 'der' }, sig)).toBe(true);

    // An RSA private key is too large for RSAES_OAEP: it needs RSA_AES_KEY_WRAP.
    const rsaKey = (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL', KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.KeyId!;
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const der = rsa.privateKey.export({ type: 'pkcs8', format: 'der' });
    await importInto(rsaKey, der, 'RSA_AES_KEY_WRAP_SHA_256');
    const rsaSig = (await kms.send(new SignCommand({ KeyId: rsaKey, Message: Buffer.from('doc'), SigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256' }))).Signature!;
    expect(nodeVerify('sha256', Buffer.from('doc'), rsa.publicKey, rsaSig)).toBe(true);
    const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'der' });
    await expectAwsError(importInto(rsaKey, otherRsa, 'RSA_AES_KEY_WRAP_SHA_256'), 'IncorrectKeyMaterialException');
  });
});
