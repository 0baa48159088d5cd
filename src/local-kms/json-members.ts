/**
 * What `JSON.parse` does not tell: duplicate member names and the text of number literals.
 *
 * Duplicate names. RFC 8259 (section 4) says names within an object SHOULD be unique and that
 * software receiving duplicates behaves unpredictably; `JSON.parse` keeps the last one silently,
 * so `"Effect": "Deny", ..., "Effect": "Allow"` would read as an Allow. AWS does not document
 * what it does with such a policy, and the local KMS refuses what it cannot read exactly
 * (policy.ts; principals.ts for the principals file).
 *
 * Number literals. `JSON.parse` reads them as doubles, so `12345678901234567890`, `1e2` and `1.0`
 * lose the text they were written with, which string condition operators compare
 * (policy-parse.ts refuses such numbers).
 *
 * A scanner, not a parser: it runs on text `JSON.parse` has already accepted, so it only follows
 * strings, numbers, objects and arrays. Linear in the text; an explicit stack, so nesting depth
 * cannot overflow the call stack.
 */

/** A duplicated member: its name and where the object holding it is (`Statement[1].Condition`). */
export interface DuplicateMember {
  name: string;
  path: string;
}

type ObjectFrame = { kind: 'object'; names: Set<string>; member: string };
type Frame = ObjectFrame | { kind: 'array'; index: number };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
/** Characters of a JSON number literal (RFC 8259 section 6): digits, `-`, `+`, `.`, `e`, `E`. */
const NUMBER_CHARS = new Set([...'0123456789-+.eE'].map((ch) => ch.charCodeAt(0)));

/** What the scanner reports: a member name (`escaped` when it holds a `\`) or a number literal. */
interface Visitor<T> {
  member?(name: string, stack: readonly Frame[]): T | undefined;
  number?(text: string, stack: readonly Frame[]): T | undefined;
}

/** Walks `text` (valid JSON) until a visitor answers; linear, with an explicit stack. */
function scan<T>(text: string, visit: Visitor<T>): T | undefined {
  const stack: Frame[] = [];
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      let end = i + 1;
      let escaped = false;
      while (text.charCodeAt(end) !== QUOTE) {
        if (text.charCodeAt(end) === BACKSLASH) {
          escaped = true;
          end++;
        }
        end++;
      }
      const top = stack[stack.length - 1];
      if (expectName && top?.kind === 'object') {
        // Names are compared decoded: "Effect" and "Eff\u0065ct" are the same member.
        const name = escaped ? (JSON.parse(text.slice(i, end + 1)) as string) : text.slice(i + 1, end);
        const found = visit.member?.(name, stack);
        if (found !== undefined) return found;
        top.names.add(name);
        top.member = name;
        expectName = false;
      }
      i = end;
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      let end = i + 1;
      while (end < text.length && NUMBER_CHARS.has(text.charCodeAt(end))) end++;
      const found = visit.number?.(text.slice(i, end), stack);
      if (found !== undefined) return found;
      i = end - 1;
    } else if (c === 0x7b /* { */) {
      stack.push({ kind: 'object', names: new Set(), member: '' });
      expectName = true;
    } else if (c === 0x5b /* [ */) {
      stack.push({ kind: 'array', index: 0 });
      expectName = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectName = false;
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.kind === 'object') expectName = true;
      else if (top) top.index++;
    }
  }
  return undefined;
}

/** The first member name repeated within one object of `text` (valid JSON), or undefined. */
export function findDuplicateMember(text: string): DuplicateMember | undefined {
  return scan<DuplicateMember>(text, {
    // The scanner reports a name before adding it to its object (the innermost frame).
    member: (name, stack) => ((stack[stack.length - 1] as ObjectFrame).names.has(name) ? { name, path: pathOf(stack, false) } : undefined),
  });
}

/** A number literal whose value does not read back as the text written (`1.0`, `1e2`, 20 digits). */
export interface InexactNumber {
  text: string;
  /** Where it is, e.g. `Statement[1].Condition.StringEquals.kms:EncryptionContext:acct`. */
  path: string;
}

/**
 * The first number literal of `text` (valid JSON) that `String(JSON.parse(literal))` does not give
 * back as written, or undefined: such a number cannot be kept as its text once parsed.
 */
export function findInexactNumber(text: string): InexactNumber | undefined {
  return scan<InexactNumber>(text, {
    number: (literal, stack) => (String(Number(literal)) === literal ? undefined : { text: literal, path: pathOf(stack, true) }),
  });
}

/**
 * Path from the document's top: of the innermost object of `stack` (`Statement[1].Condition`), or
 * with `value`, of the value at the scanner's position (`Statement[1].Condition.Bool.aws:x`).
 */
function pathOf(stack: readonly Frame[], value: boolean): string {
  let path = '';
  const n = value ? stack.length : stack.length - 1;
  for (let i = 0; i < n; i++) {
    const f = stack[i]!;
    path += f.kind === 'array' ? `[${f.index}]` : `${path === '' ? '' : '.'}${f.member}`;
  }
  return path === '' ? 'the top-level object' : path;
}
