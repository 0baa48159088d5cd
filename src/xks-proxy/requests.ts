/**
 * Reading XKS API request bodies (XKS Proxy API Specification, "API operations"): the
 * requestMetadata every call carries and the Base64 fields of Encrypt and Decrypt, with the spec's
 * size limits. A field the proxy needs that is missing, of the wrong type or not Base64 is a
 * ValidationException, except the fields of a ciphertext given to Decrypt (ciphertext, IV, tag,
 * AAD, ciphertext metadata), which are InvalidCiphertextException as the spec's error table says
 * ("corrupted, missing, or otherwise invalid"). The opaque metadata fields (kmsRequestId,
 * kmsOperation) must be present, but their content is never a reason to refuse.
 */
import { XksError, type XksErrorName } from './errors.js';

/**
 * Largest plaintext (Encrypt) and ciphertext (Decrypt) in bytes: the 4300 the spec requires a proxy
 * to support (KMS wraps at most 4096 bytes plus its own header). Larger values are
 * UnsupportedOperationException, as the spec's error table says for sizes beyond an
 * implementation's maximum.
 */
export const MAX_DATA_BYTES = 4300;
/** Largest additionalAuthenticatedData in bytes: the spec's required 8192. */
export const MAX_AAD_BYTES = 8192;
/** Largest ciphertextMetadata in bytes (the spec's limit: "MUST NOT exceed 20 bytes"). */
export const MAX_CIPHERTEXT_METADATA_BYTES = 20;
/**
 * Largest request body: the Base64 of the largest ciphertext and AAD, metadata with ARNs of 2048
 * characters, JSON framing, with room to spare.
 */
export const MAX_BODY_BYTES = 64 * 1024;

/** The requestMetadata fields the proxy reads (and logs): all opaque strings to it. */
export interface RequestMetadata {
  kmsRequestId?: string;
  kmsOperation?: string;
  awsPrincipalArn?: string;
  kmsKeyArn?: string;
  kmsViaService?: string;
  awsSourceVpc?: string;
  awsSourceVpce?: string;
}

export type Api = 'GetHealthStatus' | 'GetKeyMetadata' | 'Encrypt' | 'Decrypt';

/**
 * The requestMetadata fields a request must carry, each as a string (the spec's "This field is
 * REQUIRED"). kmsRequestId and kmsOperation are opaque to the proxy: their presence is checked,
 * never their content (kmsRequestId "MUST NOT" be validated in its structure, an unknown
 * kmsOperation "MUST NOT" be rejected), so any string passes, the empty one included. A missing
 * requestMetadata, or one without them, is a ValidationException for GetHealthStatus too: AWS's XKS
 * proxy compliance client (test/third-party/) requires that, although the spec's error table lists
 * ValidationException for "ALL except GetHealthStatus". kmsKeyArn is absent when KMS calls
 * GetKeyMetadata for CreateKey (spec change log 0.0.12).
 */
const REQUIRED: Record<Api, Array<keyof RequestMetadata>> = {
  GetHealthStatus: ['kmsRequestId', 'kmsOperation'],
  GetKeyMetadata: ['kmsRequestId', 'kmsOperation', 'awsPrincipalArn'],
  Encrypt: ['kmsRequestId', 'kmsOperation', 'awsPrincipalArn', 'kmsKeyArn'],
  Decrypt: ['kmsRequestId', 'kmsOperation', 'awsPrincipalArn', 'kmsKeyArn'],
};
/** Required fields whose content the proxy may not judge: a string, even an empty one, is enough. */
const OPAQUE: ReadonlySet<keyof RequestMetadata> = new Set(['kmsRequestId', 'kmsOperation']);
const LOGGED: Array<keyof RequestMetadata> = ['kmsRequestId', 'kmsOperation', 'awsPrincipalArn', 'kmsKeyArn', 'kmsViaService', 'awsSourceVpc', 'awsSourceVpce'];

const validation = (m: string) => new XksError('ValidationException', m);

/** The parsed JSON body: an object, else ValidationException. */
export function parseBody(body: Buffer): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    throw validation('The request body is not valid JSON.');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw validation('The request body must be a JSON object.');
  return v as Record<string, unknown>;
}

/**
 * The request's requestMetadata: an object with the API's REQUIRED fields as strings (non-empty,
 * but for the opaque kmsRequestId and kmsOperation), else ValidationException. Other fields are
 * logged when they are strings and otherwise ignored: the spec sets "no expectation for the XKS
 * Proxy to validate any information included in the requestMetadata".
 */
export function readRequestMetadata(body: Record<string, unknown>, api: Api): RequestMetadata {
  const m = body.requestMetadata;
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw validation('requestMetadata is missing or not an object.');
  const md = m as Record<string, unknown>;
  for (const k of REQUIRED[api]) {
    if (typeof md[k] !== 'string' || (md[k] === '' && !OPAQUE.has(k))) {
      throw validation(`requestMetadata.${k} is required (${OPAQUE.has(k) ? 'a string' : 'a non-empty string'}).`);
    }
  }
  const out: RequestMetadata = {};
  for (const k of LOGGED) if (typeof md[k] === 'string') out[k] = md[k] as string;
  return out;
}

/** Standard Base64 with padding (RFC 4648 §4), as the spec requires; not the URL-safe alphabet. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * A Base64 field: undefined when absent and optional, else its bytes, at most `max` bytes
 * (UnsupportedOperationException beyond). Problems are `bad` errors.
 */
export function base64Field(
  body: Record<string, unknown>,
  name: string,
  opts: { required: boolean; max: number; bad: XksErrorName },
): Buffer | undefined {
  const v = body[name];
  if (v === undefined || v === null) {
    if (opts.required) throw new XksError(opts.bad, `${name} is required.`);
    return undefined;
  }
  if (typeof v !== 'string' || !BASE64.test(v)) throw new XksError(opts.bad, `${name} must be a standard Base64 string.`);
  // Checked on the encoded length first, so a huge value is not decoded to be refused.
  if (Math.floor(v.length / 4) * 3 > opts.max + 2) throw tooLarge(name, opts.max);
  const bytes = Buffer.from(v, 'base64');
  if (bytes.length > opts.max) throw tooLarge(name, opts.max);
  return bytes;
}

function tooLarge(name: string, max: number): XksError {
  return new XksError('UnsupportedOperationException', `${name} is larger than the ${max} bytes this proxy supports.`);
}

/** `encryptionAlgorithm` must be AES_GCM, the only one of v1. */
export function requireAesGcm(body: Record<string, unknown>): void {
  if (body.encryptionAlgorithm === undefined) throw validation('encryptionAlgorithm is required.');
  if (body.encryptionAlgorithm !== 'AES_GCM') throw validation('encryptionAlgorithm must be AES_GCM.');
}

/** The Encrypt request's inputs. */
export interface EncryptInput {
  plaintext: Buffer;
  aad?: Buffer;
  /** Whether a CDIV (SHA_256) is asked for. */
  cdiv: boolean;
}

export function readEncrypt(body: Record<string, unknown>): EncryptInput {
  const plaintext = base64Field(body, 'plaintext', { required: true, max: MAX_DATA_BYTES, bad: 'ValidationException' })!;
  if (plaintext.length === 0) throw validation('plaintext must not be empty.');
  requireAesGcm(body);
  const aad = base64Field(body, 'additionalAuthenticatedData', { required: false, max: MAX_AAD_BYTES, bad: 'ValidationException' });
  const algo = body.ciphertextDataIntegrityValueAlgorithm;
  if (algo !== undefined && algo !== 'SHA_256') throw validation('ciphertextDataIntegrityValueAlgorithm must be SHA_256.');
  return { plaintext, ...(aad ? { aad } : {}), cdiv: algo === 'SHA_256' };
}

/** The Decrypt request's inputs. */
export interface DecryptInput {
  ciphertext: Buffer;
  iv: Buffer;
  tag: Buffer;
  aad?: Buffer;
  ciphertextMetadata?: Buffer;
}

export function readDecrypt(body: Record<string, unknown>): DecryptInput {
  requireAesGcm(body);
  const bad = 'InvalidCiphertextException' as const;
  const ciphertext = base64Field(body, 'ciphertext', { required: true, max: MAX_DATA_BYTES, bad })!;
  if (ciphertext.length === 0) throw new XksError(bad, 'ciphertext must not be empty.');
  // IV, tag and metadata of a wrong length are a bad ciphertext, not an unsupported size: read
  // with the body's own bound (so no length is UnsupportedOperationException), then checked exactly.
  const iv = base64Field(body, 'initializationVector', { required: true, max: MAX_BODY_BYTES, bad })!;
  // 12 or 16 bytes (spec, Decrypt: initializationVector).
  if (iv.length !== 12 && iv.length !== 16) throw new XksError(bad, 'initializationVector must be 12 or 16 bytes.');
  const tag = base64Field(body, 'authenticationTag', { required: true, max: MAX_BODY_BYTES, bad })!;
  if (tag.length !== 16) throw new XksError(bad, 'authenticationTag must be 16 bytes.');
  const aad = base64Field(body, 'additionalAuthenticatedData', { required: false, max: MAX_AAD_BYTES, bad });
  const ciphertextMetadata = base64Field(body, 'ciphertextMetadata', { required: false, max: MAX_BODY_BYTES, bad });
  if (ciphertextMetadata && ciphertextMetadata.length > MAX_CIPHERTEXT_METADATA_BYTES) {
    throw new XksError(bad, `ciphertextMetadata must be at most ${MAX_CIPHERTEXT_METADATA_BYTES} bytes.`);
  }
  return { ciphertext, iv, tag, ...(aad ? { aad } : {}), ...(ciphertextMetadata ? { ciphertextMetadata } : {}) };
}
