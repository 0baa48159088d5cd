/**
 * A SigV4-signing XKS API client for the proxy tests: @smithy/signature-v4 (the AWS SDK's signer)
 * with service kms-xks-proxy, so a test can choose the credential, Region, service, signing time
 * and body, and send exactly those bytes with node:http(s).
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { SignatureV4 } from '@smithy/signature-v4';
import { NodeSha256 } from '../local-kms/signing.js';
import { ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY } from './harness.js';

export interface XksCall {
  /** Path after the URI path (`health`, `keys/foo/encrypt`), or a whole path starting with `/`. */
  path: string;
  body?: unknown;
  /** A raw body, sent as it is (not JSON-encoded). */
  rawBody?: string | Buffer;
  method?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  region?: string;
  service?: string;
  signingDate?: Date;
  /** No Authorization header at all. */
  unsigned?: boolean;
  /** Sent instead of the body that was signed. */
  tamperedBody?: string;
  ca?: Buffer;
}

export interface XksReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: Record<string, unknown>;
  text: string;
}

export async function xksCall(base: { url: string; uriPath: string }, c: XksCall): Promise<XksReply> {
  const u = new URL(base.url);
  const path = c.path.startsWith('/') ? c.path : `${base.uriPath}/${c.path}`;
  const body = c.rawBody !== undefined ? Buffer.from(c.rawBody) : Buffer.from(JSON.stringify(c.body ?? {}));
  const request = { method: c.method ?? 'POST', protocol: u.protocol, hostname: u.hostname, port: Number(u.port), path, headers: { host: u.host, 'content-type': 'application/json' } as Record<string, string>, body };
  let headers = request.headers;
  if (!c.unsigned) {
    const signer = new SignatureV4({
      service: c.service ?? 'kms-xks-proxy',
      region: c.region ?? REGION,
      sha256: NodeSha256,
      applyChecksum: false,
      credentials: { accessKeyId: c.accessKeyId ?? ACCESS_KEY_ID, secretAccessKey: c.secretAccessKey ?? SECRET_ACCESS_KEY },
    });
    const signed = await signer.sign(request, { signingDate: c.signingDate ?? new Date() });
    headers = signed.headers as Record<string, string>;
  }
  const sent = c.tamperedBody !== undefined ? Buffer.from(c.tamperedBody) : body;
  return new Promise((resolve, reject) => {
    const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(
      { method: request.method, hostname: u.hostname, port: Number(u.port), path, headers: { ...headers, 'content-length': String(sent.length) }, ...(c.ca ? { ca: c.ca } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: Record<string, unknown> = {};
          try {
            json = JSON.parse(text) as Record<string, unknown>;
          } catch {
            // not JSON: the test looks at text
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, json, text });
        });
      },
    );
    req.on('error', reject);
    req.end(sent);
  });
}

/** requestMetadata as KMS sends it for `operation`. */
export function metadata(operation: string): Record<string, string> {
  return {
    awsPrincipalArn: 'arn:aws:iam::123456789012:user/Alice',
    kmsKeyArn: 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
    kmsOperation: operation,
    kmsRequestId: '4112f4d6-db54-4af4-ae30-c55a22a8dfae',
  };
}
