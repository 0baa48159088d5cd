import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CreateGrantCommand,
  CreateKeyCommand,
  DecapsulateCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncapsulateCommand,
  EncryptCommand,
  GenerateDataKeyPairCommand,
  GetKeyLastUsageCommand,
  GetPublicKeyCommand,
  PutKeyPolicyCommand,
  ReEncryptCommand,
  ScheduleKeyDeletionCommand,
  SignCommand,
  VerifyCommand,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { ml_kem512, ml_kem768, ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { ml_dsa44, ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';
import { ed25519ph } from '@noble/curves/ed25519.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePkcs8Seed, decodeSpki } from '../../src/local-kms/pq.js';
import type { LocalKmsServer } from '../../src/local-kms/index.js';
import { advanceClock, expectAwsError, startServer, tempDir } from './helpers.js';

/**
 * ML-KEM, ML-DSA and Ed25519 keys, and GetKeyLastUsage, over HTTP with @aws-sdk/client-kms. What
 * the local KMS produces is checked outside it: ML-KEM and ML-DSA with @noble/post-quantum (the
 * reference the NIST ACVP vectors check, pq-vectors.test.ts), pure Ed25519 with node:crypto and
 * the OpenSSL command line, Ed25519ph with @noble/curves (checked against RFC 8032 §7.3).
 */

const KEM = { ML_KEM_512: ml_kem512, ML_KEM_768: ml_kem768, ML_KEM_1024: ml_kem1024 } as const;
const DSA = { ML_DSA_44: ml_dsa44, ML_DSA_65: ml_dsa65, ML_DSA_87: ml_dsa87 } as const;
const CT_BYTES = { ML_KEM_512: 768, ML_KEM_768: 1088, ML_KEM_1024: 1568 } as const;

let server: LocalKmsServer;
let kms: KMSClient;
const tmp = tempDir('lkms-pq-');
beforeAll(async () => {
  ({ server, kms } = await startServer({ testClock: true }));
});
afterAll(async () => {
  kms.destroy();
  await server.close();
  tmp.cleanup();
});

async function createKey(KeySpec: string, KeyUsage: string): Promise<string> {
  const out = await kms.send(new CreateKeyCommand({ KeySpec: KeySpec as never, KeyUsage: KeyUsage as never }));
  return out.KeyMetadata!.Arn!;
}

describe('ML-KEM keys', () => {
  it.each(Object.keys(KEM) as (keyof typeof KEM)[])('%s: created, described, GetPublicKey; client-side Encapsulate with the public key equals Decapsulate here; Encapsulate here equals Decapsulate here', async (spec) => {
    const KeyId = await createKey(spec, 'ENCAPSULATE_DECAPSULATE');
    const md = (await kms.send(new DescribeKeyCommand({ KeyId }))).KeyMetadata!;
    expect(md).toMatchObject({ KeySpec: spec, KeyUsage: 'ENCAPSULATE_DECAPSULATE', EncapsulationAlgorithms: ['ML_KEM'] });
    expect(md.SigningAlgorithms).toBeUndefined();
    const pub = await kms.send(new GetPublicKeyCommand({ KeyId }));
    expect(pub).toMatchObject({ KeySpec: spec, KeyUsage: 'ENCAPSULATE_DECAPSULATE', EncapsulationAlgorithms: ['ML_KEM'] });
    const ek = decodeSpki(pub.PublicKey!)!;
    expect(ek.parameterSet).toBe(spec.replace(/_/g, '-').replace('ML-KEM-', 'ML-KEM-'));

    const mine = KEM[spec].encapsulate(ek.publicKey);
    const theirs = await kms.send(new DecapsulateCommand({ KeyId, EncapsulationAlgorithm: 'ML_KEM', SharedSecretCiphertextBlob: mine.cipherText }));
    expect(Buffer.from(theirs.SharedSecret!).equals(Buffer.from(mine.sharedSecret))).toBe(true);
    expect(theirs).toMatchObject({ KeyId, EncapsulationAlgorithm: 'ML_KEM' });

    const enc = await kms.send(new EncapsulateCommand({ KeyId, EncapsulationAlgorithm: 'ML_KEM' }));
    expect(enc.SharedSecret!.length).toBe(32);
    expect(enc.SharedSecretCiphertextBlob!.length).toBe(CT_BYTES[spec]);
    const dec = await kms.send(new DecapsulateCommand({ KeyId, EncapsulationAlgorithm: 'ML_KEM', SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob! }));
    expect(Buffer.from(dec.SharedSecret!).equals(Buffer.from(enc.SharedSecret!))).toBe(true);
  });

  it('refused in the wrong usage, with the wrong ciphertext length, and in the wrong key states', async () => {
    await expectAwsError(kms.send(new CreateKeyCommand({ KeySpec: 'ML_KEM_768', KeyUsage: 'SIGN_VERIFY' })), 'ValidationException');
    await expectAwsError(kms.send(new CreateKeyCommand({ KeySpec: 'ML_KEM_768' })), 'ValidationException'); // default ENCRYPT_DECRYPT
    await expectAwsError(kms.send(new CreateKeyCommand({ KeySpec: 'ML_DSA_65', KeyUsage: 'ENCAPSULATE_DECAPSULATE' })), 'ValidationException');
    const KeyId = await createKey('ML_KEM_768', 'ENCAPSULATE_DECAPSULATE');
    await expectAwsError(kms.send(new SignCommand({ KeyId, Message: Buffer.from('m'), SigningAlgorithm: 'ML_DSA_SHAKE_256' })), 'InvalidKeyUsageException');
    await expectAwsError(kms.send(new EncryptCommand({ KeyId, Plaintext: Buffer.from('m') })), 'InvalidKeyUsageException');
    await expectAwsError(
      kms.send(new DecapsulateCommand({ KeyId, EncapsulationAlgorithm: 'ML_KEM', SharedSecretCiphertextBlob: Buffer.alloc(768) })),
      'InvalidCiphertextException',
    );
    // Altered ciphertext of the right length: implicit rejection, 32 bytes that are not the secret.
    const enc = await kms.send(new EncapsulateCommand({ KeyId, EncapsulationAlgorithm: 'ML_KEM' }));
    const altered = Buffer.from(enc.SharedSecretCiphertextBlob!);
    altered[7]! ^= 0x40;
    const rej = await kms.send(new DecapsulateCommand({ KeyId, EncapsulationAlgorithm: 'ML_KEM', SharedSecretCiphertextBlob: altered }));
    expect(rej.SharedSecret!.length).toBe(32);
    expect(Buffer.from(rej.SharedSecret!).equals(Buffer.from(enc.SharedSecret!))).toBe(false);
    // Another key's usage for Encapsulate.
    const signing = await createKey('ML_DSA_44', 'SIGN_VERIFY');
    await expectAwsError(kms.send(new EncapsulateCommand({ KeyId: signing, EncapsulationAlgorithm: 'ML_KEM' })), 'InvalidKeyUsageException');
    const symmetric = await createKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    await expectAwsError(kms.send(new DecapsulateCommand({ KeyId: symmetric, EncapsulationAlgorithm: 'ML_KEM', SharedSecretCiphertextBlob: Buffer.alloc(1088) })), 'InvalidKeyUsageException');
    // States.
    await kms.send(new DisableKeyCommand({ KeyId }));
    await expectAwsError(kms.send(new EncapsulateCommand({ KeyId, EncapsulationAlgorithm: 'ML_KEM' })), 'DisabledException');
    await expectAwsError(kms.send(new DecapsulateCommand({ KeyId, EncapsulationAlgorithm: 'ML_KEM', SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob! })), 'DisabledException');
    await kms.send(new EnableKeyCommand({ KeyId }));
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId, PendingWindowInDays: 7 }));
    await expectAwsError(kms.send(new EncapsulateCommand({ KeyId, EncapsulationAlgorithm: 'ML_KEM' })), 'KMSInvalidStateException');
    // DryRun: answered after the checks, no secret.
    const k2 = await createKey('ML_KEM_512', 'ENCAPSULATE_DECAPSULATE');
    await expectAwsError(kms.send(new EncapsulateCommand({ KeyId: k2, EncapsulationAlgorithm: 'ML_KEM', DryRun: true })), 'DryRunOperationException');
  });

  it('key policy: a Deny of kms:Decapsulate conditioned on kms:KeySpec refuses Decapsulate and leaves Encapsulate; grants may name Encapsulate/Decapsulate on ML-KEM keys only', async () => {
    const KeyId = await createKey('ML_KEM_1024', 'ENCAPSULATE_DECAPSULATE');
    const root = 'arn:aws:iam::111122223333:root';
    const policy = {
      Version: '2012-10-17',
      Statement: [
        { Sid: 'root', Effect: 'Allow', Principal: { AWS: root }, Action: 'kms:*', Resource: '*' },
        { Sid: 'no-decap', Effect: 'Deny', Principal: { AWS: root }, Action: 'kms:Decapsulate', Resource: '*', Condition: { StringEquals: { 'kms:KeySpec': 'ML_KEM_1024', 'kms:KeyUsage': 'ENCAPSULATE_DECAPSULATE' } } },
      ],
    };
    await kms.send(new PutKeyPolicyCommand({ KeyId, PolicyName: 'default', Policy: JSON.stringify(policy) }));
    const enc = await kms.send(new EncapsulateCommand({ KeyId, EncapsulationAlgorithm: 'ML_KEM' }));
    await expectAwsError(kms.send(new DecapsulateCommand({ KeyId, EncapsulationAlgorithm: 'ML_KEM', SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob! })), 'AccessDeniedException');

    const kem = await createKey('ML_KEM_512', 'ENCAPSULATE_DECAPSULATE');
    const grant = await kms.send(new CreateGrantCommand({ KeyId: kem, GranteePrincipal: 'arn:aws:iam::111122223333:role/peer', Operations: ['Encapsulate', 'Decapsulate', 'GetPublicKey'] }));
    expect(grant.GrantId).toBeTruthy();
    await expectAwsError(kms.send(new CreateGrantCommand({ KeyId: kem, GranteePrincipal: 'arn:aws:iam::111122223333:role/peer', Operations: ['Sign'] })), 'ValidationException');
    const sym = await createKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    await expectAwsError(kms.send(new CreateGrantCommand({ KeyId: sym, GranteePrincipal: 'arn:aws:iam::111122223333:role/peer', Operations: ['Encapsulate'] })), 'ValidationException');
  });
});

/** FIPS 204 §6.2 mu with an empty context, computed with node:crypto. */
function externalMu(pk: Uint8Array, message: Uint8Array): Buffer {
  const tr = createHash('shake256', { outputLength: 64 }).update(pk).digest();
  return createHash('shake256', { outputLength: 64 }).update(tr).update(Buffer.from([0, 0])).update(message).digest();
}

describe('ML-DSA keys', () => {
  it.each(Object.keys(DSA) as (keyof typeof DSA)[])('%s: Sign RAW and EXTERNAL_MU, both verified outside the local KMS as pure ML-DSA of the message, and by Verify', async (spec) => {
    const KeyId = await createKey(spec, 'SIGN_VERIFY');
    const md = (await kms.send(new DescribeKeyCommand({ KeyId }))).KeyMetadata!;
    expect(md).toMatchObject({ KeySpec: spec, KeyUsage: 'SIGN_VERIFY', SigningAlgorithms: ['ML_DSA_SHAKE_256'] });
    const pk = decodeSpki((await kms.send(new GetPublicKeyCommand({ KeyId }))).PublicKey!)!.publicKey;
    const message = Buffer.from(`firmware image for ${spec}`);
    const raw = await kms.send(new SignCommand({ KeyId, Message: message, MessageType: 'RAW', SigningAlgorithm: 'ML_DSA_SHAKE_256' }));
    expect(DSA[spec].verify(raw.Signature!, message, pk)).toBe(true);
    const mu = externalMu(pk, message);
    const viaMu = await kms.send(new SignCommand({ KeyId, Message: mu, MessageType: 'EXTERNAL_MU', SigningAlgorithm: 'ML_DSA_SHAKE_256' }));
    expect(DSA[spec].verify(viaMu.Signature!, message, pk)).toBe(true);
    const ok = await kms.send(new VerifyCommand({ KeyId, Message: message, Signature: viaMu.Signature!, SigningAlgorithm: 'ML_DSA_SHAKE_256' }));
    expect(ok.SignatureValid).toBe(true);
    const okMu = await kms.send(new VerifyCommand({ KeyId, Message: mu, MessageType: 'EXTERNAL_MU', Signature: raw.Signature!, SigningAlgorithm: 'ML_DSA_SHAKE_256' }));
    expect(okMu.SignatureValid).toBe(true);
    await expectAwsError(kms.send(new VerifyCommand({ KeyId, Message: Buffer.from('other'), Signature: raw.Signature!, SigningAlgorithm: 'ML_DSA_SHAKE_256' })), 'KMSInvalidSignatureException');
  });

  it('refused: DIGEST, EXTERNAL_MU of the wrong length, another algorithm, EXTERNAL_MU on other keys, Encrypt', async () => {
    const KeyId = await createKey('ML_DSA_65', 'SIGN_VERIFY');
    await expectAwsError(kms.send(new SignCommand({ KeyId, Message: Buffer.alloc(64), MessageType: 'DIGEST', SigningAlgorithm: 'ML_DSA_SHAKE_256' })), 'InvalidKeyUsageException');
    await expectAwsError(kms.send(new SignCommand({ KeyId, Message: Buffer.alloc(32), MessageType: 'EXTERNAL_MU', SigningAlgorithm: 'ML_DSA_SHAKE_256' })), 'ValidationException');
    await expectAwsError(kms.send(new SignCommand({ KeyId, Message: Buffer.alloc(32), SigningAlgorithm: 'ECDSA_SHA_256' })), 'InvalidKeyUsageException');
    await expectAwsError(kms.send(new EncryptCommand({ KeyId, Plaintext: Buffer.from('x') })), 'InvalidKeyUsageException');
    const ec = await createKey('ECC_NIST_P256', 'SIGN_VERIFY');
    await expectAwsError(kms.send(new SignCommand({ KeyId: ec, Message: Buffer.alloc(64), MessageType: 'EXTERNAL_MU', SigningAlgorithm: 'ECDSA_SHA_256' })), 'InvalidKeyUsageException');
  });
});

describe('Ed25519 keys (ECC_NIST_EDWARDS25519)', () => {
  it('ED25519_SHA_512 with RAW verifies with node:crypto and the OpenSSL command line; ED25519_PH_SHA_512 with DIGEST is Ed25519ph over the digest', async () => {
    const KeyId = await createKey('ECC_NIST_EDWARDS25519', 'SIGN_VERIFY');
    const md = (await kms.send(new DescribeKeyCommand({ KeyId }))).KeyMetadata!;
    expect(md.SigningAlgorithms).toEqual(['ED25519_SHA_512', 'ED25519_PH_SHA_512']);
    const spki = Buffer.from((await kms.send(new GetPublicKeyCommand({ KeyId }))).PublicKey!);
    const pub = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    expect(pub.asymmetricKeyType).toBe('ed25519');
    const message = Buffer.from('release-1.2.3.tar.gz');
    const sig = Buffer.from((await kms.send(new SignCommand({ KeyId, Message: message, MessageType: 'RAW', SigningAlgorithm: 'ED25519_SHA_512' }))).Signature!);
    expect(sig.length).toBe(64);
    expect(nodeVerify(null, message, pub, sig)).toBe(true);
    const pem = join(tmp.dir, 'ed.pem');
    writeFileSync(pem, pub.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(tmp.dir, 'msg'), message);
    writeFileSync(join(tmp.dir, 'sig'), sig);
    const out = execFileSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', pem, '-rawin', '-in', join(tmp.dir, 'msg'), '-sigfile', join(tmp.dir, 'sig')], { encoding: 'utf8' });
    expect(out).toContain('Signature Verified Successfully');

    const digest = createHash('sha512').update(message).digest();
    const ph = Buffer.from((await kms.send(new SignCommand({ KeyId, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: 'ED25519_PH_SHA_512' }))).Signature!);
    const raw = Buffer.from(pub.export({ format: 'jwk' }).x!, 'base64url');
    expect(ed25519ph.verify(ph, digest, raw)).toBe(true);
    expect((await kms.send(new VerifyCommand({ KeyId, Message: digest, MessageType: 'DIGEST', Signature: ph, SigningAlgorithm: 'ED25519_PH_SHA_512' }))).SignatureValid).toBe(true);

    // The message types cannot be used interchangeably.
    await expectAwsError(kms.send(new SignCommand({ KeyId, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: 'ED25519_SHA_512' })), 'InvalidKeyUsageException');
    await expectAwsError(kms.send(new SignCommand({ KeyId, Message: message, MessageType: 'RAW', SigningAlgorithm: 'ED25519_PH_SHA_512' })), 'InvalidKeyUsageException');
    await expectAwsError(kms.send(new SignCommand({ KeyId, Message: digest.subarray(0, 32), MessageType: 'DIGEST', SigningAlgorithm: 'ED25519_PH_SHA_512' })), 'ValidationException');
    await expectAwsError(kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'KEY_AGREEMENT' })), 'ValidationException');
  });
});

describe('GenerateDataKeyPair with the new pair specs', () => {
  it('ECC_NIST_EDWARDS25519 and ML_KEM_768: the private key (PKCS #8) belongs to the public key and decrypts from PrivateKeyCiphertextBlob; ML_DSA is not a pair spec', async () => {
    const KeyId = await createKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    const ed = await kms.send(new GenerateDataKeyPairCommand({ KeyId, KeyPairSpec: 'ECC_NIST_EDWARDS25519' }));
    const edPriv = createPrivateKey({ key: Buffer.from(ed.PrivateKeyPlaintext!), format: 'der', type: 'pkcs8' });
    expect(createPublicKey(edPriv).export({ type: 'spki', format: 'der' }).equals(Buffer.from(ed.PublicKey!))).toBe(true);
    const kem = await kms.send(new GenerateDataKeyPairCommand({ KeyId, KeyPairSpec: 'ML_KEM_768' }));
    const seed = decodePkcs8Seed(kem.PrivateKeyPlaintext!)!;
    expect(seed.parameterSet).toBe('ML-KEM-768');
    expect(Buffer.from(ml_kem768.keygen(seed.seed).publicKey).equals(Buffer.from(decodeSpki(kem.PublicKey!)!.publicKey))).toBe(true);
    const back = await kms.send(new DecryptCommand({ CiphertextBlob: kem.PrivateKeyCiphertextBlob! }));
    expect(Buffer.from(back.Plaintext!).equals(Buffer.from(kem.PrivateKeyPlaintext!))).toBe(true);
    await expectAwsError(kms.send(new GenerateDataKeyPairCommand({ KeyId, KeyPairSpec: 'ML_DSA_65' as never })), 'ValidationException');
  });
});

describe('GetKeyLastUsage', () => {
  it('tracks successful cryptographic operations only, on both keys of ReEncrypt; not DryRun, failures or DescribeKey; key id or ARN, not an alias', async () => {
    const KeyId = await createKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    const fresh = await kms.send(new GetKeyLastUsageCommand({ KeyId }));
    expect(fresh.KeyLastUsage).toEqual({});
    expect(fresh.TrackingStartDate!.getTime()).toBe(fresh.KeyCreationDate!.getTime());
    expect(KeyId.endsWith(fresh.KeyId!)).toBe(true);

    const ct = (await kms.send(new EncryptCommand({ KeyId, Plaintext: Buffer.from('x') }))).CiphertextBlob!;
    let u = await kms.send(new GetKeyLastUsageCommand({ KeyId }));
    expect(u.KeyLastUsage!.Operation).toBe('Encrypt');
    const t1 = u.KeyLastUsage!.Timestamp!.getTime();

    await advanceClock(server.url, 60);
    await kms.send(new DescribeKeyCommand({ KeyId }));
    await expectAwsError(kms.send(new EncryptCommand({ KeyId, Plaintext: Buffer.from('x'), DryRun: true })), 'DryRunOperationException');
    await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob: Buffer.concat([Buffer.from(ct).subarray(0, -1), Buffer.from([0])]) })), 'InvalidCiphertextException');
    u = await kms.send(new GetKeyLastUsageCommand({ KeyId }));
    expect(u.KeyLastUsage).toMatchObject({ Operation: 'Encrypt' });
    expect(u.KeyLastUsage!.Timestamp!.getTime()).toBe(t1);

    const other = await createKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    await advanceClock(server.url, 60);
    await kms.send(new ReEncryptCommand({ CiphertextBlob: ct, DestinationKeyId: other }));
    for (const k of [KeyId, other]) {
      const r = await kms.send(new GetKeyLastUsageCommand({ KeyId: k }));
      expect(r.KeyLastUsage!.Operation).toBe('ReEncrypt');
      expect(r.KeyLastUsage!.Timestamp!.getTime()).toBeGreaterThan(t1);
    }
    await expectAwsError(kms.send(new GetKeyLastUsageCommand({ KeyId: 'alias/anything' })), 'NotFoundException');

    const dsa = await createKey('ML_DSA_44', 'SIGN_VERIFY');
    await kms.send(new SignCommand({ KeyId: dsa, Message: Buffer.from('m'), SigningAlgorithm: 'ML_DSA_SHAKE_256' }));
    expect((await kms.send(new GetKeyLastUsageCommand({ KeyId: dsa }))).KeyLastUsage!.Operation).toBe('Sign');
    const kem = await createKey('ML_KEM_512', 'ENCAPSULATE_DECAPSULATE');
    await kms.send(new EncapsulateCommand({ KeyId: kem, EncapsulationAlgorithm: 'ML_KEM' }));
    expect((await kms.send(new GetKeyLastUsageCommand({ KeyId: kem }))).KeyLastUsage!.Operation).toBe('Encapsulate');
    // Answered in any key state.
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: kem, PendingWindowInDays: 7 }));
    expect((await kms.send(new GetKeyLastUsageCommand({ KeyId: kem }))).KeyLastUsage!.Operation).toBe('Encapsulate');
  });

  it('survives a restart of a persistent local KMS: the newest record is written on close, not per request', async () => {
    const dir = tempDir('lkms-usage-');
    try {
      const a = await startServer({ dataDir: dir.dir, testClock: true });
      const KeyId = (await a.kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
      await a.kms.send(new EncryptCommand({ KeyId, Plaintext: Buffer.from('x') })); // first use: written now
      await advanceClock(a.server.url, 120);
      await a.kms.send(new GenerateDataKeyPairCommand({ KeyId, KeyPairSpec: 'ECC_NIST_P256' })); // memory only
      const before = await a.kms.send(new GetKeyLastUsageCommand({ KeyId }));
      a.kms.destroy();
      await a.server.close();
      const b = await startServer({ dataDir: dir.dir });
      const after = await b.kms.send(new GetKeyLastUsageCommand({ KeyId }));
      expect(after.KeyLastUsage).toEqual(before.KeyLastUsage);
      expect(after.KeyLastUsage!.Operation).toBe('GenerateDataKeyPair');
      expect(after.TrackingStartDate).toEqual(before.TrackingStartDate);
      b.kms.destroy();
      await b.server.close();
    } finally {
      dir.cleanup();
    }
  });
});

