/**
 * BranchKeyStore (framework/branch-key-store.md) with the directory storage and the in-process
 * local KMS: the KMS requests and encryption contexts of each operation, the items written, the
 * checks on items read, VersionKey's authentication and race, discovery configurations.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BranchKeyStore, BranchKeyStoreError, DirectoryBranchKeyStorage, type BranchKeyItem, type KmsClient } from '../../../src/index.js';
import { LocalKms, type LocalKmsClient } from '../../../src/local-kms/index.js';

interface Call {
  op: string;
  input: Record<string, unknown>;
}

/** The real local KMS client, with each request recorded (operation and input). */
function recording(client: LocalKmsClient, calls: Call[]): KmsClient {
  const rec =
    (op: string, f: (i: never) => Promise<unknown>) =>
    (input: Record<string, unknown>) => {
      calls.push({ op, input });
      return f(input as never);
    };
  return {
    generateDataKey: rec('GenerateDataKey', client.generateDataKey) as KmsClient['generateDataKey'],
    encrypt: rec('Encrypt', client.encrypt) as KmsClient['encrypt'],
    decrypt: rec('Decrypt', client.decrypt) as KmsClient['decrypt'],
    generateDataKeyWithoutPlaintext: rec('GenerateDataKeyWithoutPlaintext', client.generateDataKeyWithoutPlaintext!) as KmsClient['generateDataKeyWithoutPlaintext'],
    reEncrypt: rec('ReEncrypt', client.reEncrypt!) as KmsClient['reEncrypt'],
  };
}

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

describe('BranchKeyStore', () => {
  let dir: string;
  let kms: LocalKms;
  let client: LocalKmsClient;
  let arn: string;
  let calls: Call[];
  let storage: DirectoryBranchKeyStorage;
  let store: BranchKeyStore;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kms-envelope-bks-'));
    kms = new LocalKms();
    client = kms.client();
    arn = (await kms.createKey()).arn;
    calls = [];
    storage = new DirectoryBranchKeyStorage({ dir });
    store = new BranchKeyStore({
      storage,
      logicalKeyStoreName: 'logical',
      kmsConfiguration: { kmsKeyArn: arn },
      kmsClient: recording(client, calls),
      clock: () => Date.UTC(2026, 0, 2, 3, 4, 5, 678),
    });
  });
  afterEach(() => {
    kms.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('createKey: GenerateDataKeyWithoutPlaintext (DECRYPT_ONLY), ReEncrypt to ACTIVE, GenerateDataKeyWithoutPlaintext (beacon); items in the record format', async () => {
    const { branchKeyId, branchKeyVersion } = await store.createKey({ branchKeyId: 'tenant/1', encryptionContext: { dept: 'Ω' } });
    expect(branchKeyId).toBe('tenant/1');
    expect(branchKeyVersion).toMatch(UUID4);
    const decryptOnly = {
      'branch-key-id': 'tenant/1',
      type: `branch:version:${branchKeyVersion}`,
      'create-time': '2026-01-02T03:04:05.678000Z',
      tablename: 'logical',
      'kms-arn': arn,
      'hierarchy-version': '1',
      'aws-crypto-ec:dept': 'Ω',
    };
    const active = { ...decryptOnly, type: 'branch:ACTIVE', version: `branch:version:${branchKeyVersion}` };
    const beacon = { ...decryptOnly, type: 'beacon:ACTIVE' };
    expect(calls.map((c) => c.op)).toEqual(['GenerateDataKeyWithoutPlaintext', 'ReEncrypt', 'GenerateDataKeyWithoutPlaintext']);
    expect(calls[0]!.input).toMatchObject({ keyId: arn, numberOfBytes: 32, encryptionContext: decryptOnly });
    expect({ ...(calls[0]!.input.encryptionContext as object) }).toEqual(decryptOnly);
    expect(calls[1]!.input).toMatchObject({ sourceKeyId: arn, destinationKeyId: arn });
    expect({ ...(calls[1]!.input.sourceEncryptionContext as object) }).toEqual(decryptOnly);
    expect({ ...(calls[1]!.input.destinationEncryptionContext as object) }).toEqual(active);
    expect({ ...(calls[2]!.input.encryptionContext as object) }).toEqual(beacon);
    expect(calls[2]!.input.numberOfBytes).toBe(32);

    // Stored items: the contexts without tablename, plus enc; each enc decrypts under its context.
    for (const [type, ctx] of [
      [`branch:version:${branchKeyVersion}`, decryptOnly],
      ['branch:ACTIVE', active],
      ['beacon:ACTIVE', beacon],
    ] as const) {
      const item = (await storage.getItem('tenant/1', type as BranchKeyItem['type']))!;
      const { enc, ...attrs } = item;
      const { tablename: _t, ...expected } = ctx;
      expect(attrs).toEqual(expected);
      expect(attrs['create-time']).toMatch(TIME);
      const out = await client.decrypt({ ciphertextBlob: enc, encryptionContext: ctx });
      expect(out.plaintext).toHaveLength(32);
    }
    // The ACTIVE item holds the same branch key as its version item.
    const a = await store.getActiveBranchKey('tenant/1');
    const v = await store.getBranchKeyVersion('tenant/1', branchKeyVersion);
    expect(Buffer.from(a.branchKey).equals(Buffer.from(v.branchKey))).toBe(true);
    expect(a).toMatchObject({ branchKeyId: 'tenant/1', branchKeyVersion, encryptionContext: { dept: 'Ω' } });
  });

  it('createKey without an id makes a v4 UUID; with an id it needs an encryption context; an existing id is BRANCH_KEY_EXISTS', async () => {
    const { branchKeyId } = await store.createKey();
    expect(branchKeyId).toMatch(UUID4);
    await expect(store.createKey({ branchKeyId: 'x' })).rejects.toThrow(TypeError);
    await expect(store.createKey({ branchKeyId: 'x', encryptionContext: {} })).rejects.toThrow(TypeError);
    await store.createKey({ branchKeyId: 'x', encryptionContext: { a: 'b' } });
    await expect(store.createKey({ branchKeyId: 'x', encryptionContext: { a: 'b' } })).rejects.toMatchObject({
      code: 'ERR_BRANCH_KEY_STORE',
      reason: 'BRANCH_KEY_EXISTS',
    });
  });

  it('getActiveBranchKey / getBranchKeyVersion: one Decrypt with the configured key and the item context plus tablename', async () => {
    const { branchKeyId, branchKeyVersion } = await store.createKey();
    calls.length = 0;
    const m = await store.getActiveBranchKey(branchKeyId);
    expect(calls.map((c) => c.op)).toEqual(['Decrypt']);
    const item = (await storage.getItem(branchKeyId, 'branch:ACTIVE'))!;
    const { enc, ...attrs } = item;
    expect(calls[0]!.input.keyId).toBe(arn);
    expect(Buffer.from(calls[0]!.input.ciphertextBlob as Uint8Array).equals(Buffer.from(enc))).toBe(true);
    expect({ ...(calls[0]!.input.encryptionContext as object) }).toEqual({ ...attrs, tablename: 'logical' });
    expect(m.branchKeyVersion).toBe(branchKeyVersion);
    expect(m.branchKey).toHaveLength(32);
    await expect(store.getBranchKeyVersion(branchKeyId, '00000000-0000-4000-8000-000000000000')).rejects.toMatchObject({ reason: 'NOT_FOUND' });
    await expect(store.getActiveBranchKey('nope')).rejects.toMatchObject({ reason: 'NOT_FOUND' });
  });

  it("a branch key is returned in memory of its own and the KMS client's plaintext is zeroed (an SDK answer is a slice of Node's shared Buffer pool)", async () => {
    const { branchKeyId } = await store.createKey();
    const answers: { plaintext: Uint8Array; hex: string }[] = [];
    const reading = new BranchKeyStore({
      storage,
      logicalKeyStoreName: 'logical',
      kmsConfiguration: { kmsKeyArn: arn },
      kmsClient: {
        ...recording(client, calls),
        decrypt: async (input: Parameters<KmsClient['decrypt']>[0]) => {
          const out = await client.decrypt(input);
          // As the SDK decodes it: 32 bytes inside a larger shared slab.
          const slab = Buffer.allocUnsafe(64);
          out.plaintext.forEach((b, i) => (slab[16 + i] = b));
          const plaintext = slab.subarray(16, 48);
          answers.push({ plaintext, hex: Buffer.from(plaintext).toString('hex') });
          return { ...out, plaintext };
        },
      },
    });
    const { branchKey } = await reading.getActiveBranchKey(branchKeyId);
    expect(answers).toHaveLength(1);
    expect(Buffer.from(branchKey).toString('hex')).toBe(answers[0]!.hex);
    expect(branchKey.byteOffset).toBe(0);
    expect(branchKey.buffer.byteLength).toBe(32);
    expect(answers[0]!.plaintext.every((b) => b === 0)).toBe(true);
  });

  it('every attribute is authenticated: a changed attribute, another logical name or a foreign kms-arn fails', async () => {
    const { branchKeyId } = await store.createKey();
    const item = (await storage.getItem(branchKeyId, 'branch:ACTIVE'))!;
    const tampered: BranchKeyStorage = {
      writeNewBranchKey: () => Promise.reject(new Error('no')),
      writeNewBranchKeyVersion: () => Promise.reject(new Error('no')),
      getItem: async (_id, _type) => ({ ...item, 'create-time': '2020-01-01T00:00:00.000000Z' }),
    };
    const other = (storage2: BranchKeyStorage, name = 'logical', cfg: { kmsKeyArn: string } = { kmsKeyArn: arn }) =>
      new BranchKeyStore({ storage: storage2, logicalKeyStoreName: name, kmsConfiguration: cfg, kmsClient: client });
    await expect(other(tampered).getActiveBranchKey(branchKeyId)).rejects.toMatchObject({ code: 'ERR_KMS' });
    await expect(other(storage, 'another-name').getActiveBranchKey(branchKeyId)).rejects.toMatchObject({ code: 'ERR_KMS' });
    const otherArn = (await kms.createKey()).arn;
    await expect(other(storage, 'logical', { kmsKeyArn: otherArn }).getActiveBranchKey(branchKeyId)).rejects.toMatchObject({
      reason: 'KMS_ARN_MISMATCH',
    });
    const missing: BranchKeyStorage = { ...tampered, getItem: async () => ({ ...item, 'kms-arn': undefined as never }) };
    await expect(other(missing).getActiveBranchKey(branchKeyId)).rejects.toMatchObject({ reason: 'MALFORMED_ITEM' });
    const foreign: BranchKeyStorage = { ...tampered, getItem: async () => ({ ...item, 'branch-key-id': 'someone-else' }) };
    await expect(other(foreign).getActiveBranchKey(branchKeyId)).rejects.toMatchObject({ reason: 'MALFORMED_ITEM' });
  });

  it('versionKey: ReEncrypt authenticates the ACTIVE item, then a new version becomes ACTIVE; old versions still decrypt', async () => {
    const { branchKeyId, branchKeyVersion: v0 } = await store.createKey({ branchKeyId: 'rot', encryptionContext: { t: '1' } });
    const oldActive = (await storage.getItem('rot', 'branch:ACTIVE'))!;
    calls.length = 0;
    const { branchKeyVersion: v1 } = await store.versionKey(branchKeyId);
    expect(calls.map((c) => c.op)).toEqual(['ReEncrypt', 'GenerateDataKeyWithoutPlaintext', 'ReEncrypt']);
    const { enc: _e, ...oldAttrs } = oldActive;
    const oldCtx = { ...oldAttrs, tablename: 'logical' };
    expect({ ...(calls[0]!.input.sourceEncryptionContext as object) }).toEqual(oldCtx);
    expect({ ...(calls[0]!.input.destinationEncryptionContext as object) }).toEqual(oldCtx);
    expect(calls[0]!.input).toMatchObject({ sourceKeyId: arn, destinationKeyId: arn });
    expect(v1).not.toBe(v0);
    const active = await store.getActiveBranchKey('rot');
    expect(active).toMatchObject({ branchKeyVersion: v1, encryptionContext: { t: '1' } });
    expect((await store.getBranchKeyVersion('rot', v0)).branchKeyVersion).toBe(v0);
    const newActive = (await storage.getItem('rot', 'branch:ACTIVE'))!;
    expect(newActive['kms-arn']).toBe(arn);
    expect(newActive['aws-crypto-ec:t']).toBe('1');
    await expect(store.versionKey('missing')).rejects.toMatchObject({ reason: 'NOT_FOUND' });
  });

  it('versionKey refuses a tampered ACTIVE item (KMS ReEncrypt fails) and writes nothing', async () => {
    const { branchKeyId } = await store.createKey();
    const item = (await storage.getItem(branchKeyId, 'branch:ACTIVE'))!;
    let writes = 0;
    const tampered: BranchKeyStorage = {
      writeNewBranchKey: () => Promise.reject(new Error('no')),
      writeNewBranchKeyVersion: async () => void writes++,
      getItem: async () => ({ ...item, 'aws-crypto-ec:added': 'x' }),
    };
    const s = new BranchKeyStore({ storage: tampered, logicalKeyStoreName: 'logical', kmsConfiguration: { kmsKeyArn: arn }, kmsClient: client });
    await expect(s.versionKey(branchKeyId)).rejects.toMatchObject({ code: 'ERR_KMS' });
    expect(writes).toBe(0);
  });

  it('two racing versionKey calls: one wins, the other is ACTIVE_CHANGED; the directory storage keeps one ACTIVE', async () => {
    const { branchKeyId } = await store.createKey();
    const second = new BranchKeyStore({
      storage: new DirectoryBranchKeyStorage({ dir }),
      logicalKeyStoreName: 'logical',
      kmsConfiguration: { kmsKeyArn: arn },
      kmsClient: client,
    });
    const results = await Promise.allSettled([store.versionKey(branchKeyId), second.versionKey(branchKeyId), store.versionKey(branchKeyId)]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won.length).toBeGreaterThanOrEqual(1);
    for (const r of lost) expect(r.reason).toMatchObject({ reason: 'ACTIVE_CHANGED' });
    const active = await store.getActiveBranchKey(branchKeyId);
    expect(won.map((r) => (r as PromiseFulfilledResult<{ branchKeyVersion: string }>).value.branchKeyVersion)).toContain(active.branchKeyVersion);
    for (const r of won) await store.getBranchKeyVersion(branchKeyId, (r as PromiseFulfilledResult<{ branchKeyVersion: string }>).value.branchKeyVersion);
  });

  it('discovery and MRDiscovery: read any key (KeyId = the stored kms-arn); createKey and versionKey are UNSUPPORTED', async () => {
    const { branchKeyId } = await store.createKey();
    for (const kmsConfiguration of ['discovery', { mrDiscoveryRegion: 'us-east-1' }] as const) {
      const reader = new BranchKeyStore({ storage, logicalKeyStoreName: 'logical', kmsConfiguration, kmsClient: recording(client, calls) });
      calls.length = 0;
      expect((await reader.getActiveBranchKey(branchKeyId)).branchKey).toHaveLength(32);
      expect(calls[0]!.input.keyId).toBe(arn);
      await expect(reader.createKey()).rejects.toMatchObject({ reason: 'UNSUPPORTED' });
      await expect(reader.versionKey(branchKeyId)).rejects.toMatchObject({ reason: 'UNSUPPORTED' });
    }
  });

  it('getBeaconKey and getKeyStoreInfo', async () => {
    const { branchKeyId } = await store.createKey({ branchKeyId: 'b', encryptionContext: { x: 'y' } });
    calls.length = 0;
    const beacon = await store.getBeaconKey(branchKeyId);
    expect(calls.map((c) => c.op)).toEqual(['Decrypt']);
    expect(beacon).toMatchObject({ beaconKeyIdentifier: 'b', encryptionContext: { x: 'y' } });
    expect(beacon.beaconKey).toHaveLength(32);
    const info = store.getKeyStoreInfo();
    expect(info).toMatchObject({ logicalKeyStoreName: 'logical', keyStoreName: dir, grantTokens: [], kmsConfiguration: { kmsKeyArn: arn } });
    expect(info.keyStoreId).toMatch(UUID4);
  });

  it('options are validated at construction', () => {
    const base = { storage, logicalKeyStoreName: 'l', kmsConfiguration: { kmsKeyArn: arn }, kmsClient: client };
    expect(() => new BranchKeyStore({ ...base, logicalKeyStoreName: '' })).toThrow(/logicalKeyStoreName/);
    expect(() => new BranchKeyStore({ ...base, kmsConfiguration: { kmsKeyArn: 'alias/x' } })).toThrow(/kmsKeyArn/);
    expect(() => new BranchKeyStore({ ...base, kmsConfiguration: { kmsKeyArn: arn.replace(':key/', ':alias/') } })).toThrow(/kmsKeyArn/);
    expect(() => new BranchKeyStore({ ...base, storage: {} as never })).toThrow(/storage/);
    expect(() => new BranchKeyStore({ ...base, bogus: 1 } as never)).toThrow(/bogus/);
    const { generateDataKeyWithoutPlaintext: _g, reEncrypt: _r, ...plain } = client;
    expect(() => new BranchKeyStore({ ...base, kmsClient: plain })).toThrow(/reEncrypt/);
  });

  it('directory storage: generations are complete files, older ones emptied, no temporary files left', async () => {
    const { branchKeyId } = await store.createKey();
    await store.versionKey(branchKeyId);
    await store.versionKey(branchKeyId);
    const [keyDir] = readdirSync(join(dir, 'branch-keys'));
    const files = readdirSync(join(dir, 'branch-keys', keyDir!)).sort();
    expect(files).toEqual(['gen-000001.json', 'gen-000002.json', 'gen-000003.json']);
    const size = (f: string): number => statSync(join(dir, 'branch-keys', keyDir!, f)).size;
    expect(size('gen-000001.json')).toBe(0);
    expect(size('gen-000002.json')).toBeGreaterThan(0);
    // A new storage object on the same directory sees the same keys.
    const reopened = new BranchKeyStore({ storage: new DirectoryBranchKeyStorage({ dir }), logicalKeyStoreName: 'logical', kmsConfiguration: { kmsKeyArn: arn }, kmsClient: client });
    expect((await reopened.getActiveBranchKey(branchKeyId)).branchKeyVersion).toBe((await store.getActiveBranchKey(branchKeyId)).branchKeyVersion);
    expect(BranchKeyStoreError).toBeDefined();
  });
});

type BranchKeyStorage = ConstructorParameters<typeof BranchKeyStore>[0]['storage'];
