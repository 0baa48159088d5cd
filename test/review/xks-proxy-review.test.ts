/**
 * Adversarial review of `kms-envelope xks-proxy` against the XKS Proxy API Specification
 * (aws/aws-kms-xksproxy-api-spec): transport rules, SigV4 edge cases and AAD binding, over HTTP
 * against a SoftHSM2 token. Skipped when SoftHSM2 or pkcs11js is missing.
 */
import { request as httpRequest } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import { XksProxyConfigError, resolveXksProxyConfig, startXksProxy } from '../../src/xks-proxy/index.js';
import { NodeSha256 } from '../local-kms/signing.js';
import { metadata, xksCall, type XksCall } from '../xks-proxy/client.js';
import { ACCESS_KEY_ID, fileFixture, REGION, SECRET_ACCESS_KEY, hsmMissing } from '../xks-proxy/harness.js';

const f = fileFixture();

const call = (c: XksCall) => xksCall(f.proxy, c);
const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

/** Signs a POST to `path` with `body`, lets `tweak` change the raw header list, sends it. */
async function rawSigned(path: string, body: unknown, tweak: (headers: Array<[string, string]>) => Array<[string, string]>): Promise<{ status: number; json: Record<string, unknown> }> {
  const u = new URL(f.proxy.url);
  const bytes = Buffer.from(JSON.stringify(body));
  const signer = new SignatureV4({ service: 'kms-xks-proxy', region: REGION, sha256: NodeSha256, applyChecksum: false, credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY } });
  const signed = await signer.sign({ method: 'POST', protocol: u.protocol, hostname: u.hostname, port: Number(u.port), path: `${f.proxy.uriPath}/${path}`, headers: { host: u.host, 'content-type': 'application/json' }, body: bytes });
  const headers = tweak(Object.entries(signed.headers as Record<string, string>));
  const flat: string[] = [];
  for (const [k, v] of headers) flat.push(k, v);
  flat.push('content-length', String(bytes.length));
  return new Promise((resolve, reject) => {
    const req = httpRequest({ method: 'POST', hostname: u.hostname, port: Number(u.port), path: `${f.proxy.uriPath}/${path}`, headers: flat }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.on('error', reject);
    req.end(bytes);
  });
}

describe.skipIf(hsmMissing !== undefined)(`XKS proxy review${hsmMissing ? ` (skipped: ${hsmMissing})` : ''}`, () => {
  it('plain HTTP is refused on a non-loopback address even when startXksProxy is given an already-resolved config', async () => {
    // The spec ("Authentication"): proxy traffic MUST be HTTPS. The config file path enforces
    // loopback-only plain HTTP; an object shaped like ResolvedXksProxyConfig must not bypass it.
    const resolved = resolveXksProxyConfig(f.config);
    let started: { close(): Promise<void> } | undefined;
    try {
      started = await startXksProxy({ ...resolved, host: '0.0.0.0' });
    } catch (e) {
      expect(e).toBeInstanceOf(XksProxyConfigError);
      expect((e as XksProxyConfigError).field).toBe('tls');
      return;
    } finally {
      await started?.close();
    }
    throw new Error('startXksProxy listened with plain HTTP on 0.0.0.0');
  });

  it('a signed Encrypt body replayed to the Decrypt path, or another key, fails authentication (held)', async () => {
    // The canonical URI is part of the signature (spec Appendix A, Task 1).
    const body = { requestMetadata: metadata('Encrypt'), plaintext: b64('x'), encryptionAlgorithm: 'AES_GCM' };
    const ok = await call({ path: 'keys/foo/encrypt', body });
    expect(ok.status).toBe(200);
    const r = await rawSigned('keys/foo/encrypt', body, (h) => h);
    expect(r.status).toBe(200);
    // Signed for keys/foo/encrypt, sent to keys/encrypt_only_key/encrypt: signature covers the path.
    const u = new URL(f.proxy.url);
    const signer = new SignatureV4({ service: 'kms-xks-proxy', region: REGION, sha256: NodeSha256, applyChecksum: false, credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY } });
    const bytes = Buffer.from(JSON.stringify(body));
    const signed = await signer.sign({ method: 'POST', protocol: u.protocol, hostname: u.hostname, port: Number(u.port), path: `${f.proxy.uriPath}/keys/foo/encrypt`, headers: { host: u.host }, body: bytes });
    const moved = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({ method: 'POST', hostname: u.hostname, port: Number(u.port), path: `${f.proxy.uriPath}/keys/encrypt_only_key/encrypt`, headers: { ...(signed.headers as Record<string, string>), 'content-length': String(bytes.length) } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(bytes);
    });
    expect(moved).toBe(401);
  });

  it('an unsigned x-amz-* header, a second Authorization header or a Credential scoped to service kms fail authentication (held)', async () => {
    const body = { requestMetadata: { kmsOperation: 'KmsHealthCheck', kmsRequestId: 'r' } };
    expect((await rawSigned('health', body, (h) => [...h, ['x-amz-security-token', 'x']])).status).toBe(401);
    expect((await rawSigned('health', body, (h) => [...h, ['authorization', h.find(([k]) => k.toLowerCase() === 'authorization')![1]]])).json.errorName).toBe('AuthenticationFailedException');
    expect((await call({ path: 'health', body, service: 'kms' })).status).toBe(401);
    expect((await call({ path: 'health', body, signingDate: new Date(Date.now() - 5 * 60_000 - 30_000) })).status).toBe(401);
    expect((await call({ path: 'health', body, signingDate: new Date(Date.now() + 5 * 60_000 + 30_000) })).status).toBe(401);
  });

  it('AAD and ciphertextMetadata cannot be traded for each other; the IV cannot be extended (held)', async () => {
    const aad = Buffer.from('0123456789');
    const r = await call({ path: 'keys/foo/encrypt', body: { requestMetadata: metadata('Encrypt'), plaintext: b64('secret'), encryptionAlgorithm: 'AES_GCM', additionalAuthenticatedData: b64(aad) } });
    expect(r.status).toBe(200);
    const ct = r.json as { ciphertext: string; initializationVector: string; authenticationTag: string };
    const dec = (extra: Record<string, unknown>) =>
      call({ path: 'keys/foo/decrypt', body: { requestMetadata: metadata('Decrypt'), encryptionAlgorithm: 'AES_GCM', ciphertext: ct.ciphertext, initializationVector: ct.initializationVector, authenticationTag: ct.authenticationTag, ...extra } });
    expect((await dec({ additionalAuthenticatedData: b64(aad) })).status).toBe(200);
    expect((await dec({ ciphertextMetadata: b64(aad) })).json.errorName).toBe('InvalidCiphertextException');
    expect((await dec({})).json.errorName).toBe('InvalidCiphertextException');
    const iv16 = Buffer.concat([Buffer.from(ct.initializationVector, 'base64'), Buffer.alloc(4)]);
    expect((await dec({ additionalAuthenticatedData: b64(aad), initializationVector: b64(iv16) })).json.errorName).toBe('InvalidCiphertextException');
  });

  it('a Decrypt IV, tag or ciphertextMetadata of an impossible length is InvalidCiphertextException (400), whatever its length', async () => {
    // Spec, Decrypt: the IV MUST be 12 or 16 bytes, the tag 16, the metadata at most 20; the error
    // table gives InvalidCiphertextException for an IV or tag that is "corrupted, missing, or
    // otherwise invalid". UnsupportedOperationException (501) is for sizes beyond an
    // implementation's maximum "beyond the minimum size required by this API specification",
    // which fixed-size fields have no room for.
    const r = await call({ path: 'keys/foo/encrypt', body: { requestMetadata: metadata('Encrypt'), plaintext: b64('secret'), encryptionAlgorithm: 'AES_GCM' } });
    const ct = r.json as { ciphertext: string; initializationVector: string; authenticationTag: string };
    const dec = (extra: Record<string, unknown>) =>
      call({ path: 'keys/foo/decrypt', body: { requestMetadata: metadata('Decrypt'), encryptionAlgorithm: 'AES_GCM', ciphertext: ct.ciphertext, initializationVector: ct.initializationVector, authenticationTag: ct.authenticationTag, ...extra } });
    for (const extra of [{ initializationVector: b64(Buffer.alloc(100)) }, { authenticationTag: b64(Buffer.alloc(100)) }, { ciphertextMetadata: b64(Buffer.alloc(100)) }]) {
      const d = await dec(extra);
      expect(d.json.errorName, JSON.stringify(extra).slice(0, 40)).toBe('InvalidCiphertextException');
      expect(d.status).toBe(400);
    }
  });
});
