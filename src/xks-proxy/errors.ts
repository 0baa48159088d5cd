/**
 * Errors of the XKS proxy API as they go on the wire (XKS Proxy API Specification, "Error codes"):
 * an HTTP status and a JSON body `{"errorName": "...", "errorMessage": "..."}`. The message is
 * optional in the spec; when present it MUST be under 512 characters of printable ASCII, which
 * `errorBody` enforces whatever the message says. Messages never carry key material, plaintext,
 * the SigV4 secret or the token PIN.
 */

/** Every error name of the spec's table, with its HTTP status. */
export const XKS_ERRORS = {
  ValidationException: 400,
  InvalidStateException: 400,
  InvalidCiphertextException: 400,
  InvalidKeyUsageException: 400,
  AuthenticationFailedException: 401,
  AccessDeniedException: 403,
  KeyNotFoundException: 404,
  InvalidUriPathException: 404,
  ThrottlingException: 429,
  UnsupportedOperationException: 501,
  DependencyTimeoutException: 503,
  InternalException: 500,
} as const;

export type XksErrorName = keyof typeof XKS_ERRORS;

export class XksError extends Error {
  /** HTTP status of the spec's table for `errorName`. */
  readonly status: number;
  constructor(
    readonly errorName: XksErrorName,
    message: string,
  ) {
    super(message);
    this.name = errorName;
    this.status = XKS_ERRORS[errorName];
  }
}

/** The JSON body of an error response: printable ASCII only, at most 511 characters of message. */
export function errorBody(e: XksError): { errorName: string; errorMessage: string } {
  const printable = e.message.replace(/[^\x20-\x7e]/g, '?');
  return { errorName: e.errorName, errorMessage: printable.length > 511 ? `${printable.slice(0, 508)}...` : printable };
}
