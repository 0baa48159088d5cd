/**
 * Requirements of the XKS Proxy API Specification (aws/aws-kms-xksproxy-api-spec) that
 * test/xks-proxy/proxy.test.ts does not already pin, each against the real proxy over HTTP(S) on a
 * SoftHSM2 token (the table: test/spec/compliance/xks-proxy/xks_proxy_api_spec.md). Skipped when
 * SoftHSM2 or pkcs11js is missing.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenSession } from '../../src/local-kms/pkcs11.js';
import { errorBody } from '../../src/xks-proxy/errors.js';
import { resolveXksProxyConfig, startXksProxy, XksError, XKS_ERRORS, XksProxyConfigError, type XksLogEntry } from '../../src/xks-proxy/index.js';
import { keyUsageOf, tokenAad } from '../../src/xks-proxy/token-keys.js';
import { metadata, xksCall, type XksCall, type XksReply } from './client.js';
import { ACCESS_KEY_ID, fileFixture, hsmMissing, SECRET_ACCESS_KEY, xksFixture, type XksFixture } from './harness.js';
import { USER_PIN } from '../local-kms/softhsm.js';

const f = fileFixture();

const call = (c: XksCall) => xksCall(f.proxy, c);
const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

type Ciphertext = { ciphertext: string; initializationVector: string; authenticationTag: string };

const encryptBody = (plaintext: string | Buffer, extra: Record<string, unknown> = {}) => ({
  requestMetadata: metadata('Encrypt'),
  plaintext: b64(plaintext),
  encryptionAlgorithm: 'AES_GCM',
  ...extra,
});
const decryptBody = (ct: Ciphertext, extra: Record<string, unknown> = {}) => ({
  requestMetadata: metadata('Decrypt'),
  ciphertext: ct.ciphertext,
  initializationVector: ct.initializationVector,
  authenticationTag: ct.authenticationTag,
  encryptionAlgorithm: 'AES_GCM',
  ...extra,
});
async function encrypt(key: string, plaintext: string | Buffer, extra: Record<string, unknown> = {}): Promise<Ciphertext> {
  const r = await call({ path: `keys/${key}/encrypt`, body: encryptBody(plaintext, extra) });
  expect(r.status, r.text).toBe(200);
  return r.json as Ciphertext;
}

function expectError(r: XksReply, name: keyof typeof XKS_ERRORS) {
  expect(r.json.errorName, r.text).toBe(name);
  expect(r.status).toBe(XKS_ERRORS[name]);
}

/** Runs `fn` with a logged-in session on the fixture's token (to make keys the proxy's CLI would refuse). */
async function withToken<T>(fn: (s: TokenSession) => T): Promise<T> {
  const s = await TokenSession.open({ module: f.config.pkcs11.module, tokenLabel: f.config.pkcs11.tokenLabel }, USER_PIN);
  try {
    return fn(s);
  } finally {
    s.close();
  }
}

describe('XKS proxy errors (no token needed)', () => {
  it('errorMessage: printable ASCII only and under 512 characters, whatever the message says', () => {
    const body = errorBody(new XksError('InternalException', `caf\u00e9 \u2603 \n\t${'x'.repeat(2000)}`));
    expect(body.errorName).toBe('InternalException');
    expect(body.errorMessage.length).toBeLessThan(512);
    expect(body.errorMessage).toMatch(/^[\x20-\x7e]+$/);
    expect(body.errorMessage.startsWith('caf? ? ??')).toBe(true);
    // A short printable message goes out unchanged.
    expect(errorBody(new XksError('KeyNotFoundException', 'No external key with id foo.')).errorMessage).toBe('No external key with id foo.');
  });

  it('keyUsage: the spec strings, upper case, never more than ten even for a key that allows everything', () => {
    const all = { aes: true, valueLen: 32, encrypt: true, decrypt: true, wrap: true, unwrap: true, sign: true, verify: true, derive: true };
    const usage = keyUsageOf(all);
    expect(usage).toEqual(['ENCRYPT', 'DECRYPT', 'WRAP', 'UNWRAP', 'SIGN', 'VERIFY', 'DERIVE']);
    expect(usage.length).toBeLessThanOrEqual(10);
    expect(keyUsageOf({ ...all, wrap: false, unwrap: false, sign: false, verify: false, derive: false })).toEqual(['ENCRYPT', 'DECRYPT']);
  });
});

describe('XKS proxy config (the spec rules it enforces; no token needed)', () => {
  const base = () => ({
    region: 'us-east-1',
    credentials: [{ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY }],
    pkcs11: { module: '/nonexistent/libpkcs11.so', tokenLabel: 'xks', pin: '1234' },
  });
  const field = (raw: unknown): string | undefined => {
    try {
      resolveXksProxyConfig(raw, { env: {} });
      return undefined;
    } catch (e) {
      expect(e).toBeInstanceOf(XksProxyConfigError);
      return (e as XksProxyConfigError).field;
    }
  };

  it('XksProxyUriPath: at most 128 characters of a-z, A-Z, 0-9, /, - and _', () => {
    // '/' + prefix + '/kms/xks/v1' (11 characters): a 116-character prefix makes 128.
    expect(field({ ...base(), uriPrefix: `Az09/-_${'p'.repeat(109)}` })).toBeUndefined();
    expect(field({ ...base(), uriPrefix: 'p'.repeat(117) })).toBe('uriPrefix');
    for (const bad of ['a b', 'a.b', 'a~b', 'a%2Fb', 'caf\u00e9']) expect(field({ ...base(), uriPrefix: bad }), bad).toBe('uriPrefix');
  });

  it('SigV4 credentials: access key ids of 20-30 of A-Z and 2-7, secrets of 43-64 of A-Z a-z 0-9 + / =, each access key id once', () => {
    const cred = (accessKeyId: string, secretAccessKey = SECRET_ACCESS_KEY) => ({ ...base(), credentials: [{ accessKeyId, secretAccessKey }] });
    expect(field(cred('A'.repeat(20)))).toBeUndefined();
    expect(field(cred('ABCDEFGHIJKLMNOPQRSTUVWXYZ2345'))).toBeUndefined();
    for (const id of ['A'.repeat(19), 'A'.repeat(31), `${'A'.repeat(20)}8`, `${'A'.repeat(20)}1`, 'a'.repeat(20)]) expect(field(cred(id)), id).toBe('credentials[0].accessKeyId');
    expect(field(cred('A'.repeat(20), `${'a'.repeat(42)}+/=`))).toBeUndefined();
    for (const secret of ['a'.repeat(42), 'a'.repeat(65), `${'a'.repeat(43)}-`, `${'a'.repeat(43)}_`]) expect(field(cred('A'.repeat(20), secret)), secret).toBe('credentials[0].secretAccessKey');
    const twice = { ...base(), credentials: [{ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY }, { accessKeyId: ACCESS_KEY_ID, secretAccessKey: `${SECRET_ACCESS_KEY}x` }] };
    expect(field(twice)).toBe('credentials[1].accessKeyId');
  });

  it('HTTPS: without tls only a loopback address may be bound', () => {
    for (const host of ['0.0.0.0', '192.0.2.1', 'proxy.example.com', '::']) expect(field({ ...base(), host }), host).toBe('tls');
    for (const host of ['127.0.0.1', '::1', 'localhost']) expect(field({ ...base(), host }), host).toBeUndefined();
  });
});

describe.skipIf(hsmMissing !== undefined)(`XKS proxy spec requirements${hsmMissing ? ` (skipped: ${hsmMissing})` : ''}`, () => {
  describe('transport and paths', () => {
    it('responses are JSON with Content-Type application/json, successes and errors alike', async () => {
      const ok = await call({ path: 'health', body: { requestMetadata: { kmsOperation: 'KmsHealthCheck', kmsRequestId: 'r-1' } } });
      expect(ok.status).toBe(200);
      expect(ok.headers['content-type']).toBe('application/json');
      expect(JSON.parse(ok.text)).toEqual(ok.json);
      const bad = await call({ path: 'keys/no_such_key/metadata', body: { requestMetadata: metadata('DescribeKey') } });
      expectError(bad, 'KeyNotFoundException');
      expect(bad.headers['content-type']).toBe('application/json');
    });

    it.each(['health', 'keys/foo/metadata', 'keys/foo/encrypt', 'keys/foo/decrypt'])('GET %s: 405 Method Not Allowed, signed or not', async (path) => {
      for (const unsigned of [false, true]) {
        const r = await call({ path, method: 'GET', rawBody: '', unsigned });
        expect(r.status).toBe(405);
        expect(r.headers.allow).toBe('POST');
      }
    });

    it('ARNs of 2048 characters in requestMetadata are accepted by GetKeyMetadata, Encrypt and Decrypt', async () => {
      const long = (prefix: string) => `${prefix}${'a'.repeat(2048 - prefix.length)}`;
      const md = (op: string) => ({ ...metadata(op), awsPrincipalArn: long('arn:aws:iam::123456789012:role/'), kmsKeyArn: long('arn:aws:kms:us-east-1:123456789012:key/') });
      expect(md('Encrypt').awsPrincipalArn).toHaveLength(2048);
      expect(md('Encrypt').kmsKeyArn).toHaveLength(2048);
      const m = await call({ path: 'keys/foo/metadata', body: { requestMetadata: md('DescribeKey') } });
      expect(m.status, m.text).toBe(200);
      const ct = await encrypt('foo', 'long ARNs', { requestMetadata: md('Encrypt') });
      const d = await call({ path: 'keys/foo/decrypt', body: decryptBody(ct, { requestMetadata: md('Decrypt') }) });
      expect(d.status, d.text).toBe(200);
      expect(Buffer.from(d.json.plaintext as string, 'base64').toString()).toBe('long ARNs');
    });
  });

  describe('external key ids', () => {
    it('an id of 128 characters from the whole alphabet is looked up; 129 characters is a ValidationException', async () => {
      const id128 = `Az09.-_${'k'.repeat(121)}`;
      expect(id128).toHaveLength(128);
      expectError(await call({ path: `keys/${id128}/metadata`, body: { requestMetadata: metadata('DescribeKey') } }), 'KeyNotFoundException');
      expectError(await call({ path: `keys/${id128}k/metadata`, body: { requestMetadata: metadata('DescribeKey') } }), 'ValidationException');
      await withToken((s) => s.generateAesKey({ label: id128 }));
      const r = await call({ path: `keys/${id128}/metadata`, body: { requestMetadata: metadata('DescribeKey') } });
      expect(r.status, r.text).toBe(200);
      expect(r.json).toEqual({ keySpec: 'AES_256', keyUsage: ['ENCRYPT', 'DECRYPT'], keyStatus: 'ENABLED' });
    });

    it('two token keys under one label: InvalidStateException for every API, neither key is used', async () => {
      await withToken((s) => {
        s.generateAesKey({ label: 'twin_key' });
        s.generateAesKey({ label: 'twin_key' });
      });
      const ct = await encrypt('foo', 'x');
      expectError(await call({ path: 'keys/twin_key/metadata', body: { requestMetadata: metadata('DescribeKey') } }), 'InvalidStateException');
      expectError(await call({ path: 'keys/twin_key/encrypt', body: encryptBody('x') }), 'InvalidStateException');
      expectError(await call({ path: 'keys/twin_key/decrypt', body: decryptBody(ct) }), 'InvalidStateException');
    });
  });

  describe('requestMetadata', () => {
    it('an unknown kmsOperation is not rejected by any of the four APIs', async () => {
      expect((await call({ path: 'health', body: { requestMetadata: { kmsOperation: 'SomeFutureHealthCheck', kmsRequestId: 'r-2' } } })).status).toBe(200);
      expect((await call({ path: 'keys/foo/metadata', body: { requestMetadata: metadata('SomeFutureDescribe') } })).status).toBe(200);
      const ct = await encrypt('foo', 'future', { requestMetadata: metadata('BulkEncrypt') });
      const d = await call({ path: 'keys/foo/decrypt', body: decryptBody(ct, { requestMetadata: metadata('BulkDecrypt') }) });
      expect(d.status, d.text).toBe(200);
    });

    it('kmsRequestId is an opaque string: values that are no UUID are accepted by every API and logged as they are', async () => {
      const ids = ['not-a-uuid', 'x', '{"json": true} <>&;|`$() \u00e9', '0'.repeat(300)];
      for (const id of ids) {
        const before = f.log.length;
        const health = await call({ path: 'health', body: { requestMetadata: { kmsOperation: 'KmsHealthCheck', kmsRequestId: id } } });
        expect(health.status, health.text).toBe(200);
        const md = { ...metadata('Encrypt'), kmsRequestId: id };
        expect((await call({ path: 'keys/foo/metadata', body: { requestMetadata: { ...md, kmsOperation: 'DescribeKey' } } })).status).toBe(200);
        const ct = await encrypt('foo', 'opaque', { requestMetadata: md });
        expect((await call({ path: 'keys/foo/decrypt', body: decryptBody(ct, { requestMetadata: { ...md, kmsOperation: 'Decrypt' } }) })).status).toBe(200);
        expect(f.log.slice(before).map((e) => e.kmsRequestId)).toEqual([id, id, id, id]);
      }
    });

    it('awsPrincipalArn is required by GetKeyMetadata, Encrypt and Decrypt: ValidationException without it', async () => {
      const ct = await encrypt('foo', 'x');
      const without = (op: string) => ({ ...metadata(op), awsPrincipalArn: undefined });
      expectError(await call({ path: 'keys/foo/metadata', body: { requestMetadata: without('DescribeKey') } }), 'ValidationException');
      expectError(await call({ path: 'keys/foo/encrypt', body: encryptBody('x', { requestMetadata: without('Encrypt') }) }), 'ValidationException');
      expectError(await call({ path: 'keys/foo/decrypt', body: decryptBody(ct, { requestMetadata: without('Decrypt') }) }), 'ValidationException');
    });

    it('kmsKeyArn is required by Encrypt and Decrypt; GetKeyMetadata (as for CreateKey) answers without it', async () => {
      const ct = await encrypt('foo', 'x');
      const without = (op: string) => ({ ...metadata(op), kmsKeyArn: undefined });
      expectError(await call({ path: 'keys/foo/encrypt', body: encryptBody('x', { requestMetadata: without('Encrypt') }) }), 'ValidationException');
      expectError(await call({ path: 'keys/foo/decrypt', body: decryptBody(ct, { requestMetadata: without('Decrypt') }) }), 'ValidationException');
      const r = await call({ path: 'keys/foo/metadata', body: { requestMetadata: without('CreateKey') } });
      expect(r.status, r.text).toBe(200);
      expect(r.json.keySpec).toBe('AES_256');
    });

    it('the optional awsSourceVpc, awsSourceVpce and kmsViaService are accepted present or absent; kmsViaService is logged', async () => {
      const extra = { awsSourceVpc: 'vpc-0123456789abcdef0', awsSourceVpce: 'vpce-0123456789abcdef0', kmsViaService: 'ebs' };
      for (const [md, logged] of [
        [{ ...metadata('Encrypt'), ...extra }, 'ebs'],
        [metadata('Encrypt'), undefined],
      ] as const) {
        const before = f.log.length;
        expect((await call({ path: 'keys/foo/metadata', body: { requestMetadata: { ...md, kmsOperation: 'DescribeKey' } } })).status).toBe(200);
        const ct = await encrypt('foo', 'vpc', { requestMetadata: md });
        expect((await call({ path: 'keys/foo/decrypt', body: decryptBody(ct, { requestMetadata: { ...md, kmsOperation: 'Decrypt' } }) })).status).toBe(200);
        expect(f.log.slice(before).map((e: XksLogEntry) => e.kmsViaService)).toEqual([logged, logged, logged]);
      }
    });
  });

  describe('Encrypt and Decrypt fields', () => {
    it('Decrypt without encryptionAlgorithm, or with one other than AES_GCM: ValidationException', async () => {
      const ct = await encrypt('foo', 'x');
      expectError(await call({ path: 'keys/foo/decrypt', body: decryptBody(ct, { encryptionAlgorithm: undefined }) }), 'ValidationException');
      expectError(await call({ path: 'keys/foo/decrypt', body: decryptBody(ct, { encryptionAlgorithm: 'AES_CBC' }) }), 'ValidationException');
    });

    it('Decrypt without ciphertext or initializationVector: InvalidCiphertextException', async () => {
      const ct = await encrypt('foo', 'x');
      expectError(await call({ path: 'keys/foo/decrypt', body: decryptBody(ct, { ciphertext: undefined }) }), 'InvalidCiphertextException');
      expectError(await call({ path: 'keys/foo/decrypt', body: decryptBody(ct, { initializationVector: undefined }) }), 'InvalidCiphertextException');
    });

    it('AAD that is not Base64: ValidationException on Encrypt, InvalidCiphertextException on Decrypt', async () => {
      const ct = await encrypt('foo', 'x');
      expectError(await call({ path: 'keys/foo/encrypt', body: encryptBody('x', { additionalAuthenticatedData: 'not base64!' }) }), 'ValidationException');
      expectError(await call({ path: 'keys/foo/decrypt', body: decryptBody(ct, { additionalAuthenticatedData: 'not base64!' }) }), 'InvalidCiphertextException');
    });

    it('ciphertext as long as the plaintext, and the plaintext back as long as the ciphertext, for 1, 100 and 4300 bytes', async () => {
      for (const n of [1, 100, 4300]) {
        const pt = randomBytes(n);
        const ct = await encrypt('foo', pt);
        expect(Buffer.from(ct.ciphertext, 'base64')).toHaveLength(n);
        const d = await call({ path: 'keys/foo/decrypt', body: decryptBody(ct) });
        expect(d.status).toBe(200);
        const back = Buffer.from(d.json.plaintext as string, 'base64');
        expect(back).toHaveLength(n);
        expect(back.equals(pt)).toBe(true);
      }
    });

    it('Encrypt returns exactly ciphertext, IV and tag (no ciphertextMetadata); a ciphertextMetadata added at Decrypt is detected', async () => {
      const r = await call({ path: 'keys/foo/encrypt', body: encryptBody('meta') });
      expect(Object.keys(r.json).sort()).toEqual(['authenticationTag', 'ciphertext', 'initializationVector']);
      const ct = r.json as Ciphertext;
      expect((await call({ path: 'keys/foo/decrypt', body: decryptBody(ct) })).status).toBe(200);
      expectError(await call({ path: 'keys/foo/decrypt', body: decryptBody(ct, { ciphertextMetadata: b64(Buffer.alloc(20, 1)) }) }), 'InvalidCiphertextException');
    });

    it('Decrypt takes a 16-byte IV and 20 bytes of ciphertextMetadata (a ciphertext made in the token with them, AAD as the spec builds it)', async () => {
      const iv = randomBytes(16);
      const aad = Buffer.from('project=nile');
      const cm = randomBytes(20);
      const pt = Buffer.from('sixteen-byte IV');
      const out = await withToken((s) => s.gcmEncrypt({ label: 'foo' }, iv, tokenAad(aad, cm), pt));
      const ct = { ciphertext: b64(out.subarray(0, out.length - 16)), initializationVector: b64(iv), authenticationTag: b64(out.subarray(out.length - 16)) };
      const d = await call({ path: 'keys/foo/decrypt', body: decryptBody(ct, { additionalAuthenticatedData: b64(aad), ciphertextMetadata: b64(cm) }) });
      expect(d.status, d.text).toBe(200);
      expect(Buffer.from(d.json.plaintext as string, 'base64').equals(pt)).toBe(true);
      // One bit of the metadata changed: not authentic.
      cm[0]! ^= 1;
      expectError(await call({ path: 'keys/foo/decrypt', body: decryptBody(ct, { additionalAuthenticatedData: b64(aad), ciphertextMetadata: b64(cm) }) }), 'InvalidCiphertextException');
    });

    it('the plaintext Decrypt returns is never in the log', async () => {
      const marker = 'DECRYPTED-PLAINTEXT-MARKER-456';
      const ct = await encrypt('foo', marker);
      const before = f.log.length;
      const d = await call({ path: 'keys/foo/decrypt', body: decryptBody(ct) });
      expect(Buffer.from(d.json.plaintext as string, 'base64').toString()).toBe(marker);
      expect(f.log.slice(before)).toEqual([expect.objectContaining({ api: 'Decrypt', keyId: 'foo', status: 200 })]);
      const all = JSON.stringify(f.log);
      for (const s of [marker, b64(marker)]) expect(all).not.toContain(s);
    });
  });

  describe('SigV4 credentials', () => {
    const SECOND_ID = 'SECONDACCESSKEYIDTWO234';
    const SECOND_SECRET = 'Q2hhbmdlZCBjcmVkZW50aWFscyBmb3Igcm90YXRpb24gdGVzdHM=';

    it('two credentials are accepted at once, each access key id with its own secret only', async () => {
      const proxy = await startXksProxy({ ...f.config, credentials: [{ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY }, { accessKeyId: SECOND_ID, secretAccessKey: SECOND_SECRET }] });
      try {
        const body = { requestMetadata: metadata('DescribeKey') };
        const c = (x: Partial<XksCall>) => xksCall(proxy, { path: 'keys/foo/metadata', body, ...x });
        expect((await c({})).status).toBe(200);
        expect((await c({ accessKeyId: SECOND_ID, secretAccessKey: SECOND_SECRET })).status).toBe(200);
        expectError(await c({ accessKeyId: SECOND_ID, secretAccessKey: SECRET_ACCESS_KEY }), 'AuthenticationFailedException');
        expectError(await c({ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECOND_SECRET }), 'AuthenticationFailedException');
      } finally {
        await proxy.close();
      }
    });
  });

  describe('HTTPS', () => {
    let dir: string;
    let cert: string;
    let tlsProxy: XksFixture;
    let port: number;
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'xks-spec-tls-'));
      cert = join(dir, 'proxy.crt');
      const key = join(dir, 'proxy.key');
      execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-days', '2', '-keyout', key, '-out', cert],
        { stdio: 'pipe' },
      );
      tlsProxy = await xksFixture({ tls: { cert, key }, hsm: f.hsm });
      port = Number(new URL(tlsProxy.proxy.url).port);
    });
    afterAll(async () => {
      await tlsProxy?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    /** A TLS handshake with the proxy; resolves the connected socket's facts, rejects on failure. */
    function handshake(opts: ConnectionOptions): Promise<{ protocol: string | null; cipher: string; alpn: string | false | null; fingerprint: string }> {
      return new Promise((resolve, reject) => {
        const s: TLSSocket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(cert), ...opts }, () => {
          const facts = { protocol: s.getProtocol(), cipher: s.getCipher().standardName, alpn: s.alpnProtocol, fingerprint: s.getPeerX509Certificate()!.fingerprint256 };
          s.end();
          resolve(facts);
        });
        s.on('error', reject);
      });
    }

    it('the API over HTTPS: the configured certificate is presented and verifies for its host name; another name does not verify', async () => {
      expect(tlsProxy.proxy.url).toMatch(/^https:/);
      const r = await xksCall(tlsProxy.proxy, { path: 'health', body: { requestMetadata: { kmsOperation: 'KmsHealthCheck', kmsRequestId: 'r-3' } }, ca: readFileSync(cert) });
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('application/json');
      const facts = await handshake({});
      expect(facts.fingerprint).toBe(new X509Certificate(readFileSync(cert)).fingerprint256);
      await expect(handshake({ servername: 'proxy.example.com' })).rejects.toThrow(/does not match|altnames/i);
    });

    it.each<[string, ConnectionOptions]>([
      ['TLS_AES_256_GCM_SHA384', { minVersion: 'TLSv1.3', ciphers: 'TLS_AES_256_GCM_SHA384' }],
      ['TLS_CHACHA20_POLY1305_SHA256', { minVersion: 'TLSv1.3', ciphers: 'TLS_CHACHA20_POLY1305_SHA256' }],
      ['TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384', { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' }],
    ])('a client that offers only %s connects with it', async (suite, opts) => {
      const facts = await handshake(opts);
      expect(facts.cipher).toBe(suite);
      expect(facts.protocol).toBe(suite.startsWith('TLS_ECDHE') ? 'TLSv1.2' : 'TLSv1.3');
    });

    it('HTTP/1.1 is spoken, also to a client that offers h2 first (ALPN)', async () => {
      const facts = await handshake({ ALPNProtocols: ['h2', 'http/1.1'] });
      expect(facts.alpn).not.toBe('h2');
      const version = await new Promise<string>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(cert), method: 'GET', path: `${tlsProxy.proxy.uriPath}/health`, ALPNProtocols: ['h2', 'http/1.1'] } as never, (res) => {
          res.resume();
          res.on('end', () => resolve(`${res.httpVersion} ${res.statusCode}`));
        });
        req.on('error', reject);
        req.end();
      });
      expect(version).toBe('1.1 405');
    });
  });
});
