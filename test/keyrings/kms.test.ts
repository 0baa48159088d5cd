/** KmsKeyring and toKmsClient logic against an in-memory fake KMS (see fake-kms.ts). */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KmsKeyring, MultiKeyring, RawAesKeyring, toKmsClient } from '../../src/keyrings/index.js';
import { KeyringError, KmsError, NoDecryptableKeyError } from '../../src/errors.js';
import { FakeKms } from './fake-kms.js';

const ctx = { tenant: 'a', 'é': '😀' };

function edkArns(edks: { providerInfo: Uint8Array }[]): string[] {
  return edks.map((e) => Buffer.from(e.providerInfo).toString());
}

describe('KmsKeyring: encrypt', () => {
  it('GenerateDataKey with the suite key length and the context; EDK = aws-kms / key ARN / blob', async () => {
    const kms = new FakeKms();
    const arn = kms.createKey('alias/app');
    const ring = new KmsKeyring({ keyId: 'alias/app', client: kms });
    const out = await ring.onEncrypt({ suiteId: 0x0478, context: ctx });
    expect(out.dataKey.length).toBe(32);
    expect(out.encryptedDataKeys).toHaveLength(1);
    expect(out.encryptedDataKeys[0]!.providerId).toBe('aws-kms');
    expect(edkArns(out.encryptedDataKeys)).toEqual([arn]);
    expect(kms.requests).toEqual([{ op: 'GenerateDataKey', keyId: 'alias/app' }]);
    expect(ring.kmsCalls).toBe(1);
    // The blob is bound to the context: KMS decrypts it with the same context only.
    await expect(kms.decrypt({ ciphertextBlob: out.encryptedDataKeys[0]!.ciphertext, encryptionContext: ctx })).resolves.toMatchObject({ keyId: arn });
    await expect(kms.decrypt({ ciphertextBlob: out.encryptedDataKeys[0]!.ciphertext })).rejects.toThrow();
    // 16-byte suite: 16-byte key.
    expect((await ring.onEncrypt({ suiteId: 0x0014, context: {} })).dataKey.length).toBe(16);
  });

  it('keyIds: generator + Encrypt for each further key, in two regions via clientForRegion', async () => {
    const east = new FakeKms('us-east-1');
    const west = new FakeKms('eu-west-1');
    const a = east.createKey();
    const b = west.createKey();
    const asked: string[] = [];
    const ring = new KmsKeyring({
      keyIds: [a, b],
      clientForRegion: (r) => {
        asked.push(r);
        return r === 'us-east-1' ? east : west;
      },
    });
    const out = await ring.onEncrypt({ suiteId: 0x0478, context: ctx });
    expect(edkArns(out.encryptedDataKeys)).toEqual([a, b]);
    expect(east.requests.map((r) => r.op)).toEqual(['GenerateDataKey']);
    expect(west.requests.map((r) => r.op)).toEqual(['Encrypt']);
    expect(ring.kmsCalls).toBe(2);
    await ring.onEncrypt({ suiteId: 0x0478, context: ctx });
    expect(asked.sort()).toEqual(['eu-west-1', 'us-east-1']); // one client per region, cached

    // Each region alone can decrypt.
    const onlyWest = new KmsKeyring({ keyId: b, client: west });
    expect(await onlyWest.onDecrypt({ suiteId: 0x0478, context: ctx, encryptedDataKeys: out.encryptedDataKeys })).toEqual(out.dataKey);
    expect(onlyWest.kmsCalls).toBe(1); // the us-east-1 EDK is not even tried
  });

  it('with a data key from an earlier keyring only calls Encrypt, for every key', async () => {
    const kms = new FakeKms();
    const a = kms.createKey();
    const b = kms.createKey();
    const dataKey = randomBytes(32);
    const ring = new KmsKeyring({ keyIds: [a, b], client: kms });
    const out = await ring.onEncrypt({ suiteId: 0x0478, context: {}, dataKey });
    expect(out.dataKey).toBe(dataKey);
    expect(kms.requests.map((r) => r.op)).toEqual(['Encrypt', 'Encrypt']);
    expect(edkArns(out.encryptedDataKeys)).toEqual([a, b]);
    await expect(ring.onEncrypt({ suiteId: 0x0478, context: {}, dataKey: randomBytes(16) })).rejects.toBeInstanceOf(KeyringError);
  });

  it('as a MultiKeyring child next to a raw AES generator', async () => {
    const kms = new FakeKms();
    const arn = kms.createKey();
    const kmsRing = new KmsKeyring({ keyId: arn, client: kms });
    const multi = new MultiKeyring({ generator: new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', key: randomBytes(32) }), children: [kmsRing] });
    const out = await multi.onEncrypt({ suiteId: 0x0478, context: ctx });
    expect(out.encryptedDataKeys.map((e) => e.providerId)).toEqual(['n', 'aws-kms']);
    expect(multi.kmsCalls).toBe(1);
    expect(await kmsRing.onDecrypt({ suiteId: 0x0478, context: ctx, encryptedDataKeys: out.encryptedDataKeys })).toEqual(out.dataKey);
    expect(multi.kmsCalls).toBe(2);
  });

  it('rejects a wrong-length data key and a non-ARN KeyId from KMS; KMS errors become KmsError', async () => {
    const kms = new FakeKms();
    const arn = kms.createKey();
    kms.wrongLength = 31;
    await expect(new KmsKeyring({ keyId: arn, client: kms }).onEncrypt({ suiteId: 0x0478, context: {} })).rejects.toThrow(/31-byte/);
    kms.wrongLength = undefined;
    const bad = { ...kms, generateDataKey: async () => ({ keyId: 'alias/x', plaintext: randomBytes(32), ciphertextBlob: randomBytes(10) }), encrypt: kms.encrypt, decrypt: kms.decrypt };
    await expect(new KmsKeyring({ keyId: arn, client: bad }).onEncrypt({ suiteId: 0x0478, context: {} })).rejects.toThrow(/not a key ARN/);
    const err = await new KmsKeyring({ keyId: 'alias/missing', client: kms }).onEncrypt({ suiteId: 0x0478, context: {} }).catch((e) => e);
    expect(err).toBeInstanceOf(KmsError);
    expect(err.kmsErrorName).toBe('NotFoundException');
    expect(err.code).toBe('ERR_KMS');
  });
});

describe('KmsKeyring: decrypt', () => {
  async function setup() {
    const kms = new FakeKms();
    const a = kms.createKey('alias/a');
    const b = kms.createKey('alias/b');
    const out = await new KmsKeyring({ keyId: a, client: kms }).onEncrypt({ suiteId: 0x0478, context: ctx });
    kms.requests.length = 0;
    return { kms, a, b, out, input: { suiteId: 0x0478, context: ctx, encryptedDataKeys: out.encryptedDataKeys } };
  }

  it('key ARN: decrypts its own EDK with KeyId = ARN, skips others without calling KMS', async () => {
    const { kms, a, b, out, input } = await setup();
    const mine = new KmsKeyring({ keyId: a, client: kms });
    expect(await mine.onDecrypt(input)).toEqual(out.dataKey);
    expect(kms.requests).toEqual([{ op: 'Decrypt', keyId: a }]);
    const other = new KmsKeyring({ keyId: b, client: kms });
    expect(await other.onDecrypt(input)).toBeUndefined();
    expect(other.kmsCalls).toBe(0);
  });

  it('bare key id: decrypts nothing by default (no KMS call); with resolveOnDecrypt it matches the ARN key id, KMS confirms the ARN', async () => {
    const { kms, a, b, out, input } = await setup();
    const id = a.split('/')[1]!;
    const strict = new KmsKeyring({ keyId: id, client: kms });
    await expect(strict.onDecrypt(input)).rejects.toThrow(/resolveOnDecrypt: true/);
    expect(kms.requests).toEqual([]);
    const ring = new KmsKeyring({ keyId: id, client: kms, resolveOnDecrypt: true });
    expect(await ring.onDecrypt(input)).toEqual(out.dataKey);
    expect(kms.requests).toEqual([{ op: 'Decrypt', keyId: id }]);
    const other = new KmsKeyring({ keyId: b.split('/')[1]!, client: kms, resolveOnDecrypt: true });
    expect(await other.onDecrypt(input)).toBeUndefined();
    expect(other.kmsCalls).toBe(0);
  });

  it('alias: nothing by default; with resolveOnDecrypt KMS decides, IncorrectKeyException means "not ours" (undefined), counted as a call', async () => {
    const { kms, out, input } = await setup();
    await expect(new KmsKeyring({ keyId: 'alias/a', client: kms }).onDecrypt(input)).rejects.toThrow(/resolveOnDecrypt: true/);
    expect(kms.requests).toEqual([]);
    const opts = { client: kms, resolveOnDecrypt: true };
    const ring = new KmsKeyring({ keyId: 'alias/a', ...opts });
    expect(await ring.onDecrypt(input)).toEqual(out.dataKey);
    expect(kms.requests).toEqual([{ op: 'Decrypt', keyId: 'alias/a' }]);
    const other = new KmsKeyring({ keyId: 'alias/b', ...opts });
    expect(await other.onDecrypt(input)).toBeUndefined();
    expect(other.kmsCalls).toBe(1);
    // Alias ARN in another account: not even asked.
    const foreign = new KmsKeyring({ keyId: 'arn:aws:kms:us-east-1:999999999999:alias/a', ...opts });
    expect(await foreign.onDecrypt(input)).toBeUndefined();
    expect(foreign.kmsCalls).toBe(0);
    const aliasArn = new KmsKeyring({ keyId: 'arn:aws:kms:us-east-1:111122223333:alias/a', ...opts });
    expect(await aliasArn.onDecrypt(input)).toEqual(out.dataKey);
  });

  it('wrong context: NoDecryptableKeyError whose cause holds the KMS error; no key bytes in messages', async () => {
    const { kms, a, out, input } = await setup();
    const ring = new KmsKeyring({ keyId: a, client: kms });
    const err = await ring.onDecrypt({ ...input, context: { tenant: 'b' } }).catch((e) => e);
    expect(err).toBeInstanceOf(NoDecryptableKeyError);
    expect(err.message).toMatch(/InvalidCiphertextException/);
    const causes = (err.cause as AggregateError).errors;
    expect(causes).toHaveLength(1);
    expect(causes[0]).toBeInstanceOf(KmsError);
    expect(causes[0].kmsErrorName).toBe('InvalidCiphertextException');
    const hex = Buffer.from(out.dataKey).toString('hex');
    expect(JSON.stringify([err.message, causes[0].message])).not.toContain(hex);
    // Missing context fails the same way.
    await expect(ring.onDecrypt({ ...input, context: {} })).rejects.toBeInstanceOf(NoDecryptableKeyError);
  });

  it('first success wins; failures before it are not reported', async () => {
    const { kms, a, out, input } = await setup();
    const good = out.encryptedDataKeys[0]!;
    const broken = { ...good, ciphertext: Buffer.from(good.ciphertext).fill(0, 60) };
    const raw = { ...good, providerId: 'raw' };
    const ring = new KmsKeyring({ keyId: a, client: kms });
    expect(await ring.onDecrypt({ ...input, encryptedDataKeys: [raw, broken, good] })).toEqual(out.dataKey);
    expect(ring.kmsCalls).toBe(2);
    await expect(ring.onDecrypt({ ...input, encryptedDataKeys: [raw, broken] })).rejects.toBeInstanceOf(NoDecryptableKeyError);
    expect(await ring.onDecrypt({ ...input, encryptedDataKeys: [raw] })).toBeUndefined();
    // An aws-kms EDK naming no key ARN fails the call instead of being skipped (test/spec/keyring-kms.test.ts).
    const notArn = { ...good, providerInfo: Buffer.from('alias/a') };
    await expect(ring.onDecrypt({ ...input, encryptedDataKeys: [notArn, good] })).rejects.toMatchObject({ code: 'ERR_MALFORMED_MESSAGE' });
  });

  it('checks the KeyId and plaintext length KMS answers with', async () => {
    const { kms, a, input } = await setup();
    kms.lieAboutKeyId = true;
    for (const ring of [new KmsKeyring({ keyId: a, client: kms }), new KmsKeyring({ keyId: 'alias/a', client: kms, resolveOnDecrypt: true })]) {
      const err = await ring.onDecrypt(input).catch((e) => e);
      expect(err).toBeInstanceOf(NoDecryptableKeyError);
      expect((err.cause as AggregateError).errors[0].message).toMatch(/other than the one named/);
    }
    kms.lieAboutKeyId = false;
    kms.wrongLength = 16;
    await expect(new KmsKeyring({ keyId: a, client: kms }).onDecrypt(input)).rejects.toBeInstanceOf(NoDecryptableKeyError);
  });

  it('tries each configured key: keyIds [other, mine]', async () => {
    const { kms, a, b, out, input } = await setup();
    const ring = new KmsKeyring({ keyIds: [b, a], client: kms });
    expect(await ring.onDecrypt(input)).toEqual(out.dataKey);
    expect(kms.requests).toEqual([{ op: 'Decrypt', keyId: a }]);
  });
});

describe('KmsKeyring: discovery', () => {
  async function twoAccounts() {
    const k1 = new FakeKms('us-east-1', '111111111111');
    const k2 = new FakeKms('eu-west-1', '222222222222');
    const a = k1.createKey();
    const b = k2.createKey();
    const out1 = await new KmsKeyring({ keyId: a, client: k1 }).onEncrypt({ suiteId: 0x0478, context: ctx });
    const out2 = await new KmsKeyring({ keyId: b, client: k2 }).onEncrypt({ suiteId: 0x0478, context: ctx });
    const clientForRegion = (r: string) => (r === 'us-east-1' ? k1 : k2);
    return { k1, k2, out1, out2, clientForRegion };
  }

  it('decrypts any aws-kms EDK with the ARN it names, picking the region client', async () => {
    const { out1, out2, clientForRegion } = await twoAccounts();
    const ring = new KmsKeyring({ discovery: true, clientForRegion });
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: ctx, encryptedDataKeys: out1.encryptedDataKeys })).toEqual(out1.dataKey);
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: ctx, encryptedDataKeys: out2.encryptedDataKeys })).toEqual(out2.dataKey);
    expect(ring.kmsCalls).toBe(2);
    await expect(ring.onEncrypt({ suiteId: 0x0478, context: ctx })).rejects.toBeInstanceOf(KeyringError);
  });

  it('discoveryFilter: skips other accounts and partitions without calling KMS', async () => {
    const { out1, out2, clientForRegion } = await twoAccounts();
    const ring = new KmsKeyring({ discovery: true, clientForRegion, discoveryFilter: { accountIds: ['222222222222'], partition: 'aws' } });
    const both = [...out1.encryptedDataKeys, ...out2.encryptedDataKeys];
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: ctx, encryptedDataKeys: both })).toEqual(out2.dataKey);
    expect(ring.kmsCalls).toBe(1);
    expect(await ring.onDecrypt({ suiteId: 0x0478, context: ctx, encryptedDataKeys: out1.encryptedDataKeys })).toBeUndefined();
    const cn = new KmsKeyring({ discovery: true, clientForRegion, discoveryFilter: { accountIds: ['222222222222'], partition: 'aws-cn' } });
    expect(await cn.onDecrypt({ suiteId: 0x0478, context: ctx, encryptedDataKeys: both })).toBeUndefined();
    expect(cn.kmsCalls).toBe(0);
  });
});

describe('KmsKeyring: options', () => {
  const kms = new FakeKms();
  it('validates at construction with TypeError/RangeError naming the option', () => {
    expect(() => new KmsKeyring({ client: kms })).toThrow(/exactly one of/);
    expect(() => new KmsKeyring({ keyId: 'alias/a', keyIds: ['alias/b'], client: kms })).toThrow(/exactly one of/);
    expect(() => new KmsKeyring({ keyId: 'alias/a', discovery: true, client: kms })).toThrow(/exactly one of/);
    expect(() => new KmsKeyring({ keyId: '', client: kms })).toThrow(/options\.keyId/);
    expect(() => new KmsKeyring({ keyId: 'arn:aws:s3:::bucket', client: kms })).toThrow(/options\.keyId/);
    expect(() => new KmsKeyring({ keyId: 'alias/', client: kms })).toThrow(/options\.keyId/);
    expect(() => new KmsKeyring({ keyIds: [], client: kms })).toThrow(/options\.keyIds/);
    expect(() => new KmsKeyring({ keyIds: ['alias/a', 7 as never], client: kms })).toThrow(/options\.keyIds\[1\]/);
    expect(() => new KmsKeyring({ keyIds: ['alias/a', 'alias/a'], client: kms })).toThrow(/duplicates/);
    expect(() => new KmsKeyring({ keyId: 'alias/a', client: {} as never })).toThrow(/options\.client/);
    expect(() => new KmsKeyring({ keyId: 'alias/a', client: kms, grantTokens: [''] })).toThrow(/options\.grantTokens/);
    expect(() => new KmsKeyring({ keyId: 'alias/a', client: kms, discoveryFilter: { accountIds: ['1'], partition: 'aws' } })).toThrow(/discoveryFilter/);
    expect(() => new KmsKeyring({ discovery: true, client: kms, discoveryFilter: { accountIds: [], partition: 'aws' } })).toThrow(/accountIds/);
    expect(() => new KmsKeyring({ discovery: true, client: kms, discoveryFilter: { accountIds: ['1'], partition: '' } })).toThrow(/partition/);
    expect(() => new KmsKeyring({ keyId: 'alias/a', clientForRegion: () => kms })).toThrow(/options\.client is required/);
    expect(() => new KmsKeyring({ keyId: 'alias/a', clientForRegion: 5 as never, client: kms })).toThrow(/clientForRegion/);
    expect(() => new KmsKeyring({ keyId: 'x'.repeat(3000), client: kms })).toThrow(RangeError);
  });

  it('sends grant tokens with every request', async () => {
    const seen: unknown[] = [];
    const f = new FakeKms();
    const arn = f.createKey();
    const spy = {
      generateDataKey: (i: Parameters<FakeKms['generateDataKey']>[0] & { grantTokens?: string[] }) => (seen.push(i.grantTokens), f.generateDataKey(i)),
      encrypt: (i: Parameters<FakeKms['encrypt']>[0] & { grantTokens?: string[] }) => (seen.push(i.grantTokens), f.encrypt(i)),
      decrypt: (i: Parameters<FakeKms['decrypt']>[0] & { grantTokens?: string[] }) => (seen.push(i.grantTokens), f.decrypt(i)),
    };
    const ring = new KmsKeyring({ keyId: arn, client: spy, grantTokens: ['g1', 'g2'] });
    const out = await ring.onEncrypt({ suiteId: 0x0478, context: {} });
    await ring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: out.encryptedDataKeys });
    expect(seen).toEqual([['g1', 'g2'], ['g1', 'g2']]);
  });
});

describe('toKmsClient', () => {
  it('wraps an SDK-style client (send) and maps its errors to KmsError with the AWS name', async () => {
    const sent: { name: string; input: Record<string, unknown> }[] = [];
    const arn = 'arn:aws:kms:us-east-1:111122223333:key/k';
    const sdkLike = {
      async send(cmd: { constructor: { name: string }; input: Record<string, unknown> }) {
        sent.push({ name: cmd.constructor.name, input: cmd.input });
        if (cmd.constructor.name === 'DecryptCommand') {
          throw Object.assign(new Error('The ciphertext refers to a customer master key that does not exist'), { name: 'NotFoundException', $metadata: {} });
        }
        if (cmd.constructor.name === 'EncryptCommand') return { KeyId: arn, CiphertextBlob: new Uint8Array([1]) };
        return { KeyId: arn, Plaintext: new Uint8Array(32), CiphertextBlob: new Uint8Array([2]) };
      },
    };
    const c = toKmsClient(sdkLike);
    expect(toKmsClient(c)).toBe(c); // not wrapped twice
    const g = await c.generateDataKey({ keyId: 'alias/a', numberOfBytes: 32, encryptionContext: { a: 'b' }, grantTokens: ['t'] });
    expect(g.keyId).toBe(arn);
    await c.encrypt({ keyId: 'alias/a', plaintext: new Uint8Array(32), encryptionContext: {} });
    const err = await c.decrypt({ keyId: 'alias/a', ciphertextBlob: new Uint8Array(3) }).catch((e) => e);
    expect(err).toBeInstanceOf(KmsError);
    expect(err.kmsErrorName).toBe('NotFoundException');
    expect(err.message).toMatch(/^KMS Decrypt failed: NotFoundException: /);
    expect(err.cause).toBeUndefined();
    expect(c.kmsCalls).toBe(3);
    expect(sent.map((s) => s.name)).toEqual(['GenerateDataKeyCommand', 'EncryptCommand', 'DecryptCommand']);
    expect(sent[0]!.input).toEqual({ KeyId: 'alias/a', NumberOfBytes: 32, EncryptionContext: { a: 'b' }, GrantTokens: ['t'] });
    expect(sent[1]!.input.EncryptionContext).toBeUndefined(); // empty context = no context, as in KMS
  });

  it('rejects incomplete answers and bad clients', async () => {
    const c = toKmsClient({ send: async () => ({ KeyId: 'arn:aws:kms:r:1:key/k' }) }, 'options.client');
    await expect(c.generateDataKey({ keyId: 'k', numberOfBytes: 32 })).rejects.toMatchObject({ kmsErrorName: 'MalformedResponse' });
    expect(() => toKmsClient(null)).toThrow(TypeError);
    expect(() => toKmsClient({ generateDataKey() {} }, 'options.client')).toThrow(/options\.client/);
    // A refused answer that carries a plaintext key (no KeyId here) has that key wiped.
    for (const op of ['decrypt', 'generateDataKey'] as const) {
      const plaintext = Buffer.alloc(32, 7);
      const d = toKmsClient({ send: async () => ({ Plaintext: plaintext, CiphertextBlob: new Uint8Array(8) }) }, 'options.client');
      const call = op === 'decrypt' ? d.decrypt({ keyId: 'k', ciphertextBlob: new Uint8Array(8) }) : d.generateDataKey({ keyId: 'k', numberOfBytes: 32 });
      await expect(call).rejects.toMatchObject({ kmsErrorName: 'MalformedResponse' });
      expect(plaintext.every((b) => b === 0)).toBe(true);
    }
  });

  it('maps local KMS service errors (type) and network errors (code)', async () => {
    const f = new FakeKms();
    const c = toKmsClient(f);
    await expect(c.decrypt({ ciphertextBlob: new Uint8Array(1) })).rejects.toMatchObject({ kmsErrorName: 'InvalidCiphertextException' });
    const net = toKmsClient({
      generateDataKey: async () => {
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
      },
      encrypt: f.encrypt,
      decrypt: f.decrypt,
    });
    await expect(net.generateDataKey({ keyId: 'k', numberOfBytes: 32 })).rejects.toMatchObject({ kmsErrorName: 'ECONNREFUSED', code: 'ERR_KMS' });
  });
});
