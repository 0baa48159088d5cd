/**
 * Multi-Region keys, interop with @aws-crypto/client-node 5.0.2 in both directions, over HTTP
 * against one local KMS serving us-east-1 (the primary) and eu-west-1 (its replica): messages
 * written under the primary in us-east-1 are read in eu-west-1 with the replica, by the strict
 * MRK-aware keyring (configured with the replica's ARN) and by the MRK discovery keyring bound to
 * eu-west-1. Seeded random cases (INTEROP_SEED to reproduce), both suites; every read is counted
 * server-side per Region: exactly one Decrypt in eu-west-1, none in us-east-1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import {
  AwsKmsMrkAwareSymmetricDiscoveryKeyringNode,
  AwsKmsMrkAwareSymmetricKeyringNode,
  buildClient,
  CommitmentPolicy,
} from '@aws-crypto/client-node';
import { CreateKeyCommand, KMS, KMSClient, ReplicateKeyCommand } from '@aws-sdk/client-kms';
import { Envelope, KmsKeyring, type EncryptionContext } from '../../src/index.js';
import { startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { prng as rng } from '../support/prng.js';

const SEED = Number(process.env.INTEROP_SEED ?? 0x3e91);
const CASES = 50;
const EAST = 'us-east-1';
const WEST = 'eu-west-1';
const credentials = { accessKeyId: 'AKIDMRKINTEROP', secretAccessKey: 'mrk-interop' };
const KEYS = ['tenant', 'Tenant', 'région', '🔑', 'purpose', 'a', 'B'];
const VALUES = ['', 'x', 'eu', 'Ünïcödé', '日本語'];

interface Case {
  n: number;
  size: number;
  frameLength: number;
  suiteId: 0x0478 | 0x0578;
  context: EncryptionContext;
}

/** Sizes 0..64 KiB (exact frame multiples included), frame lengths 64 B..64 KiB, both suites (alternating). */
function makeCases(seed: number): Case[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  return Array.from({ length: CASES }, (_, n) => {
    const frameLength = pick([64, 100, 4096, 65_536]);
    const size = r() < 0.2 ? frameLength * (1 + Math.floor(r() * 3)) : Math.floor(r() * 65_536);
    const context: EncryptionContext = {};
    for (let i = Math.floor(r() * 4); i > 0; i--) context[pick(KEYS)] = pick(VALUES);
    return { n, size, frameLength, suiteId: n % 2 === 0 ? 0x0478 : 0x0578, context };
  });
}

const describeCase = (c: Case) => `case ${c.n} (seed ${SEED}): size ${c.size}, frame ${c.frameLength}, suite 0x0${c.suiteId.toString(16)}, context ${JSON.stringify(c.context)}`;
const esdk = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);

describe('interop with @aws-crypto/client-node: multi-Region keys across two Regions of the local KMS over HTTP', () => {
  let server: LocalKmsServer;
  const sdk: Record<string, KMSClient> = {};
  const esdkKms: Record<string, KMS> = {};
  let primary: string;
  let replica: string;
  let account: string;

  beforeAll(async () => {
    server = await startLocalKmsServer({ port: 0 });
    for (const region of [EAST, WEST]) {
      sdk[region] = new KMSClient({ endpoint: server.url, region, credentials, maxAttempts: 1 });
      esdkKms[region] = new KMS({ endpoint: server.url, region, credentials, maxAttempts: 1 });
    }
    const created = (await sdk[EAST]!.send(new CreateKeyCommand({ MultiRegion: true, Description: 'mrk interop' }))).KeyMetadata!;
    primary = created.Arn!;
    account = created.AWSAccountId!;
    replica = (await sdk[EAST]!.send(new ReplicateKeyCommand({ KeyId: primary, ReplicaRegion: WEST }))).ReplicaKeyMetadata!.Arn!;
  });
  afterAll(async () => {
    for (const c of [...Object.values(sdk), ...Object.values(esdkKms)]) c.destroy();
    await server?.close();
  });

  /** Runs `read` and asserts it made exactly one Decrypt, in eu-west-1, and no request in us-east-1. */
  async function countedRead<T>(c: Case, read: () => Promise<T>): Promise<T> {
    const before = server.service.callCounts();
    const out = await read();
    const after = server.service.callCounts();
    expect((after[WEST]?.Decrypt ?? 0) - (before[WEST]?.Decrypt ?? 0), `${describeCase(c)}: Decrypt calls in ${WEST}`).toBe(1);
    expect(after[EAST], `${describeCase(c)}: no request to ${EAST}`).toEqual(before[EAST]);
    return out;
  }

  const ours = {
    strict: () => new KmsKeyring({ keyId: replica, mrkAware: true, client: sdk[WEST]! }),
    discovery: () =>
      new KmsKeyring({
        discovery: true,
        discoveryRegions: [WEST],
        discoveryFilter: { accountIds: [account], partition: 'aws' },
        clientForRegion: (region) => sdk[region]!,
      }),
  };
  const theirs = {
    strict: () => new AwsKmsMrkAwareSymmetricKeyringNode({ keyId: replica, client: esdkKms[WEST]! }),
    discovery: () => new AwsKmsMrkAwareSymmetricDiscoveryKeyringNode({ client: esdkKms[WEST]!, discoveryFilter: { accountIDs: [account], partition: 'aws' } }),
  };

  for (const kind of ['strict', 'discovery'] as const) {
    it(`ESDK AwsKmsMrkAwareSymmetricKeyringNode (primary, ${EAST}) -> ours ${kind} in ${WEST}: ${CASES} cases, one Decrypt in ${WEST} each`, async () => {
      const writer = new AwsKmsMrkAwareSymmetricKeyringNode({ keyId: primary, client: esdkKms[EAST]! });
      const reader = new Envelope({ keyring: ours[kind](), cache: false });
      const cases = makeCases(SEED + (kind === 'strict' ? 1 : 2));
      expect(new Set(cases.map((c) => c.suiteId))).toEqual(new Set([0x0478, 0x0578]));
      for (const c of cases) {
        const plaintext = randomBytes(c.size);
        const { result } = await esdk.encrypt(writer, plaintext, { encryptionContext: c.context, frameLength: c.frameLength, suiteId: c.suiteId });
        const out = await countedRead(c, () => reader.decrypt(result, { context: c.context }));
        expect(Buffer.compare(out.plaintext, plaintext), describeCase(c)).toBe(0);
        expect(out.suiteId, describeCase(c)).toBe(c.suiteId);
      }
    });

    it(`ours (primary, ${EAST}) -> ESDK MRK-aware ${kind} keyring in ${WEST}: ${CASES} cases, one Decrypt in ${WEST} each`, async () => {
      const reader = theirs[kind]();
      const writers = new Map<string, Envelope>();
      const cases = makeCases(SEED + (kind === 'strict' ? 3 : 4));
      for (const c of cases) {
        const key = `${c.suiteId}/${c.frameLength}`;
        let writer = writers.get(key);
        if (!writer) {
          writer = new Envelope({ keyring: new KmsKeyring({ keyId: primary, mrkAware: true, client: sdk[EAST]! }), suite: c.suiteId, frameLength: c.frameLength, cache: false });
          writers.set(key, writer);
        }
        const plaintext = randomBytes(c.size);
        const message = await writer.encrypt(plaintext, { context: c.context });
        const out = await countedRead(c, () => esdk.decrypt(reader, message));
        expect(Buffer.compare(Buffer.from(out.plaintext), plaintext), describeCase(c)).toBe(0);
        expect(out.messageHeader.suiteId, describeCase(c)).toBe(c.suiteId);
        expect(out.messageHeader.encryptedDataKeys.map((k) => k.providerInfo), describeCase(c)).toEqual([primary]);
      }
    });
  }
});
