/**
 * Policy variables (IAM User Guide, "IAM policy elements: Variables and tags"): `${key}` in a
 * policy is replaced, when the request is evaluated, by the value of the condition key `key` in the
 * request context.
 *
 * The rules this module and its caller (policy.ts) follow, from that page:
 * - Only policies whose `Version` is `2012-10-17` have variables; in a `2008-10-17` or versionless
 *   policy `${...}` is plain text.
 * - Variables are substituted in the `Resource` element (only in the resource part of the ARN, after
 *   its fifth colon) and in the values of string and ARN condition operators; other operators
 *   (numeric, date, Boolean, binary, IP address, `Null`) take their values as written.
 * - Key names are case-insensitive (`${AWS:UserName}` is `${aws:username}`).
 * - A variable whose key has no value in the request (or whose key is multivalued, which cannot be
 *   a variable) leaves the string without a value: it equals and is like nothing, so a string or
 *   ARN operator does not match it and a negated one does, and a `Resource` holding it names no
 *   resource. `${key, 'default'}` supplies the quoted text instead (case-sensitive, as written).
 * - `${*}`, `${?}` and `${$}` are a literal `*`, `?` and `$`.
 *
 * Characters that come from a substituted value (or from `${*}`/`${?}`) are literal: a user named
 * `*` does not turn a `StringLike` pattern into a wildcard. Only the policy's own text has wildcards.
 *
 * A variable whose key is ambiguous in the request (a single-valued key with candidate values, see
 * policy-types.ts ConditionEntry) stands for each candidate: the string then has one resolution
 * per combination, and the policy engine reads them the stricter way (policy.ts, "Ambiguous keys").
 */
import type { ConditionContext } from './policy-types.js';
import type { WorkMeter } from './work-meter.js';

/** One part of a policy string: its own text (wildcards active), a literal, or a variable. */
export type TemplatePart =
  | { kind: 'text'; text: string }
  | { kind: 'literal'; text: string; source: string }
  | { kind: 'variable'; key: string; fallback: string | undefined; source: string };

/** A piece of a resolved policy string; `wildcards` is false for substituted text. */
export interface ResolvedPiece {
  text: string;
  wildcards: boolean;
}

/** `${*}`, `${?}`, `${$}`: the characters that would otherwise be wildcards or start a variable. */
const isEscape = (body: string) => body === '*' || body === '?' || body === '$';

/** `key, 'default'`: the default is everything between the quotes after the first comma. */
const WITH_DEFAULT = /^([^,]*),\s*'([^']*)'\s*$/s;

/**
 * Splits `text` into template parts, or returns undefined when it holds no `${...}` (the common
 * case, kept as plain text). A `${` without a closing `}` is plain text.
 *
 * Whether KMS refuses such a policy is not documented; the local KMS accepts it. Inside `${...}`,
 * text that is neither an escape nor `key, 'default'` is taken (trimmed) as a key name, so
 * `${}` or `${a, b}` name keys no request has.
 */
export function parseTemplate(text: string): TemplatePart[] | undefined {
  let open = text.indexOf('${');
  if (open < 0) return undefined;
  const parts: TemplatePart[] = [];
  let plain = '';
  let from = 0;
  while (open >= 0) {
    const close = text.indexOf('}', open + 2);
    if (close < 0) break;
    plain += text.slice(from, open);
    if (plain) parts.push({ kind: 'text', text: plain });
    plain = '';
    const body = text.slice(open + 2, close);
    const source = text.slice(open, close + 1);
    if (isEscape(body)) {
      parts.push({ kind: 'literal', text: body, source });
    } else {
      const m = WITH_DEFAULT.exec(body);
      parts.push(
        m
          ? { kind: 'variable', key: m[1]!.trim().toLowerCase(), fallback: m[2]!, source }
          : { kind: 'variable', key: body.trim().toLowerCase(), fallback: undefined, source },
      );
    }
    from = close + 1;
    open = text.indexOf('${', from);
  }
  if (parts.length === 0) return undefined; // only an unclosed `${`: plain text
  plain += text.slice(from);
  if (plain) parts.push({ kind: 'text', text: plain });
  return parts;
}

/**
 * Template of a `Resource`/`NotResource` entry: variables and escapes before the fifth colon of the
 * ARN (in the partition, service, Region or account) are not variables there and stay as text.
 */
export function parseResourceTemplate(text: string): TemplatePart[] | undefined {
  const parts = parseTemplate(text);
  if (!parts) return undefined;
  let colons = 0;
  const out: TemplatePart[] = [];
  for (const part of parts) {
    if (part.kind === 'text') {
      for (let i = 0; i < part.text.length && colons < 5; i++) if (part.text.charCodeAt(i) === 0x3a) colons++;
      out.push(part);
    } else if (colons < 5) {
      out.push({ kind: 'text', text: part.source });
    } else {
      out.push(part);
    }
  }
  // Adjacent text parts are merged so that a template without variables is recognised as plain.
  const merged: TemplatePart[] = [];
  for (const part of out) {
    const last = merged[merged.length - 1];
    if (part.kind === 'text' && last?.kind === 'text') merged[merged.length - 1] = { kind: 'text', text: last.text + part.text };
    else merged.push(part);
  }
  return merged.length === 1 && merged[0]!.kind === 'text' ? undefined : merged;
}

/**
 * Condition keys that are multivalued (IAM User Guide, "Single-valued vs. multivalued context
 * keys"; AWS KMS Developer Guide, "AWS KMS condition keys": ArrayOfString keys) and so cannot be
 * variables, even when a request happens to carry one value.
 */
const MULTIVALUED_KEYS = new Set([
  'kms:encryptioncontextkeys',
  'kms:grantoperations',
  'kms:resourcealiases',
  'aws:tagkeys',
  'aws:calledvia',
  'aws:principalservicenameslist',
  'aws:principalorgpaths',
  'aws:resourceorgpaths',
]);

/**
 * The values a variable stands for in this request: its value, its candidates when the key is
 * ambiguous, or none (absent, multivalued, or a list where one value is needed).
 */
function valuesOf(key: string, context: ConditionContext): readonly string[] {
  if (MULTIVALUED_KEYS.has(key)) return [];
  const entry = context.get(key);
  if (!entry) return [];
  return entry.ambiguous || entry.values.length === 1 ? entry.values : [];
}

/** Steps charged per piece of a resolution: building it (arrays, not a character scan). */
const PIECE_STEPS = 8;

/**
 * Substitutes the variables of `parts` from `context`: one resolution, or one per combination of
 * candidate values when a variable's key is ambiguous. Empty when a variable has no value and no
 * default: the string then has no value in this request. The resolutions are charged to `meter`
 * before they are built, so that their number (a product of candidate counts) is bounded by the
 * evaluation's budget.
 */
export function resolveTemplate(parts: readonly TemplatePart[], context: ConditionContext, meter: WorkMeter): ResolvedPiece[][] {
  const choices: ResolvedPiece[][] = [];
  for (const part of parts) {
    if (part.kind === 'text') {
      choices.push([{ text: part.text, wildcards: true }]);
    } else if (part.kind === 'literal') {
      choices.push([{ text: part.text, wildcards: false }]);
    } else {
      const values = valuesOf(part.key, context);
      if (values.length === 0 && part.fallback === undefined) return [];
      choices.push((values.length > 0 ? values : [part.fallback!]).map((text) => ({ text, wildcards: false })));
    }
  }
  const count = choices.reduce((n, c) => n * c.length, 1);
  meter.charge(count * parts.length * PIECE_STEPS);
  let out: ResolvedPiece[][] = [[]];
  for (const options of choices) out = out.flatMap((prefix) => options.map((choice) => [...prefix, choice]));
  return out;
}
