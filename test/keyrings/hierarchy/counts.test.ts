/**
 * What the hierarchical keyring is for (issue 14): 10,000 messages for 3 tenants within one cache
 * period cost exactly 3 KMS Decrypt requests (one per tenant's branch key, counted by the local KMS
 * server itself), and every message has its own data key (all 10,000 EDK ciphertexts differ, and
 * so do the data keys).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  BranchKeyStore,
  DirectoryBranchKeyStorage,
  Envelope,
  HierarchicalKeyring,
  type Keyring,
  type KeyringEncryptInput,
} from '../../../src/index.js';
import { startLocalKmsServer } from '../../../src/local-kms/index.js';

const MESSAGES = 10_000;
const TENANTS = ['tenant-1', 'tenant-2', 'tenant-3'];
const credentials = { accessKeyId: 'AKIDCOUNTS', secretAccessKey: 'counts-secret' };

describe('hierarchical keyring: KMS requests and data keys over 10,000 messages', () => {
  let server: Awaited<ReturnType<typeof startLocalKmsServer>>;
  let kms: KMSClient;
  let dir: string;
  let store: BranchKeyStore;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kms-envelope-hierarchy-counts-'));
    server = await startLocalKmsServer({ port: 0 });
    kms = new KMSClient({ endpoint: server.url, region: 'us-east-1', credentials });
    const keyArn = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
    store = new BranchKeyStore({
      storage: new DirectoryBranchKeyStorage({ dir }),
      logicalKeyStoreName: 'counts',
      kmsConfiguration: { kmsKeyArn: keyArn },
      kmsClient: kms,
    });
    for (const t of TENANTS) await store.createKey({ branchKeyId: t, encryptionContext: { tenant: t } });
  });
  afterAll(async () => {
    kms?.destroy();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const decryptCalls = (): number => server.service.callCounts()['us-east-1']?.Decrypt ?? 0;

  it(`${MESSAGES} encrypts for ${TENANTS.length} tenants in one cache period: exactly ${TENANTS.length} KMS Decrypt calls, ${MESSAGES} distinct data keys`, async () => {
    const keyring = new HierarchicalKeyring({
      keyStore: store,
      branchKeyIdSupplier: (ctx) => ctx.tenant!,
      cache: { maxAgeMs: 600_000 },
    });
    const ciphertexts = new Set<string>();
    const dataKeys = new Set<string>();
    const perTenant = new Map<string, number>();
    // Records what the keyring hands the Envelope, before the Envelope zeroes the data key.
    const recording: Keyring = {
      async onEncrypt(input: KeyringEncryptInput) {
        const out = await keyring.onEncrypt(input);
        for (const edk of out.encryptedDataKeys) ciphertexts.add(Buffer.from(edk.ciphertext).toString('hex'));
        dataKeys.add(Buffer.from(out.dataKey).toString('hex'));
        const tenant = Buffer.from(out.encryptedDataKeys[0]!.providerInfo).toString('utf8');
        perTenant.set(tenant, (perTenant.get(tenant) ?? 0) + 1);
        return out;
      },
      onDecrypt: (input) => keyring.onDecrypt(input),
    };
    // cache: false — the Envelope's data-key cache would reuse data keys; this keyring must not.
    const envelope = new Envelope({ keyring: recording, cache: false, frameLength: 4096 });
    const before = decryptCalls();
    const sample: Buffer[] = [];
    for (let i = 0; i < MESSAGES; i++) {
      const m = await envelope.encrypt(`message ${i}`, { context: { tenant: TENANTS[i % TENANTS.length]! } });
      if (i < 6) sample.push(m);
    }
    expect(decryptCalls() - before).toBe(TENANTS.length);
    expect(ciphertexts.size).toBe(MESSAGES);
    expect(dataKeys.size).toBe(MESSAGES);
    expect([...perTenant.values()].reduce((a, b) => a + b, 0)).toBe(MESSAGES);
    expect(perTenant.size).toBe(TENANTS.length);
    expect(keyring.cacheStats()).toMatchObject({ misses: TENANTS.length, entries: TENANTS.length });

    // Decrypting needs the version entries: one more Decrypt per tenant, then none.
    const reader = new Envelope({ keyring, cache: false });
    for (const [i, m] of sample.entries()) {
      expect((await reader.decrypt(m)).plaintext.toString()).toBe(`message ${i}`);
    }
    expect(decryptCalls() - before).toBe(2 * TENANTS.length);
  });
});
