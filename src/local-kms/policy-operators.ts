/**
 * Condition operators of key policies (IAM User Guide, "IAM JSON policy elements: Condition
 * operators"): their names (with the `ForAnyValue:`/`ForAllValues:` set prefixes and the
 * `IfExists` suffix), how a policy value is prepared for each, and how a request value is compared
 * with it. `Null`, which tests presence rather than values, is evaluated by policy.ts.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { ResolvedPiece } from './policy-variables.js';
import { ArnPattern, tokensOf, WildcardPattern } from './wildcard.js';

export type SetOp = 'ForAnyValue' | 'ForAllValues' | undefined;

/**
 * One condition operator: `prepare` turns a policy value (its pieces, see policy-variables.ts) into
 * what `test` compares request values with.
 */
export interface OperatorDef<P> {
  /** Negated operators (StringNotEquals, ...) are true when no policy value matches. */
  negated: boolean;
  /**
   * Whether policy variables are substituted in the values (IAM User Guide, "IAM policy elements:
   * Variables and tags", "Where you can use policy variables": string and ARN operators only).
   */
  variables: boolean;
  prepare(pieces: readonly ResolvedPiece[]): P;
  test(requestValue: string, prepared: P): boolean;
}

const lower = (s: string) => s.toLowerCase();
const joined = (pieces: readonly ResolvedPiece[]) => pieces.map((p) => p.text).join('');
/** Wildcard tokens of a resolved string: only the policy's own text has wildcards. */
export function tokensOfPieces(pieces: readonly ResolvedPiece[]): number[] {
  const out: number[] = [];
  for (const p of pieces) tokensOf(p.text, p.wildcards, out);
  return out;
}

function parseNumber(s: string): number {
  return s.trim() === '' ? NaN : Number(s);
}

/** IAM dates: ISO 8601 or epoch seconds. */
function parseDate(s: string): number {
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  return Date.parse(s);
}

function ipMatch(value: string, cidr: string): boolean {
  const ip = value.trim();
  const family = isIPv4(ip) ? 'ipv4' : isIPv6(ip) ? 'ipv6' : undefined;
  if (!family) return false;
  const [addr, prefixText] = cidr.trim().split('/');
  if (!addr) return false;
  const addrFamily = isIPv4(addr) ? 'ipv4' : isIPv6(addr) ? 'ipv6' : undefined;
  if (addrFamily !== family) return false;
  const prefix = prefixText === undefined ? (family === 'ipv4' ? 32 : 128) : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 'ipv4' ? 32 : 128)) return false;
  const list = new BlockList();
  list.addSubnet(addr, prefix, family);
  return list.check(ip, family);
}

const operator = <P>(def: OperatorDef<P>) => def as OperatorDef<unknown>;

const stringEquals = (negated: boolean) =>
  operator({ negated, variables: true, prepare: joined, test: (r, p: string) => r === p });
const stringEqualsIgnoreCase = (negated: boolean) =>
  operator({ negated, variables: true, prepare: (ps) => lower(joined(ps)), test: (r, p: string) => lower(r) === p });
/** StringLike: case-sensitive, `*` and `?` wildcards anywhere. */
const stringLike = (negated: boolean) =>
  operator({
    negated,
    variables: true,
    prepare: (ps) => new WildcardPattern(tokensOfPieces(ps)),
    test: (r, p: WildcardPattern) => p.matches(r),
  });
/** ArnEquals and ArnLike behave identically: six colon-separated parts, each with wildcards. */
const arnLike = (negated: boolean) =>
  operator({
    negated,
    variables: true,
    prepare: (ps) => new ArnPattern(tokensOfPieces(ps)),
    test: (r, p: ArnPattern) => p.matches(r),
  });
const compareAs = (parse: (s: string) => number, f: (a: number, b: number) => boolean, negated = false) =>
  operator({
    negated,
    variables: false,
    prepare: (ps) => parse(joined(ps)),
    test: (r, b: number) => {
      const a = parse(r);
      return !Number.isNaN(a) && !Number.isNaN(b) && f(a, b);
    },
  });

export const OPERATORS: Record<string, OperatorDef<unknown>> = {
  StringEquals: stringEquals(false),
  StringNotEquals: stringEquals(true),
  StringEqualsIgnoreCase: stringEqualsIgnoreCase(false),
  StringNotEqualsIgnoreCase: stringEqualsIgnoreCase(true),
  StringLike: stringLike(false),
  StringNotLike: stringLike(true),
  NumericEquals: compareAs(parseNumber, (a, b) => a === b),
  NumericNotEquals: compareAs(parseNumber, (a, b) => a === b, true),
  NumericLessThan: compareAs(parseNumber, (a, b) => a < b),
  NumericLessThanEquals: compareAs(parseNumber, (a, b) => a <= b),
  NumericGreaterThan: compareAs(parseNumber, (a, b) => a > b),
  NumericGreaterThanEquals: compareAs(parseNumber, (a, b) => a >= b),
  DateEquals: compareAs(parseDate, (a, b) => a === b),
  DateNotEquals: compareAs(parseDate, (a, b) => a === b, true),
  DateLessThan: compareAs(parseDate, (a, b) => a < b),
  DateLessThanEquals: compareAs(parseDate, (a, b) => a <= b),
  DateGreaterThan: compareAs(parseDate, (a, b) => a > b),
  DateGreaterThanEquals: compareAs(parseDate, (a, b) => a >= b),
  // The variables page lists Boolean among the operators without variables (the condition
  // operators page says Bool takes them; the variables page is the one followed here).
  Bool: operator({ negated: false, variables: false, prepare: (ps) => lower(joined(ps)), test: (r, p: string) => lower(r) === p }),
  BinaryEquals: operator({ negated: false, variables: false, prepare: joined, test: (r, p: string) => r === p }),
  IpAddress: operator({ negated: false, variables: false, prepare: joined, test: ipMatch }),
  NotIpAddress: operator({ negated: true, variables: false, prepare: joined, test: ipMatch }),
  ArnEquals: arnLike(false),
  ArnLike: arnLike(false),
  ArnNotEquals: arnLike(true),
  ArnNotLike: arnLike(true),
  // Null is handled separately: it tests presence, not values.
};
const OPERATOR_BY_LOWER = new Map(
  [...Object.keys(OPERATORS), 'Null'].map((name) => [name.toLowerCase(), name] as const),
);

/** Splits `ForAnyValue:StringLikeIfExists` into its parts; undefined for an unknown operator. */
export function parseOperatorName(name: string): { op: string; set: SetOp; ifExists: boolean } | undefined {
  let rest = name;
  let set: SetOp;
  const colon = rest.indexOf(':');
  if (colon >= 0) {
    const prefix = rest.slice(0, colon).toLowerCase();
    if (prefix === 'foranyvalue') set = 'ForAnyValue';
    else if (prefix === 'forallvalues') set = 'ForAllValues';
    else return undefined;
    rest = rest.slice(colon + 1);
  }
  let ifExists = false;
  if (/ifexists$/i.test(rest)) {
    ifExists = true;
    rest = rest.slice(0, -'IfExists'.length);
  }
  const op = OPERATOR_BY_LOWER.get(rest.toLowerCase());
  if (!op) return undefined;
  if (op === 'Null' && (ifExists || set)) return undefined; // Null takes neither
  return { op, set, ifExists };
}
