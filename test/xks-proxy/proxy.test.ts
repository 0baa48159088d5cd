/**
 * The XKS proxy over HTTP against a SoftHSM2 token, with a SigV4 client of our own
 * (test/xks-proxy/client.ts): authentication refusals, malformed bodies and sizes, unknown keys,
 * key usage, AAD binding (the spec's length-prefixed AAD || ciphertextMetadata), CDIV, and the
 * log. Skipped when SoftHSM2 or pkcs11js is missing.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createXksKey, XKS_ERRORS } from '../../src/xks-proxy/index.js';
import { xksCall, metadata, type XksCall } from './client.js';
import { fileFixture, hsmMissing, SECRET_ACCESS_KEY } from './harness.js';
import { USER_PIN } from '../local-kms/softhsm.js';

const f = fileFixture();

const call = (c: XksCall) => xksCall(f.proxy, c);
const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
const encryptBody = (plaintext: string, extra: Record<string, unknown> = {}) => ({
  requestMetadata: metadata('Encrypt'),
  plaintext: b64(plaintext),
  encryptionAlgorithm: 'AES_GCM',
  ...extra,
});
async function encrypt(key: string, plaintext: string, extra: Record<string, unknown> = {}) {
  const r = await call({ path: `keys/${key}/encrypt`, body: encryptBody(plaintext, extra) });
  expect(r.status, r.text).toBe(200);
  return r.json as { ciphertext: string; initializationVector: string; authenticationTag: string; ciphertextDataIntegrityValue?: string };
}
const decrypt = (key: string, ct: { ciphertext: string; initializationVector: string; authenticationTag: string }, extra: Record<string, unknown> = {}) =>
  call({
    path: `keys/${key}/decrypt`,
    body: { requestMetadata: metadata('Decrypt'), ciphertext: ct.ciphertext, initializationVector: ct.initializationVector, authenticationTag: ct.authenticationTag, encryptionAlgorithm: 'AES_GCM', ...extra },
  });
const health = { requestMetadata: { kmsOperation: 'KmsHealthCheck', kmsRequestId: 'r-1' } };

function expectError(r: { status: number; json: Record<string, unknown> }, name: keyof typeof XKS_ERRORS) {
  expect(r.json.errorName, JSON.stringify(r.json)).toBe(name);
  expect(r.status).toBe(XKS_ERRORS[name]);
  const m = r.json.errorMessage as string | undefined;
  if (m !== undefined) expect(m).toMatch(/^[\x20-\x7e]{0,511}$/);
}

describe.skipIf(hsmMissing !== undefined)(`XKS proxy${hsmMissing ? ` (skipped: ${hsmMissing})` : ''}`, () => {
  it('GetHealthStatus answers the spec shape (fleet size, vendor, one ACTIVE token)', async () => {
    const r = await call({ path: 'health', body: health });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ xksProxyFleetSize: 1, xksProxyVendor: expect.any(String), xksProxyModel: expect.any(String), ekmVendor: 'SoftHSM project' });
    expect(r.json.ekmFleetDetails).toEqual([{ id: expect.any(String), model: 'SoftHSM v2', healthStatus: 'ACTIVE' }]);
  });

  describe('SigV4 (service kms-xks-proxy, the configured Region, 5 minutes)', () => {
    const now = Date.now();
    it.each<[string, Partial<XksCall>]>([
      ['no Authorization header', { unsigned: true }],
      ['an unknown access key id', { accessKeyId: 'ABCDEFGHIJKLMNOPQRST' }],
      ['a wrong secret', { secretAccessKey: `x${SECRET_ACCESS_KEY}` }],
      ['another service (kms)', { service: 'kms' }],
      ['another Region', { region: 'eu-west-1' }],
      ['a signing time 6 minutes old', { signingDate: new Date(now - 6 * 60_000) }],
      ['a signing time 6 minutes ahead', { signingDate: new Date(now + 6 * 60_000) }],
      ['a body other than the one signed', { tamperedBody: JSON.stringify({ requestMetadata: { kmsOperation: 'X', kmsRequestId: 'other' } }) }],
    ])('%s: 401 AuthenticationFailedException', async (_, c) => {
      for (const path of ['health', 'keys/foo/metadata']) {
        const r = await call({ path, body: { requestMetadata: metadata('DescribeKey') }, ...c });
        expectError(r, 'AuthenticationFailedException');
        expect(r.text).not.toContain(SECRET_ACCESS_KEY);
      }
    });

    it('a signing time 4 minutes old is accepted', async () => {
      expect((await call({ path: 'health', body: health, signingDate: new Date(now - 4 * 60_000) })).status).toBe(200);
    });

    it('an unauthenticated request is refused before its body is read: no ValidationException for garbage', async () => {
      expectError(await call({ path: 'keys/foo/encrypt', rawBody: 'not json', unsigned: true }), 'AuthenticationFailedException');
    });
  });

  describe('paths and methods', () => {
    it.each(['/other/kms/xks/v1/health', '/example/uri/path/prefix/kms/xks/v2/health', '/example/uri/path/prefix/kms/xks/v1/keys/foo/sign', '/example/uri/path/prefix/kms/xks/v1/keys//encrypt', '/'])(
      '%s: 404 InvalidUriPathException',
      async (path) => {
        expectError(await call({ path, body: health }), 'InvalidUriPathException');
      },
    );

    it('GET on an API URI: 405 with Allow: POST', async () => {
      const r = await call({ path: 'health', method: 'GET', rawBody: '' });
      expect(r.status).toBe(405);
      expect(r.headers.allow).toBe('POST');
    });
  });

  describe('request bodies', () => {
    // AWS's compliance client (test/third-party/) expects ValidationException for these on
    // GetHealthStatus as well, although the spec's error table lists it for all APIs but that one.
    it.each<[string, string]>([
      ['not JSON', '{"requestMetadata":'],
      ['a JSON array', '[]'],
      ['no requestMetadata', '{}'],
      ['requestMetadata without kmsRequestId', JSON.stringify({ requestMetadata: { kmsOperation: 'KmsHealthCheck' } })],
      ['kmsRequestId not a string', JSON.stringify({ requestMetadata: { kmsOperation: 'KmsHealthCheck', kmsRequestId: 12345 } })],
    ])('health with %s: ValidationException', async (_, raw) => {
      expectError(await call({ path: 'health', rawBody: raw }), 'ValidationException');
    });

    it.each<[string, string]>([
      ['not JSON', '{"requestMetadata":'],
      ['no requestMetadata', '{}'],
      ['requestMetadata without awsPrincipalArn', JSON.stringify({ requestMetadata: { kmsOperation: 'DescribeKey', kmsRequestId: 'r' } })],
    ])('GetKeyMetadata with %s: ValidationException', async (_, raw) => {
      expectError(await call({ path: 'keys/foo/metadata', rawBody: raw }), 'ValidationException');
    });

    it('the content of kmsRequestId and kmsOperation is never judged: empty strings pass every API; other fields of the wrong type are ignored', async () => {
      for (const odd of [{ kmsRequestId: '' }, { kmsOperation: '' }, { kmsRequestId: '', kmsOperation: '' }, { awsSourceVpc: 5 }, { kmsViaService: ['x'] }]) {
        const md = (op: string) => ({ ...metadata(op), ...odd });
        expect((await call({ path: 'health', body: { requestMetadata: md('KmsHealthCheck') } })).status, JSON.stringify(odd)).toBe(200);
        expect((await call({ path: 'keys/foo/metadata', body: { requestMetadata: md('DescribeKey') } })).status, JSON.stringify(odd)).toBe(200);
        const e = await call({ path: 'keys/foo/encrypt', body: { requestMetadata: md('Encrypt'), plaintext: b64('x'), encryptionAlgorithm: 'AES_GCM' } });
        expect(e.status, JSON.stringify(odd)).toBe(200);
        const ct = e.json as { ciphertext: string; initializationVector: string; authenticationTag: string };
        const d = await call({ path: 'keys/foo/decrypt', body: { requestMetadata: md('Decrypt'), ...ct, encryptionAlgorithm: 'AES_GCM' } });
        expect(d.status, JSON.stringify(odd)).toBe(200);
        expect(d.json.plaintext).toBe(b64('x'));
      }
    });

    it('an unknown kmsOperation is not rejected (the spec forbids it)', async () => {
      expect((await call({ path: 'keys/foo/metadata', body: { requestMetadata: metadata('SomeFutureOperation') } })).status).toBe(200);
    });

    it.each<[string, Record<string, unknown>, keyof typeof XKS_ERRORS]>([
      ['no plaintext', { plaintext: undefined }, 'ValidationException'],
      ['plaintext not Base64', { plaintext: 'abc$' }, 'ValidationException'],
      ['URL-safe Base64 plaintext', { plaintext: '-_-_' }, 'ValidationException'],
      ['plaintext a number', { plaintext: 42 }, 'ValidationException'],
      ['no encryptionAlgorithm', { encryptionAlgorithm: undefined }, 'ValidationException'],
      ['encryptionAlgorithm AES_CBC', { encryptionAlgorithm: 'AES_CBC' }, 'ValidationException'],
      ['CDIV algorithm SHA_512', { ciphertextDataIntegrityValueAlgorithm: 'SHA_512' }, 'ValidationException'],
      ['no kmsKeyArn', { requestMetadata: { ...metadata('Encrypt'), kmsKeyArn: undefined } }, 'ValidationException'],
      ['4301 bytes of plaintext', { plaintext: b64(Buffer.alloc(4301)) }, 'UnsupportedOperationException'],
      ['8193 bytes of AAD', { additionalAuthenticatedData: b64(Buffer.alloc(8193)) }, 'UnsupportedOperationException'],
    ])('Encrypt with %s: %s', async (_, extra, name) => {
      expectError(await call({ path: 'keys/foo/encrypt', body: encryptBody('hello', extra) }), name);
    });

    it('4300 bytes of plaintext and 8192 of AAD (the spec minimums) round-trip', async () => {
      const pt = Buffer.alloc(4300, 7).toString('latin1');
      const aad = b64(Buffer.alloc(8192, 1));
      const ct = await encrypt('foo', pt, { additionalAuthenticatedData: aad });
      const r = await decrypt('foo', ct, { additionalAuthenticatedData: aad });
      expect(r.status).toBe(200);
      expect(Buffer.from(r.json.plaintext as string, 'base64').equals(Buffer.from(pt, 'latin1'))).toBe(true);
    });

    it('a body over 64 KiB: 501 UnsupportedOperationException', async () => {
      expectError(await call({ path: 'keys/foo/encrypt', rawBody: JSON.stringify(encryptBody('x', { pad: 'a'.repeat(70_000) })) }), 'UnsupportedOperationException');
    });

    it.each<[string, Record<string, unknown>]>([
      ['an 8-byte IV', { initializationVector: b64(Buffer.alloc(8)) }],
      ['a 15-byte tag', { authenticationTag: b64(Buffer.alloc(15)) }],
      ['no tag', { authenticationTag: undefined }],
      ['ciphertext not Base64', { ciphertext: '%%%%' }],
      ['21 bytes of ciphertextMetadata', { ciphertextMetadata: b64(Buffer.alloc(21)) }],
    ])('Decrypt with %s: InvalidCiphertextException', async (_, extra) => {
      const ct = await encrypt('foo', 'hello');
      expectError(await decrypt('foo', ct, extra), 'InvalidCiphertextException');
    });
  });

  describe('keys', () => {
    it('an unknown key: 404 KeyNotFoundException for each API', async () => {
      expectError(await call({ path: 'keys/no_such_key/metadata', body: { requestMetadata: metadata('DescribeKey') } }), 'KeyNotFoundException');
      expectError(await call({ path: 'keys/no_such_key/encrypt', body: encryptBody('x') }), 'KeyNotFoundException');
      expectError(await decrypt('no_such_key', await encrypt('foo', 'x')), 'KeyNotFoundException');
    });

    it('a key id outside the spec alphabet: ValidationException', async () => {
      expectError(await call({ path: 'keys/foo%20bar/metadata', body: { requestMetadata: metadata('DescribeKey') } }), 'ValidationException');
    });

    it('GetKeyMetadata reports the token attributes as keyUsage', async () => {
      const usage = async (k: string) => (await call({ path: `keys/${k}/metadata`, body: { requestMetadata: metadata('CreateKey') } })).json;
      expect(await usage('foo')).toEqual({ keySpec: 'AES_256', keyUsage: ['ENCRYPT', 'DECRYPT'], keyStatus: 'ENABLED' });
      expect(await usage('encrypt_only_key')).toEqual({ keySpec: 'AES_256', keyUsage: ['ENCRYPT'], keyStatus: 'ENABLED' });
      expect(await usage('decrypt_only_key')).toEqual({ keySpec: 'AES_256', keyUsage: ['DECRYPT'], keyStatus: 'ENABLED' });
      expect(await usage('impotent_key')).toEqual({ keySpec: 'AES_256', keyUsage: [], keyStatus: 'ENABLED' });
    });

    it('encrypt-only, decrypt-only and unusable keys answer InvalidKeyUsageException', async () => {
      const ct = await encrypt('encrypt_only_key', 'x');
      expectError(await decrypt('encrypt_only_key', ct), 'InvalidKeyUsageException');
      expectError(await call({ path: 'keys/encrypt_only_key/encrypt', body: encryptBody('x', { ciphertextDataIntegrityValueAlgorithm: 'SHA_256' }) }), 'InvalidKeyUsageException');
      expectError(await call({ path: 'keys/decrypt_only_key/encrypt', body: encryptBody('x') }), 'InvalidKeyUsageException');
      expectError(await call({ path: 'keys/impotent_key/encrypt', body: encryptBody('x') }), 'InvalidKeyUsageException');
      expectError(await decrypt('impotent_key', ct), 'InvalidKeyUsageException');
    });
  });

  describe('AES-GCM and the AAD', () => {
    const aad = b64('project=nile,department=marketing');

    it('round trip: ciphertext as long as the plaintext, 12-byte IV, 16-byte tag, a fresh IV each time', async () => {
      const a = await encrypt('foo', 'Hello World!', { additionalAuthenticatedData: aad });
      const b = await encrypt('foo', 'Hello World!', { additionalAuthenticatedData: aad });
      expect(Buffer.from(a.ciphertext, 'base64')).toHaveLength(12);
      expect(Buffer.from(a.initializationVector, 'base64')).toHaveLength(12);
      expect(Buffer.from(a.authenticationTag, 'base64')).toHaveLength(16);
      expect(a.initializationVector).not.toBe(b.initializationVector);
      const r = await decrypt('foo', a, { additionalAuthenticatedData: aad });
      expect(r.status).toBe(200);
      expect(Buffer.from(r.json.plaintext as string, 'base64').toString()).toBe('Hello World!');
    });

    it('a wrong, missing or added AAD: InvalidCiphertextException, the same message every time', async () => {
      const withAad = await encrypt('foo', 'secret', { additionalAuthenticatedData: aad });
      const without = await encrypt('foo', 'secret');
      const answers = [
        await decrypt('foo', withAad, { additionalAuthenticatedData: b64('project=blue,department=finance') }),
        await decrypt('foo', withAad),
        await decrypt('foo', without, { additionalAuthenticatedData: aad }),
        await decrypt('foo', { ...withAad, authenticationTag: b64(Buffer.alloc(16)) }, { additionalAuthenticatedData: aad }),
      ];
      for (const r of answers) expectError(r, 'InvalidCiphertextException');
      expect(new Set(answers.map((r) => r.json.errorMessage)).size).toBe(1);
    });

    it('AAD and ciphertextMetadata cannot stand in for each other (their lengths are bound into the token AAD)', async () => {
      const cm = b64('key_version=1');
      // Encrypted with AAD = X and no metadata; presented as AAD "" with metadata X: must fail.
      const ct = await encrypt('foo', 'secret', { additionalAuthenticatedData: cm });
      expectError(await decrypt('foo', ct, { ciphertextMetadata: cm }), 'InvalidCiphertextException');
      // And the other way, with metadata added to a ciphertext that had none.
      expectError(await decrypt('foo', ct, { additionalAuthenticatedData: cm, ciphertextMetadata: b64('v') }), 'InvalidCiphertextException');
    });

    it('the token AAD is 2-byte AAD length || AAD || 1-byte metadata length || metadata (spec, Encrypt)', async () => {
      const { tokenAad } = await import('../../src/xks-proxy/token-keys.js');
      expect(tokenAad(undefined, undefined).toString('hex')).toBe('000000');
      expect(tokenAad(Buffer.from('ab'), Buffer.from('c')).toString('hex')).toBe('0002616201' + '63');
      expect(tokenAad(Buffer.alloc(300, 1), undefined).subarray(0, 2).toString('hex')).toBe('012c');
    });

    it('CDIV: SHA-256 over AAD || IV || ciphertext || tag (spec Appendix C)', async () => {
      for (const extra of [{ additionalAuthenticatedData: aad }, {}]) {
        const r = await encrypt('foo', 'Hello World!', { ...extra, ciphertextDataIntegrityValueAlgorithm: 'SHA_256' });
        const expected = createHash('sha256')
          .update(Buffer.from((extra as { additionalAuthenticatedData?: string }).additionalAuthenticatedData ?? '', 'base64'))
          .update(Buffer.from(r.initializationVector, 'base64'))
          .update(Buffer.from(r.ciphertext, 'base64'))
          .update(Buffer.from(r.authenticationTag, 'base64'))
          .digest('base64');
        expect(r.ciphertextDataIntegrityValue).toBe(expected);
      }
      expect((await encrypt('foo', 'x')).ciphertextDataIntegrityValue).toBeUndefined();
    });
  });

  it('the log has request metadata, status and time per request, and never the plaintext, the secret or the PIN', async () => {
    const before = f.log.length;
    await encrypt('foo', 'PLAINTEXT-MARKER-123');
    await call({ path: 'keys/foo/encrypt', body: encryptBody('x'), secretAccessKey: `x${SECRET_ACCESS_KEY}` });
    const entries = f.log.slice(before);
    expect(entries).toEqual([
      expect.objectContaining({ api: 'Encrypt', keyId: 'foo', status: 200, kmsRequestId: '4112f4d6-db54-4af4-ae30-c55a22a8dfae', kmsOperation: 'Encrypt', accessKeyId: 'BETWEEN2TENAND3TENCHARACTERS', ms: expect.any(Number) }),
      expect.objectContaining({ api: 'Encrypt', keyId: 'foo', status: 401, errorName: 'AuthenticationFailedException' }),
    ]);
    const all = JSON.stringify(f.log);
    for (const secret of [USER_PIN, SECRET_ACCESS_KEY, 'PLAINTEXT-MARKER-123', b64('PLAINTEXT-MARKER-123')]) expect(all).not.toContain(secret);
  });

  it('a key replaced in the token while the proxy runs is used as it is now (handles by label are not cached)', async () => {
    const { TokenSession } = await import('../../src/local-kms/pkcs11.js');
    await createXksKey(f.config, 'replaced_key');
    const old = await encrypt('replaced_key', 'under the old key');
    const s = await TokenSession.open({ module: f.config.pkcs11.module, tokenLabel: f.config.pkcs11.tokenLabel }, USER_PIN);
    try {
      s.destroy({ label: 'replaced_key' });
    } finally {
      s.close();
    }
    await createXksKey(f.config, 'replaced_key', 'encrypt');
    expect((await call({ path: 'keys/replaced_key/metadata', body: { requestMetadata: metadata('DescribeKey') } })).json.keyUsage).toEqual(['ENCRYPT']);
    await encrypt('replaced_key', 'under the new key');
    expectError(await decrypt('replaced_key', old), 'InvalidKeyUsageException');
  });

  it('concurrent requests all succeed (one token session, calls never interleave)', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => encrypt('foo', `message ${i}`)));
    const back = await Promise.all(results.map((ct) => decrypt('foo', ct)));
    expect(back.map((r) => Buffer.from(r.json.plaintext as string, 'base64').toString())).toEqual(results.map((_, i) => `message ${i}`));
  });
});
