/**
 * Request validation of the grant operations, with the member constraints of the AWS KMS API
 * model (botocore kms 2014-11-01: PrincipalIdType 1-256 `^[\w+=,.@:/-]+$`, GrantNameType 1-256
 * `^[a-zA-Z0-9:/_-]+$`, GrantTokenType 1-8192, GrantIdType 1-128, GrantTokenList 0-10) and the
 * semantic checks of the API Reference. Shape problems are ValidationException (one message
 * listing every violation, validate.ts); a principal that is not a principal ARN is
 * InvalidArnException, which is what KMS answers for a grantee it cannot resolve.
 */
import { KmsServiceError } from './errors.js';
import {
  CONSTRAINT_MEMBERS,
  GRANT_OPERATIONS,
  MAX_CONSTRAINT_PAIRS,
  MAX_CONSTRAINT_CONTEXT_CHARS,
  grantOperationsFor,
  type Context,
  type GrantConstraints,
} from './grants.js';
import { PRINCIPAL_ARN } from './policy.js';
import { KEY_SPECS, type KeySpec, type KeyUsage } from './specs.js';
import { Checks, validationError } from './validate.js';

type Req = Record<string, unknown>;

const PRINCIPAL_PATTERN = /^[\w+=,.@:/-]+$/;
const NAME_PATTERN = /^[a-zA-Z0-9:/_-]+$/;

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

export function checkPrincipalShape(c: Checks, member: string, v: unknown, required: boolean): void {
  if (required) c.required(member, v);
  c.length(member, str(v), 1, 256);
  c.pattern(member, str(v), PRINCIPAL_PATTERN, '^[\\w+=,.@:/-]+$');
}

export function checkGrantIdShape(c: Checks, v: unknown, required: boolean): void {
  if (required) c.required('grantId', v);
  c.length('grantId', str(v), 1, 128);
}

export function checkListShape(c: Checks, req: Req): void {
  // ListGrants / ListRetirableGrants: the API Reference allows Limit 1-100 (default 50).
  c.range('limit', num(req.Limit), 1, 100);
  c.length('marker', str(req.Marker), 1, 1024);
  c.pattern('marker', str(req.Marker), /^[\u0020-\u00FF]*$/, '[\\u0020-\\u00FF]*');
}

/**
 * InvalidArnException unless `p` is the ARN of an AWS principal. The API Reference asks for an ARN
 * (CreateGrant `GranteePrincipal`/`RetiringPrincipal`, ListRetirableGrants `RetiringPrincipal`:
 * "use the Amazon Resource Name (ARN) of an AWS principal"; an account is `arn:aws:iam::<id>:root`),
 * so a bare account id is refused, not rewritten: the condition keys kms:GranteePrincipal and
 * kms:RetiringPrincipal carry the parameter as the request gives it, and a rewritten value would
 * slip past a policy written against the value given.
 */
export function requirePrincipal(p: string, member: string): void {
  if (!PRINCIPAL_ARN.test(p)) {
    throw new KmsServiceError('InvalidArnException', `${member} ${p} is not a valid AWS principal ARN (an account root, IAM user, role, assumed-role or federated-user ARN).`);
  }
}

export interface CreateGrantInput {
  keyId: string;
  granteePrincipal: string;
  retiringPrincipal?: string;
  operations: string[];
  constraints?: GrantConstraints;
  name?: string;
}

/** Shape checks of CreateGrant (ValidationException) and the principal checks (InvalidArnException). */
export function parseCreateGrant(req: Req): CreateGrantInput {
  const c = new Checks();
  c.required('keyId', req.KeyId);
  c.length('keyId', str(req.KeyId), 1, 2048);
  checkPrincipalShape(c, 'granteePrincipal', req.GranteePrincipal, true);
  checkPrincipalShape(c, 'retiringPrincipal', req.RetiringPrincipal, false);
  c.required('operations', req.Operations);
  const ops = (req.Operations as string[] | undefined) ?? [];
  ops.forEach((op, i) => c.oneOf(`operations.${i + 1}.member`, op, GRANT_OPERATIONS));
  c.length('name', str(req.Name), 1, 256);
  c.pattern('name', str(req.Name), NAME_PATTERN, '^[a-zA-Z0-9:/_-]+$');
  c.length('grantTokens', req.GrantTokens as string[] | undefined, 0, 10);
  const constraints = req.Constraints as GrantConstraints | undefined;
  // SourceArn is an ArnType in the KMS API model (1-2048 characters, at least 20).
  c.length('constraints.sourceArn', constraints?.SourceArn, 20, 2048);
  for (const member of ['EncryptionContextSubset', 'EncryptionContextEquals'] as const) {
    const m = constraints?.[member];
    if (m === undefined) continue;
    const path = `constraints.${member[0]!.toLowerCase()}${member.slice(1)}`;
    // API Reference, CreateGrant `Constraints`: "Each constraint value can include up to 8
    // encryption context pairs. The encryption context value in each constraint cannot exceed 384
    // characters." The constraint's value is its whole map, so the 384 characters bound its keys
    // and values together. (Bounding only values would leave keys unbounded: one grant could
    // hold megabytes, every grant is stored in its key's file, and 50,000 of them could outgrow
    // the largest string JSON.stringify can write.)
    c.length(path, m, 0, MAX_CONSTRAINT_PAIRS);
    let chars = 0;
    for (const [k, v] of Object.entries(m)) {
      if (k.length === 0) c.violation(path, k, 'Encryption context keys must not be empty');
      chars += k.length + v.length;
    }
    if (chars > MAX_CONSTRAINT_CONTEXT_CHARS) {
      c.violation(path, m, `Member must have at most ${MAX_CONSTRAINT_CONTEXT_CHARS} characters of keys and values together (has ${chars})`);
    }
  }
  c.done();
  // A constraint member this model does not know would otherwise be dropped, leaving a grant
  // with fewer conditions than its creator asked for: refuse it, naming the member.
  const unknown = constraints ? Object.keys(constraints).filter((m) => !CONSTRAINT_MEMBERS.includes(m) && (constraints as Record<string, unknown>)[m] != null) : [];
  if (unknown.length > 0) {
    throw new KmsServiceError('UnsupportedOperationException', `The local KMS does not support the grant constraint${unknown.length === 1 ? '' : 's'} ${unknown.join(', ')}.`);
  }
  if (ops.length === 0) throw validationError('A grant must allow at least one operation.');
  const grantee = String(req.GranteePrincipal);
  requirePrincipal(grantee, 'GranteePrincipal');
  const retiring = str(req.RetiringPrincipal);
  if (retiring !== undefined) requirePrincipal(retiring, 'RetiringPrincipal');
  const out: CreateGrantInput = {
    keyId: String(req.KeyId),
    granteePrincipal: grantee,
    // Each operation once, in the order first given.
    operations: [...new Set(ops)],
  };
  if (retiring !== undefined) out.retiringPrincipal = retiring;
  const kept = copyConstraints(constraints);
  if (kept) out.constraints = kept;
  if (req.Name !== undefined) out.name = String(req.Name);
  return out;
}

function copyConstraints(c: GrantConstraints | undefined): GrantConstraints | undefined {
  if (!c) return undefined;
  const copy = (m: Context): Context => Object.fromEntries(Object.entries(m));
  const out: GrantConstraints = {};
  if (c.EncryptionContextSubset != null) out.EncryptionContextSubset = copy(c.EncryptionContextSubset);
  if (c.EncryptionContextEquals != null) out.EncryptionContextEquals = copy(c.EncryptionContextEquals);
  if (c.SourceArn != null) out.SourceArn = c.SourceArn;
  return out.EncryptionContextSubset || out.EncryptionContextEquals || out.SourceArn !== undefined ? out : undefined;
}

/**
 * Checks that need the key: every operation must be one the key supports (API Reference,
 * CreateGrant `Operations`: e.g. Sign on a symmetric encryption key is a ValidationException),
 * a grant must not allow CreateGrant alone (KMS answers "Grants must not contain only the
 * CreateGrant operation"), and encryption-context constraints are only for symmetric encryption
 * keys (asymmetric and HMAC operations take no encryption context).
 */
export function checkGrantForKey(input: CreateGrantInput, spec: KeySpec, usage: KeyUsage): void {
  const valid = grantOperationsFor(spec, usage);
  const bad = input.operations.filter((op) => !valid.includes(op));
  if (bad.length > 0) {
    throw validationError(`${bad.join(', ')} ${bad.length === 1 ? 'is' : 'are'} not valid grant operation${bad.length === 1 ? '' : 's'} for a key with KeySpec ${spec} and KeyUsage ${usage}.`);
  }
  if (input.operations.length === 1 && input.operations[0] === 'CreateGrant') {
    throw validationError('Grants must not contain only the CreateGrant operation.');
  }
  // SourceArn, unlike the encryption context constraints, is allowed on every key type.
  const contextConstraint = input.constraints?.EncryptionContextSubset !== undefined || input.constraints?.EncryptionContextEquals !== undefined;
  if (contextConstraint && KEY_SPECS[spec].family !== 'symmetric') {
    throw validationError(`Encryption context grant constraints are not supported for a key with KeySpec ${spec}: its operations take no encryption context.`);
  }
}
