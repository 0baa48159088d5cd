/**
 * Compliance: framework/aws-kms/aws-kms-mrk-keyring.md, aws-kms-mrk-discovery-keyring.md,
 * aws-kms-mrk-match-for-decrypt.md, aws-kms-mrk-are-unique.md, aws-kms-mrk-multi-keyrings.md
 * (test/spec/compliance/framework/aws-kms/).
 *
 * Which Region and KeyId each request goes to is what these sections are about, so requests are
 * observed on a small multi-Region stand-in for KMS (test/keyrings/fake-mrk-kms.ts), one client per
 * Region. test/keyrings/kms-mrk-local.test.ts runs the same scenarios against the real local KMS
 * (in process and over HTTP with @aws-sdk/client-kms).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Envelope, KmsKeyring, assertMrksAreUnique, mrkMatchForDecrypt } from '../../src/index.js';
import { KeyringError, KmsError, MalformedMessageError, NoDecryptableKeyError } from '../../src/errors.js';
import type { EncryptedDataKey, KmsClient } from '../../src/types.js';
import { FakeMrkKms } from '../keyrings/fake-mrk-kms.js';

const EAST = 'us-east-1';
const WEST = 'eu-west-1';
const SOUTH = 'ap-south-1';
const CONTEXT = Object.freeze({ tenant: 'alpha', purpose: 'mrk-spec' });
const SUITE = 0x0478;

const text = (edk: EncryptedDataKey) => Buffer.from(edk.providerInfo).toString('utf8');
const edk = (info: string | Uint8Array, ciphertext: Uint8Array = randomBytes(8), providerId = 'aws-kms'): EncryptedDataKey => ({
  providerId,
  providerInfo: typeof info === 'string' ? Buffer.from(info) : info,
  ciphertext,
});

/** A world: one MRK in us-east-1 (primary), eu-west-1 and ap-south-1, plus single-Region keys. */
function world() {
  const kms = new FakeMrkKms();
  const mrk = kms.createMrk([EAST, WEST, SOUTH]);
  const other = kms.createMrk([EAST, WEST]);
  const clientForRegion = (r: string) => kms.client(r);
  return { kms, mrk, other, clientForRegion, east: kms.arn(mrk, EAST), west: kms.arn(mrk, WEST), south: kms.arn(mrk, SOUTH) };
}

/** Wraps a client so that answers of `op` pass through `alter`. */
function altered(client: KmsClient, op: 'generateDataKey' | 'encrypt', alter: (out: Record<string, unknown>) => Record<string, unknown>): KmsClient {
  return {
    generateDataKey: async (i) => (op === 'generateDataKey' ? (alter({ ...(await client.generateDataKey(i)) }) as never) : client.generateDataKey(i)),
    encrypt: async (i) => (op === 'encrypt' ? (alter({ ...(await client.encrypt(i)) }) as never) : client.encrypt(i)),
    decrypt: (i) => client.decrypt(i),
  };
}

/** EDKs of one data key wrapped by the primary (us-east-1), as a writer there makes them. */
async function primaryMessage(w: ReturnType<typeof world>, context = CONTEXT) {
  const writer = new KmsKeyring({ keyId: w.east, client: w.kms.client(EAST) });
  const out = await writer.onEncrypt({ suiteId: SUITE, context });
  w.kms.requests.length = 0;
  return out;
}

describe('AWS KMS MRK keyring: initialization', () => {
  it('implements the keyring interface: an Envelope encrypts with the us-east-1 primary and decrypts with a keyring configured with the eu-west-1 replica, calling eu-west-1 only', async () => {
    const w = world();
    const writer = new Envelope({ keyring: new KmsKeyring({ keyId: w.east, mrkAware: true, clientForRegion: w.clientForRegion }), cache: false });
    const message = await writer.encrypt('mrk payload', { context: CONTEXT });
    w.kms.requests.length = 0;
    const ring = new KmsKeyring({ keyId: w.west, mrkAware: true, clientForRegion: w.clientForRegion });
    expect(typeof ring.onEncrypt).toBe('function');
    expect(ring.mrkAware).toBe(true);
    const reader = new Envelope({ keyring: ring, cache: false });
    expect((await reader.decrypt(message)).plaintext.toString()).toBe('mrk payload');
    expect(w.kms.requests.map((r) => [r.region, r.op, r.keyId])).toEqual([[WEST, 'Decrypt', w.west]]);
  });

  it('needs a key identifier: absent, empty or not a valid AWS KMS identifier is a TypeError naming options.keyId; every valid identifier is accepted; grant tokens are optional', () => {
    const client = new FakeMrkKms().client(EAST);
    expect(() => new KmsKeyring({ mrkAware: true, client })).toThrow(/options\.keyId/);
    for (const bad of ['', null, 'arn:aws:kms:us-east-1:111122223333:key', 'arn:aws:s3:us-east-1:111122223333:key/mrk-1', 'alias/', 'a:b']) {
      expect(() => new KmsKeyring({ keyId: bad as string, mrkAware: true, client }), String(bad)).toThrow(TypeError);
      expect(() => new KmsKeyring({ keyId: bad as string, mrkAware: true, client }), String(bad)).toThrow(/options\.keyId/);
    }
    for (const good of ['arn:aws:kms:us-east-1:111122223333:key/mrk-1234', 'arn:aws:kms:us-east-1:111122223333:alias/app', 'alias/app', 'mrk-1234', '1234abcd-12ab-34cd-56ef-1234567890ab']) {
      const ring = new KmsKeyring({ keyId: good, mrkAware: true, client });
      expect(ring.keyIds).toEqual([good]);
      expect(new KmsKeyring({ keyId: good, mrkAware: true, client, grantTokens: ['t'] }).mrkAware).toBe(true);
    }
    expect(() => new KmsKeyring({ keyId: 'alias/app', mrkAware: 'yes' as never, client })).toThrow(/options\.mrkAware/);
    expect(() => new KmsKeyring({ keyId: 'alias/app', mrkAware: true, resolveOnDecrypt: true, client })).toThrow(/resolveOnDecrypt/);
  });

  it('a null or non-KMS client is a TypeError naming options.client', () => {
    const arn = 'arn:aws:kms:us-east-1:111122223333:key/mrk-1234';
    expect(() => new KmsKeyring({ keyId: arn, mrkAware: true, client: null as never })).toThrow(/options\.client/);
    expect(() => new KmsKeyring({ keyId: arn, mrkAware: true, client: {} as never })).toThrow(/options\.client/);
  });
});

describe('AWS KMS MRK keyring: OnEncrypt', () => {
  it('without a data key: one GenerateDataKey through the configured key\'s Region client, KeyId = the configured identifier, NumberOfBytes = suite key length, EncryptionContext = the input context, GrantTokens = the configured ones; the data key is the response Plaintext and the EDK aws-kms / response KeyId / response CiphertextBlob', async () => {
    const w = world();
    const ring = new KmsKeyring({ keyId: w.west, mrkAware: true, clientForRegion: w.clientForRegion, grantTokens: ['g1'] });
    const out = await ring.onEncrypt({ suiteId: SUITE, context: CONTEXT });
    expect(w.kms.requests).toHaveLength(1);
    expect(w.kms.requests[0]).toMatchObject({ region: WEST, op: 'GenerateDataKey', keyId: w.west, encryptionContext: CONTEXT, grantTokens: ['g1'] });
    expect(out.dataKey).toHaveLength(32);
    expect(out.encryptedDataKeys).toHaveLength(1);
    expect(out.encryptedDataKeys[0]!.providerId).toBe('aws-kms');
    expect(text(out.encryptedDataKeys[0]!)).toBe(w.west);
    // The ciphertext is KMS's: the replica in eu-west-1 decrypts it to the returned data key.
    const back = await w.kms.client(WEST).decrypt({ keyId: w.west, ciphertextBlob: out.encryptedDataKeys[0]!.ciphertext, encryptionContext: CONTEXT });
    expect(Buffer.from(back.plaintext).equals(Buffer.from(out.dataKey))).toBe(true);
  });

  it('fails with the KMS error when GenerateDataKey fails; refuses a Plaintext of another length than the suite\'s or a KeyId that is not a key ARN (ERR_KEYRING)', async () => {
    const w = world();
    const missing = w.kms.arn('mrk-00000000000000000000000000000000', WEST);
    await expect(new KmsKeyring({ keyId: missing, mrkAware: true, clientForRegion: w.clientForRegion }).onEncrypt({ suiteId: SUITE, context: {} })).rejects.toBeInstanceOf(KmsError);
    for (const alter of [(o: Record<string, unknown>) => ({ ...o, plaintext: randomBytes(16) }), (o: Record<string, unknown>) => ({ ...o, keyId: w.mrk })]) {
      const ring = new KmsKeyring({ keyId: w.west, mrkAware: true, client: altered(w.kms.client(WEST), 'generateDataKey', alter) });
      await expect(ring.onEncrypt({ suiteId: SUITE, context: {} })).rejects.toBeInstanceOf(KeyringError);
    }
  });

  it('with a data key: Encrypt through the configured client, KeyId = the configured identifier, Plaintext = the data key, EncryptionContext, GrantTokens; returns that key and the EDK aws-kms / response KeyId / response CiphertextBlob; no GenerateDataKey', async () => {
    const w = world();
    const ring = new KmsKeyring({ keyId: w.south, mrkAware: true, clientForRegion: w.clientForRegion, grantTokens: ['g2'] });
    const dataKey = randomBytes(32);
    const out = await ring.onEncrypt({ suiteId: SUITE, context: CONTEXT, dataKey: Buffer.from(dataKey) });
    expect(w.kms.requests.map((r) => [r.region, r.op, r.keyId, r.grantTokens])).toEqual([[SOUTH, 'Encrypt', w.south, ['g2']]]);
    expect(w.kms.requests[0]!.encryptionContext).toEqual(CONTEXT);
    expect(Buffer.from(out.dataKey).equals(dataKey)).toBe(true);
    expect(out.encryptedDataKeys.map((e) => [e.providerId, text(e)])).toEqual([['aws-kms', w.south]]);
    const back = await w.kms.client(EAST).decrypt({ keyId: w.east, ciphertextBlob: out.encryptedDataKeys[0]!.ciphertext, encryptionContext: CONTEXT });
    expect(Buffer.from(back.plaintext).equals(dataKey)).toBe(true);
  });

  it('fails with the KMS error when Encrypt fails; refuses an Encrypt answer whose KeyId is not a key ARN (ERR_KEYRING)', async () => {
    const w = world();
    const missing = w.kms.arn('mrk-00000000000000000000000000000000', WEST);
    const input = () => ({ suiteId: SUITE, context: {}, dataKey: randomBytes(32) });
    await expect(new KmsKeyring({ keyId: missing, mrkAware: true, clientForRegion: w.clientForRegion }).onEncrypt(input())).rejects.toBeInstanceOf(KmsError);
    const lying = new KmsKeyring({ keyId: w.west, mrkAware: true, client: altered(w.kms.client(WEST), 'encrypt', (o) => ({ ...o, keyId: 'alias/x' })) });
    await expect(lying.onEncrypt(input())).rejects.toBeInstanceOf(KeyringError);
  });
});

describe('AWS KMS MRK keyring: OnDecrypt', () => {
  it('considers only "aws-kms" EDKs that MRK-match the configured ARN: the primary\'s and other replicas\' match; another mrk key, another account, another partition, a single-Region key and other provider ids cost no request', async () => {
    const w = world();
    const { encryptedDataKeys } = await primaryMessage(w);
    const blob = encryptedDataKeys[0]!.ciphertext;
    const single = w.kms.createKey(WEST);
    const edks = [
      edk(w.east, blob, 'raw-aes'),
      edk(w.kms.arn(w.other, EAST), blob),
      edk(w.kms.arn(w.mrk, EAST, '999988887777'), blob),
      edk(w.east.replace('arn:aws:', 'arn:aws-cn:'), blob),
      edk(single.replace(WEST, EAST), blob),
      edk(w.south, blob),
      edk(w.east, blob),
    ];
    const ring = new KmsKeyring({ keyId: w.west, mrkAware: true, clientForRegion: w.clientForRegion });
    expect(await ring.onDecrypt({ suiteId: SUITE, context: CONTEXT, encryptedDataKeys: edks })).toHaveLength(32);
    // The first matching EDK (the ap-south-1 replica's) decrypts in eu-west-1: the blob is one key's.
    expect(w.kms.requests.map((r) => [r.region, r.op, r.keyId])).toEqual([[WEST, 'Decrypt', w.west]]);
    expect(Buffer.from(w.kms.requests[0]!.ciphertextBlob!).equals(Buffer.from(blob))).toBe(true);
    // Non-MRK keys keep strict matching: the same key id in another Region is not ours.
    w.kms.requests.length = 0;
    const strict = new KmsKeyring({ keyId: single, mrkAware: true, clientForRegion: w.clientForRegion });
    expect(await strict.onDecrypt({ suiteId: SUITE, context: CONTEXT, encryptedDataKeys: [edk(single.replace(WEST, EAST))] })).toBeUndefined();
    expect(w.kms.requests).toEqual([]);
  });

  it('an "aws-kms" EDK whose provider info is not a valid key ARN makes OnDecrypt fail (ERR_MALFORMED_MESSAGE) before any request, wherever it stands', async () => {
    const w = world();
    const ring = new KmsKeyring({ keyId: w.west, mrkAware: true, clientForRegion: w.clientForRegion });
    for (const info of [w.west.replace(/key\/.*/, 'alias/mrk-x'), w.mrk, 'not an arn', Buffer.from([0xff, 0xfe])]) {
      await expect(ring.onDecrypt({ suiteId: SUITE, context: {}, encryptedDataKeys: [edk(w.east), edk(info)] })).rejects.toBeInstanceOf(MalformedMessageError);
    }
    expect(w.kms.requests).toEqual([]);
  });

  it('one Decrypt per matching EDK, one at a time, only to the configured key\'s Region: KeyId = the configured ARN, CiphertextBlob = the EDK ciphertext, EncryptionContext = the input context, GrantTokens = the configured ones', async () => {
    const w = world();
    const { encryptedDataKeys } = await primaryMessage(w);
    const bad = edk(w.south, randomBytes(40));
    const ring = new KmsKeyring({ keyId: w.west, mrkAware: true, clientForRegion: w.clientForRegion, grantTokens: ['g3'] });
    const key = await ring.onDecrypt({ suiteId: SUITE, context: CONTEXT, encryptedDataKeys: [bad, ...encryptedDataKeys] });
    expect(key).toHaveLength(32);
    expect(w.kms.requests.map((r) => [r.region, r.op, r.keyId, r.grantTokens, r.encryptionContext])).toEqual([
      [WEST, 'Decrypt', w.west, ['g3'], CONTEXT],
      [WEST, 'Decrypt', w.west, ['g3'], CONTEXT],
    ]);
    expect(Buffer.from(w.kms.requests[0]!.ciphertextBlob!).equals(Buffer.from(bad.ciphertext))).toBe(true);
    expect(Buffer.from(w.kms.requests[1]!.ciphertextBlob!).equals(Buffer.from(encryptedDataKeys[0]!.ciphertext))).toBe(true);
    expect(w.kms.requestsIn(EAST)).toEqual([]);
  });

  it('refuses an answer whose KeyId is not the configured ARN (even the EDK\'s own ARN) or whose Plaintext is not the suite key length: the error is collected, the next EDK tried, and the first good answer returned without further requests', async () => {
    const w = world();
    const { encryptedDataKeys } = await primaryMessage(w);
    const blob = encryptedDataKeys[0]!.ciphertext;
    const edks = [edk(w.east, blob), edk(w.south, blob), edk(w.east, blob), edk(w.east, blob)];
    let n = 0;
    w.kms.alterDecrypt = (out) => {
      n++;
      if (n === 1) return { ...out, keyId: w.east };
      if (n === 2) return { ...out, plaintext: randomBytes(16) };
      return out;
    };
    const ring = new KmsKeyring({ keyId: w.west, mrkAware: true, clientForRegion: w.clientForRegion });
    expect(await ring.onDecrypt({ suiteId: SUITE, context: CONTEXT, encryptedDataKeys: edks })).toHaveLength(32);
    expect(w.kms.requests).toHaveLength(3);
  });

  it('when no EDK decrypts, fails with an error that holds every collected error', async () => {
    const w = world();
    const { encryptedDataKeys } = await primaryMessage(w);
    const edks = [edk(w.south, randomBytes(40)), encryptedDataKeys[0]!];
    w.kms.alterDecrypt = (out) => ({ ...out, keyId: w.east });
    const ring = new KmsKeyring({ keyId: w.west, mrkAware: true, clientForRegion: w.clientForRegion });
    const err = await ring.onDecrypt({ suiteId: SUITE, context: CONTEXT, encryptedDataKeys: edks }).catch((e) => e);
    expect(err).toBeInstanceOf(NoDecryptableKeyError);
    const causes = (err.cause as AggregateError).errors;
    expect(causes).toHaveLength(2);
    expect(causes[0]).toBeInstanceOf(KmsError);
    expect(causes[1]).toBeInstanceOf(KeyringError);
  });
});

describe('AWS KMS MRK discovery keyring', () => {
  it('implements the keyring interface: bound to eu-west-1, an Envelope decrypts what the us-east-1 primary wrapped, with one Decrypt in eu-west-1 and none in us-east-1', async () => {
    const w = world();
    const writer = new Envelope({ keyring: new KmsKeyring({ keyId: w.east, clientForRegion: w.clientForRegion }), cache: false });
    const message = await writer.encrypt('discovered', { context: CONTEXT });
    w.kms.requests.length = 0;
    const ring = new KmsKeyring({ discovery: true, discoveryRegions: [WEST], clientForRegion: w.clientForRegion });
    expect(ring.mrkAware).toBe(true);
    expect(ring.discoveryRegions).toEqual([WEST]);
    expect((await new Envelope({ keyring: ring, cache: false }).decrypt(message)).plaintext.toString()).toBe('discovered');
    expect(w.kms.requests.map((r) => [r.region, r.op, r.keyId])).toEqual([[WEST, 'Decrypt', w.west]]);
  });

  it('initialization: needs a KMS client (options.client or options.clientForRegion, else a default one) and the Region; a missing, empty or non-string Region, a null client, or options.mrkAware without Regions is a TypeError; filter and grant tokens are optional', () => {
    const client = new FakeMrkKms().client(WEST);
    expect(() => new KmsKeyring({ discovery: true, mrkAware: true, client })).toThrow(/options\.discoveryRegions/);
    for (const bad of [[], [''], [null], [3], ['eu-west-1', 'eu-west-1'], 'eu-west-1', ['eu:west']]) {
      expect(() => new KmsKeyring({ discovery: true, discoveryRegions: bad as never, client }), JSON.stringify(bad)).toThrow(/options\.discoveryRegions/);
    }
    expect(() => new KmsKeyring({ discovery: true, discoveryRegions: [WEST], client: null as never })).toThrow(/options\.client/);
    expect(() => new KmsKeyring({ keyId: 'alias/x', discoveryRegions: [WEST], client })).toThrow(/only allowed with options\.discovery/);
    expect(() => new KmsKeyring({ discovery: true, discoveryRegions: [WEST], mrkAware: false, client })).toThrow(/mrkAware/);
    const ring = new KmsKeyring({
      discovery: true,
      discoveryRegions: [WEST],
      client,
      discoveryFilter: { partition: 'aws', accountIds: ['111122223333'] },
      grantTokens: ['g'],
    });
    expect(ring.discoveryFilter).toEqual({ partition: 'aws', accountIds: ['111122223333'] });
    expect(new KmsKeyring({ discovery: true, discoveryRegions: [WEST] }).discoveryRegions).toEqual([WEST]);
  });

  it('OnEncrypt fails (ERR_KEYRING), with or without a data key, and sends nothing to KMS', async () => {
    const w = world();
    const ring = new KmsKeyring({ discovery: true, discoveryRegions: [WEST], clientForRegion: w.clientForRegion });
    await expect(ring.onEncrypt({ suiteId: SUITE, context: {} })).rejects.toBeInstanceOf(KeyringError);
    await expect(ring.onEncrypt({ suiteId: SUITE, context: {}, dataKey: randomBytes(32) })).rejects.toBeInstanceOf(KeyringError);
    expect(w.kms.requests).toEqual([]);
  });

  it('OnDecrypt considers only EDKs whose provider id is exactly "aws-kms"; one whose provider info is not a valid key ARN fails it (ERR_MALFORMED_MESSAGE) before any request', async () => {
    const w = world();
    const ring = new KmsKeyring({ discovery: true, discoveryRegions: [WEST], clientForRegion: w.clientForRegion });
    expect(await ring.onDecrypt({ suiteId: SUITE, context: {}, encryptedDataKeys: [edk(w.east, randomBytes(8), 'aws-kms ')] })).toBeUndefined();
    expect(w.kms.requests).toEqual([]);
    for (const info of [w.east.replace(/key\/.*/, 'alias/mrk-x'), w.mrk, '']) {
      await expect(ring.onDecrypt({ suiteId: SUITE, context: {}, encryptedDataKeys: [edk(w.east), edk(info)] })).rejects.toBeInstanceOf(MalformedMessageError);
    }
    expect(w.kms.requests).toEqual([]);
  });

  it('with a discovery filter, EDKs of another partition or of an account not in the filter cost no request', async () => {
    const w = world();
    const { encryptedDataKeys } = await primaryMessage(w);
    const blob = encryptedDataKeys[0]!.ciphertext;
    const ring = new KmsKeyring({
      discovery: true,
      discoveryRegions: [WEST],
      clientForRegion: w.clientForRegion,
      discoveryFilter: { partition: 'aws', accountIds: [w.kms.account] },
    });
    const edks = [edk(w.east.replace('arn:aws:', 'arn:aws-cn:'), blob), edk(w.kms.arn(w.mrk, EAST, '999988887777'), blob)];
    expect(await ring.onDecrypt({ suiteId: SUITE, context: CONTEXT, encryptedDataKeys: edks })).toBeUndefined();
    expect(w.kms.requests).toEqual([]);
    expect(await ring.onDecrypt({ suiteId: SUITE, context: CONTEXT, encryptedDataKeys: [...edks, edk(w.east, blob)] })).toHaveLength(32);
    expect(w.kms.requests.map((r) => [r.region, r.keyId])).toEqual([[WEST, w.west]]);
  });

  it('a single-Region key is used only when its ARN names the keyring\'s Region, with its own ARN as KeyId', async () => {
    const w = world();
    const eastKey = w.kms.createKey(EAST);
    const westKey = w.kms.createKey(WEST);
    const dk = randomBytes(32);
    const wrap = async (arn: string, r: string) => edk(arn, (await w.kms.client(r).encrypt({ keyId: arn, plaintext: dk, encryptionContext: CONTEXT })).ciphertextBlob);
    const edks = [await wrap(eastKey, EAST), await wrap(westKey, WEST)];
    w.kms.requests.length = 0;
    const ring = new KmsKeyring({ discovery: true, discoveryRegions: [WEST], clientForRegion: w.clientForRegion });
    expect(Buffer.from((await ring.onDecrypt({ suiteId: SUITE, context: CONTEXT, encryptedDataKeys: edks }))!).equals(dk)).toBe(true);
    expect(w.kms.requests.map((r) => [r.region, r.keyId])).toEqual([[WEST, westKey]]);
    w.kms.requests.length = 0;
    expect(await ring.onDecrypt({ suiteId: SUITE, context: CONTEXT, encryptedDataKeys: [edks[0]!] })).toBeUndefined();
    expect(w.kms.requests).toEqual([]);
  });

  it('OnDecrypt: Decrypt through the Region\'s client, one EDK at a time, with KeyId = the MRK ARN rewritten to the keyring\'s Region (every other part kept), CiphertextBlob = the EDK ciphertext, EncryptionContext = the input context, GrantTokens = the configured ones', async () => {
    const w = world();
    const { encryptedDataKeys } = await primaryMessage(w);
    const bad = edk(w.kms.arn(w.other, SOUTH), randomBytes(40));
    const ring = new KmsKeyring({ discovery: true, discoveryRegions: [WEST], clientForRegion: w.clientForRegion, grantTokens: ['g4'] });
    expect(await ring.onDecrypt({ suiteId: SUITE, context: CONTEXT, encryptedDataKeys: [bad, ...encryptedDataKeys] })).toHaveLength(32);
    expect(w.kms.requests.map((r) => [r.region, r.op, r.keyId, r.grantTokens, r.encryptionContext])).toEqual([
      [WEST, 'Decrypt', w.kms.arn(w.other, WEST), ['g4'], CONTEXT],
      [WEST, 'Decrypt', w.west, ['g4'], CONTEXT],
    ]);
    expect(Buffer.from(w.kms.requests[0]!.ciphertextBlob!).equals(Buffer.from(bad.ciphertext))).toBe(true);
    expect(Buffer.from(w.kms.requests[1]!.ciphertextBlob!).equals(Buffer.from(encryptedDataKeys[0]!.ciphertext))).toBe(true);
  });

  it('refuses an answer whose KeyId is not the requested one or whose Plaintext is not the suite key length: the error is collected and the next EDK tried; the first good answer is returned at once; when none is good the error holds every collected error', async () => {
    const w = world();
    const { encryptedDataKeys } = await primaryMessage(w);
    const blob = encryptedDataKeys[0]!.ciphertext;
    const edks = [edk(w.east, blob), edk(w.south, blob), edk(w.east, blob), edk(w.east, blob)];
    let n = 0;
    w.kms.alterDecrypt = (out) => (++n === 1 ? { ...out, keyId: w.east } : n === 2 ? { ...out, plaintext: randomBytes(31) } : out);
    const ring = new KmsKeyring({ discovery: true, discoveryRegions: [WEST], clientForRegion: w.clientForRegion });
    expect(await ring.onDecrypt({ suiteId: SUITE, context: CONTEXT, encryptedDataKeys: edks })).toHaveLength(32);
    expect(w.kms.requests).toHaveLength(3);
    w.kms.alterDecrypt = (out) => ({ ...out, keyId: w.south });
    const err = await ring.onDecrypt({ suiteId: SUITE, context: CONTEXT, encryptedDataKeys: edks.slice(0, 2) }).catch((e) => e);
    expect(err).toBeInstanceOf(NoDecryptableKeyError);
    expect((err.cause as AggregateError).errors).toHaveLength(2);
  });
});

describe('AWS KMS MRK match for decrypt', () => {
  const a = 'arn:aws:kms:us-east-1:111122223333:key/mrk-4321abcd12ab34cd56ef1234567890ab';
  it('takes two identifiers: identical ones match, whatever they are; otherwise both must be multi-Region keys', () => {
    for (const id of [a, 'alias/app', 'arn:aws:kms:us-east-1:111122223333:key/1234', 'mrk-1', 'arn:aws:kms:us-east-1:111122223333:alias/mrk-1']) {
      expect(mrkMatchForDecrypt(id, id), id).toBe(true);
    }
    const single = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    expect(mrkMatchForDecrypt(single, single.replace('us-east-1', 'eu-west-1'))).toBe(false);
    expect(mrkMatchForDecrypt(a, a.replace('key/', 'alias/'))).toBe(false);
    expect(mrkMatchForDecrypt(a.replace('us-east-1', 'eu-west-1').replace('key/', 'alias/'), a.replace('key/', 'alias/'))).toBe(false);
    expect(mrkMatchForDecrypt(a, 'alias/mrk-4321abcd12ab34cd56ef1234567890ab')).toBe(false);
  });

  it('two multi-Region key ARNs match when partition, service, account, resource type and key id agree, whatever their Regions', () => {
    expect(mrkMatchForDecrypt(a, a.replace('us-east-1', 'eu-west-1'))).toBe(true);
    expect(mrkMatchForDecrypt(a, a.replace(':111122223333:', ':444455556666:'))).toBe(false);
    expect(mrkMatchForDecrypt(a, a.replace('arn:aws:', 'arn:aws-cn:'))).toBe(false);
    expect(mrkMatchForDecrypt(a, a.replace(/ab$/, 'ac'))).toBe(false);
    // A bare mrk- key id has no account or partition to compare.
    expect(mrkMatchForDecrypt(a, 'mrk-4321abcd12ab34cd56ef1234567890ab')).toBe(false);
  });
});

describe('AWS KMS MRK are unique', () => {
  const mrkEast = 'arn:aws:kms:us-east-1:111122223333:key/mrk-4321abcd12ab34cd56ef1234567890ab';
  const mrkWest = mrkEast.replace('us-east-1', 'eu-west-1');
  it('takes a list of identifiers: without multi-Region keys, or with distinct ones, it passes', () => {
    expect(() => assertMrksAreUnique([], 'ids')).not.toThrow();
    expect(() => assertMrksAreUnique(['alias/mrk-1', 'arn:aws:kms:us-east-1:111122223333:key/1234', 'arn:aws:kms:eu-west-1:111122223333:key/1234'], 'ids')).not.toThrow();
    expect(() => assertMrksAreUnique([mrkEast, mrkEast.replace(/ab$/, 'cd'), 'mrk-other', 'alias/x'], 'ids')).not.toThrow();
  });

  it('a multi-Region key id given twice (a primary and its replicas, or a bare mrk- id) is a TypeError naming every identifier involved, not only the first pair', () => {
    const bare = 'mrk-4321abcd12ab34cd56ef1234567890ab';
    const other = 'arn:aws:kms:us-east-1:111122223333:key/mrk-11112222333344445555666677778888';
    const otherWest = other.replace('us-east-1', 'eu-west-1');
    let err: unknown;
    try {
      assertMrksAreUnique([mrkEast, 'alias/a', other, mrkWest, bare, otherWest], 'options.keyIds');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TypeError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/^options\.keyIds/);
    for (const id of [mrkEast, mrkWest, bare, other, otherWest]) expect(msg).toContain(JSON.stringify(id));
    expect(msg).not.toContain('alias/a');
  });
});

describe('AWS KMS MRK multi-keyrings', () => {
  it('strict (keyIds with mrkAware): every identifier must be a key or alias ARN, and related multi-Region keys are refused, at construction (TypeError naming options.keyIds)', () => {
    const w = world();
    const base = { mrkAware: true, clientForRegion: w.clientForRegion };
    expect(() => new KmsKeyring({ ...base, keyIds: [w.east, 'alias/app'] })).toThrow(/options\.keyIds\[1\]/);
    expect(() => new KmsKeyring({ ...base, keyIds: [w.mrk] })).toThrow(/options\.keyIds\[0\]/);
    expect(() => new KmsKeyring({ ...base, keyIds: [w.east, w.kms.arn(w.other, EAST), w.west] })).toThrow(/options\.keyIds names the same multi-Region key/);
    expect(new KmsKeyring({ ...base, keyIds: [w.east, w.kms.arn(w.other, WEST), w.east.replace(/key\/.*/, 'alias/app')] }).keyIds).toHaveLength(3);
  });

  it('strict: the generator\'s and each other key\'s client come from clientForRegion with the Region of its ARN; grant tokens go with every request; encrypt is GenerateDataKey with the generator then Encrypt with each other key, in order', async () => {
    const w = world();
    const asked: string[] = [];
    const single = w.kms.createKey(SOUTH);
    const ring = new KmsKeyring({
      keyIds: [w.west, w.kms.arn(w.other, EAST), single],
      mrkAware: true,
      clientForRegion: (r) => (asked.push(r), w.kms.client(r)),
      grantTokens: ['g5'],
    });
    const out = await ring.onEncrypt({ suiteId: SUITE, context: CONTEXT });
    expect(asked.sort()).toEqual([EAST, SOUTH, WEST].sort());
    expect(w.kms.requests.map((r) => [r.region, r.op, r.keyId, r.grantTokens])).toEqual([
      [WEST, 'GenerateDataKey', w.west, ['g5']],
      [EAST, 'Encrypt', w.kms.arn(w.other, EAST), ['g5']],
      [SOUTH, 'Encrypt', single, ['g5']],
    ]);
    expect(out.encryptedDataKeys.map(text)).toEqual([w.west, w.kms.arn(w.other, EAST), single]);
  });

  it('strict: decrypt tries the configured keys in order, generator first, each over its matching EDKs in message order, and stops at the first data key', async () => {
    const w = world();
    const dk = randomBytes(32);
    const otherEast = w.kms.arn(w.other, EAST);
    const wrap = async (arn: string, r: string) => edk(arn, (await w.kms.client(r).encrypt({ keyId: arn, plaintext: dk, encryptionContext: CONTEXT })).ciphertextBlob);
    const edks = [await wrap(otherEast, EAST), edk(w.south, randomBytes(40)), await wrap(w.east, EAST)];
    w.kms.requests.length = 0;
    const ring = new KmsKeyring({ keyIds: [w.west, w.kms.arn(w.other, WEST)], mrkAware: true, clientForRegion: w.clientForRegion });
    expect(Buffer.from((await ring.onDecrypt({ suiteId: SUITE, context: CONTEXT, encryptedDataKeys: edks }))!).equals(dk)).toBe(true);
    // Generator (w.west) first over its two matching EDKs; the second decrypts; the other key is never asked.
    expect(w.kms.requests.map((r) => [r.region, r.keyId])).toEqual([
      [WEST, w.west],
      [WEST, w.west],
    ]);
  });

  it('discovery (discoveryRegions): clientForRegion is called once per Region, at construction; with one options.client only one Region is allowed', () => {
    const w = world();
    const asked: string[] = [];
    const ring = new KmsKeyring({ discovery: true, discoveryRegions: [WEST, SOUTH], clientForRegion: (r) => (asked.push(r), w.kms.client(r)) });
    expect(asked).toEqual([WEST, SOUTH]);
    expect(ring.discoveryRegions).toEqual([WEST, SOUTH]);
    expect(() => new KmsKeyring({ discovery: true, discoveryRegions: [WEST], clientForRegion: () => undefined as never })).toThrow(TypeError);
    expect(() => new KmsKeyring({ discovery: true, discoveryRegions: [WEST, SOUTH], client: w.kms.client(WEST) })).toThrow(/clientForRegion/);
  });

  it('discovery: behaves as one discovery keyring per Region, tried in the given order with the same filter and grant tokens, stopping at the first data key', async () => {
    const w = world();
    const { encryptedDataKeys } = await primaryMessage(w);
    const onlyEastWest = w.kms.arn(w.other, EAST);
    const edks = [edk(onlyEastWest, randomBytes(40)), ...encryptedDataKeys];
    // ap-south-1 first: the `other` key has no replica there (an error is collected), then the good EDK decrypts there.
    const ring = new KmsKeyring({
      discovery: true,
      discoveryRegions: [SOUTH, WEST],
      clientForRegion: w.clientForRegion,
      grantTokens: ['g6'],
      discoveryFilter: { partition: 'aws', accountIds: [w.kms.account] },
    });
    expect(await ring.onDecrypt({ suiteId: SUITE, context: CONTEXT, encryptedDataKeys: edks })).toHaveLength(32);
    expect(w.kms.requests.map((r) => [r.region, r.keyId, r.grantTokens])).toEqual([
      [SOUTH, w.kms.arn(w.other, SOUTH), ['g6']],
      [SOUTH, w.south, ['g6']],
    ]);
    // When nothing decrypts in the first Region, the next Region's keyring runs.
    w.kms.requests.length = 0;
    const westFirstFails = new KmsKeyring({ discovery: true, discoveryRegions: [SOUTH, WEST], clientForRegion: w.clientForRegion });
    expect(await westFirstFails.onDecrypt({ suiteId: SUITE, context: CONTEXT, encryptedDataKeys: [edk(onlyEastWest, (await w.kms.client(EAST).encrypt({ keyId: onlyEastWest, plaintext: randomBytes(32), encryptionContext: CONTEXT })).ciphertextBlob)] })).toHaveLength(32);
    expect(w.kms.requests.map((r) => [r.region, r.op])).toEqual([
      [EAST, 'Encrypt'],
      [SOUTH, 'Decrypt'],
      [WEST, 'Decrypt'],
    ]);
  });
});
