/**
 * Adversarial review of the multi-Region-key (MRK) aware keyrings: `KmsKeyring` with
 * `mrkAware: true` (strict) and with `discovery: true, discoveryRegions` (MRK discovery), the
 * Envelope's `kms` shorthand that builds them, and the CLI's `decrypt --key` / `decrypt --region`.
 *
 * Specification: aws-encryption-sdk-specification framework/aws-kms/ aws-kms-mrk-keyring.md,
 * aws-kms-mrk-discovery-keyring.md, aws-kms-mrk-match-for-decrypt.md, aws-kms-mrk-are-unique.md,
 * aws-kms-mrk-multi-keyrings.md, aws-kms-key-arn.md.
 *
 * Probes that held are kept (they pin what must not weaken); a finding is a test that fails
 * against the code it was written for, named after the behaviour the specification requires.
 *
 * Findings (failing at commit 8b2e7d6):
 * 1. `new Envelope({ kms: { keyIds: [arnInA, arnInB], mrkAware: true } })` without a client sends
 *    every request through one default client of the environment's Region (regionOfArns gives up
 *    on two Regions and the keyring then has `client` but no `clientForRegion`).
 * 2. MRK discovery with `options.client` addressing another Region than discoveryRegions[0] sends
 *    its Decrypts to that other Region (spec SHOULD refuse; an SDK client's Region is knowable).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { KMS, KMSClient } from '@aws-sdk/client-kms';
import { Envelope, KmsKeyring } from '../../src/index.js';
import { EnvelopeError } from '../../src/errors.js';
import { LocalKms, startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import type { EncryptedDataKey, Keyring } from '../../src/types.js';
import { connectKms } from '../../src/cli/kms.js';
import { FakeMrkKms } from '../keyrings/fake-mrk-kms.js';

const EAST = 'us-east-1';
const WEST = 'eu-west-1';
const SOUTH = 'ap-south-1';
const SUITE = 0x0478;
const CONTEXT = Object.freeze({ purpose: 'mrk-review' });
const credentials = { accessKeyId: 'AKIDMRKREVIEW00001', secretAccessKey: 'mrk-review-secret' };

const edk = (info: string | Uint8Array, ciphertext: Uint8Array = randomBytes(40), providerId = 'aws-kms'): EncryptedDataKey => ({
  providerId,
  providerInfo: typeof info === 'string' ? Buffer.from(info) : info,
  ciphertext,
});

function world() {
  const kms = new FakeMrkKms();
  const mrk = kms.createMrk([EAST, WEST, SOUTH]);
  const made: string[] = [];
  const clientForRegion = (r: string) => (made.push(r), kms.client(r));
  return { kms, mrk, made, clientForRegion, east: kms.arn(mrk, EAST), west: kms.arn(mrk, WEST), south: kms.arn(mrk, SOUTH) };
}

/** Provider infos an attacker may write next to (or instead of) a real one. */
function hostileInfos(w: ReturnType<typeof world>): (string | Uint8Array)[] {
  const id = w.mrk;
  const acct = w.kms.account;
  return [
    `arn:aws:kms::${acct}:key/${id}`, // empty Region
    `arn:aws:kms:${EAST}/x:${acct}:key/${id}`,
    `arn:aws:kms:evil.example.com:${acct}:key/${id}`,
    `arn:aws:kms:${EAST} :${acct}:key/${id}`,
    `arn:aws:kms:${EAST}:${acct}:key/${id.toUpperCase().replace('MRK-', 'mrk-')}`,
    `arn:aws:kms:${EAST}:${acct}:key/MRK-${id.slice(4)}`,
    `arn:aws:kms:${EAST}:${acct}:key/${id}0`,
    `arn:aws:kms:${EAST}:${acct}:key/${id.slice(0, -1)}`,
    `arn:aws:kms:${EAST}:${acct}:key/${id}/`,
    `arn:aws:kms:${EAST}:${acct}:key/${id}/../x`,
    `arn:aws:kms:${EAST}:${acct}:alias/${id}`,
    `arn:aws:kms:${EAST}:${acct}:key:${id}`,
    `arn:aws:kms:${EAST}:${acct}:key/${id}:extra`,
    `arn:aws-cn:kms:${EAST}:${acct}:key/${id}`,
    `arn:aws:kms:${EAST}:999988887777:key/${id}`,
    `arn:aws:kms:${EAST}:0${acct}:key/${id}`,
    `arn:aws:kms:${EAST}:${acct} :key/${id}`,
    `arn:aws:KMS:${EAST}:${acct}:key/${id}`,
    `ARN:aws:kms:${EAST}:${acct}:key/${id}`,
    ` arn:aws:kms:${EAST}:${acct}:key/${id}`,
    `arn:aws:kms:${EAST}:${acct}:key/${id}\u0000`,
    `\uFEFFarn:aws:kms:${EAST}:${acct}:key/${id}`,
    Buffer.concat([Buffer.from(`arn:aws:kms:${EAST}:${acct}:key/`), Buffer.from([0xff, 0xfe]), Buffer.from(id)]),
    `arn:aws:kms:${'x'.repeat(60_000)}:${acct}:key/${id}`,
  ];
}

describe('strict MRK keyring (aws-kms-mrk-keyring.md "OnDecrypt")', () => {
  it('held: whatever provider info a message carries, a request goes only to the configured key\'s Region with KeyId = the configured ARN', async () => {
    const w = world();
    const ring = new KmsKeyring({ keyId: w.west, mrkAware: true, clientForRegion: w.clientForRegion });
    for (const info of hostileInfos(w)) {
      // The hostile EDK first, then a genuine junk one, so the hostile one would be tried first.
      await ring.onDecrypt({ suiteId: SUITE, context: CONTEXT, encryptedDataKeys: [edk(info)] }).catch((e: unknown) => {
        expect(e).toBeInstanceOf(EnvelopeError);
      });
    }
    for (const r of w.kms.requests) {
      expect(r.region).toBe(WEST);
      expect(r.keyId).toBe(w.west);
    }
    // Region and Region-like parts are ignored for an MRK: only the empty Region and non-ARNs fail
    // before a request; the others that keep partition, account and key id are sent, to eu-west-1.
    expect(new Set(w.made)).toEqual(new Set([WEST]));
  });

  it('held: KMS answering with the EDK\'s own ARN (the primary), another account\'s ARN, or the configured ARN with a different case is refused', async () => {
    const w = world();
    const { encryptedDataKeys } = await new KmsKeyring({ keyId: w.east, client: w.kms.client(EAST) }).onEncrypt({ suiteId: SUITE, context: CONTEXT });
    for (const answer of [w.east, w.west.replace(w.kms.account, '999988887777'), w.west.toUpperCase(), `${w.west} `, w.south]) {
      w.kms.alterDecrypt = (out) => ({ ...out, keyId: answer });
      const ring = new KmsKeyring({ keyId: w.west, mrkAware: true, clientForRegion: w.clientForRegion });
      const err = await ring.onDecrypt({ suiteId: SUITE, context: CONTEXT, encryptedDataKeys }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, answer).toBeInstanceOf(EnvelopeError);
    }
  });

  it('held: keyIds naming one MRK twice in any disguise the spec counts (primary + replica, two replicas) is refused at construction', () => {
    const w = world();
    for (const ids of [
      [w.east, w.west],
      [w.west, w.south],
      [w.west, w.kms.arn(w.mrk, 'xx-fake-1')],
    ]) {
      expect(() => new KmsKeyring({ keyIds: ids, mrkAware: true, clientForRegion: w.clientForRegion }), ids.join()).toThrow(TypeError);
    }
  });
});

describe('MRK discovery (aws-kms-mrk-discovery-keyring.md "OnDecrypt", aws-kms-mrk-multi-keyrings.md)', () => {
  it('held: hundreds of EDKs naming many Regions: clientForRegion is called only for discoveryRegions, at construction, and every request goes there', async () => {
    const w = world();
    const ring = new KmsKeyring({ discovery: true, discoveryRegions: [WEST, SOUTH], clientForRegion: w.clientForRegion });
    expect(w.made).toEqual([WEST, SOUTH]);
    const edks: EncryptedDataKey[] = [];
    for (let i = 0; i < 300; i++) {
      const region = `zz-made-up-${i}`;
      edks.push(edk(i % 2 === 0 ? w.kms.arn(w.mrk, region) : w.kms.arn(randomBytes(16).toString('hex'), region)));
    }
    await ring.onDecrypt({ suiteId: SUITE, context: CONTEXT, encryptedDataKeys: edks }).catch(() => undefined);
    expect(w.made).toEqual([WEST, SOUTH]);
    for (const r of w.kms.requests) {
      expect([WEST, SOUTH]).toContain(r.region);
      expect(r.keyId!.split(':')[3]).toBe(r.region);
    }
    // 150 MRK EDKs x 2 Regions; the single-Region keys of other Regions cost nothing.
    expect(w.kms.requests.length).toBe(300);
  });

  it('held: the discovery filter is compared exactly: near-miss accounts and partitions cost no request', async () => {
    const w = world();
    const ring = new KmsKeyring({
      discovery: true,
      discoveryRegions: [WEST],
      discoveryFilter: { accountIds: [w.kms.account], partition: 'aws' },
      clientForRegion: w.clientForRegion,
    });
    const acct = w.kms.account;
    for (const info of [
      `arn:aws:kms:${EAST}:${acct} :key/${w.mrk}`,
      `arn:aws:kms:${EAST}:0${acct}:key/${w.mrk}`,
      `arn:aws:kms:${EAST}:${acct.slice(1)}:key/${w.mrk}`,
      `arn:aws-cn:kms:${EAST}:${acct}:key/${w.mrk}`,
      `arn:aws :kms:${EAST}:${acct}:key/${w.mrk}`,
      `arn:AWS:kms:${EAST}:${acct}:key/${w.mrk}`,
    ]) {
      expect(await ring.onDecrypt({ suiteId: SUITE, context: CONTEXT, encryptedDataKeys: [edk(info)] }), info).toBeUndefined();
    }
    expect(w.kms.requests).toEqual([]);
  });

  it('held: an MRK of a Region outside discoveryRegions is rewritten into the Region; KMS answering with the original ARN is refused', async () => {
    const w = world();
    const { encryptedDataKeys } = await new KmsKeyring({ keyId: w.east, client: w.kms.client(EAST) }).onEncrypt({ suiteId: SUITE, context: CONTEXT });
    w.kms.requests.length = 0;
    const ring = new KmsKeyring({ discovery: true, discoveryRegions: [WEST], clientForRegion: w.clientForRegion });
    expect(await ring.onDecrypt({ suiteId: SUITE, context: CONTEXT, encryptedDataKeys })).toBeInstanceOf(Uint8Array);
    expect(w.kms.requests.map((r) => [r.region, r.keyId])).toEqual([[WEST, w.west]]);
    w.kms.alterDecrypt = (out) => ({ ...out, keyId: w.east });
    await expect(ring.onDecrypt({ suiteId: SUITE, context: CONTEXT, encryptedDataKeys })).rejects.toBeInstanceOf(EnvelopeError);
  });
});

/** A keyring that writes the data key under chosen EDKs (an attacker who can write messages). */
function forger(edks: () => EncryptedDataKey[], dataKey = randomBytes(32)): Keyring {
  return {
    onEncrypt: async () => ({ dataKey: Buffer.from(dataKey), encryptedDataKeys: edks() }),
    onDecrypt: async () => undefined,
  };
}

describe('MRK keyrings on the multi-Region local KMS (in process)', () => {
  let kms: LocalKms;
  let mrkEast: string;
  let mrkWest: string;
  let otherWest: string;
  let singleWest: string;
  beforeAll(async () => {
    kms = new LocalKms({ region: EAST });
    const east = kms.client({ region: EAST });
    const west = kms.client({ region: WEST });
    const md = (await east.call('CreateKey', { MultiRegion: true })).KeyMetadata as { Arn: string; KeyId: string };
    await east.call('ReplicateKey', { KeyId: md.KeyId, ReplicaRegion: WEST });
    mrkEast = md.Arn;
    mrkWest = md.Arn.replace(`:${EAST}:`, `:${WEST}:`);
    otherWest = ((await west.call('CreateKey', { MultiRegion: true })).KeyMetadata as { Arn: string }).Arn;
    singleWest = ((await west.call('CreateKey', {})).KeyMetadata as { Arn: string }).Arn;
  });
  afterAll(() => kms?.close());

  it('held: an EDK naming the reader\'s MRK whose ciphertext another key of the reader\'s account wrapped is not accepted (strict and discovery)', async () => {
    const clientForRegion = (r: string) => kms.client({ region: r });
    for (const wrapper of [otherWest, singleWest]) {
      const blob = await kms.client({ region: WEST }).encrypt({ keyId: wrapper, plaintext: randomBytes(32), encryptionContext: { ...CONTEXT } });
      const writer = new Envelope({ keyring: forger(() => [edk(mrkEast, blob.ciphertextBlob)]), cache: false });
      const message = await writer.encrypt('forged', { context: CONTEXT });
      for (const ring of [
        new KmsKeyring({ keyId: mrkWest, mrkAware: true, clientForRegion }),
        new KmsKeyring({ discovery: true, discoveryRegions: [WEST], clientForRegion }),
      ]) {
        const err = await new Envelope({ keyring: ring, cache: false }).decrypt(message, { context: CONTEXT }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, wrapper).toBeInstanceOf(EnvelopeError);
      }
    }
  });
});

describe('MRK keyrings over HTTP: where the requests go (local KMS server, counted server-side)', () => {
  let server: LocalKmsServer;
  let mrkEast: string;
  let mrkWest: string;
  let singleEast: string;
  let message: Buffer;
  const made: KMSClient[] = [];
  const sdk = (region: string) => {
    const c = new KMSClient({ region, endpoint: server.url, credentials, maxAttempts: 1 });
    made.push(c);
    return c;
  };
  /** Requests per Region since `before` (callCounts is cumulative). */
  const counts = () => server.service.callCounts();
  const delta = (before: Record<string, Record<string, number>>) => {
    const now = counts();
    const out: Record<string, number> = {};
    for (const [region, ops] of Object.entries(now)) {
      const n = Object.entries(ops).reduce((s, [op, c]) => s + c - (before[region]?.[op] ?? 0), 0);
      if (n > 0) out[region] = n;
    }
    return out;
  };

  beforeAll(async () => {
    server = await startLocalKmsServer({ port: 0 });
    const east = new KMS({ region: EAST, endpoint: server.url, credentials });
    const md = (await east.createKey({ MultiRegion: true })).KeyMetadata!;
    await east.replicateKey({ KeyId: md.KeyId!, ReplicaRegion: WEST });
    mrkEast = md.Arn!;
    mrkWest = mrkEast.replace(`:${EAST}:`, `:${WEST}:`);
    singleEast = (await east.createKey({})).KeyMetadata!.Arn!;
    east.destroy();
    // A key in ap-south-1 keeps that Region of the server alive, so requests misrouted there are counted.
    const south = new KMS({ region: SOUTH, endpoint: server.url, credentials });
    await south.createKey({});
    south.destroy();
    message = await new Envelope({ keyring: new KmsKeyring({ keyId: mrkEast, clientForRegion: sdk }), cache: false }).encrypt('primary', {
      context: CONTEXT,
    });
  });
  afterAll(async () => {
    for (const c of made) c.destroy();
    await server?.close();
  });

  it('held: CLI decrypt --region eu-west-1 (no --key) and decrypt --key <replica> --key <single-Region key of us-east-1> call eu-west-1 only', async () => {
    for (const use of [
      { mode: 'decrypt' as const, keyIds: [], partition: 'aws', discoveryRegion: WEST },
      { mode: 'decrypt' as const, keyIds: [mrkWest, singleEast], partition: 'aws' },
    ]) {
      const conn = await connectKms({ endpoint: server.url, region: use.keyIds.length > 0 ? SOUTH : WEST }, use, {});
      try {
        const before = counts();
        const out = await new Envelope({ keyring: conn.keyring, cache: false }).decrypt(message, { context: CONTEXT });
        expect(out.plaintext.toString()).toBe('primary');
        expect(delta(before), JSON.stringify(use)).toEqual({ [WEST]: 1 });
      } finally {
        await conn.close();
      }
    }
  });

  it('held: forged messages whose EDKs carry hostile provider infos fail Envelope.decrypt with EnvelopeErrors only, and send nothing outside the configured Region', async () => {
    const w = world();
    const infos = hostileInfos(w).map((i) => (typeof i === 'string' ? i.split(w.mrk).join(mrkEast.split('/')[1]!).split(w.kms.account).join(mrkEast.split(':')[4]!) : i));
    const before = counts();
    for (const info of infos) {
      const message = await new Envelope({ keyring: forger(() => [edk(info), edk(mrkEast)]), cache: false }).encrypt('forged', { context: CONTEXT });
      for (const keyring of [
        new KmsKeyring({ keyId: mrkWest, mrkAware: true, clientForRegion: sdk }),
        new KmsKeyring({ discovery: true, discoveryRegions: [WEST], clientForRegion: sdk }),
      ]) {
        const err = await new Envelope({ keyring, cache: false }).decrypt(message, { context: CONTEXT }).then(
          () => 'accepted',
          (e: unknown) => e,
        );
        expect(err, typeof info === 'string' ? info.slice(0, 100) : 'bytes').toBeInstanceOf(EnvelopeError);
      }
    }
    expect(Object.keys(delta(before)).filter((r) => r !== WEST)).toEqual([]);
  });

  // aws-kms-mrk-multi-keyrings.md "AWS KMS MRK Multi-Keyring": "If a regional client supplier is
  // not passed, then a default MUST be created that takes a region string and generates a default
  // AWS SDK client for the given region", and each keyring's client is "created by the regional
  // client supplier when called with the region part of the AWS KMS key identifier". README
  // ("Example"): the Decrypt is "sent to eu-west-1 (KeyId = the configured ARN ...) and none to the
  // Region the message names". The Envelope's `kms` shorthand builds a KmsKeyring; without a client
  // it must not route every key ARN through one client of the environment's Region.
  it('Envelope kms shorthand, mrkAware keyIds in two Regions, no client: each request goes to its key ARN\'s Region, none to AWS_REGION', async () => {
    vi.stubEnv('AWS_REGION', SOUTH); // no key there: whatever is sent there is misrouted
    vi.stubEnv('AWS_ACCESS_KEY_ID', credentials.accessKeyId);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', credentials.secretAccessKey);
    vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
    try {
      const envelope = new Envelope({ kms: { keyIds: [mrkWest, singleEast], mrkAware: true, endpoint: server.url }, cache: false });
      const before = counts();
      const out = await envelope.decrypt(message, { context: CONTEXT }).then(
        (r) => r.plaintext.toString(),
        (e: unknown) => e,
      );
      expect(delta(before)).toEqual({ [WEST]: 1 });
      expect(out).toBe('primary');
    } finally {
      vi.unstubAllEnvs();
    }
  });

  // aws-kms-mrk-discovery-keyring.md "Initialization": "The keyring SHOULD fail initialization if
  // the provided region does not match the region of the KMS client". README: MRK discovery "never
  // leaves those Regions". An @aws-sdk/client-kms KMSClient does expose its Region
  // (client.config.region(), asynchronous; the ESDK's discovery keyring awaits it before its first
  // Decrypt), so a client of another Region can be refused instead of used.
  it('MRK discovery with options.client of another Region: no request leaves discoveryRegions (the mismatch is refused)', async () => {
    const ring = new KmsKeyring({ discovery: true, discoveryRegions: [WEST], client: sdk(EAST) });
    const before = counts();
    await new Envelope({ keyring: ring, cache: false }).decrypt(message, { context: CONTEXT }).catch(() => undefined);
    const sent = delta(before);
    expect(Object.keys(sent).filter((r) => r !== WEST)).toEqual([]);
  });
});
