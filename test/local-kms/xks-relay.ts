import { request, createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A recording relay between the local KMS and a real XKS proxy: every request is forwarded
 * byte for byte (Host header included, so the SigV4 signature the proxy checks is the local
 * KMS's own) and its path and JSON body are kept, to show what the proxy was sent
 * (requestMetadata, and that the "plaintext" it encrypts is not the caller's plaintext), and the
 * JSON of its answer (`response`, once it has arrived: the memory test takes IV and ciphertext of
 * an Encrypt from it).
 */
export interface XksRelay {
  url: string;
  seen: Array<{ path: string; body: Record<string, unknown>; response?: Record<string, unknown> }>;
  close(): Promise<void>;
}

export async function startRelay(target: string): Promise<XksRelay> {
  const seen: XksRelay['seen'] = [];
  const to = new URL(target);
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const entry: XksRelay['seen'][number] = { path: req.url ?? '', body: parse(body) };
      seen.push(entry);
      const out = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers, agent: false }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        const answer: Buffer[] = [];
        r.on('data', (c: Buffer) => answer.push(c));
        r.on('end', () => (entry.response = parse(Buffer.concat(answer))));
        r.pipe(res);
      });
      out.on('error', () => res.destroy());
      out.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function parse(body: Buffer): Record<string, unknown> {
  try {
    return JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}
