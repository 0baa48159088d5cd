/**
 * Condition operators of key policies (IAM User Guide, "IAM JSON policy elements: Condition
 * operators"): their names (with the `ForAnyValue:`/`ForAllValues:` set prefixes and the
 * `IfExists` suffix), how a policy value is prepared for each, and how a request value is compared
 * with it. `Null`, which tests presence rather than values, is evaluated by policy.ts.
 *
 * Work: a request value is prepared once per condition (`request`: lower-cased, parsed), so that
 * comparing it with each of a condition's policy values costs a constant or, for the wildcard
 * operators, a linear scan; every comparison charges its steps to the evaluation's WorkMeter
 * (work-meter.ts).
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { ResolvedPiece } from './policy-variables.js';
import { ArnPattern, tokensOf, WildcardPattern } from './wildcard.js';
import type { WorkMeter } from './work-meter.js';

export type SetOp = 'ForAnyValue' | 'ForAllValues' | undefined;

/**
 * One condition operator: `prepare` turns a policy value (its pieces, see policy-variables.ts) into
 * what `test` compares request values with, `request` a request value into what `test` reads.
 */
export interface OperatorDef<P, R = unknown> {
  /** Negated operators (StringNotEquals, ...) are true when no policy value matches. */
  negated: boolean;
  /**
   * Whether policy variables are substituted in the values (IAM User Guide, "IAM policy elements:
   * Variables and tags", "Where you can use policy variables": string and ARN operators only).
   */
  variables: boolean;
  prepare(pieces: readonly ResolvedPiece[]): P;
  /** The request value as `test` reads it; the caller charges its length to the meter. */
  request(value: string): R;
  /** Compares, charging its steps to `meter` (which throws when the evaluation's budget is used). */
  test(request: R, prepared: P, meter: WorkMeter): boolean;
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

type IpFamily = 'ipv4' | 'ipv6';
const familyOf = (ip: string): IpFamily | undefined => (isIPv4(ip) ? 'ipv4' : isIPv6(ip) ? 'ipv6' : undefined);

/** A CIDR block of an IpAddress/NotIpAddress condition; undefined when it is not one (it matches nothing). */
function cidrOf(text: string): { family: IpFamily; list: BlockList } | undefined {
  const [addr, prefixText] = text.trim().split('/');
  if (!addr) return undefined;
  const family = familyOf(addr);
  if (!family) return undefined;
  const prefix = prefixText === undefined ? (family === 'ipv4' ? 32 : 128) : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 'ipv4' ? 32 : 128)) return undefined;
  const list = new BlockList();
  list.addSubnet(addr, prefix, family);
  return { family, list };
}

function ipOf(value: string): { ip: string; family: IpFamily } | undefined {
  const ip = value.trim();
  const family = familyOf(ip);
  return family ? { ip, family } : undefined;
}

type Cidr = ReturnType<typeof cidrOf>;
type Ip = ReturnType<typeof ipOf>;
const ipMatch = (ip: Ip, cidr: Cidr, meter: WorkMeter) => {
  meter.charge(64); // one BlockList lookup
  return ip !== undefined && cidr !== undefined && ip.family === cidr.family && cidr.list.check(ip.ip, ip.family);
};

const operator = <P, R>(def: OperatorDef<P, R>) => def as OperatorDef<unknown, unknown>;
const asIs = (s: string) => s;
/** String equality: V8 compares lengths first, then at most the shorter string's characters. */
const same = (r: string, p: string, meter: WorkMeter) => {
  meter.charge(1 + Math.min(r.length, p.length));
  return r === p;
};

const stringEquals = (negated: boolean) => operator({ negated, variables: true, prepare: joined, request: asIs, test: same });
const stringEqualsIgnoreCase = (negated: boolean) =>
  operator({ negated, variables: true, prepare: (ps) => lower(joined(ps)), request: lower, test: same });
/** StringLike: case-sensitive, `*` and `?` wildcards anywhere. */
const stringLike = (negated: boolean) =>
  operator({
    negated,
    variables: true,
    prepare: (ps) => new WildcardPattern(tokensOfPieces(ps)),
    request: asIs,
    test: (r: string, p: WildcardPattern, meter) => p.matches(r, meter),
  });
/** ArnEquals and ArnLike behave identically: six colon-separated parts, each with wildcards. */
const arnLike = (negated: boolean) =>
  operator({
    negated,
    variables: true,
    prepare: (ps) => new ArnPattern(tokensOfPieces(ps)),
    request: asIs,
    test: (r: string, p: ArnPattern, meter) => p.matches(r, meter),
  });
const compareAs = (parse: (s: string) => number, f: (a: number, b: number) => boolean, negated = false) =>
  operator({
    negated,
    variables: false,
    prepare: (ps) => parse(joined(ps)),
    request: parse,
    test: (a: number, b: number, meter) => {
      meter.charge(1);
      return !Number.isNaN(a) && !Number.isNaN(b) && f(a, b);
    },
  });

export const OPERATORS: Record<string, OperatorDef<unknown, unknown>> = {
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
  Bool: operator({ negated: false, variables: false, prepare: (ps) => lower(joined(ps)), request: lower, test: same }),
  BinaryEquals: operator({ negated: false, variables: false, prepare: joined, request: asIs, test: same }),
  IpAddress: operator({ negated: false, variables: false, prepare: (ps) => cidrOf(joined(ps)), request: ipOf, test: ipMatch }),
  NotIpAddress: operator({ negated: true, variables: false, prepare: (ps) => cidrOf(joined(ps)), request: ipOf, test: ipMatch }),
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
