/**
 * Review findings (issue 10, hole 8) on how KmsKeyring handles Regions:
 *
 * - Discovery mode kept one SDK client per Region named in any message it read, forever: a hostile
 *   message naming hundreds of made-up Regions grew the heap without bound (about 28 KB per
 *   Region). A Region's client is now kept only after KMS answered there (as the ESDK's client
 *   cache does), and at most MAX_REGION_CLIENTS of them. Counted with a counting clientForRegion:
 *   every call is a client the keyring did not keep.
 * - One EDK whose Region has no client (clientForRegion throws or returns nothing) aborted the
 *   whole decrypt before the valid EDKs were tried. aws-kms-discovery-keyring.md and
 *   aws-kms-keyring.md ("OnDecrypt") say to collect the error and attempt the next EDK, and to fail
 *   with all collected errors only when none decrypts.
 *
 * Real parts: @aws-sdk/client-kms KMSClients, the local KMS over HTTP, and an endpoint where
 * nothing listens (connection refused: KMS never answers).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateAliasCommand, CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { KmsKeyring } from '../../src/keyrings/index.js';
import { MAX_REGION_CLIENTS } from '../../src/keyrings/kms.js';
import { KeyringError, NoDecryptableKeyError } from '../../src/errors.js';
import { LocalKms, startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import type { EncryptedDataKey } from '../../src/types.js';

const credentials = { accessKeyId: 'AKIDREGIONTEST', secretAccessKey: 'region-test-secret' };
const ctx = { purpose: 'regions' };
const ACCOUNT = '111122223333';

/** An aws-kms EDK naming a key in `region` (made up: nothing decrypts it). */
function edkIn(region: string): EncryptedDataKey {
  return {
    providerId: 'aws-kms',
    providerInfo: Buffer.from(`arn:aws:kms:${region}:${ACCOUNT}:key/${randomUUID()}`),
    ciphertext: randomBytes(64),
  };
}

const madeUp = Array.from({ length: 300 }, (_, i) => `xx-fake-${i + 1}`);

let server: LocalKmsServer;
let sdkClients: KMSClient[] = [];
let message: { dataKey: Uint8Array; edks: EncryptedDataKey[] };

function sdkClient(endpoint: string, region: string): KMSClient {
  const c = new KMSClient({ region, endpoint, credentials, maxAttempts: 1 });
  sdkClients.push(c);
  return c;
}

beforeAll(async () => {
  server = await startLocalKmsServer({ port: 0 });
  const writer = new KmsKeyring({ keyId: 'alias/regions', client: sdkClient(server.url, 'us-east-1') });
  const admin = sdkClient(server.url, 'us-east-1');
  const key = (await admin.send(new CreateKeyCommand({}))).KeyMetadata!;
  await admin.send(new CreateAliasCommand({ AliasName: 'alias/regions', TargetKeyId: key.KeyId }));
  const out = await writer.onEncrypt({ suiteId: 0x0478, context: ctx });
  message = { dataKey: out.dataKey, edks: out.encryptedDataKeys };
  expect(Buffer.from(message.edks[0]!.providerInfo).toString()).toBe(key.Arn);
});

afterAll(async () => {
  for (const c of sdkClients) c.destroy();
  sdkClients = [];
  await server?.close();
});

describe('discovery: a Region\'s client is kept only after KMS answered there (aws-kms-discovery-keyring.md)', () => {
  it('300 made-up Regions where KMS never answers: no client is kept (clientForRegion called again for each)', async () => {
    let made = 0;
    const ring = new KmsKeyring({
      discovery: true,
      clientForRegion: (region) => {
        made++;
        return sdkClient('http://127.0.0.1:1', region); // nothing listens: connection refused, no answer
      },
    });
    for (let pass = 1; pass <= 2; pass++) {
      for (const region of madeUp) {
        const err = await ring.onDecrypt({ suiteId: 0x0478, context: ctx, encryptedDataKeys: [edkIn(region)] }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(NoDecryptableKeyError);
      }
      // Each message needed a client; none was kept for the next one.
      expect(made).toBe(pass * madeUp.length);
    }
    // Every request is still counted, kept client or not.
    expect(ring.kmsCalls).toBe(2 * madeUp.length);
    for (const c of sdkClients.splice(3)) c.destroy();
  });

  it('a Region where KMS answered (success or a KMS error) keeps its client', async () => {
    let made = 0;
    const ring = new KmsKeyring({
      discovery: true,
      clientForRegion: (region) => {
        made++;
        return sdkClient(server.url, region);
      },
    });
    // First an EDK naming a key this KMS does not have: KMS answers with an error (HTTP 400).
    const foreign = { ...message.edks[0]!, providerInfo: Buffer.from(`arn:aws:kms:us-east-1:${ACCOUNT}:key/${randomUUID()}`) };
    await expect(ring.onDecrypt({ suiteId: 0x0478, context: ctx, encryptedDataKeys: [foreign] })).rejects.toBeInstanceOf(NoDecryptableKeyError);
    expect(made).toBe(1);
    for (let i = 0; i < 3; i++) {
      expect(await ring.onDecrypt({ suiteId: 0x0478, context: ctx, encryptedDataKeys: message.edks })).toEqual(message.dataKey);
    }
    expect(made).toBe(1);
    expect(ring.kmsCalls).toBe(4);
  });

  it(`at most MAX_REGION_CLIENTS (${MAX_REGION_CLIENTS}) clients are kept even when every Region answers`, async () => {
    // A clientForRegion that sends every Region to one KMS (a proxy, a test double): all answer.
    const local = new LocalKms({});
    const inProcess = local.client();
    let made = 0;
    const ring = new KmsKeyring({
      discovery: true,
      clientForRegion: () => {
        made++;
        return { generateDataKey: inProcess.generateDataKey, encrypt: inProcess.encrypt, decrypt: inProcess.decrypt };
      },
    });
    for (let pass = 1; pass <= 2; pass++) {
      for (const region of madeUp) {
        await expect(ring.onDecrypt({ suiteId: 0x0478, context: ctx, encryptedDataKeys: [edkIn(region)] })).rejects.toBeInstanceOf(
          NoDecryptableKeyError,
        );
      }
    }
    expect(made).toBe(2 * madeUp.length - MAX_REGION_CLIENTS);
    local.close();
  });
});

describe('a Region without a client is an error collected for that EDK; the next EDK is tried', () => {
  const boom = new Error('client construction failed');
  const local = new LocalKms({});
  afterAll(() => local.close());

  function supplier(answering: (region: string) => unknown) {
    return (region: string): never => {
      if (region === 'bad-1') throw boom;
      if (region === 'none-1') return undefined as never;
      if (region === 'junk-1') return {} as never;
      return answering(region) as never;
    };
  }

  it('discovery: EDKs in Regions whose clientForRegion throws, returns nothing or returns a non-client come first; the valid one decrypts', async () => {
    const ring = new KmsKeyring({ discovery: true, clientForRegion: supplier((r) => sdkClient(server.url, r)) });
    const edks = [edkIn('bad-1'), edkIn('none-1'), edkIn('junk-1'), ...message.edks];
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: ctx, encryptedDataKeys: edks })).toEqual(message.dataKey);
    expect(ring.kmsCalls).toBe(1);
  });

  it('discovery: when every EDK fails, the error carries one recorded cause per EDK, naming its Region', async () => {
    const ring = new KmsKeyring({ discovery: true, clientForRegion: supplier(() => undefined) });
    const err = await ring
      .onDecrypt({ suiteId: 0x0478, context: ctx, encryptedDataKeys: [edkIn('bad-1'), edkIn('none-1'), edkIn('junk-1')] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoDecryptableKeyError);
    const causes = ((err as Error).cause as AggregateError).errors as Error[];
    expect(causes).toHaveLength(3);
    for (const c of causes) expect(c).toBeInstanceOf(KeyringError);
    expect(causes[0]!.message).toContain('"bad-1"');
    expect(causes[0]!.cause).toBe(boom);
    expect(causes[1]!.message).toContain('"none-1"');
    expect(causes[2]!.message).toContain('"junk-1"');
    expect(ring.kmsCalls).toBe(0);
  });

  it('strict keyIds: a configured key in a Region without a client does not stop the other key', async () => {
    const key = await local.createKey({});
    const writer = new KmsKeyring({ keyId: key.arn, client: local.client() });
    const out = await writer.onEncrypt({ suiteId: 0x0478, context: ctx });
    const bad = edkIn('bad-1');
    const badArn = Buffer.from(bad.providerInfo).toString();
    const ring = new KmsKeyring({ keyIds: [badArn, key.arn], clientForRegion: supplier(() => local.client()) });
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: ctx, encryptedDataKeys: [bad, ...out.encryptedDataKeys] })).toEqual(out.dataKey);
  });
});
