/**
 * CloudHSM key stores backed by a SoftHSM2 token, over HTTP with @aws-sdk/client-kms (issue 17):
 * the six custom key store operations with AWS's rules and errors, keys generated in the token,
 * AES-GCM inside it, `Unavailable` keys while disconnected, deletion destroying the token object,
 * and proof that the key never leaves the token (PKCS#11 refuses CKA_VALUE; no 32-byte value in
 * the data directory opens the test's ciphertexts).
 */
import { createDecipheriv, createCipheriv, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
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
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateRandomCommand,
  ReEncryptCommand,
  ScheduleKeyDeletionCommand,
  UpdateCustomKeyStoreCommand,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalContext } from '../../src/local-kms/blob.js';
import { type LocalKmsServer } from '../../src/local-kms/index.js';
import { DAY, advanceClock, expectAwsError, startServer, tempDir } from './helpers.js';
import { USER_PIN, inspectTokenKey, skipReason, softHsm, type SoftHsm } from './softhsm.js';

const CLUSTER = 'cluster-1234567890a';
/** Another "cluster" on the same token: shares its backup history (UpdateCustomKeyStore may move to it). */
const SAME_TOKEN = 'cluster-abcdefghijk';
/** A cluster on another token, with a configured trust anchor. */
const OTHER = 'cluster-zzzzzzzzzzz';

/**
 * Every 32-byte value the directory holds, as raw bytes or encoded in its text (base64 and hex
 * runs decoded), tried as the AES-256-GCM key of each ciphertext blob (blob.ts layout, AAD =
 * header || canonical context). Returns how many candidates were tried and how many opened one.
 */
function scanForKeys(dir: string, blobs: Array<{ blob: Uint8Array; context: Record<string, string> }>): { tried: number; opened: number } {
  const candidates: Buffer[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else {
        const bytes = readFileSync(full);
        candidates.push(bytes);
        const text = bytes.toString('latin1');
        for (const m of text.matchAll(/[A-Za-z0-9+/]{40,}={0,2}/g)) candidates.push(Buffer.from(m[0], 'base64'));
        for (const m of text.matchAll(/[0-9a-fA-F]{64,}/g)) candidates.push(Buffer.from(m[0], 'hex'));
      }
    }
  };
  walk(dir);
  let tried = 0;
  let opened = 0;
  for (const data of candidates) {
    for (let i = 0; i + 32 <= data.length; i++) {
      const key = data.subarray(i, i + 32);
      tried++;
      for (const { blob, context } of blobs) {
        const b = Buffer.from(blob);
        const header = b.subarray(0, 49);
        try {
          const d = createDecipheriv('aes-256-gcm', key, b.subarray(49, 61));
          d.setAAD(Buffer.concat([header, canonicalContext(context)]));
          d.setAuthTag(b.subarray(b.length - 16));
          d.update(b.subarray(61, b.length - 16));
          d.final();
          opened++;
        } catch {
          // not the key
        }
      }
    }
  }
  return { tried, opened };
}

describe.skipIf(skipReason !== undefined)(`CloudHSM key stores on SoftHSM2${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let hsm: SoftHsm;
  let data: ReturnType<typeof tempDir>;
  let server: LocalKmsServer;
  let kms: KMSClient;
  let anchor: string;
  let otherAnchor: string;
  let storeId: string;
  let keyId: string;
  const ciphertexts: Array<{ blob: Uint8Array; context: Record<string, string>; plaintext: Buffer }> = [];

  const hsms = () => ({
    [CLUSTER]: { module: hsm.module, tokenLabel: 'kms-a' },
    [SAME_TOKEN]: { module: hsm.module, tokenLabel: 'kms-a' },
    [OTHER]: { module: hsm.module, tokenLabel: 'kms-b', trustAnchor: otherAnchor },
  });
  const start = async () => {
    ({ server, kms } = await startServer({ dataDir: data.dir, testClock: true, hsms: hsms() }));
  };
  const describeStore = async () => (await kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: storeId }))).CustomKeyStores![0]!;

  beforeAll(async () => {
    hsm = softHsm();
    hsm.initToken('kms-a');
    hsm.initToken('kms-b');
    anchor = hsm.certificate('customerCA');
    otherAnchor = hsm.certificate('otherCA');
    data = tempDir('lkms-cks-');
    await start();
  });

  afterAll(async () => {
    await server?.close();
    data?.cleanup();
    hsm?.cleanup();
  });

  it('CreateCustomKeyStore: unknown cluster, wrong trust anchor, then created; names and clusters are unique', async () => {
    const base = { CustomKeyStoreName: 'hsm-store', TrustAnchorCertificate: anchor, KeyStorePassword: USER_PIN };
    await expectAwsError(kms.send(new CreateCustomKeyStoreCommand({ ...base, CloudHsmClusterId: 'cluster-nosuchcluster' })), 'CloudHsmClusterNotFoundException');
    await expectAwsError(kms.send(new CreateCustomKeyStoreCommand({ ...base, CloudHsmClusterId: OTHER })), 'IncorrectTrustAnchorException');
    await expectAwsError(kms.send(new CreateCustomKeyStoreCommand({ ...base, CloudHsmClusterId: CLUSTER, TrustAnchorCertificate: 'not a certificate' })), 'IncorrectTrustAnchorException');
    await expectAwsError(kms.send(new CreateCustomKeyStoreCommand({ ...base, CloudHsmClusterId: CLUSTER, KeyStorePassword: 'short' })), 'ValidationException');
    const out = await kms.send(new CreateCustomKeyStoreCommand({ ...base, CloudHsmClusterId: CLUSTER }));
    storeId = out.CustomKeyStoreId!;
    expect(storeId).toMatch(/^cks-[0-9a-f]{17}$/);
    await expectAwsError(kms.send(new CreateCustomKeyStoreCommand({ ...base, CloudHsmClusterId: OTHER, TrustAnchorCertificate: otherAnchor })), 'CustomKeyStoreNameInUseException');
    // Another cluster id on the same token shares its backup history: in use.
    await expectAwsError(kms.send(new CreateCustomKeyStoreCommand({ ...base, CustomKeyStoreName: 'second', CloudHsmClusterId: SAME_TOKEN })), 'CloudHsmClusterInUseException');
    const s = await describeStore();
    expect(s).toMatchObject({ CustomKeyStoreId: storeId, CustomKeyStoreName: 'hsm-store', CloudHsmClusterId: CLUSTER, TrustAnchorCertificate: anchor, ConnectionState: 'DISCONNECTED', CustomKeyStoreType: 'AWS_CLOUDHSM' });
    expect(s.CreationDate).toBeInstanceOf(Date);
    expect(JSON.stringify(s)).not.toContain(USER_PIN);
    await expectAwsError(kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreName: 'nope' })), 'CustomKeyStoreNotFoundException');
    await expectAwsError(kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: 'cks-00000000000000000' })), 'CustomKeyStoreNotFoundException');
  });

  it('a wrong password fails the connection (FAILED, INVALID_CREDENTIALS); FAILED must be disconnected before connecting again', async () => {
    await expectAwsError(kms.send(new CreateKeyCommand({ Origin: 'AWS_CLOUDHSM', CustomKeyStoreId: storeId })), 'CustomKeyStoreInvalidStateException');
    await kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: storeId, KeyStorePassword: 'wrong-password' }));
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    expect(await describeStore()).toMatchObject({ ConnectionState: 'FAILED', ConnectionErrorCode: 'INVALID_CREDENTIALS' });
    await expectAwsError(kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId })), 'CustomKeyStoreInvalidStateException');
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    await expectAwsError(kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId })), 'CustomKeyStoreInvalidStateException');
    // An unrelated cluster (another token) cannot replace the store's cluster; a related one can.
    await expectAwsError(kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: storeId, CloudHsmClusterId: OTHER })), 'CloudHsmClusterNotRelatedException');
    await kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: storeId, CloudHsmClusterId: SAME_TOKEN, KeyStorePassword: USER_PIN }));
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    const s = await describeStore();
    expect(s).toMatchObject({ ConnectionState: 'CONNECTED', CloudHsmClusterId: SAME_TOKEN });
    expect(s.ConnectionErrorCode).toBeUndefined();
    // Connecting a connected store is fine; the password and cluster change only while disconnected.
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    await expectAwsError(kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: storeId, KeyStorePassword: USER_PIN })), 'CustomKeyStoreInvalidStateException');
    await kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: storeId, NewCustomKeyStoreName: 'renamed' }));
    expect((await describeStore()).CustomKeyStoreName).toBe('renamed');
    await expectAwsError(kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: storeId })), 'CustomKeyStoreInvalidStateException');
  });

  it('CreateKey in the store: a non-extractable, sensitive AES-256 key in the token; DescribeKey names the store and cluster', async () => {
    await expectAwsError(kms.send(new CreateKeyCommand({ Origin: 'AWS_CLOUDHSM' })), 'ValidationException');
    await expectAwsError(kms.send(new CreateKeyCommand({ Origin: 'AWS_CLOUDHSM', CustomKeyStoreId: storeId, KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' })), 'UnsupportedOperationException');
    await expectAwsError(kms.send(new CreateKeyCommand({ Origin: 'AWS_CLOUDHSM', CustomKeyStoreId: storeId, MultiRegion: true })), 'UnsupportedOperationException');
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({ Origin: 'AWS_CLOUDHSM', CustomKeyStoreId: storeId, Description: 'in the HSM' }));
    keyId = KeyMetadata!.KeyId!;
    const md = (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
    expect(md).toMatchObject({ Origin: 'AWS_CLOUDHSM', CustomKeyStoreId: storeId, CloudHsmClusterId: SAME_TOKEN, KeyState: 'Enabled', KeySpec: 'SYMMETRIC_DEFAULT' });
    const obj = inspectTokenKey(hsm, 'kms-a', keyId);
    expect(obj).toMatchObject({ found: 1, sensitive: true, extractable: false, valueLen: 32, label: `kms-envelope:${keyId}` });
    // PKCS#11 v2.40 §4.1.3: a sensitive attribute cannot be revealed.
    expect(obj.value).toBe('CKR_ATTRIBUTE_SENSITIVE');
  });

  it('Encrypt, Decrypt, ReEncrypt and GenerateDataKey* run with the token key', async () => {
    const context = { purpose: 'hsm-test' };
    const plaintext = Buffer.from('secret in a hardware-backed key');
    const enc = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionContext: context }));
    ciphertexts.push({ blob: enc.CiphertextBlob!, context, plaintext });
    const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: context }));
    expect(Buffer.from(dec.Plaintext!)).toEqual(plaintext);
    expect(dec.KeyId).toContain(keyId);
    await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { purpose: 'other' } })), 'InvalidCiphertextException');
    const tampered = Buffer.from(enc.CiphertextBlob!);
    tampered[tampered.length - 20]! ^= 1;
    await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob: tampered, EncryptionContext: context })), 'InvalidCiphertextException');

    const gdk = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' }));
    ciphertexts.push({ blob: gdk.CiphertextBlob!, context: {}, plaintext: Buffer.from(gdk.Plaintext!) });
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: gdk.CiphertextBlob }))).Plaintext!)).toEqual(Buffer.from(gdk.Plaintext!));
    const gdkw = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyId, NumberOfBytes: 32 }));
    expect((await kms.send(new DecryptCommand({ CiphertextBlob: gdkw.CiphertextBlob }))).Plaintext!.length).toBe(32);
    ciphertexts.push({ blob: gdkw.CiphertextBlob!, context: {}, plaintext: Buffer.alloc(0) });

    // ReEncrypt out of the HSM key to an ordinary key and back.
    const plain = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const out = await kms.send(new ReEncryptCommand({ CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: context, DestinationKeyId: plain }));
    const back = await kms.send(new ReEncryptCommand({ CiphertextBlob: out.CiphertextBlob, DestinationKeyId: keyId, DestinationEncryptionContext: context }));
    expect(back.KeyId).toContain(keyId);
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: back.CiphertextBlob, EncryptionContext: context }))).Plaintext!)).toEqual(plaintext);
  });

  it('disconnected: the key is Unavailable and its operations fail with KMSInvalidStateException; a store with keys cannot be deleted; reconnected it works again', async () => {
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    expect((await describeStore()).ConnectionState).toBe('DISCONNECTED');
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe('Unavailable');
    const { blob, context, plaintext } = ciphertexts[0]!;
    await expectAwsError(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext })), 'KMSInvalidStateException');
    await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context })), 'KMSInvalidStateException');
    await expectAwsError(kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' })), 'KMSInvalidStateException');
    await expectAwsError(kms.send(new CreateKeyCommand({ Origin: 'AWS_CLOUDHSM', CustomKeyStoreId: storeId })), 'CustomKeyStoreInvalidStateException');
    await expectAwsError(kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: storeId })), 'CustomKeyStoreHasCMKsException');
    await expectAwsError(kms.send(new GenerateRandomCommand({ NumberOfBytes: 16, CustomKeyStoreId: storeId })), 'CustomKeyStoreInvalidStateException');
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe('Enabled');
    // GenerateRandom from the store's token (C_GenerateRandom).
    expect((await kms.send(new GenerateRandomCommand({ NumberOfBytes: 48, CustomKeyStoreId: storeId }))).Plaintext!.length).toBe(48);
    await expectAwsError(kms.send(new GenerateRandomCommand({ NumberOfBytes: 16, CustomKeyStoreId: 'cks-00000000000000000' })), 'CustomKeyStoreNotFoundException');
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context }))).Plaintext!)).toEqual(plaintext);
  });

  it('a restarted local KMS reconnects the store it left connected; the password is sealed in the data directory', async () => {
    await server.close();
    const file = readFileSync(join(data.dir, 'custom-key-stores.json'), 'utf8');
    expect(file).toContain(storeId);
    expect(file).not.toContain(USER_PIN);
    await start();
    const { blob, context, plaintext } = ciphertexts[0]!;
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context }))).Plaintext!)).toEqual(plaintext);
    expect(await describeStore()).toMatchObject({ ConnectionState: 'CONNECTED', CustomKeyStoreName: 'renamed' });
  });

  it('no 32-byte value in the data directory opens the ciphertexts (each one tried as the AES-GCM key); the scan finds a key that is there', () => {
    expect(ciphertexts.length).toBe(3);
    const scan = scanForKeys(data.dir, ciphertexts);
    expect(scan.tried).toBeGreaterThan(1000);
    expect(scan.opened).toBe(0);
    // Control: the same scan over a directory holding a key (hex in JSON, like a careless store) finds it.
    const control = tempDir('lkms-scan-');
    try {
      const key = randomBytes(32);
      const header = Buffer.alloc(49, 1);
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', key, iv);
      c.setAAD(Buffer.concat([header, canonicalContext({})]));
      const ct = Buffer.concat([c.update(Buffer.from('x')), c.final()]);
      writeFileSync(join(control.dir, 'k.json'), JSON.stringify({ material: key.toString('hex') }));
      expect(scanForKeys(control.dir, [{ blob: Buffer.concat([header, iv, ct, c.getAuthTag()]), context: {} }]).opened).toBe(1);
    } finally {
      control.cleanup();
    }
  });

  it('deleting the key after its waiting period destroys the token object; then the empty, disconnected store can be deleted', async () => {
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
    expect(inspectTokenKey(hsm, 'kms-a', keyId).found).toBe(1);
    await advanceClock(server.url, 8 * DAY);
    await expectAwsError(kms.send(new DescribeKeyCommand({ KeyId: keyId })), 'NotFoundException');
    expect(inspectTokenKey(hsm, 'kms-a', keyId).found).toBe(0);
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    await kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    await expectAwsError(kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: storeId })), 'CustomKeyStoreNotFoundException');
    expect((await kms.send(new DescribeCustomKeyStoresCommand({}))).CustomKeyStores).toEqual([]);
  });
});

describe('the hsms option', () => {
  it('is validated at construction: cluster ids, module and token label', async () => {
    const { LocalKmsService } = await import('../../src/local-kms/service.js');
    expect(() => new LocalKmsService({ hsms: { 'not-a-cluster': { module: '/x.so', tokenLabel: 't' } } })).toThrow(RangeError);
    expect(() => new LocalKmsService({ hsms: { 'cluster-1234567890a': { module: '', tokenLabel: 't' } } })).toThrow(TypeError);
    expect(() => new LocalKmsService({ hsms: { 'cluster-1234567890a': { module: '/x.so', tokenLabel: 'x'.repeat(33) } } })).toThrow(/tokenLabel/);
    expect(() => new LocalKmsService({ hsms: { 'cluster-1234567890a': { module: '/x.so', tokenLabel: 't', trustAnchor: 'nope' } } })).toThrow(/trustAnchor/);
    new LocalKmsService({ hsms: { 'cluster-1234567890a': { module: '/x.so', tokenLabel: 't' } } }).close();
  });
});
