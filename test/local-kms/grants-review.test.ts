/**
 * Grant defects found in review: a SourceArn constraint must never be dropped (the local KMS has
 * no AWS service acting for a resource, so such a grant allows nothing but its own retirement),
 * unknown constraint members are refused instead of ignored, constraint size is bounded, a failing
 * background task on one key does not fail every request, and constraint maps survive the JSON
 * encoder with a "__proto__" key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateGrantCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  KMSClient,
  ListGrantsCommand,
  RetireGrantCommand,
} from '@aws-sdk/client-kms';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { LocalKmsService } from '../../src/local-kms/service.js';
import { MemoryStore, type KmsStore } from '../../src/local-kms/store.js';
import type { KeyRecord } from '../../src/local-kms/model.js';
import type { Caller } from '../../src/local-kms/policy-types.js';
import { ACCOUNT, expectAwsError, tempDir, errorOf } from './helpers.js';

const ids = {
  root: { key: 'AKIAREVIEWROOT000001', secret: 'review-root-secret-1', arn: `arn:aws:iam::${ACCOUNT}:root` },
  app: { key: 'AKIAREVIEWAPP0000001', secret: 'review-app-secret-01', arn: `arn:aws:iam::${ACCOUNT}:role/ReviewApp` },
} as const;
const alice: Caller = { arn: `arn:aws:iam::${ACCOUNT}:user/alice`, account: ACCOUNT };


const tmp = tempDir('lkms-grants-review-');
let server: LocalKmsServer;
const client = (who: keyof typeof ids) =>
  new KMSClient({ endpoint: server.url, region: 'us-east-1', credentials: { accessKeyId: ids[who].key, secretAccessKey: ids[who].secret }, maxAttempts: 1 });

beforeAll(async () => {
  const principalsFile = join(tmp.dir, 'principals.json');
  writeFileSync(principalsFile, JSON.stringify(Object.fromEntries(Object.values(ids).map((p) => [p.key, { arn: p.arn, secretAccessKey: p.secret }]))));
  server = await startLocalKmsServer({ port: 0, principalsFile, strictPrincipals: true, accountId: ACCOUNT });
});

afterAll(async () => {
  await server?.close();
  tmp.cleanup();
});

describe('SourceArn grant constraint', () => {
  it('over HTTP: stored and listed, and the grantee gets nothing through the grant but retiring it', async () => {
    const root = client('root');
    const app = client('app');
    const keyId = (await root.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const sourceArn = 'arn:aws:s3:::only-this-bucket';
    const created = await root.send(
      new CreateGrantCommand({
        KeyId: keyId,
        GranteePrincipal: ids.app.arn,
        Operations: ['Encrypt', 'Decrypt', 'GenerateDataKey', 'DescribeKey', 'RetireGrant'],
        Constraints: { SourceArn: sourceArn },
      }),
    );
    const listed = await root.send(new ListGrantsCommand({ KeyId: keyId }));
    expect(listed.Grants!.map((g) => g.Constraints)).toEqual([{ SourceArn: sourceArn }]);
    // No request here is made on behalf of an AWS resource, so the constraint never holds.
    await expectAwsError(app.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' })), 'AccessDeniedException');
    await expectAwsError(app.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') })), 'AccessDeniedException');
    await expectAwsError(app.send(new DescribeKeyCommand({ KeyId: keyId })), 'AccessDeniedException');
    const ct = await root.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') }));
    await expectAwsError(app.send(new DecryptCommand({ CiphertextBlob: ct.CiphertextBlob })), 'AccessDeniedException');
    // The constraint does not apply to RetireGrant (API Reference, GrantConstraints).
    await app.send(new RetireGrantCommand({ GrantToken: created.GrantToken! }));
    expect((await root.send(new ListGrantsCommand({ KeyId: keyId }))).Grants).toEqual([]);
  });

  it('in process: the same, also on an asymmetric key, and a grant for CreateGrant cannot be used either', async () => {
    const kms = new LocalKmsService({ accountId: ACCOUNT });
    const keyId = ((await kms.call('CreateKey', {})).KeyMetadata as { KeyId: string }).KeyId;
    await kms.call('CreateGrant', { KeyId: keyId, GranteePrincipal: alice.arn, Operations: ['GenerateDataKey', 'CreateGrant'], Constraints: { SourceArn: 'arn:aws:s3:::bucket-1' } });
    expect(await errorOf(kms.call('GenerateDataKey', { KeyId: keyId, KeySpec: 'AES_256' }, alice))).toBe('AccessDeniedException');
    expect(await errorOf(kms.call('CreateGrant', { KeyId: keyId, GranteePrincipal: alice.arn, Operations: ['GenerateDataKey'], Constraints: { SourceArn: 'arn:aws:s3:::bucket-1' } }, alice))).toBe('AccessDeniedException');
    const grants = (await kms.call('ListGrants', { KeyId: keyId })).Grants as { Constraints?: unknown }[];
    expect(grants.map((g) => g.Constraints)).toEqual([{ SourceArn: 'arn:aws:s3:::bucket-1' }]);
    // A named retry must match the SourceArn too.
    const a = await kms.call('CreateGrant', { KeyId: keyId, GranteePrincipal: alice.arn, Operations: ['Decrypt'], Name: 'n', Constraints: { SourceArn: 'arn:aws:s3:::bucket-1' } });
    const b = await kms.call('CreateGrant', { KeyId: keyId, GranteePrincipal: alice.arn, Operations: ['Decrypt'], Name: 'n', Constraints: { SourceArn: 'arn:aws:s3:::bucket-2' } });
    expect(b.GrantId).not.toBe(a.GrantId);
    const rsa = ((await kms.call('CreateKey', { KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' })).KeyMetadata as { KeyId: string }).KeyId;
    await kms.call('CreateGrant', { KeyId: rsa, GranteePrincipal: alice.arn, Operations: ['Sign', 'GetPublicKey'], Constraints: { SourceArn: 'arn:aws:s3:::bucket-1' } });
    expect(await errorOf(kms.call('GetPublicKey', { KeyId: rsa }, alice))).toBe('AccessDeniedException');
    expect(await errorOf(kms.call('Sign', { KeyId: rsa, Message: Buffer.from('m'), SigningAlgorithm: 'RSASSA_PSS_SHA_256' }, alice))).toBe('AccessDeniedException');
    kms.close();
  });

  it('a SourceArn that is not a string or not ARN-sized, and unknown constraint members, are refused (HTTP and in process)', async () => {
    const kms = new LocalKmsService({ accountId: ACCOUNT });
    const keyId = ((await kms.call('CreateKey', {})).KeyMetadata as { KeyId: string }).KeyId;
    const base = { KeyId: keyId, GranteePrincipal: alice.arn, Operations: ['Decrypt'] };
    expect(await errorOf(kms.call('CreateGrant', { ...base, Constraints: { SourceArn: 7 } }))).toBe('ValidationException');
    expect(await errorOf(kms.call('CreateGrant', { ...base, Constraints: { SourceArn: 'arn:aws:s3:::b' } }))).toBe('ValidationException');
    expect(await errorOf(kms.call('CreateGrant', { ...base, Constraints: { SourceArn: `arn:aws:s3:::${'b'.repeat(2048)}` } }))).toBe('ValidationException');
    expect(await errorOf(kms.call('CreateGrant', { ...base, Constraints: { SourceAccount: ACCOUNT } }))).toBe('UnsupportedOperationException');
    expect((await kms.call('ListGrants', { KeyId: keyId })).Grants).toEqual([]);
    kms.close();

    await expectAwsError(
      client('root').send(new CreateGrantCommand({ KeyId: (await client('root').send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!, GranteePrincipal: ids.app.arn, Operations: ['Decrypt'], Constraints: { SourceArn: 42 as unknown as string } })),
      'SerializationException',
    );
    // The SDK sends only members it knows, so an unknown one goes over raw HTTP (a server without
    // a principals file takes unsigned requests as the account root).
    const open = await startLocalKmsServer({ port: 0, accountId: ACCOUNT });
    try {
      const post = async (op: string, body: unknown): Promise<[number, Record<string, unknown>]> => {
        const res = await fetch(open.url, {
          method: 'POST',
          headers: { 'X-Amz-Target': `TrentService.${op}`, 'Content-Type': 'application/x-amz-json-1.1' },
          body: JSON.stringify(body),
        });
        return [res.status, (await res.json()) as Record<string, unknown>];
      };
      const [, ck] = await post('CreateKey', {});
      const key = (ck.KeyMetadata as { KeyId: string }).KeyId;
      const [status, body] = await post('CreateGrant', { KeyId: key, GranteePrincipal: alice.arn, Operations: ['Decrypt'], Constraints: { SourceAccount: ACCOUNT } });
      expect([status, body.__type]).toEqual([400, 'UnsupportedOperationException']);
      expect(String(body.message)).toContain('SourceAccount');
      expect((await post('ListGrants', { KeyId: key }))[1].Grants).toEqual([]);
    } finally {
      await open.close();
    }
  });
});

describe('constraint size', () => {
  it('each encryption context constraint holds at most 384 characters of keys and values together (ValidationException)', async () => {
    const kms = new LocalKmsService({ accountId: ACCOUNT });
    const keyId = ((await kms.call('CreateKey', {})).KeyMetadata as { KeyId: string }).KeyId;
    const base = { KeyId: keyId, GranteePrincipal: alice.arn, Operations: ['Decrypt'] };
    const pairs = (n: number, keyLen: number, valueLen: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [String(i).padEnd(keyLen, 'k'), 'v'.repeat(valueLen)]));
    // Long keys with short values were unbounded before.
    expect(await errorOf(kms.call('CreateGrant', { ...base, Constraints: { EncryptionContextSubset: { ['k'.repeat(385)]: 'v' } } }))).toBe('ValidationException');
    expect(await errorOf(kms.call('CreateGrant', { ...base, Constraints: { EncryptionContextEquals: pairs(8, 40, 10) } }))).toBe('ValidationException');
    expect(await errorOf(kms.call('CreateGrant', { ...base, Constraints: { EncryptionContextSubset: pairs(1, 1_000_000, 1) } }))).toBe('ValidationException');
    expect((await kms.call('ListGrants', { KeyId: keyId })).Grants).toEqual([]);
    // At the limit: 8 pairs of 48 characters each, in each of the two constraints.
    await kms.call('CreateGrant', { ...base, Constraints: { EncryptionContextSubset: pairs(8, 40, 8), EncryptionContextEquals: pairs(8, 8, 40) } });
    expect((await kms.call('ListGrants', { KeyId: keyId })).Grants).toHaveLength(1);
    kms.close();
  });

  it('over HTTP a constraint key of 100,000 characters is a ValidationException', async () => {
    const root = client('root');
    const keyId = (await root.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    await expectAwsError(
      root.send(new CreateGrantCommand({ KeyId: keyId, GranteePrincipal: ids.app.arn, Operations: ['Decrypt'], Constraints: { EncryptionContextSubset: { ['k'.repeat(100_000)]: 'v' } } })),
      'ValidationException',
    );
    expect((await root.send(new ListGrantsCommand({ KeyId: keyId }))).Grants).toEqual([]);
  });
});

describe('background tasks', () => {
  it('a rotation that cannot be stored for one key is reported and skipped; every other request keeps working, and it is retried later', async () => {
    const DAY_MS = 86_400_000;
    let now = Date.UTC(2030, 0, 1);
    let broken: string | undefined;
    let puts = 0;
    const inner = new MemoryStore();
    const store: KmsStore = {
      load: () => inner.load(),
      putKey(key: KeyRecord): void {
        puts++;
        // What JSON.stringify of an oversized key file throws.
        if (key.keyId === broken) throw new RangeError('Invalid string length');
      },
      deleteKey: () => inner.deleteKey(),
      putAliases: () => inner.putAliases(),
      fingerprint: (keyId, material) => inner.fingerprint(keyId, material),
      tokenMac: (data) => inner.tokenMac(data),
      close: () => inner.close(),
    };
    const reports: { keyId: string; task: string; error: unknown }[] = [];
    const kms = new LocalKmsService({
      accountId: ACCOUNT,
      clock: () => now,
      store,
      onBackgroundError: (error, where) => reports.push({ ...where, error }),
    });
    const keyOf = async () => ((await kms.call('CreateKey', {})).KeyMetadata as { KeyId: string }).KeyId;
    const a = await keyOf();
    const b = await keyOf();
    await kms.call('EnableKeyRotation', { KeyId: a, RotationPeriodInDays: 90 });
    broken = a;
    now += 91 * DAY_MS;
    // Before the fix each of these failed with the store's error.
    expect((await kms.call('ListKeys', {})).Keys).toHaveLength(2);
    await kms.call('GenerateDataKey', { KeyId: b, KeySpec: 'AES_256' });
    const ct = await kms.call('Encrypt', { KeyId: a, Plaintext: Buffer.from('still usable') });
    expect(Buffer.from((await kms.call('Decrypt', { CiphertextBlob: ct.CiphertextBlob })).Plaintext as Uint8Array).toString()).toBe('still usable');
    expect(reports.map((r) => [r.keyId, r.task, (r.error as Error).name])).toEqual([[a, 'automatic rotation', 'RangeError']]);
    // Not retried on every request (each retry would redo the failing write).
    const putsAfter = puts;
    await kms.call('DescribeKey', { KeyId: b });
    expect(puts).toBe(putsAfter);
    expect(((await kms.call('ListKeyRotations', { KeyId: a })).Rotations as unknown[]).length).toBe(0);
    // Once the store works again the rotation is retried and happens.
    broken = undefined;
    now += 10 * 60_000;
    await kms.call('DescribeKey', { KeyId: b });
    expect(((await kms.call('ListKeyRotations', { KeyId: a })).Rotations as unknown[]).length).toBe(1);
    expect(reports).toHaveLength(1);
    kms.close();
  });
});

describe('JSON output', () => {
  it('ListGrants and ListRetirableGrants over HTTP keep a "__proto__" constraint key', async () => {
    const open = await startLocalKmsServer({ port: 0, accountId: ACCOUNT });
    try {
      const post = async (op: string, body: string): Promise<Record<string, unknown>> => {
        const res = await fetch(open.url, { method: 'POST', headers: { 'X-Amz-Target': `TrentService.${op}`, 'Content-Type': 'application/x-amz-json-1.1' }, body });
        expect(res.status).toBe(200);
        // Parse as JSON.parse does, which makes "__proto__" an own key.
        return JSON.parse(await res.text()) as Record<string, unknown>;
      };
      const key = ((await post('CreateKey', '{}')).KeyMetadata as { KeyId: string }).KeyId;
      await post(
        'CreateGrant',
        `{"KeyId":"${key}","GranteePrincipal":"${alice.arn}","RetiringPrincipal":"${alice.arn}","Operations":["Decrypt"],"Constraints":{"EncryptionContextSubset":{"__proto__":"x","tenant":"a"}}}`,
      );
      const expected = JSON.parse('{"__proto__":"x","tenant":"a"}') as Record<string, string>;
      for (const [op, body] of [['ListGrants', `{"KeyId":"${key}"}`], ['ListRetirableGrants', `{"RetiringPrincipal":"${alice.arn}"}`]] as const) {
        const grants = (await post(op, body)).Grants as { Constraints: { EncryptionContextSubset: Record<string, string> } }[];
        const subset = grants[0]!.Constraints.EncryptionContextSubset;
        expect(Object.keys(subset)).toEqual(['__proto__', 'tenant']);
        expect(subset).toEqual(expected);
      }
    } finally {
      await open.close();
    }
  });
});
