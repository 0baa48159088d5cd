import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { constants, createHash, createPrivateKey, createPublicKey, publicEncrypt, verify as nodeVerify } from 'node:crypto';
import {
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyRotationCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyPairCommand,
  GenerateDataKeyPairWithoutPlaintextCommand,
  GenerateMacCommand,
  GetKeyRotationStatusCommand,
  GetPublicKeyCommand,
  ListKeyRotationsCommand,
  ReEncryptCommand,
  RotateKeyOnDemandCommand,
  SignCommand,
  VerifyCommand,
  VerifyMacCommand,
  type KMSClient,
  type SigningAlgorithmSpec,
} from '@aws-sdk/client-kms';
import type { LocalKmsServer } from '../../src/local-kms/index.js';
import { DAY, advanceClock, expectAwsError, startServer } from './helpers.js';

let server: LocalKmsServer;
let kms: KMSClient;
beforeAll(async () => {
  ({ server, kms } = await startServer({ testClock: true }));
});
afterAll(async () => {
  kms.destroy();
  await server.close();
});

const newKey = async (input: ConstructorParameters<typeof CreateKeyCommand>[0] = {}) =>
  (await kms.send(new CreateKeyCommand(input))).KeyMetadata!;

describe('rotation', () => {
  it('rotates on demand and automatically on the clock; old ciphertext still decrypts', async () => {
    const key = await newKey();
    const blobs: Uint8Array[] = [];
    const encrypt = async () =>
      blobs.push((await kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from(`m${blobs.length}`) }))).CiphertextBlob!);
    await encrypt();
    let status = await kms.send(new GetKeyRotationStatusCommand({ KeyId: key.KeyId }));
    expect(status.KeyRotationEnabled).toBe(false);
    const m0 = (await kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }))).KeyMetadata!.CurrentKeyMaterialId;

    await kms.send(new RotateKeyOnDemandCommand({ KeyId: key.KeyId }));
    await encrypt();
    const m1 = (await kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }))).KeyMetadata!.CurrentKeyMaterialId;
    expect(m1).not.toBe(m0);

    for (const days of [89, 2561]) {
      await expectAwsError(kms.send(new EnableKeyRotationCommand({ KeyId: key.KeyId, RotationPeriodInDays: days })), 'ValidationException');
    }
    await kms.send(new EnableKeyRotationCommand({ KeyId: key.KeyId, RotationPeriodInDays: 90 }));
    status = await kms.send(new GetKeyRotationStatusCommand({ KeyId: key.KeyId }));
    expect(status.KeyRotationEnabled).toBe(true);
    expect(status.RotationPeriodInDays).toBe(90);
    const next = status.NextRotationDate!.getTime();
    expect(next - Date.now()).toBeGreaterThan(89 * DAY * 1000);

    await advanceClock(server.url, 91 * DAY);
    await encrypt();
    const rotations = (await kms.send(new ListKeyRotationsCommand({ KeyId: key.KeyId }))).Rotations!;
    expect(rotations.map((r) => r.RotationType)).toEqual(['ON_DEMAND', 'AUTOMATIC']);
    expect(rotations[1]!.RotationDate!.getTime()).toBe(next);
    status = await kms.send(new GetKeyRotationStatusCommand({ KeyId: key.KeyId }));
    expect(status.NextRotationDate!.getTime()).toBe(next + 90 * DAY * 1000);

    // Pagination of ListKeyRotations.
    const p1 = await kms.send(new ListKeyRotationsCommand({ KeyId: key.KeyId, Limit: 1 }));
    expect(p1.Truncated).toBe(true);
    const p2 = await kms.send(new ListKeyRotationsCommand({ KeyId: key.KeyId, Limit: 1, Marker: p1.NextMarker }));
    expect(p2.Rotations![0]!.RotationType).toBe('AUTOMATIC');

    for (let i = 0; i < blobs.length; i++) {
      const dec = await kms.send(new DecryptCommand({ CiphertextBlob: blobs[i] }));
      expect(Buffer.from(dec.Plaintext!).toString()).toBe(`m${i}`);
    }
    // Three ciphertexts, three different materials.
    const materials = await Promise.all(blobs.map(async (b) => (await kms.send(new DecryptCommand({ CiphertextBlob: b }))).KeyMaterialId));
    expect(new Set(materials).size).toBe(3);

    await kms.send(new DisableKeyRotationCommand({ KeyId: key.KeyId }));
    expect((await kms.send(new GetKeyRotationStatusCommand({ KeyId: key.KeyId }))).KeyRotationEnabled).toBe(false);
    await advanceClock(server.url, 200 * DAY);
    expect((await kms.send(new ListKeyRotationsCommand({ KeyId: key.KeyId }))).Rotations!.length).toBe(2);
  });

  it('limits on-demand rotations and refuses asymmetric and HMAC keys', async () => {
    const key = await newKey();
    for (let i = 0; i < 10; i++) await kms.send(new RotateKeyOnDemandCommand({ KeyId: key.KeyId }));
    await expectAwsError(kms.send(new RotateKeyOnDemandCommand({ KeyId: key.KeyId })), 'LimitExceededException');
    const rsa = await newKey({ KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' });
    const hmac = await newKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    for (const k of [rsa, hmac]) {
      await expectAwsError(kms.send(new EnableKeyRotationCommand({ KeyId: k.KeyId })), 'UnsupportedOperationException');
      await expectAwsError(kms.send(new RotateKeyOnDemandCommand({ KeyId: k.KeyId })), 'UnsupportedOperationException');
    }
  });
});

describe('asymmetric keys', () => {
  it('describes RSA and ECC keys and returns DER public keys', async () => {
    const rsa = await newKey({ KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' });
    expect(rsa.SigningAlgorithms).toContain('RSASSA_PSS_SHA_256');
    expect(rsa.EncryptionAlgorithms).toBeUndefined();
    const pub = await kms.send(new GetPublicKeyCommand({ KeyId: rsa.KeyId }));
    expect(pub.KeySpec).toBe('RSA_2048');
    expect(pub.KeyUsage).toBe('SIGN_VERIFY');
    expect(createPublicKey({ key: Buffer.from(pub.PublicKey!), format: 'der', type: 'spki' }).asymmetricKeyDetails?.modulusLength).toBe(2048);
    const sym = await newKey();
    await expectAwsError(kms.send(new GetPublicKeyCommand({ KeyId: sym.KeyId })), 'UnsupportedOperationException');
  });

  it('signs and verifies RAW and DIGEST messages with every algorithm; signatures verify with node:crypto', async () => {
    const cases: [string, SigningAlgorithmSpec[]][] = [
      ['RSA_2048', ['RSASSA_PSS_SHA_256', 'RSASSA_PSS_SHA_384', 'RSASSA_PSS_SHA_512', 'RSASSA_PKCS1_V1_5_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_384', 'RSASSA_PKCS1_V1_5_SHA_512']],
      ['ECC_NIST_P256', ['ECDSA_SHA_256']],
      ['ECC_NIST_P384', ['ECDSA_SHA_384']],
      ['ECC_NIST_P521', ['ECDSA_SHA_512']],
      ['ECC_SECG_P256K1', ['ECDSA_SHA_256']],
    ];
    const message = Buffer.from('message to sign — ünïcode');
    for (const [spec, algorithms] of cases) {
      const key = await newKey({ KeySpec: spec as 'RSA_2048', KeyUsage: 'SIGN_VERIFY' });
      const pub = createPublicKey({
        key: Buffer.from((await kms.send(new GetPublicKeyCommand({ KeyId: key.KeyId }))).PublicKey!),
        format: 'der',
        type: 'spki',
      });
      for (const alg of algorithms) {
        const hash = `sha${alg.slice(-3)}`;
        const digest = createHash(hash).update(message).digest();
        const opts = alg.startsWith('RSASSA_PSS')
          ? { key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: digest.length }
          : alg.startsWith('RSASSA_PKCS1')
            ? { key: pub, padding: constants.RSA_PKCS1_PADDING }
            : { key: pub, dsaEncoding: 'der' as const };
        for (const [type, msg] of [['RAW', message], ['DIGEST', digest]] as const) {
          const sig = (await kms.send(new SignCommand({ KeyId: key.KeyId, Message: msg, MessageType: type, SigningAlgorithm: alg }))).Signature!;
          expect(nodeVerify(hash, message, opts, sig), `${spec} ${alg} ${type}`).toBe(true);
          // Both message types verify the same signature.
          for (const [vtype, vmsg] of [['RAW', message], ['DIGEST', digest]] as const) {
            const v = await kms.send(new VerifyCommand({ KeyId: key.KeyId, Message: vmsg, MessageType: vtype, Signature: sig, SigningAlgorithm: alg }));
            expect(v.SignatureValid).toBe(true);
          }
          const other = Buffer.from(message);
          other[0]! ^= 1;
          await expectAwsError(
            kms.send(new VerifyCommand({ KeyId: key.KeyId, Message: other, MessageType: 'RAW', Signature: sig, SigningAlgorithm: alg })),
            'KMSInvalidSignatureException',
          );
        }
        await expectAwsError(
          kms.send(new SignCommand({ KeyId: key.KeyId, Message: digest.subarray(1), MessageType: 'DIGEST', SigningAlgorithm: alg })),
          'ValidationException',
        );
      }
    }
  });

  it('refuses signing algorithms of another key type and signing with encryption keys', async () => {
    const ec = await newKey({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    await expectAwsError(kms.send(new SignCommand({ KeyId: ec.KeyId, Message: Buffer.from('x'), SigningAlgorithm: 'ECDSA_SHA_384' })), 'InvalidKeyUsageException');
    await expectAwsError(kms.send(new EncryptCommand({ KeyId: ec.KeyId, Plaintext: Buffer.from('x') })), 'InvalidKeyUsageException');
    const sym = await newKey();
    await expectAwsError(kms.send(new SignCommand({ KeyId: sym.KeyId, Message: Buffer.from('x'), SigningAlgorithm: 'ECDSA_SHA_256' })), 'InvalidKeyUsageException');
  });

  it('encrypts with RSA keys (OAEP SHA-1/SHA-256) within AWS size limits', async () => {
    const key = await newKey({ KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' });
    expect(key.EncryptionAlgorithms).toEqual(['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256']);
    const pub = createPublicKey({ key: Buffer.from((await kms.send(new GetPublicKeyCommand({ KeyId: key.KeyId }))).PublicKey!), format: 'der', type: 'spki' });
    for (const [alg, max, hash] of [['RSAES_OAEP_SHA_1', 214, 'sha1'], ['RSAES_OAEP_SHA_256', 190, 'sha256']] as const) {
      const enc = await kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.alloc(max, 7), EncryptionAlgorithm: alg }));
      expect(enc.CiphertextBlob!.length).toBe(256);
      const dec = await kms.send(new DecryptCommand({ KeyId: key.KeyId, CiphertextBlob: enc.CiphertextBlob, EncryptionAlgorithm: alg }));
      expect(Buffer.from(dec.Plaintext!).equals(Buffer.alloc(max, 7))).toBe(true);
      await expectAwsError(kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.alloc(max + 1), EncryptionAlgorithm: alg })), 'ValidationException');
      // Ciphertext made offline with the public key decrypts in KMS.
      const offline = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, Buffer.from('offline'));
      const back = await kms.send(new DecryptCommand({ KeyId: key.KeyId, CiphertextBlob: offline, EncryptionAlgorithm: alg }));
      expect(Buffer.from(back.Plaintext!).toString()).toBe('offline');
    }
    await expectAwsError(kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from('x') })), 'InvalidKeyUsageException');
    await expectAwsError(kms.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, NumberOfBytes: 32 })), 'InvalidKeyUsageException');
    const enc = await kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }));
    await expectAwsError(kms.send(new DecryptCommand({ KeyId: key.KeyId, CiphertextBlob: enc.CiphertextBlob, EncryptionAlgorithm: 'RSAES_OAEP_SHA_1' })), 'InvalidCiphertextException');
    // ReEncrypt from RSA to a symmetric key.
    const sym = await newKey();
    const re = await kms.send(
      new ReEncryptCommand({ CiphertextBlob: enc.CiphertextBlob, SourceKeyId: key.KeyId, SourceEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', DestinationKeyId: sym.KeyId }),
    );
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: re.CiphertextBlob }))).Plaintext!).toString()).toBe('x');
  });

  it('generates data key pairs whose private key decrypts under the KMS key', async () => {
    const key = await newKey();
    const pair = await kms.send(new GenerateDataKeyPairCommand({ KeyId: key.KeyId, KeyPairSpec: 'ECC_NIST_P256', EncryptionContext: { use: 'pair' } }));
    expect(pair.KeyPairSpec).toBe('ECC_NIST_P256');
    const priv = createPrivateKey({ key: Buffer.from(pair.PrivateKeyPlaintext!), format: 'der', type: 'pkcs8' });
    expect(createPublicKey(priv).export({ type: 'spki', format: 'der' }).equals(Buffer.from(pair.PublicKey!))).toBe(true);
    const dec = await kms.send(new DecryptCommand({ CiphertextBlob: pair.PrivateKeyCiphertextBlob, EncryptionContext: { use: 'pair' } }));
    expect(Buffer.from(dec.Plaintext!).equals(Buffer.from(pair.PrivateKeyPlaintext!))).toBe(true);
    const np = await kms.send(new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: key.KeyId, KeyPairSpec: 'RSA_2048' }));
    expect((np as { PrivateKeyPlaintext?: unknown }).PrivateKeyPlaintext).toBeUndefined();
    expect(createPublicKey({ key: Buffer.from(np.PublicKey!), format: 'der', type: 'spki' }).asymmetricKeyDetails?.modulusLength).toBe(2048);
  });
});

describe('HMAC keys', () => {
  it('generates and verifies MACs', async () => {
    const key = await newKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    expect(key.MacAlgorithms).toEqual(['HMAC_SHA_256']);
    const mac = await kms.send(new GenerateMacCommand({ KeyId: key.KeyId, Message: Buffer.from('hello'), MacAlgorithm: 'HMAC_SHA_256' }));
    expect(mac.Mac!.length).toBe(32);
    const again = await kms.send(new GenerateMacCommand({ KeyId: key.KeyId, Message: Buffer.from('hello'), MacAlgorithm: 'HMAC_SHA_256' }));
    expect(Buffer.from(again.Mac!).equals(Buffer.from(mac.Mac!))).toBe(true);
    const ok = await kms.send(new VerifyMacCommand({ KeyId: key.KeyId, Message: Buffer.from('hello'), MacAlgorithm: 'HMAC_SHA_256', Mac: mac.Mac }));
    expect(ok.MacValid).toBe(true);
    await expectAwsError(
      kms.send(new VerifyMacCommand({ KeyId: key.KeyId, Message: Buffer.from('hellO'), MacAlgorithm: 'HMAC_SHA_256', Mac: mac.Mac })),
      'KMSInvalidMacException',
    );
    await expectAwsError(kms.send(new GenerateMacCommand({ KeyId: key.KeyId, Message: Buffer.from('x'), MacAlgorithm: 'HMAC_SHA_512' })), 'InvalidKeyUsageException');
    const h512 = await newKey({ KeySpec: 'HMAC_512', KeyUsage: 'GENERATE_VERIFY_MAC' });
    expect((await kms.send(new GenerateMacCommand({ KeyId: h512.KeyId, Message: Buffer.from('x'), MacAlgorithm: 'HMAC_SHA_512' }))).Mac!.length).toBe(64);
  });
});
