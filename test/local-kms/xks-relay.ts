import { request, createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A recording relay between the local KMS and a real XKS proxy: every request is forwarded
 * byte for byte (Host header included, so the SigV4 signature the proxy checks is the local
 * KMS's own) and its path and JSON body are kept, to show what the proxy was sent
 * (requestMetadata, and that the "plaintext" it encrypts is not the caller's plaintext).
 */
export interface XksRelay {
  url: string;
  seen: Array<{ path: string; body: Record<string, unknown> }>;
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
      try {
        seen.push({ path: req.url ?? '', body: JSON.parse(body.toString('utf8')) as Record<string, unknown> });
      } catch {
        seen.push({ path: req.url ?? '', body: {} });
      }
      const out = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers, agent: false }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
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
