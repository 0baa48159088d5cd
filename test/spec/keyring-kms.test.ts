/**
 * Compliance: framework/aws-kms/aws-kms-keyring.md and aws-kms-discovery-keyring.md
 * (test/spec/compliance/framework/aws-kms/).
 *
 * Requests are observed where the keyring hands them to the AWS SDK: a middleware on a real
 * `@aws-sdk/client-kms` KMSClient records each command's input and output, and the requests travel
 * over HTTP to the local KMS server. Checks of KMS answers (wrong KeyId, wrong plaintext length)
 * need a KMS that answers wrongly: there the in-process local KMS is wrapped so that one answer is
 * altered, everything else being the real service.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { KMS, KMSClient } from '@aws-sdk/client-kms';
import { buildClient, CommitmentPolicy, KmsKeyringNode } from '@aws-crypto/client-node';
import { LocalKms, startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { Envelope, KmsKeyring } from '../../src/index.js';
import { KmsError, NoDecryptableKeyError } from '../../src/errors.js';
import type { EncryptedDataKey, KmsClient } from '../../src/types.js';

const credentials = { accessKeyId: 'AKIDSPECKMSTEST00001', secretAccessKey: 'spec-kms-secret' };
const CONTEXT = Object.freeze({ tenant: 'alpha', 'é': '😀', purpose: 'spec' });
const WEST_ACCOUNT = '444455556666';

interface Call {
  op: string;
  input: Record<string, unknown>;
  output?: Record<string, unknown>;
  error?: string;
}

/** A real KMSClient for `url` that records every command it is asked to send. */
function recordingClient(url: string, region: string) {
  const client = new KMSClient({ endpoint: url, region, credentials, maxAttempts: 1 });
  const calls: Call[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const call: Call = { op: context.commandName!, input: { ...(args.input as Record<string, unknown>) } };
      calls.push(call);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      try {
        const r = await next(args);
        call.output = { ...(r.output as unknown as Record<string, unknown>) };
        return r;
      } catch (e) {
        call.error = (e as Error).name;
        throw e;
      } finally {
        inFlight--;
      }
    },
    { step: 'initialize', name: 'specRecorder' },
  );
  return { client, calls, maxInFlight: () => maxInFlight };
}

/** The in-process local KMS, with the answer of the n-th call of an operation altered by `alter` (`seen` holds what the keyring received). */
function altering(inner: KmsClient, op: 'generateDataKey' | 'encrypt' | 'decrypt', n: number, alter: (out: Record<string, unknown>) => Record<string, unknown>) {
  let count = 0;
  const seen: Record<string, unknown>[] = [];
  const wrap =
    (name: typeof op) =>
    async (input: never): Promise<never> => {
      const out = (await (inner[name] as (i: never) => Promise<Record<string, unknown>>)(input)) as Record<string, unknown>;
      if (name !== op || ++count !== n) return out as never;
      const altered = alter({ ...out });
      seen.push(altered);
      return altered as never;
    };
  const client: KmsClient = { generateDataKey: wrap('generateDataKey'), encrypt: wrap('encrypt'), decrypt: wrap('decrypt') };
  return { client, seen };
}

const arnText = (edk: EncryptedDataKey) => Buffer.from(edk.providerInfo).toString('utf8');
const bytes = (v: unknown) => Buffer.from(v as Uint8Array);

let east: LocalKmsServer;
let west: LocalKmsServer;
let keyA: string;
let keyB: string;
let keyW: string;
let grantToken: string;
let esdkEast: KMS;
let esdkWest: KMS;

beforeAll(async () => {
  east = await startLocalKmsServer({ port: 0 });
  west = await startLocalKmsServer({ port: 0, region: 'eu-west-1', accountId: WEST_ACCOUNT });
  const arnOf = (r: Record<string, unknown>) => (r.KeyMetadata as { Arn: string }).Arn;
  keyA = arnOf(await east.service.call('CreateKey', { Description: 'spec a' }));
  keyB = arnOf(await east.service.call('CreateKey', { Description: 'spec b' }));
  keyW = arnOf(await west.service.call('CreateKey', { Description: 'spec w' }));
  await east.service.call('CreateAlias', { AliasName: 'alias/spec-a', TargetKeyId: keyA });
  const account = keyA.split(':')[4]!;
  const grant = await east.service.call('CreateGrant', {
    KeyId: keyA,
    GranteePrincipal: `arn:aws:iam::${account}:role/SpecGrantee`,
    Operations: ['GenerateDataKey', 'Encrypt', 'Decrypt'],
  });
  grantToken = grant.GrantToken as string;
  esdkEast = new KMS({ endpoint: east.url, region: 'us-east-1', credentials });
  esdkWest = new KMS({ endpoint: west.url, region: 'eu-west-1', credentials });
});

afterAll(async () => {
  esdkEast?.destroy();
  esdkWest?.destroy();
  await east?.close();
  await west?.close();
});

describe('AWS KMS keyring: initialization', () => {
  it('implements the keyring interface: an Envelope encrypts and decrypts with it, and the ESDK KmsKeyringNode decrypts its message', async () => {
    const { client } = recordingClient(east.url, 'us-east-1');
    const ring = new KmsKeyring({ keyId: keyA, client });
    expect(typeof ring.onEncrypt).toBe('function');
    expect(typeof ring.onDecrypt).toBe('function');
    const envelope = new Envelope({ keyring: ring, cache: false });
    const message = await envelope.encrypt('spec payload', { context: CONTEXT });
    expect((await envelope.decrypt(message)).plaintext.toString()).toBe('spec payload');
    const esdk = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
    const { plaintext } = await esdk.decrypt(new KmsKeyringNode({ keyIds: [keyA], clientProvider: () => esdkEast }), message);
    expect(Buffer.from(plaintext).toString()).toBe('spec payload');
    client.destroy();
  });

  it('needs a key identifier: absent, empty or not a valid AWS KMS identifier is a TypeError naming it; key ARN, alias ARN, alias name and key id are accepted', () => {
    const client = new LocalKms().client();
    expect(() => new KmsKeyring({ client })).toThrow(/options\.keyId/);
    for (const bad of ['', 'arn:aws:kms:us-east-1:111122223333:key', 'arn:aws:kms:us-east-1:111122223333:', 'arn:aws:s3:us-east-1:111122223333:key/k', 'alias/', 'a:b']) {
      expect(() => new KmsKeyring({ keyId: bad, client }), bad).toThrow(TypeError);
      expect(() => new KmsKeyring({ keyId: bad, client }), bad).toThrow(/options\.keyId/);
    }
    expect(() => new KmsKeyring({ keyId: null as never, client })).toThrow(/options\.keyId/);
    for (const good of [keyA, 'arn:aws:kms:us-east-1:111122223333:alias/app', 'alias/app', '1234abcd-12ab-34cd-56ef-1234567890ab', 'mrk-1234']) {
      expect(new KmsKeyring({ keyId: good, client }).keyIds).toEqual([good]);
    }
  });

  it('a null or non-KMS client is a TypeError naming options.client', () => {
    expect(() => new KmsKeyring({ keyId: keyA, client: null as never })).toThrow(/options\.client/);
    expect(() => new KmsKeyring({ keyId: keyA, client: {} as never })).toThrow(/options\.client/);
    expect(() => new KmsKeyring({ keyId: keyA, client: 'kms' as never })).toThrow(/options\.client/);
  });

  it('without options.client it always has one: an @aws-sdk/client-kms client built from the AWS environment (region, endpoint, credentials)', async () => {
    vi.stubEnv('AWS_REGION', 'us-east-1');
    vi.stubEnv('AWS_ENDPOINT_URL_KMS', east.url);
    vi.stubEnv('AWS_ACCESS_KEY_ID', credentials.accessKeyId);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', credentials.secretAccessKey);
    vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
    try {
      const ring = new KmsKeyring({ keyId: keyA });
      const out = await ring.onEncrypt({ suiteId: 0x0478, context: CONTEXT });
      expect(out.encryptedDataKeys.map(arnText)).toEqual([keyA]);
      expect(ring.kmsCalls).toBe(1);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('grant tokens are optional; the configured ones go with GenerateDataKey, Encrypt and Decrypt, and KMS checks them', async () => {
    const r = recordingClient(east.url, 'us-east-1');
    const ring = new KmsKeyring({ keyId: keyA, client: r.client, grantTokens: [grantToken] });
    const out = await ring.onEncrypt({ suiteId: 0x0478, context: CONTEXT });
    await ring.onEncrypt({ suiteId: 0x0478, context: CONTEXT, dataKey: randomBytes(32) });
    await ring.onDecrypt({ suiteId: 0x0478, context: CONTEXT, encryptedDataKeys: out.encryptedDataKeys });
    expect(r.calls.map((c) => c.op)).toEqual(['GenerateDataKeyCommand', 'EncryptCommand', 'DecryptCommand']);
    for (const c of r.calls) expect(c.input.GrantTokens).toEqual([grantToken]);
    // Without the option no tokens are sent.
    const plain = recordingClient(east.url, 'us-east-1');
    await new KmsKeyring({ keyId: keyA, client: plain.client }).onEncrypt({ suiteId: 0x0478, context: {} });
    expect(plain.calls[0]!.input.GrantTokens).toBeUndefined();
    // KMS reads them: a token it never issued is refused.
    const bogus = new KmsKeyring({ keyId: keyA, client: r.client, grantTokens: ['not-a-grant-token'] });
    await expect(bogus.onEncrypt({ suiteId: 0x0478, context: {} })).rejects.toMatchObject({ kmsErrorName: 'InvalidGrantTokenException' });
    r.client.destroy();
    plain.client.destroy();
  });
});

describe('AWS KMS keyring: OnEncrypt', () => {
  it('without a data key: one GenerateDataKey through the configured client, KeyId = the configured identifier, NumberOfBytes = the suite key length, EncryptionContext = the input context', async () => {
    const r = recordingClient(east.url, 'us-east-1');
    const ring = new KmsKeyring({ keyId: 'alias/spec-a', client: r.client });
    for (const [suiteId, length] of [[0x0014, 16], [0x0046, 24], [0x0078, 32], [0x0478, 32], [0x0578, 32]] as const) {
      r.calls.length = 0;
      const out = await ring.onEncrypt({ suiteId, context: CONTEXT });
      expect(r.calls.map((c) => c.op)).toEqual(['GenerateDataKeyCommand']);
      expect(r.calls[0]!.input.KeyId).toBe('alias/spec-a');
      expect(r.calls[0]!.input.NumberOfBytes).toBe(length);
      expect(r.calls[0]!.input.EncryptionContext).toEqual(CONTEXT);
      expect(out.dataKey.length).toBe(length);
    }
    r.client.destroy();
  });

  it('without a data key: the data key is the response Plaintext and the one EDK is aws-kms / response KeyId (the key ARN, also when configured by alias) / response CiphertextBlob', async () => {
    const r = recordingClient(east.url, 'us-east-1');
    const out = await new KmsKeyring({ keyId: 'alias/spec-a', client: r.client }).onEncrypt({ suiteId: 0x0478, context: CONTEXT });
    const answer = r.calls[0]!.output!;
    expect(answer.KeyId).toBe(keyA);
    expect(Buffer.from(out.dataKey)).toEqual(bytes(answer.Plaintext));
    expect(out.encryptedDataKeys).toHaveLength(1);
    const edk = out.encryptedDataKeys[0]!;
    expect(edk.providerId).toBe('aws-kms');
    expect(arnText(edk)).toBe(keyA);
    expect(Buffer.from(edk.ciphertext)).toEqual(bytes(answer.CiphertextBlob));
    r.client.destroy();
  });

  it('fails with the KMS error when GenerateDataKey fails, and returns nothing', async () => {
    const k = await east.service.call('CreateKey', { Description: 'disabled' });
    const arn = (k.KeyMetadata as { Arn: string }).Arn;
    await east.service.call('DisableKey', { KeyId: arn });
    const r = recordingClient(east.url, 'us-east-1');
    const err = await new KmsKeyring({ keyId: arn, client: r.client }).onEncrypt({ suiteId: 0x0478, context: {} }).catch((e) => e);
    expect(err).toBeInstanceOf(KmsError);
    expect(err.code).toBe('ERR_KMS');
    expect(err.kmsErrorName).toBe('DisabledException');
    expect(r.calls.map((c) => [c.op, c.error])).toEqual([['GenerateDataKeyCommand', 'DisabledException']]);
    r.client.destroy();
  });

  it('refuses a GenerateDataKey answer whose Plaintext is not the suite key length or whose KeyId is not a key ARN (ERR_KEYRING), and zeroes that plaintext', async () => {
    const local = new LocalKms();
    const { arn } = await local.createKey();
    const cases: [string, (o: Record<string, unknown>) => Record<string, unknown>][] = [
      ['short plaintext', (o) => ({ ...o, plaintext: (o.plaintext as Uint8Array).subarray(0, 31) })],
      ['long plaintext', (o) => ({ ...o, plaintext: Buffer.concat([o.plaintext as Uint8Array, Buffer.alloc(1)]) })],
      ['alias ARN', (o) => ({ ...o, keyId: arn.replace(/key\/.*$/, 'alias/spec') })],
      ['key id', (o) => ({ ...o, keyId: arn.split('/')[1] })],
      ['not an ARN', (o) => ({ ...o, keyId: 'arn:aws:kms:us-east-1:111122223333' })],
    ];
    for (const [name, alter] of cases) {
      const w = altering(local.client(), 'generateDataKey', 1, alter);
      const err = await new KmsKeyring({ keyId: arn, client: w.client }).onEncrypt({ suiteId: 0x0478, context: {} }).catch((e) => e);
      expect(err?.code, name).toBe('ERR_KEYRING');
      const plaintext = w.seen[0]!.plaintext as Uint8Array;
      expect(plaintext.length, name).toBeGreaterThan(0);
      expect(plaintext.every((b) => b === 0), name).toBe(true);
    }
    local.close();
  });

  it('with a data key: Encrypt through the configured client, KeyId = the configured identifier, Plaintext = the data key, EncryptionContext = the input context; no GenerateDataKey', async () => {
    const r = recordingClient(east.url, 'us-east-1');
    const dataKey = randomBytes(32);
    await new KmsKeyring({ keyId: 'alias/spec-a', client: r.client }).onEncrypt({ suiteId: 0x0478, context: CONTEXT, dataKey });
    expect(r.calls.map((c) => c.op)).toEqual(['EncryptCommand']);
    expect(r.calls[0]!.input.KeyId).toBe('alias/spec-a');
    expect(bytes(r.calls[0]!.input.Plaintext)).toEqual(dataKey);
    expect(r.calls[0]!.input.EncryptionContext).toEqual(CONTEXT);
    r.client.destroy();
  });

  it('with a data key: returns that key and one EDK aws-kms / response KeyId / response CiphertextBlob, which KMS decrypts to the key', async () => {
    const r = recordingClient(east.url, 'us-east-1');
    const dataKey = randomBytes(32);
    const out = await new KmsKeyring({ keyId: 'alias/spec-a', client: r.client }).onEncrypt({ suiteId: 0x0478, context: CONTEXT, dataKey });
    expect(out.dataKey).toBe(dataKey);
    expect(out.encryptedDataKeys).toHaveLength(1);
    const edk = out.encryptedDataKeys[0]!;
    const answer = r.calls[0]!.output!;
    expect(edk.providerId).toBe('aws-kms');
    expect(arnText(edk)).toBe(answer.KeyId);
    expect(arnText(edk)).toBe(keyA);
    expect(Buffer.from(edk.ciphertext)).toEqual(bytes(answer.CiphertextBlob));
    const back = await new KmsKeyring({ keyId: keyA, client: r.client }).onDecrypt({ suiteId: 0x0478, context: CONTEXT, encryptedDataKeys: [edk] });
    expect(Buffer.from(back!)).toEqual(dataKey);
    r.client.destroy();
  });

  it('fails with the KMS error when Encrypt fails', async () => {
    const r = recordingClient(east.url, 'us-east-1');
    const err = await new KmsKeyring({ keyId: 'alias/spec-missing', client: r.client })
      .onEncrypt({ suiteId: 0x0478, context: {}, dataKey: randomBytes(32) })
      .catch((e) => e);
    expect(err).toBeInstanceOf(KmsError);
    expect(err.kmsErrorName).toBe('NotFoundException');
    expect(r.calls.map((c) => [c.op, c.error])).toEqual([['EncryptCommand', 'NotFoundException']]);
    r.client.destroy();
  });

  it('refuses an Encrypt answer whose KeyId is not a key ARN (ERR_KEYRING)', async () => {
    const local = new LocalKms();
    const { arn } = await local.createKey();
    for (const keyId of [arn.replace(/key\/.*$/, 'alias/x'), arn.split('/')[1]!, 'alias/x']) {
      const w = altering(local.client(), 'encrypt', 1, (o) => ({ ...o, keyId }));
      await expect(new KmsKeyring({ keyId: arn, client: w.client }).onEncrypt({ suiteId: 0x0478, context: {}, dataKey: randomBytes(32) })).rejects.toMatchObject({
        code: 'ERR_KEYRING',
      });
    }
    local.close();
  });
});

describe('AWS KMS keyring: OnDecrypt', () => {
  async function wrapped(count = 1) {
    const { client } = recordingClient(east.url, 'us-east-1');
    const ring = new KmsKeyring({ keyId: keyA, client });
    const outs = [];
    for (let i = 0; i < count; i++) outs.push(await ring.onEncrypt({ suiteId: 0x0478, context: CONTEXT }));
    client.destroy();
    return outs;
  }

  it('considers only EDKs whose provider id is exactly "aws-kms": others cost no KMS request', async () => {
    const [out] = await wrapped();
    const edk = out!.encryptedDataKeys[0]!;
    const r = recordingClient(east.url, 'us-east-1');
    const ring = new KmsKeyring({ keyId: keyA, client: r.client });
    const others = ['aws-kms-mrk', 'AWS-KMS', 'aws-kms ', ' aws-kms', 'aws', 'raw'].map((providerId) => ({ ...edk, providerId }));
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: CONTEXT, encryptedDataKeys: others })).toBeUndefined();
    expect(r.calls).toEqual([]);
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: CONTEXT, encryptedDataKeys: [...others, edk] })).toEqual(out!.dataKey);
    expect(r.calls).toHaveLength(1);
    r.client.destroy();
  });

  it('an "aws-kms" EDK whose provider info is not a valid key ARN makes OnDecrypt fail (ERR_MALFORMED_MESSAGE) before any KMS request, wherever it stands', async () => {
    const [out] = await wrapped();
    const edk = out!.encryptedDataKeys[0]!;
    const r = recordingClient(east.url, 'us-east-1');
    const ring = new KmsKeyring({ keyId: keyA, client: r.client });
    const alias = keyA.replace(/:key\/.*$/, ':alias/app');
    for (const info of [Buffer.from(alias), Buffer.from(keyA.split('/')[1]!), Buffer.from('not an arn'), Buffer.from([0xff, 0xfe]), Buffer.alloc(0)]) {
      for (const edks of [[{ ...edk, providerInfo: info }], [edk, { ...edk, providerInfo: info }], [{ ...edk, providerInfo: info }, edk]]) {
        await expect(ring.onDecrypt({ suiteId: 0x0478, context: CONTEXT, encryptedDataKeys: edks })).rejects.toMatchObject({ code: 'ERR_MALFORMED_MESSAGE' });
      }
    }
    expect(r.calls).toEqual([]);
    r.client.destroy();
  });

  it('one Decrypt per matching EDK, one at a time, through the configured client: KeyId = the configured key ARN, CiphertextBlob = the EDK ciphertext, EncryptionContext = the input context', async () => {
    const [a, b] = await wrapped(2);
    const bad = { ...a!.encryptedDataKeys[0]!, ciphertext: Buffer.from(a!.encryptedDataKeys[0]!.ciphertext).fill(0, 20, 40) };
    const good = b!.encryptedDataKeys[0]!;
    const r = recordingClient(east.url, 'us-east-1');
    const key = await new KmsKeyring({ keyId: keyA, client: r.client }).onDecrypt({ suiteId: 0x0478, context: CONTEXT, encryptedDataKeys: [bad, good] });
    expect(key).toEqual(b!.dataKey);
    expect(r.calls.map((c) => c.op)).toEqual(['DecryptCommand', 'DecryptCommand']);
    expect(r.maxInFlight()).toBe(1);
    expect(r.calls.map((c) => bytes(c.input.CiphertextBlob))).toEqual([Buffer.from(bad.ciphertext), Buffer.from(good.ciphertext)]);
    for (const c of r.calls) {
      expect(c.input.KeyId).toBe(keyA);
      expect(c.input.EncryptionContext).toEqual(CONTEXT);
    }
    r.client.destroy();
  });

  it('collects the error of a failed Decrypt, goes on to the next EDK, and returns the first key KMS gives without further requests', async () => {
    const [a, b, c] = await wrapped(3);
    // A real ciphertext with its last bytes (the blob's tag) altered: KMS answers InvalidCiphertextException.
    // (Random bytes would name another key 1 time in 256 and be answered IncorrectKeyException.)
    const original = a!.encryptedDataKeys[0]!.ciphertext;
    const bad = { ...a!.encryptedDataKeys[0]!, ciphertext: Buffer.from(original).fill(0x5a, original.length - 8) };
    const r = recordingClient(east.url, 'us-east-1');
    const ring = new KmsKeyring({ keyId: keyA, client: r.client });
    const key = await ring.onDecrypt({ suiteId: 0x0478, context: CONTEXT, encryptedDataKeys: [bad, b!.encryptedDataKeys[0]!, c!.encryptedDataKeys[0]!] });
    expect(key).toEqual(b!.dataKey);
    expect(r.calls.map((x) => x.error ?? 'ok')).toEqual(['InvalidCiphertextException', 'ok']);
    expect(Buffer.from(key!)).toEqual(bytes(r.calls[1]!.output!.Plaintext));
    r.client.destroy();
  });

  it('refuses a Decrypt answer whose Plaintext is not the suite key length: the error is collected and the next EDK tried', async () => {
    const local = new LocalKms();
    const { arn } = await local.createKey();
    const ring0 = new KmsKeyring({ keyId: arn, client: local.client() });
    const one = await ring0.onEncrypt({ suiteId: 0x0478, context: {} });
    const two = await ring0.onEncrypt({ suiteId: 0x0478, context: {} });
    const edks = [one.encryptedDataKeys[0]!, two.encryptedDataKeys[0]!];
    const w = altering(local.client(), 'decrypt', 1, (o) => ({ ...o, plaintext: (o.plaintext as Uint8Array).subarray(0, 16) }));
    expect(await new KmsKeyring({ keyId: arn, client: w.client }).onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: edks })).toEqual(two.dataKey);
    const alone = altering(local.client(), 'decrypt', 1, (o) => ({ ...o, plaintext: Buffer.alloc(33) }));
    const err = await new KmsKeyring({ keyId: arn, client: alone.client }).onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: [edks[0]!] }).catch((e) => e);
    expect(err).toBeInstanceOf(NoDecryptableKeyError);
    expect((err.cause as AggregateError).errors[0].message).toMatch(/33-byte data key/);
    local.close();
  });

  it('refuses a Decrypt answer whose KeyId is not the configured key ARN: the error is collected and the next EDK tried', async () => {
    const local = new LocalKms();
    const { arn } = await local.createKey();
    const other = (await local.createKey()).arn;
    const ring0 = new KmsKeyring({ keyId: arn, client: local.client() });
    const one = await ring0.onEncrypt({ suiteId: 0x0478, context: {} });
    const two = await ring0.onEncrypt({ suiteId: 0x0478, context: {} });
    const edks = [one.encryptedDataKeys[0]!, two.encryptedDataKeys[0]!];
    const w = altering(local.client(), 'decrypt', 1, (o) => ({ ...o, keyId: other }));
    expect(await new KmsKeyring({ keyId: arn, client: w.client }).onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: edks })).toEqual(two.dataKey);
    expect((w.seen[0]!.plaintext as Uint8Array).every((b) => b === 0)).toBe(true);
    const alone = altering(local.client(), 'decrypt', 1, (o) => ({ ...o, keyId: other }));
    await expect(new KmsKeyring({ keyId: arn, client: alone.client }).onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: [edks[0]!] })).rejects.toBeInstanceOf(
      NoDecryptableKeyError,
    );
    local.close();
  });

  it('when no EDK decrypts, fails with an error that holds every collected error', async () => {
    const [a, b] = await wrapped(2);
    const r = recordingClient(east.url, 'us-east-1');
    const ring = new KmsKeyring({ keyId: keyA, client: r.client });
    const edks = [a!.encryptedDataKeys[0]!, { ...b!.encryptedDataKeys[0]!, ciphertext: randomBytes(40) }];
    const err = await ring.onDecrypt({ suiteId: 0x0478, context: { tenant: 'other' }, encryptedDataKeys: edks }).catch((e) => e);
    expect(err).toBeInstanceOf(NoDecryptableKeyError);
    expect(err.code).toBe('ERR_NO_DECRYPTABLE_KEY');
    const errors = (err.cause as AggregateError).errors as KmsError[];
    expect(errors).toHaveLength(2);
    expect(errors.map((e) => e.kmsErrorName)).toEqual(r.calls.map((c) => c.error));
    expect(err.message).toMatch(/InvalidCiphertextException/);
    r.client.destroy();
  });
});

describe('AWS KMS discovery keyring', () => {
  const regions = () => {
    const e = recordingClient(east.url, 'us-east-1');
    const w = recordingClient(west.url, 'eu-west-1');
    const clientForRegion = (region: string) => (region === 'eu-west-1' ? w.client : e.client);
    return { e, w, clientForRegion, destroy: () => (e.client.destroy(), w.client.destroy()) };
  };

  it('implements the keyring interface: an Envelope decrypts with it a message the ESDK wrote under KMS keys in two Regions', async () => {
    const esdk = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
    const writer = new KmsKeyringNode({ generatorKeyId: keyW, keyIds: [keyA], clientProvider: (region?: string) => (region === 'eu-west-1' ? esdkWest : esdkEast) });
    const { result } = await esdk.encrypt(writer, 'from the ESDK', { encryptionContext: { ...CONTEXT } });
    const rg = regions();
    const ring = new KmsKeyring({ discovery: true, clientForRegion: rg.clientForRegion });
    const { plaintext } = await new Envelope({ keyring: ring, cache: false }).decrypt(result, { context: { tenant: 'alpha' } });
    expect(plaintext.toString()).toBe('from the ESDK');
    expect(rg.w.calls.map((c) => c.input.KeyId)).toEqual([keyW]);
    expect(rg.e.calls).toEqual([]);
    rg.destroy();
  });

  it('initialization: a KMS client (options.client or options.clientForRegion), optionally a discovery filter (partition and accounts) and grant tokens; a null client is a TypeError', () => {
    const client = new LocalKms().client();
    expect(new KmsKeyring({ discovery: true, client }).discovery).toBe(true);
    expect(new KmsKeyring({ discovery: true, clientForRegion: () => client }).discovery).toBe(true);
    const f = new KmsKeyring({ discovery: true, client, discoveryFilter: { partition: 'aws', accountIds: ['111122223333'] }, grantTokens: ['t'] });
    expect(f.discoveryFilter).toEqual({ partition: 'aws', accountIds: ['111122223333'] });
    expect(() => new KmsKeyring({ discovery: true, client: null as never })).toThrow(/options\.client/);
    expect(() => new KmsKeyring({ discovery: true, client, discoveryFilter: { partition: '', accountIds: ['1'] } })).toThrow(/partition/);
    expect(() => new KmsKeyring({ discovery: true, client, discoveryFilter: { partition: 'aws', accountIds: [] } })).toThrow(/accountIds/);
  });

  it('OnEncrypt fails (ERR_KEYRING), with or without a data key, and sends nothing to KMS', async () => {
    const r = recordingClient(east.url, 'us-east-1');
    const ring = new KmsKeyring({ discovery: true, client: r.client });
    await expect(ring.onEncrypt({ suiteId: 0x0478, context: {} })).rejects.toMatchObject({ code: 'ERR_KEYRING' });
    await expect(ring.onEncrypt({ suiteId: 0x0478, context: {}, dataKey: randomBytes(32) })).rejects.toMatchObject({ code: 'ERR_KEYRING' });
    expect(r.calls).toEqual([]);
    r.client.destroy();
  });

  it('OnDecrypt considers only EDKs whose provider id is exactly "aws-kms": others cost no KMS request', async () => {
    const out = await new KmsKeyring({ keyId: keyA, client: esdkEast }).onEncrypt({ suiteId: 0x0478, context: CONTEXT });
    const edk = out.encryptedDataKeys[0]!;
    const r = recordingClient(east.url, 'us-east-1');
    const ring = new KmsKeyring({ discovery: true, client: r.client });
    const others = ['aws-kms-mrk', 'AWS-KMS', 'aws-kms ', 'raw'].map((providerId) => ({ ...edk, providerId }));
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: CONTEXT, encryptedDataKeys: others })).toBeUndefined();
    expect(r.calls).toEqual([]);
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: CONTEXT, encryptedDataKeys: [...others, edk] })).toEqual(out.dataKey);
    r.client.destroy();
  });

  it('OnDecrypt: an "aws-kms" EDK whose provider info is not a valid key ARN makes it fail (ERR_MALFORMED_MESSAGE) before any KMS request', async () => {
    const out = await new KmsKeyring({ keyId: keyA, client: esdkEast }).onEncrypt({ suiteId: 0x0478, context: CONTEXT });
    const edk = out.encryptedDataKeys[0]!;
    const rg = regions();
    const ring = new KmsKeyring({ discovery: true, clientForRegion: rg.clientForRegion });
    const alias = keyA.replace(/:key\/.*$/, ':alias/app');
    for (const info of [Buffer.from(alias), Buffer.from('not an arn'), Buffer.from([0xc3, 0x28])]) {
      for (const edks of [[{ ...edk, providerInfo: info }], [edk, { ...edk, providerInfo: info }]]) {
        await expect(ring.onDecrypt({ suiteId: 0x0478, context: CONTEXT, encryptedDataKeys: edks })).rejects.toMatchObject({ code: 'ERR_MALFORMED_MESSAGE' });
      }
    }
    expect([...rg.e.calls, ...rg.w.calls]).toEqual([]);
    rg.destroy();
  });

  it('with a discovery filter, EDKs of another partition or of an account not in the filter cost no KMS request', async () => {
    const outA = await new KmsKeyring({ keyId: keyA, client: esdkEast }).onEncrypt({ suiteId: 0x0478, context: CONTEXT });
    const outW = await new KmsKeyring({ keyId: keyW, client: esdkWest }).onEncrypt({ suiteId: 0x0478, context: CONTEXT });
    const edkA = outA.encryptedDataKeys[0]!;
    const edkW = outW.encryptedDataKeys[0]!;
    const accountA = keyA.split(':')[4]!;
    const otherPartition = { ...edkW, providerInfo: Buffer.from(keyW.replace(/^arn:aws:/, 'arn:aws-cn:')) };
    const rg = regions();
    const ring = new KmsKeyring({ discovery: true, clientForRegion: rg.clientForRegion, discoveryFilter: { partition: 'aws', accountIds: [WEST_ACCOUNT] } });
    // keyA's account is not in the filter; the aws-cn ARN is in the filtered account but another partition.
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: CONTEXT, encryptedDataKeys: [edkA, otherPartition] })).toBeUndefined();
    expect([...rg.e.calls, ...rg.w.calls]).toEqual([]);
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: CONTEXT, encryptedDataKeys: [edkA, otherPartition, edkW] })).toEqual(outW.dataKey);
    expect(rg.w.calls.map((c) => c.input.KeyId)).toEqual([keyW]);
    expect(rg.e.calls).toEqual([]);
    // The same EDKs, filter on keyA's account: only keyA's EDK is tried.
    const onlyA = new KmsKeyring({ discovery: true, clientForRegion: rg.clientForRegion, discoveryFilter: { partition: 'aws', accountIds: [accountA] } });
    expect(await onlyA.onDecrypt({ suiteId: 0x0478, context: CONTEXT, encryptedDataKeys: [edkW, otherPartition, edkA] })).toEqual(outA.dataKey);
    expect(rg.e.calls.map((c) => c.input.KeyId)).toEqual([keyA]);
    expect(rg.w.calls).toHaveLength(1);
    rg.destroy();
  });

  it('OnDecrypt: Decrypt through the client for the ARN\'s Region with KeyId = the provider-info ARN, CiphertextBlob = the EDK ciphertext, EncryptionContext = the input context, GrantTokens = the configured tokens', async () => {
    const outA = await new KmsKeyring({ keyId: keyA, client: esdkEast }).onEncrypt({ suiteId: 0x0478, context: CONTEXT });
    const outW = await new KmsKeyring({ keyId: keyW, client: esdkWest }).onEncrypt({ suiteId: 0x0478, context: CONTEXT });
    const broken = { ...outW.encryptedDataKeys[0]!, ciphertext: randomBytes(60) };
    const rg = regions();
    const ring = new KmsKeyring({ discovery: true, clientForRegion: rg.clientForRegion, grantTokens: [grantToken] });
    const key = await ring.onDecrypt({ suiteId: 0x0478, context: CONTEXT, encryptedDataKeys: [broken, outA.encryptedDataKeys[0]!] });
    expect(key).toEqual(outA.dataKey);
    expect(rg.w.calls).toHaveLength(1);
    expect(rg.e.calls).toHaveLength(1);
    const [cw, ce] = [rg.w.calls[0]!, rg.e.calls[0]!];
    expect(cw.input.KeyId).toBe(keyW);
    expect(ce.input.KeyId).toBe(keyA);
    expect(bytes(cw.input.CiphertextBlob)).toEqual(Buffer.from(broken.ciphertext));
    expect(bytes(ce.input.CiphertextBlob)).toEqual(Buffer.from(outA.encryptedDataKeys[0]!.ciphertext));
    for (const c of [cw, ce]) {
      expect(c.input.EncryptionContext).toEqual(CONTEXT);
      expect(c.input.GrantTokens).toEqual([grantToken]);
    }
    rg.destroy();
  });

  it('refuses a Decrypt answer whose KeyId is not the provider-info ARN or whose Plaintext is not the suite key length: the error is collected and the next EDK tried', async () => {
    const local = new LocalKms();
    const { arn } = await local.createKey();
    const other = (await local.createKey()).arn;
    const writer = new KmsKeyring({ keyId: arn, client: local.client() });
    const one = await writer.onEncrypt({ suiteId: 0x0478, context: {} });
    const two = await writer.onEncrypt({ suiteId: 0x0478, context: {} });
    const edks = [one.encryptedDataKeys[0]!, two.encryptedDataKeys[0]!];
    for (const alter of [(o: Record<string, unknown>) => ({ ...o, keyId: other }), (o: Record<string, unknown>) => ({ ...o, plaintext: Buffer.alloc(24) })]) {
      const w = altering(local.client(), 'decrypt', 1, alter);
      const ring = new KmsKeyring({ discovery: true, client: w.client });
      expect(await ring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: edks })).toEqual(two.dataKey);
      expect(ring.kmsCalls).toBe(2);
      const alone = altering(local.client(), 'decrypt', 1, alter);
      await expect(new KmsKeyring({ discovery: true, client: alone.client }).onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: [edks[0]!] })).rejects.toMatchObject({
        code: 'ERR_NO_DECRYPTABLE_KEY',
      });
    }
    local.close();
  });

  it('returns the first key KMS gives without further requests; when nothing decrypts, the error holds every collected error', async () => {
    const outA = await new KmsKeyring({ keyId: keyA, client: esdkEast }).onEncrypt({ suiteId: 0x0478, context: CONTEXT });
    const outB = await new KmsKeyring({ keyId: keyB, client: esdkEast }).onEncrypt({ suiteId: 0x0478, context: CONTEXT });
    const r = recordingClient(east.url, 'us-east-1');
    const ring = new KmsKeyring({ discovery: true, client: r.client });
    const edks = [outA.encryptedDataKeys[0]!, outB.encryptedDataKeys[0]!];
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: CONTEXT, encryptedDataKeys: edks })).toEqual(outA.dataKey);
    expect(r.calls).toHaveLength(1);
    r.calls.length = 0;
    const err = await ring.onDecrypt({ suiteId: 0x0478, context: { tenant: 'beta' }, encryptedDataKeys: edks }).catch((e) => e);
    expect(err).toBeInstanceOf(NoDecryptableKeyError);
    const errors = (err.cause as AggregateError).errors as KmsError[];
    expect(errors).toHaveLength(2);
    expect(errors.map((e) => e.kmsErrorName)).toEqual(['InvalidCiphertextException', 'InvalidCiphertextException']);
    expect(r.calls.map((c) => c.input.KeyId)).toEqual([keyA, keyB]);
    r.client.destroy();
  });
});
