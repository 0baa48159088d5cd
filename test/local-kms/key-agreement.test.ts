/**
 * Key agreement in the local KMS: KEY_AGREEMENT keys (CreateKey, DescribeKey, GetPublicKey) and
 * DeriveSharedSecret, in process and over HTTP with @aws-sdk/client-kms. The shared secret is
 * checked against what the peer computes with node:crypto from its own private key and the KMS
 * key's public key (GetPublicKey), and every refusal against the AWS exception name.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { constants, createPublicKey, diffieHellman, generateKeyPairSync, publicEncrypt, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CreateKeyCommand,
  DecryptCommand,
  DeriveSharedSecretCommand,
  EncryptCommand,
  GetPublicKeyCommand,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { LocalKmsService } from '../../src/local-kms/service.js';
import type { Caller } from '../../src/local-kms/policy-types.js';
import type { LocalKmsServer } from '../../src/local-kms/index.js';
import { KEY_USER_ACTIONS, consoleKeyKind } from '../../src/local-kms/generated-policies.js';
import { ACCOUNT, ROOT_ARN, expectAwsError, startServer, tempDir, errorOf } from './helpers.js';

type Out = Record<string, unknown>;
const CURVES = { ECC_NIST_P256: ['prime256v1', 32], ECC_NIST_P384: ['secp384r1', 48], ECC_NIST_P521: ['secp521r1', 66] } as const;
type Spec = keyof typeof CURVES;

const alice: Caller = { arn: `arn:aws:iam::${ACCOUNT}:user/alice`, account: ACCOUNT };


const peerPair = (curve: string) => generateKeyPairSync('ec', { namedCurve: curve });
const spki = (k: KeyObject): Buffer => k.export({ type: 'spki', format: 'der' });

/** DER SPKI of an EC public key on P-256 with an arbitrary point encoding (test inputs). */
function p256Spki(point: Buffer): Buffer {
  const algId = Buffer.from('301306072a8648ce3d020106082a8648ce3d030107', 'hex');
  const bits = Buffer.concat([Buffer.from([0x03, point.length + 1, 0x00]), point]);
  const body = Buffer.concat([algId, bits]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

let kms: LocalKmsService;
const call = (op: string, input: Out, caller?: Caller) => kms.call(op, input, caller);
async function createKey(input: Out): Promise<Out> {
  return (await call('CreateKey', input)).KeyMetadata as Out;
}
const agreementKey = async (spec: Spec = 'ECC_NIST_P256') => (await createKey({ KeySpec: spec, KeyUsage: 'KEY_AGREEMENT' })).KeyId as string;

describe('KEY_AGREEMENT keys and DeriveSharedSecret (in process)', () => {
  beforeEach(() => {
    kms = new LocalKmsService();
  });

  for (const spec of Object.keys(CURVES) as Spec[]) {
    const [curve, bytes] = CURVES[spec];
    it(`${spec}: metadata, public key, and the same secret as the peer computes`, async () => {
      const md = await createKey({ KeySpec: spec, KeyUsage: 'KEY_AGREEMENT', Description: 'ka' });
      expect(md.KeyUsage).toBe('KEY_AGREEMENT');
      expect(md.KeySpec).toBe(spec);
      expect(md.KeyAgreementAlgorithms).toEqual(['ECDH']);
      expect(md).not.toHaveProperty('SigningAlgorithms');
      expect(md).not.toHaveProperty('EncryptionAlgorithms');
      const keyId = md.KeyId as string;
      expect(((await call('DescribeKey', { KeyId: keyId })).KeyMetadata as Out).KeyAgreementAlgorithms).toEqual(['ECDH']);

      const pub = await call('GetPublicKey', { KeyId: keyId });
      expect(pub.KeyUsage).toBe('KEY_AGREEMENT');
      expect(pub.KeySpec).toBe(spec);
      expect(pub.KeyAgreementAlgorithms).toEqual(['ECDH']);
      expect(pub).not.toHaveProperty('SigningAlgorithms');
      expect(pub).not.toHaveProperty('EncryptionAlgorithms');
      const kmsPublic = createPublicKey({ key: Buffer.from(pub.PublicKey as Uint8Array), format: 'der', type: 'spki' });
      expect(kmsPublic.asymmetricKeyDetails?.namedCurve).toBe(curve);

      const peer = peerPair(curve);
      const out = await call('DeriveSharedSecret', { KeyId: keyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: spki(peer.publicKey) });
      const expected = diffieHellman({ privateKey: peer.privateKey, publicKey: kmsPublic });
      expect(expected.length).toBe(bytes);
      expect(Buffer.from(out.SharedSecret as Uint8Array).equals(expected)).toBe(true);
      expect(out.KeyId).toBe(md.Arn);
      expect(out.KeyAgreementAlgorithm).toBe('ECDH');
      expect(out.KeyOrigin).toBe('AWS_KMS');
      expect(out).not.toHaveProperty('CiphertextForRecipient');
      // Another peer, another secret.
      const other = await call('DeriveSharedSecret', { KeyId: keyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: spki(peerPair(curve).publicKey) });
      expect(Buffer.from(other.SharedSecret as Uint8Array).equals(expected)).toBe(false);
    });
  }

  it('two KMS keys agree with each other through GetPublicKey, by alias too', async () => {
    const a = await agreementKey('ECC_NIST_P384');
    const b = await agreementKey('ECC_NIST_P384');
    await call('CreateAlias', { AliasName: 'alias/bob', TargetKeyId: b });
    const pubA = (await call('GetPublicKey', { KeyId: a })).PublicKey as Uint8Array;
    const pubB = (await call('GetPublicKey', { KeyId: 'alias/bob' })).PublicKey as Uint8Array;
    const ab = await call('DeriveSharedSecret', { KeyId: a, KeyAgreementAlgorithm: 'ECDH', PublicKey: pubB });
    const ba = await call('DeriveSharedSecret', { KeyId: 'alias/bob', KeyAgreementAlgorithm: 'ECDH', PublicKey: pubA });
    expect(Buffer.from(ab.SharedSecret as Uint8Array).equals(Buffer.from(ba.SharedSecret as Uint8Array))).toBe(true);
  });

  it('a compressed peer point is the same key', async () => {
    const keyId = await agreementKey();
    const kmsPublic = createPublicKey({ key: Buffer.from((await call('GetPublicKey', { KeyId: keyId })).PublicKey as Uint8Array), format: 'der', type: 'spki' });
    const peer = peerPair('prime256v1');
    const jwk = peer.publicKey.export({ format: 'jwk' });
    const y = Buffer.from(jwk.y!, 'base64url');
    const compressed = Buffer.concat([Buffer.from([y[y.length - 1]! & 1 ? 0x03 : 0x02]), Buffer.from(jwk.x!, 'base64url')]);
    const out = await call('DeriveSharedSecret', { KeyId: keyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: p256Spki(compressed) });
    expect(Buffer.from(out.SharedSecret as Uint8Array).equals(diffieHellman({ privateKey: peer.privateKey, publicKey: kmsPublic }))).toBe(true);
  });

  it('other keys list no KeyAgreementAlgorithms; KEY_AGREEMENT keys neither sign nor encrypt', async () => {
    for (const input of [{}, { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }, { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }]) {
      const md = await createKey(input);
      expect(md).not.toHaveProperty('KeyAgreementAlgorithms');
    }
    const sv = (await createKey({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' })).KeyId as string;
    expect(await call('GetPublicKey', { KeyId: sv })).not.toHaveProperty('KeyAgreementAlgorithms');
    const ka = await agreementKey();
    expect(await errorOf(call('Sign', { KeyId: ka, Message: Buffer.from('m'), SigningAlgorithm: 'ECDSA_SHA_256' }))).toBe('InvalidKeyUsageException');
    expect(await errorOf(call('Encrypt', { KeyId: ka, Plaintext: Buffer.from('m') }))).toBe('InvalidKeyUsageException');
  });

  describe('CreateKey refusals', () => {
    const cases: [string, Out, string][] = [
      ['KEY_AGREEMENT with SYMMETRIC_DEFAULT', { KeyUsage: 'KEY_AGREEMENT' }, 'ValidationException'],
      ['KEY_AGREEMENT with RSA_2048', { KeySpec: 'RSA_2048', KeyUsage: 'KEY_AGREEMENT' }, 'ValidationException'],
      ['KEY_AGREEMENT with ECC_SECG_P256K1', { KeySpec: 'ECC_SECG_P256K1', KeyUsage: 'KEY_AGREEMENT' }, 'ValidationException'],
      ['KEY_AGREEMENT with HMAC_256', { KeySpec: 'HMAC_256', KeyUsage: 'KEY_AGREEMENT' }, 'ValidationException'],
      ['ENCRYPT_DECRYPT with ECC_NIST_P256', { KeySpec: 'ECC_NIST_P256', KeyUsage: 'ENCRYPT_DECRYPT' }, 'ValidationException'],
      ['an unknown KeyUsage', { KeySpec: 'ECC_NIST_P256', KeyUsage: 'AGREE' }, 'ValidationException'],
      ['SM2 outside China Regions', { KeySpec: 'SM2', KeyUsage: 'KEY_AGREEMENT' }, 'UnsupportedOperationException'],
      ['SM2 as CustomerMasterKeySpec', { CustomerMasterKeySpec: 'SM2', KeyUsage: 'SIGN_VERIFY' }, 'UnsupportedOperationException'],
    ];
    for (const [what, input, type] of cases) {
      it(`${what}: ${type}`, async () => {
        expect(await errorOf(call('CreateKey', input))).toBe(type);
        expect((await call('ListKeys', {})).Keys).toEqual([]);
      });
    }

    it('SM2 in a China Region: UnsupportedOperationException too (not modelled)', async () => {
      const cn = new LocalKmsService({ region: 'cn-north-1' });
      expect(await errorOf(cn.call('CreateKey', { KeySpec: 'SM2', KeyUsage: 'KEY_AGREEMENT' }))).toBe('UnsupportedOperationException');
      cn.close();
    });
  });

  describe('DeriveSharedSecret refusals', () => {
    let keyId: string;
    let good: Buffer;
    beforeEach(async () => {
      keyId = await agreementKey();
      good = spki(peerPair('prime256v1').publicKey);
    });
    const derive = (extra: Out) => call('DeriveSharedSecret', { KeyId: keyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: good, ...extra });

    it('request shape: ValidationException', async () => {
      expect(await errorOf(call('DeriveSharedSecret', { KeyId: keyId, PublicKey: good }))).toBe('ValidationException');
      expect(await errorOf(derive({ KeyAgreementAlgorithm: 'ECDHE' }))).toBe('ValidationException');
      expect(await errorOf(call('DeriveSharedSecret', { KeyId: keyId, KeyAgreementAlgorithm: 'ECDH' }))).toBe('ValidationException');
      expect(await errorOf(derive({ PublicKey: Buffer.alloc(0) }))).toBe('ValidationException');
      expect(await errorOf(derive({ PublicKey: Buffer.alloc(8193, 0x30) }))).toBe('ValidationException');
      expect(await errorOf(derive({ PublicKey: 'MFkwEwYHKoZIzj0CAQ==' }))).toBe('ValidationException');
      expect(await errorOf(derive({ KeyId: undefined }))).toBe('ValidationException');
    });

    it('a peer key that is not a usable DER SPKI of the same curve: ValidationException', async () => {
      const point = good.subarray(good.length - 65);
      const offCurve = Buffer.from(point);
      offCurve[offCurve.length - 1]! ^= 1;
      const bad: [string, Buffer][] = [
        ['garbage', Buffer.from('not a public key')],
        ['PEM text instead of DER', Buffer.from(peerPair('prime256v1').publicKey.export({ type: 'spki', format: 'pem' }))],
        ['base64 of the DER (AWS CLI v1 double encoding)', Buffer.from(good.toString('base64'))],
        ['a trailing byte', Buffer.concat([good, Buffer.from([0])])],
        ['truncated', good.subarray(0, good.length - 1)],
        ['the point at infinity', p256Spki(Buffer.from([0x00]))],
        ['a point off the curve', p256Spki(offCurve)],
        ['a raw point without SPKI', Buffer.from(point)],
        ['a P-384 key', spki(peerPair('secp384r1').publicKey)],
        ['a P-521 key', spki(peerPair('secp521r1').publicKey)],
        ['a secp256k1 key', spki(peerPair('secp256k1').publicKey)],
        ['an RSA key', spki(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey)],
        ['an X25519 key', spki(generateKeyPairSync('x25519').publicKey)],
      ];
      for (const [what, key] of bad) {
        const outcome = await errorOf(derive({ PublicKey: key })).catch(() => 'success');
        expect([what, outcome]).toEqual([what, 'ValidationException']);
      }
      // The service is still up and answers a good request.
      expect((await derive({})).KeyAgreementAlgorithm).toBe('ECDH');
    });

    it('keys of other usages: InvalidKeyUsageException', async () => {
      for (const input of [{}, { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }, { KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' }, { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }]) {
        const other = (await createKey(input)).KeyId as string;
        expect(await errorOf(derive({ KeyId: other }))).toBe('InvalidKeyUsageException');
      }
    });

    it('key states, unknown keys, DryRun, Recipient', async () => {
      expect(await errorOf(derive({ KeyId: '00000000-0000-4000-8000-000000000000' }))).toBe('NotFoundException');
      expect(await errorOf(derive({ DryRun: true }))).toBe('DryRunOperationException');
      // DryRun answers only when the request would have succeeded.
      expect(await errorOf(derive({ DryRun: true, PublicKey: Buffer.from('x') }))).toBe('ValidationException');
      expect(await errorOf(derive({ Recipient: { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', AttestationDocument: Buffer.from('doc') } }))).toBe(
        'UnsupportedOperationException',
      );
      await call('DisableKey', { KeyId: keyId });
      expect(await errorOf(derive({}))).toBe('DisabledException');
      await call('EnableKey', { KeyId: keyId });
      await call('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 7 });
      expect(await errorOf(derive({}))).toBe('KMSInvalidStateException');
    });
  });

  it('key policy: kms:DeriveSharedSecret is required, kms:KeyAgreementAlgorithm is a condition key', async () => {
    const policy = (condition?: Out) =>
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Sid: 'root', Effect: 'Allow', Principal: { AWS: ROOT_ARN }, Action: 'kms:*', Resource: '*' },
          { Sid: 'alice', Effect: 'Allow', Principal: { AWS: alice.arn }, Action: ['kms:DescribeKey', 'kms:GetPublicKey'], Resource: '*' },
          {
            Sid: 'derive',
            Effect: 'Allow',
            Principal: { AWS: alice.arn },
            Action: 'kms:DeriveSharedSecret',
            Resource: '*',
            ...(condition ? { Condition: condition } : {}),
          },
        ],
      });
    const keyId = await agreementKey();
    const input = { KeyId: keyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: spki(peerPair('prime256v1').publicKey) };
    expect(await errorOf(call('DeriveSharedSecret', input, alice))).toBe('AccessDeniedException');
    await call('PutKeyPolicy', { KeyId: keyId, Policy: policy({ StringEquals: { 'kms:KeyAgreementAlgorithm': 'SOMETHING_ELSE' } }) });
    expect(await errorOf(call('DeriveSharedSecret', input, alice))).toBe('AccessDeniedException');
    await call('PutKeyPolicy', { KeyId: keyId, Policy: policy({ StringEquals: { 'kms:KeyAgreementAlgorithm': 'ECDH', 'kms:KeyUsage': 'KEY_AGREEMENT' } }) });
    expect((await call('DeriveSharedSecret', input, alice)).KeyAgreementAlgorithm).toBe('ECDH');
    // AccessDenied comes before the key-usage check: alice learns nothing about a key she may not use.
    const sv = (await createKey({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' })).KeyId as string;
    expect(await errorOf(call('DeriveSharedSecret', { ...input, KeyId: sv }, alice))).toBe('AccessDeniedException');
  });

  it('console-style key users of a KEY_AGREEMENT key may derive, not encrypt', () => {
    const kind = consoleKeyKind('ECC_NIST_P256', 'KEY_AGREEMENT');
    expect(kind).toBe('KEY_AGREEMENT');
    expect(KEY_USER_ACTIONS[kind]).toContain('kms:DeriveSharedSecret');
    expect(KEY_USER_ACTIONS[kind]).not.toContain('kms:Encrypt');
  });

  it('grants: DeriveSharedSecret on KEY_AGREEMENT keys only', async () => {
    const keyId = await agreementKey('ECC_NIST_P521');
    const input = { KeyId: keyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: spki(peerPair('secp521r1').publicKey) };
    expect(await errorOf(call('DeriveSharedSecret', input, alice))).toBe('AccessDeniedException');
    const { GrantId } = (await call('CreateGrant', { KeyId: keyId, GranteePrincipal: alice.arn, Operations: ['DeriveSharedSecret', 'GetPublicKey'] })) as {
      GrantId: string;
    };
    expect(((await call('DeriveSharedSecret', input, alice)).SharedSecret as Uint8Array).length).toBe(66);
    await call('GetPublicKey', { KeyId: keyId }, alice);
    await call('RevokeGrant', { KeyId: keyId, GrantId });
    expect(await errorOf(call('DeriveSharedSecret', input, alice))).toBe('AccessDeniedException');
    // Operations the key does not have, and DeriveSharedSecret on keys of other usages.
    for (const ops of [['Sign'], ['Decrypt'], ['GenerateMac'], ['DeriveSharedSecret', 'Verify']]) {
      expect(await errorOf(call('CreateGrant', { KeyId: keyId, GranteePrincipal: alice.arn, Operations: ops }))).toBe('ValidationException');
    }
    for (const other of [{}, { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }, { KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' }]) {
      const otherId = (await createKey(other)).KeyId as string;
      expect(await errorOf(call('CreateGrant', { KeyId: otherId, GranteePrincipal: alice.arn, Operations: ['DeriveSharedSecret'] }))).toBe('ValidationException');
    }
    // Encryption-context constraints do not apply to key agreement keys.
    expect(
      await errorOf(
        call('CreateGrant', { KeyId: keyId, GranteePrincipal: alice.arn, Operations: ['DeriveSharedSecret'], Constraints: { EncryptionContextSubset: { a: 'b' } } }),
      ),
    ).toBe('ValidationException');
  });

  it('imported key material (origin EXTERNAL): PendingImport, then the imported private key agrees', async () => {
    const keyId = (await createKey({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'KEY_AGREEMENT', Origin: 'EXTERNAL' })).KeyId as string;
    const peer = peerPair('prime256v1');
    const input = { KeyId: keyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: spki(peer.publicKey) };
    expect(await errorOf(call('DeriveSharedSecret', input))).toBe('KMSInvalidStateException');
    const mine = peerPair('prime256v1');
    const params = await call('GetParametersForImport', { KeyId: keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' });
    const wrapped = publicEncrypt(
      { key: createPublicKey({ key: Buffer.from(params.PublicKey as Uint8Array), format: 'der', type: 'spki' }), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      mine.privateKey.export({ type: 'pkcs8', format: 'der' }),
    );
    await call('ImportKeyMaterial', { KeyId: keyId, ImportToken: params.ImportToken, EncryptedKeyMaterial: wrapped, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' });
    const out = await call('DeriveSharedSecret', input);
    expect(out.KeyOrigin).toBe('EXTERNAL');
    expect(Buffer.from(out.SharedSecret as Uint8Array).equals(diffieHellman({ privateKey: mine.privateKey, publicKey: peer.publicKey }))).toBe(true);
    expect(Buffer.from((await call('GetPublicKey', { KeyId: keyId })).PublicKey as Uint8Array).equals(spki(mine.publicKey))).toBe(true);
  });

  it('key material is sealed at rest and survives a restart', async () => {
    const tmp = tempDir('lkms-ka-');
    try {
      const first = new LocalKmsService({ dataDir: tmp.dir });
      const keyId = ((await first.call('CreateKey', { KeySpec: 'ECC_NIST_P384', KeyUsage: 'KEY_AGREEMENT' })).KeyMetadata as Out).KeyId as string;
      const peer = peerPair('secp384r1');
      const input = { KeyId: keyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: spki(peer.publicKey) };
      const before = Buffer.from((await first.call('DeriveSharedSecret', input)).SharedSecret as Uint8Array);
      // The private scalar appears in no file of the data directory, in any of its usual encodings.
      const privateDer = (first as unknown as { keys: Map<string, { materials: { secret: Buffer }[] }> }).keys.get(keyId)!.materials[0]!.secret;
      const { createPrivateKey } = await import('node:crypto');
      const d = Buffer.from(createPrivateKey({ key: privateDer, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' }).d!, 'base64url');
      const files = readdirSync(join(tmp.dir, 'keys')).map((f) => readFileSync(join(tmp.dir, 'keys', f)));
      expect(files.length).toBe(1);
      for (const needle of [d.toString('hex'), d.toString('base64'), d.toString('base64url'), privateDer.toString('base64')]) {
        expect(files.some((f) => f.includes(needle))).toBe(false);
      }
      expect(files.some((f) => f.includes(d))).toBe(false);
      first.close();

      const second = new LocalKmsService({ dataDir: tmp.dir });
      const md = (await second.call('DescribeKey', { KeyId: keyId })).KeyMetadata as Out;
      expect(md.KeyUsage).toBe('KEY_AGREEMENT');
      expect(md.KeyAgreementAlgorithms).toEqual(['ECDH']);
      const after = Buffer.from((await second.call('DeriveSharedSecret', input)).SharedSecret as Uint8Array);
      expect(after.equals(before)).toBe(true);
      second.close();
    } finally {
      tmp.cleanup();
    }
  });
});

describe('DeriveSharedSecret over HTTP with @aws-sdk/client-kms', () => {
  let server: LocalKmsServer;
  let client: KMSClient;
  let keyId: string;

  beforeAll(async () => {
    ({ server, kms: client } = await startServer());
    keyId = (await client.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'KEY_AGREEMENT' }))).KeyMetadata!.KeyId!;
  });
  afterAll(async () => {
    client.destroy();
    await server.close();
  });

  it('the shared secret equals what the peer computes from GetPublicKey', async () => {
    const pub = await client.send(new GetPublicKeyCommand({ KeyId: keyId }));
    expect(pub.KeyUsage).toBe('KEY_AGREEMENT');
    expect(pub.KeyAgreementAlgorithms).toEqual(['ECDH']);
    const peer = peerPair('prime256v1');
    const out = await client.send(new DeriveSharedSecretCommand({ KeyId: keyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: spki(peer.publicKey) }));
    const expected = diffieHellman({ privateKey: peer.privateKey, publicKey: createPublicKey({ key: Buffer.from(pub.PublicKey!), format: 'der', type: 'spki' }) });
    expect(Buffer.from(out.SharedSecret!).equals(expected)).toBe(true);
    expect(out.KeyId).toBe(pub.KeyId);
    expect(out.KeyAgreementAlgorithm).toBe('ECDH');
    expect(out.KeyOrigin).toBe('AWS_KMS');
  });

  it('malformed input gets the AWS exception names', async () => {
    const send = (input: Partial<ConstructorParameters<typeof DeriveSharedSecretCommand>[0]>) =>
      client.send(new DeriveSharedSecretCommand({ KeyId: keyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: spki(peerPair('prime256v1').publicKey), ...input } as never));
    await expectAwsError(send({ PublicKey: Buffer.from('not a key') }), 'ValidationException');
    await expectAwsError(send({ PublicKey: spki(peerPair('secp384r1').publicKey) }), 'ValidationException');
    await expectAwsError(send({ PublicKey: p256Spki(Buffer.from([0x00])) }), 'ValidationException');
    await expectAwsError(send({ KeyAgreementAlgorithm: 'NOT_ECDH' as never }), 'ValidationException');
    await expectAwsError(send({ Recipient: { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', AttestationDocument: Buffer.from('doc') } }), 'UnsupportedOperationException');
    const signing = (await client.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.KeyId!;
    await expectAwsError(send({ KeyId: signing }), 'InvalidKeyUsageException');
    await expectAwsError(client.send(new CreateKeyCommand({ KeySpec: 'ECC_SECG_P256K1', KeyUsage: 'KEY_AGREEMENT' })), 'ValidationException');
    await expectAwsError(client.send(new CreateKeyCommand({ KeySpec: 'SM2', KeyUsage: 'KEY_AGREEMENT' })), 'UnsupportedOperationException');
  });

  it('Decrypt with a Recipient is refused over HTTP too (the member is decoded, not dropped)', async () => {
    const sym = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const ct = await client.send(new EncryptCommand({ KeyId: sym, Plaintext: Buffer.from('secret') }));
    const recipient = { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' as const, AttestationDocument: Buffer.from('doc') };
    await expectAwsError(client.send(new DecryptCommand({ CiphertextBlob: ct.CiphertextBlob!, Recipient: recipient })), 'UnsupportedOperationException');
  });
});
