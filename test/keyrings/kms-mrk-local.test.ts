/**
 * MRK-aware keyrings against the real multi-Region local KMS: a multi-Region key made in
 * us-east-1 (CreateKey MultiRegion) and replicated to eu-west-1 (ReplicateKey). In process, one
 * client per Region; over HTTP, @aws-sdk/client-kms clients whose SigV4 Region selects the Region
 * of the same server. Requests are counted per Region.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { KMS, KMSClient } from '@aws-sdk/client-kms';
import {
  AwsKmsMrkAwareSymmetricDiscoveryKeyringNode,
  AwsKmsMrkAwareSymmetricKeyringNode,
  buildClient,
  CommitmentPolicy,
} from '@aws-crypto/client-node';
import { LocalKms, startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { Envelope, KmsKeyring } from '../../src/index.js';
import type { KmsClient } from '../../src/types.js';

const EAST = 'us-east-1';
const WEST = 'eu-west-1';
const CONTEXT = { app: 'mrk-local' };
const credentials = { accessKeyId: 'AKIDMRKLOCALTEST0001', secretAccessKey: 'mrk-local-secret' };

type Call = { region: string; op: string; keyId: string | undefined };

/** Wraps a Region's client so that every request is recorded with its Region. */
function recorded(calls: Call[], region: string, inner: KmsClient): KmsClient {
  return {
    generateDataKey: (i) => (calls.push({ region, op: 'GenerateDataKey', keyId: i.keyId }), inner.generateDataKey(i)),
    encrypt: (i) => (calls.push({ region, op: 'Encrypt', keyId: i.keyId }), inner.encrypt(i)),
    decrypt: (i) => (calls.push({ region, op: 'Decrypt', keyId: i.keyId }), inner.decrypt(i)),
  };
}

async function mrkPair(call: (region: string, op: string, input: Record<string, unknown>) => Promise<Record<string, unknown>>) {
  const created = await call(EAST, 'CreateKey', { MultiRegion: true, Description: 'mrk keyring test' });
  const east = (created.KeyMetadata as { Arn: string }).Arn;
  const keyId = (created.KeyMetadata as { KeyId: string }).KeyId;
  await call(EAST, 'ReplicateKey', { KeyId: keyId, ReplicaRegion: WEST });
  const other = (await call(EAST, 'CreateKey', { MultiRegion: true })).KeyMetadata as { Arn: string; KeyId: string };
  await call(EAST, 'ReplicateKey', { KeyId: other.KeyId, ReplicaRegion: WEST });
  const single = ((await call(EAST, 'CreateKey', {})).KeyMetadata as { Arn: string }).Arn;
  return { east, west: east.replace(`:${EAST}:`, `:${WEST}:`), keyId, otherWest: other.Arn.replace(`:${EAST}:`, `:${WEST}:`), single };
}

describe('MRK-aware keyrings on the multi-Region local KMS (in process)', () => {
  let kms: LocalKms;
  let keys: Awaited<ReturnType<typeof mrkPair>>;
  let message: Buffer;
  const calls: Call[] = [];
  const clientForRegion = (r: string) => recorded(calls, r, kms.client({ region: r }));

  beforeAll(async () => {
    kms = new LocalKms({ region: EAST });
    keys = await mrkPair((r, op, input) => kms.client({ region: r }).call(op, input));
    const writer = new Envelope({ keyring: new KmsKeyring({ keyId: keys.east, clientForRegion }), cache: false });
    message = await writer.encrypt('written with the primary', { context: CONTEXT });
  });
  afterAll(() => kms?.close());

  it('strict: a keyring configured with the eu-west-1 replica decrypts what the us-east-1 primary wrapped, with one Decrypt sent to eu-west-1 and none to us-east-1', async () => {
    calls.length = 0;
    const ring = new KmsKeyring({ keyId: keys.west, mrkAware: true, clientForRegion });
    const out = await new Envelope({ keyring: ring, cache: false }).decrypt(message, { context: CONTEXT });
    expect(out.plaintext.toString()).toBe('written with the primary');
    expect(calls).toEqual([{ region: WEST, op: 'Decrypt', keyId: keys.west }]);
    // Without mrkAware the replica's ARN does not match the primary's: nothing is tried.
    calls.length = 0;
    const exact = new Envelope({ keyring: new KmsKeyring({ keyId: keys.west, clientForRegion }), cache: false });
    await expect(exact.decrypt(message)).rejects.toMatchObject({ code: 'ERR_NO_DECRYPTABLE_KEY' });
    expect(calls).toEqual([]);
  });

  it('discovery bound to eu-west-1: the same message, one Decrypt in eu-west-1 and none in us-east-1', async () => {
    calls.length = 0;
    const ring = new KmsKeyring({ discovery: true, discoveryRegions: [WEST], clientForRegion });
    const out = await new Envelope({ keyring: ring, cache: false }).decrypt(message, { context: CONTEXT });
    expect(out.plaintext.toString()).toBe('written with the primary');
    expect(calls).toEqual([{ region: WEST, op: 'Decrypt', keyId: keys.west }]);
  });

  it('a single-Region key of another Region and another multi-Region key are not matched: no request', async () => {
    const single = await new Envelope({ keyring: new KmsKeyring({ keyId: keys.single, clientForRegion }), cache: false }).encrypt('x');
    calls.length = 0;
    const discovery = new Envelope({ keyring: new KmsKeyring({ discovery: true, discoveryRegions: [WEST], clientForRegion }), cache: false });
    await expect(discovery.decrypt(single)).rejects.toMatchObject({ code: 'ERR_NO_DECRYPTABLE_KEY' });
    const strictOther = new Envelope({ keyring: new KmsKeyring({ keyId: keys.otherWest, mrkAware: true, clientForRegion }), cache: false });
    await expect(strictOther.decrypt(message)).rejects.toMatchObject({ code: 'ERR_NO_DECRYPTABLE_KEY' });
    const strictSingle = new Envelope({
      keyring: new KmsKeyring({ keyId: keys.single.replace(`:${EAST}:`, `:${WEST}:`), mrkAware: true, clientForRegion }),
      cache: false,
    });
    await expect(strictSingle.decrypt(single)).rejects.toMatchObject({ code: 'ERR_NO_DECRYPTABLE_KEY' });
    expect(calls).toEqual([]);
  });
});

describe('MRK-aware keyrings over HTTP (@aws-sdk/client-kms)', () => {
  let server: LocalKmsServer;
  let keys: Awaited<ReturnType<typeof mrkPair>>;
  let message: Buffer;
  const made: KMSClient[] = [];
  const sdk = (region: string) => {
    const c = new KMSClient({ region, endpoint: server.url, credentials, maxAttempts: 1 });
    made.push(c);
    return c;
  };

  beforeAll(async () => {
    server = await startLocalKmsServer({ port: 0 });
    const admin = new Map<string, KMS>();
    const call = async (region: string, op: string, input: Record<string, unknown>) => {
      if (!admin.has(region)) admin.set(region, new KMS({ region, endpoint: server.url, credentials }));
      const fn = (admin.get(region)! as unknown as Record<string, (i: unknown) => Promise<Record<string, unknown>>>)[op[0]!.toLowerCase() + op.slice(1)]!;
      return fn.call(admin.get(region), input);
    };
    keys = await mrkPair(call);
    for (const c of admin.values()) c.destroy();
    message = await new Envelope({ keyring: new KmsKeyring({ keyId: keys.east, clientForRegion: sdk }), cache: false }).encrypt('over http', {
      context: CONTEXT,
    });
  });
  afterAll(async () => {
    for (const c of made) c.destroy();
    await server?.close();
  });

  it("strict and discovery: the eu-west-1 replica decrypts the primary's message; every request is signed for eu-west-1", async () => {
    for (const options of [
      { keyId: keys.west, mrkAware: true },
      { keyIds: [keys.west, keys.otherWest], mrkAware: true },
      { discovery: true, discoveryRegions: [WEST] },
    ]) {
      const asked: string[] = [];
      const ring = new KmsKeyring({ ...options, clientForRegion: (r) => (asked.push(r), sdk(r)) });
      const out = await new Envelope({ keyring: ring, cache: false }).decrypt(message, { context: CONTEXT });
      expect(out.plaintext.toString(), JSON.stringify(options)).toBe('over http');
      expect(asked, JSON.stringify(options)).toEqual([WEST]);
      expect(ring.kmsCalls).toBe(1);
    }
  });

  it('without a client, default SDK clients per Region: the Region of the key ARN, or each of discoveryRegions, never one the library picks', async () => {
    vi.stubEnv('AWS_ENDPOINT_URL_KMS', server.url);
    vi.stubEnv('AWS_REGION', 'ap-south-1'); // no replica there: a request sent there would fail
    vi.stubEnv('AWS_ACCESS_KEY_ID', credentials.accessKeyId);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', credentials.secretAccessKey);
    vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
    try {
      for (const keyring of [
        new KmsKeyring({ keyIds: [keys.west], mrkAware: true }),
        new KmsKeyring({ discovery: true, discoveryRegions: [WEST] }),
      ]) {
        const out = await new Envelope({ keyring, cache: false }).decrypt(message, { context: CONTEXT });
        expect(out.plaintext.toString()).toBe('over http');
        expect(keyring.kmsCalls).toBe(1);
      }
      // The Envelope's `kms` options build the same keyrings (their default client follows the Regions too).
      for (const kms of [
        { keyId: keys.west, mrkAware: true, endpoint: server.url },
        { discovery: true, discoveryRegions: [WEST], endpoint: server.url },
      ]) {
        const envelope = new Envelope({ kms, cache: false });
        expect((await envelope.decrypt(message, { context: CONTEXT })).plaintext.toString(), JSON.stringify(kms)).toBe('over http');
      }
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it("the ESDK's MRK-aware strict and discovery keyrings read our messages, and ours read theirs", async () => {
    const esdk = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
    const westSdk = new KMS({ region: WEST, endpoint: server.url, credentials });
    const eastSdk = new KMS({ region: EAST, endpoint: server.url, credentials });
    try {
      const strict = new AwsKmsMrkAwareSymmetricKeyringNode({ keyId: keys.west, client: westSdk });
      expect(Buffer.from((await esdk.decrypt(strict, message)).plaintext).toString()).toBe('over http');
      const discovery = new AwsKmsMrkAwareSymmetricDiscoveryKeyringNode({ client: westSdk });
      expect(Buffer.from((await esdk.decrypt(discovery, message)).plaintext).toString()).toBe('over http');
      const theirs = await esdk.encrypt(new AwsKmsMrkAwareSymmetricKeyringNode({ keyId: keys.east, client: eastSdk }), 'from the esdk', {
        encryptionContext: CONTEXT,
      });
      const ours = new KmsKeyring({ keyId: keys.west, mrkAware: true, clientForRegion: sdk });
      expect((await new Envelope({ keyring: ours, cache: false }).decrypt(theirs.result)).plaintext.toString()).toBe('from the esdk');
    } finally {
      westSdk.destroy();
      eastSdk.destroy();
    }
  });
});
