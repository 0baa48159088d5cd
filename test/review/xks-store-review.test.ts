/**
 * Adversarial review of external key stores (EXTERNAL_KEY_STORE): the local KMS over HTTP with
 * @aws-sdk/client-kms against a HOSTILE XKS proxy written here (one that redirects, streams huge
 * or endless bodies, drops the connection, lies about plaintext, puts secrets in its error
 * messages). It answers honestly (AES-256-GCM, spec "Encrypt"/"Decrypt") unless told otherwise.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  ConnectCustomKeyStoreCommand,
  CreateCustomKeyStoreCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteCustomKeyStoreCommand,
  DescribeKeyCommand,
  DescribeCustomKeyStoresCommand,
  DisconnectCustomKeyStoreCommand,
  EncryptCommand,
  GenerateDataKeyPairCommand,
  GenerateDataKeyPairWithoutPlaintextCommand,
  KMSClient,
  UpdateCustomKeyStoreCommand,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type LocalKmsServer } from '../../src/local-kms/index.js';
import { expectAwsError, startServer, tempDir } from '../local-kms/helpers.js';

const ACCESS_KEY_ID = 'ABCDEFGHIJKLMNOPQRST';
const SECRET = 'UmV2aWV3U2VjcmV0QWNjZXNzS2V5Rm9yWGtzVGVzdHMxMjM0NTY3';
const TIMEOUT_MS = 1500;

type Override = (op: string, body: Record<string, unknown>, req: IncomingMessage, res: ServerResponse) => boolean;

interface Hostile {
  url: string;
  /** The external keys (XksKeyId → AES-256 key), made on first use. */
  keys: Map<string, Buffer>;
  override: Override | undefined;
  /** Raw request bodies and headers the proxy received. */
  seen: Array<{ url: string; headers: IncomingMessage['headers']; body: string }>;
  close(): Promise<void>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function gcmAad(aad: Buffer, md: Buffer): Buffer {
  const a = Buffer.alloc(2);
  a.writeUInt16BE(aad.length);
  return Buffer.concat([a, aad, Buffer.from([md.length]), md]);
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function startHostile(): Promise<Hostile> {
  const keys = new Map<string, Buffer>();
  const sockets = new Set<import('node:net').Socket>();
  const h: Hostile = { url: '', keys, override: undefined, seen: [], close: async () => {} };
  const handle = (req: IncomingMessage, res: ServerResponse, text: string) => {
    {
      const body = JSON.parse(text) as Record<string, unknown>;
      const url = req.url ?? '';
      const m = /\/kms\/xks\/v1\/keys\/([A-Za-z0-9._-]+)\/(metadata|encrypt|decrypt)$/.exec(url);
      const op = url.endsWith('/kms/xks/v1/health') ? 'health' : m ? m[2]! : 'unknown';
      if (h.override?.(op, body, req, res)) return;
      if (op === 'health') return json(res, 200, { xksProxyFleetSize: 1, xksProxyVendor: 'r', xksProxyModel: 'r', ekmVendor: 'r', ekmFleetDetails: [{ id: '1', model: 'r', healthStatus: 'ACTIVE' }] });
      if (!m) return json(res, 404, { errorName: 'InvalidUriPathException' });
      let k = keys.get(m[1]!);
      if (!k) keys.set(m[1]!, (k = randomBytes(32)));
      if (op === 'metadata') return json(res, 200, { keySpec: 'AES_256', keyUsage: ['ENCRYPT', 'DECRYPT'], keyStatus: 'ENABLED' });
      const aad = Buffer.from(String(body.additionalAuthenticatedData ?? ''), 'base64');
      if (op === 'encrypt') {
        const iv = randomBytes(12);
        const md = Buffer.alloc(0);
        const c = createCipheriv('aes-256-gcm', k, iv);
        c.setAAD(gcmAad(aad, md));
        const ct = Buffer.concat([c.update(Buffer.from(String(body.plaintext), 'base64')), c.final()]);
        const tag = c.getAuthTag();
        const cdiv = createHash('sha256').update(Buffer.concat([aad, md, iv, ct, tag])).digest();
        return json(res, 200, { ciphertext: ct.toString('base64'), initializationVector: iv.toString('base64'), authenticationTag: tag.toString('base64'), ciphertextDataIntegrityValue: cdiv.toString('base64') });
      }
      try {
        const d = createDecipheriv('aes-256-gcm', k, Buffer.from(String(body.initializationVector), 'base64'));
        d.setAAD(gcmAad(aad, Buffer.from(String(body.ciphertextMetadata ?? ''), 'base64')));
        d.setAuthTag(Buffer.from(String(body.authenticationTag), 'base64'));
        const pt = Buffer.concat([d.update(Buffer.from(String(body.ciphertext), 'base64')), d.final()]);
        return json(res, 200, { plaintext: pt.toString('base64') });
      } catch {
        return json(res, 400, { errorName: 'InvalidCiphertextException' });
      }
    }
  };
  (h as unknown as { redispatch: typeof handle }).redispatch = handle;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      h.seen.push({ url: req.url ?? '', headers: req.headers, body: text });
      handle(req, res, text);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  h.url = await listen(server);
  h.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return h;
}

let n = 0;

describe('review: external key stores against a hostile XKS proxy', () => {
  let hostile: Hostile;
  let server: LocalKmsServer;
  let kms: KMSClient;
  let storeId: string;
  let keyId: string;
  let tmp: ReturnType<typeof tempDir>;

  beforeAll(async () => {
    tmp = tempDir('xks-review-');
    hostile = await startHostile();
    ({ server, kms } = await startServer({ dataDir: tmp.dir, xksProxyTimeoutMs: TIMEOUT_MS }));
    storeId = (
      await kms.send(
        new CreateCustomKeyStoreCommand({
          CustomKeyStoreName: `review-${++n}`,
          CustomKeyStoreType: 'EXTERNAL_KEY_STORE',
          XksProxyUriEndpoint: hostile.url,
          XksProxyUriPath: '/review/kms/xks/v1',
          XksProxyConnectivity: 'PUBLIC_ENDPOINT',
          XksProxyAuthenticationCredential: { AccessKeyId: ACCESS_KEY_ID, RawSecretAccessKey: SECRET },
        }),
      )
    ).CustomKeyStoreId!;
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    keyId = (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: storeId, XksKeyId: 'k1' }))).KeyMetadata!.KeyId!;
  });
  beforeEach(() => {
    if (hostile) hostile.override = undefined;
  });
  afterAll(async () => {
    kms?.destroy();
    await server?.close();
    await hostile?.close();
    tmp?.cleanup();
  });

  const encrypt = (pt = Buffer.from('attack at dawn'), ctx?: Record<string, string>) =>
    kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: pt, ...(ctx ? { EncryptionContext: ctx } : {}) })).then((r) => r.CiphertextBlob!);

  it('the proxy never sees the plaintext nor the secret access key', async () => {
    const pt = Buffer.from('the-plaintext-marker-0123456789');
    hostile.seen.length = 0;
    await encrypt(pt);
    const all = JSON.stringify(hostile.seen);
    expect(hostile.seen.length).toBe(1);
    expect(all).not.toContain(pt.toString('base64'));
    expect(all).not.toContain(pt.toString('utf8'));
    expect(all).not.toContain(SECRET);
  });

  it('a proxy that lies on Decrypt (same-length wrong plaintext) gets InvalidCiphertextException, never the lie', async () => {
    const blob = await encrypt();
    hostile.override = (op, body, _req, res) => {
      if (op !== 'decrypt') return false;
      json(res, 200, { plaintext: randomBytes(Buffer.from(String(body.ciphertext), 'base64').length).toString('base64') });
      return true;
    };
    await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob: blob })), 'InvalidCiphertextException');
  });

  it('a proxy that echoes (no outer encryption) cannot make a wrong encryption context decrypt', async () => {
    hostile.override = (op, body, _req, res) => {
      const aad = Buffer.from(String(body.additionalAuthenticatedData ?? ''), 'base64');
      if (op === 'encrypt') {
        const ct = Buffer.from(String(body.plaintext), 'base64');
        const iv = Buffer.alloc(12);
        const tag = Buffer.alloc(16);
        const cdiv = createHash('sha256').update(Buffer.concat([aad, iv, ct, tag])).digest();
        json(res, 200, { ciphertext: ct.toString('base64'), initializationVector: iv.toString('base64'), authenticationTag: tag.toString('base64'), ciphertextDataIntegrityValue: cdiv.toString('base64') });
        return true;
      }
      if (op === 'decrypt') {
        json(res, 200, { plaintext: body.ciphertext });
        return true;
      }
      return false;
    };
    const blob = await encrypt(Buffer.from('bound'), { purpose: 'a' });
    await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { purpose: 'b' } })), 'InvalidCiphertextException');
    const ok = await kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { purpose: 'a' } }));
    expect(Buffer.from(ok.Plaintext!).toString()).toBe('bound');
  });

  it('a proxy that replays another ciphertext\'s inner layer (same key, same context) cannot make Decrypt return that other plaintext', async () => {
    // The proxy sees what it wraps (the inner layer) at Encrypt; a hostile one keeps the first and
    // answers every later Decrypt with it.
    const wrapped: string[] = [];
    hostile.override = (op, body) => {
      if (op === 'encrypt') wrapped.push(String(body.plaintext));
      return false;
    };
    const ctx = { tenant: 't1' };
    await encrypt(Buffer.from('transfer $1 to bob'), ctx);
    const b = await encrypt(Buffer.from('transfer $9 to eve'), ctx);
    hostile.override = (op, _b, _req, res) => {
      if (op !== 'decrypt') return false;
      json(res, 200, { plaintext: wrapped[0] });
      return true;
    };
    const out = await kms.send(new DecryptCommand({ CiphertextBlob: b, EncryptionContext: ctx })).then(
      (r) => Buffer.from(r.Plaintext!).toString(),
      (e: Error) => e.name,
    );
    expect(out).toBe('InvalidCiphertextException');
  });

  it('redirects are not followed (the redirect target receives nothing)', async () => {
    let hits = 0;
    const target = createServer((_req, res) => {
      hits++;
      res.end('{}');
    });
    const targetUrl = await listen(target);
    try {
      const blob = await encrypt();
      hostile.override = (op, _b, req, res) => {
        if (op !== 'decrypt' && op !== 'encrypt') return false;
        res.writeHead(307, { location: `${targetUrl}${req.url}` });
        res.end();
        return true;
      };
      await expectAwsError(encrypt(), 'KMSInvalidStateException');
      await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob: blob })), 'KMSInvalidStateException');
      expect(hits).toBe(0);
    } finally {
      await new Promise<void>((r) => target.close(() => r()));
    }
  });

  it('a huge (endless) body, a dribbling body and a dropped connection fail the operation without hanging; the KMS keeps serving', async () => {
    const blob = await encrypt();
    const timers: NodeJS.Timeout[] = [];
    try {
      hostile.override = (op, _b, _req, res) => {
        if (op !== 'decrypt') return false;
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        const pump = () => {
          while (!res.destroyed && res.write(chunk));
          if (!res.destroyed) res.once('drain', pump);
        };
        res.write('{"plaintext":"');
        pump();
        return true;
      };
      await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob: blob })), 'KMSInvalidStateException');
      hostile.override = (op, _b, _req, res) => {
        if (op !== 'decrypt') return false;
        res.writeHead(200, { 'content-type': 'application/json' });
        timers.push(setInterval(() => !res.destroyed && res.write(' '), 50));
        return true;
      };
      await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob: blob })), 'KMSInvalidStateException');
      hostile.override = (op, _b, req, res) => {
        if (op !== 'decrypt') return false;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
        res.write('{"plaintext":"');
        setTimeout(() => req.socket.destroy(), 20);
        return true;
      };
      await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob: blob })), 'KMSInvalidStateException');
    } finally {
      for (const t of timers) clearInterval(t);
    }
    hostile.override = undefined;
    const ok = await kms.send(new DecryptCommand({ CiphertextBlob: blob }));
    expect(Buffer.from(ok.Plaintext!).toString()).toBe('attack at dawn');
  }, 30_000);

  it("the proxy's errorMessage (or a secret it echoes) never reaches the KMS caller", async () => {
    hostile.override = (op, _b, _req, res) => {
      if (op !== 'encrypt') return false;
      json(res, 400, { errorName: 'ValidationException', errorMessage: `leaked ${SECRET}` });
      return true;
    };
    const e = await expectAwsError(encrypt(), 'KMSInvalidStateException');
    expect(e.message).not.toContain('leaked');
    expect(e.message).not.toContain(SECRET);
  });

  it('malformed health answers leave the store FAILED with XKS_PROXY_INVALID_RESPONSE', async () => {
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    try {
      for (const bad of [{ ekmFleetDetails: [null] }, { ekmFleetDetails: 'ACTIVE' }, [], null]) {
        hostile.override = (op, _b, _req, res) => {
          if (op !== 'health') return false;
          json(res, 200, bad);
          return true;
        };
        await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
        const s = (await kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: storeId }))).CustomKeyStores![0]!;
        expect([s.ConnectionState, s.ConnectionErrorCode]).toEqual(['FAILED', 'XKS_PROXY_INVALID_RESPONSE']);
        await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
      }
    } finally {
      hostile.override = undefined;
      await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    }
  });

  it('GenerateDataKeyPair(WithoutPlaintext) refuses a KMS key in an external key store (UnsupportedOperationException), sending nothing to the proxy', async () => {
    // API Reference, GenerateDataKeyPair / GenerateDataKeyPairWithoutPlaintext: "You cannot use an
    // asymmetric KMS key or a KMS key in a custom key store."
    hostile.seen.length = 0;
    await expectAwsError(kms.send(new GenerateDataKeyPairCommand({ KeyId: keyId, KeyPairSpec: 'ECC_NIST_P256' })), 'UnsupportedOperationException');
    await expectAwsError(kms.send(new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: keyId, KeyPairSpec: 'ECC_NIST_P256' })), 'UnsupportedOperationException');
    expect(hostile.seen).toEqual([]);
  });

  /** Answers `op` honestly but only after `ms`. */
  const delay = (ops: string[], ms: number): Override => {
    const inner = hostile.override;
    return (op, body, req, res) => {
      if (!ops.includes(op)) return inner?.(op, body, req, res) ?? false;
      const saved = hostile.override;
      setTimeout(() => {
        // Re-dispatch without the delay: the honest answer.
        hostile.override = undefined;
        (hostile as unknown as { redispatch: (req: IncomingMessage, res: ServerResponse, body: string) => void }).redispatch(req, res, JSON.stringify(body));
        hostile.override = saved;
      }, ms);
      return true;
    };
  };

  it('two concurrent CreateCustomKeyStore with the same name or the same proxy URI: one fails (names and endpoint+path are unique)', async () => {
    hostile.override = delay(['health'], 300);
    const input = (name: string, path: string) =>
      new CreateCustomKeyStoreCommand({
        CustomKeyStoreName: name,
        CustomKeyStoreType: 'EXTERNAL_KEY_STORE',
        XksProxyUriEndpoint: hostile.url,
        XksProxyUriPath: path,
        XksProxyConnectivity: 'PUBLIC_ENDPOINT',
        XksProxyAuthenticationCredential: { AccessKeyId: ACCESS_KEY_ID, RawSecretAccessKey: SECRET },
      });
    const sameName = await Promise.allSettled([kms.send(input('race-name', '/race1/kms/xks/v1')), kms.send(input('race-name', '/race2/kms/xks/v1'))]);
    expect(sameName.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect((sameName.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason.name).toBe('CustomKeyStoreNameInUseException');
    const samePath = await Promise.allSettled([kms.send(input('race-a', '/race3/kms/xks/v1')), kms.send(input('race-b', '/race3/kms/xks/v1'))]);
    expect(samePath.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect((samePath.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason.name).toBe('XksProxyUriInUseException');
  });

  it('CreateKey does not create a key in a store disconnected and deleted while the proxy was asked (GetKeyMetadata)', async () => {
    const other = (
      await kms.send(
        new CreateCustomKeyStoreCommand({
          CustomKeyStoreName: 'race-delete',
          CustomKeyStoreType: 'EXTERNAL_KEY_STORE',
          XksProxyUriEndpoint: hostile.url,
          XksProxyUriPath: '/racedel/kms/xks/v1',
          XksProxyConnectivity: 'PUBLIC_ENDPOINT',
          XksProxyAuthenticationCredential: { AccessKeyId: ACCESS_KEY_ID, RawSecretAccessKey: SECRET },
        }),
      )
    ).CustomKeyStoreId!;
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: other }));
    hostile.override = delay(['metadata'], 300);
    const creating = kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: other, XksKeyId: 'race-key' }));
    const settled = creating.then(
      (r) => r,
      (e: Error) => e,
    );
    await new Promise((r) => setTimeout(r, 100));
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: other }));
    await kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: other }));
    const out = await settled;
    if (!(out instanceof Error)) {
      const d = await kms.send(new DescribeKeyCommand({ KeyId: out.KeyMetadata!.KeyId! }));
      throw new Error(`CreateKey succeeded in deleted store ${other}: key ${d.KeyMetadata!.KeyId} (${d.KeyMetadata!.KeyState})`);
    }
    expect(['CustomKeyStoreInvalidStateException', 'CustomKeyStoreNotFoundException']).toContain(out.name);
  });

  it('UpdateCustomKeyStore does not bring back a store deleted while its GetHealthStatus was pending', async () => {
    const other = (
      await kms.send(
        new CreateCustomKeyStoreCommand({
          CustomKeyStoreName: 'race-update',
          CustomKeyStoreType: 'EXTERNAL_KEY_STORE',
          XksProxyUriEndpoint: hostile.url,
          XksProxyUriPath: '/raceupd/kms/xks/v1',
          XksProxyConnectivity: 'PUBLIC_ENDPOINT',
          XksProxyAuthenticationCredential: { AccessKeyId: ACCESS_KEY_ID, RawSecretAccessKey: SECRET },
        }),
      )
    ).CustomKeyStoreId!;
    hostile.override = delay(['health'], 300);
    const updating = kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: other, XksProxyUriPath: '/raceupd2/kms/xks/v1' })).then(
      () => undefined,
      (e: Error) => e,
    );
    await new Promise((r) => setTimeout(r, 100));
    await kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: other }));
    const out = await updating;
    await expectAwsError(kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: other })), 'CustomKeyStoreNotFoundException');
    expect(out?.name).toBe('CustomKeyStoreNotFoundException');
  });

  it('ciphertexts do not cross keys: another XKS key (same or other store), a swapped header, a replaced external key all fail', async () => {
    const blob = Buffer.from(await encrypt(Buffer.from('mine')));
    const key2 = (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: storeId, XksKeyId: 'k2' }))).KeyMetadata!.KeyId!;
    await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob: blob, KeyId: key2 })), 'IncorrectKeyException');
    // The blob's header names its key (blob.ts: version byte, then the key id's 16 bytes).
    const swapped = Buffer.from(blob);
    const at = swapped.indexOf(Buffer.from(keyId.replace(/-/g, ''), 'hex'));
    expect(at).toBe(1);
    Buffer.from(key2.replace(/-/g, ''), 'hex').copy(swapped, at);
    await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob: swapped })), 'InvalidCiphertextException');
    // The external key behind XksKeyId k1 replaced in the external key manager: never decrypts.
    const old = hostile.keys.get('k1')!;
    hostile.keys.set('k1', randomBytes(32));
    try {
      await expectAwsError(kms.send(new DecryptCommand({ CiphertextBlob: blob })), 'KMSInvalidStateException');
    } finally {
      hostile.keys.set('k1', old);
    }
    const ok = await kms.send(new DecryptCommand({ CiphertextBlob: blob }));
    expect(Buffer.from(ok.Plaintext!).toString()).toBe('mine');
  });

  it('UpdateCustomKeyStore does not change the endpoint of a store connected while the new endpoint was asked (endpoint changes need DISCONNECTED)', async () => {
    const second = await startHostile();
    try {
      const other = (
        await kms.send(
          new CreateCustomKeyStoreCommand({
            CustomKeyStoreName: 'race-endpoint',
            CustomKeyStoreType: 'EXTERNAL_KEY_STORE',
            XksProxyUriEndpoint: hostile.url,
            XksProxyUriPath: '/raceep/kms/xks/v1',
            XksProxyConnectivity: 'PUBLIC_ENDPOINT',
            XksProxyAuthenticationCredential: { AccessKeyId: ACCESS_KEY_ID, RawSecretAccessKey: SECRET },
          }),
        )
      ).CustomKeyStoreId!;
      second.override = (op, body, req, res) => {
        if (op !== 'health') return false;
        second.override = undefined;
        setTimeout(() => (second as unknown as { redispatch: (q: IncomingMessage, s: ServerResponse, b: string) => void }).redispatch(req, res, JSON.stringify(body)), 300);
        return true;
      };
      const updating = kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: other, XksProxyUriEndpoint: second.url })).then(
        () => undefined,
        (e: Error) => e,
      );
      await new Promise((r) => setTimeout(r, 100));
      await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: other }));
      const out = await updating;
      const s = (await kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: other }))).CustomKeyStores![0]!;
      expect([s.ConnectionState, s.XksProxyConfiguration?.UriEndpoint]).toEqual(['CONNECTED', hostile.url]);
      expect(out?.name).toBe('CustomKeyStoreInvalidStateException');
      await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: other }));
      await kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: other }));
    } finally {
      await second.close();
    }
  });

  it('custom key store names are unique per Region: the same name in another Region is accepted', async () => {
    // API Reference, CreateCustomKeyStore CustomKeyStoreName: "must be unique in your AWS account and Region".
    const west = new KMSClient({ endpoint: server.url, region: 'us-west-2', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' }, maxAttempts: 1 });
    const input = {
      CustomKeyStoreName: 'per-region-name',
      CustomKeyStoreType: 'EXTERNAL_KEY_STORE' as const,
      XksProxyUriEndpoint: hostile.url,
      XksProxyUriPath: '/perregion/kms/xks/v1',
      XksProxyConnectivity: 'PUBLIC_ENDPOINT' as const,
      XksProxyAuthenticationCredential: { AccessKeyId: ACCESS_KEY_ID, RawSecretAccessKey: SECRET },
    };
    try {
      await kms.send(new CreateCustomKeyStoreCommand(input));
      const id = (await west.send(new CreateCustomKeyStoreCommand(input))).CustomKeyStoreId!;
      const listed = (await west.send(new DescribeCustomKeyStoresCommand({}))).CustomKeyStores!.map((s) => s.CustomKeyStoreId);
      expect(listed).toEqual([id]);
    } finally {
      west.destroy();
    }
  });

  it('XksProxyUriEndpoint: only letters, digits, dots and hyphens after the scheme (local deviation: a port, [::1]) — no stray ?, #, %-escapes', async () => {
    // API Reference, CreateCustomKeyStore XksProxyUriEndpoint: "The remainder can contain upper
    // and lower case letters (A-Z and a-z), numbers (0-9), dots (.), and hyphens (-)"
    // (XksProxyConfigurationType UriEndpoint pattern ^https://[a-zA-Z0-9.-]+$).
    for (const endpoint of [`${hostile.url}?`, `${hostile.url}#`, 'https://proxy%2eexample.com', `http://127.0.0.1:${new URL(hostile.url).port}?`]) {
      await expectAwsError(
        kms.send(
          new CreateCustomKeyStoreCommand({
            CustomKeyStoreName: `bad-endpoint-${++n}`,
            CustomKeyStoreType: 'EXTERNAL_KEY_STORE',
            XksProxyUriEndpoint: endpoint,
            XksProxyUriPath: `/badep${n}/kms/xks/v1`,
            XksProxyConnectivity: 'PUBLIC_ENDPOINT',
            XksProxyAuthenticationCredential: { AccessKeyId: ACCESS_KEY_ID, RawSecretAccessKey: SECRET },
          }),
        ),
        'ValidationException',
      );
    }
  });

  it('the secret access key is sealed at rest in the data directory', async () => {
    const files: string[] = [];
    const walk = (d: string) => {
      for (const f of readdirSync(d)) {
        const p = join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else files.push(p);
      }
    };
    walk(tmp.dir);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const text = readFileSync(f).toString('latin1');
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(Buffer.from(SECRET).toString('base64'));
    }
  });
});

describe('review: external key stores across a restart', () => {
  let tmp: ReturnType<typeof tempDir> | undefined;
  let hostile: Hostile;
  afterAll(async () => {
    await hostile?.close();
    tmp?.cleanup();
  });

  it('a restart restores the stores (connected ones reconnect), the XKS key and its ciphertexts; a bad secret is never echoed', async () => {
    tmp = tempDir('xks-review-restart-');
    const dataDir = tmp.dir;
    hostile = await startHostile();
    let { server, kms } = await startServer({ dataDir, xksProxyTimeoutMs: TIMEOUT_MS });
    const create = (name: string, path: string, secret = SECRET) =>
      kms.send(
        new CreateCustomKeyStoreCommand({
          CustomKeyStoreName: name,
          CustomKeyStoreType: 'EXTERNAL_KEY_STORE',
          XksProxyUriEndpoint: hostile.url,
          XksProxyUriPath: path,
          XksProxyConnectivity: 'PUBLIC_ENDPOINT',
          XksProxyAuthenticationCredential: { AccessKeyId: ACCESS_KEY_ID, RawSecretAccessKey: secret },
        }),
      );
    const badSecret = `${'Z'.repeat(40)}!!!!!!`;
    const e = await expectAwsError(create('bad', '/bad/kms/xks/v1', badSecret), 'ValidationException');
    expect(e.message).not.toContain(badSecret);
    const a = (await create('a', '/a/kms/xks/v1')).CustomKeyStoreId!;
    const b = (await create('b', '/b/kms/xks/v1')).CustomKeyStoreId!;
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: a }));
    const keyId = (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: a, XksKeyId: 'persist' }))).KeyMetadata!.KeyId!;
    const blob = (await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('survives'), EncryptionContext: { c: '1' } }))).CiphertextBlob!;
    kms.destroy();
    await server.close();
    ({ server, kms } = await startServer({ dataDir, xksProxyTimeoutMs: TIMEOUT_MS }));
    try {
      const pt = await kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { c: '1' } }));
      expect(Buffer.from(pt.Plaintext!).toString()).toBe('survives');
      const stores = (await kms.send(new DescribeCustomKeyStoresCommand({}))).CustomKeyStores!;
      expect(Object.fromEntries(stores.map((s) => [s.CustomKeyStoreId, s.ConnectionState]))).toEqual({ [a]: 'CONNECTED', [b]: 'DISCONNECTED' });
      expect(JSON.stringify(stores)).not.toContain(SECRET);
      const d = await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
      expect(d.KeyMetadata!.XksKeyConfiguration?.Id).toBe('persist');
      expect(d.KeyMetadata!.Origin).toBe('EXTERNAL_KEY_STORE');
    } finally {
      kms.destroy();
      await server.close();
    }
  });
});
