/**
 * Errors of the local KMS, shaped like AWS KMS errors on the wire: JSON 1.1 body
 * `{"__type": "<Name>", "message": "..."}`, HTTP 400 for client faults and 500 for internal ones.
 */
export class KmsServiceError extends Error {
  /** AWS error name, e.g. `NotFoundException`, `AccessDeniedException`. */
  readonly type: string;
  /** HTTP status the server answers with. */
  readonly status: number;
  constructor(type: string, message: string, status = 400) {
    super(message);
    this.type = type;
    this.status = status;
    this.name = type;
  }
}

export const kmsError = (type: string, message: string, status = 400): KmsServiceError =>
  new KmsServiceError(type, message, status);
