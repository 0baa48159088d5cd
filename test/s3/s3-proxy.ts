/**
 * A local S3 for upload tests: s3rver (127.0.0.1, port 0, temp directory) behind a small HTTP
 * proxy that records every request S3 received and can hold a request or answer it with an S3
 * error instead of forwarding it.
 *
 * s3rver 3.7 implements neither AbortMultipartUpload (it answers 405) nor ListMultipartUploads (501).
 * The proxy serves both from s3rver's own storage: an incomplete upload is the directory
 * `<root>/<bucket>/._S3rver_uploads/<uploadId>` (key, metadata, one file per part), which
 * CompleteMultipartUpload removes; Abort removes it too, List lists them.
 *
 * Requests are forwarded byte for byte (Host included, so s3rver verifies the client's SigV4
 * signature as computed for the proxy's address); only `Expect`, which SigV4 never signs, is dropped.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
// @ts-expect-error s3rver ships no type declarations; the slice used here is typed below.
import S3rverImpl from 's3rver';

interface S3rver {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: Server;
}
const S3rver = S3rverImpl as new (options: Record<string, unknown>) => S3rver;

export type S3Op =
  | 'PutObject'
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'ListMultipartUploads'
  | 'HeadObject'
  | 'GetObject'
  | 'Other';

export interface S3Request {
  op: S3Op;
  method: string;
  bucket: string;
  key: string;
  partNumber?: number;
  uploadId?: string;
  /** Content-Length the client sent (the part size, for UploadPart). */
  length?: number;
}

/** Log entry: the request and the status S3 (or the proxy) answered; 0 if the client went away. */
export interface S3Exchange extends S3Request {
  status: number;
}

/** What a hook may do with a request: forward it (undefined), or answer with an S3 error. */
export interface Fault {
  status: number;
  code: string;
  message: string;
}
export type Hook = (req: S3Request) => Fault | undefined | void | Promise<Fault | undefined | void>;

export interface LocalS3 {
  bucket: string;
  /** Client that talks to S3 through the proxy. */
  client: S3Client;
  /** Every exchange, in the order S3 answered them; tests may push their own markers too. */
  log: (S3Exchange | { op: 'marker'; name: string })[];
  /** Requests received and not yet answered. */
  inFlight(): number;
  /** Runs before a request is forwarded: may hold it (return a promise) or fail it (return a Fault). */
  hook: Hook | undefined;
  /** Exchanges of one operation, in answer order. */
  ops(op: S3Op): S3Exchange[];
  /** Multipart uploads not completed or aborted (what ListMultipartUploads returns). */
  openUploads(): { key: string; uploadId: string }[];
  stop(): Promise<void>;
}

export const BUCKET = 'kms-envelope-test';

export async function startLocalS3(): Promise<LocalS3> {
  const dir = mkdtempSync(join(tmpdir(), 'kms-envelope-s3-'));
  const s3rver = new S3rver({
    port: 0,
    address: '127.0.0.1',
    directory: dir,
    silent: true,
    configureBuckets: [{ name: BUCKET, configs: [] }],
  });
  const target = await s3rver.run();
  const uploadsDir = join(dir, BUCKET, '._S3rver_uploads');

  const openUploads = () =>
    existsSync(uploadsDir)
      ? readdirSync(uploadsDir).map((uploadId) => ({
          uploadId,
          key: existsSync(join(uploadsDir, uploadId, 'key')) ? readFileSync(join(uploadsDir, uploadId, 'key'), 'utf8') : '',
        }))
      : [];

  let pending = 0;
  // Filled in below; the server reads `log` and `hook` from it on every request.
  const state = { log: [], hook: undefined } as unknown as LocalS3;

  const server = createServer((req, res) => {
    pending++;
    const info = classify(req);
    let done = false;
    const finish = (status: number) => {
      if (done) return;
      done = true;
      pending--;
      state.log.push({ ...info, status });
    };
    res.on('finish', () => finish(res.statusCode));
    res.on('close', () => finish(res.writableFinished ? res.statusCode : 0));
    void handle(req, res, info).catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse, info: S3Request): Promise<void> {
    const fault = await state.hook?.(info);
    if (fault) {
      // Read the body first: answering mid-upload would show the client a reset, not the error.
      await drainRequest(req);
      return void sendError(res, fault);
    }
    if (info.op === 'AbortMultipartUpload') {
      await drainRequest(req);
      const path = join(uploadsDir, info.uploadId ?? '-');
      if (info.uploadId === undefined || !/^[0-9a-f]+$/.test(info.uploadId) || !existsSync(path)) {
        return void sendError(res, { status: 404, code: 'NoSuchUpload', message: 'The specified upload does not exist.' });
      }
      rmSync(path, { recursive: true, force: true });
      return void res.writeHead(204).end();
    }
    if (info.op === 'ListMultipartUploads') {
      await drainRequest(req);
      const uploads = openUploads()
        .map((u) => `<Upload><Key>${xml(u.key)}</Key><UploadId>${u.uploadId}</UploadId></Upload>`)
        .join('');
      res.writeHead(200, { 'content-type': 'application/xml' });
      return void res.end(
        `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><Bucket>${xml(info.bucket)}</Bucket>` +
          `<IsTruncated>false</IsTruncated>${uploads}</ListMultipartUploadsResult>`,
      );
    }
    const headers = { ...req.headers };
    delete headers.expect;
    const upstream = httpRequest({ host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers });
    upstream.on('response', (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.on('aborted', () => upstream.destroy());
    req.pipe(upstream);
  }

  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const port = (server.address() as AddressInfo).port;

  const client = new S3Client({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    forcePathStyle: true,
    // s3rver's default credentials; it verifies SigV4 signatures.
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });

  return Object.assign(state, {
    bucket: BUCKET,
    client,
    inFlight: () => pending,
    ops: (op) => state.log.filter((e): e is S3Exchange => e.op === op),
    openUploads,
    async stop() {
      client.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      s3rver.httpServer?.closeAllConnections();
      await s3rver.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  } satisfies Omit<LocalS3, 'log' | 'hook'>);
}

function classify(req: IncomingMessage): S3Request {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const [, bucket = '', ...rest] = url.pathname.split('/');
  const key = decodeURIComponent(rest.join('/'));
  const q = url.searchParams;
  const method = req.method ?? 'GET';
  const uploadId = q.get('uploadId') ?? undefined;
  const partNumber = q.has('partNumber') ? Number(q.get('partNumber')) : undefined;
  const length = req.headers['content-length'] !== undefined ? Number(req.headers['content-length']) : undefined;
  let op: S3Op = 'Other';
  if (method === 'PUT' && partNumber !== undefined && uploadId !== undefined) op = 'UploadPart';
  else if (method === 'PUT' && key !== '' && !q.has('uploadId') && !q.has('tagging')) op = 'PutObject';
  else if (method === 'POST' && q.has('uploads')) op = 'CreateMultipartUpload';
  else if (method === 'POST' && uploadId !== undefined) op = 'CompleteMultipartUpload';
  else if (method === 'DELETE' && uploadId !== undefined) op = 'AbortMultipartUpload';
  else if (method === 'GET' && key === '' && q.has('uploads')) op = 'ListMultipartUploads';
  else if (method === 'HEAD' && key !== '') op = 'HeadObject';
  else if (method === 'GET' && key !== '') op = 'GetObject';
  return { op, method, bucket, key, partNumber, uploadId, length };
}

function drainRequest(req: IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    if (req.readableEnded) return resolve();
    req.on('end', resolve).on('error', () => resolve()).on('close', resolve);
    req.resume();
  });
}

function sendError(res: ServerResponse, f: Fault): void {
  res.writeHead(f.status, { 'content-type': 'application/xml' });
  res.end(
    `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${xml(f.code)}</Code><Message>${xml(f.message)}</Message>` +
      `<RequestId>proxy</RequestId></Error>`,
  );
}

function xml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
