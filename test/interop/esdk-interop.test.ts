/**
 * Interop with the reference implementation, @aws-crypto/client-node 5.0.2, in both directions:
 * randomized payload sizes (0 .. 1 MiB, including exact multiples of the frame length), frame lengths
 * (1 byte .. 1 MiB), contexts with unicode and mixed-case keys, suites 0x0478 and 0x0578, with raw AES
 * keys and with the KMS keyring against the local KMS over HTTP.
 *
 * The generator is seeded (INTEROP_SEED to reproduce a failure) and every case names its parameters.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import {
  buildClient,
  CommitmentPolicy,
  KmsKeyringNode,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
} from '@aws-crypto/client-node';
import { CreateAliasCommand, CreateKeyCommand, KMS, KMSClient } from '@aws-sdk/client-kms';
import { Envelope, RawAesKeyring, KmsKeyring, type EncryptionContext } from '../../src/index.js';
import { startLocalKmsServer } from '../../src/local-kms/index.js';
import { prng as rng } from '../support/prng.js';

const SEED = Number(process.env.INTEROP_SEED ?? 0x5eed1234);
const CASES = Number(process.env.INTEROP_CASES ?? 200);
const MAX_FRAMES = 1024; // keeps 1-byte frames from turning one case into a million GCM calls

const KEYS = ['a', 'A', 'b', 'B', 'tenant', 'Tenant', 'ключ', 'é', 'e\u0301', '🔑', 'zz', 'Z', '中文', 'mixedCase', 'MIXEDCASE', '\u00ff', '\u0100'];
const VALUES = ['', 'x', 'value', 'Ünïcödé', '🚀🚀', '日本語テキスト', 'a'.repeat(300)];

interface Case {
  n: number;
  size: number;
  frameLength: number;
  suiteId: 0x0478 | 0x0578;
  context: EncryptionContext;
}

function makeCases(seed: number, count: number): Case[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const logUniform = (max: number): number => Math.floor(Math.exp(r() * Math.log(max + 1))) - 1 + (r() < 0.5 ? 0 : 1);
  const cases: Case[] = [];
  for (let n = 0; n < count; n++) {
    const special = [1, 2, 16, 4096, 65_536, 1 << 20];
    const frameLength = r() < 0.3 ? pick(special) : Math.max(1, Math.min(1 << 20, logUniform(1 << 20)));
    let size: number;
    const mode = r();
    if (mode < 0.1) size = 0;
    else if (mode < 0.4) size = frameLength * (1 + Math.floor(r() * 4)); // exact multiples
    else if (mode < 0.5) size = frameLength * (1 + Math.floor(r() * 3)) + (r() < 0.5 ? -1 : 1);
    else size = logUniform(1 << 20);
    size = Math.max(0, Math.min(size, 1 << 20, frameLength * MAX_FRAMES));
    const context: EncryptionContext = {};
    const pairs = Math.floor(r() * 6);
    for (let i = 0; i < pairs; i++) context[pick(KEYS)] = pick(VALUES);
    cases.push({ n, size, frameLength, suiteId: r() < 0.5 ? 0x0478 : 0x0578, context });
  }
  return cases;
}

const describeCase = (c: Case) =>
  `#${c.n} size=${c.size} frame=${c.frameLength} suite=0x0${c.suiteId.toString(16)} ctx=${JSON.stringify(c.context)}`;

function withoutPublicKey(ctx: Record<string, string>): Record<string, string> {
  const { ['aws-crypto-public-key']: _pk, ...rest } = ctx;
  return rest;
}

const esdk = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);

describe('interop with @aws-crypto/client-node: raw AES keyring', () => {
  const wrappingKey = randomBytes(32);
  const keyNamespace = 'interop-ns';
  const keyName = 'interop-key';
  const esdkKeyring = new RawAesKeyringNode({
    keyNamespace,
    keyName,
    unencryptedMasterKey: new Uint8Array(wrappingKey),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
    utf8Sorting: true,
  });
  const ours = new RawAesKeyring({ keyNamespace, keyName, key: wrappingKey });
  const envelopes = new Map<string, Envelope>();
  const envelopeFor = (suiteId: number, frameLength: number) => {
    const k = `${suiteId}/${frameLength}`;
    let e = envelopes.get(k);
    if (!e) envelopes.set(k, (e = new Envelope({ keyring: ours, suite: suiteId, frameLength })));
    return e;
  };
  const cases = makeCases(SEED, CASES);

  it(`ours -> ESDK, ${CASES} cases (seed ${SEED})`, async () => {
    for (const c of cases) {
      const plaintext = randomBytes(c.size);
      const message = await envelopeFor(c.suiteId, c.frameLength).encrypt(plaintext, { context: c.context });
      const out = await esdk.decrypt(esdkKeyring, message).catch((e: unknown) => {
        throw new Error(`${describeCase(c)}: ESDK failed: ${String(e)}`);
      });
      expect(Buffer.compare(out.plaintext, plaintext), describeCase(c)).toBe(0);
      expect(out.messageHeader.suiteId, describeCase(c)).toBe(c.suiteId);
      expect(out.messageHeader.frameLength, describeCase(c)).toBe(c.frameLength);
      expect(withoutPublicKey(out.messageHeader.encryptionContext), describeCase(c)).toEqual(c.context);
    }
  });

  it(`ESDK -> ours, ${CASES} cases (seed ${SEED + 1})`, async () => {
    const reader = new Envelope({ keyring: ours });
    for (const c of makeCases(SEED + 1, CASES)) {
      const plaintext = randomBytes(c.size);
      const { result } = await esdk.encrypt(esdkKeyring, plaintext, {
        encryptionContext: c.context,
        frameLength: c.frameLength,
        suiteId: c.suiteId,
      });
      const out = await reader.decrypt(result, { context: c.context }).catch((e: unknown) => {
        throw new Error(`${describeCase(c)}: ours failed: ${String(e)}`);
      });
      expect(Buffer.compare(out.plaintext, plaintext), describeCase(c)).toBe(0);
      expect(out.suiteId).toBe(c.suiteId);
      expect(withoutPublicKey(out.context), describeCase(c)).toEqual(c.context);
    }
  });

  it('an empty context key (allowed by structures.md, written by the ESDK) round-trips both ways', async () => {
    const context = { '': 'empty key', a: '' };
    for (const suiteId of [0x0478, 0x0578] as const) {
      const plaintext = randomBytes(1000);
      const { result } = await esdk.encrypt(esdkKeyring, plaintext, { encryptionContext: context, suiteId });
      const mine = await new Envelope({ keyring: ours }).decrypt(result, { context: { '': 'empty key' } });
      expect(mine.plaintext.equals(plaintext)).toBe(true);
      expect(withoutPublicKey(mine.context)).toEqual(context);

      const message = await envelopeFor(suiteId, 4096).encrypt(plaintext, { context });
      const theirs = await esdk.decrypt(esdkKeyring, message);
      expect(Buffer.compare(theirs.plaintext, plaintext)).toBe(0);
      expect(withoutPublicKey(theirs.messageHeader.encryptionContext)).toEqual(context);
    }
  });

  it('v1 messages written by the ESDK decrypt only when the commitment policy allows them', async () => {
    const legacy = buildClient(CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT);
    const strict = new Envelope({ keyring: ours });
    const lenient = new Envelope({ keyring: ours, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' });
    for (const suiteId of [0x0014, 0x0046, 0x0078, 0x0114, 0x0146, 0x0178, 0x0214, 0x0346, 0x0378]) {
      for (const size of [0, 1, 4095, 4096, 10_000]) {
        const plaintext = randomBytes(size);
        const { result } = await legacy.encrypt(esdkKeyring, plaintext, {
          encryptionContext: { purpose: 'v1', Tenant: 'Ω' },
          suiteId,
          frameLength: 4096,
        });
        await expect(strict.decrypt(result), `suite ${suiteId}`).rejects.toMatchObject({ code: 'ERR_COMMITMENT_POLICY' });
        const out = await lenient.decrypt(result, { context: { purpose: 'v1' } });
        expect(Buffer.compare(out.plaintext, plaintext), `suite ${suiteId} size ${size}`).toBe(0);
        expect(out.suiteId).toBe(suiteId);
      }
    }
  });
});

describe('interop with @aws-crypto/client-node: KMS keyring against the local KMS over HTTP', () => {
  let server: Awaited<ReturnType<typeof startLocalKmsServer>>;
  let sdkClient: KMSClient;
  let esdkKms: KMS;
  let keyArn: string;
  let secondArn: string;
  const credentials = { accessKeyId: 'AKIDINTEROP', secretAccessKey: 'interop-secret' };

  beforeAll(async () => {
    server = await startLocalKmsServer({ port: 0 });
    sdkClient = new KMSClient({ endpoint: server.url, region: 'us-east-1', credentials });
    esdkKms = new KMS({ endpoint: server.url, region: 'us-east-1', credentials });
    const k1 = await sdkClient.send(new CreateKeyCommand({ Description: 'interop generator' }));
    const k2 = await sdkClient.send(new CreateKeyCommand({ Description: 'interop second key' }));
    keyArn = k1.KeyMetadata!.Arn!;
    secondArn = k2.KeyMetadata!.Arn!;
    await sdkClient.send(new CreateAliasCommand({ AliasName: 'alias/interop', TargetKeyId: k1.KeyMetadata!.KeyId! }));
  });
  afterAll(async () => {
    sdkClient?.destroy();
    esdkKms?.destroy();
    await server?.close();
  });

  const count = CASES;

  it(`ours (alias, two keys) -> ESDK KmsKeyringNode, ${count} cases`, async () => {
    const esdkKeyring = new KmsKeyringNode({ keyIds: [keyArn], clientProvider: () => esdkKms });
    const esdkSecond = new KmsKeyringNode({ keyIds: [secondArn], clientProvider: () => esdkKms });
    const envelopes = new Map<string, Envelope>();
    const cases = makeCases(SEED + 2, count);
    for (const c of cases) {
      const k = `${c.suiteId}/${c.frameLength}`;
      let e = envelopes.get(k);
      if (!e) {
        e = new Envelope({
          keyring: new KmsKeyring({ keyIds: ['alias/interop', secondArn], client: sdkClient }),
          suite: c.suiteId,
          frameLength: c.frameLength,
        });
        envelopes.set(k, e);
      }
      const plaintext = randomBytes(c.size);
      const message = await e.encrypt(plaintext, { context: c.context });
      // Either key alone must be able to decrypt (each EDK is independent).
      const viaFirst = await esdk.decrypt(esdkKeyring, message);
      expect(Buffer.compare(viaFirst.plaintext, plaintext), describeCase(c)).toBe(0);
      if (c.n % 10 === 0) {
        const viaSecond = await esdk.decrypt(esdkSecond, message);
        expect(Buffer.compare(viaSecond.plaintext, plaintext), describeCase(c)).toBe(0);
      }
      const edks = viaFirst.messageHeader.encryptedDataKeys;
      expect(edks.map((x) => x.providerId)).toEqual(['aws-kms', 'aws-kms']);
      expect(edks.map((x) => x.providerInfo)).toEqual([keyArn, secondArn]);
    }
  });

  it(`ESDK KmsKeyringNode -> ours (key ARN and discovery), ${count} cases`, async () => {
    const esdkKeyring = new KmsKeyringNode({ generatorKeyId: keyArn, clientProvider: () => esdkKms });
    const byArn = new Envelope({ keyring: new KmsKeyring({ keyId: keyArn, client: sdkClient }) });
    const discovery = new Envelope({
      keyring: new KmsKeyring({
        discovery: true,
        discoveryFilter: { accountIds: [keyArn.split(':')[4]!], partition: 'aws' },
        client: sdkClient,
      }),
    });
    for (const c of makeCases(SEED + 3, count)) {
      const plaintext = randomBytes(c.size);
      const { result } = await esdk.encrypt(esdkKeyring, plaintext, {
        encryptionContext: c.context,
        frameLength: c.frameLength,
        suiteId: c.suiteId,
      });
      const reader = c.n % 2 === 0 ? byArn : discovery;
      const out = await reader.decrypt(result, { context: c.context });
      expect(Buffer.compare(out.plaintext, plaintext), describeCase(c)).toBe(0);
    }
  });
});
