import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { parseAuthorization, verifySigV4Signature } from '../../src/local-kms/sigv4.js';

/**
 * A small XKS proxy following the XKS Proxy API Specification, for FAULT INJECTION ONLY (what the
 * real proxy, src/xks-proxy, cannot be made to do: hang, answer malformed JSON, a wrong integrity
 * value, arbitrary proxy errors, a TLS certificate of an unknown CA). The happy paths are tested
 * against the real proxy (xks-proxy-integration.test.ts). It checks each request's SigV4
 * signature (service kms-xks-proxy, spec Appendix A) and records the requests' operation and requestMetadata.
 */

export const ACCESS_KEY_ID = 'ABCDEFGHIJKLMNOPQRST';
export const SECRET = 'c2VjcmV0LWFjY2Vzcy1rZXktZm9yLXRlc3RzLW9ubHk1234';
/** Any `/<prefix>/kms/xks/v1` is served, except prefixes starting with `/wrong` (InvalidUriPathException). */
export const PATH = '/tenant1/kms/xks/v1';

export interface FakeKey {
  key: Buffer;
  keySpec?: string;
  keyUsage?: string[];
  keyStatus?: string;
}

export type Fault = 'hang' | 'malformed' | 'bad-cdiv' | 'unavailable' | { status: number; errorName?: string };

export interface FakeXks {
  url: string;
  keys: Map<string, FakeKey>;
  /** Every request that passed authentication: the operation and the body's requestMetadata. */
  requests: Array<{ op: string; region: string; metadata: Record<string, unknown> }>;
  /** Set to make the next requests (of `ops`, or all) fail this way. */
  fault: { kind: Fault; ops?: string[] } | undefined;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** The AAD the spec tells the key manager to use: u16 len || aad || u8 len || metadata. */
function gcmAad(aad: Buffer, md: Buffer): Buffer {
  const a = Buffer.alloc(2);
  a.writeUInt16BE(aad.length);
  return Buffer.concat([a, aad, Buffer.from([md.length]), md]);
}

export async function startFakeXks(opts: { region?: string; tls?: { key: string; cert: string } } = {}): Promise<FakeXks> {
  const region = opts.region ?? 'us-east-1';
  const state: FakeXks = { url: '', keys: new Map(), requests: [], fault: undefined, close: async () => {} };
  const hanging = new Set<ServerResponse>();
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const url = req.url ?? '';
      const at = url.indexOf('/kms/xks/v1/');
      if (at < 0 || url.startsWith('/wrong')) return send(res, 404, { errorName: 'InvalidUriPathException' });
      const rest = url.slice(at + '/kms/xks/v1'.length);
      const m = /^\/keys\/([A-Za-z0-9._-]+)\/(metadata|encrypt|decrypt)$/.exec(rest);
      const op = rest === '/health' ? 'health' : m ? m[2]! : undefined;
      if (!op) return send(res, 404, { errorName: 'InvalidUriPathException' });
      try {
        const auth = parseAuthorization(String(req.headers.authorization ?? ''));
        if (auth.accessKeyId !== ACCESS_KEY_ID || auth.service !== 'kms-xks-proxy' || auth.region !== region) throw new Error('scope');
        verifySigV4Signature(
          { method: req.method ?? '', path: url, headers: req.headers, body },
          { ...auth, signedHeaders: [...auth.signedHeaders].sort(), amzDate: String(req.headers['x-amz-date']) },
          SECRET,
        );
      } catch {
        return send(res, 401, { errorName: 'AuthenticationFailedException' });
      }
      const json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      state.requests.push({ op, region, metadata: json.requestMetadata as Record<string, unknown> });
      const f = state.fault && (!state.fault.ops || state.fault.ops.includes(op)) ? state.fault.kind : undefined;
      if (f === 'hang') {
        hanging.add(res);
        return;
      }
      if (f === 'malformed') return send(res, 200, '{"not json');
      if (typeof f === 'object') return send(res, f.status, f.errorName ? { errorName: f.errorName, errorMessage: 'injected' } : 'oops');
      if (op === 'health') {
        const healthStatus = f === 'unavailable' ? 'UNAVAILABLE' : 'ACTIVE';
        return send(res, 200, { xksProxyFleetSize: 1, xksProxyVendor: 'test', xksProxyModel: 'fake', ekmVendor: 'test', ekmFleetDetails: [{ id: '1', model: 'fake', healthStatus }] });
      }
      const k = state.keys.get(m![1]!);
      if (!k) return send(res, 404, { errorName: 'KeyNotFoundException' });
      if (op === 'metadata') return send(res, 200, { keySpec: k.keySpec ?? 'AES_256', keyUsage: k.keyUsage ?? ['ENCRYPT', 'DECRYPT'], keyStatus: k.keyStatus ?? 'ENABLED' });
      const aad = Buffer.from(String(json.additionalAuthenticatedData ?? ''), 'base64');
      if (op === 'encrypt') {
        const iv = randomBytes(12);
        const md = Buffer.from('v=1');
        const c = createCipheriv('aes-256-gcm', k.key, iv);
        c.setAAD(gcmAad(aad, md));
        const ct = Buffer.concat([c.update(Buffer.from(String(json.plaintext), 'base64')), c.final()]);
        const tag = c.getAuthTag();
        let cdiv = createHash('sha256').update(Buffer.concat([aad, md, iv, ct, tag])).digest();
        if (f === 'bad-cdiv') cdiv = Buffer.alloc(32);
        return send(res, 200, {
          ciphertext: ct.toString('base64'),
          ciphertextMetadata: md.toString('base64'),
          initializationVector: iv.toString('base64'),
          authenticationTag: tag.toString('base64'),
          ciphertextDataIntegrityValue: cdiv.toString('base64'),
        });
      }
      try {
        const d = createDecipheriv('aes-256-gcm', k.key, Buffer.from(String(json.initializationVector), 'base64'));
        d.setAAD(gcmAad(aad, Buffer.from(String(json.ciphertextMetadata ?? ''), 'base64')));
        d.setAuthTag(Buffer.from(String(json.authenticationTag), 'base64'));
        const pt = Buffer.concat([d.update(Buffer.from(String(json.ciphertext), 'base64')), d.final()]);
        return send(res, 200, { plaintext: pt.toString('base64') });
      } catch {
        return send(res, 400, { errorName: 'InvalidCiphertextException' });
      }
    });
  };
  const server = opts.tls ? createHttpsServer({ key: opts.tls.key, cert: opts.tls.cert }, handler) : createHttpServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = async () => {
    for (const r of hanging) r.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return state;
}
