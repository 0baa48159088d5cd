/**
 * Hand-signed requests for the local KMS tests: @smithy/signature-v4 (the signer inside
 * @aws-sdk/client-kms) over node:crypto, so a test can choose which headers are signed, the
 * credential scope's Region and the signing time, then send exactly those bytes with node:http.
 */
import { createHash, createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';

const toBytes = (d: string | ArrayBuffer | ArrayBufferView): string | Uint8Array =>
  typeof d === 'string' ? d : ArrayBuffer.isView(d) ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength) : new Uint8Array(d);

/** node:crypto behind the hash interface @smithy/signature-v4 expects (HMAC when given a secret). */
export class NodeSha256 {
  private readonly h;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', toBytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.h.update(toBytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
}

export interface HandSigned {
  /** The server URL; the request goes to `path` on it. */
  url: string;
  /** Operation name, sent as `X-Amz-Target: TrentService.<target>`; none when undefined (e.g. `/_local/clock`). */
  target: string | undefined;
  /** Request method; default POST. */
  method?: string;
  /** Request path; default `/`. */
  path?: string;
  body: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Credential scope Region; default us-east-1. */
  region?: string;
  /** Headers left out of SignedHeaders (still sent), e.g. `x-amz-target`. */
  unsigned?: string[];
  /** More headers to send (signed unless named in `unsigned`). */
  headers?: Record<string, string>;
  signingDate?: Date;
}

/** The headers of a request signed as described (lower-case names, `authorization` included). */
export async function handSign(r: HandSigned): Promise<Record<string, string>> {
  const u = new URL(r.url);
  const signer = new SignatureV4({
    service: 'kms',
    region: r.region ?? 'us-east-1',
    sha256: NodeSha256,
    applyChecksum: false,
    credentials: { accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey },
  });
  const signed = await signer.sign(
    {
      method: r.method ?? 'POST',
      protocol: u.protocol,
      hostname: u.hostname,
      port: Number(u.port),
      path: r.path ?? '/',
      query: {},
      headers: {
        host: u.host,
        'content-type': 'application/x-amz-json-1.1',
        ...(r.target !== undefined ? { 'x-amz-target': `TrentService.${r.target}` } : {}),
        ...r.headers,
      },
      body: r.body,
    } as never,
    { signingDate: r.signingDate ?? new Date(), unsignableHeaders: new Set(r.unsigned ?? []) },
  );
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((signed as unknown as { headers: Record<string, string> }).headers)) out[k.toLowerCase()] = v;
  return out;
}

export interface RawAnswer {
  status: number;
  json: { __type?: string; message?: string; [k: string]: unknown };
}

/**
 * POST `body` to `url` with exactly `headers` (node:http adds only Content-Length); `to` sends
 * it to another path or with another method instead of `POST /`.
 */
export function postRaw(url: string, headers: Record<string, string>, body: string, to: { method?: string; path?: string } = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const options = { method: to.method ?? 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } };
    const req = httpRequest(`${url}${to.path ?? '/'}`, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A request with no Authorization header at all, as `curl -d ... -H 'X-Amz-Target: ...'` sends it. */
export const postUnsigned = (url: string, target: string, body: string): Promise<RawAnswer> =>
  postRaw(url, { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `TrentService.${target}` }, body);
