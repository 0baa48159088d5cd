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
 * What an operator reads from a value that is not of its type (a request value `0x5` for a
 * numeric operator, `Jan 1 2099` for a date operator). A comparison with it is indeterminate
 * (`test` answers undefined): policy.ts reads it the stricter way for the statement, like a key
 * with several candidate values, so an Allow does not apply and a Deny does. A policy value of
 * that kind never gets this far: policy-parse.ts refuses the document.
 */
export const UNREADABLE: unique symbol = Symbol('unreadable');
export type Unreadable = typeof UNREADABLE;

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
  /**
   * What a policy value must be, for the refusal of one that is not (policy-parse.ts); absent:
   * any string is a value.
   */
  valueType?: string;
  /** The prepared policy value, or UNREADABLE when it is not of `valueType`. */
  prepare(pieces: readonly ResolvedPiece[]): P | Unreadable;
  /** The request value as `test` reads it; the caller charges its length to the meter. */
  request(value: string): R;
  /**
   * Compares, charging its steps to `meter` (which throws when the evaluation's budget is used):
   * true or false, or undefined when the answer depends on a reading AWS does not document.
   */
  test(request: R, prepared: P, meter: WorkMeter): boolean | undefined;
}

const lower = (s: string) => s.toLowerCase();
const joined = (pieces: readonly ResolvedPiece[]) => pieces.map((p) => p.text).join('');
/** Wildcard tokens of a resolved string: only the policy's own text has wildcards. */
export function tokensOfPieces(pieces: readonly ResolvedPiece[]): number[] {
  const out: number[] = [];
  for (const p of pieces) tokensOf(p.text, p.wildcards, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Numbers and dates, read strictly (review: Number() reads "0x5", "1e1", " 5 ", "-Infinity";
// Date.parse reads "Jan 1 2099" and zone-less times in the server's time zone).

/**
 * A value compared exactly (`exact`, -1/0/1) and as an implementation of lower precision would
 * compare it (`approx`): a double for numbers, whole milliseconds for dates. AWS documents
 * neither precision; when the two readings disagree the comparison is indeterminate.
 */
interface Comparable<T> {
  exact(a: T, b: T): number;
  approx(a: T, b: T): number;
  size(v: T): number;
}
const sign = (n: number) => (n < 0 ? -1 : n > 0 ? 1 : 0);

/** Compares two digit strings as decimal fractions (`0.` before each), padding the shorter with zeros. */
function compareFractions(a: string, b: string): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a.charCodeAt(i) || 0x30) - (b.charCodeAt(i) || 0x30);
    if (d !== 0) return sign(d);
  }
  return 0;
}

/** A decimal number: its sign, integer digits without leading zeros, fraction digits without trailing zeros. */
interface Decimal {
  negative: boolean;
  int: string;
  frac: string;
  double: number;
}

/**
 * IAM User Guide, "IAM JSON policy elements: Condition operators", Numeric condition operators:
 * the values are numbers. Only plain decimal notation is one here: an optional sign, digits, an
 * optional fraction (`-12`, `+3.50`). Hexadecimal, exponents, `Infinity`, surrounding spaces and
 * an empty string are not numbers.
 */
export function parseDecimal(s: string): Decimal | Unreadable {
  const m = /^([+-]?)(\d+)(?:\.(\d+))?$/.exec(s);
  if (!m) return UNREADABLE;
  const int = m[2]!.replace(/^0+/, '');
  const frac = (m[3] ?? '').replace(/0+$/, '');
  return { negative: m[1] === '-' && (int !== '' || frac !== ''), int, frac, double: Number(s) };
}

const DECIMALS: Comparable<Decimal> = {
  exact(a, b) {
    if (a.negative !== b.negative) return a.negative ? -1 : 1;
    const magnitude = a.int.length !== b.int.length ? sign(a.int.length - b.int.length) : a.int < b.int ? -1 : a.int > b.int ? 1 : compareFractions(a.frac, b.frac);
    return a.negative ? -magnitude : magnitude;
  },
  approx: (a, b) => (a.double < b.double ? -1 : a.double > b.double ? 1 : 0), // Infinity (a long number) equals Infinity
  size: (v) => v.int.length + v.frac.length,
};

/** A point in time: whole milliseconds since 1970 (UTC) and the digits of the second past them. */
interface Instant {
  ms: number;
  rest: string;
}

/** Days from 1970-01-01 to the given proleptic Gregorian date (Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}
const isLeap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
/** 9999-12-31T23:59:59Z, the last second the ISO form below can write: epoch seconds go no further. */
const MAX_EPOCH_SECONDS = 253_402_300_799;

/**
 * IAM User Guide, "IAM JSON policy elements: Condition operators", Date condition operators: the
 * values follow the W3C profile of ISO 8601 ("Date and Time Formats"), or are epoch (UNIX) time
 * in seconds. Accepted: `YYYY-MM-DD` (midnight UTC), `YYYY-MM-DDThh:mmTZD`,
 * `YYYY-MM-DDThh:mm:ssTZD`, `YYYY-MM-DDThh:mm:ss.sTZD` (any number of fraction digits), TZD = `Z`
 * or `+hh:mm`/`-hh:mm`; and a string of decimal digits (epoch seconds, up to year 9999). Not
 * accepted: a time without a zone (which local time would it be?), `YYYY` and `YYYY-MM` (`2020`
 * reads as epoch seconds), lower-case `t`/`z`, day 31 of a 30-day month, hour 24, second 60.
 */
export function parseIamDate(s: string): Instant | Unreadable {
  if (/^\d+$/.test(s)) {
    const digits = s.replace(/^0+/, '');
    if (digits.length > 12 || Number(digits) > MAX_EPOCH_SECONDS) return UNREADABLE;
    return { ms: Number(digits) * 1000, rest: '' };
  }
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?:Z|([+-])(\d{2}):(\d{2})))?$/.exec(s);
  if (!m) return UNREADABLE;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (mo < 1 || mo > 12 || d < 1 || d > (mo === 2 && isLeap(y) ? 29 : DAYS_IN_MONTH[mo - 1]!)) return UNREADABLE;
  const [h, mi, sec] = [Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0)];
  const [oh, om] = [Number(m[9] ?? 0), Number(m[10] ?? 0)];
  if (h > 23 || mi > 59 || sec > 59 || oh > 23 || om > 59) return UNREADABLE;
  const fraction = (m[7] ?? '').replace(/0+$/, '');
  const offset = (m[8] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  const ms = daysFromCivil(y, mo, d) * 86_400_000 + ((h * 60 + mi) * 60 + sec) * 1000 + Number(fraction.slice(0, 3).padEnd(3, '0')) - offset;
  return { ms, rest: fraction.slice(3) };
}

const INSTANTS: Comparable<Instant> = {
  exact: (a, b) => sign(a.ms - b.ms) || compareFractions(a.rest, b.rest),
  approx: (a, b) => sign(a.ms - b.ms),
  size: (v) => 1 + v.rest.length,
};

// ---------------------------------------------------------------------------------------------
// IP addresses

type IpFamily = 'ipv4' | 'ipv6';
const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
/** Dotted-quad IPv4, each octet 0..255 in decimal without leading zeros (`010` could be octal). */
const IPV4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);
const familyOf = (ip: string): IpFamily | undefined => (IPV4.test(ip) ? 'ipv4' : !ip.includes('%') && isIPv6(ip) ? 'ipv6' : undefined);

/**
 * A CIDR block of an IpAddress/NotIpAddress condition (IAM User Guide, "IAM JSON policy elements:
 * Condition operators", IP address condition operators: standard CIDR notation; an address
 * without a prefix is /32 or /128): an IPv4 or IPv6 address, optionally `/` and 1 to 3 decimal
 * digits up to 32 (IPv4) or 128 (IPv6). Parsed here rather than by `BlockList`, whose native
 * checks abort the process on a prefix it does not expect (`-0`); anything else - `10.1.2.3/`,
 * `/0x0`, `/ 8`, `/32/1`, spaces - is UNREADABLE (and the document refused).
 */
function cidrOf(text: string): { family: IpFamily; list: BlockList } | Unreadable {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const family = familyOf(addr);
  if (!family) return UNREADABLE;
  const max = family === 'ipv4' ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const prefixText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefixText)) return UNREADABLE;
    prefix = Number.parseInt(prefixText, 10);
    if (prefix > max) return UNREADABLE;
  }
  const list = new BlockList();
  list.addSubnet(addr, prefix, family);
  return { family, list };
}

/** The request's address (aws:SourceIp), as the server took it from the connection. */
function ipOf(value: string): { ip: string; family: IpFamily } | Unreadable {
  const family = isIPv4(value) ? 'ipv4' : !value.includes('%') && isIPv6(value) ? 'ipv6' : undefined;
  return family ? { ip: value, family } : UNREADABLE;
}

type Cidr = Exclude<ReturnType<typeof cidrOf>, Unreadable>;
type Ip = ReturnType<typeof ipOf>;
const ipMatch = (ip: Ip, cidr: Cidr, meter: WorkMeter) => {
  meter.charge(64); // one BlockList lookup
  if (ip === UNREADABLE) return undefined;
  return ip.family === cidr.family && cidr.list.check(ip.ip, ip.family);
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
/**
 * Numeric and date operators: both sides parsed by `parse`; `holds` reads the comparison's sign.
 * A request value that does not parse, or a comparison whose exact and approximate readings
 * disagree (Comparable), is indeterminate.
 */
const compareAs = <T>(valueType: string, parse: (s: string) => T | Unreadable, cmp: Comparable<T>, holds: (c: number) => boolean, negated = false) =>
  operator({
    negated,
    variables: false,
    valueType,
    prepare: (ps) => parse(joined(ps)),
    request: parse,
    test: (a: T | Unreadable, b: T, meter) => {
      if (a === UNREADABLE) {
        meter.charge(1);
        return undefined;
      }
      meter.charge(1 + Math.max(cmp.size(a), cmp.size(b)));
      const exact = holds(cmp.exact(a, b));
      return holds(cmp.approx(a, b)) === exact ? exact : undefined;
    },
  });
const NUMBER = 'a decimal number (digits, an optional sign and fraction)';
const numeric = (holds: (c: number) => boolean, negated = false) => compareAs(NUMBER, parseDecimal, DECIMALS, holds, negated);
const DATE = 'an ISO 8601 date (YYYY-MM-DD, YYYY-MM-DDThh:mm[:ss[.s]]Z or +hh:mm) or epoch seconds';
const date = (holds: (c: number) => boolean, negated = false) => compareAs(DATE, parseIamDate, INSTANTS, holds, negated);
const BOOLEAN = 'true or false';
const CIDR = 'an IPv4 or IPv6 address with an optional /prefix (CIDR notation)';
/** Bool values: `true` or `false` (any case, as JSON booleans or strings). */
const booleanOf = (s: string) => (/^(?:true|false)$/i.test(s) ? s.toLowerCase() : UNREADABLE);

export const OPERATORS: Record<string, OperatorDef<unknown, unknown>> = {
  StringEquals: stringEquals(false),
  StringNotEquals: stringEquals(true),
  StringEqualsIgnoreCase: stringEqualsIgnoreCase(false),
  StringNotEqualsIgnoreCase: stringEqualsIgnoreCase(true),
  StringLike: stringLike(false),
  StringNotLike: stringLike(true),
  NumericEquals: numeric((c) => c === 0),
  NumericNotEquals: numeric((c) => c === 0, true),
  NumericLessThan: numeric((c) => c < 0),
  NumericLessThanEquals: numeric((c) => c <= 0),
  NumericGreaterThan: numeric((c) => c > 0),
  NumericGreaterThanEquals: numeric((c) => c >= 0),
  DateEquals: date((c) => c === 0),
  DateNotEquals: date((c) => c === 0, true),
  DateLessThan: date((c) => c < 0),
  DateLessThanEquals: date((c) => c <= 0),
  DateGreaterThan: date((c) => c > 0),
  DateGreaterThanEquals: date((c) => c >= 0),
  // The variables page lists Boolean among the operators without variables (the condition
  // operators page says Bool takes them; the variables page is the one followed here).
  // A request value that is not a Boolean matches neither `true` nor `false`: indeterminate.
  Bool: operator({
    negated: false,
    variables: false,
    valueType: BOOLEAN,
    prepare: (ps) => booleanOf(joined(ps)),
    request: booleanOf,
    test: (r: string | Unreadable, p: string, meter) => (r === UNREADABLE ? undefined : same(r, p, meter)),
  }),
  BinaryEquals: operator({ negated: false, variables: false, prepare: joined, request: asIs, test: same }),
  IpAddress: operator({ negated: false, variables: false, valueType: CIDR, prepare: (ps) => cidrOf(joined(ps)), request: ipOf, test: ipMatch }),
  NotIpAddress: operator({ negated: true, variables: false, valueType: CIDR, prepare: (ps) => cidrOf(joined(ps)), request: ipOf, test: ipMatch }),
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
