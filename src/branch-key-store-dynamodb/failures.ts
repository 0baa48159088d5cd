/**
 * DynamoDB failures as the library's errors. A TransactWriteItems cancelled by a condition is a
 * BranchKeyWriteConflictError (the interface's contract); which condition failed comes from the
 * CancellationReasons, one per TransactItem in request order (DynamoDB API Reference,
 * TransactWriteItems, "TransactionCanceledException"). Everything else is a BranchKeyStoreError
 * with the AWS error name; the SDK error stays as `cause`, its message (which can quote request
 * values) is not copied.
 */
import { BranchKeyStoreError } from '../errors.js';
import { BranchKeyWriteConflictError } from '../keyrings/hierarchy/storage.js';

export type WriteOperation = 'CreateKey' | 'VersionKey';

const CONDITION_FAILED = 'ConditionalCheckFailed';

/**
 * The AWS error name of an answer from the service (the SDK's error carries the HTTP status in
 * `$metadata`), else undefined: the SDK also puts `$metadata` on network errors, without a status.
 */
function awsName(err: unknown): string | undefined {
  const status = (err as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata?.httpStatusCode;
  if (typeof status !== 'number') return undefined;
  const name = (err as { name?: unknown }).name;
  return typeof name === 'string' ? name : undefined;
}

/** The codes of a TransactionCanceledException, in request order ('None' for an item that passed). */
function reasonCodes(err: unknown): string[] | undefined {
  const reasons = (err as { CancellationReasons?: unknown }).CancellationReasons;
  if (!Array.isArray(reasons)) return undefined;
  return reasons.map((r) => {
    const code = (r as { Code?: unknown } | null)?.Code;
    return typeof code === 'string' ? code : 'None';
  });
}

export function writeFailure(err: unknown, op: WriteOperation): Error {
  const name = awsName(err);
  if (name === 'TransactionCanceledException') {
    const codes = reasonCodes(err);
    if (codes?.includes(CONDITION_FAILED)) {
      // VersionKey: item 0 is the new version (must not exist), item 1 the ACTIVE item (must be
      // unchanged). A changed ACTIVE item wins: the caller must read it again either way.
      if (op === 'VersionKey' && codes[1] === CONDITION_FAILED) {
        return new BranchKeyWriteConflictError('ACTIVE_CHANGED', 'VersionKey: the ACTIVE item changed since it was read, or is gone; nothing was written');
      }
      return new BranchKeyWriteConflictError(
        'BRANCH_KEY_EXISTS',
        op === 'CreateKey'
          ? 'CreateKey: an item of this branch key id exists; nothing was written'
          : 'VersionKey: an item of this branch key version exists; nothing was written',
      );
    }
    const why = codes ? ` (cancellation reasons: ${codes.join(', ')})` : ' (no cancellation reasons given)';
    return new BranchKeyStoreError('REQUEST_FAILED', `${op}: DynamoDB cancelled the TransactWriteItems${why}`, { cause: err, awsErrorName: name });
  }
  if (name === 'UnknownOperationException') {
    return new BranchKeyStoreError(
      'TRANSACTIONS_UNSUPPORTED',
      `${op}: the DynamoDB endpoint does not implement TransactWriteItems (UnknownOperationException); ` +
        'the branch key store needs it for atomic writes and has no non-atomic fallback',
      { cause: err, awsErrorName: name },
    );
  }
  return requestFailure(err, `${op}: DynamoDB TransactWriteItems`);
}

export function requestFailure(err: unknown, what: string): BranchKeyStoreError {
  if (err instanceof BranchKeyStoreError) return err;
  const name = awsName(err);
  const code = (err as { code?: unknown } | null)?.code; // Node network errors: ECONNREFUSED, ...
  const local = (err as { name?: unknown } | null)?.name;
  const detail = name ?? (typeof code === 'string' ? code : typeof local === 'string' ? local : 'unknown error');
  return new BranchKeyStoreError('REQUEST_FAILED', `${what} failed (${detail})`, { cause: err, awsErrorName: name });
}
