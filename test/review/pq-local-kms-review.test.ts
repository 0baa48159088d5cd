/**
 * Adversarial review of the local KMS's post-quantum / Ed25519 keys and GetKeyLastUsage
 * (issue 15). Each `it` is named after the documented AWS behaviour it expects; a failing test is a
 * finding, a passing one a probe that held. Sources are cited per test (API Reference text is the
 * JSDoc of @aws-sdk/client-kms 3.1164.0; Developer Guide pages by title).
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { ml_dsa44, ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { LocalKmsService } from '../../src/local-kms/service.js';
import { decodePkcs8Seed, decodeSpki } from '../../src/local-kms/pq.js';
import { ACCOUNT, OTHER, keyPolicy, outcome, plain, root } from '../local-kms/authz-callers.js';
import { execFileSync } from 'node:child_process';
import { GenerateDataKeyCommand, GenerateDataKeyPairCommand, GenerateRandomCommand } from '@aws-sdk/client-kms';
import { startServer } from '../local-kms/helpers.js';

const services: LocalKmsService[] = [];
afterEach(() => {
  for (const s of services.splice(0)) s.close();
});
function svc(opts: ConstructorParameters<typeof LocalKmsService>[0] = {}): LocalKmsService {
  const s = new LocalKmsService(opts);
  services.push(s);
  return s;
}
async function key(kms: LocalKmsService, KeySpec: string, KeyUsage: string, extra: Record<string, unknown> = {}): Promise<string> {
  return ((await kms.call('CreateKey', { KeySpec, KeyUsage, ...extra }, root)).KeyMetadata as { Arn: string }).Arn;
}
const b = (n: number, fill = 1) => Buffer.alloc(n, fill);

describe('Encapsulate / Decapsulate', () => {
  it('held: Decapsulate refuses a ciphertext of another parameter set\'s length (API Reference, Decapsulate: InvalidCiphertextException when the length is inconsistent with the key spec)', async () => {
    const kms = svc();
    const k768 = await key(kms, 'ML_KEM_768', 'ENCAPSULATE_DECAPSULATE');
    for (const n of [768, 1087, 1089, 1568]) {
      expect(await outcome(kms.call('Decapsulate', { KeyId: k768, EncapsulationAlgorithm: 'ML_KEM', SharedSecretCiphertextBlob: b(n) }))).toBe('InvalidCiphertextException');
    }
  });

  it('held: a ciphertext made for another ML-KEM key gives 32 pseudo-random bytes, the same each time (Decapsulate: implicit rejection)', async () => {
    const kms = svc();
    const a = await key(kms, 'ML_KEM_768', 'ENCAPSULATE_DECAPSULATE');
    const c = await key(kms, 'ML_KEM_768', 'ENCAPSULATE_DECAPSULATE');
    const enc = await kms.call('Encapsulate', { KeyId: a, EncapsulationAlgorithm: 'ML_KEM' });
    const d1 = await kms.call('Decapsulate', { KeyId: c, EncapsulationAlgorithm: 'ML_KEM', SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob });
    const d2 = await kms.call('Decapsulate', { KeyId: c, EncapsulationAlgorithm: 'ML_KEM', SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob });
    expect((d1.SharedSecret as Buffer).length).toBe(32);
    expect(Buffer.from(d1.SharedSecret as Buffer).equals(Buffer.from(enc.SharedSecret as Buffer))).toBe(false);
    expect(Buffer.from(d1.SharedSecret as Buffer).equals(Buffer.from(d2.SharedSecret as Buffer))).toBe(true);
  });

  it('held: Encapsulate/Decapsulate on keys of other usages is InvalidKeyUsageException; a wrong algorithm name is ValidationException', async () => {
    const kms = svc();
    const dsa = await key(kms, 'ML_DSA_65', 'SIGN_VERIFY');
    const sym = await key(kms, 'SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    const ecdh = await key(kms, 'ECC_NIST_P256', 'KEY_AGREEMENT');
    for (const k of [dsa, sym, ecdh]) {
      expect(await outcome(kms.call('Encapsulate', { KeyId: k, EncapsulationAlgorithm: 'ML_KEM' }))).toBe('InvalidKeyUsageException');
      expect(await outcome(kms.call('Decapsulate', { KeyId: k, EncapsulationAlgorithm: 'ML_KEM', SharedSecretCiphertextBlob: b(1088) }))).toBe('InvalidKeyUsageException');
    }
    const kem = await key(kms, 'ML_KEM_512', 'ENCAPSULATE_DECAPSULATE');
    for (const alg of ['ml_kem', 'ML_KEM_512', 'ECDH', '']) {
      expect(await outcome(kms.call('Encapsulate', { KeyId: kem, EncapsulationAlgorithm: alg }))).toBe('ValidationException');
    }
    expect(await outcome(kms.call('Encapsulate', { KeyId: kem }))).toBe('ValidationException');
  });

  it('held: key states: Disabled is DisabledException, PendingDeletion is KMSInvalidStateException (Developer Guide, "Key states of KMS keys")', async () => {
    const kms = svc();
    const k = await key(kms, 'ML_KEM_1024', 'ENCAPSULATE_DECAPSULATE');
    await kms.call('DisableKey', { KeyId: k });
    expect(await outcome(kms.call('Encapsulate', { KeyId: k, EncapsulationAlgorithm: 'ML_KEM' }))).toBe('DisabledException');
    expect(await outcome(kms.call('Decapsulate', { KeyId: k, EncapsulationAlgorithm: 'ML_KEM', SharedSecretCiphertextBlob: b(1568) }))).toBe('DisabledException');
    await kms.call('ScheduleKeyDeletion', { KeyId: k, PendingWindowInDays: 7 });
    expect(await outcome(kms.call('Encapsulate', { KeyId: k, EncapsulationAlgorithm: 'ML_KEM' }))).toBe('KMSInvalidStateException');
    expect(await outcome(kms.call('Decapsulate', { KeyId: k, EncapsulationAlgorithm: 'ML_KEM', SharedSecretCiphertextBlob: b(1568) }))).toBe('KMSInvalidStateException');
    expect(await outcome(kms.call('GetPublicKey', { KeyId: k }))).toBe('KMSInvalidStateException');
  });
});

describe('Sign / Verify with ML-DSA and Ed25519', () => {
  it('held: message limits: RAW 1..4096 bytes, EXTERNAL_MU exactly 64, ED25519_PH DIGEST exactly 64 (API Reference, Sign `Message`/`MessageType`)', async () => {
    const kms = svc();
    const dsa = await key(kms, 'ML_DSA_44', 'SIGN_VERIFY');
    const ed = await key(kms, 'ECC_NIST_EDWARDS25519', 'SIGN_VERIFY');
    const ok = (p: Promise<unknown>) => outcome(p);
    expect(await ok(kms.call('Sign', { KeyId: dsa, Message: b(4096), MessageType: 'RAW', SigningAlgorithm: 'ML_DSA_SHAKE_256' }))).toBe('OK');
    expect(await ok(kms.call('Sign', { KeyId: dsa, Message: b(4097), MessageType: 'RAW', SigningAlgorithm: 'ML_DSA_SHAKE_256' }))).toBe('ValidationException');
    for (const n of [32, 63, 65]) expect(await ok(kms.call('Sign', { KeyId: dsa, Message: b(n), MessageType: 'EXTERNAL_MU', SigningAlgorithm: 'ML_DSA_SHAKE_256' }))).toBe('ValidationException');
    expect(await ok(kms.call('Sign', { KeyId: dsa, Message: b(64), MessageType: 'EXTERNAL_MU', SigningAlgorithm: 'ML_DSA_SHAKE_256' }))).toBe('OK');
    for (const n of [32, 48, 63, 65]) expect(await ok(kms.call('Sign', { KeyId: ed, Message: b(n), MessageType: 'DIGEST', SigningAlgorithm: 'ED25519_PH_SHA_512' }))).toBe('ValidationException');
    expect(await ok(kms.call('Sign', { KeyId: ed, Message: b(64), MessageType: 'DIGEST', SigningAlgorithm: 'ED25519_PH_SHA_512' }))).toBe('OK');
    expect(await ok(kms.call('Sign', { KeyId: ed, Message: b(4096), MessageType: 'RAW', SigningAlgorithm: 'ED25519_SHA_512' }))).toBe('OK');
  });

  it('held: an EXTERNAL_MU signature verifies as RAW over the same message (Developer Guide, "ML-DSA keys in AWS KMS": same signatures)', async () => {
    const kms = svc();
    const dsa = await key(kms, 'ML_DSA_65', 'SIGN_VERIFY');
    const pub = decodeSpki((await kms.call('GetPublicKey', { KeyId: dsa })).PublicKey as Uint8Array)!;
    const msg = Buffer.from('hello mu');
    // FIPS 204 Algorithm 2 / §6.2: tr = H(pk, 64); M' = 0 || |ctx| || ctx || M; mu = H(tr || M', 64)
    const shake = (d: Buffer) => createHash('shake256', { outputLength: 64 }).update(d).digest();
    const tr = shake(Buffer.from(pub.publicKey));
    const mu = shake(Buffer.concat([tr, Buffer.from([0, 0]), msg]));
    const sig = await kms.call('Sign', { KeyId: dsa, Message: mu, MessageType: 'EXTERNAL_MU', SigningAlgorithm: 'ML_DSA_SHAKE_256' });
    expect(ml_dsa65.verify(sig.Signature as Uint8Array, msg, pub.publicKey)).toBe(true);
    expect(await outcome(kms.call('Verify', { KeyId: dsa, Message: msg, MessageType: 'RAW', Signature: sig.Signature, SigningAlgorithm: 'ML_DSA_SHAKE_256' }))).toBe('OK');
  });

  it('held: Verify refuses another key\'s signature, a truncated/extended one, and Ed25519 S+L (RFC 8032 §5.1.7: S must be < L)', async () => {
    const kms = svc();
    const d1 = await key(kms, 'ML_DSA_44', 'SIGN_VERIFY');
    const d2 = await key(kms, 'ML_DSA_44', 'SIGN_VERIFY');
    const m = Buffer.from('m');
    const s = (await kms.call('Sign', { KeyId: d1, Message: m, SigningAlgorithm: 'ML_DSA_SHAKE_256' })).Signature as Buffer;
    const v = (k: string, sig: Uint8Array, alg = 'ML_DSA_SHAKE_256', type = 'RAW', msg: Uint8Array = m) => outcome(kms.call('Verify', { KeyId: k, Message: msg, MessageType: type, Signature: sig, SigningAlgorithm: alg }));
    expect(await v(d1, s)).toBe('OK');
    expect(await v(d2, s)).toBe('KMSInvalidSignatureException');
    expect(await v(d1, Buffer.concat([s, b(1, 0)]))).toBe('KMSInvalidSignatureException');
    expect(await v(d1, s.subarray(0, s.length - 1))).toBe('KMSInvalidSignatureException');
    const ed = await key(kms, 'ECC_NIST_EDWARDS25519', 'SIGN_VERIFY');
    const L = (1n << 252n) + 27742317777372353535851937790883648493n;
    const addL = (sig: Uint8Array) => {
      const S = BigInt('0x' + Buffer.from(sig.subarray(32)).reverse().toString('hex')) + L;
      const le = Buffer.from(S.toString(16).padStart(64, '0'), 'hex').reverse();
      return Buffer.concat([Buffer.from(sig.subarray(0, 32)), le]);
    };
    const raw = (await kms.call('Sign', { KeyId: ed, Message: m, MessageType: 'RAW', SigningAlgorithm: 'ED25519_SHA_512' })).Signature as Uint8Array;
    expect(await v(ed, raw, 'ED25519_SHA_512')).toBe('OK');
    expect(await v(ed, addL(raw), 'ED25519_SHA_512')).toBe('KMSInvalidSignatureException');
    const dig = createHash('sha512').update(m).digest();
    const ph = (await kms.call('Sign', { KeyId: ed, Message: dig, MessageType: 'DIGEST', SigningAlgorithm: 'ED25519_PH_SHA_512' })).Signature as Uint8Array;
    expect(await v(ed, ph, 'ED25519_PH_SHA_512', 'DIGEST', dig)).toBe('OK');
    expect(await v(ed, addL(ph), 'ED25519_PH_SHA_512', 'DIGEST', dig)).toBe('KMSInvalidSignatureException');
    // a pure signature is not an Ed25519ph one
    expect(await v(ed, raw, 'ED25519_PH_SHA_512', 'DIGEST', dig)).toBe('KMSInvalidSignatureException');
  });

  it('held: algorithms of another key type are InvalidKeyUsageException', async () => {
    const kms = svc();
    const ed = await key(kms, 'ECC_NIST_EDWARDS25519', 'SIGN_VERIFY');
    const dsa = await key(kms, 'ML_DSA_87', 'SIGN_VERIFY');
    const p256 = await key(kms, 'ECC_NIST_P256', 'SIGN_VERIFY');
    expect(await outcome(kms.call('Sign', { KeyId: ed, Message: b(32), MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256' }))).toBe('InvalidKeyUsageException');
    expect(await outcome(kms.call('Sign', { KeyId: dsa, Message: b(64), MessageType: 'RAW', SigningAlgorithm: 'ED25519_SHA_512' }))).toBe('InvalidKeyUsageException');
    expect(await outcome(kms.call('Sign', { KeyId: p256, Message: b(64), MessageType: 'EXTERNAL_MU', SigningAlgorithm: 'ECDSA_SHA_256' }))).toBe('InvalidKeyUsageException');
    expect(await outcome(kms.call('Sign', { KeyId: p256, Message: b(64), MessageType: 'RAW', SigningAlgorithm: 'ML_DSA_SHAKE_256' }))).toBe('InvalidKeyUsageException');
  });
});

const EU = { sourceIp: '127.0.0.1', userAgent: 'review', secureTransport: true, requestedRegion: 'eu-west-1' };
const US = { ...EU, requestedRegion: 'us-east-1' };
const last = async (kms: LocalKmsService, KeyId: string, origin = US) => {
  const r = await kms.call('GetKeyLastUsage', { KeyId }, root, origin);
  return (r.KeyLastUsage as { Operation?: string }).Operation;
};

describe('GetKeyLastUsage', () => {
  it('held: failed, DryRun, invalid-signature and non-cryptographic requests do not count; Encapsulate and Decapsulate do (API Reference, GetKeyLastUsage; KeyLastUsageTrackingOperation)', async () => {
    const kms = svc();
    const kem = await key(kms, 'ML_KEM_512', 'ENCAPSULATE_DECAPSULATE');
    await kms.call('GetPublicKey', { KeyId: kem });
    await kms.call('DescribeKey', { KeyId: kem });
    await outcome(kms.call('Encapsulate', { KeyId: kem, EncapsulationAlgorithm: 'ML_KEM', DryRun: true }));
    await outcome(kms.call('Decapsulate', { KeyId: kem, EncapsulationAlgorithm: 'ML_KEM', SharedSecretCiphertextBlob: b(3) }));
    expect(await last(kms, kem)).toBeUndefined();
    const enc = await kms.call('Encapsulate', { KeyId: kem, EncapsulationAlgorithm: 'ML_KEM' });
    expect(await last(kms, kem)).toBe('Encapsulate');
    await kms.call('Decapsulate', { KeyId: kem, EncapsulationAlgorithm: 'ML_KEM', SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob });
    expect(await last(kms, kem)).toBe('Decapsulate');

    const ed = await key(kms, 'ECC_NIST_EDWARDS25519', 'SIGN_VERIFY');
    const sig = await kms.call('Sign', { KeyId: ed, Message: b(5), SigningAlgorithm: 'ED25519_SHA_512' });
    expect(await last(kms, ed)).toBe('Sign');
    await outcome(kms.call('Verify', { KeyId: ed, Message: b(6), Signature: sig.Signature, SigningAlgorithm: 'ED25519_SHA_512' }));
    expect(await last(kms, ed)).toBe('Sign');
    await kms.call('Verify', { KeyId: ed, Message: b(5), Signature: sig.Signature, SigningAlgorithm: 'ED25519_SHA_512' });
    expect(await last(kms, ed)).toBe('Verify');
  });

  it('held: ReEncrypt is recorded on both keys; GenerateDataKeyPair of an ML-KEM pair on its symmetric key', async () => {
    const kms = svc();
    const a = await key(kms, 'SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    const c = await key(kms, 'SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    const { CiphertextBlob } = await kms.call('Encrypt', { KeyId: a, Plaintext: b(3) });
    await kms.call('ReEncrypt', { CiphertextBlob, DestinationKeyId: c });
    expect(await last(kms, a)).toBe('ReEncrypt');
    expect(await last(kms, c)).toBe('ReEncrypt');
    await kms.call('GenerateDataKeyPairWithoutPlaintext', { KeyId: c, KeyPairSpec: 'ML_KEM_1024' });
    expect(await last(kms, c)).toBe('GenerateDataKeyPairWithoutPlaintext');
  });

  it('held: alias names and alias ARNs are NotFoundException (API Reference, GetKeyLastUsage `KeyId`: "Alias names are not supported")', async () => {
    const kms = svc();
    const k = await key(kms, 'ML_DSA_44', 'SIGN_VERIFY');
    await kms.call('CreateAlias', { AliasName: 'alias/pq', TargetKeyId: k });
    expect(await outcome(kms.call('GetKeyLastUsage', { KeyId: 'alias/pq' }))).toBe('NotFoundException');
    expect(await outcome(kms.call('GetKeyLastUsage', { KeyId: `arn:aws:kms:us-east-1:${ACCOUNT}:alias/pq` }))).toBe('NotFoundException');
  });

  it('held: primary and replica of a multi-Region key track last usage independently (API Reference, GetKeyLastUsage: "Each key in a multi-Region key set maintains its own usage information")', async () => {
    const kms = svc();
    const primary = await key(kms, 'ML_DSA_65', 'SIGN_VERIFY', { MultiRegion: true });
    await kms.call('ReplicateKey', { KeyId: primary, ReplicaRegion: 'eu-west-1' }, root, US);
    const replica = primary.replace('us-east-1', 'eu-west-1');
    await kms.call('Sign', { KeyId: replica, Message: b(9), SigningAlgorithm: 'ML_DSA_SHAKE_256' }, root, EU);
    expect(await last(kms, replica, EU)).toBe('Sign');
    expect(await last(kms, primary, US)).toBeUndefined();
    // same public key in both Regions, so a replica's signature verifies at the primary
    const s = await kms.call('Sign', { KeyId: replica, Message: b(9), SigningAlgorithm: 'ML_DSA_SHAKE_256' }, root, EU);
    expect(await outcome(kms.call('Verify', { KeyId: primary, Message: b(9), Signature: s.Signature, SigningAlgorithm: 'ML_DSA_SHAKE_256' }, root, US))).toBe('OK');
    expect(await last(kms, primary, US)).toBe('Verify');
  });

  it('held: is not available across accounts (API Reference, GetKeyLastUsage: "Cross-account use: No")', async () => {
    const kms = svc();
    const other = plain(`arn:aws:iam::${OTHER}:root`);
    const k = await key(kms, 'ML_KEM_768', 'ENCAPSULATE_DECAPSULATE', {
      Policy: keyPolicy({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${OTHER}:root` }, Action: 'kms:*', Resource: '*' }),
    });
    // Cross-account Encapsulate works (API Reference, Encapsulate: "Cross-account use: Yes")
    expect(await outcome(kms.call('Encapsulate', { KeyId: k, EncapsulationAlgorithm: 'ML_KEM' }, other))).toBe('OK');
    const r = await outcome(kms.call('GetKeyLastUsage', { KeyId: k }, other));
    expect(r).not.toBe('OK');
  });
});

describe('data directory', () => {
  it('held: last usage and TrackingStartDate survive a restart (README "Key last usage")', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'pq-review-'));
    try {
      const a = new LocalKmsService({ dataDir: dir });
      const k = await key(a, 'ML_KEM_768', 'ENCAPSULATE_DECAPSULATE');
      await a.call('Encapsulate', { KeyId: k, EncapsulationAlgorithm: 'ML_KEM' });
      await a.call('Encapsulate', { KeyId: k, EncapsulationAlgorithm: 'ML_KEM' });
      const before = await a.call('GetKeyLastUsage', { KeyId: k });
      a.close();
      const c = new LocalKmsService({ dataDir: dir });
      services.push(c);
      const after = await c.call('GetKeyLastUsage', { KeyId: k });
      expect(after).toEqual(before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('held: no file of the data directory holds an ML-KEM/ML-DSA seed or Ed25519 private key in the clear, in any common encoding (README: key material sealed under the root key)', async () => {
    const { mkdtempSync, rmSync, readdirSync, readFileSync, statSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'pq-review-'));
    try {
      const kms = new LocalKmsService({ dataDir: dir });
      services.push(kms);
      const secrets: Buffer[] = [];
      for (const [spec, usage] of [['ML_KEM_512', 'ENCAPSULATE_DECAPSULATE'], ['ML_DSA_87', 'SIGN_VERIFY'], ['ECC_NIST_EDWARDS25519', 'SIGN_VERIFY']]) {
        const arn = await key(kms, spec!, usage!, { MultiRegion: spec === 'ML_DSA_87' });
        if (spec === 'ML_DSA_87') await kms.call('ReplicateKey', { KeyId: arn, ReplicaRegion: 'eu-west-1' }, root, US);
        const rec = kms.keys.get(arn.split('/')[1]!)!;
        const der = Buffer.from(rec.materials[0]!.secret);
        secrets.push(der);
        const seed = decodePkcs8Seed(der)?.seed;
        secrets.push(seed ? Buffer.from(seed) : der.subarray(der.length - 32));
      }
      await kms.call('Encapsulate', { KeyId: [...kms.keys.values()][0]!.arn, EncapsulationAlgorithm: 'ML_KEM' });
      kms.close();
      const files: string[] = [];
      const walk = (d: string) => {
        for (const e of readdirSync(d)) {
          const p = join(d, e);
          if (statSync(p).isDirectory()) walk(p);
          else files.push(p);
        }
      };
      walk(dir);
      expect(files.length).toBeGreaterThan(3);
      for (const f of files) {
        const content = readFileSync(f);
        const text = content.toString('latin1');
        for (const s of secrets) {
          const probe = s.subarray(0, 24);
          expect(content.includes(probe), f).toBe(false);
          for (const enc of ['hex', 'base64', 'base64url'] as const) expect(text.includes(probe.toString(enc).slice(4, 28)), `${f} ${enc}`).toBe(false);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('policy condition keys on the new operations', () => {
  const user = 'arn:aws:iam::111122223333:role/app';
  it('held: kms:MessageType EXTERNAL_MU and kms:SigningAlgorithm ED25519_PH_SHA_512 are evaluated in key policies (Developer Guide, "AWS KMS condition keys")', async () => {
    const kms = svc();
    const pol = keyPolicy(
      { Effect: 'Allow', Principal: { AWS: user }, Action: ['kms:Sign', 'kms:Verify'], Resource: '*' },
      { Effect: 'Deny', Principal: { AWS: user }, Action: 'kms:Sign', Resource: '*', Condition: { StringEquals: { 'kms:MessageType': 'EXTERNAL_MU' } } },
      { Effect: 'Deny', Principal: { AWS: user }, Action: 'kms:Sign', Resource: '*', Condition: { StringEquals: { 'kms:SigningAlgorithm': 'ED25519_PH_SHA_512' } } },
    );
    const dsa = await key(kms, 'ML_DSA_44', 'SIGN_VERIFY', { Policy: pol });
    const ed = await key(kms, 'ECC_NIST_EDWARDS25519', 'SIGN_VERIFY', { Policy: pol });
    const who = plain(user);
    expect(await outcome(kms.call('Sign', { KeyId: dsa, Message: b(64), MessageType: 'EXTERNAL_MU', SigningAlgorithm: 'ML_DSA_SHAKE_256' }, who))).toBe('AccessDeniedException');
    expect(await outcome(kms.call('Sign', { KeyId: dsa, Message: b(64), MessageType: 'RAW', SigningAlgorithm: 'ML_DSA_SHAKE_256' }, who))).toBe('OK');
    // MessageType omitted: the condition key carries its default RAW
    expect(await outcome(kms.call('Sign', { KeyId: dsa, Message: b(64), SigningAlgorithm: 'ML_DSA_SHAKE_256' }, who))).toBe('OK');
    expect(await outcome(kms.call('Sign', { KeyId: ed, Message: b(64), MessageType: 'DIGEST', SigningAlgorithm: 'ED25519_PH_SHA_512' }, who))).toBe('AccessDeniedException');
    expect(await outcome(kms.call('Sign', { KeyId: ed, Message: b(64), MessageType: 'RAW', SigningAlgorithm: 'ED25519_SHA_512' }, who))).toBe('OK');
  });

  it('held: kms:KeySpec / kms:KeyUsage of the key are in the request context of Encapsulate/Decapsulate (Developer Guide, "AWS KMS condition keys": KMS key resource operations)', async () => {
    const kms = svc();
    const pol = keyPolicy({
      Effect: 'Allow', Principal: { AWS: user }, Action: ['kms:Encapsulate', 'kms:Decapsulate'], Resource: '*',
      Condition: { StringEquals: { 'kms:KeySpec': 'ML_KEM_768', 'kms:KeyUsage': 'ENCAPSULATE_DECAPSULATE' } },
    });
    const k768 = await key(kms, 'ML_KEM_768', 'ENCAPSULATE_DECAPSULATE', { Policy: pol });
    const k512 = await key(kms, 'ML_KEM_512', 'ENCAPSULATE_DECAPSULATE', { Policy: pol });
    const who = plain(user);
    expect(await outcome(kms.call('Encapsulate', { KeyId: k768, EncapsulationAlgorithm: 'ML_KEM' }, who))).toBe('OK');
    expect(await outcome(kms.call('Encapsulate', { KeyId: k512, EncapsulationAlgorithm: 'ML_KEM' }, who))).toBe('AccessDeniedException');
  });

  it('held: a grant for Decapsulate only allows Decapsulate, not Encapsulate (Developer Guide, "Grants in AWS KMS")', async () => {
    const kms = svc();
    const k = await key(kms, 'ML_KEM_768', 'ENCAPSULATE_DECAPSULATE');
    const { GrantToken } = await kms.call('CreateGrant', { KeyId: k, GranteePrincipal: user, Operations: ['Decapsulate'] });
    const who = plain(user);
    expect(await outcome(kms.call('Decapsulate', { KeyId: k, EncapsulationAlgorithm: 'ML_KEM', SharedSecretCiphertextBlob: b(1088), GrantTokens: [GrantToken] }, who))).toBe('OK');
    expect(await outcome(kms.call('Encapsulate', { KeyId: k, EncapsulationAlgorithm: 'ML_KEM', GrantTokens: [GrantToken] }, who))).toBe('AccessDeniedException');
  });
});

describe('Recipient (Nitro Enclaves) on the data key operations', () => {
  // API Reference, GenerateDataKeyPair / GenerateDataKey / GenerateRandom `Recipient`: "instead of
  // returning a plaintext copy ... KMS encrypts [it] under the public key in the attestation
  // document ... The PrivateKeyPlaintext [Plaintext] field in the response is null or empty."
  // The local KMS refuses Recipient on Decrypt and DeriveSharedSecret (UnsupportedOperationException,
  // README condition-key table: "Recipient (Nitro Enclaves) is refused"); on these three it must
  // either refuse it too or return no plaintext, never the plaintext the caller asked to keep
  // inside the enclave.
  const recipient = { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' as const, AttestationDocument: Buffer.alloc(64, 7) };
  it('GenerateDataKeyPair (ML_KEM_768 pair) with a Recipient never returns PrivateKeyPlaintext', async () => {
    const { server, kms } = await startServer();
    try {
      const { CreateKeyCommand } = await import('@aws-sdk/client-kms');
      const arn = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
      let out: { PrivateKeyPlaintext?: Uint8Array } | undefined;
      try {
        out = await kms.send(new GenerateDataKeyPairCommand({ KeyId: arn, KeyPairSpec: 'ML_KEM_768', Recipient: recipient }));
      } catch (e) {
        expect((e as Error).name).toBe('UnsupportedOperationException');
      }
      expect(out?.PrivateKeyPlaintext ?? new Uint8Array(0)).toHaveLength(0);
    } finally {
      kms.destroy();
      await server.close();
    }
  });

  it('GenerateDataKey with a Recipient never returns Plaintext', async () => {
    const { server, kms } = await startServer();
    try {
      const { CreateKeyCommand } = await import('@aws-sdk/client-kms');
      const arn = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
      let out: { Plaintext?: Uint8Array } | undefined;
      try {
        out = await kms.send(new GenerateDataKeyCommand({ KeyId: arn, KeySpec: 'AES_256', Recipient: recipient }));
      } catch (e) {
        expect((e as Error).name).toBe('UnsupportedOperationException');
      }
      expect(out?.Plaintext ?? new Uint8Array(0)).toHaveLength(0);
    } finally {
      kms.destroy();
      await server.close();
    }
  });

  it('GenerateRandom with a Recipient never returns Plaintext', async () => {
    const { server, kms } = await startServer();
    try {
      let out: { Plaintext?: Uint8Array } | undefined;
      try {
        out = await kms.send(new GenerateRandomCommand({ NumberOfBytes: 32, Recipient: recipient }));
      } catch (e) {
        expect((e as Error).name).toBe('UnsupportedOperationException');
      }
      expect(out?.Plaintext ?? new Uint8Array(0)).toHaveLength(0);
    } finally {
      kms.destroy();
      await server.close();
    }
  });

  it('in process too: GenerateDataKeyPair with a Recipient never returns PrivateKeyPlaintext', async () => {
    const kms = svc();
    const sym = await key(kms, 'SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    const r = await kms.call('GenerateDataKeyPair', { KeyId: sym, KeyPairSpec: 'ECC_NIST_EDWARDS25519', Recipient: recipient }).catch((e: { type?: string }) => e);
    if ((r as { type?: string }).type !== 'UnsupportedOperationException') expect((r as { PrivateKeyPlaintext?: Uint8Array }).PrivateKeyPlaintext ?? new Uint8Array(0)).toHaveLength(0);
  });
});

describe('multi-Region ML-KEM and key states', () => {
  it('held: a replica decapsulates what the primary encapsulated (shared key material, Developer Guide "Multi-Region keys")', async () => {
    const kms = svc();
    const primary = await key(kms, 'ML_KEM_768', 'ENCAPSULATE_DECAPSULATE', { MultiRegion: true });
    await kms.call('ReplicateKey', { KeyId: primary, ReplicaRegion: 'eu-west-1' }, root, US);
    const replica = primary.replace('us-east-1', 'eu-west-1');
    const enc = await kms.call('Encapsulate', { KeyId: primary, EncapsulationAlgorithm: 'ML_KEM' }, root, US);
    const dec = await kms.call('Decapsulate', { KeyId: replica, EncapsulationAlgorithm: 'ML_KEM', SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob }, root, EU);
    expect(Buffer.from(dec.SharedSecret as Uint8Array).equals(Buffer.from(enc.SharedSecret as Uint8Array))).toBe(true);
    const p1 = (await kms.call('GetPublicKey', { KeyId: primary }, root, US)).PublicKey as Uint8Array;
    const p2 = (await kms.call('GetPublicKey', { KeyId: replica }, root, EU)).PublicKey as Uint8Array;
    expect(Buffer.from(p1).equals(Buffer.from(p2))).toBe(true);
    // PendingReplicaDeletion primary: not usable (Developer Guide, "Key states of KMS keys")
    await kms.call('ScheduleKeyDeletion', { KeyId: primary, PendingWindowInDays: 7 }, root, US);
    expect(await outcome(kms.call('Encapsulate', { KeyId: primary, EncapsulationAlgorithm: 'ML_KEM' }, root, US))).toBe('KMSInvalidStateException');
    expect(await outcome(kms.call('GetKeyLastUsage', { KeyId: primary }, root, US))).toBe('OK');
  });

  it('held: GetPublicKey DER of ML-KEM-1024 / ML-DSA-87 parses with openssl asn1parse as SEQUENCE{SEQUENCE{OID}, BIT STRING}', async () => {
    const kms = svc();
    for (const [spec, usage, oid, len] of [['ML_KEM_1024', 'ENCAPSULATE_DECAPSULATE', '2.16.840.1.101.3.4.4.3', 1568], ['ML_DSA_87', 'SIGN_VERIFY', '2.16.840.1.101.3.4.3.19', 2592]] as const) {
      const k = await key(kms, spec, usage);
      const der = Buffer.from((await kms.call('GetPublicKey', { KeyId: k })).PublicKey as Uint8Array);
      const out = execFileSync('openssl', ['asn1parse', '-inform', 'DER', '-oid', '/dev/null'], { input: der }).toString();
      expect(out).toMatch(new RegExp(`OBJECT\\s*:${oid.replace(/\./g, '\\.')}`));
      expect(out).toContain(`BIT STRING`);
      expect(out).not.toContain('NULL');
      expect(decodeSpki(der)!.publicKey.length).toBe(len);
    }
  });

  it('held: an ML-KEM data key pair is self-consistent: the seed in PrivateKeyPlaintext derives PublicKey (API Reference, GenerateDataKeyPair: ML-KEM private key in seed format)', async () => {
    const kms = svc();
    const sym = await key(kms, 'SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    const r = await kms.call('GenerateDataKeyPair', { KeyId: sym, KeyPairSpec: 'ML_KEM_768' });
    const seed = decodePkcs8Seed(r.PrivateKeyPlaintext as Uint8Array)!;
    expect(seed.parameterSet).toBe('ML-KEM-768');
    const { publicKey } = ml_kem768.keygen(seed.seed);
    expect(Buffer.from(publicKey).equals(Buffer.from(decodeSpki(r.PublicKey as Uint8Array)!.publicKey))).toBe(true);
    const d = await kms.call('Decrypt', { CiphertextBlob: r.PrivateKeyCiphertextBlob });
    expect(Buffer.from(d.Plaintext as Uint8Array).equals(Buffer.from(r.PrivateKeyPlaintext as Uint8Array))).toBe(true);
    // the same length for every ML-KEM pair spec (seed format)
    const lens = new Set<number>();
    for (const s of ['ML_KEM_512', 'ML_KEM_768', 'ML_KEM_1024']) lens.add(((await kms.call('GenerateDataKeyPair', { KeyId: sym, KeyPairSpec: s })).PrivateKeyPlaintext as Uint8Array).length);
    expect(lens.size).toBe(1);
    void ml_dsa44;
  });
});

describe('CreateKey request validation for the new key specs', () => {
  it('CustomerMasterKeySpec accepts only its own enum: ML_DSA_65, ML_KEM_768 and ECC_NIST_EDWARDS25519 are ValidationException there', async () => {
    // API Reference, CreateKey `CustomerMasterKeySpec` (deprecated, type CustomerMasterKeySpec): the
    // enum in @aws-sdk/client-kms 3.1164.0 models/enums.d.ts lists RSA_*, ECC_NIST_P256/384/521,
    // ECC_SECG_P256K1, HMAC_*, SM2 and SYMMETRIC_DEFAULT only; the new specs exist only in
    // `KeySpec`. A value outside a member's enum is a ValidationException ("Member must satisfy
    // enum value set"), as the local KMS answers for every other enum member.
    const kms = svc();
    for (const [spec, usage] of [['ML_DSA_65', 'SIGN_VERIFY'], ['ML_KEM_768', 'ENCAPSULATE_DECAPSULATE'], ['ECC_NIST_EDWARDS25519', 'SIGN_VERIFY']]) {
      expect(await outcome(kms.call('CreateKey', { CustomerMasterKeySpec: spec, KeyUsage: usage })), spec).toBe('ValidationException');
    }
  });
});

describe('cross-account use and HTTP shapes', () => {
  it('held: cross-account Encapsulate by alias ARN works, by alias name does not (API Reference, Encapsulate `KeyId`: other accounts must use the key ARN or alias ARN)', async () => {
    const kms = svc();
    const other = plain(`arn:aws:iam::${OTHER}:root`);
    const k = await key(kms, 'ML_KEM_512', 'ENCAPSULATE_DECAPSULATE', {
      Policy: keyPolicy({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${OTHER}:root` }, Action: ['kms:Encapsulate', 'kms:Decapsulate'], Resource: '*' }),
    });
    await kms.call('CreateAlias', { AliasName: 'alias/kem', TargetKeyId: k });
    expect(await outcome(kms.call('Encapsulate', { KeyId: `arn:aws:kms:us-east-1:${ACCOUNT}:alias/kem`, EncapsulationAlgorithm: 'ML_KEM' }, other))).toBe('OK');
    expect(await outcome(kms.call('Encapsulate', { KeyId: 'alias/kem', EncapsulationAlgorithm: 'ML_KEM' }, other))).toBe('NotFoundException');
    expect(await outcome(kms.call('Encapsulate', { KeyId: k.split('/')[1], EncapsulationAlgorithm: 'ML_KEM' }, other))).toBe('NotFoundException');
  });

  it('held: GetKeyLastUsage over HTTP: empty KeyLastUsage before use, then Operation and Timestamp as the SDK types them', async () => {
    const { server, kms } = await startServer();
    try {
      const sdk = await import('@aws-sdk/client-kms');
      const md = (await kms.send(new sdk.CreateKeyCommand({ KeySpec: 'ML_DSA_44', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!;
      const before = await kms.send(new sdk.GetKeyLastUsageCommand({ KeyId: md.KeyId }));
      expect(before.KeyLastUsage).toEqual({});
      expect(before.TrackingStartDate).toBeInstanceOf(Date);
      expect(before.KeyCreationDate!.getTime()).toBeLessThanOrEqual(before.TrackingStartDate!.getTime());
      await kms.send(new sdk.SignCommand({ KeyId: md.Arn, Message: Buffer.from('x'), SigningAlgorithm: 'ML_DSA_SHAKE_256' }));
      const after = await kms.send(new sdk.GetKeyLastUsageCommand({ KeyId: md.Arn }));
      expect(after.KeyLastUsage!.Operation).toBe('Sign');
      expect(after.KeyLastUsage!.Timestamp).toBeInstanceOf(Date);
      expect(after.KeyId).toBe(md.KeyId);
    } finally {
      kms.destroy();
      await server.close();
    }
  });
});

describe('GetKeyLastUsage TrackingStartDate of a new key', () => {
  // API Reference, GetKeyLastUsage: TrackingStartDate is "the date from which KMS began recording
  // cryptographic activity for this key, or the date the KMS key was created, whichever is later";
  // "KeyLastUsage empty and KeyCreationDate before TrackingStartDate" means "the key may have been
  // used before tracking began". README ("Key last usage"): "TrackingStartDate is the key's
  // creation date" for keys this version created. A key created by the very process that tracks
  // usage cannot predate tracking, so the two dates must be equal.
  it('the first key a fresh local KMS creates has TrackingStartDate equal to KeyCreationDate (stepping test clock)', async () => {
    let t = Date.UTC(2030, 0, 1);
    const kms = svc({ clock: () => (t += 1000) });
    const k = await key(kms, 'SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    const r = await kms.call('GetKeyLastUsage', { KeyId: k });
    expect(r.KeyLastUsage).toEqual({});
    expect((r.TrackingStartDate as Date).toISOString()).toBe((r.KeyCreationDate as Date).toISOString());
  });

});
