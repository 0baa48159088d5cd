/**
 * Adapts whatever the caller hands us as "a KMS client" to the library's small `KmsClient`
 * interface (src/types.ts), counts every request, checks the shape of every answer, and turns
 * every failure into a `KmsError` that carries the AWS error name.
 *
 * `@aws-sdk/client-kms` is imported lazily, on the first request that needs it, so that
 * local-only use (raw keyrings, the in-process local KMS) never loads the AWS SDK and Lambda
 * cold starts stay light.
 */
import type { KMSClient, KMSClientConfig } from '@aws-sdk/client-kms';
import { KmsError } from '../errors.js';
import type { KmsClient } from '../types.js';
import { isWellFormedUtf16 } from '../format/context.js';
import { plainContext, type KmsCallCounter } from './common.js';

/** A `KmsClient` that counts the requests it sends (including failed ones). */
export interface CountedKmsClient extends KmsClient, KmsCallCounter {
  /**
   * True once KMS has answered a request sent through this client: a response, or an error that
   * KMS itself returned (an SDK service exception with an HTTP status, a local KMS service error).
   * A network failure, or a Region where no KMS exists, is not an answer.
   */
  readonly answered: boolean;
  /** True when the wrapped client can send GenerateDataKeyWithoutPlaintext and ReEncrypt (branch key store). */
  readonly supportsBranchKeys: boolean;
  generateDataKeyWithoutPlaintext(input: Parameters<NonNullable<KmsClient['generateDataKeyWithoutPlaintext']>>[0]): Promise<{
    keyId: string;
    ciphertextBlob: Uint8Array;
  }>;
  reEncrypt(input: Parameters<NonNullable<KmsClient['reEncrypt']>>[0]): Promise<{
    keyId: string;
    sourceKeyId: string;
    ciphertextBlob: Uint8Array;
  }>;
}

/** Anything with an SDK v3 style `send(command)`: `KMSClient` and the aggregated `KMS` class. */
interface SendClient {
  send(command: unknown): Promise<unknown>;
}

type SdkModule = typeof import('@aws-sdk/client-kms');
let sdkModule: Promise<SdkModule> | undefined;

/** Imports `@aws-sdk/client-kms` once, on first use. A failed import is retried next time. */
function loadSdk(): Promise<SdkModule> {
  if (sdkModule === undefined) {
    sdkModule = import('@aws-sdk/client-kms').catch((err: unknown) => {
      sdkModule = undefined;
      throw new KmsError('cannot load @aws-sdk/client-kms', 'SdkNotAvailable', { cause: err });
    });
  }
  return sdkModule;
}

const COUNTED = Symbol('kms-envelope.countedKmsClient');

/**
 * Accepts an `@aws-sdk/client-kms` `KMSClient` (detected by its `send` method) or any object that
 * implements `KmsClient` (`generateDataKey`, `encrypt`, `decrypt`), e.g. the local KMS in-process
 * client, and returns a counting, error-mapping `KmsClient`. Already adapted clients are returned
 * as they are, so counts are not split. Anything else is a TypeError naming `option`.
 */
export function toKmsClient(client: unknown, option = 'client'): CountedKmsClient {
  if (client === null || (typeof client !== 'object' && typeof client !== 'function')) {
    throw new TypeError(`${option} must be an @aws-sdk/client-kms KMSClient or a KmsClient`);
  }
  if ((client as { [COUNTED]?: boolean })[COUNTED] === true) return client as CountedKmsClient;
  const c = client as Record<string, unknown>;
  if (typeof c.send === 'function') {
    const sdkClient = client as SendClient;
    return new CountingKmsClient(new SdkKmsClient(async () => sdkClient));
  }
  if (typeof c.generateDataKey === 'function' && typeof c.encrypt === 'function' && typeof c.decrypt === 'function') {
    return new CountingKmsClient(client as KmsClient);
  }
  throw new TypeError(
    `${option} must be an @aws-sdk/client-kms KMSClient (with send) or a KmsClient (with generateDataKey, encrypt and decrypt)`,
  );
}

export interface DefaultKmsClientOptions {
  /** AWS region, e.g. `us-east-1`. Default: the SDK's resolution (AWS_REGION, config files). */
  region?: string;
  /** Endpoint URL, e.g. `http://127.0.0.1:4599` for the local KMS. */
  endpoint?: string;
}

/**
 * A `KmsClient` backed by a `KMSClient` that is constructed (and the SDK imported) only when the
 * first request is sent. Credentials and region resolve as the AWS SDK always does.
 */
export function createDefaultKmsClient(opts: DefaultKmsClientOptions = {}): CountedKmsClient {
  if (opts === null || typeof opts !== 'object') throw new TypeError('options must be an object');
  const { region, endpoint } = opts;
  if (region !== undefined && (typeof region !== 'string' || region.length === 0)) {
    throw new TypeError('region must be a non-empty string');
  }
  if (endpoint !== undefined) {
    if (typeof endpoint !== 'string') throw new TypeError('endpoint must be a URL string');
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new TypeError('endpoint must be an absolute http(s) URL, e.g. http://127.0.0.1:4599');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError('endpoint must be an http: or https: URL');
    }
  }
  let built: Promise<SendClient> | undefined;
  const make = (): Promise<SendClient> => {
    if (built === undefined) {
      built = loadSdk().then((sdk) => {
        const config: KMSClientConfig = {};
        if (region !== undefined) config.region = region;
        if (endpoint !== undefined) config.endpoint = endpoint;
        return new sdk.KMSClient(config) as KMSClient;
      });
      built.catch(() => {
        built = undefined;
      });
    }
    return built;
  };
  return new CountingKmsClient(new SdkKmsClient(make));
}

/** Speaks to KMS through the SDK's command objects. Validation and error mapping live in CountingKmsClient. */
class SdkKmsClient implements KmsClient {
  readonly #client: () => Promise<SendClient>;
  constructor(client: () => Promise<SendClient>) {
    this.#client = client;
  }

  async generateDataKey(input: Parameters<KmsClient['generateDataKey']>[0]) {
    const [sdk, client] = await Promise.all([loadSdk(), this.#client()]);
    const out = (await client.send(
      new sdk.GenerateDataKeyCommand({
        KeyId: input.keyId,
        NumberOfBytes: input.numberOfBytes,
        EncryptionContext: sdkContext(input.encryptionContext),
        GrantTokens: input.grantTokens,
      }),
    )) as { KeyId?: unknown; Plaintext?: unknown; CiphertextBlob?: unknown };
    return { keyId: out.KeyId, plaintext: out.Plaintext, ciphertextBlob: out.CiphertextBlob } as Awaited<
      ReturnType<KmsClient['generateDataKey']>
    >;
  }

  async encrypt(input: Parameters<KmsClient['encrypt']>[0]) {
    const [sdk, client] = await Promise.all([loadSdk(), this.#client()]);
    const out = (await client.send(
      new sdk.EncryptCommand({
        KeyId: input.keyId,
        Plaintext: input.plaintext,
        EncryptionContext: sdkContext(input.encryptionContext),
        GrantTokens: input.grantTokens,
      }),
    )) as { KeyId?: unknown; CiphertextBlob?: unknown };
    return { keyId: out.KeyId, ciphertextBlob: out.CiphertextBlob } as Awaited<ReturnType<KmsClient['encrypt']>>;
  }

  async decrypt(input: Parameters<KmsClient['decrypt']>[0]) {
    const [sdk, client] = await Promise.all([loadSdk(), this.#client()]);
    const out = (await client.send(
      new sdk.DecryptCommand({
        KeyId: input.keyId,
        CiphertextBlob: input.ciphertextBlob,
        EncryptionContext: sdkContext(input.encryptionContext),
        GrantTokens: input.grantTokens,
      }),
    )) as { KeyId?: unknown; Plaintext?: unknown };
    return { keyId: out.KeyId, plaintext: out.Plaintext } as Awaited<ReturnType<KmsClient['decrypt']>>;
  }

  async generateDataKeyWithoutPlaintext(input: WithoutPlaintextInput) {
    const [sdk, client] = await Promise.all([loadSdk(), this.#client()]);
    const out = (await client.send(
      new sdk.GenerateDataKeyWithoutPlaintextCommand({
        KeyId: input.keyId,
        NumberOfBytes: input.numberOfBytes,
        EncryptionContext: sdkContext(input.encryptionContext),
        GrantTokens: input.grantTokens,
      }),
    )) as { KeyId?: unknown; CiphertextBlob?: unknown };
    return { keyId: out.KeyId, ciphertextBlob: out.CiphertextBlob } as Awaited<ReturnType<WithoutPlaintext>>;
  }

  async reEncrypt(input: ReEncryptInput) {
    const [sdk, client] = await Promise.all([loadSdk(), this.#client()]);
    const out = (await client.send(
      new sdk.ReEncryptCommand({
        CiphertextBlob: input.ciphertextBlob,
        SourceKeyId: input.sourceKeyId,
        SourceEncryptionContext: sdkContext(input.sourceEncryptionContext),
        DestinationKeyId: input.destinationKeyId,
        DestinationEncryptionContext: sdkContext(input.destinationEncryptionContext),
        GrantTokens: input.grantTokens,
      }),
    )) as { KeyId?: unknown; SourceKeyId?: unknown; CiphertextBlob?: unknown };
    return { keyId: out.KeyId, sourceKeyId: out.SourceKeyId, ciphertextBlob: out.CiphertextBlob } as Awaited<
      ReturnType<ReEncrypt>
    >;
  }
}

type WithoutPlaintext = NonNullable<KmsClient['generateDataKeyWithoutPlaintext']>;
type WithoutPlaintextInput = Parameters<WithoutPlaintext>[0];
type ReEncrypt = NonNullable<KmsClient['reEncrypt']>;
type ReEncryptInput = Parameters<ReEncrypt>[0];

/** KMS treats an absent and an empty encryption context alike; omit empty ones from requests. */
function sdkContext(ctx: Record<string, string> | undefined): Record<string, string> | undefined {
  if (ctx === undefined) return undefined;
  if (Object.keys(ctx).length === 0) return undefined;
  // A defining copy: assigning a "__proto__" key would set the prototype and drop that pair.
  return plainContext(ctx);
}

/**
 * Counts requests, validates answers and maps errors for any KmsClient. A request counts as soon
 * as it is sent, whether it succeeds or not: that is what KMS bills and throttles.
 */
class CountingKmsClient implements CountedKmsClient {
  readonly [COUNTED] = true;
  #calls = 0;
  #answered = false;
  readonly #inner: KmsClient;

  constructor(inner: KmsClient) {
    this.#inner = inner;
  }

  get kmsCalls(): number {
    return this.#calls;
  }

  get answered(): boolean {
    return this.#answered;
  }

  async generateDataKey(input: Parameters<KmsClient['generateDataKey']>[0]) {
    this.#calls++;
    let out: Awaited<ReturnType<KmsClient['generateDataKey']>>;
    try {
      out = await this.#inner.generateDataKey(input);
    } catch (err) {
      if (isKmsAnswer(err)) this.#answered = true;
      throw mapKmsError('GenerateDataKey', err);
    }
    this.#answered = true;
    const r = checkResponse('GenerateDataKey', out, ['keyId', 'plaintext', 'ciphertextBlob']);
    return { keyId: r.keyId as string, plaintext: r.plaintext as Uint8Array, ciphertextBlob: r.ciphertextBlob as Uint8Array };
  }

  async encrypt(input: Parameters<KmsClient['encrypt']>[0]) {
    this.#calls++;
    let out: Awaited<ReturnType<KmsClient['encrypt']>>;
    try {
      out = await this.#inner.encrypt(input);
    } catch (err) {
      if (isKmsAnswer(err)) this.#answered = true;
      throw mapKmsError('Encrypt', err);
    }
    this.#answered = true;
    const r = checkResponse('Encrypt', out, ['keyId', 'ciphertextBlob']);
    return { keyId: r.keyId as string, ciphertextBlob: r.ciphertextBlob as Uint8Array };
  }

  async decrypt(input: Parameters<KmsClient['decrypt']>[0]) {
    this.#calls++;
    let out: Awaited<ReturnType<KmsClient['decrypt']>>;
    try {
      out = await this.#inner.decrypt(input);
    } catch (err) {
      if (isKmsAnswer(err)) this.#answered = true;
      throw mapKmsError('Decrypt', err);
    }
    this.#answered = true;
    const r = checkResponse('Decrypt', out, ['keyId', 'plaintext']);
    return { keyId: r.keyId as string, plaintext: r.plaintext as Uint8Array };
  }

  /** True when the wrapped client can send GenerateDataKeyWithoutPlaintext and ReEncrypt. */
  get supportsBranchKeys(): boolean {
    return typeof this.#inner.generateDataKeyWithoutPlaintext === 'function' && typeof this.#inner.reEncrypt === 'function';
  }

  async generateDataKeyWithoutPlaintext(input: WithoutPlaintextInput) {
    const inner = this.#inner;
    if (typeof inner.generateDataKeyWithoutPlaintext !== 'function') {
      throw new KmsError('this KMS client cannot send GenerateDataKeyWithoutPlaintext', 'UnsupportedOperation');
    }
    this.#calls++;
    let out: Awaited<ReturnType<WithoutPlaintext>>;
    try {
      out = await inner.generateDataKeyWithoutPlaintext(input);
    } catch (err) {
      if (isKmsAnswer(err)) this.#answered = true;
      throw mapKmsError('GenerateDataKeyWithoutPlaintext', err);
    }
    this.#answered = true;
    const r = checkResponse('GenerateDataKeyWithoutPlaintext', out, ['keyId', 'ciphertextBlob']);
    return { keyId: r.keyId as string, ciphertextBlob: r.ciphertextBlob as Uint8Array };
  }

  async reEncrypt(input: ReEncryptInput) {
    const inner = this.#inner;
    if (typeof inner.reEncrypt !== 'function') {
      throw new KmsError('this KMS client cannot send ReEncrypt', 'UnsupportedOperation');
    }
    this.#calls++;
    let out: Awaited<ReturnType<ReEncrypt>>;
    try {
      out = await inner.reEncrypt(input);
    } catch (err) {
      if (isKmsAnswer(err)) this.#answered = true;
      throw mapKmsError('ReEncrypt', err);
    }
    this.#answered = true;
    const r = checkResponse('ReEncrypt', out, ['keyId', 'ciphertextBlob']);
    return { keyId: r.keyId as string, sourceKeyId: String(r.sourceKeyId ?? ''), ciphertextBlob: r.ciphertextBlob as Uint8Array };
  }
}

function checkResponse(op: string, out: unknown, fields: readonly string[]): Record<string, unknown> {
  if (out === null || typeof out !== 'object') {
    throw new KmsError(`KMS ${op} returned no response`, 'MalformedResponse');
  }
  const r = out as Record<string, unknown>;
  for (const f of fields) {
    const v = r[f];
    // KeyId becomes an EDK's provider info (UTF-8): an unpaired surrogate would be stored as U+FFFD.
    const ok = f === 'keyId' ? typeof v === 'string' && v.length > 0 && isWellFormedUtf16(v) : v instanceof Uint8Array;
    if (!ok) {
      // A refused answer may still carry a plaintext key (a custom client or proxy): wipe it, as
      // the key would otherwise stay in Node's shared Buffer pool with nobody left to zero it.
      if (r.plaintext instanceof Uint8Array) r.plaintext.fill(0);
      throw new KmsError(`KMS ${op} response lacks ${f}`, 'MalformedResponse');
    }
  }
  return r;
}

/**
 * Did KMS itself return this error (as opposed to the network, DNS, or the SDK failing before
 * sending)? SDK service exceptions carry the HTTP status of the answer in `$metadata` (the ESDK's
 * client cache tests the same field); the local KMS's in-process errors carry the AWS error name
 * as `type`; a KmsError mapped from either keeps no such trace and is not taken as an answer.
 */
function isKmsAnswer(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  const e = err as { $metadata?: { httpStatusCode?: unknown }; type?: unknown };
  if (typeof e.$metadata?.httpStatusCode === 'number') return true;
  return typeof e.type === 'string' && e.type.length > 0;
}

const MAX_MESSAGE = 300;

/**
 * Turns an SDK exception (`name` = AWS error name, e.g. `NotFoundException`), a local KMS
 * `KmsServiceError` (`type` = AWS error name) or a network error into a `KmsError`. Only the
 * name and the service's message are kept: KMS messages name keys and reasons, never key
 * material, and the request (which holds plaintext for Encrypt) is not attached.
 */
export function mapKmsError(op: string, err: unknown): KmsError {
  if (err instanceof KmsError) return err;
  const e = (err ?? {}) as { name?: unknown; type?: unknown; code?: unknown; message?: unknown };
  let name: string | undefined;
  if (typeof e.type === 'string' && e.type.length > 0) name = e.type;
  else if (typeof e.name === 'string' && e.name.length > 0 && e.name !== 'Error') name = e.name;
  else if (typeof e.code === 'string' && e.code.length > 0) name = e.code;
  else if (typeof e.name === 'string' && e.name.length > 0) name = e.name;
  let msg = typeof e.message === 'string' ? e.message : '';
  if (msg.length > MAX_MESSAGE) msg = msg.slice(0, MAX_MESSAGE) + '...';
  return new KmsError(`KMS ${op} failed: ${name ?? 'UnknownError'}${msg ? `: ${msg}` : ''}`, name);
}
