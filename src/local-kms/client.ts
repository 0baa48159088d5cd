import { isIP } from 'node:net';
import type { EncryptionContext, KmsClient } from '../types.js';
import type { Caller } from './policy-types.js';
import { accountOfPrincipalArn } from './principals.js';
import { IN_PROCESS_ORIGIN, type RequestOrigin } from './request-context.js';
import { LocalKmsService, type KmsResponse, type LocalKmsServiceOptions } from './service.js';
import { checkRegionName } from './regions.js';

/**
 * In-process use of the local KMS: `new LocalKms()` holds a LocalKmsService and hands out
 * `KmsClient`s (the library's internal client interface), so an Envelope or KmsKeyring can use
 * the local KMS without a server. Errors are thrown as KmsServiceError (`type` = AWS error name),
 * which the keyring maps like SDK errors.
 */
export interface LocalKmsOptions {
  dataDir?: string;
  rootKeyFile?: string;
  /** Milliseconds since the epoch; default Date.now. */
  clock?: () => number;
  accountId?: string;
  /** The default Region (LocalKmsServiceOptions.region); every Region of its partition is served. */
  region?: string;
  /** The "Grants per KMS key" quota; default 50,000 as in AWS. */
  maxGrantsPerKey?: number;
  /** Milliseconds a replica made by ReplicateKey stays `Creating`; default 0. */
  replicaCreationMs?: number;
  /** PKCS#11 tokens CreateCustomKeyStore can name as CloudHSM clusters (LocalKmsServiceOptions.hsms). */
  hsms?: LocalKmsServiceOptions['hsms'];
  /** External key store proxy timeout in ms (LocalKmsServiceOptions.xksProxyTimeoutMs; default 250). */
  xksProxyTimeoutMs?: number;
  /** Extra CAs for HTTPS external key store proxies (LocalKmsServiceOptions.xksProxyCa). */
  xksProxyCa?: LocalKmsServiceOptions['xksProxyCa'];
}

export interface LocalKmsClientOptions {
  /** Act as this principal (a Caller or a principal ARN); default the account root. */
  caller?: Caller | string;
  /**
   * The Region the client addresses, as an SDK client's `region` does; default the service's
   * default Region. Same as `origin.requestedRegion` (give one of them).
   */
  region?: string;
  /**
   * How the requests appear to arrive, for the global condition keys (aws:SourceIp, aws:UserAgent,
   * aws:SecureTransport, aws:RequestedRegion). Default IN_PROCESS_ORIGIN (request-context.ts):
   * source IP 127.0.0.1, secure transport true (every request AWS KMS evaluates came over TLS),
   * user agent `kms-envelope-local-kms/in-process`, the service's Region. Members given replace those.
   */
  origin?: Partial<RequestOrigin>;
}

/** A KmsClient bound to one caller, plus `call()` for any other operation. */
export interface LocalKmsClient extends KmsClient {
  readonly caller: Caller;
  /** Runs any AWS KMS operation by name with AWS request/response shapes. */
  call(operation: string, input?: Record<string, unknown>): Promise<KmsResponse>;
}

const bytes = (v: unknown): Uint8Array => {
  const b = v as Uint8Array;
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
};

export class LocalKms {
  readonly service: LocalKmsService;

  constructor(options: LocalKmsOptions = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('LocalKms options must be an object');
    const o: LocalKmsServiceOptions = {};
    if (options.dataDir !== undefined) o.dataDir = options.dataDir;
    if (options.rootKeyFile !== undefined) o.rootKeyFile = options.rootKeyFile;
    if (options.clock !== undefined) o.clock = options.clock;
    if (options.accountId !== undefined) o.accountId = options.accountId;
    if (options.region !== undefined) o.region = options.region;
    if (options.maxGrantsPerKey !== undefined) o.maxGrantsPerKey = options.maxGrantsPerKey;
    if (options.replicaCreationMs !== undefined) o.replicaCreationMs = options.replicaCreationMs;
    if (options.hsms !== undefined) o.hsms = options.hsms;
    if (options.xksProxyTimeoutMs !== undefined) o.xksProxyTimeoutMs = options.xksProxyTimeoutMs;
    if (options.xksProxyCa !== undefined) o.xksProxyCa = options.xksProxyCa;
    this.service = new LocalKmsService(o);
  }

  client(options: LocalKmsClientOptions = {}): LocalKmsClient {
    const caller = toCaller(options.caller, this.service);
    if (options.region !== undefined && options.origin?.requestedRegion !== undefined) {
      throw new TypeError('give region or origin.requestedRegion, not both');
    }
    if (options.region !== undefined && !this.service.regions.serves(checkRegionName(options.region))) {
      throw new RangeError(`region ${options.region} is not in the partition of this local KMS (${this.service.partition})`);
    }
    const origin = options.region !== undefined ? { ...toOrigin(options.origin), requestedRegion: options.region } : toOrigin(options.origin);
    const service = this.service;
    const call = (operation: string, input: Record<string, unknown>) => service.call(operation, input, caller, origin);
    return {
      caller,
      call: (operation, input = {}) => call(operation, input),
      async generateDataKey(input) {
        const out = await call('GenerateDataKey', {
          KeyId: input.keyId,
          NumberOfBytes: input.numberOfBytes,
          ...ctx(input.encryptionContext),
          ...grants(input.grantTokens),
        });
        return { keyId: out.KeyId as string, plaintext: bytes(out.Plaintext), ciphertextBlob: bytes(out.CiphertextBlob) };
      },
      async encrypt(input) {
        const out = await call('Encrypt', {
          KeyId: input.keyId,
          Plaintext: input.plaintext,
          ...ctx(input.encryptionContext),
          ...grants(input.grantTokens),
        });
        return { keyId: out.KeyId as string, ciphertextBlob: bytes(out.CiphertextBlob) };
      },
      async decrypt(input) {
        const out = await call('Decrypt', {
          CiphertextBlob: input.ciphertextBlob,
          ...(input.keyId !== undefined ? { KeyId: input.keyId } : {}),
          ...ctx(input.encryptionContext),
          ...grants(input.grantTokens),
        });
        return { keyId: out.KeyId as string, plaintext: bytes(out.Plaintext) };
      },
      async generateDataKeyWithoutPlaintext(input) {
        const out = await call('GenerateDataKeyWithoutPlaintext', {
          KeyId: input.keyId,
          NumberOfBytes: input.numberOfBytes,
          ...ctx(input.encryptionContext),
          ...grants(input.grantTokens),
        });
        return { keyId: out.KeyId as string, ciphertextBlob: bytes(out.CiphertextBlob) };
      },
      async reEncrypt(input) {
        const out = await call('ReEncrypt', {
          CiphertextBlob: input.ciphertextBlob,
          ...(input.sourceKeyId !== undefined ? { SourceKeyId: input.sourceKeyId } : {}),
          ...(input.sourceEncryptionContext !== undefined ? { SourceEncryptionContext: input.sourceEncryptionContext } : {}),
          DestinationKeyId: input.destinationKeyId,
          ...(input.destinationEncryptionContext !== undefined
            ? { DestinationEncryptionContext: input.destinationEncryptionContext }
            : {}),
          ...grants(input.grantTokens),
        });
        return { keyId: out.KeyId as string, sourceKeyId: out.SourceKeyId as string, ciphertextBlob: bytes(out.CiphertextBlob) };
      },
    };
  }

  /** CreateKey with AWS request members (Description, KeySpec, KeyUsage, Origin, Policy, Tags, ...). */
  async createKey(input: Record<string, unknown> = {}, caller?: Caller | string): Promise<{ keyId: string; arn: string; metadata: KmsResponse }> {
    const out = await this.service.call('CreateKey', input, toCaller(caller, this.service));
    const md = out.KeyMetadata as KmsResponse;
    return { keyId: md.KeyId as string, arn: md.Arn as string, metadata: md };
  }

  /**
   * CreateAlias `aliasName` (`alias/...`) for `keyId` (key id or key ARN), as the KMS operation:
   * rejects with `InvalidAliasNameException` for a name without the `alias/` prefix (or `alias/aws/`,
   * reserved) and `AlreadyExistsException` when the alias exists.
   */
  async createAlias(aliasName: string, keyId: string, caller?: Caller | string): Promise<void> {
    await this.service.call('CreateAlias', { AliasName: aliasName, TargetKeyId: keyId }, toCaller(caller, this.service));
  }

  close(): void {
    this.service.close();
  }
}

function ctx(c: EncryptionContext | undefined): { EncryptionContext?: EncryptionContext } {
  return c !== undefined ? { EncryptionContext: c } : {};
}

function grants(g: string[] | undefined): { GrantTokens?: string[] } {
  return g !== undefined ? { GrantTokens: g } : {};
}

function toOrigin(o: Partial<RequestOrigin> | undefined): RequestOrigin {
  if (o === undefined) return IN_PROCESS_ORIGIN;
  if (o === null || typeof o !== 'object') throw new TypeError('origin must be an object { sourceIp?, userAgent?, secureTransport?, requestedRegion? }');
  const out: RequestOrigin = { ...IN_PROCESS_ORIGIN };
  if (o.sourceIp !== undefined) {
    if (typeof o.sourceIp !== 'string' || isIP(o.sourceIp) === 0) throw new TypeError(`origin.sourceIp must be an IPv4 or IPv6 address, got '${String(o.sourceIp)}'`);
    out.sourceIp = o.sourceIp;
  }
  if (o.userAgent !== undefined) {
    if (typeof o.userAgent !== 'string') throw new TypeError('origin.userAgent must be a string');
    out.userAgent = o.userAgent;
  }
  if (o.secureTransport !== undefined) {
    if (typeof o.secureTransport !== 'boolean') throw new TypeError('origin.secureTransport must be a boolean');
    out.secureTransport = o.secureTransport;
  }
  if (o.requestedRegion !== undefined) {
    if (typeof o.requestedRegion !== 'string' || !/^[a-z0-9-]{1,64}$/.test(o.requestedRegion)) {
      throw new TypeError(`origin.requestedRegion must be a Region name such as us-east-1, got '${String(o.requestedRegion)}'`);
    }
    out.requestedRegion = o.requestedRegion;
  }
  return out;
}

function toCaller(caller: Caller | string | undefined, service: LocalKmsService): Caller {
  if (caller === undefined) return service.rootCaller;
  if (typeof caller === 'string') {
    const account = accountOfPrincipalArn(caller);
    if (account === undefined) throw new TypeError(`caller must be an IAM principal ARN, got '${caller}'`);
    return { arn: caller, account };
  }
  if (typeof caller !== 'object' || typeof caller.arn !== 'string' || typeof caller.account !== 'string') {
    throw new TypeError('caller must be a principal ARN or { arn, account }');
  }
  return caller;
}
