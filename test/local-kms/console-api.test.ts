/**
 * The web console's HTTP side without a browser (src/local-kms/console-http.ts): what the page is
 * served with (CSP, CSRF token), the refusals that keep other web pages and DNS rebinding out
 * (CSRF token, Origin, Host, Content-Type), the principal the console acts as, and errors
 * answered as KMS error names. State is checked through the KMS API over HTTP.
 */
import { request } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DescribeKeyCommand, EncryptCommand, KMSClient, ListKeysCommand } from '@aws-sdk/client-kms';
import { startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { keyPolicyFor } from '../../src/local-kms/generated-policies.js';
import { ACCOUNT, ROOT_ARN, sdkClient, tempDir } from './helpers.js';

const ALICE = `arn:aws:iam::${ACCOUNT}:user/alice`;
const BOB = `arn:aws:iam::${ACCOUNT}:user/bob`;

interface Answer { status: number; headers: Record<string, string | string[] | undefined>; text: string; json: Record<string, unknown> }

function raw(server: LocalKmsServer, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, method, path, headers: { Host: `127.0.0.1:${server.port}`, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: Record<string, unknown> = {};
        try { json = JSON.parse(text) as Record<string, unknown>; } catch { /* HTML */ }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function csrfOf(server: LocalKmsServer): Promise<string> {
  const page = await raw(server, 'GET', '/console');
  return /<meta name="csrf-token" content="([^"]+)">/.exec(page.text)![1]!;
}

function call(server: LocalKmsServer, token: string, operation: string, input: object, principal?: string, headers: Record<string, string> = {}): Promise<Answer> {
  return raw(server, 'POST', '/console/api/call', { 'Content-Type': 'application/json', 'X-CSRF-Token': token, ...headers }, JSON.stringify({ operation, input, principal }));
}

const tmp = tempDir('lkms-console-');
let server: LocalKmsServer;
let rootless: LocalKmsServer;
let token: string;
beforeAll(async () => {
  const principalsFile = join(tmp.dir, 'principals.json');
  writeFileSync(principalsFile, JSON.stringify({
    AKIAROOT00000001: { arn: ROOT_ARN, secretAccessKey: 'root-secret' },
    AKIAALICE0000001: { arn: ALICE, secretAccessKey: 'alice-secret' },
    AKIABOB000000001: { arn: BOB, secretAccessKey: 'bob-secret', sessionToken: 'bob-session-token' },
  }));
  server = await startLocalKmsServer({ port: 0, principalsFile, accountId: ACCOUNT, console: true });
  rootless = await startLocalKmsServer({ port: 0, accountId: ACCOUNT, console: true });
  token = await csrfOf(server);
});
afterAll(async () => {
  await server?.close();
  await rootless?.close();
  tmp.cleanup();
});

describe('the page', () => {
  it('is served with a CSP that allows no inline script, a CSRF token in a meta element, and only same-origin scripts', async () => {
    const page = await raw(server, 'GET', '/console');
    expect(page.status).toBe(200);
    const csp = String(page.headers['content-security-policy']);
    for (const d of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'", "frame-ancestors 'none'"]) expect(csp).toContain(d);
    expect(csp).not.toContain('unsafe-inline');
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const scripts = [...page.text.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const s of scripts) {
      expect(s[0]).toMatch(/src="\/console\/[a-z-]+\.js"/);
      expect(s[1]!.trim()).toBe('');
    }
    expect(page.text).not.toMatch(/https?:\/\//); // no external asset
    const js = await raw(server, 'GET', '/console/app.js');
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    expect((await raw(server, 'GET', '/console/../server.ts')).status).toBe(404);
  });

  it('is not served unless the console is enabled; a non-loopback host refuses to start it', async () => {
    const plain = await startLocalKmsServer({ port: 0 });
    try {
      expect((await raw(plain, 'GET', '/console')).status).toBe(404);
    } finally {
      await plain.close();
    }
    await expect(startLocalKmsServer({ port: 0, host: '0.0.0.0', console: true })).rejects.toThrow(RangeError);
  });

  it('the session lists access key ids and ARNs, never secrets or session tokens', async () => {
    const s = await raw(server, 'GET', '/console/api/session');
    expect(s.json.principals).toEqual([
      { accessKeyId: 'AKIAROOT00000001', arn: ROOT_ARN },
      { accessKeyId: 'AKIAALICE0000001', arn: ALICE },
      { accessKeyId: 'AKIABOB000000001', arn: BOB },
    ]);
    expect(s.text).not.toMatch(/secret|session-token/);
    expect((await raw(rootless, 'GET', '/console/api/session')).json.principals).toBeNull();
  });
});

describe('refusals', () => {
  const keyCount = async () => (await sdkClient(rootless.url).send(new ListKeysCommand({}))).Keys!.length;

  it('a state-changing request without the CSRF token, or with another, is AccessDeniedException and changes nothing', async () => {
    const before = await keyCount();
    const none = await raw(rootless, 'POST', '/console/api/call', { 'Content-Type': 'application/json' }, JSON.stringify({ operation: 'CreateKey', input: {} }));
    expect([none.status, none.json.__type]).toEqual([403, 'AccessDeniedException']);
    const wrong = await call(rootless, token /* the other server's */, 'CreateKey', {});
    expect([wrong.status, wrong.json.__type]).toEqual([403, 'AccessDeniedException']);
    expect(await keyCount()).toBe(before);
    const right = await call(rootless, await csrfOf(rootless), 'CreateKey', {});
    expect(right.status).toBe(200);
    expect(await keyCount()).toBe(before + 1);
  });

  it('a Host other than loopback with this port is refused, pages and API alike (DNS rebinding)', async () => {
    for (const host of ['evil.example', `evil.example:${server.port}`, `127.0.0.1:${server.port + 1}`, `localhost.evil.example:${server.port}`]) {
      const page = await raw(server, 'GET', '/console', { Host: host });
      expect([host, page.status, page.json.__type]).toEqual([host, 403, 'AccessDeniedException']);
      const api = await call(server, token, 'ListKeys', {}, 'AKIAROOT00000001', { Host: host });
      expect(api.status).toBe(403);
    }
    for (const host of [`localhost:${server.port}`, `127.0.0.1:${server.port}`]) expect((await raw(server, 'GET', '/console', { Host: host })).status).toBe(200);
  });

  it('a cross-origin POST is refused even with the token; a form-encodable Content-Type is refused', async () => {
    const cross = await call(server, token, 'ListKeys', {}, 'AKIAROOT00000001', { Origin: 'http://evil.example' });
    expect([cross.status, cross.json.__type]).toEqual([403, 'AccessDeniedException']);
    const same = await call(server, token, 'ListKeys', {}, 'AKIAROOT00000001', { Origin: `http://127.0.0.1:${server.port}` });
    expect(same.status).toBe(200);
    const form = await raw(server, 'POST', '/console/api/call', { 'Content-Type': 'text/plain', 'X-CSRF-Token': token }, JSON.stringify({ operation: 'ListKeys', principal: 'AKIAROOT00000001' }));
    expect(form.json.__type).toBe('SerializationException');
  });

  it('operations that return plaintext are not offered', async () => {
    for (const op of ['Decrypt', 'GenerateDataKey', 'GenerateDataKeyPair', 'GenerateRandom', 'DeriveSharedSecret']) {
      const a = await call(server, token, op, {}, 'AKIAROOT00000001');
      expect([op, a.json.__type]).toEqual([op, 'UnsupportedOperationException']);
    }
  });
});

describe('the principal the console acts as', () => {
  it('is the principals-file entry chosen by access key id; key policies apply to it as to an SDK caller', async () => {
    const policy = keyPolicyFor({ accountId: ACCOUNT, administrators: [ALICE], users: [BOB] });
    const created = await call(server, token, 'CreateKey', { Policy: policy, Description: 'console' }, 'AKIAROOT00000001');
    expect(created.status).toBe(200);
    const keyId = (created.json.KeyMetadata as { KeyId: string }).KeyId;
    const asBob = await call(server, token, 'Encrypt', { KeyId: keyId, Plaintext: Buffer.from('hi').toString('base64') }, 'AKIABOB000000001');
    expect(asBob.status).toBe(200);
    expect(typeof asBob.json.CiphertextBlob).toBe('string');
    const asAlice = await call(server, token, 'Encrypt', { KeyId: keyId, Plaintext: Buffer.from('hi').toString('base64') }, 'AKIAALICE0000001');
    expect([asAlice.status, asAlice.json.__type]).toEqual([400, 'AccessDeniedException']);
    expect(String(asAlice.json.message)).toContain(ALICE);
    // The same answers over the KMS API, signed by those principals.
    const bob = sdkClient(server.url, 'AKIABOB000000001', 'bob-secret');
    bob.middlewareStack.add((next) => (args) => {
      (args.request as { headers: Record<string, string> }).headers['x-amz-security-token'] = 'bob-session-token';
      return next(args);
    }, { step: 'build' });
    await expect(bob.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('hi') }))).resolves.toBeDefined();
    const alice = sdkClient(server.url, 'AKIAALICE0000001', 'alice-secret');
    await expect(alice.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('hi') }))).rejects.toMatchObject({ name: 'AccessDeniedException' });
  });

  it('with a principals file: no principal is MissingAuthenticationTokenException, an unknown one UnrecognizedClientException', async () => {
    expect((await call(server, token, 'ListKeys', {})).json.__type).toBe('MissingAuthenticationTokenException');
    expect((await call(server, token, 'ListKeys', {}, 'AKIAMALLORY00001')).json.__type).toBe('UnrecognizedClientException');
  });

  it('without a principals file it is the account root, whatever the page sends', async () => {
    const rootToken = await csrfOf(rootless);
    const policy = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: ROOT_ARN }, Action: 'kms:*', Resource: '*' }] });
    const k = await call(rootless, rootToken, 'CreateKey', { Policy: policy }, 'AKIAALICE0000001');
    expect(k.status).toBe(200);
    const keyId = (k.json.KeyMetadata as { KeyId: string }).KeyId;
    expect((await call(rootless, rootToken, 'DescribeKey', { KeyId: keyId }, 'AKIAANYONE')).status).toBe(200);
  });

  it('errors are KMS error names and messages', async () => {
    const a = await call(server, token, 'DescribeKey', { KeyId: 'alias/none' }, 'AKIAROOT00000001');
    expect(a.json).toEqual({ __type: 'NotFoundException', message: expect.any(String) });
    const b = await call(server, token, 'DescribeKey', { KeyId: 5 }, 'AKIAROOT00000001');
    expect(b.json.__type).toBe('SerializationException');
  });
});

describe('pure helpers', () => {
  it('key-policy answers keyPolicyFor for the same choices; validate-policy validates as CreateKey does', async () => {
    const post = (route: string, body: object) =>
      raw(server, 'POST', `/console/api/${route}`, { 'Content-Type': 'application/json', 'X-CSRF-Token': token }, JSON.stringify(body));
    const p = await post('key-policy', { administrators: [ALICE], users: [BOB, `arn:aws:iam::444455556666:root`], keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY', external: true, administratorsCanDelete: false });
    expect(p.json.policy).toBe(keyPolicyFor({ accountId: ACCOUNT, administrators: [ALICE], users: [BOB, 'arn:aws:iam::444455556666:root'], keyKind: 'SIGN_VERIFY', externalOrigin: true, administratorsCanDelete: false }));
    expect((await post('key-policy', { administrators: ['nobody'] })).json.__type).toBe('ValidationException');
    expect((await post('validate-policy', { policy: p.json.policy })).json).toEqual({ valid: true });
    expect((await post('validate-policy', { policy: '{"Statement": "x"}' })).json.__type).toBe('MalformedPolicyDocumentException');
    const noToken = await raw(server, 'POST', '/console/api/key-policy', { 'Content-Type': 'application/json' }, '{}');
    expect(noToken.status).toBe(403);
  });
});

describe('Regions and custom key stores (issue 16)', () => {
  const post = (route: string, body: object) =>
    raw(server, 'POST', `/console/api/${route}`, { 'Content-Type': 'application/json', 'X-CSRF-Token': token }, JSON.stringify(body));

  it('a call names its Region: the key is made there, the session then lists that Region beside the default', async () => {
    expect((await raw(server, 'GET', '/console/api/session')).json.regions).toEqual(['us-east-1']);
    const made = await post('call', { operation: 'CreateKey', input: { Description: 'in Ireland' }, principal: 'AKIAROOT00000001', region: 'eu-west-1' });
    expect(made.status).toBe(200);
    const arn = (made.json.KeyMetadata as { Arn: string }).Arn;
    expect(arn.split(':')[3]).toBe('eu-west-1');
    const keyId = arn.split('/')[1]!;
    // Over HTTP: a client of eu-west-1 sees the key, one of the default Region does not.
    const ireland = new KMSClient({ endpoint: server.url, region: 'eu-west-1', credentials: { accessKeyId: 'AKIAROOT00000001', secretAccessKey: 'root-secret' }, maxAttempts: 1 });
    expect((await ireland.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.Description).toBe('in Ireland');
    const home = sdkClient(server.url, 'AKIAROOT00000001', 'root-secret');
    await expect(home.send(new DescribeKeyCommand({ KeyId: keyId }))).rejects.toMatchObject({ name: 'NotFoundException' });
    const listed = await post('call', { operation: 'ListKeys', input: {}, principal: 'AKIAROOT00000001', region: 'eu-west-1' });
    expect((listed.json.Keys as Array<{ KeyId: string }>).map((k) => k.KeyId)).toEqual([keyId]);
    expect((await raw(server, 'GET', '/console/api/session')).json).toMatchObject({ region: 'us-east-1', regions: ['eu-west-1', 'us-east-1'] });
  });

  it('a Region name is validated as the server validates credential scopes: malformed or another partition is refused', async () => {
    expect((await post('region', { region: 'ap-southeast-7' })).json).toEqual({ region: 'ap-southeast-7' });
    for (const region of ['mars-1', 'EU-WEST-1', 'cn-north-1', 'us-gov-west-1', '', 5]) {
      const checked = await post('region', { region });
      expect([region, checked.status, checked.json.__type]).toEqual([region, 400, 'ValidationException']);
      const called = await post('call', { operation: 'ListKeys', input: {}, principal: 'AKIAROOT00000001', region });
      expect([region, called.json.__type]).toEqual([region, 'ValidationException']);
    }
    expect((await raw(server, 'POST', '/console/api/region', { 'Content-Type': 'application/json' }, '{"region":"us-west-2"}')).status).toBe(403);
  });

  it('DescribeCustomKeyStores is offered (as the signed-in principal); the key store password never is', async () => {
    const all = await post('call', { operation: 'DescribeCustomKeyStores', input: {}, principal: 'AKIAROOT00000001' });
    expect([all.status, all.json.CustomKeyStores]).toEqual([200, []]);
    const nobody = await post('call', { operation: 'DescribeCustomKeyStores', input: {} });
    expect(nobody.json.__type).toBe('MissingAuthenticationTokenException');
    for (const op of ['CreateCustomKeyStore', 'UpdateCustomKeyStore']) expect((await post('call', { operation: op, input: {}, principal: 'AKIAROOT00000001' })).json.__type).toBe('UnsupportedOperationException');
  });
});
