/**
 * Adversarial review of the console's Region menu and custom key store parts (console-http.ts
 * regionOf/regionsInUse, the `region` route, DescribeCustomKeyStores, CreateKey with a custom key
 * store origin). Raw HTTP with and without the CSRF token; state checked through the service.
 * A failing test here is a finding; "held:" tests record attacks that did not break anything.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { ACCOUNT, ROOT_ARN, tempDir } from '../local-kms/helpers.js';
import { ACCESS_KEY_ID, SECRET, startFakeXks, type FakeXks } from '../local-kms/xks-fake.js';

const ROOT = 'AKIAREGIONROOT001';
const USER = 'AKIAREGIONUSER001';
const USER_ARN = `arn:aws:iam::${ACCOUNT}:role/region-user`;
const IRISH = 'AKIAREGIONIRISH01';
const IRISH_ARN = `arn:aws:iam::${ACCOUNT}:role/irish-only`;
/** IAM of IRISH: every KMS action, only in eu-west-1 (aws:RequestedRegion). */
const IRISH_POLICY = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*', Condition: { StringEquals: { 'aws:RequestedRegion': 'eu-west-1' } } }] };

interface Answer { status: number; text: string; json: Record<string, unknown> }

function raw(server: LocalKmsServer, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, method, path, headers: { Host: `127.0.0.1:${server.port}`, ...headers }, setHost: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: Record<string, unknown> = {};
        try { json = JSON.parse(text) as Record<string, unknown>; } catch { /* not JSON */ }
        resolve({ status: res.statusCode ?? 0, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const tmp = tempDir('kms-console-regions-review-');
let server: LocalKmsServer;
let token = '';
let fake: FakeXks;
const post = (route: string, body: unknown, headers: Record<string, string> = {}) =>
  raw(server, 'POST', `/console/api/${route}`, { 'Content-Type': 'application/json', 'X-CSRF-Token': token, ...headers }, JSON.stringify(body));
const call = (operation: string, input: unknown, region?: unknown, principal = ROOT) => post('call', { operation, input, principal, ...(region !== undefined ? { region } : {}) });

beforeAll(async () => {
  const principalsFile = join(tmp.dir, 'principals.json');
  writeFileSync(principalsFile, JSON.stringify({ [ROOT]: { arn: ROOT_ARN, secretAccessKey: 'root-secret' }, [USER]: { arn: USER_ARN, secretAccessKey: 'user-secret', policies: [] }, [IRISH]: { arn: IRISH_ARN, secretAccessKey: 'irish-secret', policies: [IRISH_POLICY] } }));
  fake = await startFakeXks();
  server = await startLocalKmsServer({ port: 0, principalsFile, accountId: ACCOUNT, console: true, dataDir: join(tmp.dir, 'data'), xksProxyTimeoutMs: 1500 });
  token = /<meta name="csrf-token" content="([^"]+)">/.exec((await raw(server, 'GET', '/console')).text)![1]!;
});
afterAll(async () => {
  await server?.close();
  await fake?.close();
  tmp.cleanup();
});

const ODD_REGIONS: unknown[] = [
  'US-EAST-1', ' us-east-1', 'us-east-1 ', 'us-east-1\n', 'us-east-\uff11', 'us\u2010east\u20101', 'us-\u0435ast-1', 'u\u0073-east-1\u0000',
  '../us-east-1', 'us-east-1/../eu-west-1', '..', 'regions/../../x', 'us-east-1%2f..', 'us-gov-west-1', 'cn-north-1', 'cn-northwest-1',
  'us-iso-east-1', 'us-isob-east-1', 'eu-isoe-west-1', 'us-isof-south-1', 'eusc-de-east-1', `us-${'a'.repeat(100_000)}-1`, `us-${'a'.repeat(30)}-1`,
  'zz-east-1', 'aws-global', 'us-east-1a', 'us-east-123', '', null, 0, 1, true, [], ['us-east-1'], {}, { toString: 'x' }, '__proto__', 'constructor',
];

describe('console review: Region names', () => {
  it('held: odd Region names (case, spaces, unicode look-alikes, NUL, ../, other partitions, very long, non-strings) are ValidationException on both routes and open nothing', async () => {
    const before = server.service.regions.all().length;
    for (const region of ODD_REGIONS) {
      const checked = await post('region', { region });
      expect([JSON.stringify(region).slice(0, 40), checked.status, checked.json.__type]).toEqual([JSON.stringify(region).slice(0, 40), 400, 'ValidationException']);
      for (const op of ['ListKeys', 'CreateKey', 'DescribeCustomKeyStores']) {
        const called = await call(op, {}, region);
        expect([JSON.stringify(region).slice(0, 40), op, called.json.__type]).toEqual([JSON.stringify(region).slice(0, 40), op, 'ValidationException']);
      }
    }
    expect(server.service.regions.all().length).toBe(before);
    expect(existsSync(join(tmp.dir, 'data', 'regions'))).toBe(false);
  });

  it('a well-formed but over-long Region name is refused without echoing the whole name (checkRegionName cuts it at 64 characters)', async () => {
    const long = `us-${'a'.repeat(100_000)}-1`;
    for (const route of ['region', 'call']) {
      const a = route === 'region' ? await post('region', { region: long }) : await call('ListKeys', {}, long);
      expect([route, a.json.__type]).toEqual([route, 'ValidationException']);
      expect(a.text.length, route).toBeLessThan(1000);
    }
  });

  it('held: a server in another partition (aws-cn, aws-us-gov, aws-iso-b) refuses the aws partition\'s Regions and the other partitions\', accepts its own', async () => {
    for (const [home, own, others] of [
      ['cn-north-1', 'cn-northwest-1', ['us-east-1', 'us-gov-west-1', 'us-isob-east-1']],
      ['us-gov-west-1', 'us-gov-east-1', ['us-east-1', 'cn-north-1', 'us-iso-east-1']],
      ['us-isob-east-1', 'us-isob-west-1', ['us-east-1', 'us-iso-east-1', 'us-isof-south-1']],
    ] as const) {
      const other = await startLocalKmsServer({ port: 0, accountId: ACCOUNT, console: true, region: home });
      try {
        const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec((await raw(other, 'GET', '/console')).text)![1]!;
        const check = (region: string) => raw(other, 'POST', '/console/api/region', { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, JSON.stringify({ region }));
        const made = await raw(other, 'POST', '/console/api/call', { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, JSON.stringify({ operation: 'CreateKey', input: {}, region: own }));
        expect((made.json.KeyMetadata as { Arn: string }).Arn.split(':').slice(1, 4)).toEqual([home.startsWith('cn') ? 'aws-cn' : home.startsWith('us-gov') ? 'aws-us-gov' : 'aws-iso-b', 'kms', own]);
        for (const region of others) expect([home, region, (await check(region)).json.__type]).toEqual([home, region, 'ValidationException']);
        expect(other.service.regions.all().map((c) => c.region).sort()).toEqual([home, own].sort());
      } finally {
        await other.close();
      }
    }
  });

  it('held: 300 distinct made-up Regions named in reads and refused writes leave no Region open, listed or on disk', async () => {
    for (let i = 0; i < 300; i++) {
      const region = `us-x${String.fromCharCode(97 + (i % 26))}${String.fromCharCode(97 + Math.floor(i / 26))}-${i % 10}`;
      expect((await post('region', { region })).json).toEqual({ region });
      expect((await call('ListKeys', {}, region)).status).toBe(200);
      expect((await call('DescribeCustomKeyStores', {}, region)).status).toBe(200);
      // Refused writes: a bad policy, a key store that is not there, an unknown key.
      expect((await call('CreateKey', { Policy: '{' }, region)).status).toBe(400);
      expect((await call('CreateKey', { Origin: 'AWS_CLOUDHSM', CustomKeyStoreId: 'cks-1234567890abcdef0' }, region)).status).toBe(400);
      expect((await call('TagResource', { KeyId: '11111111-2222-3333-4444-555555555555', Tags: [{ TagKey: 'a', TagValue: 'b' }] }, region)).status).toBe(400);
      expect((await call('ListKeys', {}, region, USER)).json.__type).toBe('AccessDeniedException');
    }
    expect(server.service.regions.all().map((c) => c.region)).toEqual(['us-east-1']);
    expect((await raw(server, 'GET', '/console/api/session')).json.regions).toEqual(['us-east-1']);
    expect(existsSync(join(tmp.dir, 'data', 'regions'))).toBe(false);
  });

  it('held: the region route and a Region-naming call need the CSRF token and a loopback Host', async () => {
    for (const headers of <Array<Record<string, string>>>[{ 'X-CSRF-Token': '' }, { 'X-CSRF-Token': `${token}x` }, { Origin: 'http://evil.example' }, { Host: 'evil.example' }, { Host: `localhost.:${server.port}` }]) {
      expect((await post('region', { region: 'eu-west-1' }, headers)).status).toBe(403);
      expect((await post('call', { operation: 'CreateKey', input: {}, principal: ROOT, region: 'eu-west-2' }, headers)).status).toBe(403);
    }
    expect((await raw(server, 'GET', '/console/api/region?region=eu-west-1')).status).toBe(404);
    expect(server.service.regions.get('eu-west-2')).toBeUndefined();
  });

  it('held: IAM sees the Region the console names as aws:RequestedRegion (an IAM policy limited to eu-west-1 allows there only)', async () => {
    expect((await call('ListKeys', {}, 'eu-west-1', IRISH)).status).toBe(200);
    expect((await call('ListKeys', {}, undefined, IRISH)).json.__type).toBe('AccessDeniedException');
    expect((await call('ListKeys', {}, 'eu-west-2', IRISH)).json.__type).toBe('AccessDeniedException');
    expect((await call('DescribeCustomKeyStores', {}, 'us-east-1', IRISH)).json.__type).toBe('AccessDeniedException');
  });

  it('held: a key ARN of another Region is NotFoundException in the Region named (no cross-Region reach, as over SigV4)', async () => {
    const made = await call('CreateKey', { Description: 'home' }, 'us-east-1');
    const arn = (made.json.KeyMetadata as { Arn: string }).Arn;
    for (const op of ['DescribeKey', 'DisableKey', 'GetKeyPolicy']) {
      const a = await call(op, { KeyId: arn, PolicyName: op === 'GetKeyPolicy' ? 'default' : undefined }, 'eu-west-1');
      expect([op, a.json.__type]).toEqual([op, 'NotFoundException']);
    }
    expect(server.service.regions.get('eu-west-1')).toBeUndefined();
  });
});

describe('console review: custom key stores', () => {
  let xksId = '';
  let idleId = '';
  beforeAll(async () => {
    fake.keys.set('ext-1', { key: Buffer.alloc(32, 7) });
    fake.keys.set('ext-2', { key: Buffer.alloc(32, 8) });
    const create = (name: string, path: string) => server.service.call('CreateCustomKeyStore', {
      CustomKeyStoreName: name, CustomKeyStoreType: 'EXTERNAL_KEY_STORE', XksProxyUriEndpoint: fake.url, XksProxyUriPath: path,
      XksProxyConnectivity: 'PUBLIC_ENDPOINT', XksProxyAuthenticationCredential: { AccessKeyId: ACCESS_KEY_ID, RawSecretAccessKey: SECRET },
    });
    xksId = String((await create('<img src=x onerror=alert(1)>', '/a/kms/xks/v1')).CustomKeyStoreId);
    idleId = String((await create('idle', '/b/kms/xks/v1')).CustomKeyStoreId);
    await server.service.call('ConnectCustomKeyStore', { CustomKeyStoreId: xksId });
  });

  it('held: DescribeCustomKeyStores over the console never carries the proxy secret; the store management operations are not offered', async () => {
    const d = await call('DescribeCustomKeyStores', {});
    expect(d.status).toBe(200);
    expect(d.text).not.toContain(SECRET);
    expect(d.text).not.toContain('RawSecretAccessKey');
    for (const op of ['CreateCustomKeyStore', 'ConnectCustomKeyStore', 'DisconnectCustomKeyStore', 'UpdateCustomKeyStore', 'DeleteCustomKeyStore', 'ReplicateKey', 'UpdatePrimaryRegion']) {
      expect([op, (await call(op, { CustomKeyStoreId: xksId })).json.__type]).toEqual([op, 'UnsupportedOperationException']);
    }
  });

  it('held: CreateKey in a custom key store that AWS would refuse is refused over the console (UI bypassed)', async () => {
    const refused: Array<[Record<string, unknown>, string | undefined]> = [
      [{ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: xksId, XksKeyId: 'ext-1', MultiRegion: true }, undefined],
      [{ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: xksId, XksKeyId: 'ext-1', KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }, undefined],
      [{ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: xksId, XksKeyId: 'ext-1', KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' }, undefined],
      [{ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: xksId }, undefined],
      [{ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: xksId, XksKeyId: 'no-such' }, 'XksKeyNotFoundException'],
      [{ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: xksId, XksKeyId: '../ext-1' }, 'ValidationException'],
      [{ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: idleId, XksKeyId: 'ext-2' }, 'CustomKeyStoreInvalidStateException'],
      [{ Origin: 'AWS_CLOUDHSM', CustomKeyStoreId: xksId }, undefined],
      [{ Origin: 'AWS_KMS', CustomKeyStoreId: xksId }, undefined],
      [{ Origin: 'EXTERNAL', CustomKeyStoreId: xksId }, undefined],
      [{ CustomKeyStoreId: xksId }, undefined],
      [{ XksKeyId: 'ext-1' }, undefined],
      [{ Origin: 'EXTERNAL_KEY_STORE', XksKeyId: 'ext-1' }, undefined],
    ];
    for (const [input, name] of refused) {
      const a = await call('CreateKey', input);
      expect([JSON.stringify(input), a.status >= 400 && a.status < 500]).toEqual([JSON.stringify(input), true]);
      if (name) expect(a.json.__type).toBe(name);
    }
    // The store of us-east-1 does not exist in eu-west-1.
    const other = await call('CreateKey', { Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: xksId, XksKeyId: 'ext-1' }, 'eu-west-1');
    expect(other.json.__type).toBe('CustomKeyStoreNotFoundException');
    expect((await call('DescribeCustomKeyStores', {}, 'eu-west-1')).json.CustomKeyStores).toEqual([]);
    // A principal without kms:CreateKey learns nothing of the store.
    expect((await call('CreateKey', { Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: 'cks-1234567890abcdef0', XksKeyId: 'ext-1' }, undefined, USER)).json.__type).toBe('AccessDeniedException');
    // The accepted one, then the same external key again.
    const ok = await call('CreateKey', { Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: xksId, XksKeyId: 'ext-1' });
    expect(ok.status).toBe(200);
    expect(ok.json.KeyMetadata).toMatchObject({ CustomKeyStoreId: xksId, XksKeyConfiguration: { Id: 'ext-1' }, MultiRegion: false });
    expect(ok.text).not.toContain(SECRET);
    expect((await call('CreateKey', { Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: xksId, XksKeyId: 'ext-1' })).json.__type).toBe('XksKeyAlreadyInUseException');
    const keyId = (ok.json.KeyMetadata as { KeyId: string }).KeyId;
    const enc = await call('Encrypt', { KeyId: keyId, Plaintext: Buffer.from('secret-plaintext').toString('base64') });
    expect(enc.status).toBe(200);
    expect(Object.keys(enc.json).sort()).toEqual(['CiphertextBlob', 'EncryptionAlgorithm', 'KeyId', 'KeyMaterialId'].filter((k) => k in enc.json).sort());
  });
});

describe('console review: Regions that held keys once', () => {
  it('Regions whose keys were all deleted do not count against the Region limit at the next start (70 such Regions, then a restart)', async () => {
    const dataDir = join(tmp.dir, 'churn');
    let kms = await startLocalKmsServer({ port: 0, accountId: ACCOUNT, console: true, dataDir, testClock: true });
    try {
      const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec((await raw(kms, 'GET', '/console')).text)![1]!;
      const at = (srv: LocalKmsServer, operation: string, input: unknown, region: string) =>
        raw(srv, 'POST', '/console/api/call', { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, JSON.stringify({ operation, input, region }));
      for (let i = 0; i < 70; i++) {
        const region = `eu-churn${String.fromCharCode(97 + (i % 26))}${String.fromCharCode(97 + Math.floor(i / 26))}-1`;
        const made = await at(kms, 'CreateKey', {}, region);
        expect([region, made.status]).toEqual([region, 200]);
        const keyId = (made.json.KeyMetadata as { KeyId: string }).KeyId;
        expect((await at(kms, 'ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 7 }, region)).status).toBe(200);
        expect((await raw(kms, 'POST', '/_local/clock', {}, JSON.stringify({ advanceSeconds: 8 * 86_400 }))).status).toBe(200);
        // The next call deletes the key; the Region, empty again, is dropped after it.
        expect((await at(kms, 'ListKeys', {}, region)).json.Keys).toEqual([]);
      }
      expect(kms.service.regions.all().length).toBeLessThanOrEqual(2);
      await kms.close();
      kms = await startLocalKmsServer({ port: 0, accountId: ACCOUNT, console: true, dataDir, testClock: true });
      expect((await raw(kms, 'GET', '/console/api/session')).json.regions).toEqual(['us-east-1']);
    } finally {
      await kms.close();
    }
  });

  it('Regions emptied by deletions that ran during a request to another Region do not block a new Region (63 Regions filled, their keys deleted at once)', async () => {
    const kms = await startLocalKmsServer({ port: 0, accountId: ACCOUNT, console: true, testClock: true });
    try {
      const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec((await raw(kms, 'GET', '/console')).text)![1]!;
      const at = (operation: string, input: unknown, region: string) =>
        raw(kms, 'POST', '/console/api/call', { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, JSON.stringify({ operation, input, region }));
      for (let i = 0; i < 63; i++) {
        const region = `eu-fill${String.fromCharCode(97 + (i % 26))}${String.fromCharCode(97 + Math.floor(i / 26))}-1`;
        const made = await at('CreateKey', {}, region);
        expect([region, made.status]).toEqual([region, 200]);
        expect((await at('ScheduleKeyDeletion', { KeyId: (made.json.KeyMetadata as { KeyId: string }).KeyId, PendingWindowInDays: 7 }, region)).status).toBe(200);
      }
      expect((await at('ListKeys', {}, 'eu-west-1')).json.__type).toBe('LimitExceededException'); // 64 Regions hold keys: the bound
      expect((await raw(kms, 'POST', '/_local/clock', {}, JSON.stringify({ advanceSeconds: 8 * 86_400 }))).status).toBe(200);
      // This request's tick deletes every key pending deletion, in all 63 Regions.
      expect((await at('ListKeys', {}, 'us-east-1')).status).toBe(200);
      expect((await raw(kms, 'GET', '/console/api/session')).json.regions).toEqual(['us-east-1']);
      const ireland = await at('ListKeys', {}, 'eu-west-1');
      expect([ireland.status, ireland.json.Keys]).toEqual([200, []]);
    } finally {
      await kms.close();
    }
  });
});
