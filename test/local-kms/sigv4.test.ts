import { createHash } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignatureV4 } from '@smithy/signature-v4';
import { DescribeKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { accessKeyIdOf, checkSigV4, formatAmzDate, verifySigV4 } from '../../src/local-kms/sigv4.js';
import { KmsServiceError } from '../../src/local-kms/errors.js';
import { NodeSha256 } from './signing.js';

const AKID = 'AKIDLOCALTEST0001';
const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const NOW = Date.UTC(2024, 4, 17, 12, 0, 0);
/** The server's clock and the one Region it serves. */
const AT_NOW = { nowMs: NOW, region: 'us-east-1' };

interface Req {
  method?: string;
  path?: string;
  query?: Record<string, string | string[]>;
  headers?: Record<string, string>;
  body?: string;
  signingDate?: Date;
  secret?: string;
  service?: string;
  applyChecksum?: boolean;
  sessionToken?: string;
  region?: string;
  unsigned?: string[];
}

/** Signs like the SDK does and returns what the server would see (lower-case header names, raw target). */
async function signed(r: Req = {}) {
  const body = r.body ?? '{"KeyId":"alias/app"}';
  const signer = new SignatureV4({
    service: r.service ?? 'kms',
    region: r.region ?? 'us-east-1',
    sha256: NodeSha256,
    applyChecksum: r.applyChecksum ?? false,
    credentials: { accessKeyId: AKID, secretAccessKey: r.secret ?? SECRET, ...(r.sessionToken ? { sessionToken: r.sessionToken } : {}) },
  });
  const out = await signer.sign(
    {
      method: r.method ?? 'POST',
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: 4599,
      path: r.path ?? '/',
      query: r.query ?? {},
      headers: {
        host: '127.0.0.1:4599',
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'TrentService.DescribeKey',
        ...r.headers,
      },
      body,
    } as never,
    { signingDate: r.signingDate ?? new Date(NOW), unsignableHeaders: new Set(r.unsigned ?? []) },
  );
  const headers: IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries((out as unknown as { headers: Record<string, string> }).headers)) headers[k.toLowerCase()] = v;
  const qs = Object.entries(r.query ?? {})
    .flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${encodeURIComponent(k)}=${encodeURIComponent(x)}`))
    .join('&');
  return { method: r.method ?? 'POST', path: (r.path ?? '/') + (qs ? `?${qs}` : ''), headers, body: Buffer.from(body) };
}

function rejects(fn: () => void, type: string, message?: string | RegExp): KmsServiceError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KmsServiceError);
    const e = err as KmsServiceError;
    expect(e.type).toBe(type);
    expect(e.status).toBe(400);
    if (typeof message === 'string') expect(e.message).toBe(message);
    else if (message) expect(e.message).toMatch(message);
    return e;
  }
  throw new Error(`expected ${type}`);
}

const MISMATCH = /^The request signature we calculated does not match the signature you provided\. Check your AWS Secret Access Key and signing method\./;

describe('verifySigV4 against @smithy/signature-v4 (the signer of @aws-sdk/client-kms)', () => {
  it('accepts what the SDK signs', async () => {
    const r = await signed();
    expect(r.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDLOCALTEST0001\/20240517\/us-east-1\/kms\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=[0-9a-f]{64}$/);
    expect(() => verifySigV4(r, SECRET, AT_NOW)).not.toThrow();
    expect(accessKeyIdOf(r.headers)).toBe(AKID);
  });

  it('accepts queries, odd paths, session tokens, x-amz-content-sha256 and folded header whitespace', async () => {
    const cases: Req[] = [
      { query: { b: 'two words', a: ['z', 'y'], 'sp ce': "it's (a) *test*!" } },
      { path: '/some path/with%2Fslash/./x/../seg', method: 'GET', body: '' },
      { sessionToken: 'FwoGZXIvYXdzEBYaDK' },
      { applyChecksum: true },
      { headers: { 'x-custom': '  spaced    out  value ' } },
      { body: '' },
      { body: JSON.stringify({ Plaintext: Buffer.alloc(4096, 7).toString('base64') }) },
    ];
    for (const c of cases) {
      const r = await signed(c);
      expect(() => verifySigV4(r, SECRET, AT_NOW), JSON.stringify(c)).not.toThrow();
    }
  });

  it('rejects a wrong secret with InvalidSignatureException and the AWS message', async () => {
    const r = await signed({ secret: 'not-the-secret' });
    const e = rejects(() => verifySigV4(r, SECRET, AT_NOW), 'InvalidSignatureException', MISMATCH);
    expect(e.message).not.toContain(SECRET);
    expect(e.message).toContain('The String-to-Sign should have been');
  });

  it('rejects a signature replayed on another body (x-amz-content-sha256 is not trusted)', async () => {
    const r = await signed({ body: '{"KeyId":"alias/app"}', applyChecksum: true });
    rejects(() => verifySigV4({ ...r, body: Buffer.from('{"KeyId":"alias/other"}') }, SECRET, AT_NOW), 'InvalidSignatureException', MISMATCH);
    // Even with the (signed) content hash header rewritten to match the new body.
    const forged = { ...r.headers, 'x-amz-content-sha256': createHash('sha256').update('{"KeyId":"alias/other"}').digest('hex') };
    rejects(() => verifySigV4({ ...r, headers: forged, body: Buffer.from('{"KeyId":"alias/other"}') }, SECRET, AT_NOW), 'InvalidSignatureException', MISMATCH);
    // An UNSIGNED-PAYLOAD signature does not bind the body, so it is not accepted.
    const unsigned = await signed({ headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
    rejects(() => verifySigV4(unsigned, SECRET, AT_NOW), 'InvalidSignatureException', MISMATCH);
  });

  it('rejects any tampering with signed parts', async () => {
    const r = await signed({ query: { a: '1' } });
    const variants = [
      { ...r, method: 'PUT' },
      { ...r, path: '/other?a=1' },
      { ...r, path: '/?a=2' },
      { ...r, headers: { ...r.headers, 'x-amz-target': 'TrentService.Decrypt' } },
      { ...r, headers: { ...r.headers, host: 'evil.example:4599' } },
      { ...r, headers: { ...r.headers, authorization: String(r.headers.authorization).replace(/Signature=(.)/, (_m, c) => `Signature=${c === 'a' ? 'b' : 'a'}`) } },
      { ...r, headers: { ...r.headers, authorization: String(r.headers.authorization).replace(/Signature=.*/, 'Signature=zz') } },
      { ...r, headers: { ...r.headers, authorization: String(r.headers.authorization).replace('us-east-1', 'eu-west-1') } },
    ];
    for (const v of variants) rejects(() => verifySigV4(v, SECRET, AT_NOW), 'InvalidSignatureException');
    // Headers that are not signed may change (proxies add them).
    expect(() => verifySigV4({ ...r, headers: { ...r.headers, 'user-agent': 'x', 'x-forwarded-for': '1.2.3.4' } }, SECRET, AT_NOW)).not.toThrow();
  });

  // IAM User Guide, "AWS Signature Version 4 for API requests" (five minutes); KMS answers "- 5 min."
  // (aws/aws-sdk-js#2340, aws/aws-sdk-js-v3#6400). This test said 15 minutes before review 11.
  it('enforces the 5-minute window with the AWS KMS wording', async () => {
    const min = 60_000;
    expect(() => verifySigV4(signedSync, SECRET, AT_NOW)).not.toThrow();
    for (const skew of [-5 * min, -4 * min, 4 * min, 5 * min]) {
      const r = await signed({ signingDate: new Date(NOW + skew) });
      expect(() => verifySigV4(r, SECRET, AT_NOW), String(skew)).not.toThrow();
    }
    const old = await signed({ signingDate: new Date(NOW - 6 * min) });
    rejects(() => verifySigV4(old, SECRET, AT_NOW), 'InvalidSignatureException',
      'Signature expired: 20240517T115400Z is now earlier than 20240517T115500Z (20240517T120000Z - 5 min.)');
    const future = await signed({ signingDate: new Date(NOW + 6 * min) });
    rejects(() => verifySigV4(future, SECRET, AT_NOW), 'InvalidSignatureException',
      'Signature not yet current: 20240517T120600Z is still later than 20240517T120500Z (20240517T120000Z + 5 min.)');
    // The date cannot be moved: it is signed.
    const moved = { ...old, headers: { ...old.headers, 'x-amz-date': formatAmzDate(NOW) } };
    rejects(() => verifySigV4(moved, SECRET, AT_NOW), 'InvalidSignatureException');
  });

  it('answers missing or garbled authentication like AWS', async () => {
    const r = await signed();
    const { authorization, ...noAuth } = r.headers;
    expect(authorization).toBeDefined();
    rejects(() => verifySigV4({ ...r, headers: noAuth }, SECRET, AT_NOW), 'MissingAuthenticationTokenException');
    const auth = (v: string) => ({ ...r, headers: { ...r.headers, authorization: v } });
    rejects(() => verifySigV4(auth('AWS4-HMAC-SHA256'), SECRET, AT_NOW), 'IncompleteSignatureException',
      /requires 'Credential' parameter.*requires 'Signature' parameter.*requires 'SignedHeaders' parameter/);
    rejects(() => verifySigV4(auth('AWS4-HMAC-SHA256 Credential=abc'), SECRET, AT_NOW), 'IncompleteSignatureException',
      /requires 'Signature' parameter.*Credential must have exactly 5 slash-delimited elements/);
    rejects(() => verifySigV4(auth('AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=00'), SECRET, AT_NOW), 'IncompleteSignatureException');
    rejects(() => verifySigV4(auth('Basic dXNlcjpwYXNz'), SECRET, AT_NOW), 'IncompleteSignatureException');
    const { 'x-amz-date': _d, ...noDate } = r.headers;
    rejects(() => verifySigV4({ ...r, headers: noDate }, SECRET, AT_NOW), 'IncompleteSignatureException', /'X-Amz-Date' or a 'Date' header/);
    rejects(() => verifySigV4({ ...r, headers: { ...r.headers, 'x-amz-date': '2024-05-17T12:00:00Z' } }, SECRET, AT_NOW), 'IncompleteSignatureException', /ISO-8601/);
    const wrongService = await signed({ service: 's3' });
    rejects(() => verifySigV4(wrongService, SECRET, AT_NOW), 'InvalidSignatureException', "Credential should be scoped to correct service: 'kms'.");
    const scopeDate = auth(String(r.headers.authorization).replace('/20240517/', '/20240516/'));
    rejects(() => verifySigV4(scopeDate, SECRET, AT_NOW), 'InvalidSignatureException', /Date in Credential scope does not match/);
    const noHost = auth(String(r.headers.authorization).replace('SignedHeaders=content-type;host;', 'SignedHeaders=content-type;'));
    rejects(() => verifySigV4(noHost, SECRET, AT_NOW), 'InvalidSignatureException', /'Host'.*SignedHeader/);
    const noDateSigned = auth(String(r.headers.authorization).replace(';x-amz-date', ''));
    rejects(() => verifySigV4(noDateSigned, SECRET, AT_NOW), 'InvalidSignatureException', /'X-Amz-Date' must be a 'SignedHeader'/);
  });

  // IAM User Guide, "Create a signed AWS API request" (credential scope date/Region/service/aws4_request).
  it('the credential scope must name the Region this server serves', async () => {
    const west = await signed({ region: 'eu-west-1' });
    rejects(() => verifySigV4(west, SECRET, AT_NOW), 'InvalidSignatureException', "Credential should be scoped to a valid region, not 'eu-west-1'.");
    expect(() => verifySigV4(west, SECRET, { nowMs: NOW, region: 'eu-west-1' })).not.toThrow();
    // Checked before the signature: a wrong secret in a foreign Region is still the Region error.
    rejects(() => verifySigV4(west, 'not-the-secret', AT_NOW), 'InvalidSignatureException', /^Credential should be scoped to a valid region/);
  });

  // IAM User Guide, "Create a signed AWS API request": host and every x-amz-* header sent are signed.
  it('x-amz-target and every other x-amz-* header sent must be signed', async () => {
    const noTarget = await signed({ unsigned: ['x-amz-target'] });
    expect(noTarget.headers.authorization).toContain('SignedHeaders=content-type;host;x-amz-date,');
    rejects(() => verifySigV4(noTarget, SECRET, AT_NOW), 'InvalidSignatureException', "'x-amz-target' must be a 'SignedHeader' in the AWS Authorization.");
    const noToken = await signed({ sessionToken: 'FwoGZXIvYXdzEBYaDK', unsigned: ['x-amz-security-token'] });
    rejects(() => verifySigV4(noToken, SECRET, AT_NOW), 'InvalidSignatureException', "'x-amz-security-token' must be a 'SignedHeader' in the AWS Authorization.");
    // A header outside x-amz-* may be sent unsigned.
    expect(() => verifySigV4({ ...signedSync, headers: { ...signedSync.headers, 'x-request-id': '1' } }, SECRET, AT_NOW)).not.toThrow();
  });

  it('SignedHeaders naming Object.prototype members is a signature mismatch, not a crash', async () => {
    const r = await signed();
    for (const name of ['constructor', '__proto__', 'tostring']) {
      const auth = String(r.headers.authorization).replace('SignedHeaders=', `SignedHeaders=${name};`);
      rejects(() => verifySigV4({ ...r, headers: { ...r.headers, authorization: auth } }, SECRET, AT_NOW), 'InvalidSignatureException', MISMATCH);
    }
  });

  it('checkSigV4 checks all but the signature itself and names the access key', async () => {
    const r = await signed({ secret: 'not-the-secret' });
    expect(checkSigV4(r, AT_NOW).accessKeyId).toBe(AKID);
    rejects(() => checkSigV4(r, { nowMs: NOW + 16 * 60_000, region: 'us-east-1' }), 'InvalidSignatureException', /^Signature expired/);
    rejects(() => checkSigV4({ ...r, headers: { ...r.headers, authorization: 'AWS4-HMAC-SHA256 Credential=x' } }, AT_NOW), 'IncompleteSignatureException');
    expect(() => checkSigV4(r, { nowMs: NOW, region: '' })).toThrow(TypeError);
  });

  it('accessKeyIdOf reads the Credential, or nothing', () => {
    expect(accessKeyIdOf({})).toBeUndefined();
    expect(accessKeyIdOf({ authorization: 'Basic abc' })).toBeUndefined();
    expect(accessKeyIdOf({ authorization: 'AWS4-HMAC-SHA256 Credential=AKIAXYZ/20240101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=00' })).toBe('AKIAXYZ');
  });
});

let signedSync: Awaited<ReturnType<typeof signed>>;
beforeAll(async () => {
  signedSync = await signed();
});

describe('verifySigV4 behind a real HTTP server, signed by KMSClient', () => {
  let server: Server;
  let endpoint: string;
  const seen: { method: string; url: string; headers: IncomingHttpHeaders; body: Buffer }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        res.setHeader('content-type', 'application/x-amz-json-1.1');
        try {
          verifySigV4({ method: req.method!, path: req.url!, headers: req.headers, body }, SECRET, { nowMs: Date.now(), region: 'us-east-1' });
          const keyId = JSON.parse(body.toString()).KeyId;
          res.end(JSON.stringify({ KeyMetadata: { KeyId: keyId, AWSAccountId: '111122223333', Arn: `arn:aws:kms:us-east-1:111122223333:key/${keyId}` } }));
        } catch (err) {
          const e = err as KmsServiceError;
          res.statusCode = e.status;
          res.end(JSON.stringify({ __type: e.type, message: e.message }));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const client = (secretAccessKey: string, systemClockOffset = 0) =>
    new KMSClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: AKID, secretAccessKey }, maxAttempts: 1, systemClockOffset });

  it('accepts the real client, rejects a wrong secret and a shifted clock', async () => {
    const ok = await client(SECRET).send(new DescribeKeyCommand({ KeyId: 'k1' }));
    expect(ok.KeyMetadata?.KeyId).toBe('k1');
    await expect(client('wrong').send(new DescribeKeyCommand({ KeyId: 'k1' }))).rejects.toMatchObject({ name: 'InvalidSignatureException' });
    await expect(client(SECRET, -20 * 60_000).send(new DescribeKeyCommand({ KeyId: 'k1' }))).rejects.toMatchObject({
      name: 'InvalidSignatureException',
      message: expect.stringMatching(/^Signature expired: \d{8}T\d{6}Z is now earlier than/),
    });
    await expect(client(SECRET, 20 * 60_000).send(new DescribeKeyCommand({ KeyId: 'k1' }))).rejects.toMatchObject({
      name: 'InvalidSignatureException',
      message: expect.stringMatching(/^Signature not yet current/),
    });
  });

  it('a captured request replays only on its own body', async () => {
    seen.length = 0;
    await client(SECRET).send(new DescribeKeyCommand({ KeyId: 'k2' }));
    const captured = seen[0]!;
    const replay = (body: Buffer) =>
      new Promise<{ status: number; json: { __type?: string } }>((resolve, reject) => {
        const headers = { ...captured.headers, 'content-length': String(body.length) };
        const req = httpRequest(`${endpoint}${captured.url}`, { method: captured.method, headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString()) }));
        });
        req.on('error', reject);
        req.end(body);
      });
    expect((await replay(captured.body)).status).toBe(200); // AWS also accepts an identical request within the window
    const other = await replay(Buffer.from(captured.body.toString().replace('k2', 'k3')));
    expect(other).toMatchObject({ status: 400, json: { __type: 'InvalidSignatureException' } });
  });
});
