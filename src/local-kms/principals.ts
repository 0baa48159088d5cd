/**
 * Principals of the local KMS: who is calling, from the SigV4 access key id.
 *
 * The principals file (`--principals FILE`) maps access key ids to IAM principal ARNs and, optionally,
 * to the secret access key; with a secret the server verifies the request signature (sigv4.ts).
 * Once a file is given, only its keys are callers (resolveCaller; auth.ts checks the signature).
 * File shape: `{ "<accessKeyId>": { "arn": "arn:aws:iam::111122223333:user/alice", "secretAccessKey": "..." } }`.
 */
import { readFileSync } from 'node:fs';
import { KmsServiceError } from './errors.js';
import type { Caller } from './policy-types.js';

export interface PrincipalEntry {
  arn: string;
  secretAccessKey?: string;
}

/** Access key ids as AWS issues them: 16..128 word characters (IAM API `AccessKeyId` constraints). */
const ACCESS_KEY_ID = /^\w{16,128}$/;
/**
 * Principals a caller can be: account root, IAM user, IAM role, STS assumed-role session. The
 * account id is part of the ARN and becomes `kms:CallerAccount`.
 */
const CALLER_ARN =
  /^arn:aws(?:-[a-z]+)*:(?:iam::(\d{12}):(?:root|user\/[\w+=,.@\/-]+|role\/[\w+=,.@\/-]+)|sts::(\d{12}):(?:assumed-role\/[\w+=,.@-]+\/[\w+=,.@-]+|federated-user\/[\w+=,.@-]+))$/;

/** Account id of a principal ARN, or undefined when the ARN is not a principal ARN. */
export function accountOfPrincipalArn(arn: string): string | undefined {
  const m = CALLER_ARN.exec(arn);
  return m ? (m[1] ?? m[2]) : undefined;
}

/**
 * Reads and checks a principals file. Every problem is reported as an Error naming the file and the
 * entry, never echoing a secret.
 */
export function loadPrincipals(file: string): Map<string, PrincipalEntry> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`principals file ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`principals file ${file}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new Error(`principals file ${file}: expected a JSON object mapping access key ids to { "arn": ..., "secretAccessKey"?: ... }`);
  }
  const out = new Map<string, PrincipalEntry>();
  for (const [accessKeyId, entry] of Object.entries(doc)) {
    const where = `principals file ${file}: entry "${accessKeyId}"`;
    if (!ACCESS_KEY_ID.test(accessKeyId)) {
      throw new Error(`${where}: access key id must be 16 to 128 letters, digits or underscores`);
    }
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new Error(`${where}: expected an object { "arn": ..., "secretAccessKey"?: ... }`);
    }
    const { arn, secretAccessKey, ...rest } = entry as Record<string, unknown>;
    const unknown = Object.keys(rest);
    if (unknown.length > 0) throw new Error(`${where}: unknown field(s) ${unknown.map((k) => `"${k}"`).join(', ')}`);
    if (typeof arn !== 'string' || accountOfPrincipalArn(arn) === undefined) {
      throw new Error(
        `${where}: "arn" must be an IAM principal ARN such as arn:aws:iam::111122223333:user/alice, ` +
          'arn:aws:iam::111122223333:role/app or arn:aws:iam::111122223333:root',
      );
    }
    const value: PrincipalEntry = { arn };
    if (secretAccessKey !== undefined) {
      if (typeof secretAccessKey !== 'string' || secretAccessKey.length === 0) {
        throw new Error(`${where}: "secretAccessKey" must be a non-empty string when given`);
      }
      value.secretAccessKey = secretAccessKey;
    }
    out.set(accessKeyId, value);
  }
  return out;
}

/** How the caller of a request is decided (see resolveCaller). */
export interface ResolveCallerOptions {
  /** Account of the keys: its root is the caller when no principals file is configured. */
  accountId: string;
  /**
   * With a principals file: let an access key that is not in it act as the account root instead
   * of being refused (UnrecognizedClientException). A request with no access key at all is
   * refused either way. Default false.
   */
  allowUnknownKeysAsRoot?: boolean;
}

/**
 * The caller of a request, from the access key id its signature names.
 *
 * - No principals file: every caller is the account root, whatever key it names or none (the
 *   offline default; nobody is authenticated).
 * - A principals file: a listed key is its principal. As in AWS (KMS API Reference, "Common
 *   Errors"), a request naming no key is MissingAuthenticationTokenException and a key nobody
 *   issued is UnrecognizedClientException, unless `allowUnknownKeysAsRoot` makes such keys the
 *   account root. There is no anonymous principal in AWS KMS, so none here once principals exist.
 */
export function resolveCaller(
  accessKeyId: string | undefined,
  principals: Map<string, PrincipalEntry> | undefined,
  opts: ResolveCallerOptions,
): Caller {
  const root = (): Caller => {
    const caller: Caller = { arn: `arn:aws:iam::${opts.accountId}:root`, account: opts.accountId };
    if (accessKeyId !== undefined) caller.accessKeyId = accessKeyId;
    return caller;
  };
  if (principals === undefined) return root();
  if (accessKeyId === undefined) {
    throw new KmsServiceError('MissingAuthenticationTokenException', 'Request is missing Authentication Token');
  }
  const entry = principals.get(accessKeyId);
  if (entry) return { arn: entry.arn, account: accountOfPrincipalArn(entry.arn)!, accessKeyId };
  if (opts.allowUnknownKeysAsRoot === true) return root();
  throw new KmsServiceError('UnrecognizedClientException', 'The security token included in the request is invalid.');
}
