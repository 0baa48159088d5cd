/**
 * Hierarchical keyring interop with @aws-crypto/client-node 5.0.2 (KmsHierarchicalKeyRingNode,
 * BranchKeyStoreNode), both ways, against the local KMS over HTTP and one key store table in
 * dynalite (test/support/dynamodb-branch-storage.ts) that both stores read and write:
 * - branch keys created by our BranchKeyStore are used by the ESDK, and keys the ESDK created are
 *   used by us;
 * - 100 seeded random cases per direction: sizes, frame lengths, contexts, suites 0x0478 and
 *   0x0578, a static branch key id (ours or the ESDK's) and a supplier with two tenants;
 * - after versionKey (ours, then the ESDK's), messages under the old versions still decrypt on
 *   both sides and new messages use the new version.
 * HIERARCHY_SEED reproduces a failure.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { buildClient, BranchKeyStoreNode, CommitmentPolicy, KmsHierarchicalKeyRingNode } from '@aws-crypto/client-node';
import type * as KmsModule from '@aws-sdk/client-kms';
import { BranchKeyStore, Envelope, HierarchicalKeyring, type EncryptionContext } from '../../src/index.js';
import { startLocalKmsServer } from '../../src/local-kms/index.js';
import { prng } from '../support/prng.js';
import {
  DynamoDBClient,
  DynamoTestBranchKeyStorage,
  TEST_CREDENTIALS,
  TransactingDynamoDBClient,
  startDynalite,
} from '../support/dynamodb-branch-storage.js';

const require = createRequire(import.meta.url);
// The CommonJS build: BranchKeyStoreNode checks its KMS client with instanceof against it.
const { KMSClient, CreateKeyCommand } = require('@aws-sdk/client-kms') as typeof KmsModule;

const SEED = Number(process.env.HIERARCHY_SEED ?? 0x41e7a2c5);
const CASES = 100;
const TABLE = 'branch-key-store';
const LOGICAL = 'interop-key-store';
const TTL_SECONDS = 600;

const KEYS = ['a', 'B', 'purpose', 'ключ', 'é', '🔑', '中文', 'mixedCase'];
const VALUES = ['', 'x', 'Ünïcödé', '🚀', 'a'.repeat(200)];

type Mode = 'ours-static' | 'esdk-static' | 'supplier';
interface Case {
  n: number;
  size: number;
  frameLength: number;
  suiteId: 0x0478 | 0x0578;
  mode: Mode;
  context: EncryptionContext;
}

function makeCases(seed: number): Case[] {
  const r = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const out: Case[] = [];
  for (let n = 0; n < CASES; n++) {
    const frameLength = r() < 0.3 ? pick([1, 16, 4096, 65_536]) : 1 + Math.floor(Math.exp(r() * Math.log(65_536)));
    let size = r() < 0.1 ? 0 : Math.floor(Math.exp(r() * Math.log(100_000)));
    if (r() < 0.2) size = frameLength * (1 + Math.floor(r() * 3));
    size = Math.min(size, frameLength * 512);
    const context: EncryptionContext = {};
    for (let i = Math.floor(r() * 4); i > 0; i--) context[pick(KEYS)] = pick(VALUES);
    const mode = pick(['ours-static', 'esdk-static', 'supplier'] as const);
    if (mode === 'supplier') context.tenant = r() < 0.5 ? 'tenant-a' : 'tenant-b';
    out.push({ n, size, frameLength, suiteId: r() < 0.5 ? 0x0478 : 0x0578, mode, context });
  }
  return out;
}

const label = (c: Case): string =>
  `#${c.n} ${c.mode} size=${c.size} frame=${c.frameLength} suite=0x0${c.suiteId.toString(16)} ctx=${JSON.stringify(c.context)}`;

const withoutPublicKey = (ctx: Record<string, string>): Record<string, string> => {
  const { ['aws-crypto-public-key']: _pk, ...rest } = ctx;
  return rest;
};

/** Both sides pick the branch key of a tenant from the context the same way. */
const tenantOf = (ctx: Readonly<Record<string, string>>): string => {
  const t = ctx.tenant;
  if (t !== 'tenant-a' && t !== 'tenant-b') throw new Error('no tenant in the encryption context');
  return t;
};

const esdk = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);

describe('hierarchical keyring interop with KmsHierarchicalKeyRingNode (local KMS over HTTP, dynalite)', () => {
  let kmsServer: Awaited<ReturnType<typeof startLocalKmsServer>>;
  let dynamo: Awaited<ReturnType<typeof startDynalite>>;
  let kms: InstanceType<typeof KMSClient>;
  let ddb: InstanceType<typeof DynamoDBClient>;
  let esdkDdb: TransactingDynamoDBClient;
  let ours: BranchKeyStore;
  let theirs: BranchKeyStoreNode;
  let ourKey: string; // created by ours
  let esdkKey: string; // created by the ESDK

  beforeAll(async () => {
    kmsServer = await startLocalKmsServer({ port: 0 });
    dynamo = await startDynalite(TABLE);
    kms = new KMSClient({ endpoint: kmsServer.url, region: 'us-east-1', credentials: TEST_CREDENTIALS });
    ddb = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'us-east-1', credentials: TEST_CREDENTIALS });
    esdkDdb = new TransactingDynamoDBClient({ endpoint: dynamo.endpoint, region: 'us-east-1', credentials: TEST_CREDENTIALS });
    const keyArn = (await kms.send(new CreateKeyCommand({ Description: 'branch keys' }))).KeyMetadata!.Arn!;
    ours = new BranchKeyStore({
      storage: new DynamoTestBranchKeyStorage(ddb, TABLE),
      logicalKeyStoreName: LOGICAL,
      kmsConfiguration: { kmsKeyArn: keyArn },
      kmsClient: kms,
    });
    theirs = new BranchKeyStoreNode({
      logicalKeyStoreName: LOGICAL,
      storage: { ddbClient: esdkDdb, ddbTableName: TABLE },
      keyManagement: { kmsClient: kms },
      kmsConfiguration: { identifier: keyArn },
    });
    ourKey = (await ours.createKey()).branchKeyId;
    esdkKey = (await theirs.createKey()).branchKeyIdentifier;
    // One tenant's key from each implementation, with a chosen id and a custom context.
    await ours.createKey({ branchKeyId: 'tenant-a', encryptionContext: { tenant: 'a', department: 'Ünïcödé' } });
    await theirs.createKey({ branchKeyIdentifier: 'tenant-b', encryptionContext: { tenant: 'b' } });
  });

  afterAll(async () => {
    kms?.destroy();
    ddb?.destroy();
    esdkDdb?.destroy();
    await dynamo?.close();
    await kmsServer?.close();
  });

  const ourKeyring = (mode: Mode): HierarchicalKeyring =>
    mode === 'supplier'
      ? new HierarchicalKeyring({ keyStore: ours, branchKeyIdSupplier: tenantOf, cache: { maxAgeMs: TTL_SECONDS * 1000 } })
      : new HierarchicalKeyring({
          keyStore: ours,
          branchKeyId: mode === 'ours-static' ? ourKey : esdkKey,
          cache: { maxAgeMs: TTL_SECONDS * 1000 },
        });
  const theirKeyring = (mode: Mode): KmsHierarchicalKeyRingNode =>
    mode === 'supplier'
      ? new KmsHierarchicalKeyRingNode({
          keyStore: theirs,
          branchKeyIdSupplier: { getBranchKeyId: tenantOf },
          cacheLimitTtl: TTL_SECONDS,
          utf8Sorting: true,
        })
      : new KmsHierarchicalKeyRingNode({
          keyStore: theirs,
          branchKeyId: mode === 'ours-static' ? ourKey : esdkKey,
          cacheLimitTtl: TTL_SECONDS,
          utf8Sorting: true,
        });

  it(`ours -> ESDK, ${CASES} cases (seed ${SEED})`, async () => {
    const mine = new Map<Mode, HierarchicalKeyring>();
    const others = new Map<Mode, KmsHierarchicalKeyRingNode>();
    const modes = new Set<Mode>();
    for (const c of makeCases(SEED)) {
      modes.add(c.mode);
      if (!mine.has(c.mode)) mine.set(c.mode, ourKeyring(c.mode));
      if (!others.has(c.mode)) others.set(c.mode, theirKeyring(c.mode));
      const envelope = new Envelope({ keyring: mine.get(c.mode)!, suite: c.suiteId, frameLength: c.frameLength, cache: false });
      const plaintext = randomBytes(c.size);
      const message = await envelope.encrypt(plaintext, { context: c.context });
      const out = await esdk.decrypt(others.get(c.mode)!, message).catch((e: unknown) => {
        throw new Error(`${label(c)}: ESDK failed: ${String(e)}`);
      });
      expect(Buffer.compare(out.plaintext, plaintext), label(c)).toBe(0);
      expect(withoutPublicKey(out.messageHeader.encryptionContext), label(c)).toEqual(c.context);
      const [edk] = out.messageHeader.encryptedDataKeys;
      expect(edk!.providerId).toBe('aws-kms-hierarchy');
      expect(edk!.providerInfo).toBe(c.mode === 'supplier' ? c.context.tenant : c.mode === 'ours-static' ? ourKey : esdkKey);
    }
    expect(modes.size).toBe(3);
  });

  it(`ESDK -> ours, ${CASES} cases (seed ${SEED + 1})`, async () => {
    const mine = new Map<Mode, Envelope>();
    const others = new Map<Mode, KmsHierarchicalKeyRingNode>();
    for (const c of makeCases(SEED + 1)) {
      if (!mine.has(c.mode)) mine.set(c.mode, new Envelope({ keyring: ourKeyring(c.mode), cache: false }));
      if (!others.has(c.mode)) others.set(c.mode, theirKeyring(c.mode));
      const plaintext = randomBytes(c.size);
      const { result } = await esdk.encrypt(others.get(c.mode)!, plaintext, {
        encryptionContext: c.context,
        frameLength: c.frameLength,
        suiteId: c.suiteId,
      });
      const out = await mine
        .get(c.mode)!
        .decrypt(result, { context: c.context })
        .catch((e: unknown) => {
          throw new Error(`${label(c)}: ours failed: ${String(e)}`);
        });
      expect(Buffer.compare(out.plaintext, plaintext), label(c)).toBe(0);
      expect(out.suiteId, label(c)).toBe(c.suiteId);
    }
  });

  it('after versionKey (ours, then the ESDK), old messages decrypt on both sides and new ones use the new version', async () => {
    const context = { purpose: 'rotation' };
    const versionOf = async (message: Uint8Array): Promise<string> => {
      const out = await esdk.decrypt(theirKeyring('ours-static'), message);
      const ct = out.messageHeader.encryptedDataKeys[0]!.encryptedDataKey;
      return Buffer.from(ct.subarray(28, 44)).toString('hex');
    };
    const hex = (uuid: string): string => uuid.replace(/-/g, '');
    const messages: { message: Uint8Array; plaintext: Buffer }[] = [];
    const writeBoth = async (): Promise<Uint8Array[]> => {
      // Fresh keyrings: a cached ACTIVE branch key would keep the old version for its TTL.
      const a = randomBytes(3000);
      const m1 = await new Envelope({ keyring: ourKeyring('ours-static'), cache: false }).encrypt(a, { context });
      const b = randomBytes(3000);
      const { result: m2 } = await esdk.encrypt(theirKeyring('ours-static'), b, { encryptionContext: context });
      messages.push({ message: m1, plaintext: a }, { message: m2, plaintext: b });
      return [m1, m2];
    };
    const checkAll = async (): Promise<void> => {
      const mine = new Envelope({ keyring: ourKeyring('ours-static'), cache: false });
      const other = theirKeyring('ours-static');
      for (const { message, plaintext } of messages) {
        expect((await mine.decrypt(message, { context })).plaintext.equals(plaintext)).toBe(true);
        expect(Buffer.compare((await esdk.decrypt(other, message)).plaintext, plaintext)).toBe(0);
      }
    };

    const v0 = (await ours.getActiveBranchKey(ourKey)).branchKeyVersion;
    for (const m of await writeBoth()) expect(await versionOf(m)).toBe(hex(v0));

    const v1 = (await ours.versionKey(ourKey)).branchKeyVersion;
    expect(v1).not.toBe(v0);
    expect((await theirs.getActiveBranchKey(ourKey)).branchKeyVersion.toString()).toBe(v1);
    for (const m of await writeBoth()) expect(await versionOf(m)).toBe(hex(v1));
    await checkAll();

    await theirs.versionKey({ branchKeyIdentifier: ourKey });
    const v2 = (await ours.getActiveBranchKey(ourKey)).branchKeyVersion;
    expect(new Set([v0, v1, v2]).size).toBe(3);
    for (const m of await writeBoth()) expect(await versionOf(m)).toBe(hex(v2));
    await checkAll();
    expect(messages).toHaveLength(6);

    // Our versionKey on a key the ESDK created (its ACTIVE item authenticates under our store).
    const before = (await theirs.getActiveBranchKey(esdkKey)).branchKeyVersion.toString();
    const after = (await ours.versionKey(esdkKey)).branchKeyVersion;
    expect((await theirs.getActiveBranchKey(esdkKey)).branchKeyVersion.toString()).toBe(after);
    expect(after).not.toBe(before);
    expect((await ours.getBranchKeyVersion(esdkKey, before)).branchKeyVersion).toBe(before);
  });
});
