/**
 * Authentication holes an independent review found (findings 3, 10 and 11 of review 11), and the
 * rules that close them. Each describe names the AWS page its expectations come from.
 *
 * 3. The Authorization header was read by two parsers: the signature was checked against the LAST
 *    `Credential=` while aws:RequestedRegion came from the FIRST, so prepending a forged
 *    `Credential=<key>/<date>/eu-west-1/kms/aws4_request` to a validly signed request turned a
 *    Deny on aws:RequestedRegion into an Allow. Also: an `x-amz-security-token` nobody issued,
 *    sent with a long-term key, was ignored.
 * 10. Signatures were accepted up to 15 minutes from the server clock; AWS KMS answers
 *    "Signature expired: ... (<now> - 5 min.)".
 * 11. `/_local/clock` needed no authentication with a principals file: an unsigned POST moved the
 *    clock past a key's deletion date before its owner could cancel.
 */
import { request as httpRequest } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DescribeKeyCommand, KMSClient, ListKeysCommand } from '@aws-sdk/client-kms';
import { startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { checkSigV4, parseAuthorization } from '../../src/local-kms/sigv4.js';
import { loadPrincipals } from '../../src/local-kms/principals.js';
import { KmsServiceError } from '../../src/local-kms/errors.js';
import { LOCAL_KMS_HELP } from '../../src/local-kms/cli.js';
import { expectAwsError, tempDir } from './helpers.js';
import { handSign, postRaw, type RawAnswer } from './signing.js';

const tmp = tempDir('lkms-auth-review-');
const ROOT = { key: 'AKIAREVIEWROOT000001', secret: 'root-secret' };
const BOB = { key: 'AKIAREVIEWBOB0000001', secret: 'bob-secret' };
/** A role session: temporary credentials are an access key, a secret and the session token. */
const SESSION = { key: 'ASIAREVIEWSESSION001', secret: 'session-secret', token: 'FwoGZXIvYXdzEXAMPLEsessionTOKEN/+=' };
/** A session entry without a secret: its token still has to match. */
const SESSION_NOSECRET = { key: 'ASIAREVIEWSESSION002', secret: 'any-secret', token: 'FwoGZXIvYXdzEXAMPLEotherTOKEN' };
const UNKNOWN = { key: 'AKIAREVIEWUNKNOWN001', secret: 'guess' };
const ACCOUNT = '111122223333';

const servers: LocalKmsServer[] = [];
let server: LocalKmsServer;
let principalsFile: string;
let keyId: string;

async function start(opts: Parameters<typeof startLocalKmsServer>[0] = {}): Promise<LocalKmsServer> {
  const s = await startLocalKmsServer({ port: 0, principalsFile, ...opts });
  servers.push(s);
  return s;
}

beforeAll(async () => {
  principalsFile = join(tmp.dir, 'principals.json');
  writeFileSync(
    principalsFile,
    JSON.stringify({
      [ROOT.key]: { arn: `arn:aws:iam::${ACCOUNT}:root`, secretAccessKey: ROOT.secret },
      [BOB.key]: { arn: `arn:aws:iam::${ACCOUNT}:user/bob`, secretAccessKey: BOB.secret },
      [SESSION.key]: { arn: `arn:aws:sts::${ACCOUNT}:assumed-role/Deployer/build-7`, secretAccessKey: SESSION.secret, sessionToken: SESSION.token },
      [SESSION_NOSECRET.key]: { arn: `arn:aws:sts::${ACCOUNT}:assumed-role/Deployer/build-8`, sessionToken: SESSION_NOSECRET.token },
    }),
  );
  server = await start();
  // Bob may describe the key only through eu-west-1 (a key in us-east-1 can never be reached so).
  const Policy = JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' },
      { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:user/bob` }, Action: 'kms:DescribeKey', Resource: '*', Condition: { StringEquals: { 'aws:RequestedRegion': 'eu-west-1' } } },
    ],
  });
  const body = JSON.stringify({ Policy });
  const created = await postRaw(server.url, await handSign({ url: server.url, target: 'CreateKey', body, accessKeyId: ROOT.key, secretAccessKey: ROOT.secret }), body);
  keyId = (created.json.KeyMetadata as { KeyId: string }).KeyId;
});
afterAll(async () => {
  for (const s of servers) await s.close();
  tmp.cleanup();
});

function client(url: string, who: { key: string; secret: string }, extra: { sessionToken?: string; systemClockOffset?: number } = {}): KMSClient {
  return new KMSClient({
    endpoint: url,
    region: 'us-east-1',
    credentials: { accessKeyId: who.key, secretAccessKey: who.secret, ...(extra.sessionToken !== undefined ? { sessionToken: extra.sessionToken } : {}) },
    maxAttempts: 1,
    ...(extra.systemClockOffset !== undefined ? { systemClockOffset: extra.systemClockOffset } : {}),
  });
}

/** Bob's correctly signed DescribeKey of the key: its headers and body. */
async function bobDescribe(url = server.url): Promise<{ headers: Record<string, string>; body: string }> {
  const body = JSON.stringify({ KeyId: keyId });
  return { headers: await handSign({ url, target: 'DescribeKey', body, accessKeyId: BOB.key, secretAccessKey: BOB.secret }), body };
}

// IAM User Guide, "AWS global condition context keys" (aws:RequestedRegion: the Region the request
// was made to, for SigV4 the Region of the credential scope the signature covers) and "Elements of
// an AWS API request signature" (one Credential, SignedHeaders and Signature; a header that does
// not parse as that is IncompleteSignature, KMS API Reference "Common Errors").
describe('Authorization header with a second Credential parameter (review finding 3)', () => {
  it('control: Bob\'s correctly signed DescribeKey is denied (aws:RequestedRegion is us-east-1)', async () => {
    const { headers, body } = await bobDescribe();
    expect((await postRaw(server.url, headers, body)).json.__type).toBe('AccessDeniedException');
  });

  it('the same request with a forged Credential prepended is refused as a malformed signature, not allowed with aws:RequestedRegion=eu-west-1', async () => {
    const { headers, body } = await bobDescribe();
    const date = headers['x-amz-date']!.slice(0, 8);
    const tampered = headers.authorization!.replace('AWS4-HMAC-SHA256 ', `AWS4-HMAC-SHA256 Credential=${BOB.key}/${date}/eu-west-1/kms/aws4_request, `);
    const answer = await postRaw(server.url, { ...headers, authorization: tampered }, body);
    expect(answer.json.__type, JSON.stringify(answer.json).slice(0, 300)).toMatch(/^(IncompleteSignatureException|InvalidSignatureException|AccessDeniedException)$/);
    // The one answer: the header does not parse as one SigV4 authorization.
    expect(answer.json).toMatchObject({ __type: 'IncompleteSignatureException', message: "Authorization header has more than one 'Credential' parameter." });
  });

  it('every header that is not exactly one algorithm and one each of Credential, SignedHeaders, Signature is IncompleteSignatureException', async () => {
    const { headers, body } = await bobDescribe();
    const auth = headers.authorization!;
    const date = headers['x-amz-date']!.slice(0, 8);
    const forged = `Credential=${BOB.key}/${date}/eu-west-1/kms/aws4_request`;
    const signedHeaders = /SignedHeaders=[^,]+/.exec(auth)![0];
    const signature = /Signature=[0-9a-f]+/.exec(auth)![0];
    const variants: Record<string, string> = {
      'forged Credential appended': `${auth}, ${forged}`,
      'forged Credential in the middle': auth.replace(', SignedHeaders', `, ${forged}, SignedHeaders`),
      'SignedHeaders twice': `${auth}, ${signedHeaders}`,
      'the same Signature twice': `${auth}, ${signature}`,
      'an unknown parameter naming a Region': `${auth}, Region=eu-west-1`,
      'an unknown parameter hiding a Credential': auth.replace('AWS4-HMAC-SHA256 ', `AWS4-HMAC-SHA256 X-${forged}, `),
      'a parameter name in another case': auth.replace('Credential=', 'credential='),
      'the algorithm twice': auth.replace('AWS4-HMAC-SHA256 ', 'AWS4-HMAC-SHA256 AWS4-HMAC-SHA256 '),
      'a part without an equal sign': auth.replace('Credential=', 'Credential= '),
      'an empty parameter name': `${auth}, =x`,
    };
    for (const [name, authorization] of Object.entries(variants)) {
      const answer = await postRaw(server.url, { ...headers, authorization }, body);
      expect(answer.json.__type, `${name}: ${JSON.stringify(answer.json).slice(0, 200)}`).toBe('IncompleteSignatureException');
    }
  });

  it('a part without an equal sign is worded as AWS words it', () => {
    expect(() => parseAuthorization('AWS4-HMAC-SHA256 Credential= AKIAX/20240101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=00')).toThrow(
      "'AKIAX/20240101/us-east-1/kms/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: " +
        "'AWS4-HMAC-SHA256 Credential= AKIAX/20240101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=00'.",
    );
  });

  it('separators and parameter order stay free: the same three parameters in any order, with or without spaces, are accepted', async () => {
    const body = JSON.stringify({ KeyId: keyId });
    const headers = await handSign({ url: server.url, target: 'DescribeKey', body, accessKeyId: ROOT.key, secretAccessKey: ROOT.secret });
    const [, credential, signedHeaders, signature] = /^AWS4-HMAC-SHA256 (Credential=[^,]+), (SignedHeaders=[^,]+), (Signature=[0-9a-f]+)$/.exec(headers.authorization!)!;
    for (const authorization of [
      `AWS4-HMAC-SHA256 ${credential},${signedHeaders},${signature}`,
      `AWS4-HMAC-SHA256 ${signature}, ${credential}, ${signedHeaders}`,
    ]) {
      expect((await postRaw(server.url, { ...headers, authorization }, body)).status, authorization).toBe(200);
    }
  });

  it('two Authorization headers are IncompleteSignatureException, whichever comes first', async () => {
    const { headers, body } = await bobDescribe();
    const date = headers['x-amz-date']!.slice(0, 8);
    const forged = `AWS4-HMAC-SHA256 Credential=${BOB.key}/${date}/eu-west-1/kms/aws4_request, SignedHeaders=host, Signature=${'0'.repeat(64)}`;
    for (const pair of [[headers.authorization!, forged], [forged, headers.authorization!]]) {
      const answer = await new Promise<RawAnswer>((resolve, reject) => {
        const { authorization: _a, ...rest } = headers;
        // Node sends one header line per array element.
        const sent: Record<string, string | string[]> = { ...rest, authorization: pair, 'content-length': String(Buffer.byteLength(body)) };
        const req = httpRequest(`${server.url}/`, { method: 'POST', headers: sent as never }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
        });
        req.on('error', reject);
        req.end(body);
      });
      expect(answer.json).toMatchObject({ __type: 'IncompleteSignatureException', message: 'A request may carry only one Authorization header.' });
    }
  });

  it('aws:RequestedRegion is the Region the signature covers: Bob signing for eu-west-1 at an eu-west-1 server is allowed', async () => {
    const west = await start({ region: 'eu-west-1' });
    const Policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' },
        { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:user/bob` }, Action: 'kms:DescribeKey', Resource: '*', Condition: { StringEquals: { 'aws:RequestedRegion': 'eu-west-1' } } },
      ],
    });
    const createBody = JSON.stringify({ Policy });
    const created = await postRaw(west.url, await handSign({ url: west.url, region: 'eu-west-1', target: 'CreateKey', body: createBody, accessKeyId: ROOT.key, secretAccessKey: ROOT.secret }), createBody);
    const body = JSON.stringify({ KeyId: (created.json.KeyMetadata as { KeyId: string }).KeyId });
    const answer = await postRaw(west.url, await handSign({ url: west.url, region: 'eu-west-1', target: 'DescribeKey', body, accessKeyId: BOB.key, secretAccessKey: BOB.secret }), body);
    expect(answer.status).toBe(200);
  });

  it('without a principals file a header that does not parse names no Region either (one parser for both modes)', async () => {
    const offline = await startLocalKmsServer({ port: 0 });
    servers.push(offline);
    // The account root (every caller offline) is denied DescribeKey when the request names eu-west-1.
    const Policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' },
        { Effect: 'Deny', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:DescribeKey', Resource: '*', Condition: { StringEquals: { 'aws:RequestedRegion': 'eu-west-1' } } },
      ],
    });
    // The key lives in eu-west-1: the Region a request's credential scope names is the Region it addresses.
    const createBody = JSON.stringify({ Policy });
    const created = await postRaw(offline.url, await handSign({ url: offline.url, region: 'eu-west-1', target: 'CreateKey', body: createBody, accessKeyId: ROOT.key, secretAccessKey: ROOT.secret }), createBody);
    const body = JSON.stringify({ KeyId: (created.json.KeyMetadata as { Arn: string }).Arn });
    const west = await handSign({ url: offline.url, region: 'eu-west-1', target: 'DescribeKey', body, accessKeyId: ROOT.key, secretAccessKey: ROOT.secret });
    expect((await postRaw(offline.url, west, body)).json.__type).toBe('AccessDeniedException');
    // The same eu-west-1 Credential hidden in an unknown parameter of a us-east-1 header is not
    // read: the request addresses us-east-1, where the eu-west-1 key does not exist.
    const east = await handSign({ url: offline.url, target: 'DescribeKey', body, accessKeyId: ROOT.key, secretAccessKey: ROOT.secret });
    const date = east['x-amz-date']!.slice(0, 8);
    const hidden = east.authorization!.replace('AWS4-HMAC-SHA256 ', `AWS4-HMAC-SHA256 X-Credential=${ROOT.key}/${date}/eu-west-1/kms/aws4_request, `);
    expect((await postRaw(offline.url, { ...east, authorization: hidden }, body)).json.__type).toBe('NotFoundException');
  });
});

// IAM User Guide, "Create a signed AWS API request" (temporary credentials: the session token goes
// in X-Amz-Security-Token) and "Temporary security credentials in IAM" (a session is an access key,
// a secret and a token, valid only together); KMS API Reference, "Common Errors": a token AWS did
// not issue for the key is UnrecognizedClientException, "The security token included in the
// request is invalid."
describe('x-amz-security-token with a long-term access key (review finding 3)', () => {
  it('a security token nobody issued makes the request UnrecognizedClientException', async () => {
    const body = JSON.stringify({ KeyId: keyId });
    const headers = await handSign({
      url: server.url,
      target: 'DescribeKey',
      body,
      accessKeyId: ROOT.key,
      secretAccessKey: ROOT.secret,
      headers: { 'x-amz-security-token': 'not-a-token-sts-ever-issued' },
    });
    expect((await postRaw(server.url, headers, body)).json.__type).toBe('UnrecognizedClientException');
  });

  it('the SDK with a session token on a long-term key: UnrecognizedClientException, with the AWS message', async () => {
    const e = await expectAwsError(client(server.url, ROOT, { sessionToken: 'FwoGZXIvYXdzEBYaDK' }).send(new ListKeysCommand({})), 'UnrecognizedClientException');
    expect(e.message).toBe('The security token included in the request is invalid.');
  });

  it('an entry with a sessionToken (a role session) is admitted with exactly that token only', async () => {
    await client(server.url, SESSION, { sessionToken: SESSION.token }).send(new ListKeysCommand({}));
    await expectAwsError(client(server.url, SESSION).send(new ListKeysCommand({})), 'UnrecognizedClientException');
    await expectAwsError(client(server.url, SESSION, { sessionToken: `${SESSION.token}x` }).send(new ListKeysCommand({})), 'UnrecognizedClientException');
    await expectAwsError(client(server.url, SESSION, { sessionToken: SESSION_NOSECRET.token }).send(new ListKeysCommand({})), 'UnrecognizedClientException');
    // An entry without a secret is identified by its id, and by its token too.
    await client(server.url, SESSION_NOSECRET, { sessionToken: SESSION_NOSECRET.token }).send(new ListKeysCommand({}));
    await expectAwsError(client(server.url, SESSION_NOSECRET).send(new ListKeysCommand({})), 'UnrecognizedClientException');
    await expectAwsError(client(server.url, SESSION_NOSECRET, { sessionToken: SESSION.token }).send(new ListKeysCommand({})), 'UnrecognizedClientException');
  });

  it('the token is checked before the signature: the right token with a wrong secret is InvalidSignatureException', async () => {
    await expectAwsError(client(server.url, { ...SESSION, secret: 'wrong' }, { sessionToken: SESSION.token }).send(new ListKeysCommand({})), 'InvalidSignatureException');
    await expectAwsError(client(server.url, { ...SESSION, secret: 'wrong' }, { sessionToken: 'forged' }).send(new ListKeysCommand({})), 'UnrecognizedClientException');
  });

  it('principals file: "sessionToken" must be a non-empty string of visible ASCII, and errors never echo it', () => {
    const check = (sessionToken: unknown) => {
      const file = join(tmp.dir, `bad-token-${Math.random().toString(36).slice(2)}.json`);
      writeFileSync(file, JSON.stringify({ [SESSION.key]: { arn: `arn:aws:sts::${ACCOUNT}:assumed-role/Deployer/x`, secretAccessKey: 's', sessionToken } }));
      return () => loadPrincipals(file);
    };
    for (const bad of ['', 42, 'has space', 'tab\there', 'é-non-ascii']) {
      expect(check(bad), JSON.stringify(bad)).toThrow(/entry "ASIAREVIEWSESSION001": "sessionToken" must be a non-empty string of visible ASCII characters/);
    }
    try {
      check('secret token with space')();
    } catch (e) {
      expect((e as Error).message).not.toContain('secret token');
    }
    expect(check('x'.repeat(16_385))).toThrow(/"sessionToken" has 16385 characters; at most 16384/);
    expect(loadPrincipals(principalsFile).get(SESSION.key)?.sessionToken).toBe(SESSION.token);
  });
});

// Signing window. IAM User Guide, "AWS Signature Version 4 for API requests" ("Protect against
// potential replay attacks": in most cases a request must reach AWS within five minutes of its time
// stamp). KMS itself answers with the five-minute wording: "Signature expired: <signed> is now
// earlier than <now - 5 min> (<now> - 5 min.)" (AWS SDK for JavaScript issues aws/aws-sdk-js#2340
// and aws/aws-sdk-js-v3#6400, both KMS Encrypt/Decrypt).
describe('signing time (review finding 10)', () => {
  it('a request signed 10 minutes ago is refused as expired (InvalidSignatureException)', async () => {
    const body = '{}';
    const headers = await handSign({ url: server.url, target: 'ListKeys', body, accessKeyId: ROOT.key, secretAccessKey: ROOT.secret, signingDate: new Date(Date.now() - 10 * 60_000) });
    expect((await postRaw(server.url, headers, body)).json.__type).toBe('InvalidSignatureException');
  });

  it('the window is five minutes either way, worded as KMS words it', () => {
    const NOW = Date.UTC(2024, 4, 17, 12, 0, 0);
    const at = (offsetMs: number) => {
      const d = new Date(NOW + offsetMs).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
      return {
        method: 'POST',
        path: '/',
        headers: {
          host: '127.0.0.1:4599',
          'x-amz-date': d,
          authorization: `AWS4-HMAC-SHA256 Credential=AKIAX0000000000000001/${d.slice(0, 8)}/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`,
        },
        body: Buffer.alloc(0),
      };
    };
    const opts = { nowMs: NOW, region: 'us-east-1' };
    for (const ms of [-300_000, -299_000, 0, 299_000, 300_000]) expect(() => checkSigV4(at(ms), opts), String(ms)).not.toThrow();
    const refused = (ms: number) => {
      try {
        checkSigV4(at(ms), opts);
      } catch (e) {
        expect(e).toBeInstanceOf(KmsServiceError);
        return `${(e as KmsServiceError).type}: ${(e as KmsServiceError).message}`;
      }
      throw new Error(`signed ${ms} ms away was accepted`);
    };
    expect(refused(-301_000)).toBe('InvalidSignatureException: Signature expired: 20240517T115459Z is now earlier than 20240517T115500Z (20240517T120000Z - 5 min.)');
    expect(refused(301_000)).toBe('InvalidSignatureException: Signature not yet current: 20240517T120501Z is still later than 20240517T120500Z (20240517T120000Z + 5 min.)');
  });

  it('the SDK with a clock six minutes off is refused, four minutes off is accepted', async () => {
    const late = await expectAwsError(client(server.url, ROOT, { systemClockOffset: -6 * 60_000 }).send(new ListKeysCommand({})), 'InvalidSignatureException');
    expect(late.message).toMatch(/^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 5 min\.\)$/);
    await expectAwsError(client(server.url, ROOT, { systemClockOffset: 6 * 60_000 }).send(new ListKeysCommand({})), 'InvalidSignatureException');
    await client(server.url, ROOT, { systemClockOffset: -4 * 60_000 }).send(new ListKeysCommand({}));
    await client(server.url, ROOT, { systemClockOffset: 4 * 60_000 }).send(new ListKeysCommand({}));
  });
});

// The test clock is a local-KMS extension, not an AWS API. With a principals file there is no
// anonymous caller (README, "Local KMS"): moving the clock needs the same SigV4 signature, by a
// principal in the file, as every KMS request.
describe('the test clock once principals are configured (review finding 11)', () => {
  let clocked: LocalKmsServer;
  beforeAll(async () => {
    clocked = await start({ testClock: true });
  });

  const signed = async (target: string, input: object) => {
    const body = JSON.stringify(input);
    return postRaw(clocked.url, await handSign({ url: clocked.url, target, body, accessKeyId: ROOT.key, secretAccessKey: ROOT.secret }), body);
  };
  const clockAs = async (who: { key: string; secret: string }, method: 'GET' | 'POST', body: string, extra: { region?: string } = {}) =>
    postRaw(clocked.url, await handSign({ url: clocked.url, target: undefined, method, path: '/_local/clock', body, accessKeyId: who.key, secretAccessKey: who.secret, ...extra }), body, { method, path: '/_local/clock' });

  it('an unsigned POST /_local/clock is refused and cannot destroy a key pending deletion', async () => {
    const pending = ((await signed('CreateKey', {})).json.KeyMetadata as { KeyId: string }).KeyId;
    await signed('ScheduleKeyDeletion', { KeyId: pending, PendingWindowInDays: 7 });
    const anonymous = await fetch(`${clocked.url}/_local/clock`, { method: 'POST', body: JSON.stringify({ advanceSeconds: 8 * 86_400 }) });
    const cancel = await signed('CancelKeyDeletion', { KeyId: pending });
    expect({ clock: anonymous.status, cancel: cancel.json.__type ?? 'OK' }).toEqual({ clock: 400, cancel: 'OK' });
    expect(await anonymous.json()).toMatchObject({ __type: 'MissingAuthenticationTokenException' });
  });

  it('reading the clock unsigned is refused too', async () => {
    const res = await fetch(`${clocked.url}/_local/clock`);
    expect({ status: res.status, body: await res.json() }).toMatchObject({ status: 400, body: { __type: 'MissingAuthenticationTokenException' } });
  });

  it('a principal in the file moves and reads the clock with a signed request', async () => {
    const before = (await clockAs(BOB, 'GET', '')).json.now as number;
    expect(before).toBeGreaterThan(0);
    const moved = await clockAs(BOB, 'POST', JSON.stringify({ advanceSeconds: 3600 }));
    expect(moved.status).toBe(200);
    expect(moved.json.now as number).toBeGreaterThanOrEqual(before + 3600);
  });

  it('an unknown key, a wrong secret, a Region the server does not serve or a forged session token cannot move it', async () => {
    const advance = JSON.stringify({ advanceSeconds: 30 * 86_400 });
    const before = (await clockAs(ROOT, 'GET', '')).json.now as number;
    expect((await clockAs(UNKNOWN, 'POST', advance)).json.__type).toBe('UnrecognizedClientException');
    expect((await clockAs({ ...BOB, secret: 'wrong' }, 'POST', advance)).json.__type).toBe('InvalidSignatureException');
    expect((await clockAs(BOB, 'POST', advance, { region: 'cn-north-1' })).json.__type).toBe('InvalidSignatureException');
    const forged = await postRaw(
      clocked.url,
      await handSign({ url: clocked.url, target: undefined, path: '/_local/clock', body: advance, accessKeyId: SESSION.key, secretAccessKey: SESSION.secret, headers: { 'x-amz-security-token': 'forged' } }),
      advance,
      { path: '/_local/clock' },
    );
    expect(forged.json.__type).toBe('UnrecognizedClientException');
    // A signature covers the path: a KMS request's signature does not move the clock.
    const listBody = '{}';
    const kmsHeaders = await handSign({ url: clocked.url, target: 'ListKeys', body: listBody, accessKeyId: ROOT.key, secretAccessKey: ROOT.secret });
    expect((await postRaw(clocked.url, kmsHeaders, listBody, { path: '/_local/clock' })).json.__type).toBe('InvalidSignatureException');
    const after = (await clockAs(ROOT, 'GET', '')).json.now as number;
    expect(after - before).toBeLessThan(60);
  });

  it('--help says the clock needs a signed request once --principals is given', () => {
    expect(LOCAL_KMS_HELP).toMatch(/--test-clock[\s\S]*with --principals[\s\S]*signed/i);
  });
});
