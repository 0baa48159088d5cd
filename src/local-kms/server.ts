import type { LocalKmsServiceOptions } from './core.js';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { KmsServiceError } from './errors.js';
import { LocalKmsService } from './service.js';
import type { RequestOrigin } from './request-context.js';
import { decodeInput, encodeOutput } from './shapes.js';
import { loadPrincipals } from './principals.js';
import { authenticate, type Authenticated, type AuthSettings } from './auth.js';
import { createConsole, isLoopbackAddress, type ConsoleHandler } from './console-http.js';

/**
 * HTTP front end of the local KMS, speaking the AWS KMS JSON 1.1 protocol:
 * `POST /` with `Content-Type: application/x-amz-json-1.1` and `X-Amz-Target: TrentService.<Op>`,
 * blobs base64, timestamps epoch seconds; errors `{"__type": "<Name>", "message": "..."}` with
 * HTTP 400 (500 for internal faults), and an `x-amzn-RequestId` header on every answer.
 *
 * Without a principals file every caller is the account root. With one, every request must be
 * SigV4-signed by a principal in the file (auth.ts), `/_local/clock` included: there is no
 * anonymous caller.
 */
export interface LocalKmsServerOptions {
  /** TCP port; 0 picks a free one. Default 0. */
  port?: number;
  /** Interface to bind; default 127.0.0.1 (loopback only). */
  host?: string;
  dataDir?: string;
  rootKeyFile?: string;
  /**
   * JSON file mapping access key ids to `{ arn, secretAccessKey?, ... }`. Without it every caller is the
   * account root and nothing is authenticated. With it every request must carry a SigV4 signature
   * whose credential scope names a Region of the server's partition, with `host`, the date and every `x-amz-*` header signed,
   * by an access key in the file: an unsigned request is MissingAuthenticationTokenException, an
   * unknown key UnrecognizedClientException, as in AWS. A signature is verified when the entry has
   * a secret; an entry without one is identified by its access key id alone. Entries may also
   * give `userId`, `tags` and `policies` (the principal's IAM identity policies; without them IAM
   * is not modelled for that principal), see principals.ts and iam.ts.
   */
  principalsFile?: string;
  /**
   * With `principalsFile`: an access key not in the file acts as the account root instead of being
   * refused. Requests without a signature are refused either way. Default false. Security effect:
   * anyone who can reach the server can act as the root by signing with any made-up key.
   */
  allowUnknownKeysAsRoot?: boolean;
  /**
   * @deprecated Refusing unknown access keys is the default with `principalsFile` now. `true` is
   * accepted and changes nothing; `false` is refused (say `allowUnknownKeysAsRoot: true` to admit
   * unknown keys as the root).
   */
  strictPrincipals?: boolean;
  /**
   * Enables `GET/POST /_local/clock` to read and advance the service clock (tests only: moving it
   * destroys keys past their deletion date). With `principalsFile` these requests must be
   * SigV4-signed by a principal in the file, like every KMS request (service `kms`, this server's
   * Region); without one they need no signature, like everything else.
   */
  testClock?: boolean;
  accountId?: string;
  /**
   * The default Region, default us-east-1: the one requests without a SigV4 credential scope
   * address. Every Region of its partition is served: a request goes to the Region its credential
   * scope names (an SDK client with `region: 'eu-west-1'` talks to eu-west-1), and each Region has
   * its own keys, aliases and ARNs. A data directory's own keys stay in the Region it was first
   * started with.
   */
  region?: string;
  /** Milliseconds a replica made by ReplicateKey stays `Creating`; default 0 (see LocalKmsServiceOptions). */
  replicaCreationMs?: number;
  /**
   * Serves the web console at `/console` (console-http.ts). Default false. Loopback only: refused
   * with a non-loopback `host`. Security effect: any local process or browser tab that passes the
   * console's Host/Origin/CSRF checks can act as any principal of the principals file.
   */
  console?: boolean;
  /** CloudHSM "clusters" (PKCS#11 tokens) custom key stores can use; see LocalKmsServiceOptions.hsms. */
  hsms?: LocalKmsServiceOptions['hsms'];
  /** External key store proxy timeout in ms; see LocalKmsServiceOptions.xksProxyTimeoutMs (default 250). */
  xksProxyTimeoutMs?: number;
  /** Extra CAs for HTTPS external key store proxies; see LocalKmsServiceOptions.xksProxyCa. */
  xksProxyCa?: LocalKmsServiceOptions['xksProxyCa'];
  /** Largest accepted request body in bytes; default 1 MiB. */
  maxBodyBytes?: number;
  /** Milliseconds a client has to send all request headers (slowloris guard); default 10 000. */
  headersTimeoutMs?: number;
  /** Milliseconds a client has to send a whole request; default 30 000 (at least headersTimeoutMs). */
  requestTimeoutMs?: number;
  /** Milliseconds of socket inactivity after which the connection is dropped; default 60 000. */
  idleTimeoutMs?: number;
}

export interface LocalKmsServer {
  url: string;
  port: number;
  service: LocalKmsService;
  close(): Promise<void>;
}

const TARGET_PREFIX = 'TrentService.';
const JSON_TYPE = 'application/x-amz-json-1.1';
const DEFAULT_MAX_BODY = 1024 * 1024;

export async function startLocalKmsServer(options: LocalKmsServerOptions = {}): Promise<LocalKmsServer> {
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`port must be an integer 0-65535, got ${port}`);
  const host = options.host ?? '127.0.0.1';
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  if (!Number.isInteger(maxBody) || maxBody < 1024) throw new RangeError(`maxBodyBytes must be an integer of at least 1024 bytes, got ${maxBody}`);
  const timeout = (name: string, v: number | undefined, fallback: number): number => {
    const ms = v ?? fallback;
    if (!Number.isInteger(ms) || ms < 100) throw new RangeError(`${name} must be an integer of at least 100 milliseconds, got ${ms}`);
    return ms;
  };
  const headersTimeout = timeout('headersTimeoutMs', options.headersTimeoutMs, 10_000);
  const requestTimeout = timeout('requestTimeoutMs', options.requestTimeoutMs, Math.max(30_000, headersTimeout));
  if (requestTimeout < headersTimeout) throw new RangeError(`requestTimeoutMs (${requestTimeout}) must be at least headersTimeoutMs (${headersTimeout})`);
  const idleTimeout = timeout('idleTimeoutMs', options.idleTimeoutMs, 60_000);
  checkAuthOptions(options);
  if (options.console !== undefined && typeof options.console !== 'boolean') throw new TypeError(`console must be a boolean, got ${typeof options.console}`);
  if (options.console === true && !isLoopbackAddress(host)) throw new RangeError(`console needs a loopback host (127.0.0.1, ::1, localhost), got ${host}`);
  const principals = options.principalsFile ? loadPrincipals(options.principalsFile) : undefined;
  let offsetMs = 0;
  const clock = options.testClock ? () => Date.now() + offsetMs : Date.now;
  const service = new LocalKmsService({
    clock,
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
    ...(options.rootKeyFile !== undefined ? { rootKeyFile: options.rootKeyFile } : {}),
    ...(options.accountId !== undefined ? { accountId: options.accountId } : {}),
    ...(options.region !== undefined ? { region: options.region } : {}),
    ...(options.replicaCreationMs !== undefined ? { replicaCreationMs: options.replicaCreationMs } : {}),
    ...(options.hsms !== undefined ? { hsms: options.hsms } : {}),
    ...(options.xksProxyTimeoutMs !== undefined ? { xksProxyTimeoutMs: options.xksProxyTimeoutMs } : {}),
    ...(options.xksProxyCa !== undefined ? { xksProxyCa: options.xksProxyCa } : {}),
  });

  const ctx: HandlerContext = {
    service,
    auth: {
      principals,
      allowUnknownKeysAsRoot: options.allowUnknownKeysAsRoot === true,
      accountId: service.accountId,
      servesRegion: (region) => service.regions.serves(region),
    },
    testClock: options.testClock === true,
    maxBody,
    advance: (seconds) => {
      offsetMs += seconds * 1000;
    },
  };
  let listeningPort = 0;
  if (options.console === true) {
    ctx.console = createConsole({ service, principals, port: () => listeningPort, origin: (req) => requestOrigin(req, undefined) });
  }

  // Node checks the header/request deadlines only every connectionsCheckingInterval (default 30 s),
  // which let a slowloris client hold a socket for 30 s against a 10 s headersTimeout: check each second.
  const checkEvery = Math.min(1_000, headersTimeout);
  const server = createServer({ requestTimeout, headersTimeout, keepAliveTimeout: 5_000, connectionsCheckingInterval: checkEvery }, (req, res) => {
    handle(ctx, req, res).catch((e) => {
      // Only reached if writing the answer itself failed; the socket is dropped.
      process.stderr.write(`local-kms: ${(e as Error).message}\n`);
      res.destroy();
    });
  });
  // Idle sockets (slow or half-closed clients) are dropped instead of pinning the server.
  server.setTimeout(idleTimeout, (socket: Socket) => socket.destroy());

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    service.close();
    throw e;
  }
  const actual = (server.address() as AddressInfo).port;
  listeningPort = actual;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${actual}`,
    port: actual,
    service,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }).then(() => service.close());
      return closing;
    },
  };
}

/** The authentication options, checked once at start (types, contradictions, the deprecated one). */
function checkAuthOptions(options: LocalKmsServerOptions): void {
  for (const name of ['allowUnknownKeysAsRoot', 'strictPrincipals'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'boolean') {
      throw new TypeError(`${name} must be a boolean, got ${typeof options[name]}`);
    }
  }
  if (options.strictPrincipals === false) {
    throw new RangeError(
      'strictPrincipals: false is no longer supported: with principalsFile, unknown access keys are refused by default; ' +
        'set allowUnknownKeysAsRoot: true to let them act as the account root',
    );
  }
  if (options.strictPrincipals === true && options.allowUnknownKeysAsRoot === true) {
    throw new RangeError('strictPrincipals and allowUnknownKeysAsRoot contradict each other: give one of them');
  }
  for (const name of ['allowUnknownKeysAsRoot', 'strictPrincipals'] as const) {
    if (options[name] === true && !options.principalsFile) {
      throw new RangeError(`${name} needs principalsFile: without one every caller is the account root`);
    }
  }
}

interface HandlerContext {
  service: LocalKmsService;
  auth: AuthSettings;
  testClock: boolean;
  maxBody: number;
  advance(seconds: number): void;
  /** The web console, when enabled. */
  console?: ConsoleHandler;
}

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new BodyTooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
    req.on('aborted', () => reject(new Error('request aborted')));
  });
}

function send(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': JSON_TYPE,
    'Content-Length': Buffer.byteLength(text),
    'x-amzn-RequestId': randomUUID(),
    ...extra,
  });
  res.end(text);
}

function sendError(res: ServerResponse, e: KmsServiceError, extra: Record<string, string> = {}): void {
  send(res, e.status, { __type: e.type, message: e.message }, { 'x-amzn-ErrorType': e.type, ...extra });
}

async function handle(ctx: HandlerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  let body: Buffer;
  try {
    body = await readBody(req, ctx.maxBody);
  } catch (e) {
    if (e instanceof BodyTooLarge) {
      // Answer, then drop the connection so the rest of the upload is not read.
      sendError(res, new KmsServiceError('RequestEntityTooLargeException', `Request body exceeds ${ctx.maxBody} bytes.`, 413), {
        Connection: 'close',
      });
      req.resume();
      setTimeout(() => req.socket.destroy(), 100).unref();
      return;
    }
    res.destroy();
    return;
  }

  // RFC 9112 §3.2: a request with more than one Host field is answered 400 (Node keeps only the
  // first, so a second one could slip past a Host check).
  if (req.rawHeaders.filter((_, i) => i % 2 === 0 && req.rawHeaders[i]!.toLowerCase() === 'host').length > 1) {
    send(res, 400, { __type: 'ValidationException', message: 'A request may carry only one Host header.' });
    return;
  }
  // With the console on, every path of this port answers only its own loopback Host: a page that
  // rebinds its DNS name to 127.0.0.1 is same-origin with it, so it could otherwise send KMS
  // requests (unsigned ones act as the account root without a principals file) to `/`.
  const consolePath = path === '/console' || path.startsWith('/console/');
  if (ctx.console !== undefined && !consolePath && !ctx.console.hostAllowed(req)) {
    send(res, 403, { __type: 'AccessDeniedException', message: 'Host header must be 127.0.0.1, localhost or [::1] with this port.' });
    return;
  }
  // The console checks its own paths' Host, answering with its security headers.
  if (ctx.console !== undefined && consolePath) {
    await ctx.console.handle(req, res, path, body);
    return;
  }
  if (path === '/_local/clock') {
    handleClock(ctx, req, res, body);
    return;
  }
  if (req.method !== 'POST' || path !== '/') {
    send(res, 404, { __type: 'UnknownOperationException', message: `No route for ${req.method} ${path}` });
    return;
  }

  try {
    const target = req.headers['x-amz-target'];
    if (typeof target !== 'string' || !target.startsWith(TARGET_PREFIX)) {
      throw new KmsServiceError('UnknownOperationException', 'Missing or unknown X-Amz-Target header.');
    }
    // A JSON 1.1 service dispatches only application/x-amz-json-1.1 bodies; AWS answers another
    // media type (form posts, text/plain, application/json) with UnknownOperationException. A request
    // without the header is still read as JSON, for hand-made requests.
    const contentType = req.headers['content-type'];
    if (contentType !== undefined && contentType.split(';')[0]!.trim().toLowerCase() !== JSON_TYPE) {
      throw new KmsServiceError('UnknownOperationException', `Content-Type must be ${JSON_TYPE}.`);
    }
    const operation = target.slice(TARGET_PREFIX.length);
    const { caller, requestedRegion } = authenticateRequest(ctx, req, body);
    let parsed: unknown = {};
    if (body.length > 0) {
      try {
        // Fatal decoding: invalid UTF-8 is a SerializationException, not silently U+FFFD in a description or alias.
        parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body));
      } catch {
        throw new KmsServiceError('SerializationException', 'The request body is not valid JSON.');
      }
    }
    const input = decodeInput(operation, parsed);
    const output = await ctx.service.call(operation, input, caller, requestOrigin(req, requestedRegion));
    send(res, 200, encodeOutput(output));
  } catch (e) {
    if (e instanceof KmsServiceError) {
      sendError(res, e);
    } else {
      process.stderr.write(`local-kms: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
      sendError(res, new KmsServiceError('KMSInternalException', 'An internal error occurred.', 500));
    }
  }
}

/**
 * The request's caller (auth.ts). Signatures are checked against real time: SDKs sign with the
 * wall clock, not the test clock.
 */
function authenticateRequest(ctx: HandlerContext, req: IncomingMessage, body: Buffer): Authenticated {
  return authenticate(
    { method: req.method ?? 'POST', path: req.url ?? '/', headers: req.headers, rawHeaders: req.rawHeaders, body },
    ctx.auth,
    Date.now(),
  );
}

/**
 * `GET /_local/clock` reads the service clock, `POST` with `{"advanceSeconds": N}` moves it forward
 * (only with testClock). Moving it can destroy keys pending deletion, expire imported material and
 * start rotations, so with a principals file it is no exception to "no anonymous caller": the
 * request must be SigV4-signed by a principal in the file exactly as a KMS request is (credential
 * scope kms in this server's Region, path `/_local/clock` covered by the signature), or it is
 * refused with the same errors.
 */
function handleClock(ctx: HandlerContext, req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  if (!ctx.testClock) {
    send(res, 404, { __type: 'UnknownOperationException', message: 'The test clock is not enabled (start with --test-clock).' });
    return;
  }
  if (ctx.auth.principals !== undefined) {
    try {
      authenticateRequest(ctx, req, body);
    } catch (e) {
      if (!(e instanceof KmsServiceError)) throw e;
      sendError(res, e);
      return;
    }
  }
  if (req.method === 'POST') {
    let advance: unknown;
    try {
      advance = (JSON.parse(body.toString('utf8')) as { advanceSeconds?: unknown }).advanceSeconds;
    } catch {
      advance = undefined;
    }
    if (typeof advance !== 'number' || !Number.isFinite(advance) || advance < 0) {
      send(res, 400, { __type: 'ValidationException', message: 'Body must be {"advanceSeconds": N} with N >= 0.' });
      return;
    }
    ctx.advance(advance);
  } else if (req.method !== 'GET') {
    send(res, 405, { __type: 'UnknownOperationException', message: 'Use GET or POST on /_local/clock.' });
    return;
  }
  send(res, 200, { now: Math.floor(ctx.service.now() / 1000) });
}

/**
 * What the global condition keys need from the HTTP layer (request-context.ts): the peer address
 * (aws:SourceIp; IPv4-mapped IPv6 as plain IPv4), the User-Agent header (aws:UserAgent), whether the
 * connection is TLS (aws:SecureTransport: this server speaks plain HTTP, so false), and the Region of
 * the SigV4 credential scope (aws:RequestedRegion) as authentication read it: the header is parsed
 * once, in sigv4.ts, never again here.
 */
function requestOrigin(req: IncomingMessage, requestedRegion: string | undefined): RequestOrigin {
  const address = req.socket.remoteAddress ?? '';
  const userAgent = req.headers['user-agent'];
  return {
    sourceIp: address.startsWith('::ffff:') && address.includes('.') ? address.slice('::ffff:'.length) : address,
    userAgent: typeof userAgent === 'string' ? userAgent : '',
    secureTransport: 'encrypted' in req.socket && (req.socket as { encrypted?: boolean }).encrypted === true,
    ...(requestedRegion !== undefined ? { requestedRegion } : {}),
  };
}
